//! The string form of search filters (RFC 4515), for tests, the command line and logs.
//!
//! ldap3_proto's own parser is not RFC 4515 (it rejects `+`, `:=` forms and escapes), so the
//! server parses filter strings here. Values are unescaped (`\2a` is a literal `*`), and must be
//! UTF-8 because the decoded filter type holds strings.

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad filter at character {pos}: {msg}")]
pub struct FilterSyntaxError {
    pub pos: usize,
    pub msg: String,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

pub fn parse_filter(text: &str) -> Result<LdapFilter, FilterSyntaxError> {
    let trimmed = text.trim();
    // RFC 4515 requires parentheses; tools accept a bare item.
    let owned;
    let src = if trimmed.starts_with('(') {
        trimmed
    } else {
        owned = format!("({trimmed})");
        owned.as_str()
    };
    let mut p = Parser {
        s: src.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let f = p.filter()?;
    if p.pos != p.s.len() {
        return Err(p.err("unexpected text after the filter"));
    }
    Ok(f)
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> FilterSyntaxError {
        FilterSyntaxError {
            pos: self.pos,
            msg: msg.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), FilterSyntaxError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn filter(&mut self) -> Result<LdapFilter, FilterSyntaxError> {
        self.depth += 1;
        if self.depth > 256 {
            return Err(self.err("filter nested too deeply"));
        }
        self.expect(b'(')?;
        let f = match self.peek() {
            Some(b'&') => {
                self.pos += 1;
                LdapFilter::And(self.list()?)
            }
            Some(b'|') => {
                self.pos += 1;
                LdapFilter::Or(self.list()?)
            }
            Some(b'!') => {
                self.pos += 1;
                LdapFilter::Not(Box::new(self.filter()?))
            }
            _ => self.item()?,
        };
        self.expect(b')')?;
        self.depth -= 1;
        Ok(f)
    }

    fn list(&mut self) -> Result<Vec<LdapFilter>, FilterSyntaxError> {
        let mut out = Vec::new();
        while self.peek() == Some(b'(') {
            out.push(self.filter()?);
        }
        Ok(out)
    }

    fn item(&mut self) -> Result<LdapFilter, FilterSyntaxError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b'=' | b'~' | b'<' | b'>' | b')' | b'(') {
                break;
            }
            self.pos += 1;
        }
        let lhs = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .map_err(|_| self.err("attribute description is not UTF-8"))?
            .to_string();
        let op = match (self.peek(), self.s.get(self.pos + 1).copied()) {
            (Some(b'='), _) => {
                self.pos += 1;
                "="
            }
            (Some(b'~'), Some(b'=')) => {
                self.pos += 2;
                "~="
            }
            (Some(b'>'), Some(b'=')) => {
                self.pos += 2;
                ">="
            }
            (Some(b'<'), Some(b'=')) => {
                self.pos += 2;
                "<="
            }
            _ => return Err(self.err("expected '=', '~=', '>=' or '<='")),
        };
        if lhs.is_empty() {
            return Err(self.err("missing attribute description"));
        }
        // Raw value up to the closing parenthesis; '*' positions matter before unescaping.
        let vstart = self.pos;
        while let Some(c) = self.peek() {
            if c == b')' || c == b'(' {
                break;
            }
            self.pos += 1;
        }
        let raw = self.s.get(vstart..self.pos).unwrap_or_default();
        if op == "=" && lhs.ends_with(':') {
            let value = self.unescape(raw)?;
            return self.extensible(lhs.trim_end_matches(':'), value);
        }
        if op == "=" && raw.contains(&b'*') {
            // `(cn=*)`, and `(cn=**)` (empty pieces only): presence.
            if raw.iter().all(|b| *b == b'*') {
                return Ok(LdapFilter::Present(lhs));
            }
            let parts: Vec<&[u8]> = raw.split(|b| *b == b'*').collect();
            let n = parts.len();
            let mut sub = LdapSubstringFilter::default();
            for (i, part) in parts.into_iter().enumerate() {
                if part.is_empty() {
                    continue;
                }
                let v = self.unescape(part)?;
                if i == 0 {
                    sub.initial = Some(v);
                } else if i + 1 == n {
                    sub.final_ = Some(v);
                } else {
                    sub.any.push(v);
                }
            }
            return Ok(LdapFilter::Substring(lhs, sub));
        }
        let value = self.unescape(raw)?;
        Ok(match op {
            "~=" => LdapFilter::Approx(lhs, value),
            ">=" => LdapFilter::GreaterOrEqual(lhs, value),
            "<=" => LdapFilter::LessOrEqual(lhs, value),
            _ => LdapFilter::Equality(lhs, value),
        })
    }

    fn extensible(&self, lhs: &str, value: String) -> Result<LdapFilter, FilterSyntaxError> {
        let mut parts = lhs.split(':');
        let type_ = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
        let mut dn_attributes = false;
        let mut matching_rule = None;
        for p in parts {
            if p.eq_ignore_ascii_case("dn") && !dn_attributes && matching_rule.is_none() {
                dn_attributes = true;
            } else if matching_rule.is_none() && !p.is_empty() {
                matching_rule = Some(p.to_string());
            } else {
                return Err(self.err("malformed extensible match"));
            }
        }
        if type_.is_none() && matching_rule.is_none() {
            return Err(self.err("extensible match needs a type or a matching rule"));
        }
        Ok(LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule,
            type_,
            match_value: value,
            dn_attributes,
        }))
    }

    fn unescape(&self, raw: &[u8]) -> Result<String, FilterSyntaxError> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(&b) = raw.get(i) {
            if b == b'\\' {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        // Users type raw backslashes (CLIENTS.md §1.8): keep them literally.
                        out.push(b'\\');
                        i += 1;
                    }
                }
            } else {
                out.push(b);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| self.err("value is not UTF-8"))
    }
}

/// The RFC 4515 string form of a filter (for logs), values escaped so that it parses back.
pub fn filter_to_text(filter: &LdapFilter) -> String {
    let mut out = String::new();
    write_filter(&mut out, filter);
    out
}

/// An assertion value escaped for the string form of a filter (RFC 4515 §3).
pub fn escape_filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    escape_value(&mut out, v);
    out
}

fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
}

fn write_filter(out: &mut String, f: &LdapFilter) {
    out.push('(');
    match f {
        LdapFilter::And(items) | LdapFilter::Or(items) => {
            out.push(if matches!(f, LdapFilter::And(_)) {
                '&'
            } else {
                '|'
            });
            for i in items {
                write_filter(out, i);
            }
        }
        LdapFilter::Not(inner) => {
            out.push('!');
            write_filter(out, inner);
        }
        LdapFilter::Equality(a, v)
        | LdapFilter::GreaterOrEqual(a, v)
        | LdapFilter::LessOrEqual(a, v)
        | LdapFilter::Approx(a, v) => {
            out.push_str(a);
            out.push_str(match f {
                LdapFilter::GreaterOrEqual(..) => ">=",
                LdapFilter::LessOrEqual(..) => "<=",
                LdapFilter::Approx(..) => "~=",
                _ => "=",
            });
            escape_value(out, v);
        }
        LdapFilter::Present(a) => {
            out.push_str(a);
            out.push_str("=*");
        }
        LdapFilter::Substring(a, s) => {
            out.push_str(a);
            out.push('=');
            if let Some(i) = &s.initial {
                escape_value(out, i);
            }
            out.push('*');
            for piece in &s.any {
                escape_value(out, piece);
                out.push('*');
            }
            if let Some(fin) = &s.final_ {
                escape_value(out, fin);
            }
        }
        LdapFilter::Extensible(m) => {
            if let Some(t) = &m.type_ {
                out.push_str(t);
            }
            if m.dn_attributes {
                out.push_str(":dn");
            }
            if let Some(r) = &m.matching_rule {
                out.push(':');
                out.push_str(r);
            }
            out.push_str(":=");
            escape_value(out, &m.match_value);
        }
    }
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz harness: `(cn=**)` became a substring filter with no pieces, printed as
    /// a presence filter.
    #[test]
    fn only_stars_is_presence() {
        for text in ["(cn=**)", "(objectClass=****)"] {
            let f = parse_filter(text).unwrap();
            assert!(matches!(f, LdapFilter::Present(_)), "{text}: {f:?}");
            assert_eq!(parse_filter(&filter_to_text(&f)).unwrap(), f);
        }
    }

    #[test]
    fn filters_print_back_to_what_parses() {
        for text in [
            "(&(objectClass=person)(|(cn=dew*)(mail=*@x.ca)(sn=*a*b*c)))",
            "(!(cn=a\\2ab))",
            "(cn~=dewey)",
            "(createTimestamp>=20260101000000Z)",
            "(cn:caseExactMatch:=Dewey)",
            "(cn=\\28x\\29)",
        ] {
            let f = parse_filter(text).unwrap();
            assert_eq!(parse_filter(&filter_to_text(&f)).unwrap(), f, "{text}");
        }
        assert_eq!(
            filter_to_text(&parse_filter("(|(cn=a*)(sn=b))").unwrap()),
            "(|(cn=a*)(sn=b))"
        );
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse_filter("(cn=a\\2ab)").unwrap(),
            LdapFilter::Equality("cn".into(), "a*b".into())
        );
        assert!(matches!(
            parse_filter("(cn=*)").unwrap(),
            LdapFilter::Present(_)
        ));
        match parse_filter("(cn=*john*smith*)").unwrap() {
            LdapFilter::Substring(_, s) => {
                assert_eq!(s.initial, None);
                assert_eq!(s.any, vec!["john", "smith"]);
                assert_eq!(s.final_, None);
            }
            other => panic!("{other:?}"),
        }
        match parse_filter("(cn:dn:2.5.13.5:=x)").unwrap() {
            LdapFilter::Extensible(m) => {
                assert!(m.dn_attributes);
                assert_eq!(m.matching_rule.as_deref(), Some("2.5.13.5"));
                assert_eq!(m.type_.as_deref(), Some("cn"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_filter("(&(a>=1)(!(b<=2))(|(c~=x)))").unwrap(),
            LdapFilter::And(_)
        ));
        assert_eq!(
            parse_filter("telephoneNumber=+1 416").unwrap(),
            LdapFilter::Equality("telephoneNumber".into(), "+1 416".into())
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "(", "(cn)", "(=x)", "(cn=x", "(cn=x))", "(::=x)", "(&(cn=x)",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
