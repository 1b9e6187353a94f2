//! The entries each recent generation changed, in memory: what a cache built at an older
//! generation needs to be brought forward (a sorted view moves the entries that changed
//! instead of being rebuilt). Bounded: once a generation falls out, callers rebuild.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{EntryId, Store};

/// Generations remembered at most.
const GENERATIONS: usize = 4096;
/// Changed entries remembered at most, over all of them (an import batch is 1,000).
const ENTRIES: usize = 65_536;

#[derive(Default)]
pub(super) struct Recent {
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    /// (generation, the entries it wrote or removed), oldest first, without gaps.
    changes: VecDeque<(u64, Vec<EntryId>)>,
    entries: usize,
}

impl Recent {
    pub(super) fn record(&self, generation: u64, ids: Vec<EntryId>) {
        let Ok(mut log) = self.log.lock() else { return };
        if log.changes.back().is_some_and(|(g, _)| g + 1 != generation) {
            // A gap (cannot happen under the writer lock; be safe): start over.
            log.changes.clear();
            log.entries = 0;
        }
        log.entries += ids.len();
        log.changes.push_back((generation, ids));
        while log.changes.len() > GENERATIONS || log.entries > ENTRIES {
            match log.changes.pop_front() {
                Some((_, gone)) => log.entries -= gone.len(),
                None => break,
            }
        }
    }
}

impl Store {
    /// The entries written or removed by the generations after `from` up to `to`, sorted and
    /// without repeats; `None` when those generations are no longer all remembered here (the
    /// change log on disk may still have them: [`Store::changed_between`]).
    pub(super) fn remembered_between(&self, from: u64, to: u64) -> Option<Vec<EntryId>> {
        if from >= to {
            return Some(Vec::new());
        }
        let log = self.recent.log.lock().ok()?;
        let first = log.changes.front()?.0;
        let last = log.changes.back()?.0;
        if first > from + 1 || last < to {
            return None;
        }
        let mut ids: Vec<EntryId> = log
            .changes
            .iter()
            .filter(|(g, _)| *g > from && *g <= to)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}
