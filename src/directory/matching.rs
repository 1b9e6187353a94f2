//! Matching rules (RFC 4517 §4) and string preparation (RFC 4518, simplified).
//!
//! Every rule turns a value into a normalised form once; equality is then byte equality of
//! normalised forms, ordering is a comparison of them, and substring assertions run over them.
//! `None` from [`Rule::normalize`] means the value is not valid for the rule: as an assertion
//! the filter item is Undefined, as a stored value it matches nothing.
//!
//! [`fold`] is coarser than every string rule (case, accents and compatibility forms removed),
//! so anything built on folded text — index terms, approximate match — can only widen a match,
//! never lose one.

use std::cmp::Ordering;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::dn::Dn;
use super::schema::Schema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    CaseIgnore,
    CaseExact,
    CaseIgnoreIa5,
    CaseExactIa5,
    CaseIgnoreList,
    NumericString,
    TelephoneNumber,
    Integer,
    Boolean,
    OctetString,
    GeneralizedTime,
    DistinguishedName,
    ObjectIdentifier,
    Uuid,
}

/// What an extensible-match assertion with a given rule asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulePurpose {
    Equality,
    /// The value is less than the assertion (X.501 ordering rules).
    Ordering,
    /// The assertion is a substring pattern (`a*b*c`).
    Substrings,
}

impl RulePurpose {
    pub fn from_rule_name(name: &str) -> RulePurpose {
        if name.ends_with("OrderingMatch") {
            RulePurpose::Ordering
        } else if name.ends_with("SubstringsMatch") {
            RulePurpose::Substrings
        } else {
            RulePurpose::Equality
        }
    }
}

/// The syntaxes whose shape matters to the server (display, validation, sorting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    DirectoryString,
    /// RFC 4517 §3.3.29: letters, digits, space and `'()+,-./:=?`.
    PrintableString,
    /// RFC 4517 §3.3.4: two letters (ISO 3166 alpha-2).
    CountryString,
    Ia5String,
    Integer,
    Boolean,
    Dn,
    Oid,
    GeneralizedTime,
    TelephoneNumber,
    NumericString,
    OctetString,
    Binary,
    /// X.509 certificates (RFC 4523): checked as such, transferred with `;binary`.
    Certificate,
    /// X.509 revocation lists (RFC 4523).
    CertificateList,
    Other,
    /// Not given: taken from the `SUP` type when the schema is resolved.
    Inherit,
}

impl Syntax {
    pub fn from_oid(oid: &str) -> Syntax {
        match oid.rsplit('.').next().unwrap_or("") {
            _ if !oid.starts_with("1.3.6.1.4.1.1466.115.121.1.") => Syntax::Other,
            "15" | "41" | "34" => Syntax::DirectoryString,
            "44" => Syntax::PrintableString,
            "11" => Syntax::CountryString,
            "26" => Syntax::Ia5String,
            "27" => Syntax::Integer,
            "7" => Syntax::Boolean,
            "12" => Syntax::Dn,
            "38" => Syntax::Oid,
            "24" => Syntax::GeneralizedTime,
            "50" | "22" => Syntax::TelephoneNumber,
            "36" => Syntax::NumericString,
            "40" => Syntax::OctetString,
            "8" => Syntax::Certificate,
            "9" => Syntax::CertificateList,
            "4" | "5" | "10" | "23" | "28" => Syntax::Binary,
            "14" | "51" | "52" => Syntax::DirectoryString,
            _ => Syntax::Other,
        }
    }

    /// Values of this syntax are text a person reads (not photos or certificates).
    pub fn is_human_readable(self) -> bool {
        !matches!(
            self,
            Syntax::Binary | Syntax::Certificate | Syntax::CertificateList | Syntax::OctetString
        )
    }
}

impl Rule {
    pub fn from_oid(oid: &str) -> Option<Rule> {
        Some(match oid {
            "2.5.13.0" | "2.5.13.30" => Rule::ObjectIdentifier,
            "2.5.13.1" | "2.5.13.23" => Rule::DistinguishedName,
            "2.5.13.2" | "2.5.13.3" | "2.5.13.4" => Rule::CaseIgnore,
            "2.5.13.5" | "2.5.13.6" | "2.5.13.7" => Rule::CaseExact,
            "2.5.13.8" | "2.5.13.9" | "2.5.13.10" => Rule::NumericString,
            "2.5.13.11" | "2.5.13.12" => Rule::CaseIgnoreList,
            "2.5.13.13" => Rule::Boolean,
            "2.5.13.14" | "2.5.13.15" => Rule::Integer,
            "2.5.13.17" | "2.5.13.18" => Rule::OctetString,
            "2.5.13.20" | "2.5.13.21" => Rule::TelephoneNumber,
            "2.5.13.27" | "2.5.13.28" => Rule::GeneralizedTime,
            "1.3.6.1.1.16.2" | "1.3.6.1.1.16.3" => Rule::Uuid,
            "1.3.6.1.4.1.1466.109.114.1" | "1.3.6.1.4.1.4203.1.2.1" => Rule::CaseExactIa5,
            "1.3.6.1.4.1.1466.109.114.2" | "1.3.6.1.4.1.1466.109.114.3" => Rule::CaseIgnoreIa5,
            _ => return None,
        })
    }

    /// Rules whose values are text that substring assertions apply to.
    pub fn is_string(self) -> bool {
        matches!(
            self,
            Rule::CaseIgnore
                | Rule::CaseExact
                | Rule::CaseIgnoreIa5
                | Rule::CaseExactIa5
                | Rule::CaseIgnoreList
                | Rule::NumericString
                | Rule::TelephoneNumber
        )
    }

    /// The normalised form of a value, or `None` when it is invalid for the rule.
    pub fn try_normalize(self, value: &[u8], schema: &Schema) -> Option<Vec<u8>> {
        match self {
            Rule::OctetString => Some(value.to_vec()),
            // Directory, printable, numeric and telephone strings have at least one character
            // (RFC 4517 §3.2, §3.3.10, §3.3.23, §3.3.31): an empty assertion value is invalid,
            // which makes a filter item Undefined, and its negation too (RFC 4511 §4.5.1.7).
            Rule::CaseIgnore
            | Rule::CaseExact
            | Rule::CaseIgnoreList
            | Rule::NumericString
            | Rule::TelephoneNumber
                if value.is_empty() =>
            {
                None
            }
            _ => {
                let text = std::str::from_utf8(value).ok()?;
                self.normalize_str(text, schema).map(String::into_bytes)
            }
        }
    }

    /// Like [`Rule::try_normalize`] but never fails: invalid values keep a case-folded form, so
    /// they still get a stable key (used for DN keys and index terms).
    pub fn normalize(self, value: &[u8], schema: &Schema) -> Vec<u8> {
        self.try_normalize(value, schema)
            .unwrap_or_else(|| String::from_utf8_lossy(value).to_lowercase().into_bytes())
    }

    fn normalize_str(self, text: &str, schema: &Schema) -> Option<String> {
        Some(match self {
            Rule::CaseIgnore | Rule::CaseIgnoreList => prep(text, true),
            Rule::CaseExact => prep(text, false),
            Rule::CaseIgnoreIa5 => {
                if !text.is_ascii() {
                    // A mail address or domain with U-labels compares as its A-label form.
                    let ascii = super::values::ascii_mail_form(text.trim())?;
                    return Some(collapse_spaces(&ascii.to_ascii_lowercase()));
                }
                collapse_spaces(&text.to_ascii_lowercase())
            }
            Rule::CaseExactIa5 => {
                if !text.is_ascii() {
                    return None;
                }
                collapse_spaces(text)
            }
            Rule::NumericString => text.chars().filter(|c| *c != ' ').collect(),
            Rule::TelephoneNumber => prep(text, true)
                .chars()
                .filter(|c| *c != ' ' && *c != '-' && *c != '\u{2010}' && *c != '\u{2212}')
                .collect(),
            Rule::Integer => normalize_integer(text)?,
            Rule::Boolean => match text.trim() {
                t if t.eq_ignore_ascii_case("true") => "TRUE".into(),
                t if t.eq_ignore_ascii_case("false") => "FALSE".into(),
                _ => return None,
            },
            Rule::GeneralizedTime => normalize_time(text)?,
            Rule::DistinguishedName => {
                // uniqueMember may carry '#'-suffixed UIDs; compare the DN part.
                Dn::parse(text).ok()?.normalize(schema)
            }
            Rule::ObjectIdentifier => {
                let t = text.trim();
                if let Some(c) = schema.class(t) {
                    c.oid.clone()
                } else if let Some(a) = schema.attr(t) {
                    a.oid.clone()
                } else {
                    t.to_ascii_lowercase()
                }
            }
            Rule::Uuid => text.trim().to_ascii_lowercase(),
            Rule::OctetString => text.to_string(),
        })
    }

    /// Normalises one piece of a substring assertion. Unlike values, pieces keep an edge space
    /// (collapsed to one), since `(cn=john *)` must not match "Johnson".
    pub fn normalize_piece(self, piece: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(piece).ok()?;
        Some(match self {
            Rule::CaseIgnore | Rule::CaseIgnoreList => prep_piece(text, true),
            Rule::CaseExact => prep_piece(text, false),
            Rule::CaseIgnoreIa5 => {
                if !text.is_ascii() {
                    return None;
                }
                prep_piece(&text.to_ascii_lowercase(), false)
            }
            Rule::CaseExactIa5 => {
                if !text.is_ascii() {
                    return None;
                }
                prep_piece(text, false)
            }
            Rule::NumericString => text.chars().filter(|c| *c != ' ').collect(),
            Rule::TelephoneNumber => prep_piece(text, true)
                .chars()
                .filter(|c| *c != ' ' && *c != '-' && *c != '\u{2010}' && *c != '\u{2212}')
                .collect(),
            _ => return None,
        })
    }

    /// Orders two normalised values.
    pub fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Rule::Integer => compare_integers(a, b),
            _ => a.cmp(b),
        }
    }
}

/// Case-folds (optionally), applies compatibility normalisation and collapses white space.
pub fn prep(text: &str, fold_case: bool) -> String {
    let mut out = String::with_capacity(text.len());
    prep_into(text, fold_case, &mut out);
    out
}

/// [`prep`] appending to `out`: no allocation for ASCII text and for text already in NFKC
/// (nearly all stored names), so filters can match into a reused buffer.
pub fn prep_into(text: &str, fold_case: bool, out: &mut String) {
    let mut push_words = |mapped: &str, lower_chars: bool| {
        let start = out.len();
        for word in mapped.split_whitespace() {
            if out.len() > start {
                out.push(' ');
            }
            if lower_chars {
                out.extend(word.chars().flat_map(char::to_lowercase));
            } else {
                out.push_str(word);
            }
        }
    };
    if text.is_ascii() {
        if fold_case {
            let start = out.len();
            for word in text.split_whitespace() {
                if out.len() > start {
                    out.push(' ');
                }
                out.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            }
        } else {
            push_words(text, false);
        }
    } else if unicode_normalization::is_nfkc_quick(text.chars())
        == unicode_normalization::IsNormalized::Yes
    {
        // Already in NFKC: skip the normalisation pass. Lower-casing character by character
        // equals `str::to_lowercase` except for a word-final capital sigma.
        if fold_case && text.contains('\u{3a3}') {
            push_words(&text.to_lowercase(), false);
        } else {
            push_words(text, fold_case);
        }
    } else if fold_case {
        let mapped: String = text.nfkc().flat_map(char::to_lowercase).collect();
        push_words(&mapped, false);
    } else {
        let mapped: String = text.nfkc().collect();
        push_words(&mapped, false);
    }
}

fn prep_piece(text: &str, fold_case: bool) -> String {
    let lead = text.starts_with(char::is_whitespace);
    let trail = text.ends_with(char::is_whitespace);
    let core = prep(text, fold_case);
    if core.is_empty() {
        return if lead || trail { " ".into() } else { core };
    }
    let mut out = String::with_capacity(core.len() + 2);
    if lead {
        out.push(' ');
    }
    out.push_str(&core);
    if trail {
        out.push(' ');
    }
    out
}

/// Trims and collapses runs of white space to one space.
pub fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The coarsest text key: case, accents and compatibility forms removed, white space
/// collapsed. "Hélène  CÔTÉ-Tremblay" → "helene cote-tremblay".
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return collapse_spaces(&text.to_ascii_lowercase());
    }
    let stripped: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ß' => 's',
            'æ' => 'a',
            'œ' => 'o',
            'ø' => 'o',
            'ł' => 'l',
            'đ' => 'd',
            '\u{2019}' | '\u{2018}' | '\u{02bc}' => '\'',
            '\u{2010}' | '\u{2011}' | '\u{2013}' | '\u{2014}' => '-',
            c => c,
        })
        .collect();
    collapse_spaces(&stripped)
}

fn normalize_integer(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    Some(if neg {
        format!("-{digits}")
    } else {
        digits.to_string()
    })
}

fn compare_integers(a: &[u8], b: &[u8]) -> Ordering {
    let neg_a = a.first() == Some(&b'-');
    let neg_b = b.first() == Some(&b'-');
    match (neg_a, neg_b) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, true) => b.len().cmp(&a.len()).then_with(|| b.cmp(a)),
    }
}

/// GeneralizedTime (RFC 4517 §3.3.13) to `YYYYMMDDHHMMSS[.f]Z` in UTC.
fn normalize_time(text: &str) -> Option<String> {
    let (total, fraction) = parse_time(text)?;
    let (y, mo, d, h, mi, s) = civil_from_seconds(total);
    let mut out = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}");
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(&fraction);
    }
    out.push('Z');
    Some(out)
}

/// Whole seconds since 1970 of a GeneralizedTime value (a fraction is dropped).
pub fn generalized_seconds(text: &str) -> Option<i64> {
    parse_time(text).map(|(t, _)| t)
}

/// A GeneralizedTime value as seconds since 1970 (UTC) and its fraction's digits.
fn parse_time(text: &str) -> Option<(i64, String)> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let digits = t.get(..digits_end)?;
    if digits.len() < 10 || digits.len() % 2 != 0 || digits.len() > 14 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { digits.get(r)?.parse().ok() };
    let year = num(0..4)?;
    let month = num(4..6)?;
    let day = num(6..8)?;
    let hour = num(8..10)?;
    let minute = if digits.len() >= 12 { num(10..12)? } else { 0 };
    let second = if digits.len() >= 14 { num(12..14)? } else { 0 };
    let mut rest = t.get(digits_end..)?;
    let mut fraction = String::new();
    if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        fraction = r.get(..end)?.trim_end_matches('0').to_string();
        rest = r.get(end..)?;
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        "" => 0,
        r if r.len() == 5 || r.len() == 3 => {
            let sign = match r.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let h: i64 = r.get(1..3)?.parse().ok()?;
            let m: i64 = if r.len() == 5 {
                r.get(3..5)?.parse().ok()?
            } else {
                0
            };
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let total = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some((total, fraction))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits seconds since the epoch into UTC calendar fields.
pub fn civil_from_seconds(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// The current time as a GeneralizedTime value.
pub fn generalized_time_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil_from_seconds(i64::try_from(secs).unwrap_or(0));
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z")
}

/// Substring match over normalised text: `initial`, then each `any` in order, then `final`,
/// none overlapping.
pub fn substring_match(
    value: &str,
    initial: Option<&str>,
    any: &[String],
    fin: Option<&str>,
) -> bool {
    let mut rest = value;
    if let Some(init) = initial {
        match rest.strip_prefix(init) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    let tail_len = fin.map_or(0, str::len);
    for piece in any {
        if piece.is_empty() {
            continue;
        }
        match rest.find(piece.as_str()) {
            Some(pos) => rest = rest.get(pos + piece.len()..).unwrap_or(""),
            None => return false,
        }
    }
    match fin {
        Some(f) => rest.len() >= tail_len && rest.ends_with(f),
        None => true,
    }
}

/// Approximate match (`~=`): accent-, case- and punctuation-insensitive, word order ignored,
/// and one typo tolerated per five letters of the longer word (at most two).
pub fn approx_match(value: &str, assertion: &str) -> bool {
    let key = |s: &str| {
        let mut words: Vec<String> = fold(s)
            .split(|c: char| c.is_whitespace() || c == '-' || c == '\'' || c == '.' || c == ',')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        words.sort();
        words
    };
    let v = key(value);
    let a = key(assertion);
    if v.len() != a.len() || a.is_empty() {
        return false;
    }
    v.iter().zip(a.iter()).all(|(x, y)| {
        if x == y {
            return true;
        }
        let longest = x.chars().count().max(y.chars().count());
        let allowed = (longest / 5).min(2);
        allowed > 0 && edit_distance(x, y, allowed) <= allowed
    })
}

/// Optimal-string-alignment distance, giving up early past `limit`.
pub fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let width = b.len() + 1;
    let mut prev2: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for (i, ca) in a.iter().enumerate() {
        if let Some(c0) = cur.get_mut(0) {
            *c0 = i + 1;
        }
        let mut row_min = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX / 2) + 1;
            let ins = cur.get(j).copied().unwrap_or(usize::MAX / 2) + 1;
            let sub = prev.get(j).copied().unwrap_or(usize::MAX / 2) + cost;
            let mut best = del.min(ins).min(sub);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                best = best.min(prev2.get(j - 1).copied().unwrap_or(usize::MAX / 2) + 1);
            }
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = best;
            }
            row_min = row_min.min(best);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.get(b.len()).copied().unwrap_or(limit + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema() -> Schema {
        Schema::builtin().unwrap()
    }

    /// `prep` as first written (whole-string passes): the buffered version must agree.
    fn prep_reference(text: &str, fold_case: bool) -> String {
        let mapped: String = match (text.is_ascii(), fold_case) {
            (true, true) => text.to_ascii_lowercase(),
            (true, false) => text.to_string(),
            (false, true) => {
                if unicode_normalization::is_nfkc_quick(text.chars())
                    == unicode_normalization::IsNormalized::Yes
                {
                    text.to_lowercase()
                } else {
                    text.nfkc().flat_map(char::to_lowercase).collect()
                }
            }
            (false, false) => text.nfkc().collect(),
        };
        collapse_spaces(&mapped)
    }

    proptest! {
        #[test]
        fn prep_into_agrees_with_the_reference(
            text in "[ \t\x0b\u{a0}a-zA-Z\u{c0}-\u{17f}\u{391}-\u{3c9}\u{fb01}\u{2460}-]{0,24}",
            fold in any::<bool>(),
            lead in "[a-z]{0,3}",
        ) {
            prop_assert_eq!(prep(&text, fold), prep_reference(&text, fold));
            // Appending keeps what the buffer held.
            let mut buf = lead.clone();
            prep_into(&text, fold, &mut buf);
            prop_assert_eq!(buf, format!("{lead}{}", prep_reference(&text, fold)));
        }
    }

    #[test]
    fn prep_keeps_final_sigma_and_vertical_tab_rules() {
        assert_eq!(prep("ΟΔΟΣ  ΣΑΣ", true), "οδος σας");
        assert_eq!(prep("a\x0bB", true), "a b");
        assert_eq!(prep("  FIne  Côté ", true), "fine côté");
    }

    #[test]
    fn case_ignore_folds_case_and_space() {
        let s = schema();
        assert_eq!(
            Rule::CaseIgnore.normalize(b"  Dewey   RAHIM ", &s),
            b"dewey rahim".to_vec()
        );
        assert_eq!(
            Rule::CaseIgnore.normalize("HÉLÈNE".as_bytes(), &s),
            "hélène".as_bytes().to_vec()
        );
    }

    #[test]
    fn telephone_ignores_spaces_and_hyphens() {
        let s = schema();
        assert_eq!(
            Rule::TelephoneNumber.normalize(b"+1 416-555-0100", &s),
            Rule::TelephoneNumber.normalize(b"+14165550100", &s)
        );
    }

    #[test]
    fn integers_and_booleans() {
        let s = schema();
        assert_eq!(Rule::Integer.try_normalize(b"007", &s), Some(b"7".to_vec()));
        assert_eq!(Rule::Integer.try_normalize(b"x", &s), None);
        assert_eq!(Rule::Integer.compare(b"-5", b"3"), Ordering::Less);
        assert_eq!(Rule::Integer.compare(b"10", b"9"), Ordering::Greater);
        assert_eq!(
            Rule::Boolean.try_normalize(b"true", &s),
            Some(b"TRUE".to_vec())
        );
    }

    #[test]
    fn times_normalise_to_utc() {
        let s = schema();
        assert_eq!(
            Rule::GeneralizedTime.try_normalize(b"202611280100-0500", &s),
            Some(b"20261128060000Z".to_vec())
        );
        assert_eq!(
            Rule::GeneralizedTime.try_normalize(b"20261128060000.500Z", &s),
            Some(b"20261128060000.5Z".to_vec())
        );
        assert_eq!(Rule::GeneralizedTime.try_normalize(b"2026", &s), None);
    }

    #[test]
    fn folding_removes_accents() {
        assert_eq!(fold("Hélène  CÔTÉ-Tremblay"), "helene cote-tremblay");
        assert_eq!(fold("D\u{2019}Arcy"), "d'arcy");
    }

    #[test]
    fn substrings() {
        assert!(substring_match("john smith", Some("jo"), &[], None));
        assert!(substring_match(
            "john smith",
            None,
            &["ohn".into(), "mi".into()],
            None
        ));
        assert!(!substring_match(
            "john smith",
            None,
            &["mi".into(), "ohn".into()],
            None
        ));
        assert!(substring_match("john smith", None, &[], Some("ith")));
        assert!(!substring_match("abc", Some("ab"), &[], Some("bc")));
    }

    #[test]
    fn approximate() {
        assert!(approx_match("Hélène Côté", "helene cote"));
        assert!(approx_match("Dewey Rahim", "rahim dewey"));
        assert!(approx_match("Tremblay", "Tremblya"));
        assert!(!approx_match("Tremblay", "Trxmbxay"));
        assert!(!approx_match("Li", "Lu"));
    }
}
