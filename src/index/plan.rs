//! From a compiled filter to an index query that returns a superset of its matches.
//!
//! Three-valued logic makes this simple: an item that is Undefined for every entry plans to
//! [`Plan::Nothing`]; an item the index cannot narrow plans to [`Plan::All`] (scan); AND keeps
//! the narrowest children, OR needs every child narrowed, NOT is never narrowed.
//!
//! The plan is a tree of terms ([`Node`]) that is simplified before it becomes a tantivy
//! query: nested ANDs and ORs are flattened and repeated branches dropped, so Thunderbird's
//! four-way OR on the same text (`(|(cn=*ma*)(mail=*ma*)(givenName=*ma*)(sn=*ma*))`) reads
//! one posting list, not four intersections.

use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use super::terms::{
    equality_term, folded_gram_term, gram_term, piece_grams, prefix_term, presence_term,
    substring_rule, IndexSpec,
};
use crate::directory::filter::{Filter, Target};
use crate::directory::schema::Schema;

#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// The index cannot narrow: every entry in scope is a candidate.
    All,
    /// No entry can match.
    Nothing,
    Query(Node),
}

/// Which entries carry a term, or a combination of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Term(String),
    And(Vec<Node>),
    Or(Vec<Node>),
}

impl Node {
    /// Combines `nodes` (flattening children of the same kind, dropping repeats); `None` for
    /// none.
    fn combine(nodes: Vec<Node>, and: bool) -> Option<Node> {
        let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
        for n in nodes {
            let children = match n {
                Node::And(c) if and => c,
                Node::Or(c) if !and => c,
                other => vec![other],
            };
            for c in children {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ if and => Some(Node::And(out)),
            _ => Some(Node::Or(out)),
        }
    }

    fn and(nodes: Vec<Node>) -> Option<Node> {
        Node::combine(nodes, true)
    }

    fn or(nodes: Vec<Node>) -> Option<Node> {
        Node::combine(nodes, false)
    }

    /// The tantivy query over the terms field.
    pub fn to_query(&self, field: Field) -> Box<dyn Query> {
        match self {
            Node::Term(t) => Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::Basic,
            )),
            Node::And(c) | Node::Or(c) => {
                let occur = if matches!(self, Node::And(_)) {
                    Occur::Must
                } else {
                    Occur::Should
                };
                Box::new(BooleanQuery::new(
                    c.iter().map(|n| (occur, n.to_query(field))).collect(),
                ))
            }
        }
    }
}

pub struct Planner<'a> {
    pub schema: &'a Schema,
    pub spec: &'a IndexSpec,
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
                let mut nodes = Vec::new();
                for i in items {
                    match self.plan(i) {
                        Plan::Nothing => return Plan::Nothing,
                        Plan::All => {}
                        Plan::Query(q) => nodes.push(q),
                    }
                }
                Node::and(nodes).map_or(Plan::All, Plan::Query)
            }
            Filter::Or(items) => {
                let mut nodes = Vec::new();
                for i in items {
                    match self.plan(i) {
                        Plan::Nothing => {}
                        Plan::All => return Plan::All,
                        Plan::Query(q) => nodes.push(q),
                    }
                }
                Node::or(nodes).map_or(Plan::Nothing, Plan::Query)
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
                // Pieces come normalised by the same rule as the indexed values: their
                // prefix and grams are looked up as they are (a typed trailing space, "o ",
                // stays: it narrows to values with a word after the text).
                if let Some(i) = initial.as_deref().filter(|i| !i.trim().is_empty()) {
                    terms.push(prefix_term(&key, i));
                    if grams && i.chars().count() > super::terms::PREFIX_CHARS {
                        terms.extend(piece_grams(&lower(i)).iter().map(|g| gram_term(g)));
                    }
                }
                if grams {
                    for piece in any.iter().chain(last.iter()) {
                        let p = lower(piece);
                        if p.trim().is_empty() {
                            continue;
                        }
                        terms.extend(piece_grams(&p).iter().map(|g| gram_term(g)));
                    }
                }
                // Grams are shared by the naming attributes, which nearly every entry has:
                // their presence terms would narrow nothing and cost an intersection. They
                // stand in only when the text gave no term.
                if terms.is_empty() {
                    terms.push(presence_term(&key));
                }
                Some(terms)
            }),
        }
    }

    /// Every ANR match has, in one naming attribute, a word starting with the text (or, split,
    /// given name and surname with words starting with each half), so the n-grams of the
    /// text's words narrow it. An exact (`=x`) match is narrower still.
    fn anr(&self, text: &str, split: Option<&(String, String)>) -> Plan {
        let grams_of = |attr: &str, text: &str| -> Option<Node> {
            let key = self.schema.canonical_lower(attr);
            if !self.spec.has_grams(&key) {
                return None;
            }
            // Words are folded: a gram is in the value (`g`) or only in its folded form (`f`).
            let mut terms: Vec<Node> = crate::directory::filter::words(text)
                .flat_map(piece_grams)
                .map(|g| {
                    Node::Or(vec![
                        Node::Term(gram_term(&g)),
                        Node::Term(folded_gram_term(&g)),
                    ])
                })
                .collect();
            if terms.is_empty() {
                terms.push(Node::Term(presence_term(&key)));
            }
            Node::and(terms)
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
                        if let Some(q) = Node::and(vec![x, y]) {
                            alternatives.push(q);
                        }
                    }
                    _ => return Plan::All,
                }
            }
        }
        Node::or(alternatives).map_or(Plan::Nothing, Plan::Query)
    }

    fn indexable(&self, name: &str) -> bool {
        super::terms::is_indexed(self.schema, name)
    }

    /// ORs, over the target type and its subtypes, the AND of each one's terms; any type the
    /// index cannot answer for makes the whole item a scan.
    fn per_name(&self, target: &Target, terms_for: impl Fn(&str) -> Option<Vec<String>>) -> Plan {
        let mut alternatives = Vec::new();
        for name in &target.names {
            let Some(terms) = terms_for(name) else {
                return Plan::All;
            };
            if let Some(q) = Node::and(terms.into_iter().map(Node::Term).collect()) {
                alternatives.push(q);
            }
        }
        Node::or(alternatives).map_or(Plan::Nothing, Plan::Query)
    }
}

/// Grams are lower case (the naming attributes match case-insensitively; for a case-exact
/// rule, lower case is still necessary).
fn lower(piece: &str) -> std::borrow::Cow<'_, str> {
    if piece.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(piece.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::filter::{compile, FilterLimits};
    use crate::directory::filter_text::parse_filter;

    fn plan(text: &str) -> Plan {
        let schema = Schema::builtin().unwrap();
        let names: Vec<String> = ["cn", "sn", "givenName", "mail", "o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let spec = IndexSpec::new(&names, &schema);
        let filter = compile(
            &parse_filter(text).unwrap(),
            &schema,
            FilterLimits::default(),
        )
        .unwrap();
        Planner {
            schema: &schema,
            spec: &spec,
        }
        .plan(&filter)
    }

    fn term(t: String) -> Node {
        Node::Term(t)
    }

    #[test]
    fn thunderbird_or_reads_one_posting_list() {
        assert_eq!(
            plan("(|(cn=*ma*)(mail=*ma*)(givenName=*ma*)(sn=*ma*))"),
            Plan::Query(term(gram_term("ma")))
        );
        // Several words: the trigrams of each, once.
        assert_eq!(
            plan("(|(cn=*jean*roy*)(givenName=*jean*))"),
            Plan::Query(Node::Or(vec![
                Node::And(vec![
                    term(gram_term("ean")),
                    term(gram_term("jea")),
                    term(gram_term("roy")),
                ]),
                Node::And(vec![term(gram_term("ean")), term(gram_term("jea"))]),
            ]))
        );
    }

    #[test]
    fn spaces_at_the_edge_of_a_piece_stay_in_its_grams() {
        // Thunderbird users type "o " before the surname: the gram "o " (an "o" ending a
        // word), not every entry with an "o".
        assert_eq!(
            plan("(|(cn=*o *)(sn=*o *))"),
            Plan::Query(term(gram_term("o ")))
        );
        assert_eq!(
            plan("(cn=*van d*)"),
            Plan::Query(Node::And(vec![
                term(gram_term("an ")),
                term(gram_term("n d")),
                term(gram_term("van")),
            ]))
        );
        assert_eq!(plan("(cn=* ng)"), Plan::Query(term(gram_term(" ng"))));
        // A piece of spaces alone names no text.
        assert_eq!(plan("(cn=* *)"), Plan::Query(term(presence_term("cn"))));
    }

    #[test]
    fn items_without_text_terms_keep_presence() {
        assert_eq!(plan("(o=*health*)"), Plan::Query(term(presence_term("o"))));
        assert_eq!(plan("(cn=*@*)"), Plan::Query(term(presence_term("cn"))));
        assert_eq!(
            plan("(&(mail=*)(cn=ga*))"),
            Plan::Query(Node::And(vec![
                term(presence_term("mail")),
                term(prefix_term("cn", "ga")),
            ]))
        );
        assert_eq!(plan("(!(cn=a*))"), Plan::All);
        assert_eq!(plan("(|(cn=a*)(!(sn=b*)))"), Plan::All);
        assert_eq!(plan("(&(cn=a*)(noSuchAttribute=x))"), Plan::Nothing);
    }
}
