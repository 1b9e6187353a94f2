//! `onepages import FILE...`: load LDIF or CSV into the data directory, offline.

use std::path::PathBuf;

use clap::Args;

use super::Common;
use crate::dsa::Dsa;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub common: Common,
    /// .ldif or .csv files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open(settings, "onepages import", &|_| {})?;
    let grant = dsa.operator_grant()?;
    let writer = dsa.writer(&grant);
    // Offline: nobody searches while the load runs, so the index commits rarely.
    writer.begin_bulk_load()?;
    let mut failed = 0usize;
    let mut written = 0usize;
    for file in &args.files {
        let bar = super::progress(&format!("importing {}", file.display()));
        let started = std::time::Instant::now();
        let report = crate::import::import_file(&writer, file, &|n| {
            bar.set_position(u64::try_from(n).unwrap_or(0));
        })?;
        bar.finish_and_clear();
        for issue in &report.issues {
            eprintln!("{issue}");
        }
        failed += report.issues.len();
        written += report.written + report.deleted;
        eprintln!(
            "{}: {} ({:.1} s)",
            file.display(),
            report.summary(),
            started.elapsed().as_secs_f64()
        );
    }
    // Everything written is committed to the index, then the store says so, durably with all
    // it holds (an import that stops before leaves the marker, and the next start rebuilds
    // the index).
    writer.finish_bulk_load()?;
    dsa.shutdown()?;
    if failed > 0 {
        if written == 0 {
            anyhow::bail!("{failed} records were refused (see above); nothing was written");
        }
        anyhow::bail!("{failed} records were refused (see above); the others were applied");
    }
    Ok(())
}
