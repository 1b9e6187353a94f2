//! The entries written to the store but not yet committed to the index: *pending*. Searches
//! skip their index results (the index may hold an older version, or none) and read them from
//! the store instead, so a lagging index can neither hide a new entry nor show a deleted one.
//!
//! An online import keeps up to a batch of entries pending (500), and a search used to read
//! and evaluate every one of them (about 2.4 µs each for the Thunderbird template). So the
//! writer's thread makes the terms of each entry it hands to the indexer and notes their
//! hashes here, and a search reads only the pending entries whose terms satisfy its plan, and
//! those whose terms are not known (being written, or written within a bulk load, which nobody
//! searches).
//! A hash that collides makes a candidate too many, never one too few: every candidate is
//! checked against the filter.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet};

use super::plan::Node;
use super::terms::TERM_SEP;
use crate::store::EntryId;

/// A generation no write has: the entry is being written now (its terms are not known).
pub(super) const BEING_WRITTEN: u64 = u64::MAX;

#[derive(Default)]
pub(super) struct Pending {
    entries: FxHashMap<EntryId, Dirty>,
}

struct Dirty {
    /// The generation of the entry's latest write.
    generation: u64,
    /// The hashes of that version's terms (`None`: not known, every search reads the entry).
    /// An entry deleted by that write has none.
    terms: Option<FxHashSet<u64>>,
}

/// What a search makes of the pending entries.
pub(super) struct Seen {
    /// Every pending id (their index results are skipped).
    pub all: Vec<EntryId>,
    /// The ones to read from the store: terms satisfying the plan, or not known.
    pub visit: Vec<EntryId>,
}

/// A plan with its terms hashed once per search.
pub(super) enum Hashed {
    Term(u64),
    And(Vec<Hashed>),
    Or(Vec<Hashed>),
}

impl Hashed {
    pub(super) fn of(node: &Node) -> Hashed {
        match node {
            Node::Term(t) => Hashed::Term(term_hash(t)),
            Node::And(c) => Hashed::And(c.iter().map(Hashed::of).collect()),
            Node::Or(c) => Hashed::Or(c.iter().map(Hashed::of).collect()),
        }
    }

    fn holds(&self, terms: &FxHashSet<u64>) -> bool {
        match self {
            Hashed::Term(h) => terms.contains(h),
            Hashed::And(c) => c.iter().all(|n| n.holds(terms)),
            Hashed::Or(c) => c.iter().any(|n| n.holds(terms)),
        }
    }
}

fn term_hash(term: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    term.hash(&mut h);
    h.finish()
}

/// The hashed terms of a document's terms text (as [`super::terms::write_entry_terms`] writes
/// it and the term tokenizer splits it).
pub(super) fn hash_terms(text: &str) -> FxHashSet<u64> {
    text.split(TERM_SEP)
        .filter(|t| !t.is_empty())
        .map(term_hash)
        .collect()
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry's latest write is `generation` ([`BEING_WRITTEN`] before the store write),
    /// with the hashes of its terms if they are known; whatever was known of an earlier write
    /// is forgotten.
    pub(super) fn mark(&mut self, id: EntryId, generation: u64, terms: Option<FxHashSet<u64>>) {
        self.entries.insert(id, Dirty { generation, terms });
    }

    /// A commit of everything through `generation` is visible: those entries are searched
    /// through the index again.
    pub(super) fn committed_through(&mut self, generation: u64) {
        self.entries.retain(|_, d| d.generation > generation);
    }

    /// The pending entries for a search whose plan is `plan` (`None`: no entry can match, so
    /// only those of unknown terms are read, as the filter decides for them).
    pub(super) fn seen(&self, plan: Option<&Hashed>) -> Seen {
        let mut seen = Seen {
            all: Vec::with_capacity(self.entries.len()),
            visit: Vec::new(),
        };
        for (id, d) in &self.entries {
            seen.all.push(*id);
            let read = match (&d.terms, plan) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(terms), Some(plan)) => plan.holds(terms),
            };
            if read {
                seen.visit.push(*id);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(list: &[&str]) -> FxHashSet<u64> {
        let mut text = String::new();
        for t in list {
            text.push_str(t);
            text.push(TERM_SEP);
        }
        hash_terms(&text)
    }

    fn plan(node: Node) -> Hashed {
        Hashed::of(&node)
    }

    fn sorted(mut ids: Vec<EntryId>) -> Vec<EntryId> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn a_search_reads_the_pending_entries_its_plan_may_match_and_the_unknown_ones() {
        let mut p = Pending::default();
        p.mark(1, 11, Some(terms(&["gma", "gar"])));
        p.mark(2, 12, Some(terms(&["gzz"])));
        // Deleted by its write.
        p.mark(3, 13, Some(terms(&[])));
        p.mark(4, BEING_WRITTEN, None);
        let ma = plan(Node::Term("gma".into()));
        let seen = p.seen(Some(&ma));
        assert_eq!(sorted(seen.all), vec![1, 2, 3, 4]);
        assert_eq!(sorted(seen.visit), vec![1, 4]);
        let both = plan(Node::And(vec![
            Node::Term("gma".into()),
            Node::Term("gzz".into()),
        ]));
        assert_eq!(sorted(p.seen(Some(&both)).visit), vec![4]);
        let either = plan(Node::Or(vec![
            Node::Term("gma".into()),
            Node::Term("gzz".into()),
        ]));
        assert_eq!(sorted(p.seen(Some(&either)).visit), vec![1, 2, 4]);
        assert_eq!(sorted(p.seen(None).visit), vec![4]);
    }

    #[test]
    fn terms_of_an_older_write_are_not_taken_for_the_newer_one() {
        let mut p = Pending::default();
        p.mark(7, 20, Some(terms(&["gzz"])));
        let ma = plan(Node::Term("gma".into()));
        assert!(p.seen(Some(&ma)).visit.is_empty());
        // Being written again: read by every search until the write hands its terms over.
        p.mark(7, BEING_WRITTEN, None);
        assert_eq!(
            p.seen(Some(&ma)).visit,
            vec![7],
            "unknown: read from the store"
        );
        p.mark(7, 21, Some(terms(&["gzz"])));
        assert!(p.seen(Some(&ma)).visit.is_empty());
        // A commit through 20 leaves the entry pending; through 21 it is searched by the index.
        p.committed_through(20);
        assert_eq!(p.len(), 1);
        p.committed_through(21);
        assert_eq!(p.len(), 0);
    }
}
