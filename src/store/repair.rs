//! Keys that lead to no entry of theirs, and their removal.
//!
//! Builds before the fix of concurrent adds could give two adds planned at once one id: the
//! later overwrote the other's record, and the first's name key was left leading to a record
//! of another name (or, once that entry was deleted through it, to none). Nothing else writes
//! a name or a child link without its record in the same batch, so such keys are what that
//! race left. They are found at every start (the survey) and removed offline on request
//! (`onepages check --repair-names`).

use std::sync::atomic::{AtomicBool, Ordering};

use super::{child_key, codec, prefixed, read_u64, Store, StoreError};
use crate::directory::dn::parent_of;
use crate::directory::entry::EntryId;

/// What [`Store::repair_names`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// Names (normalised DN, the id they led to) that led to no entry of theirs.
    pub names: Vec<(String, EntryId)>,
    /// Child links (parent's normalised DN, id) whose entry is gone or lives elsewhere.
    pub children: Vec<(String, EntryId)>,
}

impl Repaired {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.children.is_empty()
    }
}

impl Store {
    /// The names that do not lead to an entry of that name, as `(ndn, id)` in name order: a
    /// name whose record is missing, or carries another normalised DN. Ends early, with what
    /// it has found, when `stop` is set.
    pub fn misnamed(&self, stop: &AtomicBool) -> Result<Vec<(String, EntryId)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(b"d") {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (k, v) = item?;
            let ndn = k.get(1..).unwrap_or_default();
            let id = read_u64(&v);
            let named = match id {
                Some(id) => self.ndn_is(id, |n| n.as_bytes() == ndn)?,
                None => false,
            };
            if !named {
                found.push((
                    String::from_utf8_lossy(ndn).into_owned(),
                    id.unwrap_or_default(),
                ));
            }
        }
        Ok(found)
    }

    /// The child links `(parent ndn, id)` whose entry is missing or is not a child of that
    /// parent, in key order. A live entry's own link is never among them.
    pub fn stray_children(&self) -> Result<Vec<(String, EntryId)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(b"c") {
            let (k, _) = item?;
            // `c` parent `\0` id: the id is the last eight bytes.
            let Some(split) = k.len().checked_sub(8) else {
                continue;
            };
            let (Some(head), Some(id)) = (k.get(1..split), k.get(split..).and_then(read_u64))
            else {
                continue;
            };
            let parent = head.strip_suffix(b"\0").unwrap_or(head);
            let linked = self.ndn_is(id, |n| !n.is_empty() && parent_of(n).as_bytes() == parent)?;
            if !linked {
                found.push((String::from_utf8_lossy(parent).into_owned(), id));
            }
        }
        Ok(found)
    }

    /// Removes the names [`Store::misnamed`] finds and the links [`Store::stray_children`]
    /// finds, in one atomic batch, flushed before it returns. No entry changes (nor the
    /// generation): each key removed led to no entry of its own. Offline only: the caller
    /// holds the data directory, so nothing writes meanwhile.
    pub fn repair_names(&self) -> Result<Repaired, StoreError> {
        let repaired = Repaired {
            names: self.misnamed(&AtomicBool::new(false))?,
            children: self.stray_children()?,
        };
        if repaired.is_empty() {
            return Ok(repaired);
        }
        let mut batch = sled::Batch::default();
        for (ndn, _) in &repaired.names {
            batch.remove(prefixed(b'd', &[ndn.as_bytes()]));
        }
        for (parent, id) in &repaired.children {
            batch.remove(child_key(parent, *id));
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(repaired)
    }

    /// Whether the record `id` is there, readable, and its normalised DN passes `test`.
    fn ndn_is(&self, id: EntryId, test: impl Fn(&str) -> bool) -> Result<bool, StoreError> {
        Ok(self
            .record(id)?
            .is_some_and(|r| codec::view(&r).is_ok_and(|view| test(view.ndn))))
    }
}
