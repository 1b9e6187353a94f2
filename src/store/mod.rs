//! The store: sled, the directory's source of truth.
//!
//! Everything lives in one sled tree so that a write — the entry, its DN key, its parent link
//! and its change-log record — is one atomic `apply_batch`, and is `flush`ed
//! before the caller acknowledges it. Key layout (ids are big-endian `u64`):
//!
//! | key | value | purpose |
//! | --- | --- | --- |
//! | `e` id | encoded entry | the entry |
//! | `d` ndn | id | DN lookup |
//! | `c` parent-ndn `\0` id | — | children of an entry (one-level scope, leaf checks) |
//! | `l` generation id | — | change log: replayed into the index after a crash, brings kept sorted lists forward |
//! | `m` name | bytes | metadata (current generation; the marker of an unlogged bulk load; how far the change log reaches back and is kept; the suffix; `mnote:` notes of the last runs) |
//! | `t` id | when, by whom, encoded entry | a deleted entry kept for restore (a tombstone) |
//!
//! The store never interprets values: callers pass normalised DNs in. Look-ups by attribute
//! value (a bind by user name, `onepages check` by mail address) go through the search index,
//! which is exact for entries it has not committed yet (see `index`). Stores written before
//! that kept `k` keys for them (`k` attr `\0` value `\0` id); [`Store::open`] removes them:
//! two random-order keys an entry were a fifth of a million-entry import.
//!
//! Entry ids are dense: the store allocates them itself, one after the other, and records the
//! next one (`m` `nextid`) in every batch that creates entries, so a restart continues where
//! the last write stopped (sled's own id generator jumps ahead by a million on every restart).
//!
//! A serving process also keeps every encoded entry in memory ([`Store::hold_entries`]): the
//! records searches read are then one array look-up away instead of a sled tree walk, and
//! sled's own page cache can stay small. The copy is filled from sled when the server opens
//! the store and updated by [`Store::apply`] after each batch is durable; sled stays the
//! source of truth. Ids far beyond the array (stores written before ids were dense) are held
//! in a side map, so the copy never depends on density.

pub mod backup;
mod bind_state;
mod changelog;
pub mod datadir;
mod durable;
mod recent;
mod repair;
mod tombstone;

use changelog::log_key;
pub use repair::Repaired;
use tombstone::encode_tombstone;
pub use tombstone::{Burial, Tombstone};

use crate::directory::record as codec;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::directory::dn::parent_of;
use crate::directory::entry::Entry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Corrupt(#[from] codec::CorruptRecord),
    #[error("store: {0}")]
    Internal(String),
}

pub use crate::directory::entry::EntryId;

/// One change to apply atomically with others.
#[derive(Clone, Debug)]
pub enum Write {
    /// Creates or replaces the entry `id`. `previous` describes what the entry was, so that its
    /// old keys go away (a rename changes the DN key and the parent link).
    Put {
        id: EntryId,
        entry: Entry,
        previous: Option<Previous>,
    },
    /// Removes the entry `id`; with `keep`, the entry as stored becomes a tombstone (in the
    /// same atomic batch).
    Delete {
        id: EntryId,
        previous: Previous,
        keep: Option<Burial>,
    },
    /// Forgets the tombstone `id` (restored or purged).
    Forget { id: EntryId },
}

#[derive(Clone, Debug)]
pub struct Previous {
    pub ndn: String,
}

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// Per-account sign-in state (failed binds, lockout), by entry id: kept apart from the
    /// entries so that recording a failure changes no entry, no generation and no cache.
    bind_state: sled::Tree,
    /// The last sign-in of each account the server recorded itself, by entry id (apart from
    /// the entries for the same reason; unlike the bind state, it is in backups).
    sign_in: sled::Tree,
    generation: AtomicU64,
    /// Encoded entries by id, when held in memory (see the module docs).
    held: RwLock<Held>,
    /// The id the next new entry gets.
    next_id: AtomicU64,
    holding: AtomicBool,
    /// Whether each write waits for the disk (see [`Store::set_sync_each_write`]).
    sync_each_write: AtomicBool,
    /// Whether writes skip the change log (see [`Store::begin_unlogged`]).
    unlogged: AtomicBool,
    /// Writers waiting for the disk share flushes (`durable.rs`).
    durable: durable::GroupCommit,
    /// The entries recent generations changed (`recent.rs`).
    recent: recent::Recent,
    /// How far the change log on disk reaches back, and how far it is kept (`changelog.rs`).
    log: changelog::Reach,
}

/// Ids beyond the held array's length by more than this go to its side map instead of
/// growing the array (ids are dense; this bounds what an old, sparse store costs).
const HELD_GROWTH_LIMIT: u64 = 1 << 20;

/// The held copy of every record: an array by id, and a side map for ids far beyond it.
#[derive(Default)]
struct Held {
    dense: Vec<Option<Arc<[u8]>>>,
    sparse: rustc_hash::FxHashMap<EntryId, Arc<[u8]>>,
}

impl Held {
    fn get(&self, id: EntryId) -> Option<Arc<[u8]>> {
        let slot = usize::try_from(id).ok().and_then(|i| self.dense.get(i));
        match slot {
            Some(Some(r)) => Some(Arc::clone(r)),
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(&id).cloned(),
        }
    }

    fn set(&mut self, id: EntryId, value: Option<Arc<[u8]>>) {
        let Ok(i) = usize::try_from(id) else { return };
        if i < self.dense.len() {
            if let Some(slot) = self.dense.get_mut(i) {
                *slot = value;
            }
            if !self.sparse.is_empty() {
                self.sparse.remove(&id);
            }
            return;
        }
        match value {
            None => {
                self.sparse.remove(&id);
            }
            Some(v) if id <= (self.dense.len() as u64).saturating_add(HELD_GROWTH_LIMIT) => {
                self.dense.resize(i + 1, None);
                if let Some(slot) = self.dense.get_mut(i) {
                    *slot = Some(v);
                }
            }
            Some(v) => {
                self.sparse.insert(id, v);
            }
        }
    }

    /// Appends records with ids from `start` in id order, about `max` of them; returns the
    /// id to go on from (`EntryId::MAX` once everything is out).
    fn chunk(&self, start: EntryId, max: usize, out: &mut Vec<(EntryId, Arc<[u8]>)>) -> EntryId {
        let mut next = start;
        let mut full = false;
        let from = usize::try_from(start).unwrap_or(usize::MAX);
        for (offset, slot) in self
            .dense
            .get(from..)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let id = start + offset as u64;
            next = id + 1;
            if let Some(r) = slot {
                out.push((id, Arc::clone(r)));
                if out.len() >= max {
                    full = true;
                    break;
                }
            }
        }
        let end = if full { next } else { EntryId::MAX };
        if !self.sparse.is_empty() {
            let before = out.len();
            out.extend(
                self.sparse
                    .iter()
                    .filter(|(id, _)| **id >= start && **id < end)
                    .map(|(id, r)| (*id, Arc::clone(r))),
            );
            if out.len() > before {
                out.sort_unstable_by_key(|(id, _)| *id);
            }
        }
        end
    }
}

/// Entries copied out of the held table per lock acquisition during scans.
const SCAN_CHUNK: usize = 256;

const GEN_KEY: &[u8] = b"mgeneration";
const NEXT_ID_KEY: &[u8] = b"mnextid";
/// Present while a bulk load writes without the change log: the index may then lack any
/// entry written since the generation it holds.
const UNLOGGED_KEY: &[u8] = b"munlogged";
/// The naming context the store was made for, as first given.
const SUFFIX_KEY: &[u8] = b"msuffix";

fn poisoned() -> StoreError {
    StoreError::Sled(sled::Error::ReportableBug(
        "the held entry table's lock was poisoned".into(),
    ))
}

/// An encoded entry record (see [`codec`]), from memory or from sled.
#[derive(Clone, Debug)]
pub enum Record {
    Held(Arc<[u8]>),
    Stored(sled::IVec),
}

impl std::ops::Deref for Record {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Record::Held(r) => r,
            Record::Stored(r) => r,
        }
    }
}

/// Scan over the held table, a chunk of records at a time (no lock held between chunks).
struct HeldScan<'a> {
    store: &'a Store,
    next: EntryId,
    chunk: Vec<(EntryId, Arc<[u8]>)>,
    done: bool,
}

impl Iterator for HeldScan<'_> {
    type Item = Result<(EntryId, Record), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.chunk.is_empty() && !self.done {
            let Ok(held) = self.store.held.read() else {
                self.done = true;
                return Some(Err(poisoned()));
            };
            self.next = held.chunk(self.next, SCAN_CHUNK, &mut self.chunk);
            if self.chunk.is_empty() || self.next == EntryId::MAX {
                self.done = true;
            }
            self.chunk.reverse();
        }
        let (id, record) = self.chunk.pop()?;
        Some(Ok((id, Record::Held(record))))
    }
}

fn id_key(prefix: u8, id: EntryId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

fn prefixed(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// Removes every key that starts with `prefix`, in batches (a no-op costing one look-up when
/// there is none).
fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in tree.scan_prefix(prefix).take(10_000) {
            let (k, _) = item?;
            batch.remove(k);
            n += 1;
        }
        if n == 0 {
            return Ok(removed);
        }
        tree.apply_batch(batch)?;
        removed += n;
    }
}

fn child_key(parent_ndn: &str, id: EntryId) -> Vec<u8> {
    let mut k = prefixed(b'c', &[parent_ndn.as_bytes(), b""]);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Whether sled could not take its file lock because a handle being dropped still holds it.
/// sled reports that as an `Other` error wrapping the `WouldBlock` of the lock call ("could
/// not acquire lock on …: … WouldBlock …"), not as a `WouldBlock` error.
fn is_lock_busy(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return true;
    }
    let said = e.to_string();
    said.contains("could not acquire lock") && said.contains("WouldBlock")
}

impl Store {
    /// Opens a store in a test (which may just have dropped it: see [`Store::open`]).
    #[cfg(test)]
    pub(crate) fn reopen_for_test(path: &Path, cache_bytes: u64) -> Store {
        Store::open(path, cache_bytes).unwrap()
    }

    /// Opens the store with sled's page cache of `cache_bytes`. sled's background threads
    /// hold the store's file lock a moment after a handle is dropped, so a store this process
    /// has just closed (restore-backup loads, then reopens) can refuse its lock: that is
    /// retried for up to ten seconds (two were not always enough on a loaded machine). Another process cannot be the holder — the data
    /// directory's own LOCK keeps it out before this is called.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput);
        let mut tries = 0;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e)) if is_lock_busy(&e) && tries < 500 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        let tree = db.open_tree("directory")?;
        let bind_state = db.open_tree("bind-state")?;
        let sign_in = db.open_tree("sign-in")?;
        remove_prefix(&tree, b"k")?;
        let generation = tree.get(GEN_KEY)?.and_then(|v| read_u64(&v)).unwrap_or(0);
        // The recorded next id, or past the highest entry of a store written before it was
        // recorded; ids start at 1.
        let recorded = tree
            .get(NEXT_ID_KEY)?
            .and_then(|v| read_u64(&v))
            .unwrap_or(1);
        let highest = match tree.scan_prefix(b"e").next_back().transpose()? {
            Some((k, _)) => k.get(1..).and_then(read_u64).map_or(1, |id| id + 1),
            None => 1,
        };
        let log = changelog::Reach::read(&tree, generation)?;
        Ok(Store {
            log,
            db,
            tree,
            bind_state,
            sign_in,
            generation: AtomicU64::new(generation),
            next_id: AtomicU64::new(recorded.max(highest).max(1)),
            held: RwLock::new(Held::default()),
            holding: AtomicBool::new(false),
            sync_each_write: AtomicBool::new(true),
            durable: durable::GroupCommit::at(generation),
            recent: recent::Recent::default(),
            unlogged: AtomicBool::new(false),
        })
    }

    /// Copies every entry record into memory and keeps the copy current from now on (serving
    /// processes). Returns the number of entries held.
    pub fn hold_entries(&self) -> Result<usize, StoreError> {
        let mut table = Held::default();
        let mut n = 0;
        let mut bytes = 0usize;
        for item in self.tree.scan_prefix(b"e") {
            let (k, v) = item?;
            let Some(id) = k.get(1..).and_then(read_u64) else {
                continue;
            };
            // A record of an older version is held in the current one (less memory).
            let record = codec::current(&v)?;
            bytes += record.len();
            table.set(id, Some(Arc::from(record.as_ref())));
            n += 1;
        }
        table.dense.shrink_to_fit();
        if !table.sparse.is_empty() {
            tracing::info!(
                entries = table.sparse.len(),
                "entries with ids far apart (written before ids were dense) held in a side map"
            );
        }
        tracing::info!(
            entries = n,
            mib = bytes / (1024 * 1024),
            "entries held in memory"
        );
        let mut held = self.held.write().map_err(|_| poisoned())?;
        *held = table;
        self.holding.store(true, Ordering::Release);
        Ok(n)
    }

    fn holding(&self) -> bool {
        self.holding.load(Ordering::Acquire)
    }

    /// The held record of `id`: `Some(None)` when there is no such entry, `None` when
    /// entries are not held (ask sled).
    fn held_record(&self, id: EntryId) -> Option<Option<Arc<[u8]>>> {
        if !self.holding() {
            return None;
        }
        let held = self.held.read().ok()?;
        Some(held.get(id))
    }

    /// Updates the held table after a durable batch.
    fn update_held(&self, writes: &[Write], encoded: &[Option<Arc<[u8]>>]) {
        if !self.holding() {
            return;
        }
        let Ok(mut held) = self.held.write() else {
            return;
        };
        for (w, record) in writes.iter().zip(encoded) {
            match w {
                Write::Put { id, .. } => held.set(*id, record.clone()),
                Write::Delete { id, .. } => held.set(*id, None),
                Write::Forget { .. } => {}
            }
        }
    }

    /// The generation of the last applied write batch.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The id the next new entry will get: a writer numbers the new entries of a batch from
    /// here, and [`Store::apply`] moves it past them (ids are never reused).
    pub fn next_id(&self) -> EntryId {
        self.next_id.load(Ordering::Acquire)
    }

    pub fn get(&self, id: EntryId) -> Result<Option<Entry>, StoreError> {
        match self.record(id)? {
            Some(r) => Ok(Some(codec::decode(&r)?)),
            None => Ok(None),
        }
    }

    /// The encoded record of an entry, to read in place with [`codec::view`].
    pub fn record(&self, id: EntryId) -> Result<Option<Record>, StoreError> {
        if let Some(held) = self.held_record(id) {
            return Ok(held.map(Record::Held));
        }
        Ok(self.tree.get(id_key(b'e', id))?.map(Record::Stored))
    }

    /// [`Store::record`] for several ids under one read of the held table (searches take
    /// candidates a batch at a time: one lock instead of one per candidate). Appends
    /// `(id, record)` to `out` in the order of `ids`.
    pub fn records_into(
        &self,
        ids: &[EntryId],
        out: &mut Vec<(EntryId, Option<Record>)>,
    ) -> Result<(), StoreError> {
        let start = out.len();
        let mut missing = Vec::new();
        let mut covered = false;
        if self.holding() {
            if let Ok(held) = self.held.read() {
                covered = true;
                out.extend(ids.iter().map(|&id| (id, held.get(id).map(Record::Held))));
            }
        }
        if !covered {
            // Not holding (or a poisoned lock): every id from sled.
            missing.extend(start..start + ids.len());
            out.extend(ids.iter().map(|&id| (id, None)));
        }
        for i in missing {
            if let Some((id, slot)) = out.get_mut(i) {
                *slot = self.tree.get(id_key(b'e', *id))?.map(Record::Stored);
            }
        }
        Ok(())
    }

    pub fn id_of(&self, ndn: &str) -> Result<Option<EntryId>, StoreError> {
        Ok(self
            .tree
            .get(prefixed(b'd', &[ndn.as_bytes()]))?
            .and_then(|v| read_u64(&v)))
    }

    pub fn get_by_ndn(&self, ndn: &str) -> Result<Option<(EntryId, Entry)>, StoreError> {
        match self.id_of(ndn)? {
            Some(id) => Ok(self.get(id)?.map(|e| (id, e))),
            None => Ok(None),
        }
    }

    pub fn children(&self, ndn: &str) -> Result<Vec<EntryId>, StoreError> {
        let prefix = prefixed(b'c', &[ndn.as_bytes(), b""]);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item?;
            if let Some(id) = k.get(prefix.len()..).and_then(read_u64) {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub fn has_children(&self, ndn: &str) -> Result<bool, StoreError> {
        let prefix = prefixed(b'c', &[ndn.as_bytes(), b""]);
        Ok(self.tree.scan_prefix(&prefix).next().transpose()?.is_some())
    }

    /// Every entry, in id order.
    pub fn scan(&self) -> impl Iterator<Item = Result<(EntryId, Entry), StoreError>> + '_ {
        self.scan_from(0)
    }

    /// Entries with ids greater than `after`, in id order (resumable scans).
    pub fn scan_from(
        &self,
        after: EntryId,
    ) -> impl Iterator<Item = Result<(EntryId, Entry), StoreError>> + '_ {
        self.scan_records_from(after).map(|item| {
            let (id, r) = item?;
            Ok((id, codec::decode(&r)?))
        })
    }

    /// Records with ids greater than `after`, in id order.
    pub fn scan_records_from(
        &self,
        after: EntryId,
    ) -> Box<dyn Iterator<Item = Result<(EntryId, Record), StoreError>> + '_> {
        if self.holding() {
            return Box::new(HeldScan {
                store: self,
                next: after.saturating_add(1),
                chunk: Vec::new(),
                done: false,
            });
        }
        let start = id_key(b'e', after.saturating_add(1));
        let iter = self
            .tree
            .range(start.as_slice()..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.first() == Some(&b'e'))
            })
            .map(|item| {
                let (k, v) = item?;
                let id = k.get(1..).and_then(read_u64).unwrap_or(0);
                Ok((id, Record::Stored(v)))
            });
        Box::new(iter)
    }

    pub fn len(&self) -> usize {
        self.tree.scan_prefix(b"e").count()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.scan_prefix(b"e").next().is_none()
    }

    /// Applies writes as one atomic batch under a new generation, and makes it durable.
    /// Callers serialise writes (one writer path), so checks made before calling still hold.
    pub fn apply(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let generation = self.apply_unsynced(writes)?;
        if self.syncs_each_write() {
            self.sync_through(generation)?;
        }
        Ok(generation)
    }

    /// Whether a write must wait for the disk before it is acknowledged
    /// ([`Store::set_sync_each_write`]).
    pub fn syncs_each_write(&self) -> bool {
        self.sync_each_write.load(Ordering::Relaxed)
    }

    /// [`Store::apply`] without waiting for the disk: the batch is applied (atomic, visible)
    /// and its generation returned; [`Store::sync_through`] makes it durable, sharing the
    /// flush with the writers that finished meanwhile (the writer calls it after releasing
    /// its lock).
    pub fn apply_unsynced(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let generation = self.generation() + 1;
        let unlogged = self.unlogged.load(Ordering::Acquire);
        let mut batch = sled::Batch::default();
        let mut encoded: Vec<Option<Arc<[u8]>>> = Vec::with_capacity(writes.len());
        let mut next_id = self.next_id();
        for w in writes {
            match w {
                Write::Put {
                    id,
                    entry,
                    previous,
                } => {
                    if let Some(prev) = previous {
                        batch.remove(prefixed(b'd', &[prev.ndn.as_bytes()]));
                        batch.remove(child_key(parent_of(&prev.ndn), *id));
                    }
                    next_id = next_id.max(id.saturating_add(1));
                    let record = codec::encode(entry);
                    encoded.push(self.holding().then(|| Arc::from(record.as_slice())));
                    batch.insert(&id_key(b'e', *id), record);
                    batch.insert(prefixed(b'd', &[entry.ndn.as_bytes()]), &id.to_be_bytes());
                    if !entry.ndn.is_empty() {
                        batch.insert(child_key(parent_of(&entry.ndn), *id), &[]);
                    }
                    if !unlogged {
                        batch.insert(log_key(generation, *id).as_slice(), &[]);
                    }
                }
                Write::Delete { id, previous, keep } => {
                    encoded.push(None);
                    if let Some(burial) = keep {
                        if let Some(record) = self.tree.get(id_key(b'e', *id))? {
                            batch.insert(&id_key(b't', *id), encode_tombstone(burial, &record));
                        }
                    }
                    batch.remove(&id_key(b'e', *id));
                    batch.remove(prefixed(b'd', &[previous.ndn.as_bytes()]));
                    batch.remove(child_key(parent_of(&previous.ndn), *id));
                    if !unlogged {
                        batch.insert(log_key(generation, *id).as_slice(), &[]);
                    }
                }
                Write::Forget { id } => {
                    encoded.push(None);
                    batch.remove(&id_key(b't', *id));
                }
            }
        }
        batch.insert(GEN_KEY, &generation.to_be_bytes());
        if next_id != self.next_id() {
            batch.insert(NEXT_ID_KEY, &next_id.to_be_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.next_id.store(next_id, Ordering::Release);
        self.update_held(writes, &encoded);
        self.recent.record(
            generation,
            writes
                .iter()
                .filter_map(|w| match w {
                    Write::Put { id, .. } | Write::Delete { id, .. } => Some(*id),
                    Write::Forget { .. } => None,
                })
                .collect(),
        );
        self.generation.store(generation, Ordering::Release);
        Ok(generation)
    }

    /// Whether each write is on disk before it returns (the default: an LDAP client told
    /// "success" must not lose the change). An offline bulk load turns this off and calls
    /// [`Store::flush`] at the end: every batch stays atomic (sled applies it whole or not at
    /// all), but a crash may lose the batches written since the last flush; imports upsert, so
    /// running the same import again completes it.
    pub fn set_sync_each_write(&self, sync: bool) {
        self.sync_each_write.store(sync, Ordering::Relaxed);
    }

    /// Starts writing without change-log records (an offline bulk load, whose index is
    /// committed at the end: logging each entry only to trim the record again cost a tenth of
    /// the indexer's time). A durable marker says so first: if the process dies before
    /// [`Store::end_unlogged`], the next open finds it ([`Store::is_unlogged`]) and the index
    /// is rebuilt from the store instead of caught up from the log.
    pub fn begin_unlogged(&self) -> Result<(), StoreError> {
        self.tree
            .insert(UNLOGGED_KEY, &self.generation().to_be_bytes())?;
        self.log_goes_unlogged()?;
        self.db.flush()?;
        self.unlogged.store(true, Ordering::Release);
        Ok(())
    }

    /// Ends an unlogged load, once the index holds everything written (its commit is on disk).
    pub fn end_unlogged(&self) -> Result<(), StoreError> {
        self.unlogged.store(false, Ordering::Release);
        self.tree.remove(UNLOGGED_KEY)?;
        self.log_complete_from_now()?;
        self.db.flush()?;
        Ok(())
    }

    /// Whether writes were made without the change log and their indexing was not confirmed.
    pub fn is_unlogged(&self) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(UNLOGGED_KEY)?)
    }

    /// The naming context recorded for this store, if any.
    pub fn suffix(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree
            .get(SUFFIX_KEY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the naming context this store is for (flushed).
    pub fn set_suffix(&self, suffix: &str) -> Result<(), StoreError> {
        self.tree.insert(SUFFIX_KEY, suffix.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// The normalised DN of one entry (the first in key order), if there is any.
    pub fn some_ndn(&self) -> Result<Option<String>, StoreError> {
        match self.tree.scan_prefix(b"d").next() {
            Some(item) => {
                let (k, _) = item?;
                Ok(Some(
                    String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned(),
                ))
            }
            None => Ok(None),
        }
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        let generation = self.generation();
        self.db.flush()?;
        self.mark_durable(generation);
        Ok(())
    }

    /// A note the directory keeps about itself (`last-import`, `last-dormant`), if any.
    pub fn note(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(note_key(name))?.map(|v| v.to_vec()))
    }

    /// Keeps (replaces) a note (flushed with the store's next flush).
    pub fn set_note(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(note_key(name), value)?;
        Ok(())
    }

    /// How many tombstones are kept.
    pub fn tombstone_count(&self) -> usize {
        self.tree.scan_prefix(b"t").keys().count()
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

fn note_key(name: &str) -> Vec<u8> {
    let mut k = b"mnote:".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

#[cfg(test)]
mod tests;
