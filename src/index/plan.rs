//! From a compiled filter to an index query that returns a superset of its matches.
//!
//! Three-valued logic makes this simple: an item that is Undefined for every entry plans to
//! [`Plan::Nothing`]; an item the index cannot narrow plans to [`Plan::All`] (scan); AND keeps
//! the narrowest children, OR needs every child narrowed, NOT is never narrowed.

use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use super::terms::{
    equality_term, gram_term, piece_grams, prefix_term, presence_term, substring_rule, IndexSpec,
};
use crate::directory::filter::{Filter, Target};
use crate::directory::matching::fold;
use crate::directory::schema::Schema;

pub enum Plan {
    /// The index cannot narrow: every entry in scope is a candidate.
    All,
    /// No entry can match.
    Nothing,
    Query(Box<dyn Query>),
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::All => f.write_str("All"),
            Plan::Nothing => f.write_str("Nothing"),
            Plan::Query(q) => write!(f, "Query({q:?})"),
        }
    }
}

pub struct Planner<'a> {
    pub schema: &'a Schema,
    pub spec: &'a IndexSpec,
    pub field: Field,
}

impl Planner<'_> {
    pub fn plan(&self, filter: &Filter) -> Plan {
        match filter {
            Filter::Undefined => Plan::Nothing,
            Filter::Everything | Filter::Not(_) => Plan::All,
            Filter::Ordering { .. } | Filter::Approx { .. } | Filter::Extensible { .. } => {
                Plan::All
            }
            Filter::Anr { text, split, .. } => self.anr(text, split.as_ref()),
            Filter::And(items) => {
                let mut queries: Vec<Box<dyn Query>> = Vec::new();
                for i in items {
                    match self.plan(i) {
                        Plan::Nothing => return Plan::Nothing,
                        Plan::All => {}
                        Plan::Query(q) => queries.push(q),
                    }
                }
                combine(queries, Occur::Must).map_or(Plan::All, Plan::Query)
            }
            Filter::Or(items) => {
                let mut queries: Vec<Box<dyn Query>> = Vec::new();
                for i in items {
                    match self.plan(i) {
                        Plan::Nothing => {}
                        Plan::All => return Plan::All,
                        Plan::Query(q) => queries.push(q),
                    }
                }
                combine(queries, Occur::Should).map_or(Plan::Nothing, Plan::Query)
            }
            Filter::Present(target) => self.per_name(target, |name| {
                self.indexable(name)
                    .then(|| vec![presence_term(&name.to_ascii_lowercase())])
            }),
            Filter::Equality {
                target,
                rule,
                value,
            } => self.per_name(target, |name| {
                let at = self.schema.attr(name)?;
                // Terms are normalised by the attribute's own rule; only use them when the filter
                // normalised its value the same way.
                if !self.indexable(name) || at.equality != Some(*rule) {
                    return None;
                }
                Some(vec![equality_term(&name.to_ascii_lowercase(), value)])
            }),
            Filter::Substring {
                target,
                rule,
                initial,
                any,
                last,
            } => self.per_name(target, |name| {
                let key = name.to_ascii_lowercase();
                if !self.indexable(name)
                    || !self.spec.has_substrings(&key)
                    || substring_rule(self.schema, name) != Some(*rule)
                {
                    return None;
                }
                let grams = self.spec.has_grams(&key);
                let mut terms = Vec::new();
                if let Some(i) = initial {
                    let mut f = fold(i);
                    // Folding trims; a typed trailing space ("o ") still narrows to values
                    // with a word after the text, and their folded prefixes keep that space.
                    if !f.is_empty() && i.ends_with(' ') {
                        f.push(' ');
                    }
                    if !f.is_empty() {
                        terms.push(prefix_term(&key, &f));
                        if grams && f.chars().count() > super::terms::PREFIX_CHARS {
                            terms.extend(piece_grams(&f).iter().map(|g| gram_term(g)));
                        }
                    }
                }
                if grams {
                    for piece in any.iter().chain(last.iter()) {
                        let f = fold(piece);
                        terms.extend(piece_grams(&f).iter().map(|g| gram_term(g)));
                    }
                }
                // Grams are shared by all attributes: the presence term keeps this one's.
                terms.push(presence_term(&key));
                Some(terms)
            }),
        }
    }

    /// Every ANR match has, in one naming attribute, a word starting with the text (or, split,
    /// given name and surname with words starting with each half), so the n-grams of the
    /// text's words narrow it. An exact (`=x`) match is narrower still.
    fn anr(&self, text: &str, split: Option<&(String, String)>) -> Plan {
        let grams_of = |attr: &str, text: &str| -> Option<Box<dyn Query>> {
            let key = self.schema.canonical_lower(attr);
            if !self.spec.has_grams(&key) {
                return None;
            }
            let mut terms: Vec<Box<dyn Query>> = crate::directory::filter::words(text)
                .flat_map(piece_grams)
                .map(|g| self.term(&gram_term(&g)))
                .collect();
            terms.push(self.term(&presence_term(&key)));
            combine(terms, Occur::Must)
        };
        let mut alternatives = Vec::new();
        for attr in crate::directory::filter::ANR_ATTRIBUTES {
            match grams_of(attr, text) {
                Some(q) => alternatives.push(q),
                None => return Plan::All,
            }
        }
        if let Some((a, b)) = split {
            for (first, last) in [(a, b), (b, a)] {
                match (grams_of("givenName", first), grams_of("sn", last)) {
                    (Some(x), Some(y)) => {
                        if let Some(q) = combine(vec![x, y], Occur::Must) {
                            alternatives.push(q);
                        }
                    }
                    _ => return Plan::All,
                }
            }
        }
        combine(alternatives, Occur::Should).map_or(Plan::Nothing, Plan::Query)
    }

    fn term(&self, t: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(self.field, t),
            IndexRecordOption::Basic,
        ))
    }

    fn indexable(&self, name: &str) -> bool {
        super::terms::is_indexed(self.schema, name)
    }

    /// ORs, over the target type and its subtypes, the AND of each one's terms; any type the
    /// index cannot answer for makes the whole item a scan.
    fn per_name(&self, target: &Target, terms_for: impl Fn(&str) -> Option<Vec<String>>) -> Plan {
        let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
        for name in &target.names {
            let Some(terms) = terms_for(name) else {
                return Plan::All;
            };
            let queries: Vec<Box<dyn Query>> = terms
                .into_iter()
                .map(|t| -> Box<dyn Query> {
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.field, &t),
                        IndexRecordOption::Basic,
                    ))
                })
                .collect();
            if let Some(q) = combine(queries, Occur::Must) {
                alternatives.push(q);
            }
        }
        combine(alternatives, Occur::Should).map_or(Plan::Nothing, Plan::Query)
    }
}

fn combine(mut queries: Vec<Box<dyn Query>>, occur: Occur) -> Option<Box<dyn Query>> {
    match queries.len() {
        0 => None,
        1 => queries.pop(),
        _ => Some(Box::new(BooleanQuery::new(
            queries.into_iter().map(|q| (occur, q)).collect(),
        ))),
    }
}
