//! The index terms of an entry, and of the filter items that look them up.
//!
//! Both sides are produced here so that they cannot drift apart: a filter item asks only for
//! terms that every entry matching it is guaranteed to carry. Terms are plain strings in one
//! field; an entry's document carries them all in one text value, separated by [`TERM_SEP`]
//! and split again by [`TermTokenizer`]:
//!
//! | term | meaning |
//! | --- | --- |
//! | `h␟attr` | the entry has the attribute |
//! | `e␟attr␟value` | a value, normalised by the attribute's equality rule |
//! | `p␟attr␟prefix` | a prefix (1 to [`PREFIX_CHARS`] characters) of a folded value |
//! | `g␟gram` | a 1- to 3-character piece of a value of a naming attribute |
//! | `f␟gram` | a piece of the *folded* value that the value itself lacks (accents) |
//!
//! `attr` in `e` and `p` terms is [`term_attr`]: `displayName`, `company` and `department`
//! share the terms of `cn`, `o` and `ou`.
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
use crate::directory::schema::{AttributeType, Schema};

pub const SEP: char = '\u{1f}';
/// Longest prefix indexed, in characters.
pub const PREFIX_CHARS: usize = 6;
/// Longest value indexed whole, in bytes; longer values are cut (a wider match, never a miss).
pub const MAX_TERM_BYTES: usize = 256;

/// Attributes (lower case) whose values also get n-gram terms, when substring-indexed.
pub const GRAM_ATTRIBUTES: &[&str] = &["cn", "sn", "givenname", "displayname", "mail", "uid"];

/// The attribute name equality and prefix terms of `key` (lower case) are written under.
/// Outlook reads company and department from either of two attributes and shows `displayName`
/// where others show `cn`, so directories publish both with the same values: such pairs share
/// one set of terms (an import writes a sixth fewer). A filter on either reads the pair's
/// terms; the filter itself then tells the two apart.
pub fn term_attr(key: &str) -> &str {
    pair_of(key).unwrap_or(key)
}

/// The pair an attribute (lower case) belongs to, by the name its terms are written under.
fn pair_of(key: &str) -> Option<&'static str> {
    match key {
        "cn" | "displayname" => Some("cn"),
        "o" | "company" => Some("o"),
        "ou" | "department" => Some("ou"),
        _ => None,
    }
}

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
    indexed_type(schema, name).is_some()
}

/// The schema's type of an attribute that is indexed.
fn indexed_type<'s>(schema: &'s Schema, name: &str) -> Option<&'s AttributeType> {
    if crate::directory::filter::is_virtual(name) {
        return None;
    }
    schema
        .attr(name)
        .filter(|a| a.syntax.is_human_readable() && !a.name().eq_ignore_ascii_case("userPassword"))
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

/// Separates the terms of an entry in the one text value its index document carries
/// ([`TermTokenizer`] splits them again): one value instead of a few hundred saves as many
/// allocations per entry, on both sides of tantivy's document.
pub const TERM_SEP: char = '\u{1e}';

/// Appends `kind␟part␟part...` to `out`. A part that contains [`TERM_SEP`] (a control
/// character no real value has) has it replaced by [`SEP`] here, for entries and filters
/// alike, so that a value cannot split into terms of its own making.
fn write_term(out: &mut String, kind: char, parts: &[&str]) {
    out.push(kind);
    for p in parts {
        out.push(SEP);
        if p.contains(TERM_SEP) {
            out.extend(p.chars().map(|c| if c == TERM_SEP { SEP } else { c }));
        } else {
            out.push_str(p);
        }
    }
}

/// Appends one term of an entry and the separator that ends it.
fn write_entry_term(out: &mut String, kind: char, parts: &[&str]) {
    write_term(out, kind, parts);
    out.push(TERM_SEP);
}

/// `e␟attr␟value` (attr as [`term_attr`] names it), the value cut at [`MAX_TERM_BYTES`].
fn write_equality(out: &mut String, attr: &str, normalized: &[u8]) {
    let v = String::from_utf8_lossy(normalized);
    write_term(out, 'e', &[term_attr(attr), cut(&v, MAX_TERM_BYTES)]);
}

/// One term, as a filter looks it up.
fn term(kind: char, parts: &[&str]) -> String {
    let mut t = String::with_capacity(2 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    write_term(&mut t, kind, parts);
    t
}

pub fn presence_term(attr: &str) -> String {
    term('h', &[attr])
}

pub fn equality_term(attr: &str, normalized: &[u8]) -> String {
    let mut t = String::with_capacity(normalized.len() + attr.len() + 3);
    write_equality(&mut t, attr, normalized);
    t
}

pub fn prefix_term(attr: &str, folded_prefix: &str) -> String {
    let end = folded_prefix
        .char_indices()
        .nth(PREFIX_CHARS)
        .map_or(folded_prefix.len(), |(i, _)| i);
    term(
        'p',
        &[
            term_attr(attr),
            folded_prefix.get(..end).unwrap_or(folded_prefix),
        ],
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

/// Calls `each` with every gram of a text: its letters and digits, and its pieces of two and
/// three characters (repeats included).
fn for_each_gram<'t>(text: &'t str, bounds: &mut Vec<usize>, mut each: impl FnMut(&'t str)) {
    bounds.clear();
    bounds.extend(text.char_indices().map(|(i, _)| i));
    bounds.push(text.len());
    for w in bounds.windows(2) {
        if let [a, b] = *w {
            let g = text.get(a..b).unwrap_or("");
            if g.chars().next().is_some_and(char::is_alphanumeric) {
                each(g);
            }
        }
    }
    for len in 2..=3usize {
        for w in bounds.windows(len + 1) {
            if let (Some(&a), Some(&b)) = (w.first(), w.last()) {
                each(text.get(a..b).unwrap_or(""));
            }
        }
    }
}

/// The rule substring terms of an attribute are built with (the same one filters use).
pub fn substring_rule(schema: &Schema, name: &str) -> Option<Rule> {
    schema.attr(name).and_then(substring_rule_of)
}

fn substring_rule_of(a: &AttributeType) -> Option<Rule> {
    a.substr.or(a.equality).filter(|r| r.is_string())
}

/// Every term of an entry, without duplicates (for tests and diagnostics; the indexer uses
/// [`write_entry_terms`]).
pub fn entry_terms(entry: &Entry, schema: &Schema, spec: &IndexSpec) -> Vec<String> {
    let mut text = String::new();
    write_entry_terms(entry, schema, spec, &mut text);
    let mut seen = std::collections::HashSet::new();
    text.split(TERM_SEP)
        .filter(|t| !t.is_empty() && seen.insert(*t))
        .map(str::to_string)
        .collect()
}

/// Appends every term of an entry to `out`, each followed by [`TERM_SEP`]. Grams are written
/// once; other terms may repeat (tantivy counts an entry once per term).
pub fn write_entry_terms(entry: &Entry, schema: &Schema, spec: &IndexSpec, out: &mut String) {
    // Folded values of the naming attributes: their grams are shared, so they are made once
    // per distinct text, after the loop.
    let mut gram_sources: Vec<String> = Vec::new();
    // Values of paired attributes whose terms are written: pair, rules, raw value.
    type Written<'e> = (&'static str, Option<Rule>, Option<Rule>, &'e [u8]);
    let mut pair_values: Vec<Written> = Vec::new();
    let mut key = String::new();
    for attr in &entry.attrs {
        let Some(def) = indexed_type(schema, &attr.name) else {
            continue;
        };
        key.clear();
        key.push_str(&attr.name);
        key.make_ascii_lowercase();
        write_entry_term(out, 'h', &[&key]);
        let eq_rule = def.equality;
        let sub_rule = if spec.has_substrings(&key) {
            substring_rule_of(def)
        } else {
            None
        };
        let grams = spec.has_grams(&key);
        let pair = pair_of(&key);
        // Most attributes find substrings with their equality rule: one normalisation serves
        // both kinds of term.
        let shared = sub_rule.is_some() && sub_rule == eq_rule;
        for v in &attr.values {
            if let Some(pair) = pair {
                // The other attribute of the pair had this value under the same rules: the
                // terms a filter on either asks for are written.
                let seen = (pair, eq_rule, sub_rule, v.as_slice());
                // (Both attributes of a pair have grams or neither has, so the first one
                // gave the text its grams too.)
                if pair_values.contains(&seen) {
                    continue;
                }
                pair_values.push(seen);
            }
            let mut normalized = None;
            if let Some(rule) = eq_rule {
                match rule.try_normalize(v, schema) {
                    Some(n) => {
                        write_equality(out, &key, &n);
                        normalized = Some(n).filter(|_| shared);
                    }
                    None => write_equality(out, &key, &rule.normalize(v, schema)),
                }
                out.push(TERM_SEP);
            }
            let Some(rule) = sub_rule else {
                continue;
            };
            let Some(n) = normalized.or_else(|| {
                if shared {
                    None
                } else {
                    rule.try_normalize(v, schema)
                }
            }) else {
                continue;
            };
            let text = String::from_utf8_lossy(&n);
            for (at, c) in text.char_indices().take(PREFIX_CHARS) {
                let upto = at + c.len_utf8();
                write_entry_term(out, 'p', &[term_attr(&key), text.get(..upto).unwrap_or("")]);
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
    // A text inside another one (a given name inside the full name, the ONE ID inside the
    // mail address, a display name equal to the name) has no gram the other lacks.
    gram_sources.sort_unstable_by_key(|t| std::cmp::Reverse(t.len()));
    let mut done: Vec<&str> = Vec::with_capacity(gram_sources.len());
    let mut bounds = Vec::new();
    // Each gram once per entry: the texts share most of theirs (the user name in `uid` and
    // `mail`, letters that recur), and tantivy looks every term up again even when the
    // entry already has it: 190 grams an entry are 87 distinct ones.
    let mut written: rustc_hash::FxHashSet<&str> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(256, Default::default());
    for text in &gram_sources {
        if done.iter().any(|d| d.contains(text.as_str())) {
            continue;
        }
        done.push(text);
        let folded = fold(text);
        if folded != *text {
            let mut own: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
            for_each_gram(text, &mut bounds, |g| {
                own.insert(g);
            });
            for_each_gram(&folded, &mut bounds, |g| {
                if !own.contains(g) {
                    write_entry_term(out, 'f', &[g]);
                }
            });
        }
        for_each_gram(text, &mut bounds, |g| {
            if written.insert(g) {
                write_entry_term(out, 'g', &[g]);
            }
        });
    }
}

/// The name [`TermTokenizer`] is registered under.
pub const TERM_TOKENIZER: &str = "onepages-terms";

/// Splits a document's terms at [`TERM_SEP`] (see [`write_entry_terms`]); each piece is one
/// term, as is.
#[derive(Clone, Default)]
pub struct TermTokenizer {
    token: tantivy::tokenizer::Token,
}

pub struct TermStream<'a> {
    text: &'a str,
    next: usize,
    token: &'a mut tantivy::tokenizer::Token,
}

impl tantivy::tokenizer::Tokenizer for TermTokenizer {
    type TokenStream<'a> = TermStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> TermStream<'a> {
        self.token.reset();
        TermStream {
            text,
            next: 0,
            token: &mut self.token,
        }
    }
}

impl tantivy::tokenizer::TokenStream for TermStream<'_> {
    fn advance(&mut self) -> bool {
        while self.next < self.text.len() {
            let start = self.next;
            let rest = self.text.get(start..).unwrap_or("");
            let len = rest.find(TERM_SEP).unwrap_or(rest.len());
            self.next = start + len + TERM_SEP.len_utf8();
            if len > 0 {
                let t = &mut *self.token;
                t.text.clear();
                t.text.push_str(rest.get(..len).unwrap_or(""));
                t.offset_from = start;
                t.offset_to = start + len;
                t.position = t.position.wrapping_add(1);
                return true;
            }
        }
        false
    }

    fn token(&self) -> &tantivy::tokenizer::Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut tantivy::tokenizer::Token {
        self.token
    }
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

    /// Paired attributes write one set of terms for a value they share, and each its own for
    /// values they do not: a filter on either finds the entry.
    #[test]
    fn paired_attributes_share_terms() {
        let schema = Schema::builtin().unwrap();
        let names: Vec<String> = ["cn", "displayName", "o", "company", "ou", "department"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let spec = IndexSpec::new(&names, &schema);
        let mut e = Entry::new("cn=x".into(), "cn=x".into());
        for (a, v) in [
            ("cn", "Côté"),
            ("displayName", "Côté"),
            ("o", "Lab"),
            ("company", "Lab"),
            ("ou", "Cardiology"),
            ("department", "Nursing"),
        ] {
            e.add_values(&schema, a, vec![v.as_bytes().to_vec()]);
        }
        let mut text = String::new();
        write_entry_terms(&e, &schema, &spec, &mut text);
        let all: Vec<&str> = text.split(TERM_SEP).filter(|t| !t.is_empty()).collect();
        for (attr, value, prefix) in [
            ("displayname", "côté", "cô"),
            ("cn", "côté", "cô"),
            ("company", "lab", "la"),
            ("department", "nursing", "nu"),
            ("ou", "cardiology", "ca"),
        ] {
            assert!(all.contains(&equality_term(attr, value.as_bytes()).as_str()));
            assert!(all.contains(&prefix_term(attr, prefix).as_str()), "{attr}");
            assert!(all.contains(&presence_term(attr).as_str()));
        }
        // The shared value's terms are written once.
        let once = prefix_term("cn", "cô");
        assert_eq!(all.iter().filter(|t| **t == once).count(), 1);
        let once = equality_term("o", b"lab");
        assert_eq!(all.iter().filter(|t| **t == once).count(), 1);
    }

    #[test]
    fn tokenizer_splits_at_the_term_separator() {
        use tantivy::tokenizer::{TokenStream, Tokenizer};
        let mut tok = TermTokenizer::default();
        let text =
            format!("h{SEP}cn{TERM_SEP}{TERM_SEP}g{SEP}o s{TERM_SEP}p{SEP}cn{SEP}ô{TERM_SEP}");
        let mut stream = tok.token_stream(&text);
        let mut seen = Vec::new();
        while stream.advance() {
            seen.push(stream.token().text.clone());
        }
        assert_eq!(
            seen,
            vec![
                presence_term("cn"),
                gram_term("o s"),
                prefix_term("cn", "ô")
            ]
        );
    }

    #[test]
    fn a_value_cannot_make_terms_of_its_own() {
        let sneaky = format!("a{TERM_SEP}g{SEP}zzz");
        let t = equality_term("cn", sneaky.as_bytes());
        assert!(!t.contains(TERM_SEP));
        let mut out = String::new();
        write_term(&mut out, 'e', &["cn", &sneaky]);
        assert_eq!(out, t);
    }
}
