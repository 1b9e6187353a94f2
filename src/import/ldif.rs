//! An RFC 2849 LDIF reader that streams records and keeps line numbers.
//!
//! Handles `version:`, comments, folded lines, `::` base64 values, `:<` file URLs, attribute
//! options, and the change records `changetype: add`, `delete`, `modify` (`add:`, `delete:`,
//! `replace:`, `increment:` groups ended by `-`) and `modrdn`/`moddn`. A bad line
//! spoils only its own record: the reader reports it with the line number and resumes at the
//! next record, so one typo does not hide the rest of the file's problems.

use std::io::BufRead;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// An entry to create or replace.
    Content {
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Delete,
    /// `changetype: modify`: the modifications, in order.
    Modify {
        edits: Vec<Modification>,
    },
    /// `changetype: modrdn` (or `moddn`).
    ModRdn {
        new_rdn: String,
        delete_old_rdn: bool,
        new_superior: Option<String>,
    },
}

/// One group of a modify record: `add:`/`delete:`/`replace:`/`increment:` an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modification {
    /// `add`, `delete`, `replace` or `increment`.
    pub op: String,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line of the record's `dn:`.
    pub line: usize,
    pub dn: String,
    pub kind: RecordKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LdifError {
    pub line: usize,
    pub message: String,
}

pub struct LdifReader<R> {
    input: R,
    line_no: usize,
    /// A physical line read ahead (line number, bytes without the newline).
    peeked: Option<(usize, Vec<u8>)>,
    eof: bool,
    first: bool,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(input: R) -> Self {
        LdifReader {
            input,
            line_no: 0,
            peeked: None,
            eof: false,
            first: true,
        }
    }

    fn next_physical(&mut self) -> std::io::Result<Option<(usize, Vec<u8>)>> {
        if let Some(p) = self.peeked.take() {
            return Ok(Some(p));
        }
        if self.eof {
            return Ok(None);
        }
        let mut buf = Vec::new();
        let n = self.input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            self.eof = true;
            return Ok(None);
        }
        self.line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some((self.line_no, buf)))
    }

    /// The next logical line (folded lines joined), skipping comments; `None` at a blank line
    /// or the end of input. The flag says whether the record ended at a blank line.
    fn next_logical(&mut self) -> std::io::Result<Option<(usize, Vec<u8>)>> {
        loop {
            let Some((no, line)) = self.next_physical()? else {
                return Ok(None);
            };
            if line.is_empty() {
                return Ok(None);
            }
            let mut logical = line;
            // Continuations: lines that start with one space.
            loop {
                match self.next_physical()? {
                    Some((n, next)) if next.first() == Some(&b' ') => {
                        logical.extend_from_slice(next.get(1..).unwrap_or_default());
                        let _ = n;
                    }
                    Some(other) => {
                        self.peeked = Some(other);
                        break;
                    }
                    None => break,
                }
            }
            if logical.first() == Some(&b'#') {
                continue;
            }
            return Ok(Some((no, logical)));
        }
    }

    /// Skips blank lines between records.
    fn skip_blank(&mut self) -> std::io::Result<bool> {
        loop {
            match self.next_physical()? {
                Some((_, l)) if l.is_empty() => continue,
                Some(other) => {
                    self.peeked = Some(other);
                    return Ok(true);
                }
                None => return Ok(false),
            }
        }
    }

    fn read_record(&mut self) -> Result<Option<Record>, LdifError> {
        let io = |e: std::io::Error, line| LdifError {
            line,
            message: format!("read error: {e}"),
        };
        let mut lines = Vec::new();
        while lines.is_empty() {
            // A block of comments alone is not a record: look further.
            if !self.skip_blank().map_err(|e| io(e, self.line_no))? {
                return Ok(None);
            }
            while let Some(l) = self.next_logical().map_err(|e| io(e, self.line_no))? {
                lines.push(l);
            }
        }
        if self.first {
            self.first = false;
            if lines
                .first()
                .is_some_and(|(_, l)| l.to_ascii_lowercase().starts_with(b"version:"))
            {
                let (no, l) = lines.remove(0);
                let v = String::from_utf8_lossy(l.get(8..).unwrap_or_default())
                    .trim()
                    .to_string();
                if v != "1" {
                    return Err(LdifError {
                        line: no,
                        message: format!("unsupported LDIF version '{v}'"),
                    });
                }
                if lines.is_empty() {
                    return self.read_record();
                }
            }
        }
        parse_record(lines)
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Record, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.read_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            // The broken record's lines are consumed already: the next call starts afresh.
            Err(e) => Some(Err(e)),
        }
    }
}

/// Splits `attr: value` / `attr:: base64` / `attr:< url`.
fn parse_line(no: usize, line: &[u8]) -> Result<(String, Vec<u8>), LdifError> {
    let err = |m: String| LdifError {
        line: no,
        message: m,
    };
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(|| err("expected 'attribute: value'".into()))?;
    let name = std::str::from_utf8(line.get(..colon).unwrap_or_default())
        .map_err(|_| err("attribute name is not text".into()))?
        .trim()
        .to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.')
    {
        return Err(err(format!("bad attribute name '{name}'")));
    }
    let rest = line.get(colon + 1..).unwrap_or_default();
    let value = match rest.first() {
        Some(b':') => {
            let text = String::from_utf8_lossy(rest.get(1..).unwrap_or_default())
                .trim()
                .to_string();
            B64.decode(text.as_bytes())
                .map_err(|e| err(format!("bad base64 value for {name}: {e}")))?
        }
        Some(b'<') => {
            let url = String::from_utf8_lossy(rest.get(1..).unwrap_or_default())
                .trim()
                .to_string();
            let path = url
                .strip_prefix("file://")
                .ok_or_else(|| err(format!("only file:// URLs are supported, not '{url}'")))?;
            std::fs::read(path).map_err(|e| err(format!("reading {path}: {e}")))?
        }
        _ => {
            let v = rest.strip_prefix(b" ").unwrap_or(rest);
            let start = v.iter().position(|b| *b != b' ').unwrap_or(v.len());
            v.get(start..).unwrap_or_default().to_vec()
        }
    };
    Ok((name, value))
}

fn parse_record(lines: Vec<(usize, Vec<u8>)>) -> Result<Option<Record>, LdifError> {
    let mut it = lines.into_iter();
    let Some((dn_line, first)) = it.next() else {
        return Ok(None);
    };
    let (name, dn_bytes) = parse_line(dn_line, &first)?;
    if !name.eq_ignore_ascii_case("dn") {
        return Err(LdifError {
            line: dn_line,
            message: format!("a record must start with 'dn:', not '{name}:'"),
        });
    }
    let dn = String::from_utf8(dn_bytes).map_err(|_| LdifError {
        line: dn_line,
        message: "the DN is not valid UTF-8".into(),
    })?;
    let mut changetype: Option<(usize, String)> = None;
    // The lines after the dn (and changetype): `-` separators kept as `None`.
    let mut body: Body = Vec::new();
    for (no, line) in it {
        if line.as_slice() == b"-" {
            body.push((no, None));
            continue;
        }
        let (name, value) = parse_line(no, &line)?;
        if name.eq_ignore_ascii_case("control") {
            continue;
        }
        if name.eq_ignore_ascii_case("changetype") {
            if changetype.is_some() || !body.is_empty() {
                return Err(LdifError {
                    line: no,
                    message: "changetype must come right after the dn".into(),
                });
            }
            changetype = Some((
                no,
                String::from_utf8_lossy(&value).trim().to_ascii_lowercase(),
            ));
            continue;
        }
        body.push((no, Some((name, value))));
    }
    let kind = match changetype {
        None => content(body)?,
        Some((_, ct)) if ct == "add" => content(body)?,
        Some((no, ct)) if ct == "delete" => {
            if !body.is_empty() {
                return Err(LdifError {
                    line: no,
                    message: "a delete record has no attributes".into(),
                });
            }
            RecordKind::Delete
        }
        Some((no, ct)) if ct == "modify" => modify(no, body)?,
        Some((no, ct)) if ct == "modrdn" || ct == "moddn" => modrdn(no, body)?,
        Some((no, ct)) => {
            return Err(LdifError {
                line: no,
                message: format!(
                    "changetype '{ct}' is not one of add, delete, modify, modrdn, moddn"
                ),
            })
        }
    };
    Ok(Some(Record {
        line: dn_line,
        dn,
        kind,
    }))
}

type Body = Vec<(usize, Option<(String, Vec<u8>)>)>;

fn content(body: Body) -> Result<RecordKind, LdifError> {
    let mut attrs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for (no, line) in body {
        let Some((name, value)) = line else {
            return Err(LdifError {
                line: no,
                message: "'-' belongs in a changetype: modify record".into(),
            });
        };
        match attrs
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some((_, values)) => values.push(value),
            None => attrs.push((name, vec![value])),
        }
    }
    Ok(RecordKind::Content { attrs })
}

fn modify(ct_line: usize, body: Body) -> Result<RecordKind, LdifError> {
    let mut edits: Vec<Modification> = Vec::new();
    let mut open: Option<Modification> = None;
    for (no, line) in body {
        match (line, open.as_mut()) {
            (None, Some(_)) => edits.extend(open.take()),
            (None, None) => {
                return Err(LdifError {
                    line: no,
                    message: "'-' ends a modification, and none is open".into(),
                })
            }
            (Some((name, value)), None) => {
                let op = name.to_ascii_lowercase();
                if !matches!(op.as_str(), "add" | "delete" | "replace" | "increment") {
                    return Err(LdifError {
                        line: no,
                        message: format!(
                            "a modification starts with add:, delete:, replace: or \
                             increment:, not '{name}:'"
                        ),
                    });
                }
                let attr = String::from_utf8_lossy(&value).trim().to_string();
                if attr.is_empty() {
                    return Err(LdifError {
                        line: no,
                        message: format!("{op}: names no attribute"),
                    });
                }
                open = Some(Modification {
                    op,
                    attr,
                    values: Vec::new(),
                });
            }
            (Some((name, value)), Some(m)) => {
                let base = name.split(';').next().unwrap_or(&name);
                let attr = m.attr.split(';').next().unwrap_or(&m.attr);
                if !base.eq_ignore_ascii_case(attr) {
                    return Err(LdifError {
                        line: no,
                        message: format!(
                            "'{name}:' inside the modification of {} (a '-' line is missing?)",
                            m.attr
                        ),
                    });
                }
                m.values.push(value);
            }
        }
    }
    edits.extend(open);
    if edits.is_empty() {
        return Err(LdifError {
            line: ct_line,
            message: "a modify record with no modification".into(),
        });
    }
    Ok(RecordKind::Modify { edits })
}

fn modrdn(ct_line: usize, body: Body) -> Result<RecordKind, LdifError> {
    let mut new_rdn = None;
    let mut delete_old_rdn = None;
    let mut new_superior = None;
    for (no, line) in body {
        let Some((name, value)) = line else {
            return Err(LdifError {
                line: no,
                message: "'-' belongs in a changetype: modify record".into(),
            });
        };
        let text = String::from_utf8_lossy(&value).trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "newrdn" if new_rdn.is_none() => new_rdn = Some(text),
            "deleteoldrdn" if delete_old_rdn.is_none() => {
                delete_old_rdn = Some(match text.as_str() {
                    "0" => false,
                    "1" => true,
                    _ => {
                        return Err(LdifError {
                            line: no,
                            message: format!("deleteoldrdn is 0 or 1, not '{text}'"),
                        })
                    }
                });
            }
            "newsuperior" if new_superior.is_none() => new_superior = Some(text),
            _ => {
                return Err(LdifError {
                    line: no,
                    message: format!(
                        "a modrdn record has newrdn:, deleteoldrdn: and newsuperior: once \
                         each, not '{name}:' here"
                    ),
                })
            }
        }
    }
    let (Some(new_rdn), Some(delete_old_rdn)) = (new_rdn, delete_old_rdn) else {
        return Err(LdifError {
            line: ct_line,
            message: "a modrdn record needs newrdn: and deleteoldrdn:".into(),
        });
    };
    Ok(RecordKind::ModRdn {
        new_rdn,
        delete_old_rdn,
        new_superior,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Record, LdifError>> {
        LdifReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn folded_base64_and_comments() {
        let text = "# header\n\nversion: 1\n\n# a comment\n#  folded comment\ndn: cn=H\n élène,dc=x\ncn:: SMOpbMOobmU=\nsn: C\n ôté\ndescription:   spaced\n\n\ndn: cn=b,dc=x\nchangetype: delete\n";
        let recs = read(text);
        assert_eq!(recs.len(), 2);
        let r = recs[0].as_ref().unwrap();
        assert_eq!(r.dn, "cn=Hélène,dc=x");
        assert_eq!(r.line, 7);
        match &r.kind {
            RecordKind::Content { attrs } => {
                assert_eq!(attrs[0].1[0], "Hélène".as_bytes());
                assert_eq!(attrs[1].1[0], "Côté".as_bytes());
                assert_eq!(attrs[2].1[0], b"spaced");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(recs[1].as_ref().unwrap().kind, RecordKind::Delete);
    }

    #[test]
    fn errors_carry_line_numbers_and_recovery_continues() {
        let text = "dn: cn=a,dc=x\ncn a\nsn: x\n\ndn: cn=b,dc=x\ncn:: !!!\n\ncn: c\n\ndn: cn=d,dc=x\nchangetype: modify\n\ndn: cn=e,dc=x\ncn: e\n";
        let recs = read(text);
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].as_ref().unwrap_err().line, 2);
        assert_eq!(recs[1].as_ref().unwrap_err().line, 6);
        assert_eq!(recs[2].as_ref().unwrap_err().line, 8);
        assert_eq!(recs[3].as_ref().unwrap_err().line, 11);
        assert_eq!(recs[4].as_ref().unwrap().dn, "cn=e,dc=x");
    }
}
