//! The change log on disk (`l` generation id): the entries each generation wrote or removed,
//! recorded in the write's own batch. The index replays it after a crash; a sorted list kept
//! across a restart is brought forward with it. The index trims what it has committed, but
//! never past the floor that the kept lists set ([`Store::keep_log_after`]), and the store
//! remembers how far back the log is complete, so that nobody reads a trimmed log as if
//! nothing had changed.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{read_u64, EntryId, Store, StoreError};

/// The log holds every change after this generation (`u64::MAX` while a bulk load writes
/// without it).
const COMPLETE_AFTER_KEY: &[u8] = b"mlogcomplete";
/// Trims stop at this generation (the oldest list kept across restarts), when present.
const FLOOR_KEY: &[u8] = b"mlogfloor";
/// No floor.
const NO_FLOOR: u64 = u64::MAX;

pub(super) fn log_key(generation: u64, id: EntryId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'l';
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..17].copy_from_slice(&id.to_be_bytes());
    k
}

/// How far back the log reaches, and the floor of its trims (both kept in the store).
pub(super) struct Reach {
    complete_after: AtomicU64,
    floor: AtomicU64,
}

impl Reach {
    /// What the store records; a store written before it was recorded has a complete log
    /// only from now on.
    pub(super) fn read(tree: &sled::Tree, generation: u64) -> Result<Reach, StoreError> {
        let get = |k: &[u8]| -> Result<Option<u64>, StoreError> {
            Ok(tree.get(k)?.and_then(|v| read_u64(&v)))
        };
        Ok(Reach {
            complete_after: AtomicU64::new(get(COMPLETE_AFTER_KEY)?.unwrap_or(generation)),
            floor: AtomicU64::new(get(FLOOR_KEY)?.unwrap_or(NO_FLOOR)),
        })
    }
}

impl Store {
    /// Entries changed after `generation`, with the generation of their last change.
    pub fn changes_since(&self, generation: u64) -> Result<Vec<(u64, EntryId)>, StoreError> {
        let start = log_key(generation.saturating_add(1), 0);
        let mut out = Vec::new();
        for item in self.tree.range(start.as_slice()..) {
            let (k, _) = item?;
            if k.first() != Some(&b'l') {
                break;
            }
            if let (Some(g), Some(id)) = (
                k.get(1..9).and_then(read_u64),
                k.get(9..17).and_then(read_u64),
            ) {
                out.push((g, id));
            }
        }
        Ok(out)
    }

    /// How many log records follow `generation`, counted up to `cap`.
    pub fn log_len_after(&self, generation: u64, cap: usize) -> Result<usize, StoreError> {
        let start = log_key(generation.saturating_add(1), 0);
        let end = log_key(u64::MAX, u64::MAX);
        let mut n = 0;
        for item in self.tree.range(start.as_slice()..=end.as_slice()).keys() {
            item?;
            n += 1;
            if n >= cap {
                break;
            }
        }
        Ok(n)
    }

    /// Forgets change-log records up to `generation` (the index has them), or up to the
    /// floor if that is lower.
    pub fn trim_log(&self, generation: u64) -> Result<(), StoreError> {
        let upto = generation.min(self.log.floor.load(Ordering::Acquire));
        let end = log_key(upto.saturating_add(1), 0);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.tree.range(b"l".as_slice()..end.as_slice()).keys() {
            batch.remove(item?);
            n += 1;
        }
        let complete = self.log.complete_after.load(Ordering::Acquire);
        // The log is complete after `upto` now, unless it was already after a later one, or a
        // bulk load is writing without it.
        let raised = complete != u64::MAX && upto > complete;
        if raised {
            batch.insert(COMPLETE_AFTER_KEY, &upto.to_be_bytes());
            n += 1;
        }
        if n > 0 {
            self.tree.apply_batch(batch)?;
        }
        if raised {
            self.log.complete_after.store(upto, Ordering::Release);
        }
        Ok(())
    }

    /// The generation after which the log holds every change.
    pub fn log_complete_after(&self) -> u64 {
        self.log.complete_after.load(Ordering::Acquire)
    }

    /// Keeps the log records after `floor` from being trimmed (the oldest sorted list kept
    /// across restarts is brought forward with them), or lets them go (`None`). On disk
    /// before it returns.
    pub fn keep_log_after(&self, floor: Option<u64>) -> Result<(), StoreError> {
        match floor {
            Some(g) => self.tree.insert(FLOOR_KEY, &g.to_be_bytes())?,
            None => self.tree.remove(FLOOR_KEY)?,
        };
        self.db.flush()?;
        self.log
            .floor
            .store(floor.unwrap_or(NO_FLOOR), Ordering::Release);
        Ok(())
    }

    /// The floor set by [`Store::keep_log_after`], if any.
    pub fn log_floor(&self) -> Option<u64> {
        Some(self.log.floor.load(Ordering::Acquire)).filter(|g| *g != NO_FLOOR)
    }

    /// A bulk load begins writing without the log: until it ends, the log is complete after
    /// no generation (flushed with the load's marker).
    pub(super) fn log_goes_unlogged(&self) -> Result<(), StoreError> {
        self.tree
            .insert(COMPLETE_AFTER_KEY, &u64::MAX.to_be_bytes())?;
        self.log.complete_after.store(u64::MAX, Ordering::Release);
        Ok(())
    }

    /// A bulk load has ended: the log is complete again after the current generation.
    pub(super) fn log_complete_from_now(&self) -> Result<(), StoreError> {
        let g = self.generation();
        self.tree.insert(COMPLETE_AFTER_KEY, &g.to_be_bytes())?;
        self.log.complete_after.store(g, Ordering::Release);
        Ok(())
    }

    /// The entries written or removed by the generations after `from` up to `to`, sorted and
    /// without repeats: from memory when the generations are recent, else from the log on
    /// disk when it reaches back that far; `None` otherwise (the caller rebuilds).
    pub fn changed_between(&self, from: u64, to: u64) -> Option<Vec<EntryId>> {
        if let Some(ids) = self.remembered_between(from, to) {
            return Some(ids);
        }
        if from < self.log_complete_after() || from > to {
            return None;
        }
        let mut ids: Vec<EntryId> = self
            .changes_since(from)
            .ok()?
            .into_iter()
            .filter(|(g, _)| *g <= to)
            .map(|(_, id)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}
