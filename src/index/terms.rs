//! The index terms of an entry, and of the filter items that look them up.
//!
//! Both sides are produced here so that they cannot drift apart: a filter item asks only for
//! terms that every entry matching it is guaranteed to carry. Terms are plain strings in one
//! raw (untokenised) field:
//!
//! | term | meaning |
//! | --- | --- |
//! | `h␟attr` | the entry has the attribute |
//! | `e␟attr␟value` | a value, normalised by the attribute's equality rule |
//! | `p␟attr␟prefix` | a prefix (1 to [`PREFIX_CHARS`] characters) of a folded value |
//! | `g␟gram` | a 1- to 3-character piece of a value of a naming attribute |
//! | `f␟gram` | a piece of the *folded* value that the value itself lacks (accents) |
//!
//! Grams are kept for the naming attributes only ([`GRAM_ATTRIBUTES`]: what address books
//! search inside of) and shared by them: names repeat across `cn`, `displayName`, `givenName`
//! and `sn`, so one set per entry is less than half the terms, and a substring item still finds
//! every match (the gram is in the entry, whichever naming attribute holds it); the presence
//! term of the attribute keeps the item specific. Organisation, title, phone and the other
//! substring-indexed attributes get prefix terms only: their grams would make every entry of an
//! organisation a candidate for a name search that shares a syllable with it, and double the
//! terms an import writes. An inner substring (`*x*`) of those is answered by presence and the
//! filter, which is correct, only slower.
//!
//! Prefixes and `g` grams are taken from the value as the attribute's substring rule
//! normalises it (lower case for the naming attributes, accents kept), so a substring item's
//! terms are exactly as selective as its match: `o s*` does not read the thousands of
//! "Ó Súilleabháin" that caseIgnoreSubstringsMatch rejects. "Folded" is [`fold`] (accents
//! and case removed): ambiguous name resolution matches folded words, so a value whose folded
//! form differs also carries, as `f` terms, the folded grams it lacks; ANR asks for `g` or
//! `f` of each gram.

use std::collections::BTreeSet;

use crate::directory::entry::Entry;
use crate::directory::matching::{fold, Rule};
use crate::directory::schema::Schema;

pub const SEP: char = '\u{1f}';
/// Longest prefix indexed, in characters.
pub const PREFIX_CHARS: usize = 6;
/// Longest value indexed whole, in bytes; longer values are cut (a wider match, never a miss).
pub const MAX_TERM_BYTES: usize = 256;

/// Attributes (lower case) whose values also get n-gram terms, when substring-indexed.
pub const GRAM_ATTRIBUTES: &[&str] = &["cn", "sn", "givenname", "displayname", "mail", "uid"];

/// Which attributes are indexed for what.
#[derive(Clone, Debug)]
pub struct IndexSpec {
    /// Lower-case canonical names that get prefix and n-gram terms.
    pub substring_attrs: BTreeSet<String>,
}

impl IndexSpec {
    pub fn new(names: &[String], schema: &Schema) -> IndexSpec {
        IndexSpec {
            substring_attrs: names.iter().map(|n| schema.canonical_lower(n)).collect(),
        }
    }

    pub fn has_substrings(&self, attr_lower: &str) -> bool {
        self.substring_attrs.contains(attr_lower)
    }

    /// Whether values of the attribute carry n-gram terms (see the module docs).
    pub fn has_grams(&self, attr_lower: &str) -> bool {
        self.has_substrings(attr_lower) && GRAM_ATTRIBUTES.contains(&attr_lower)
    }
}

/// Attributes never indexed: secrets, and binary values nobody searches by.
pub fn is_indexed(schema: &Schema, name: &str) -> bool {
    if crate::directory::filter::is_virtual(name) {
        return false;
    }
    match schema.attr(name) {
        Some(a) => a.syntax.is_human_readable() && !a.name().eq_ignore_ascii_case("userPassword"),
        None => false,
    }
}

pub fn cut(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `kind␟part␟part...` (built by hand: an import makes a few hundred per entry).
fn term(kind: char, parts: &[&str]) -> String {
    let mut t = String::with_capacity(2 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    t.push(kind);
    for p in parts {
        t.push(SEP);
        t.push_str(p);
    }
    t
}

pub fn presence_term(attr: &str) -> String {
    term('h', &[attr])
}

pub fn equality_term(attr: &str, normalized: &[u8]) -> String {
    let v = String::from_utf8_lossy(normalized);
    term('e', &[attr, cut(&v, MAX_TERM_BYTES)])
}

pub fn prefix_term(attr: &str, folded_prefix: &str) -> String {
    let end = folded_prefix
        .char_indices()
        .nth(PREFIX_CHARS)
        .map_or(folded_prefix.len(), |(i, _)| i);
    term(
        'p',
        &[attr, folded_prefix.get(..end).unwrap_or(folded_prefix)],
    )
}

pub fn gram_term(gram: &str) -> String {
    term('g', &[gram])
}

pub fn folded_gram_term(gram: &str) -> String {
    term('f', &[gram])
}

/// The grams that any text containing `piece` (folded) must carry: its trigrams, the piece
/// itself when it has two characters, or when it is one letter or digit (Thunderbird searches
/// `*x*` from the first keystroke: a scan for a rare letter reads thousands of entries to find
/// a hundred). Other single characters (`.`, `@`, `-`) are in nearly every entry: none.
pub fn piece_grams(piece: &str) -> Vec<String> {
    let chars: Vec<char> = piece.chars().collect();
    match chars.as_slice() {
        [] => return Vec::new(),
        [c] => {
            return if c.is_alphanumeric() {
                vec![piece.to_string()]
            } else {
                Vec::new()
            }
        }
        [_, _] => return vec![piece.to_string()],
        _ => {}
    }
    let mut out: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    out.sort();
    out.dedup();
    out
}

/// Every gram of a text: its letters and digits, and its pieces of two and three characters.
fn text_grams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = chars
        .iter()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_string())
        .collect();
    for len in 2..=3usize {
        out.extend(chars.windows(len).map(|w| w.iter().collect::<String>()));
    }
    out
}

/// The rule substring terms of an attribute are built with (the same one filters use).
pub fn substring_rule(schema: &Schema, name: &str) -> Option<Rule> {
    let a = schema.attr(name)?;
    a.substr.or(a.equality).filter(|r| r.is_string())
}

/// Every term of an entry, without duplicates.
pub fn entry_terms(entry: &Entry, schema: &Schema, spec: &IndexSpec) -> Vec<String> {
    let mut terms = Vec::with_capacity(512);
    // Folded values of the naming attributes: their grams are shared, so they are made once
    // per distinct text, after the loop.
    let mut gram_sources: Vec<String> = Vec::new();
    for attr in &entry.attrs {
        if !is_indexed(schema, &attr.name) {
            continue;
        }
        let key = attr.name.to_ascii_lowercase();
        terms.push(presence_term(&key));
        let eq_rule = schema.attr(&attr.name).and_then(|a| a.equality);
        let sub_rule = if spec.has_substrings(&key) {
            substring_rule(schema, &attr.name)
        } else {
            None
        };
        let grams = spec.has_grams(&key);
        for v in &attr.values {
            if let Some(rule) = eq_rule {
                terms.push(equality_term(&key, &rule.normalize(v, schema)));
            }
            if let Some(rule) = sub_rule {
                let Some(n) = rule.try_normalize(v, schema) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&n);
                let mut prefix = String::new();
                for c in text.chars().take(PREFIX_CHARS) {
                    prefix.push(c);
                    terms.push(prefix_term(&key, &prefix));
                }
                if grams {
                    gram_sources.push(if text.chars().any(char::is_uppercase) {
                        text.to_lowercase()
                    } else {
                        text.into_owned()
                    });
                }
            }
        }
    }
    // A text inside another one (a given name inside the full name, the ONE ID inside the
    // mail address, a display name equal to the name) has no gram the other lacks.
    gram_sources.sort_unstable_by_key(|t| std::cmp::Reverse(t.len()));
    let mut done: Vec<&str> = Vec::with_capacity(gram_sources.len());
    for text in &gram_sources {
        if done.iter().any(|d| d.contains(text.as_str())) {
            continue;
        }
        done.push(text);
        let exact = text_grams(text);
        let folded = fold(text);
        if folded != *text {
            let own: std::collections::HashSet<&str> = exact.iter().map(String::as_str).collect();
            terms.extend(
                text_grams(&folded)
                    .iter()
                    .filter(|g| !own.contains(g.as_str()))
                    .map(|g| folded_gram_term(g)),
            );
        }
        terms.extend(exact.iter().map(|g| gram_term(g)));
    }
    // Without repeats, in first-seen order: hashing a few hundred short strings is far cheaper
    // than sorting them (they share long prefixes).
    let keep: Vec<bool> = {
        let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
        seen.reserve(terms.len());
        terms.iter().map(|t| seen.insert(t.as_str())).collect()
    };
    let mut flags = keep.into_iter();
    terms.retain(|_| flags.next().unwrap_or(false));
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_of_pieces() {
        assert_eq!(piece_grams("ab"), vec!["ab"]);
        assert_eq!(piece_grams("x"), vec!["x"]);
        assert!(piece_grams("@").is_empty());
        assert_eq!(piece_grams("abcd"), vec!["abc", "bcd"]);
        assert!(piece_grams("").is_empty());
    }

    #[test]
    fn entry_terms_cover_prefixes_and_grams() {
        let schema = Schema::builtin().unwrap();
        let spec = IndexSpec::new(&["cn".into()], &schema);
        let mut e = Entry::new("cn=x".into(), "cn=x".into());
        e.add_values(&schema, "cn", vec!["Côté".as_bytes().to_vec()]);
        e.add_values(&schema, "userPassword", vec![b"secret".to_vec()]);
        let t = entry_terms(&e, &schema, &spec);
        // Prefixes and grams as caseIgnoreSubstringsMatch sees the value (accents kept)...
        assert!(t.contains(&prefix_term("cn", "cô")));
        assert!(!t.contains(&prefix_term("cn", "co")));
        assert!(t.contains(&gram_term("ôté")));
        assert!(t.contains(&gram_term("t")));
        assert!(t.contains(&gram_term("é")));
        assert!(!t.contains(&gram_term("ote")));
        // ...and, for ANR, the folded grams the value lacks, only those.
        assert!(t.contains(&folded_gram_term("ote")));
        assert!(t.contains(&folded_gram_term("e")));
        assert!(!t.contains(&folded_gram_term("t")));
        assert!(t.contains(&equality_term("cn", "côté".as_bytes())));
        assert!(!t.iter().any(|x| x.contains("userpassword")));
    }
}
