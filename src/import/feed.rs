//! A feed: the files of one import run, taken together. With `--sync BASE` the feed is the
//! whole truth about BASE's subtree: after every add and change of every file has been
//! applied, the entries below BASE that no file names are deleted (as tombstones, so a
//! mistake can be restored for `tombstone_days`).
//!
//! The delete guard works before anything is written: a first pass reads every file for the
//! names it holds, and a sync that would delete more than `--max-deletes` (10% of the entries
//! below BASE by default) does not start, so an empty or truncated feed never wipes the
//! directory. A sync never deletes an administrator, nor an entry that keeps entries the feed
//! names below it; and if any record of the feed could not be read (its name is unknown), it
//! deletes nothing.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use super::{
    csv_rows, file_kind, import_file, import_items, ldif_items, ImportError, ImportOptions,
    ImportReport, Item, Kind, Progress,
};
use crate::directory::dn::{is_within, parent_of, Dn};
use crate::dsa::runs::{Run, RunNote};
use crate::dsa::Writer;

/// How many deletes a sync may make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDeletes {
    Count(usize),
    /// A percentage of the entries below the sync base.
    Percent(f64),
}

impl Default for MaxDeletes {
    fn default() -> Self {
        MaxDeletes::Percent(10.0)
    }
}

impl std::str::FromStr for MaxDeletes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("--max-deletes {s}: give a count (500) or a percentage (10%)");
        match t.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(MaxDeletes::Percent(p))
            }
            None => t.parse().map(MaxDeletes::Count).map_err(|_| bad()),
        }
    }
}

impl std::fmt::Display for MaxDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDeletes::Count(n) => write!(f, "{n}"),
            MaxDeletes::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl MaxDeletes {
    fn limit(self, below: usize) -> usize {
        match self {
            MaxDeletes::Count(n) => n,
            MaxDeletes::Percent(p) => (below as f64 * p / 100.0).floor() as usize,
        }
    }
}

/// `--sync BASE`: the feed is the whole of BASE's subtree.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    pub base: String,
    pub max_deletes: MaxDeletes,
}

/// What the caller shows while a feed runs.
pub trait Observer {
    /// A file (or the sync's deletes) begins.
    fn start(&self, _name: &str) {}
    fn progress(&self, _p: Progress) {}
    /// A file (or the sync's deletes) is done.
    fn done(&self, _report: &ImportReport) {}
}

/// A feed that stopped: the reports of what ran, and why it stopped.
#[derive(Debug)]
pub struct FeedError {
    pub reports: Vec<ImportReport>,
    pub error: ImportError,
}

/// The names a feed holds.
#[derive(Default)]
struct Members {
    ndns: HashSet<String>,
    /// Records whose name could not be read.
    unreadable: usize,
}

impl Members {
    fn take(&mut self, writer: &Writer<'_>, item: &Item) {
        let dsa = writer.dsa();
        let name = |dn: &str| Dn::parse(dn).ok().map(|d| dsa.normalize_dn(&d));
        match item {
            Item::Content { dn, .. } => match name(dn) {
                Some(ndn) => {
                    self.ndns.insert(ndn);
                }
                None => self.unreadable += 1,
            },
            Item::Edit { dn, edit, .. } => {
                let Ok(parsed) = Dn::parse(dn) else {
                    self.unreadable += 1;
                    return;
                };
                self.ndns.insert(dsa.normalize_dn(&parsed));
                if let super::EditRecord::Rename {
                    new_rdn,
                    new_superior,
                    ..
                } = edit
                {
                    let parent = match new_superior {
                        Some(s) => Dn::parse(s).ok(),
                        None => parsed.parent(),
                    };
                    let rdn = Dn::parse(new_rdn)
                        .ok()
                        .and_then(|r| r.rdns().first().cloned());
                    match (parent, rdn) {
                        (Some(p), Some(r)) => {
                            self.ndns.insert(dsa.normalize_dn(&p.child(r)));
                        }
                        _ => self.unreadable += 1,
                    }
                }
            }
            // Deleted by the feed itself.
            Item::Delete { .. } => {}
            Item::Bad { .. } => self.unreadable += 1,
        }
    }
}

fn members(
    writer: &Writer<'_>,
    files: &[(String, PathBuf)],
    options: &ImportOptions,
) -> Result<Members, ImportError> {
    let mut m = Members::default();
    for (name, path) in files {
        let file = File::open(path).map_err(|e| ImportError::Open(name.clone(), e))?;
        let reader = BufReader::with_capacity(256 * 1024, file);
        match file_kind(name, path)? {
            Kind::Ldif => {
                for item in ldif_items(reader) {
                    m.take(writer, &item);
                }
            }
            Kind::Csv => {
                let rows =
                    csv_rows::items(reader, &writer.dsa().settings().suffix, &options.csv_map)
                        .map_err(|e| ImportError::Csv(format!("{name}: {e}")))?;
                for item in &rows.items {
                    m.take(writer, item);
                }
            }
        }
    }
    Ok(m)
}

/// What a sync would delete now: the entries below the base the feed does not name, children
/// before parents; and, once per reason, what it keeps although the feed does not name it.
struct Doomed {
    dns: Vec<String>,
    below: usize,
    kept: BTreeMap<String, usize>,
}

fn doomed(writer: &Writer<'_>, base_ndn: &str, members: &Members) -> Result<Doomed, ImportError> {
    let dsa = writer.dsa();
    let below = dsa.reader().below(base_ndn)?;
    let own = Dn::parse(writer.by())
        .ok()
        .filter(|d| !d.is_root())
        .map(|d| dsa.normalize_dn(&d));
    let mut keeps_children: HashSet<String> = HashSet::new();
    let mut kept = BTreeMap::new();
    let mut dns = Vec::new();
    for (_, e) in below.iter().rev() {
        let admin = e
            .values("onePagesRole")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"admin"));
        let reason = if members.ndns.contains(&e.ndn) {
            None
        } else if admin || own.as_deref() == Some(e.ndn.as_str()) {
            Some("administrators are never deleted by a sync")
        } else if keeps_children.contains(&e.ndn) {
            Some("holds entries the feed keeps")
        } else {
            dns.push(e.dn.clone());
            continue;
        };
        if let Some(r) = reason {
            *kept
                .entry(format!("not in the feed, kept: {r}"))
                .or_insert(0) += 1;
        }
        keeps_children.insert(parent_of(&e.ndn).to_string());
    }
    Ok(Doomed {
        dns,
        below: below.len(),
        kept,
    })
}

/// Imports the files of a feed in order; with a sync, then deletes what the feed left out
/// (see the module docs). Returns one report per file, and one for the sync's deletes. A
/// real run (not a dry run) is remembered as the directory's last import, with its outcome.
pub fn import_feed(
    writer: &Writer<'_>,
    files: &[(String, PathBuf)],
    options: &ImportOptions,
    observer: &dyn Observer,
) -> Result<Vec<ImportReport>, FeedError> {
    let dsa = writer.dsa();
    let started = dsa.now();
    let outcome = run_feed(writer, files, options, observer);
    if !options.dry_run {
        let note = run_note(writer, files, started, &outcome);
        if let Err(e) = dsa.note_run(Run::Import, &note) {
            tracing::warn!(error = %e, "the import ran but could not be noted as the last one");
        }
    }
    outcome
}

/// The note an import leaves: its files, its counts, and why it stopped if it did.
fn run_note(
    writer: &Writer<'_>,
    files: &[(String, PathBuf)],
    started: i64,
    outcome: &Result<Vec<ImportReport>, FeedError>,
) -> RunNote {
    let (reports, error) = match outcome {
        Ok(r) => (r.as_slice(), None),
        Err(e) => (e.reports.as_slice(), Some(e.error.to_string())),
    };
    let mut counts = BTreeMap::new();
    let mut add = |k: &str, v: usize| *counts.entry(k.to_string()).or_insert(0) += v as u64;
    for r in reports {
        add("records", r.records);
        add("added", r.added);
        add("changed", r.changed);
        add("unchanged", r.unchanged);
        add("deleted", r.deleted);
        add("refused", r.refused);
    }
    let names = files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let figures = |k: &str| counts.get(k).copied().unwrap_or(0);
    let summary = match &error {
        None => format!(
            "{names}: {} records, {} added, {} changed, {} deleted, {} refused",
            figures("records"),
            figures("added"),
            figures("changed"),
            figures("deleted"),
            figures("refused")
        ),
        Some(e) => format!("{names}: stopped: {e}"),
    };
    RunNote {
        started,
        finished: writer.dsa().now(),
        ok: error.is_none(),
        by: if writer.by().is_empty() {
            "onepages import (offline)".into()
        } else {
            writer.by().to_string()
        },
        summary,
        counts,
    }
}

fn run_feed(
    writer: &Writer<'_>,
    files: &[(String, PathBuf)],
    options: &ImportOptions,
    observer: &dyn Observer,
) -> Result<Vec<ImportReport>, FeedError> {
    let stop = |reports, error| FeedError { reports, error };
    let mut prepared = None;
    let mut guard = None;
    if let Some(sync) = &options.sync {
        let dsa = writer.dsa();
        let base = Dn::parse(&sync.base).map_err(|e| {
            stop(
                Vec::new(),
                ImportError::Sync(format!("--sync {}: {e}", sync.base)),
            )
        })?;
        let base_ndn = dsa.normalize_dn(&base);
        if !is_within(&base_ndn, dsa.suffix_ndn()) {
            return Err(stop(
                Vec::new(),
                ImportError::Sync(format!(
                    "--sync {}: outside the naming context {}",
                    sync.base,
                    dsa.settings().suffix
                )),
            ));
        }
        match dsa.reader().exists(&base_ndn) {
            Ok(true) => {}
            Ok(false) => {
                return Err(stop(
                    Vec::new(),
                    ImportError::Sync(format!("--sync {}: no such entry", sync.base)),
                ))
            }
            Err(e) => return Err(stop(Vec::new(), e.into())),
        }
        let m = members(writer, files, options).map_err(|e| stop(Vec::new(), e))?;
        let d = doomed(writer, &base_ndn, &m).map_err(|e| stop(Vec::new(), e))?;
        let limit = sync.max_deletes.limit(d.below);
        if d.dns.len() > limit {
            let why = format!(
                "the feed would delete {} of the {} entries below it, more than \
                 --max-deletes {} ({limit}); {}. Check that the feed is complete, or raise \
                 --max-deletes",
                d.dns.len(),
                d.below,
                sync.max_deletes,
                if options.dry_run {
                    "a real run would refuse to start"
                } else {
                    "nothing was written"
                }
            );
            // A dry run goes on, to show what the sync would do, and reports the refusal.
            if !options.dry_run {
                return Err(stop(
                    Vec::new(),
                    ImportError::Sync(format!("--sync {}: {why}", sync.base)),
                ));
            }
            guard = Some(why);
        }
        prepared = Some((base_ndn, m, limit));
    }
    let mut reports = Vec::new();
    for (name, path) in files {
        observer.start(name);
        match import_file(writer, name, path, options, &|p| observer.progress(p)) {
            Ok(r) => {
                observer.done(&r);
                reports.push(r);
            }
            Err(e) => return Err(stop(reports, e)),
        }
    }
    let Some((base_ndn, m, limit)) = prepared else {
        return Ok(reports);
    };
    let sync = options.sync.clone().unwrap_or_default();
    let name = format!("--sync {}", sync.base);
    observer.start(&name);
    let d = match doomed(writer, &base_ndn, &m) {
        Ok(d) => d,
        Err(e) => return Err(stop(reports, e)),
    };
    let mut report = if m.unreadable > 0 {
        ImportReport {
            file: name.clone(),
            dry_run: options.dry_run,
            notes: BTreeMap::from([(
                format!(
                    "nothing deleted: {} records of the feed could not be read, so who it leaves \
                     out is not known (fix them and run the feed again)",
                    m.unreadable
                ),
                d.dns.len(),
            )]),
            ..ImportReport::default()
        }
    } else if d.dns.len() > limit && !options.dry_run {
        ImportReport {
            file: name.clone(),
            dry_run: options.dry_run,
            notes: BTreeMap::from([(
                format!(
                    "nothing deleted: after the feed's changes it would delete more than \
                     --max-deletes {} ({limit})",
                    sync.max_deletes
                ),
                d.dns.len(),
            )]),
            ..ImportReport::default()
        }
    } else {
        let items = d
            .dns
            .iter()
            .map(|dn| Item::Delete {
                line: 0,
                dn: dn.clone(),
            })
            .collect::<Vec<_>>();
        match import_items(writer, &name, options, items.into_iter(), &|t| {
            observer.progress(Progress {
                records: t.records,
                written: t.written,
                refused: t.refused,
                bytes: 0,
                total_bytes: 0,
            })
        }) {
            Ok(mut r) => {
                // Deletes are not records of the feed.
                r.records = 0;
                r
            }
            Err(e) => return Err(stop(reports, e)),
        }
    };
    report.notes.extend(d.kept);
    if let Some(why) = guard {
        report.refused += 1;
        report.issues.push(super::ImportIssue {
            file: name.clone(),
            line: 0,
            message: why,
        });
    }
    observer.done(&report);
    reports.push(report);
    Ok(reports)
}
