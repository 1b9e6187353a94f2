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
pub mod ldif;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::directory::dn::Dn;
use crate::dsa::writer::Prepared;
use crate::dsa::{Change, DsaError, WriteRefusal, Writer};
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
    /// Entries created.
    pub added: usize,
    /// Entries replaced by a record that differs from them.
    pub changed: usize,
    /// Records identical to the stored entry (not rewritten).
    pub unchanged: usize,
    /// Entries written (added + changed).
    pub written: usize,
    pub deleted: usize,
    pub issues: Vec<ImportIssue>,
}

impl ImportReport {
    /// The counts on one line: `12 records: 3 added, 2 changed, 6 unchanged, 0 deleted,
    /// 1 refused`.
    pub fn summary(&self) -> String {
        format!(
            "{} records: {} added, {} changed, {} unchanged, {} deleted, {} refused",
            self.records,
            self.added,
            self.changed,
            self.unchanged,
            self.deleted,
            self.issues.len()
        )
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

struct Batcher<'a, 'd> {
    writer: &'a Writer<'d>,
    file: String,
    batch: Vec<Result<Prepared, WriteRefusal>>,
    lines: Vec<usize>,
    /// The line of each entry this import has written, by normalised DN: a record refused
    /// for a value an earlier record holds names that record's line.
    written_at: std::collections::HashMap<String, usize>,
    report: ImportReport,
}

impl Batcher<'_, '_> {
    fn issue(&mut self, line: usize, message: impl Into<String>) {
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
        let created: Vec<Option<String>> = batch
            .iter()
            .map(|p| {
                p.as_ref()
                    .ok()
                    .and_then(|p| p.created_ndn())
                    .map(String::from)
            })
            .collect();
        let plan = self.writer.plan(batch)?;
        let applied = self.writer.apply(plan)?;
        let mut refused = applied.refused.iter().map(|(pos, _)| *pos).peekable();
        for (pos, ndn) in created.into_iter().enumerate() {
            if refused.peek() == Some(&pos) {
                refused.next();
                continue;
            }
            if let (Some(ndn), Some(line)) = (ndn, lines.get(pos)) {
                self.written_at.entry(ndn).or_insert(*line);
            }
        }
        for (pos, why) in &applied.refused {
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
        self.report.added += applied.added;
        self.report.changed += applied.replaced;
        self.report.unchanged += applied.unchanged;
        self.report.written += applied.added + applied.replaced;
        self.report.deleted += applied.deleted;
        Ok(())
    }

    fn take(&mut self, item: Ready) -> Result<(), DsaError> {
        self.report.records += 1;
        match item {
            Ready::Bad { line, message } => self.issue(line, message),
            Ready::Change { line, change } => {
                self.batch.push(change);
                self.lines.push(line);
            }
            Ready::Delete { line, dn } => {
                // A delete may name an entry written earlier in this batch.
                self.flush()?;
                match Dn::parse(&dn) {
                    Ok(dn) => {
                        self.batch.push(self.writer.prepare(Change::Delete { dn }));
                        self.lines.push(line);
                    }
                    Err(e) => self.issue(line, e.to_string()),
                }
            }
        }
        if self.batch.len() >= BATCH {
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

impl Ready {
    /// Parses the DN and prepares the record through the writer (password policy, schema
    /// checks, stamps): the work that needs no look-up, done off the writing thread.
    fn of(writer: &Writer<'_>, item: Item) -> Ready {
        match item {
            Item::Content { line, dn, attrs } => match Dn::parse(&dn) {
                Ok(dn) => Ready::Change {
                    line,
                    change: writer.prepare(Change::Import { dn, attrs }),
                },
                Err(e) => Ready::Bad {
                    line,
                    message: e.to_string(),
                },
            },
            Item::Delete { line, dn } => Ready::Delete { line, dn },
            Item::Bad { line, message } => Ready::Bad { line, message },
        }
    }
}

/// Imports one file (type by extension), reporting progress in records.
pub fn import_file(
    writer: &Writer<'_>,
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
        "ldif" | "ldf" => import_items(writer, &name, ldif_items(reader), progress),
        "csv" => {
            let items = csv_rows::items(reader, &writer.dsa().settings().suffix)
                .map_err(|e| ImportError::Csv(format!("{name}: {e}")))?;
            import_items(writer, &name, items.into_iter(), progress)
        }
        _ => Err(ImportError::UnknownType(name)),
    }
}

/// Imports LDIF text (the embedded demo directory uses this).
pub fn import_ldif_text(
    writer: &Writer<'_>,
    name: &str,
    text: &str,
) -> Result<ImportReport, ImportError> {
    import_items(writer, name, ldif_items(text.as_bytes()), &|_| {})
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

/// Records handed from the reading thread to the writing one at a time.
const HAND_OVER: usize = 256;

/// Reads and checks records on one thread while this one writes them: parsing, password
/// hashing and schema checks overlap the store writes.
fn import_items(
    writer: &Writer<'_>,
    file: &str,
    items: impl Iterator<Item = Item> + Send,
    progress: &dyn Fn(usize),
) -> Result<ImportReport, ImportError> {
    let mut b = Batcher {
        writer,
        file: file.to_string(),
        batch: Vec::new(),
        lines: Vec::new(),
        written_at: std::collections::HashMap::new(),
        report: ImportReport::default(),
    };
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Ready>>(4);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(HAND_OVER);
            for item in items {
                chunk.push(Ready::of(writer, item));
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
            for ready in chunk {
                b.take(ready)?;
                if b.report.records.is_multiple_of(BATCH) {
                    progress(b.report.records);
                }
            }
        }
        Ok(())
    })?;
    b.flush()?;
    progress(b.report.records);
    writer.dsa().sync_index()?;
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
        let grant = dsa.operator_grant().unwrap();
        let w = dsa.writer(&grant);
        let text = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: one-mail\no: O\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: uid=m@oneid.on.ca,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n\
             cn: M\nsn: M\nuserCertificate;binary:: MIIBAAECAwQ=\nuserSMIMECertificate:: AAEC\n\
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
        assert_eq!(
            e.values("userCertificate"),
            [vec![0x30, 0x82, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04]]
        );
        assert_eq!(e.values("photo"), [vec![0u8, 1, 2]]);
        assert!(e.get("oneMailSecure").is_none());
    }
}
