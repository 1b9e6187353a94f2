//! Bulk loading: LDIF (RFC 2849) and CSV files into an open data directory.
//!
//! Records are checked one by one (DN, schema, passwords) and written in batches of
//! [`BATCH`] as single atomic store writes: a record is either fully written or not at all,
//! and a crash mid-import leaves whole batches. A bad record is reported with its file and
//! line and skipped; the import carries on with the next one. Content records upsert: an entry
//! with the same DN is replaced, keeping its `entryUUID` and creation stamps, unless the record
//! says nothing new (the same values, the server's stamps aside), when it is left as it is and
//! counted as unchanged.

pub mod csv_rows;
pub mod feed;
pub mod ldif;
pub mod online;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::directory::dn::Dn;
use crate::directory::matching::generalized_seconds;
use crate::directory::schema::Unrecognized;
use crate::dsa::plan::DryRun;
use crate::dsa::writer::Prepared;
use crate::dsa::{Change, DsaError, EditKind, PlannedKind, WriteRefusal, Writer};
use ldif::{LdifReader, RecordKind};

/// Records per atomic write.
pub const BATCH: usize = 1000;
/// Records per atomic write of a background (online) import.
pub const BACKGROUND_BATCH: usize = 500;

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Nothing is written; the report says what would be.
    pub dry_run: bool,
    /// Attributes the schema lacks are left out (counted in the notes) instead of refusing
    /// their record: for migrations from servers with more schema.
    pub drop_unknown: bool,
    /// CSV: header spellings mapped to attributes (`First Name` -> `givenName`), on top of
    /// the common ones [`csv_rows`] knows.
    pub csv_map: Vec<(String, String)>,
    /// `--sync BASE`: entries below BASE that the feed leaves out are deleted after it.
    pub sync: Option<feed::SyncOptions>,
    /// Raised to stop the import at its next batch (an online import when the server stops).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Background work (an online import): its threads run at the lowest CPU priority, so
    /// that searches keep their latency (see [`crate::background`]).
    pub background: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportIssue {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ImportIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// One change an import makes (or, in a dry run, would make).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportChange {
    pub line: usize,
    /// `add`, `change` or `delete`.
    pub kind: String,
    pub dn: String,
    /// For a change: the attributes whose values change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
}

impl std::fmt::Display for ImportChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.dn)?;
        if !self.attributes.is_empty() {
            write!(f, " ({})", self.attributes.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub file: String,
    pub dry_run: bool,
    pub records: usize,
    /// Entries created.
    pub added: usize,
    /// Entries replaced by a record that differs from them.
    pub changed: usize,
    /// Records identical to the stored entry (not rewritten).
    pub unchanged: usize,
    /// Entries written (added + changed).
    pub written: usize,
    pub deleted: usize,
    pub refused: usize,
    pub issues: Vec<ImportIssue>,
    /// What was left out of the records, once per reason with a count ("oneMailSecure:
    /// computed by the server, dropped" x 200).
    pub notes: BTreeMap<String, usize>,
    /// Dry run: every add, change and delete the import would make, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ImportChange>,
}

impl ImportReport {
    /// The counts on one line: `12 records: 3 added, 2 changed, 6 unchanged, 0 deleted,
    /// 1 refused` (with "would be" for a dry run).
    pub fn summary(&self) -> String {
        let counts = format!(
            "{} added, {} changed, {} unchanged, {} deleted, {} refused",
            self.added, self.changed, self.unchanged, self.deleted, self.refused
        );
        if self.dry_run {
            format!(
                "{} records (dry run, nothing written): would be {counts}",
                self.records
            )
        } else {
            format!("{} records: {counts}", self.records)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Open(String, std::io::Error),
    #[error("{0}: unknown file type; use .ldif or .csv")]
    UnknownType(String),
    #[error(transparent)]
    Dsa(#[from] DsaError),
    #[error("{0}")]
    Csv(String),
    #[error("the import was stopped (the server is shutting down); the batches written stay")]
    Cancelled,
    /// A sync that cannot start (its base, or the delete guard).
    #[error("{0}")]
    Sync(String),
}

/// What a file holds, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ldif,
    Csv,
}

/// The kind of `path` (shown as `name`): `.ldif`/`.ldf` or `.csv`.
pub fn file_kind(name: &str, path: &Path) -> Result<Kind, ImportError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "ldif" | "ldf" => Ok(Kind::Ldif),
        "csv" => Ok(Kind::Csv),
        _ => Err(ImportError::UnknownType(name.to_string())),
    }
}

/// A record ready to write, or to delete.
pub enum Item {
    Content {
        line: usize,
        dn: String,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Delete {
        line: usize,
        dn: String,
    },
    /// LDIF `changetype: modify` or `modrdn`: a change of an existing entry.
    Edit {
        line: usize,
        dn: String,
        edit: EditRecord,
    },
    Bad {
        line: usize,
        message: String,
    },
}

/// What an LDIF change record of an existing entry asks.
pub enum EditRecord {
    Modify(Vec<crate::dsa::Edit>),
    Rename {
        new_rdn: String,
        delete_old_rdn: bool,
        new_superior: Option<String>,
    },
}

struct Batcher<'a, 'd> {
    writer: &'a Writer<'d>,
    file: String,
    batch: Vec<Result<Prepared, WriteRefusal>>,
    lines: Vec<usize>,
    /// The line of each entry this import has written, by normalised DN: a record refused
    /// for a value an earlier record holds names that record's line.
    written_at: std::collections::HashMap<String, usize>,
    /// A dry run's state across batches (`None`: batches are applied).
    dry: Option<DryRun>,
    /// The entries the pending batch creates, replaces, changes or removes (normalised DNs):
    /// a delete or an edit of one of them waits for the batch to be written.
    pending: std::collections::HashSet<String>,
    /// Whether each written batch waits for the index (background imports).
    pace: bool,
    report: ImportReport,
}

impl Batcher<'_, '_> {
    /// Records per write: smaller for background imports, whose batches are each waited for
    /// by the index (the entries searches walk unindexed meanwhile).
    fn batch_size(&self) -> usize {
        if self.pace {
            BACKGROUND_BATCH
        } else {
            BATCH
        }
    }

    fn issue(&mut self, line: usize, message: impl Into<String>) {
        self.report.refused += 1;
        self.report.issues.push(ImportIssue {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }

    fn flush(&mut self) -> Result<(), DsaError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = std::mem::take(&mut self.lines);
        self.pending.clear();
        let created: Vec<Option<String>> = batch
            .iter()
            .map(|p| {
                p.as_ref()
                    .ok()
                    .and_then(|p| p.created_ndn())
                    .map(String::from)
            })
            .collect();
        let refused = match &mut self.dry {
            Some(dry) => {
                let plan = self.writer.plan_dry(batch, dry)?;
                for c in plan.changes() {
                    let line = lines.get(c.pos).copied().unwrap_or(0);
                    let kind = match c.kind {
                        PlannedKind::Add => {
                            self.report.added += 1;
                            "add"
                        }
                        PlannedKind::Replace => {
                            self.report.changed += 1;
                            "change"
                        }
                        PlannedKind::Unchanged => {
                            self.report.unchanged += 1;
                            continue;
                        }
                        PlannedKind::Delete => {
                            self.report.deleted += 1;
                            "delete"
                        }
                        PlannedKind::Restore => {
                            self.report.added += 1;
                            "restore"
                        }
                    };
                    self.report.changes.push(ImportChange {
                        line,
                        kind: kind.to_string(),
                        dn: c.dn.to_string(),
                        attributes: c.changed.to_vec(),
                    });
                }
                plan.refusals()
            }
            None => {
                let plan = self.writer.plan(batch)?;
                let applied = self.writer.apply(plan)?;
                if self.pace {
                    // Background work: the next batch waits until this one is searchable, so
                    // that searches never walk more than one batch of not-yet-indexed entries.
                    self.writer.dsa().sync_index()?;
                }
                self.report.added += applied.added;
                self.report.changed += applied.replaced;
                self.report.unchanged += applied.unchanged;
                self.report.written += applied.added + applied.replaced;
                self.report.deleted += applied.deleted;
                applied.refused
            }
        };
        let mut refused_at = refused.iter().map(|(pos, _)| *pos).peekable();
        for (pos, ndn) in created.into_iter().enumerate() {
            if refused_at.peek() == Some(&pos) {
                refused_at.next();
                continue;
            }
            if let (Some(ndn), Some(line)) = (ndn, lines.get(pos)) {
                self.written_at.entry(ndn).or_insert(*line);
            }
        }
        for (pos, why) in &refused {
            let line = lines.get(*pos).copied().unwrap_or(0);
            let mut message = why.to_string();
            if let WriteRefusal::Taken { holder, .. } = why {
                let schema = self.writer.dsa().schema();
                let earlier = Dn::parse(holder)
                    .ok()
                    .and_then(|dn| self.written_at.get(&dn.normalize(schema)));
                match earlier {
                    Some(at) => message.push_str(&format!(" (the record at line {at})")),
                    None => message.push_str(" (an entry already in the directory)"),
                }
            }
            self.issue(line, message);
        }
        Ok(())
    }

    /// Queues a change of an existing entry; if the pending batch writes that entry, the
    /// batch is written first (the change needs the entry as the batch leaves it).
    fn after_pending(&mut self, line: usize, change: Change) -> Result<(), DsaError> {
        let dn = match &change {
            Change::Delete { dn } | Change::Modify { dn, .. } | Change::Rename { dn, .. } => {
                Some(dn)
            }
            _ => None,
        };
        if let Some(dn) = dn {
            let ndn = self.writer.dsa().normalize_dn(dn);
            if self.pending.contains(&ndn) {
                self.flush()?;
            }
            // A plan reads each entry it changes from the store: a second change of the same
            // entry must wait for the batch holding the first.
            self.pending.insert(ndn);
        }
        if let Change::Rename {
            dn,
            new_rdn,
            new_superior,
            ..
        } = &change
        {
            let parent = new_superior
                .clone()
                .or_else(|| dn.parent())
                .unwrap_or_else(Dn::root);
            let new_dn = parent.child(new_rdn.clone());
            self.pending.insert(self.writer.dsa().normalize_dn(&new_dn));
        }
        self.batch.push(self.writer.prepare(change));
        self.lines.push(line);
        Ok(())
    }

    fn take(&mut self, item: Ready) -> Result<(), DsaError> {
        self.report.records += 1;
        match item {
            Ready::Bad { line, message } => self.issue(line, message),
            Ready::Change {
                line,
                change,
                dropped,
            } => {
                for note in dropped {
                    *self.report.notes.entry(note).or_insert(0) += 1;
                }
                if let Some(ndn) = change.as_ref().ok().and_then(|p| p.created_ndn()) {
                    let ndn = ndn.to_string();
                    // Compared with the entry as the pending batch leaves it.
                    if self.pending.contains(&ndn) {
                        self.flush()?;
                    }
                    self.pending.insert(ndn);
                }
                self.batch.push(change);
                self.lines.push(line);
            }
            Ready::Delete { line, dn } => match Dn::parse(&dn) {
                Ok(dn) => self.after_pending(line, Change::Delete { dn })?,
                Err(e) => self.issue(line, e.to_string()),
            },
            Ready::Edit { line, change } => self.after_pending(line, change)?,
        }
        if self.batch.len() >= self.batch_size() {
            self.flush()?;
        }
        Ok(())
    }
}

/// A record checked and ready to write (made on the reading thread).
enum Ready {
    Change {
        line: usize,
        change: Result<Prepared, WriteRefusal>,
        /// Notes on what was left out of the record.
        dropped: Vec<String>,
    },
    Delete {
        line: usize,
        dn: String,
    },
    Edit {
        line: usize,
        change: Change,
    },
    Bad {
        line: usize,
        message: String,
    },
}

/// A record's attributes with their values.
type Attrs = Vec<(String, Vec<Vec<u8>>)>;

/// Leaves out of a record what an import does not store (noted once per attribute):
/// computed attributes (an `ldapsearch '*'` dump's `oneMailSecure`, `entryCSN`...) and, with
/// `drop_unknown`, attributes the schema lacks.
fn sift(writer: &Writer<'_>, options: &ImportOptions, attrs: Attrs) -> (Attrs, Vec<String>) {
    let schema = writer.dsa().schema();
    let mut kept = Vec::with_capacity(attrs.len());
    let mut dropped = Vec::new();
    // The last sign-in, from whichever of its spellings the record carries: the latest.
    let mut sign_in: Option<(i64, Vec<u8>)> = None;
    for (name, values) in attrs {
        let base = name.split(';').next().unwrap_or(&name).to_string();
        if SIGN_IN_SPELLINGS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&base))
        {
            if !base.eq_ignore_ascii_case("onePagesLastSignIn") {
                dropped.push(format!("{base}: read as onePagesLastSignIn"));
            }
            for v in values {
                let at = std::str::from_utf8(&v).ok().and_then(generalized_seconds);
                match at {
                    Some(t) if sign_in.as_ref().is_none_or(|(s, _)| t > *s) => {
                        sign_in = Some((t, v));
                    }
                    Some(_) => {}
                    // Not a time: left for the schema check to name.
                    None if sign_in.is_none() => sign_in = Some((i64::MIN, v)),
                    None => {}
                }
            }
            continue;
        }
        if let Some(why) = crate::directory::validate::dropped_on_import(schema, &base) {
            dropped.push(format!("{base}: {why}, left out"));
            continue;
        }
        if let (true, Err(why)) = (options.drop_unknown, schema.describe(&name)) {
            dropped.push(match why {
                Unrecognized::Type(_) => {
                    format!("{base}: not in the schema, left out (--drop-unknown)")
                }
                // A tagged value (`description;lang-fr`): this directory holds none.
                why => format!("{why}, left out (--drop-unknown)"),
            });
            continue;
        }
        kept.push((name, values));
    }
    if let Some((_, value)) = sign_in {
        kept.push(("onePagesLastSignIn".to_string(), vec![value]));
    }
    (kept, dropped)
}

/// Where another server keeps the last sign-in: ours, OpenLDAP lastbind's, ppolicy's.
const SIGN_IN_SPELLINGS: [&str; 3] = ["onePagesLastSignIn", "authTimestamp", "pwdLastSuccess"];

impl Ready {
    /// Parses the DN and prepares the record through the writer (password policy, schema
    /// checks, stamps): the work that needs no look-up, done off the writing thread.
    fn of(writer: &Writer<'_>, options: &ImportOptions, item: Item) -> Ready {
        match item {
            Item::Content { line, dn, attrs } => match Dn::parse(&dn) {
                Ok(dn) => {
                    let (attrs, dropped) = sift(writer, options, attrs);
                    Ready::Change {
                        line,
                        change: writer.prepare(Change::Import { dn, attrs }),
                        dropped,
                    }
                }
                Err(e) => Ready::Bad {
                    line,
                    message: e.to_string(),
                },
            },
            Item::Delete { line, dn } => Ready::Delete { line, dn },
            Item::Edit { line, dn, edit } => match edit_change(&dn, edit) {
                Ok(change) => Ready::Edit { line, change },
                Err(message) => Ready::Bad { line, message },
            },
            Item::Bad { line, message } => Ready::Bad { line, message },
        }
    }
}

/// How far an import of a file has got.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub records: usize,
    /// Records written (added or changed) and refused so far.
    pub written: usize,
    pub refused: usize,
    /// Bytes of the file behind the records handled so far (estimated for CSV).
    pub bytes: u64,
    pub total_bytes: u64,
}

/// The counts of an import under way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub records: usize,
    pub written: usize,
    pub refused: usize,
}

impl Tally {
    fn of(r: &ImportReport) -> Tally {
        Tally {
            records: r.records,
            written: r.written + r.deleted,
            refused: r.refused,
        }
    }
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Imports one file (type by extension; shown as `name`), reporting progress.
pub fn import_file(
    writer: &Writer<'_>,
    name: &str,
    path: &Path,
    options: &ImportOptions,
    progress: &dyn Fn(Progress),
) -> Result<ImportReport, ImportError> {
    let name = name.to_string();
    let kind = file_kind(&name, path)?;
    let file = File::open(path).map_err(|e| ImportError::Open(name.clone(), e))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        read: std::sync::Arc::clone(&read),
    };
    let reader = BufReader::with_capacity(256 * 1024, counting);
    match kind {
        Kind::Ldif => {
            let at = |t: Tally| Progress {
                records: t.records,
                written: t.written,
                refused: t.refused,
                bytes: read.load(std::sync::atomic::Ordering::Relaxed),
                total_bytes,
            };
            import_items(writer, &name, options, ldif_items(reader), &|t| {
                progress(at(t));
            })
        }
        Kind::Csv => {
            let rows = csv_rows::items(reader, &writer.dsa().settings().suffix, &options.csv_map)
                .map_err(|e| ImportError::Csv(format!("{name}: {e}")))?;
            check_header(writer, &name, options, &rows.attributes)?;
            let total = rows.items.len().max(1) as u64;
            import_items(writer, &name, options, rows.items.into_iter(), &|t| {
                progress(Progress {
                    records: t.records,
                    written: t.written,
                    refused: t.refused,
                    bytes: total_bytes * (t.records as u64).min(total) / total,
                    total_bytes,
                });
            })
        }
    }
}

/// The writer's change for an LDIF modify or modrdn record.
fn edit_change(dn: &str, edit: EditRecord) -> Result<Change, String> {
    let dn = Dn::parse(dn).map_err(|e| e.to_string())?;
    Ok(match edit {
        EditRecord::Modify(edits) => Change::Modify { dn, edits },
        EditRecord::Rename {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            let parsed = Dn::parse(&new_rdn).map_err(|e| format!("newrdn: {e}"))?;
            let rdn = match parsed.rdns() {
                [one] => one.clone(),
                [] => return Err("newrdn is empty".into()),
                _ => return Err(format!("newrdn '{new_rdn}' is more than one RDN")),
            };
            let new_superior = match new_superior {
                Some(s) => Some(Dn::parse(&s).map_err(|e| format!("newsuperior: {e}"))?),
                None => None,
            };
            Change::Rename {
                dn,
                new_rdn: rdn,
                delete_old_rdn,
                new_superior,
            }
        }
    })
}

/// A CSV header naming attributes the schema lacks is refused once, for the whole file (not
/// on every row), unless `--drop-unknown` leaves those columns out.
fn check_header(
    writer: &Writer<'_>,
    name: &str,
    options: &ImportOptions,
    attributes: &[String],
) -> Result<(), ImportError> {
    if options.drop_unknown {
        return Ok(());
    }
    let schema = writer.dsa().schema();
    let unknown: Vec<String> = attributes
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.eq_ignore_ascii_case("dn") && schema.describe(a).is_err())
        .map(|(i, a)| format!("'{a}' (column {})", i + 1))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ImportError::Csv(format!(
        "{name}: line 1: the header names {} that the schema does not have (or with an option \
         other than ;binary, which this directory does not hold): map a column with \
         --map 'Header=attribute', or leave it out with --drop-unknown",
        unknown.join(", ")
    )))
}

/// Imports LDIF text (the embedded demo directory uses this).
pub fn import_ldif_text(
    writer: &Writer<'_>,
    name: &str,
    text: &str,
) -> Result<ImportReport, ImportError> {
    import_items(
        writer,
        name,
        &ImportOptions::default(),
        ldif_items(text.as_bytes()),
        &|_| {},
    )
}

fn ldif_items<R: std::io::BufRead>(reader: R) -> impl Iterator<Item = Item> {
    LdifReader::new(reader).map(|r| match r {
        Ok(rec) => match rec.kind {
            RecordKind::Content { attrs } => Item::Content {
                line: rec.line,
                dn: rec.dn,
                attrs,
            },
            RecordKind::Delete => Item::Delete {
                line: rec.line,
                dn: rec.dn,
            },
            RecordKind::Modify { edits } => {
                let mut out = Vec::with_capacity(edits.len());
                for m in edits {
                    let kind = match m.op.as_str() {
                        "add" => EditKind::Add,
                        "delete" => EditKind::Delete,
                        "replace" => EditKind::Replace,
                        _ => EditKind::Increment,
                    };
                    out.push(crate::dsa::Edit {
                        kind,
                        attr: m.attr,
                        values: m.values,
                    });
                }
                Item::Edit {
                    line: rec.line,
                    dn: rec.dn,
                    edit: EditRecord::Modify(out),
                }
            }
            RecordKind::ModRdn {
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => Item::Edit {
                line: rec.line,
                dn: rec.dn,
                edit: EditRecord::Rename {
                    new_rdn,
                    delete_old_rdn,
                    new_superior,
                },
            },
        },
        Err(e) => Item::Bad {
            line: e.line,
            message: e.message,
        },
    })
}

/// Records handed from the reading thread to the writing one at a time.
const HAND_OVER: usize = 256;

/// Reads and checks records on one thread while this one writes them: parsing, password
/// hashing and schema checks overlap the store writes.
fn import_items(
    writer: &Writer<'_>,
    file: &str,
    options: &ImportOptions,
    items: impl Iterator<Item = Item> + Send,
    progress: &dyn Fn(Tally),
) -> Result<ImportReport, ImportError> {
    let mut b = Batcher {
        writer,
        file: file.to_string(),
        batch: Vec::new(),
        lines: Vec::new(),
        written_at: std::collections::HashMap::new(),
        dry: options.dry_run.then(|| writer.dry_run()),
        pending: std::collections::HashSet::new(),
        pace: options.background,
        report: ImportReport {
            file: file.to_string(),
            dry_run: options.dry_run,
            ..ImportReport::default()
        },
    };
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Ready>>(4);
        scope.spawn(move || {
            if options.background {
                crate::background::lower_priority(crate::background::BACKGROUND);
            }
            let mut chunk = Vec::with_capacity(HAND_OVER);
            for item in items {
                chunk.push(Ready::of(writer, options, item));
                if chunk.len() >= HAND_OVER {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(HAND_OVER));
                    if tx.send(full).is_err() {
                        // The writer stopped on an error: stop reading.
                        return;
                    }
                }
            }
            let _ = tx.send(chunk);
        });
        for chunk in rx {
            if options
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            {
                return Err(ImportError::Cancelled);
            }
            for ready in chunk {
                b.take(ready)?;
                if b.report.records.is_multiple_of(BATCH) {
                    progress(Tally::of(&b.report));
                }
            }
        }
        Ok(())
    })?;
    b.flush()?;
    progress(Tally::of(&b.report));
    if !options.dry_run {
        writer.dsa().sync_index()?;
    }
    Ok(b.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &str = "dc=one-mail,dc=on,dc=ca";

    fn open() -> (tempfile::TempDir, crate::dsa::Dsa) {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load_from(
            None,
            &[],
            &crate::config::Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                listen: Some("127.0.0.1:0".into()),
                suffix: None,
            },
        )
        .unwrap();
        let (dsa, _) = crate::dsa::Dsa::open(settings, "test", &|_| {}).unwrap();
        (dir, dsa)
    }

    /// More records than one hand-over and one batch, with bad records and a delete spread
    /// among them: every good record is written, every bad one reported at its line, in order.
    #[test]
    fn reports_bad_records_by_line_across_hand_overs() {
        let (_dir, dsa) = open();
        let mut ldif = Vec::new();
        crate::gen::write_ldif(&mut ldif, &crate::gen::people(1200, 7), SUFFIX).unwrap();
        let mut text = String::from_utf8(ldif).unwrap();
        let people = text.matches("\ndn: uid=").count();
        let mut bad_lines = Vec::new();
        for (n, marker) in [(3, "A"), (700, "B"), (1199, "C")] {
            let line = text.lines().count() + 2;
            bad_lines.push(line);
            text.push_str(&format!(
                "\ndn: uid=bad{n}{marker},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: No Surname\n"
            ));
        }
        let first_dn = text
            .lines()
            .find(|l| l.starts_with("dn: uid="))
            .unwrap()
            .trim_start_matches("dn: ")
            .to_string();
        text.push_str(&format!("\ndn: {first_dn}\nchangetype: delete\n"));
        let grant = dsa.operator_grant().unwrap();
        let report = import_ldif_text(&dsa.writer(&grant), "t.ldif", &text).unwrap();
        let lines: Vec<usize> = report.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, bad_lines, "{:?}", report.issues);
        assert!(report.issues.iter().all(|i| i.file == "t.ldif"));
        assert_eq!(report.deleted, 1);
        assert_eq!(report.records, report.written + 3 + 1);
        assert_eq!((report.added, report.changed), (report.written, 0));
        assert!(report.written > people);
        let ndn = dsa.normalize_dn(&Dn::parse(&first_dn).unwrap());
        assert!(dsa.reader().entry(&ndn).unwrap().is_none());
        assert_eq!(dsa.entry_count(), report.written - 1);
    }

    /// Issue 15: the standard person attributes of RFC 2798 and RFC 4519 load (binary ones
    /// with the `;binary` transfer option too), and a dump's computed attributes are dropped.
    #[test]
    fn standard_person_attributes_load() {
        let (_dir, dsa) = open();
        use base64::Engine;
        let grant = dsa.operator_grant().unwrap();
        let w = dsa.writer(&grant);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let p7 = crate::directory::certificate::certs_only_signed_data(&[&der]).unwrap();
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        let (cert, smime) = (b64(&der), b64(&p7));
        let text = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: one-mail\no: O\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: uid=m@oneid.on.ca,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n\
             cn: M\nsn: M\nuserCertificate;binary:: {cert}\nuserSMIMECertificate:: {smime}\n\
             userPKCS12:: AAEC\nphoto:: AAEC\nhomePostalAddress: 1 Main St$Toronto\n\
             x500UniqueIdentifier: '0101'B\npreferredDeliveryMethod: telephone\n\
             registeredAddress: 1 Main St$Toronto\noneMailSecure: TRUE\n\
             hasSubordinates: FALSE\n"
        );
        let report = import_ldif_text(&w, "m.ldif", &text).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(report.added, 3);
        let (_, e) = dsa
            .reader()
            .entry(&format!("uid=m@oneid.on.ca,ou=people,{SUFFIX}"))
            .unwrap()
            .unwrap();
        assert_eq!(e.values("userCertificate"), [der]);
        assert_eq!(e.values("userSMIMECertificate"), [p7]);
        assert_eq!(e.values("photo"), [vec![0u8, 1, 2]]);
        assert!(e.get("oneMailSecure").is_none());
    }

    /// Issue 15, point 2: LDIF modify and modrdn records are applied, in order with the rest
    /// of the file (a change of an entry the same batch creates waits for it).
    #[test]
    fn ldif_modify_and_modrdn_records_apply() {
        let (_dir, dsa) = open();
        let grant = dsa.operator_grant().unwrap();
        let w = dsa.writer(&grant);
        let p = format!("ou=people,{SUFFIX}");
        let text = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: one-mail\no: O\n\n\
             dn: {p}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: uid=a.b@oneid.on.ca,{p}\nobjectClass: inetOrgPerson\ncn: A B\nsn: B\n\
             description: old\n\n\
             dn: uid=a.b@oneid.on.ca,{p}\nchangetype: modify\nreplace: title\ntitle: Nurse\n-\n\
             add: mobile\nmobile: +1 416 555 0100\n-\ndelete: description\n-\n\n\
             dn: uid=a.b@oneid.on.ca,{p}\nchangetype: modrdn\nnewrdn: uid=a.c@oneid.on.ca\n\
             deleteoldrdn: 1\n\n\
             dn: uid=a.c@oneid.on.ca,{p}\nchangetype: modify\nreplace: title\ntitle: X\n\
             sn: oops\n\n"
        );
        let report = import_ldif_text(&w, "changes.ldif", &text).unwrap();
        assert_eq!(
            (report.added, report.changed),
            (3, 2),
            "{:?}",
            report.issues
        );
        assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
        assert_eq!(report.issues[0].line, 37, "the sn: line");
        assert!(report.issues[0].message.contains("'-' line is missing"));
        assert!(dsa
            .reader()
            .entry(&format!("uid=a.b@oneid.on.ca,{p}"))
            .unwrap()
            .is_none());
        let (_, e) = dsa
            .reader()
            .entry(&format!("uid=a.c@oneid.on.ca,{p}"))
            .unwrap()
            .unwrap();
        assert_eq!(e.first_str("title"), Some("Nurse"));
        assert_eq!(e.first_str("mobile"), Some("+1 416 555 0100"));
        assert!(e.get("description").is_none());
        assert_eq!(e.values("uid"), [b"a.c@oneid.on.ca".to_vec()]);
    }
}
