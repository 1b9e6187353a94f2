//! Writing the directory out: LDIF (RFC 2849, parents before children, what `import` and
//! OpenLDAP's `slapadd` read back) and CSV (the columns address-book administrators use).

use std::io::Write;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::directory::certificate::{pem_label, Held};
use crate::directory::entry::Entry;
use crate::dsa::{DsaError, Reader};

/// The first columns of the CSV export, in this order, when any entry has them; every other
/// attribute an exported entry holds follows, by name, so that importing the export changes
/// nothing (`import` reads the same layout).
pub const CSV_COLUMNS: &[&str] = &[
    "dn",
    "uid",
    "cn",
    "givenName",
    "sn",
    "displayName",
    "o",
    "company",
    "ou",
    "department",
    "title",
    "telephoneNumber",
    "mobile",
    "mail",
    "onePagesStatus",
    "onePagesAccountType",
];

/// What a CSV export wrote, and what CSV cannot hold.
#[derive(Debug, Default)]
pub struct CsvExport {
    pub entries: usize,
    /// Binary attributes (photos, certificates) left out, with how many entries had them:
    /// use LDIF to keep them.
    pub left_out: std::collections::BTreeMap<String, usize>,
    /// Values holding `|`, which an import reads as two values.
    pub with_bar: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Dsa(#[from] DsaError),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// RFC 2849 SAFE-STRING: printable ASCII not starting with space, ':' or '<', no trailing space.
fn is_safe(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let first_ok = !matches!(v.first(), Some(b' ' | b':' | b'<'));
    let last_ok = v.last() != Some(&b' ');
    first_ok && last_ok && v.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Writes `name: value` (or `name:: base64`), folded at 76 columns.
pub fn write_attr<W: Write>(out: &mut W, name: &str, value: &[u8]) -> std::io::Result<()> {
    let line = if is_safe(value) {
        format!("{name}: {}", String::from_utf8_lossy(value))
    } else {
        format!("{name}:: {}", B64.encode(value))
    };
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut width = 76;
    while start < bytes.len() {
        let end = (start + width).min(bytes.len());
        if start > 0 {
            out.write_all(b" ")?;
        }
        out.write_all(bytes.get(start..end).unwrap_or_default())?;
        out.write_all(b"\n")?;
        start = end;
        width = 75;
    }
    Ok(())
}

pub fn write_entry<W: Write>(out: &mut W, entry: &Entry) -> std::io::Result<()> {
    write_attr(out, "dn", entry.dn.as_bytes())?;
    for a in &entry.attrs {
        for v in &a.values {
            write_attr(out, &a.name, v)?;
        }
    }
    out.write_all(b"\n")
}

/// Depth of a normalised DN: how many RDNs it has.
fn depth(ndn: &str) -> usize {
    let mut n = 1;
    let mut escaped = false;
    for c in ndn.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, ',') => n += 1,
            _ => {}
        }
    }
    n
}

/// All entries, parents first, with the last sign-ins the server recorded.
fn ordered(reader: &Reader<'_>) -> Result<Vec<Entry>, DsaError> {
    let mut entries = reader
        .all_entries()
        .map(|r| {
            r.map(|(id, mut e)| {
                reader.merge_sign_in(id, &mut e);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| depth(&e.ndn));
    Ok(entries)
}

pub fn export_ldif<W: Write>(reader: &Reader<'_>, out: &mut W) -> Result<usize, ExportError> {
    // "version: 1" is optional, and slapadd reads it with a following blank line as an
    // empty record: leave it out so the export loads into OpenLDAP as it is.
    let entries = ordered(reader)?;
    for e in &entries {
        write_entry(out, e)?;
    }
    Ok(entries.len())
}

/// PEM cells with Unix line ends: a cell stays one kind of text in the file.
const LF: pem::EncodeConfig = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);

/// The people, contacts and service accounts (entries with a `uid` or a `mail`) as CSV: one
/// column per attribute any of them holds ([`CSV_COLUMNS`] first), several values joined by
/// `|`. Certificates are PEM text (one block per value: what a CSV import reads back); other
/// binary attributes cannot be CSV cells and are left out (counted).
pub fn export_csv<W: Write>(reader: &Reader<'_>, out: W) -> Result<CsvExport, ExportError> {
    let schema = reader.schema();
    let entries: Vec<Entry> = ordered(reader)?
        .into_iter()
        .filter(|e| e.get("uid").is_some() || e.get("mail").is_some())
        .collect();
    let mut report = CsvExport::default();
    let held = |name: &str| schema.attr(name).and_then(Held::of);
    let binary = |name: &str| {
        schema
            .attr(name)
            .is_some_and(|a| !a.syntax.is_human_readable())
            && !name.eq_ignore_ascii_case("userPassword")
            && held(name).is_none()
    };
    let mut rest: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for e in &entries {
        for a in &e.attrs {
            let name = schema.attr(&a.name).map_or(a.name.as_str(), |t| t.name());
            if binary(name) {
                *report.left_out.entry(name.to_string()).or_insert(0) += 1;
            } else if !CSV_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                rest.insert(name.to_string());
            }
        }
    }
    let columns: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| (*c).to_string())
        .filter(|c| c == "dn" || entries.iter().any(|e| e.get(c).is_some()))
        .chain(rest)
        .collect();
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&columns)?;
    for e in &entries {
        let row: Vec<String> = columns
            .iter()
            .map(|c| {
                if c == "dn" {
                    return e.dn.clone();
                }
                if let Some(held) = held(c) {
                    return e
                        .values(c)
                        .iter()
                        .map(|v| {
                            pem::encode_config(&pem::Pem::new(pem_label(held, v), v.clone()), LF)
                        })
                        .collect();
                }
                let values: Vec<String> = e
                    .values(c)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .collect();
                if values.iter().any(|v| v.contains('|')) {
                    report.with_bar += 1;
                }
                values.join("|")
            })
            .collect();
        w.write_record(&row)?;
        report.entries += 1;
    }
    w.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_values_are_base64_and_long_lines_fold() {
        let mut out = Vec::new();
        write_attr(&mut out, "cn", "Hélène".as_bytes()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "cn:: SMOpbMOobmU=\n");
        let mut out = Vec::new();
        write_attr(&mut out, "description", "x".repeat(200).as_bytes()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.len() <= 76));
        assert_eq!(depth("cn=a\\,b,dc=x"), 2);
    }
}
