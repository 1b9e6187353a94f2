//! `onepages import FILE...`: load LDIF or CSV into the data directory, offline.
//!
//! Exit status: 0 when every record was applied (or, with `--dry-run`, would be), 1 when some
//! were refused (the others are applied), 2 when the import could not run (a file that cannot
//! be read, a CSV header the schema lacks, a directory in use).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::{Common, Online};
use crate::dsa::Dsa;
use crate::import::{ImportOptions, ImportReport, Progress};

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Write nothing: report what would be added, changed (with the attributes), left
    /// unchanged and deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Leave out attributes the schema lacks (listed once each, with a count) instead of
    /// refusing their records: for migrations
    #[arg(long)]
    pub drop_unknown: bool,
    /// CSV: read a header as an attribute, e.g. --map "Service=department" (repeatable; HR
    /// spellings such as "First Name", "Last Name" and "E-mail" are known already)
    #[arg(long, value_name = "HEADER=ATTRIBUTE")]
    pub map: Vec<String>,
    /// Delete the entries below this DN that the feed does not contain, after the feed's adds
    /// and changes (as tombstones, restorable for tombstone_days); administrators are kept
    #[arg(long, value_name = "BASE")]
    pub sync: Option<String>,
    /// With --sync: refuse to start when the sync would delete more than this many entries,
    /// or this percentage of the entries below BASE
    #[arg(long, value_name = "N|N%", requires = "sync", default_value = "10%")]
    pub max_deletes: crate::import::feed::MaxDeletes,
    /// Also write the report as JSON to this file (for scripts)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// .ldif or .csv files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Exit status when some records were refused.
pub const EXIT_REFUSED: i32 = 1;
/// Exit status when the import could not run.
pub const EXIT_FAILED: i32 = 2;

fn options(args: &ImportArgs) -> anyhow::Result<ImportOptions> {
    let mut csv_map = Vec::new();
    for m in &args.map {
        let Some((from, to)) = m.split_once('=') else {
            anyhow::bail!("--map {m}: write it as HEADER=ATTRIBUTE");
        };
        if from.trim().is_empty() || to.trim().is_empty() {
            anyhow::bail!("--map {m}: both the header and the attribute are needed");
        }
        csv_map.push((from.trim().to_string(), to.trim().to_string()));
    }
    Ok(ImportOptions {
        dry_run: args.dry_run,
        drop_unknown: args.drop_unknown,
        csv_map,
        sync: args
            .sync
            .as_ref()
            .map(|base| crate::import::feed::SyncOptions {
                base: base.clone(),
                max_deletes: args.max_deletes,
            }),
        cancel: None,
        background: false,
    })
}

/// Runs the import; returns the exit status (refusals are not an error of the command).
pub fn run(args: ImportArgs) -> anyhow::Result<i32> {
    let options = options(&args)?;
    if args.online.server.is_some() {
        return online(&args, &options);
    }
    let settings = args.common.settings(None)?;
    // A dry run writes nothing, not even a new data directory.
    let open = if options.dry_run {
        Dsa::open_existing
    } else {
        Dsa::open
    };
    let (dsa, _) = open(settings, "onepages import", &|_| {}).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            if matches!(e, crate::dsa::DsaError::DataDir(_)) {
                " (this offline form is for a stopped server; to load into the running one, add \
                 --server ldap://HOST:PORT --bind-dn ADMIN --password-file FILE)"
            } else {
                ""
            }
        )
    })?;
    let grant = dsa.operator_grant()?;
    let writer = dsa.writer(&grant);
    // Offline: nobody searches while the load runs, so the index commits rarely.
    if !options.dry_run {
        writer.begin_bulk_load()?;
    }
    let files: Vec<(String, PathBuf)> = args
        .files
        .iter()
        .map(|f| (f.display().to_string(), f.clone()))
        .collect();
    let shown = Shown::default();
    let (reports, outcome) =
        match crate::import::feed::import_feed(&writer, &files, &options, &shown) {
            Ok(reports) => (reports, Ok(())),
            Err(stop) => (stop.reports, Err(anyhow::Error::from(stop.error))),
        };
    shown.end();
    // Everything written is committed to the index, then the store says so, durably with all
    // it holds (an import that stops before leaves the marker, and the next start rebuilds
    // the index).
    if !options.dry_run {
        writer.finish_bulk_load()?;
    }
    dsa.shutdown()?;
    finish(&args, &options, &reports, outcome)
}

/// Writes the JSON report when asked, and says how the feed went: the exit status.
fn finish(
    args: &ImportArgs,
    options: &ImportOptions,
    reports: &[ImportReport],
    outcome: anyhow::Result<()>,
) -> anyhow::Result<i32> {
    if let Some(path) = &args.report {
        write_json(path, reports, outcome.as_ref().err())?;
    }
    outcome?;
    let refused: usize = reports.iter().map(|r| r.refused).sum();
    let written: usize = reports.iter().map(|r| r.written + r.deleted).sum();
    if refused > 0 {
        let rest = match (options.dry_run, written) {
            (true, _) => "the others would be applied",
            (false, 0) => "nothing was written",
            (false, _) => "the others were applied",
        };
        eprintln!("{refused} records were refused (see above); {rest}");
        return Ok(EXIT_REFUSED);
    }
    Ok(0)
}

/// `import --server`: the files go to the running server, which runs the same feed under the
/// administrator's grant while it serves (see `import::online`); the reports come back.
fn online(args: &ImportArgs, options: &ImportOptions) -> anyhow::Result<i32> {
    use crate::import::online::{Begin, Begun, Status, BEGIN_OID, DATA_OID, RUN_OID, STATUS_OID};
    use std::io::Read;
    let (mut conn, _) = args.online.connect(&args.common)?;
    let mut exop = |oid: &str, val: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        let (answer, _) = conn
            .extended(ldap3::exop::Exop {
                name: Some(oid.to_string()),
                val: Some(val),
            })?
            .success()
            .map_err(|e| anyhow::anyhow!("the server refused the import: {e}"))?;
        Ok(answer.val.unwrap_or_default())
    };
    let begin = Begin {
        files: args.files.iter().map(|f| f.display().to_string()).collect(),
        dry_run: options.dry_run,
        drop_unknown: options.drop_unknown,
        map: options.csv_map.clone(),
        sync: args.sync.clone(),
        max_deletes: args.sync.as_ref().map(|_| args.max_deletes.to_string()),
    };
    let begun: Begun = serde_json::from_slice(&exop(BEGIN_OID, serde_json::to_vec(&begin)?)?)?;
    let mut chunk = vec![0u8; begun.chunk_bytes.max(1)];
    for (i, file) in args.files.iter().enumerate() {
        let name = file.display().to_string();
        let mut f = std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let meter = Meter::new(&format!("{name} (sending)"));
        let mut sent = 0u64;
        loop {
            let n = f
                .read(&mut chunk)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            if n == 0 {
                break;
            }
            let mut val = format!("{}\n{i}\n", begun.job).into_bytes();
            val.extend_from_slice(chunk.get(..n).unwrap_or_default());
            exop(DATA_OID, val)?;
            sent += n as u64;
            meter.show(Progress {
                records: 0,
                written: 0,
                refused: 0,
                bytes: sent,
                total_bytes: total,
            });
        }
        meter.done();
    }
    exop(RUN_OID, begun.job.clone().into_bytes())?;
    let mut shown = 0;
    let mut current: Option<(String, Meter, Instant)> = None;
    let status = loop {
        std::thread::sleep(Duration::from_millis(200));
        let status: Status =
            serde_json::from_slice(&exop(STATUS_OID, begun.job.clone().into_bytes())?)?;
        for report in status.reports.iter().skip(shown) {
            let took = match current.take() {
                Some((_, meter, started)) => {
                    meter.done();
                    started.elapsed()
                }
                None => Duration::ZERO,
            };
            print_report(report, took);
            shown += 1;
        }
        if status.state == "done" {
            break status;
        }
        if current.as_ref().is_none_or(|(f, _, _)| *f != status.file) && !status.file.is_empty() {
            if let Some((_, meter, _)) = current.take() {
                meter.done();
            }
            current = Some((
                status.file.clone(),
                Meter::new(&status.file),
                Instant::now(),
            ));
        }
        if let Some((_, meter, _)) = &current {
            meter.show(Progress {
                records: status.records,
                written: status.written,
                refused: status.refused,
                bytes: status.bytes,
                total_bytes: status.total_bytes,
            });
        }
    };
    if let Some((_, meter, _)) = current.take() {
        meter.done();
    }
    let _ = conn.unbind();
    let outcome = match status.error {
        Some(e) => Err(anyhow::anyhow!("{e}")),
        None => Ok(()),
    };
    finish(args, options, &status.reports, outcome)
}

/// Shows a feed as it runs: a meter per file, then its report.
#[derive(Default)]
struct Shown {
    meter: std::sync::Mutex<Option<(Meter, Instant)>>,
}

impl Shown {
    fn end(&self) {
        if let Ok(mut m) = self.meter.lock() {
            if let Some((meter, _)) = m.take() {
                meter.done();
            }
        }
    }
}

impl crate::import::feed::Observer for Shown {
    fn start(&self, name: &str) {
        if let Ok(mut m) = self.meter.lock() {
            *m = Some((Meter::new(name), Instant::now()));
        }
    }

    fn progress(&self, p: Progress) {
        if let Ok(m) = self.meter.lock() {
            if let Some((meter, _)) = m.as_ref() {
                meter.show(p);
            }
        }
    }

    fn done(&self, report: &ImportReport) {
        let took = match self.meter.lock() {
            Ok(mut m) => m.take().map(|(meter, started)| {
                meter.done();
                started.elapsed()
            }),
            Err(_) => None,
        };
        print_report(report, took.unwrap_or_default());
    }
}

fn print_report(report: &ImportReport, took: Duration) {
    for change in &report.changes {
        println!("{change}");
    }
    for issue in &report.issues {
        eprintln!("{issue}");
    }
    for (note, count) in &report.notes {
        eprintln!("{}: {note} ({count} records)", report.file);
    }
    eprintln!(
        "{}: {} ({:.1} s)",
        report.file,
        report.summary(),
        took.as_secs_f64()
    );
}

fn write_json(
    path: &std::path::Path,
    reports: &[ImportReport],
    error: Option<&anyhow::Error>,
) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "files": reports,
        "error": error.map(super::error_line),
        "exit": if error.is_some() {
            EXIT_FAILED
        } else if reports.iter().any(|r| r.refused > 0) {
            EXIT_REFUSED
        } else {
            0
        },
    });
    let text = serde_json::to_string_pretty(&json)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))
}

/// Progress on standard error: a bar with count, rate and time left on a terminal, a line
/// every few seconds otherwise (a log, a cron mail).
struct Meter {
    name: String,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Meter {
    fn new(name: &str) -> Meter {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {percent}% {binary_bytes}/{binary_total_bytes} ({eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Meter {
            name: name.to_string(),
            bar,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn show(&self, p: Progress) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = p.records as f64 / secs;
        if let Some(bar) = &self.bar {
            bar.set_length(p.total_bytes);
            bar.set_position(p.bytes);
            bar.set_message(format!("{}: {} records, {rate:.0}/s", self.name, p.records));
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if last.elapsed() < LINE_EVERY {
            return;
        }
        *last = Instant::now();
        let fraction = p.bytes as f64 / p.total_bytes.max(1) as f64;
        let left = if fraction > 0.0 {
            secs * (1.0 - fraction) / fraction
        } else {
            0.0
        };
        eprintln!(
            "{}: {} records ({:.0}%), {rate:.0}/s, about {left:.0} s left",
            self.name,
            p.records,
            fraction * 100.0
        );
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
