//! Distinguished names (RFC 4514): parsing, printing and normalisation.
//!
//! A [`Dn`] keeps the attribute types and values as the client wrote them (for display), and
//! [`Dn::normalize`] produces the comparison key used everywhere else: attribute types mapped to
//! the schema's canonical lower-case name, values folded by the attribute's equality rule, and
//! every special character escaped so that the key is unambiguous. Two DNs name the same entry
//! exactly when their normalised keys are equal.

use std::fmt;

use super::schema::Schema;

/// One attribute-value assertion inside an RDN (`cn=Dewey Rahim`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

/// A relative distinguished name: one or more AVAs joined by `+`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdn(pub Vec<Ava>);

/// A parsed DN, leftmost RDN first. The root DSE is the empty DN.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Dn {
    rdns: Vec<Rdn>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnError {
    #[error("invalid DN: {0}")]
    Syntax(String),
}

fn syntax(msg: impl Into<String>) -> DnError {
    DnError::Syntax(msg.into())
}

impl Dn {
    /// The empty DN (root DSE).
    pub fn root() -> Dn {
        Dn { rdns: Vec::new() }
    }

    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        Dn { rdns }
    }

    /// Parses an RFC 4514 string. Also tolerates spaces around `,`, `+` and `=` and `;` as a
    /// separator, as RFC 4514 §4 allows implementations to accept older forms.
    pub fn parse(s: &str) -> Result<Dn, DnError> {
        let trimmed = trim_unescaped(s);
        if trimmed.is_empty() {
            return Ok(Dn::root());
        }
        let chars: Vec<char> = trimmed.chars().collect();
        let mut pos = 0usize;
        let mut rdns = Vec::new();
        let mut avas = Vec::new();
        loop {
            skip_spaces(&chars, &mut pos);
            let attr = parse_attr_type(&chars, &mut pos)?;
            skip_spaces(&chars, &mut pos);
            if chars.get(pos) != Some(&'=') {
                return Err(syntax(format!(
                    "expected '=' after attribute type '{attr}'"
                )));
            }
            pos += 1;
            skip_spaces(&chars, &mut pos);
            let value = parse_value(&chars, &mut pos)?;
            avas.push(Ava { attr, value });
            skip_spaces(&chars, &mut pos);
            match chars.get(pos) {
                None => {
                    rdns.push(Rdn(std::mem::take(&mut avas)));
                    break;
                }
                Some('+') => {
                    pos += 1;
                }
                Some(',') | Some(';') => {
                    pos += 1;
                    rdns.push(Rdn(std::mem::take(&mut avas)));
                }
                Some(c) => return Err(syntax(format!("unexpected character '{c}'"))),
            }
        }
        Ok(Dn { rdns })
    }

    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() {
            None
        } else {
            Some(Dn {
                rdns: self.rdns.get(1..).unwrap_or_default().to_vec(),
            })
        }
    }

    /// A new DN made of `rdn` under `self`.
    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = Vec::with_capacity(self.rdns.len() + 1);
        rdns.push(rdn);
        rdns.extend(self.rdns.iter().cloned());
        Dn { rdns }
    }

    /// The comparison key of this DN (see the module docs).
    pub fn normalize(&self, schema: &Schema) -> String {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut parts: Vec<String> = rdn
                .0
                .iter()
                .map(|ava| {
                    let attr = schema.canonical_lower(&ava.attr);
                    let value = schema.normalize_value(&attr, ava.value.as_bytes());
                    let mut s = attr;
                    s.push('=');
                    escape_into(&mut s, &String::from_utf8_lossy(&value));
                    s
                })
                .collect();
            // Multi-valued RDNs are unordered.
            parts.sort();
            out.push_str(&parts.join("+"));
        }
        out
    }
}

/// `true` when `ndn` is `base` or lies below it (both normalised keys).
pub fn is_within(ndn: &str, base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    if ndn == base {
        return true;
    }
    ndn.len() > base.len()
        && ndn.ends_with(base)
        && ndn
            .as_bytes()
            .get(ndn.len() - base.len() - 1)
            .is_some_and(|b| *b == b',')
        && !is_escaped_at(ndn, ndn.len() - base.len() - 1)
}

/// The normalised key of the parent of `ndn` ("" for a top-level entry).
pub fn parent_of(ndn: &str) -> &str {
    let bytes = ndn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b',') => return ndn.get(i + 1..).unwrap_or(""),
            _ => i += 1,
        }
    }
    ""
}

fn is_escaped_at(s: &str, idx: usize) -> bool {
    let bytes = s.as_bytes();
    let mut n = 0;
    let mut i = idx;
    while i > 0 && bytes.get(i - 1) == Some(&b'\\') {
        n += 1;
        i -= 1;
    }
    n % 2 == 1
}

/// The text without surrounding white space, except white space escaped with a backslash
/// (`cn=x\ ` ends in a space that belongs to the value).
fn trim_unescaped(s: &str) -> &str {
    let mut text = s.trim_start();
    while let Some(last) = text.chars().next_back().filter(|c| c.is_whitespace()) {
        let head = &text[..text.len() - last.len_utf8()];
        let backslashes = head.chars().rev().take_while(|c| *c == '\\').count();
        if backslashes % 2 == 1 {
            break;
        }
        text = head;
    }
    text
}

fn skip_spaces(chars: &[char], pos: &mut usize) {
    while chars.get(*pos).is_some_and(|c| *c == ' ') {
        *pos += 1;
    }
}

fn parse_attr_type(chars: &[char], pos: &mut usize) -> Result<String, DnError> {
    let start = *pos;
    while let Some(c) = chars.get(*pos) {
        if c.is_ascii_alphanumeric() || *c == '-' || *c == '.' {
            *pos += 1;
        } else {
            break;
        }
    }
    let s: String = chars.get(start..*pos).unwrap_or_default().iter().collect();
    if s.is_empty() {
        return Err(syntax("missing attribute type"));
    }
    let numeric = |oid: &str| {
        oid.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    // RFC 2253's legacy `OID.2.5.4.3` form (any case) is the numeric OID.
    let legacy = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("oid."))
        .and_then(|_| s.get(4..));
    let first = s.chars().next().unwrap_or('-');
    if let Some(oid) = legacy {
        if !numeric(oid) {
            return Err(syntax(format!("bad numeric OID '{oid}' after 'OID.'")));
        }
        Ok(oid.to_string())
    } else if first.is_ascii_digit() {
        if !numeric(&s) {
            return Err(syntax(format!("bad numeric OID '{s}'")));
        }
        Ok(s)
    } else if first.is_ascii_alphabetic() && !s.contains('.') {
        // A descriptor (RFC 4512 §1.4): a letter, then letters, digits and hyphens.
        Ok(s)
    } else {
        Err(syntax(format!("bad attribute type '{s}'")))
    }
}

fn parse_value(chars: &[char], pos: &mut usize) -> Result<String, DnError> {
    if chars.get(*pos) == Some(&'#') {
        // hexstring: a BER encoding; take the OCTET STRING / string contents when we can.
        *pos += 1;
        let start = *pos;
        while chars.get(*pos).is_some_and(|c| c.is_ascii_hexdigit()) {
            *pos += 1;
        }
        let hex: String = chars.get(start..*pos).unwrap_or_default().iter().collect();
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err(syntax("bad hex string value"));
        }
        let bytes = decode_hex(&hex).ok_or_else(|| syntax("bad hex string value"))?;
        // Primitive BER: tag, short length, contents.
        let content = match (bytes.first(), bytes.get(1)) {
            (Some(_), Some(len)) if usize::from(*len) == bytes.len().saturating_sub(2) => {
                bytes.get(2..).unwrap_or_default().to_vec()
            }
            _ => bytes,
        };
        return String::from_utf8(content).map_err(|_| syntax("hex string value is not UTF-8"));
    }
    let quoted = chars.get(*pos) == Some(&'"');
    if quoted {
        *pos += 1;
    }
    let mut out: Vec<u8> = Vec::new();
    // Trailing unescaped spaces are not part of the value (RFC 4514 §3).
    let mut trailing_spaces = 0usize;
    loop {
        let Some(&c) = chars.get(*pos) else {
            if quoted {
                return Err(syntax("unterminated quoted value"));
            }
            break;
        };
        if quoted {
            if c == '"' {
                *pos += 1;
                break;
            }
        } else if c == ',' || c == '+' || c == ';' {
            break;
        }
        if c == '\\' {
            *pos += 1;
            let Some(&n) = chars.get(*pos) else {
                return Err(syntax("dangling escape at end of DN"));
            };
            if n.is_ascii_hexdigit() {
                let n2 = chars.get(*pos + 1).copied().unwrap_or(' ');
                if !n2.is_ascii_hexdigit() {
                    return Err(syntax("bad hex escape"));
                }
                let byte = u8::from_str_radix(&format!("{n}{n2}"), 16)
                    .map_err(|_| syntax("bad hex escape"))?;
                out.push(byte);
                *pos += 2;
            } else {
                let mut buf = [0u8; 4];
                out.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
                *pos += 1;
            }
            trailing_spaces = 0;
            continue;
        }
        if c == ' ' {
            trailing_spaces += 1;
        } else {
            trailing_spaces = 0;
        }
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        *pos += 1;
    }
    if !quoted {
        out.truncate(out.len() - trailing_spaces);
    }
    String::from_utf8(out).map_err(|_| syntax("value is not valid UTF-8"))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    bytes
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// Escapes a value for the string form of a DN (RFC 4514 §2.4).
pub fn escape_into(out: &mut String, value: &str) {
    let count = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == count && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c.is_control() || (c.is_whitespace() && c != ' ') {
            // As hex pairs (RFC 4514 §2.4): a NUL, a control character or a white space
            // that is not a space would not survive being read back (or shown) raw.
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, ava) in rdn.0.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                out.push_str(&ava.attr);
                out.push('=');
                escape_into(&mut out, &ava.value);
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz harness: an escaped trailing space was trimmed with the string, and
    /// `OID.` took any text after it.
    #[test]
    fn escaped_edge_spaces_and_legacy_oids() {
        let dn = Dn::parse("cn=\\20x\\20,dc=y \n").unwrap();
        assert_eq!(dn.rdns()[0].0[0].value, " x ");
        let printed = dn.to_string();
        assert_eq!(Dn::parse(&printed).unwrap(), dn);
        assert_eq!(Dn::parse("cn=x\\ ").unwrap().rdns()[0].0[0].value, "x ");
        assert_eq!(
            Dn::parse("OID.2.5.4.3=x").unwrap().rdns()[0].0[0].attr,
            "2.5.4.3"
        );
        assert_eq!(
            Dn::parse("oid.2.5.4.3=x").unwrap().rdns()[0].0[0].attr,
            "2.5.4.3"
        );
        assert!(Dn::parse("OID...5=x").is_err());
        assert!(Dn::parse("OID.2.5.4.s=x").is_err());
        assert!(Dn::parse("cn.x=y").is_err());
        // An escaped vertical tab at the end is printed as hex, and read back the same.
        let dn = Dn::parse("dc=x\\\u{b}").unwrap();
        assert_eq!(dn.to_string(), "dc=x\\0B");
        assert_eq!(Dn::parse(&dn.to_string()).unwrap(), dn);
    }

    #[test]
    fn parses_and_prints() {
        let dn = Dn::parse("cn=Dewey Rahim, ou=people,dc=one-mail,dc=on,dc=ca").unwrap();
        assert_eq!(dn.rdns().len(), 5);
        assert_eq!(
            dn.to_string(),
            "cn=Dewey Rahim,ou=people,dc=one-mail,dc=on,dc=ca"
        );
        assert_eq!(
            dn.parent().unwrap().to_string(),
            "ou=people,dc=one-mail,dc=on,dc=ca"
        );
    }

    #[test]
    fn escapes_round_trip() {
        let dn = Dn::parse(r"cn=O'Neil\, D'Arcy+uid=x,o=A\2CB").unwrap();
        let rdn = dn.rdn().unwrap();
        assert_eq!(rdn.0[0].value, "O'Neil, D'Arcy");
        assert_eq!(rdn.0[1].attr, "uid");
        assert_eq!(dn.rdns()[1].0[0].value, "A,B");
        let again = Dn::parse(&dn.to_string()).unwrap();
        assert_eq!(again, dn);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Dn::parse("cn").is_err());
        assert!(Dn::parse("=x").is_err());
        assert!(Dn::parse("cn=x\\").is_err());
        assert!(Dn::parse("cn=\"x").is_err());
        assert!(Dn::parse("cn=#zz").is_err());
    }

    #[test]
    fn within_and_parent() {
        assert!(is_within("cn=a,dc=x", "dc=x"));
        assert!(is_within("dc=x", "dc=x"));
        assert!(!is_within("cn=a,dc=xx", "dc=x"));
        assert!(!is_within(r"cn=a\,dc=x", "dc=x"));
        assert!(is_within("dc=x", ""));
        assert_eq!(parent_of("cn=a\\,b,dc=x"), "dc=x");
        assert_eq!(parent_of("dc=x"), "");
    }
}
