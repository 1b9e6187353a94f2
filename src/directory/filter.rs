//! Search filters (RFC 4511 §4.5.1): compiled once against the schema, evaluated per entry.
//!
//! Compiling resolves every attribute description (case-insensitive, aliases, options, subtypes),
//! picks the matching rule, normalises the assertion value once, and enforces the depth and size
//! budget. Items the server cannot evaluate — unknown attributes, rules the attribute lacks,
//! values invalid for the rule, attributes hidden from the requester — compile to
//! [`Filter::Undefined`], which RFC 4511 §4.5.1.7 makes neither true nor false, so an OR of
//! client guesses still matches on its other branches. This module is the one place where LDAP
//! filter semantics live: the index only proposes candidates, this decides.

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

use super::dn::Dn;
use super::entry::AttrSource;
#[cfg(test)]
use super::entry::Entry;
use super::matching::{approx_match, prep_into, substring_match, Rule, RulePurpose};
use super::schema::Schema;
use super::secret::Sight;

/// Three-valued logic of RFC 4511 §4.5.1.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Undefined,
}

impl Tri {
    pub fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// The attribute(s) one filter item looks at: the named type and its subtypes, by the schema's
/// spelling.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Lower-case canonical name of the type named in the filter (index keys use it).
    pub key: String,
    pub names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equality {
        target: Target,
        rule: Rule,
        value: Vec<u8>,
    },
    Substring {
        target: Target,
        rule: Rule,
        initial: Option<String>,
        any: Vec<String>,
        last: Option<String>,
    },
    Ordering {
        target: Target,
        rule: Rule,
        value: Vec<u8>,
        greater: bool,
    },
    Present(Target),
    Approx {
        target: Target,
        value: String,
    },
    Extensible {
        /// `None`: every attribute of the entry.
        target: Option<Target>,
        rule: Rule,
        purpose: RulePurpose,
        value: Vec<u8>,
        pattern: Option<(Option<String>, Vec<String>, Option<String>)>,
        dn_attributes: bool,
        /// What the requester may see (a typeless item reads only those attributes).
        sight: Sight,
    },
    /// Ambiguous name resolution: `(anr=helene cote)`. `text` is folded; `split` holds the
    /// two halves of a value with a space (first/last and last/first); `exact` is AD's `=x`.
    Anr {
        text: String,
        split: Option<(String, String)>,
        exact: bool,
    },
    /// `(objectClass=*)`: every entry has an object class.
    Everything,
    Undefined,
}

#[derive(Clone, Copy, Debug)]
pub struct FilterLimits {
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            max_depth: 32,
            max_elements: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("filter nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("filter has more than {0} elements")]
    TooLarge(usize),
}

struct Compiler<'a> {
    schema: &'a Schema,
    limits: FilterLimits,
    elements: usize,
    sight: Sight,
}

/// Compiles a filter for a requester who sees every attribute but the secret ones.
pub fn compile(
    filter: &LdapFilter,
    schema: &Schema,
    limits: FilterLimits,
) -> Result<Filter, FilterError> {
    compile_for(filter, schema, limits, Sight::Full)
}

/// Compiles a filter for a requester with this sight: items on attributes it may not see are
/// Undefined, as for unknown ones.
pub fn compile_for(
    filter: &LdapFilter,
    schema: &Schema,
    limits: FilterLimits,
    sight: Sight,
) -> Result<Filter, FilterError> {
    let mut c = Compiler {
        schema,
        limits,
        elements: 0,
        sight,
    };
    c.compile(filter, 1)
}

impl Compiler<'_> {
    fn compile(&mut self, f: &LdapFilter, depth: usize) -> Result<Filter, FilterError> {
        if depth > self.limits.max_depth {
            return Err(FilterError::TooDeep(self.limits.max_depth));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(FilterError::TooLarge(self.limits.max_elements));
        }
        Ok(match f {
            LdapFilter::And(items) => Filter::And(
                items
                    .iter()
                    .map(|i| self.compile(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            LdapFilter::Or(items) => Filter::Or(
                items
                    .iter()
                    .map(|i| self.compile(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            LdapFilter::Not(inner) => Filter::Not(Box::new(self.compile(inner, depth + 1)?)),
            LdapFilter::Equality(attr, value) if attr.eq_ignore_ascii_case("anr") => anr(value),
            LdapFilter::Approx(attr, value) if attr.eq_ignore_ascii_case("anr") => anr(value),
            LdapFilter::Substring(attr, sub) if attr.eq_ignore_ascii_case("anr") => {
                match (&sub.initial, sub.any.is_empty(), &sub.final_) {
                    (Some(i), true, None) => anr(i),
                    _ => Filter::Undefined,
                }
            }
            LdapFilter::Equality(attr, value) => self.equality(attr, value.as_bytes()),
            LdapFilter::Substring(attr, sub) => self.substring(attr, sub),
            LdapFilter::GreaterOrEqual(attr, value) => self.ordering(attr, value, true),
            LdapFilter::LessOrEqual(attr, value) => self.ordering(attr, value, false),
            LdapFilter::Present(attr) => {
                if self.is_object_class(attr) {
                    Filter::Everything
                } else {
                    match self.target(attr) {
                        Some(t) => Filter::Present(t),
                        None => Filter::Undefined,
                    }
                }
            }
            LdapFilter::Approx(attr, value) => match self.target(attr) {
                Some(t) => Filter::Approx {
                    target: t,
                    value: value.clone(),
                },
                None => Filter::Undefined,
            },
            LdapFilter::Extensible(mra) => self.extensible(mra),
        })
    }

    fn is_object_class(&self, attr: &str) -> bool {
        self.schema
            .attr_described(attr)
            .is_ok_and(|a| a.name().eq_ignore_ascii_case("objectClass"))
    }

    /// Resolves an attribute description; `None` when unknown, when an option is not
    /// recognized (`cn;lang-fr`: this directory holds no tagged values, RFC 4512 §2.5.2), or
    /// hidden from the requester (secret, or private to administrators: `secret::Sight`).
    fn target(&self, attr: &str) -> Option<Target> {
        let id = self.schema.describe(attr).ok()?.id;
        let at = self.schema.attr_by_id(id)?;
        if self.sight.hides(at.name()) {
            return None;
        }
        let names = self
            .schema
            .with_subtypes(id)
            .iter()
            .filter_map(|i| self.schema.attr_by_id(*i))
            .map(|a| a.name().to_string())
            .collect();
        Some(Target {
            key: at.name().to_ascii_lowercase(),
            names,
        })
    }

    fn equality(&self, attr: &str, value: &[u8]) -> Filter {
        let Some(target) = self.target(attr) else {
            return Filter::Undefined;
        };
        let Some(rule) = self.schema.attr(attr).and_then(|a| a.equality) else {
            return Filter::Undefined;
        };
        match rule.try_normalize(value, self.schema) {
            Some(value) => Filter::Equality {
                target,
                rule,
                value,
            },
            None => Filter::Undefined,
        }
    }

    fn substring(&self, attr: &str, sub: &LdapSubstringFilter) -> Filter {
        let Some(target) = self.target(attr) else {
            return Filter::Undefined;
        };
        let at = self.schema.attr(attr);
        let rule = at
            .and_then(|a| a.substr)
            .or_else(|| at.and_then(|a| a.equality).filter(|r| r.is_string()));
        let Some(rule) = rule.filter(|r| r.is_string()) else {
            return Filter::Undefined;
        };
        match substring_pieces(rule, sub) {
            Some((initial, any, last)) => Filter::Substring {
                target,
                rule,
                initial,
                any,
                last,
            },
            None => Filter::Undefined,
        }
    }

    fn ordering(&self, attr: &str, value: &str, greater: bool) -> Filter {
        let Some(target) = self.target(attr) else {
            return Filter::Undefined;
        };
        let at = self.schema.attr(attr);
        // Strings without an ORDERING rule are ordered by their equality normalisation, which is
        // what users of address books expect from (cn>=m).
        let rule = at
            .and_then(|a| a.ordering)
            .or_else(|| at.and_then(|a| a.equality).filter(|r| r.is_string()));
        let Some(rule) = rule else {
            return Filter::Undefined;
        };
        match rule.try_normalize(value.as_bytes(), self.schema) {
            Some(value) => Filter::Ordering {
                target,
                rule,
                value,
                greater,
            },
            None => Filter::Undefined,
        }
    }

    fn extensible(&self, mra: &LdapMatchingRuleAssertion) -> Filter {
        let target = match &mra.type_ {
            Some(t) => match self.target(t) {
                Some(t) => Some(t),
                None => return Filter::Undefined,
            },
            None => None,
        };
        let (rule, purpose) = match (&mra.matching_rule, &mra.type_) {
            (Some(r), _) => match self.schema.matching_rule(r) {
                Some(rp) => rp,
                None => return Filter::Undefined,
            },
            (None, Some(t)) => match self.schema.attr(t).and_then(|a| a.equality) {
                Some(r) => (r, RulePurpose::Equality),
                None => return Filter::Undefined,
            },
            // RFC 4511 §4.5.1.7.7: one of type and rule must be present.
            (None, None) => return Filter::Undefined,
        };
        let mut pattern = None;
        let mut value = Vec::new();
        if purpose == RulePurpose::Substrings {
            if !rule.is_string() {
                return Filter::Undefined;
            }
            let sub = LdapSubstringFilter::from(mra.match_value.as_str());
            match substring_pieces(rule, &sub) {
                Some(p) => pattern = Some(p),
                None => return Filter::Undefined,
            }
        } else {
            match rule.try_normalize(mra.match_value.as_bytes(), self.schema) {
                Some(v) => value = v,
                None => return Filter::Undefined,
            }
        }
        Filter::Extensible {
            target,
            rule,
            purpose,
            value,
            pattern,
            dn_attributes: mra.dn_attributes,
            sight: self.sight,
        }
    }
}

type Pieces = (Option<String>, Vec<String>, Option<String>);

fn anr(value: &str) -> Filter {
    let (exact, rest) = match value.trim().strip_prefix('=') {
        Some(r) => (true, r),
        None => (false, value),
    };
    let text = crate::directory::matching::fold(rest);
    if text.is_empty() {
        return Filter::Undefined;
    }
    let split = text
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.trim().to_string()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty());
    Filter::Anr { text, split, exact }
}

fn substring_pieces(rule: Rule, sub: &LdapSubstringFilter) -> Option<Pieces> {
    let initial = match &sub.initial {
        Some(i) => Some(rule.normalize_piece(i.as_bytes())?).filter(|s| !s.is_empty()),
        None => None,
    };
    let mut any = Vec::new();
    for a in &sub.any {
        let p = rule.normalize_piece(a.as_bytes())?;
        if !p.is_empty() {
            any.push(p);
        }
    }
    let last = match &sub.final_ {
        Some(f) => Some(rule.normalize_piece(f.as_bytes())?).filter(|s| !s.is_empty()),
        None => None,
    };
    Some((initial, any, last))
}

/// Attributes the server computes when read; they are never stored or indexed (a filter on
/// them examines the entries in scope: the reader adds `oneMailSecure`,
/// `structuralObjectClass` and `hasSubordinates` to a candidate when its filter reads them,
/// `entryDN` is read from the entry's name).
pub fn is_virtual(name: &str) -> bool {
    [
        "entryDN",
        "oneMailSecure",
        "structuralObjectClass",
        "hasSubordinates",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// The attributes ambiguous name resolution looks at (MS-ADTS 3.1.1.3.1.3.4, with the
/// directory's naming attributes in place of Active Directory's).
pub const ANR_ATTRIBUTES: &[&str] = &["displayName", "cn", "givenName", "sn", "mail", "uid"];

/// Splits folded text into words at spaces, hyphens, apostrophes, dots and '@'.
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '\'' | '.' | '@' | '_' | ','))
        .filter(|w| !w.is_empty())
}

/// `true` when the folded text, or one of its words, starts with `prefix` (folded).
pub fn folded_prefix_match(folded: &str, prefix: &str) -> bool {
    folded.starts_with(prefix) || words(folded).any(|w| w.starts_with(prefix))
}

/// The values a filter item sees for one attribute name, including values the server computes.
fn any_value_named<E: AttrSource + ?Sized>(
    entry: &E,
    name: &str,
    test: &mut impl FnMut(&[u8]) -> bool,
) -> bool {
    if name.eq_ignore_ascii_case("entryDN") {
        return test(entry.dn().as_bytes());
    }
    entry.values_of(name).any(test)
}

impl Filter {
    /// What evaluating the filter on one entry costs, in work units (a search is charged
    /// this plus one for every entry it examines): presence and equality are cheap,
    /// substrings cost by their pieces, approximate matches (folding and edit distance over
    /// every value) and ANR (six attributes, prefixes and splits) cost most. An attribute
    /// type with subtypes (`name`) costs for each type it reads.
    pub fn cost(&self) -> u64 {
        let types = |t: &Target| t.names.len().max(1) as u64;
        match self {
            Filter::And(items) | Filter::Or(items) => {
                1 + items.iter().map(Filter::cost).sum::<u64>()
            }
            Filter::Not(inner) => 1 + inner.cost(),
            Filter::Everything | Filter::Undefined => 1,
            Filter::Present(t) => types(t),
            Filter::Equality { target, .. } | Filter::Ordering { target, .. } => 2 * types(target),
            Filter::Substring { target, any, .. } => (3 + any.len() as u64) * types(target),
            Filter::Approx { target, .. } => 16 * types(target),
            Filter::Extensible {
                target,
                dn_attributes,
                ..
            } => match target {
                Some(t) if !dn_attributes => 8 * types(t),
                _ => 64,
            },
            Filter::Anr { .. } => 32,
        }
    }

    /// Whether evaluating the filter may read the attribute `name` (any case): an extensible
    /// item without a type reads every attribute.
    pub fn reads(&self, name: &str) -> bool {
        let hit = |t: &Target| t.names.iter().any(|n| n.eq_ignore_ascii_case(name));
        match self {
            Filter::And(items) | Filter::Or(items) => items.iter().any(|i| i.reads(name)),
            Filter::Not(inner) => inner.reads(name),
            Filter::Everything | Filter::Undefined => false,
            Filter::Anr { .. } => ANR_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name)),
            Filter::Present(target)
            | Filter::Equality { target, .. }
            | Filter::Substring { target, .. }
            | Filter::Ordering { target, .. }
            | Filter::Approx { target, .. } => hit(target),
            Filter::Extensible { target, .. } => target.as_ref().is_none_or(hit),
        }
    }

    /// Evaluates the filter on one entry.
    pub fn evaluate<E: AttrSource + ?Sized>(&self, entry: &E, schema: &Schema) -> Tri {
        match self {
            Filter::And(items) => {
                let mut result = Tri::True;
                for i in items {
                    match i.evaluate(entry, schema) {
                        Tri::False => return Tri::False,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                result
            }
            Filter::Or(items) => {
                let mut result = Tri::False;
                for i in items {
                    match i.evaluate(entry, schema) {
                        Tri::True => return Tri::True,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                result
            }
            Filter::Not(inner) => match inner.evaluate(entry, schema) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Undefined => Tri::Undefined,
            },
            Filter::Everything => Tri::True,
            Filter::Undefined => Tri::Undefined,
            Filter::Anr { text, split, exact } => {
                Tri::from_bool(anr_matches(entry, text, split.as_ref(), *exact))
            }
            Filter::Present(target) => Tri::from_bool(
                target
                    .names
                    .iter()
                    .any(|n| any_value_named(entry, n, &mut |_| true)),
            ),
            Filter::Equality {
                target,
                rule,
                value,
            } => Tri::from_bool(any_value(entry, target, |v| {
                equal_normalized(*rule, v, value, schema)
            })),
            Filter::Substring {
                target,
                rule,
                initial,
                any,
                last,
            } => Tri::from_bool(any_value(entry, target, |v| {
                if let Some(hit) =
                    ascii_case_ignore_substring(*rule, v, initial.as_deref(), any, last.as_deref())
                {
                    return hit;
                }
                if let Some(hit) =
                    prepared_substring(*rule, v, initial.as_deref(), any, last.as_deref())
                {
                    return hit;
                }
                rule.try_normalize(v, schema).is_some_and(|n| {
                    std::str::from_utf8(&n)
                        .is_ok_and(|s| substring_match(s, initial.as_deref(), any, last.as_deref()))
                })
            })),
            Filter::Ordering {
                target,
                rule,
                value,
                greater,
            } => Tri::from_bool(any_value(entry, target, |v| {
                rule.try_normalize(v, schema).is_some_and(|n| {
                    let ord = rule.compare(&n, value);
                    if *greater {
                        ord != std::cmp::Ordering::Less
                    } else {
                        ord != std::cmp::Ordering::Greater
                    }
                })
            })),
            Filter::Approx { target, value } => Tri::from_bool(any_value(entry, target, |v| {
                std::str::from_utf8(v).is_ok_and(|s| approx_match(s, value))
            })),
            Filter::Extensible {
                target,
                rule,
                purpose,
                value,
                pattern,
                dn_attributes,
                sight,
            } => {
                let test = |v: &[u8]| -> bool {
                    let Some(n) = rule.try_normalize(v, schema) else {
                        return false;
                    };
                    match purpose {
                        RulePurpose::Equality => n == *value,
                        RulePurpose::Ordering => {
                            rule.compare(&n, value) == std::cmp::Ordering::Less
                        }
                        RulePurpose::Substrings => match pattern {
                            Some((i, a, l)) => std::str::from_utf8(&n)
                                .is_ok_and(|s| substring_match(s, i.as_deref(), a, l.as_deref())),
                            None => false,
                        },
                    }
                };
                let mut hit = match target {
                    Some(t) => any_value(entry, t, test),
                    None => entry
                        .attribute_names()
                        .into_iter()
                        .filter(|name| !sight.hides(name))
                        .any(|name| entry.values_of(name).any(test)),
                };
                if !hit && *dn_attributes {
                    if let Ok(dn) = Dn::parse(entry.dn()) {
                        hit = dn.rdns().iter().flat_map(|r| r.0.iter()).any(|ava| {
                            let matches_type = match target {
                                Some(t) => t.names.iter().any(|n| {
                                    schema.canonical_name(&ava.attr).eq_ignore_ascii_case(n)
                                }),
                                None => true,
                            };
                            matches_type && test(ava.value.as_bytes())
                        });
                    }
                }
                Tri::from_bool(hit)
            }
        }
    }

    /// `true` when the filter is true for the entry (false and undefined both exclude it).
    pub fn matches<E: AttrSource + ?Sized>(&self, entry: &E, schema: &Schema) -> bool {
        self.evaluate(entry, schema) == Tri::True
    }
}

/// Folded values of an attribute.
fn folded<E: AttrSource + ?Sized>(entry: &E, name: &str) -> Vec<String> {
    entry
        .values_of(name)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(crate::directory::matching::fold)
        .collect()
}

fn anr_matches<E: AttrSource + ?Sized>(
    entry: &E,
    text: &str,
    split: Option<&(String, String)>,
    exact: bool,
) -> bool {
    let test = |f: &String| {
        if exact {
            f == text
        } else {
            folded_prefix_match(f, text)
        }
    };
    if ANR_ATTRIBUTES
        .iter()
        .any(|a| folded(entry, a).iter().any(test))
    {
        return true;
    }
    let Some((first, last)) = split else {
        return false;
    };
    let given = folded(entry, "givenName");
    let sn = folded(entry, "sn");
    let starts = |vals: &[String], p: &str| {
        vals.iter().any(|v| {
            if exact {
                v == p
            } else {
                folded_prefix_match(v, p)
            }
        })
    };
    (starts(&given, first) && starts(&sn, last)) || (starts(&given, last) && starts(&sn, first))
}

fn any_value<E: AttrSource + ?Sized>(
    entry: &E,
    target: &Target,
    mut test: impl FnMut(&[u8]) -> bool,
) -> bool {
    target
        .names
        .iter()
        .any(|n| any_value_named(entry, n, &mut test))
}

thread_local! {
    // A value normalised for matching, reused from one value to the next.
    static PREPARED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Substring match for the string rules whose normalisation is [`super::matching::prep`]: the value is
/// normalised into a reused buffer instead of a new string. `None` when the rule is another
/// one (or the value is not text), so the caller takes the general path.
fn prepared_substring(
    rule: Rule,
    value: &[u8],
    initial: Option<&str>,
    any: &[String],
    last: Option<&str>,
) -> Option<bool> {
    let fold_case = match rule {
        Rule::CaseIgnore | Rule::CaseIgnoreList => true,
        Rule::CaseExact => false,
        _ => return None,
    };
    let text = std::str::from_utf8(value).ok()?;
    PREPARED.with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        prep_into(text, fold_case, &mut buf);
        Some(substring_match(&buf, initial, any, last))
    })
}

/// Substring matching without normalising (allocating) when the stored value is ASCII text
/// that caseIgnore normalisation would only lower-case: no leading, trailing or doubled white
/// space. `None` means "take the general path".
fn ascii_case_ignore_substring(
    rule: Rule,
    value: &[u8],
    initial: Option<&str>,
    any: &[String],
    last: Option<&str>,
) -> Option<bool> {
    if !matches!(rule, Rule::CaseIgnore | Rule::CaseIgnoreIa5) || !value.is_ascii() {
        return None;
    }
    let space = |b: &u8| b.is_ascii_whitespace();
    if value.first().is_some_and(space)
        || value.last().is_some_and(space)
        || value.iter().any(|b| *b != b' ' && space(b))
        || value.windows(2).any(|w| w.iter().all(space))
    {
        return None;
    }
    // Pieces are already normalised (lower case); a non-ASCII piece cannot match ASCII text.
    let find = |hay: &[u8], needle: &[u8]| -> Option<usize> {
        if needle.is_empty() {
            return Some(0);
        }
        hay.windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
    };
    let mut rest = value;
    if let Some(init) = initial {
        let init = init.as_bytes();
        match rest.get(..init.len()) {
            Some(head) if head.eq_ignore_ascii_case(init) => {
                rest = rest.get(init.len()..).unwrap_or_default();
            }
            _ => return Some(false),
        }
    }
    for piece in any {
        let p = piece.as_bytes();
        match find(rest, p) {
            Some(pos) => rest = rest.get(pos + p.len()..).unwrap_or_default(),
            None => return Some(false),
        }
    }
    Some(match last {
        Some(l) => {
            let l = l.as_bytes();
            rest.len() >= l.len()
                && rest
                    .get(rest.len() - l.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(l))
        }
        None => true,
    })
}

/// Equality without allocating in the common case of ASCII text under caseIgnore rules.
fn equal_normalized(rule: Rule, stored: &[u8], assertion: &[u8], schema: &Schema) -> bool {
    if matches!(rule, Rule::CaseIgnore | Rule::CaseIgnoreIa5)
        && stored.is_ascii()
        && stored.len() == assertion.len()
        && !stored.contains(&b' ')
        && !stored.contains(&b'\t')
    {
        return stored.eq_ignore_ascii_case(assertion);
    }
    rule.try_normalize(stored, schema)
        .is_some_and(|n| n == assertion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::filter_text::parse_filter as parse_ldap_filter_str;

    #[test]
    fn reads_names_the_attributes_a_filter_looks_at() {
        let schema = Schema::builtin().unwrap();
        let c = |f: &str| {
            compile(
                &parse_ldap_filter_str(f).unwrap(),
                &schema,
                FilterLimits::default(),
            )
            .unwrap()
        };
        assert!(c("(&(oneMailSecure=TRUE)(cn=dew*))").reads("onemailsecure"));
        assert!(c("(!(oneMailSecure=FALSE))").reads("oneMailSecure"));
        assert!(!c("(|(cn=*a*)(mail=*a*)(givenName=*a*)(sn=*a*))").reads("oneMailSecure"));
        assert!(c("(:caseIgnoreMatch:=x)").reads("oneMailSecure"));
        assert!(c("(anr=x)").reads("sn"));
        assert!(!c("(anr=x)").reads("oneMailSecure"));
    }

    fn entry(schema: &Schema) -> Entry {
        let mut e = Entry::new(
            "cn=Hélène Côté-Tremblay,ou=people,dc=x".into(),
            String::new(),
        );
        e.add_values(schema, "objectClass", vec![b"inetOrgPerson".to_vec()]);
        e.add_values(
            schema,
            "cn",
            vec!["Hélène Côté-Tremblay".as_bytes().to_vec()],
        );
        e.add_values(schema, "sn", vec!["Côté-Tremblay".as_bytes().to_vec()]);
        e.add_values(schema, "givenName", vec!["Hélène".as_bytes().to_vec()]);
        e.add_values(schema, "mail", vec![b"helene.cote@one-mail.on.ca".to_vec()]);
        e.add_values(schema, "telephoneNumber", vec![b"+1 416 555-0100".to_vec()]);
        e.add_values(schema, "userPassword", vec![b"{SSHA}xyz".to_vec()]);
        e
    }

    fn eval(f: &str) -> Tri {
        let schema = Schema::builtin().unwrap();
        let parsed = parse_ldap_filter_str(f).unwrap();
        let compiled = compile(&parsed, &schema, FilterLimits::default()).unwrap();
        compiled.evaluate(&entry(&schema), &schema)
    }

    #[test]
    fn equality_and_aliases() {
        assert_eq!(eval("(CN=hélène côté-tremblay)"), Tri::True);
        assert_eq!(eval("(commonName=HÉLÈNE CÔTÉ-TREMBLAY)"), Tri::True);
        assert_eq!(eval("(mail=HELENE.COTE@one-mail.on.ca)"), Tri::True);
        assert_eq!(eval("(telephoneNumber=+14165550100)"), Tri::True);
        assert_eq!(eval("(objectClass=INETORGPERSON)"), Tri::True);
    }

    #[test]
    fn unknown_attributes_are_undefined() {
        assert_eq!(eval("(IMHandle=x)"), Tri::Undefined);
        assert_eq!(eval("(|(IMHandle=x)(sn=côté*))"), Tri::True);
        assert_eq!(eval("(!(IMHandle=x))"), Tri::Undefined);
        assert_eq!(eval("(&(IMHandle=x)(sn=nobody))"), Tri::False);
    }

    #[test]
    fn substrings_and_subtypes() {
        assert_eq!(eval("(cn=*lène*trem*)"), Tri::True);
        assert_eq!(eval("(sn=*blay)"), Tri::True);
        assert_eq!(eval("(name=hél*)"), Tri::True);
        assert_eq!(eval("(cn=*trem*lène*)"), Tri::False);
    }

    #[test]
    fn passwords_are_hidden_from_non_admins() {
        assert_eq!(eval("(userPassword=*)"), Tri::Undefined);
        assert_eq!(eval("(!(userPassword=*))"), Tri::Undefined);
    }

    #[test]
    fn ordering_approx_extensible() {
        assert_eq!(eval("(sn>=c)"), Tri::True);
        assert_eq!(eval("(sn<=c)"), Tri::False);
        assert_eq!(eval("(cn~=helene cote tremblay)"), Tri::True);
        assert_eq!(eval("(cn:caseExactMatch:=Hélène Côté-Tremblay)"), Tri::True);
        assert_eq!(
            eval("(cn:caseExactMatch:=hélène côté-tremblay)"),
            Tri::False
        );
        assert_eq!(eval("(ou:dn:=people)"), Tri::True);
        assert_eq!(eval("(:2.5.13.2:=côté-tremblay)"), Tri::True);
        assert_eq!(eval("(cn:nosuchRule:=x)"), Tri::Undefined);
    }

    #[test]
    fn ambiguous_name_resolution() {
        assert_eq!(eval("(anr=helene cote)"), Tri::True);
        assert_eq!(eval("(anr=cote helene)"), Tri::True);
        assert_eq!(eval("(anr=TREMBLAY)"), Tri::True);
        assert_eq!(eval("(anr=helene.cote)"), Tri::True);
        assert_eq!(eval("(anr=smith)"), Tri::False);
        assert_eq!(eval("(anr=tremblay helene)"), Tri::True);
        assert_eq!(eval("(anr=helene smith)"), Tri::False);
        assert_eq!(eval("(anr==côté-tremblay)"), Tri::True);
        assert_eq!(eval("(anr==côté)"), Tri::False);
    }

    #[test]
    fn budget_is_enforced() {
        let schema = Schema::builtin().unwrap();
        let mut f = "(cn=x)".to_string();
        for _ in 0..40 {
            f = format!("(!{f})");
        }
        let parsed = parse_ldap_filter_str(&f).unwrap();
        let r = compile(&parsed, &schema, FilterLimits::default());
        assert_eq!(r, Err(FilterError::TooDeep(32)));
    }
}
