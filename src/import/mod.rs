//! Bulk loading: LDIF (RFC 2849) and CSV files into an open data directory.
//!
//! Records are checked one by one (DN, schema, passwords) and written in batches of
//! [`BATCH`] as single atomic store writes: a record is either fully written or not at all,
//! and a crash mid-import leaves whole batches. A bad record is reported with its file and
//! line and skipped; the import carries on with the next one. Content records upsert (an entry
//! with the same DN is replaced, keeping its creation stamps).

pub mod csv_rows;
pub mod ldif;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::directory::dn::Dn;
use crate::directory::password::{hash_password, is_supported_scheme, scheme_of};
use crate::directory::validate::{prepare, Source};
use crate::dsa::{stamp_created, Change, Dsa, DsaError};
use ldif::{LdifReader, RecordKind};

/// Records per atomic write.
pub const BATCH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssue {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ImportIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub records: usize,
    pub written: usize,
    pub deleted: usize,
    pub issues: Vec<ImportIssue>,
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
    Bad {
        line: usize,
        message: String,
    },
}

struct Batcher<'a> {
    dsa: &'a Dsa,
    file: String,
    changes: Vec<Change>,
    lines: Vec<usize>,
    report: ImportReport,
}

impl Batcher<'_> {
    fn issue(&mut self, line: usize, message: impl Into<String>) {
        self.report.issues.push(ImportIssue {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }

    fn flush(&mut self) -> Result<(), DsaError> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.changes);
        let lines = std::mem::take(&mut self.lines);
        let deletes: Vec<bool> = changes
            .iter()
            .map(|c| matches!(c, Change::Delete { .. }))
            .collect();
        let total = changes.len();
        let refused = self.dsa.apply(changes)?;
        let mut refused_deletes = 0;
        for (pos, why) in &refused {
            if deletes.get(*pos).copied().unwrap_or(false) {
                refused_deletes += 1;
            }
            let line = lines.get(*pos).copied().unwrap_or(0);
            self.issue(line, why.to_string());
        }
        let n_deletes = deletes.iter().filter(|d| **d).count();
        self.report.deleted += n_deletes - refused_deletes;
        self.report.written += total - n_deletes - (refused.len() - refused_deletes);
        Ok(())
    }

    fn take(&mut self, item: Item) -> Result<(), DsaError> {
        self.report.records += 1;
        match item {
            Item::Bad { line, message } => self.issue(line, message),
            Item::Content { line, dn, attrs } => match self.entry(&dn, attrs) {
                Ok(entry) => {
                    self.changes.push(Change::Upsert(entry));
                    self.lines.push(line);
                }
                Err(message) => self.issue(line, message),
            },
            Item::Delete { line, dn } => {
                // A delete may name an entry written earlier in this batch.
                self.flush()?;
                let parsed = match Dn::parse(&dn) {
                    Ok(d) => d,
                    Err(e) => {
                        self.issue(line, e.to_string());
                        return Ok(());
                    }
                };
                match self.dsa.store.get_by_ndn(&self.dsa.normalize_dn(&parsed))? {
                    Some((id, old)) => {
                        self.changes.push(Change::Delete { id, old });
                        self.lines.push(line);
                    }
                    None => self.issue(line, format!("cannot delete {dn}: no such entry")),
                }
            }
        }
        if self.changes.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn entry(
        &self,
        dn: &str,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    ) -> Result<crate::directory::entry::Entry, String> {
        let dn = Dn::parse(dn).map_err(|e| e.to_string())?;
        if dn.is_root() {
            return Err("the root DSE cannot be imported".into());
        }
        let mut checked = Vec::with_capacity(attrs.len());
        for (name, values) in attrs {
            if name.eq_ignore_ascii_case("userPassword") {
                let mut out = Vec::with_capacity(values.len());
                for v in values {
                    match scheme_of(&v) {
                        Some(s) if is_supported_scheme(&s) => out.push(v),
                        Some(s) => {
                            return Err(format!(
                                "userPassword uses the scheme {{{s}}}, which ONE Pages cannot \
                                 verify"
                            ))
                        }
                        None => out.push(
                            hash_password(&v, self.dsa.settings.argon2)
                                .map_err(|e| e.to_string())?
                                .into_bytes(),
                        ),
                    }
                }
                checked.push((name, out));
            } else {
                checked.push((name, values));
            }
        }
        let mut entry =
            prepare(&self.dsa.schema, &dn, checked, Source::Import).map_err(|e| e.to_string())?;
        stamp_created(&self.dsa.schema, &mut entry, "");
        Ok(entry)
    }
}

/// Imports one file (type by extension), reporting progress in records.
pub fn import_file(
    dsa: &Dsa,
    path: &Path,
    progress: &dyn Fn(usize),
) -> Result<ImportReport, ImportError> {
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let file = File::open(path).map_err(|e| ImportError::Open(name.clone(), e))?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    match ext.as_str() {
        "ldif" | "ldf" => import_items(dsa, &name, ldif_items(reader), progress),
        "csv" => {
            let items = csv_rows::items(reader, &dsa.settings.suffix)
                .map_err(|e| ImportError::Csv(format!("{name}: {e}")))?;
            import_items(dsa, &name, items.into_iter(), progress)
        }
        _ => Err(ImportError::UnknownType(name)),
    }
}

/// Imports LDIF text (the embedded demo directory uses this).
pub fn import_ldif_text(dsa: &Dsa, name: &str, text: &str) -> Result<ImportReport, ImportError> {
    import_items(dsa, name, ldif_items(text.as_bytes()), &|_| {})
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
        },
        Err(e) => Item::Bad {
            line: e.line,
            message: e.message,
        },
    })
}

fn import_items(
    dsa: &Dsa,
    file: &str,
    items: impl Iterator<Item = Item>,
    progress: &dyn Fn(usize),
) -> Result<ImportReport, ImportError> {
    let mut b = Batcher {
        dsa,
        file: file.to_string(),
        changes: Vec::new(),
        lines: Vec::new(),
        report: ImportReport::default(),
    };
    for item in items {
        b.take(item)?;
        if b.report.records.is_multiple_of(BATCH) {
            progress(b.report.records);
        }
    }
    b.flush()?;
    progress(b.report.records);
    dsa.index.flush().map_err(DsaError::from)?;
    Ok(b.report)
}
