//! The store: sled, the directory's source of truth.
//!
//! Everything lives in one sled tree so that a write — the entry, its DN key, its parent link,
//! its equality keys and its change-log record — is one atomic `apply_batch`, and is `flush`ed
//! before the caller acknowledges it. Key layout (ids are big-endian `u64`):
//!
//! | key | value | purpose |
//! | --- | --- | --- |
//! | `e` id | encoded entry | the entry |
//! | `d` ndn | id | DN lookup |
//! | `c` parent-ndn `\0` id | — | children of an entry (one-level scope, leaf checks) |
//! | `k` attr `\0` value `\0` id | — | equality keys for binds and exact look-ups |
//! | `l` generation id | — | change log, replayed into the index after a crash |
//! | `m` name | bytes | metadata (current generation) |
//!
//! The store never interprets values: callers pass normalised keys in.

pub mod codec;
pub mod datadir;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::directory::dn::parent_of;
use crate::directory::entry::Entry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Corrupt(#[from] codec::CorruptRecord),
}

pub type EntryId = u64;

/// One change to apply atomically with others.
#[derive(Clone, Debug)]
pub enum Write {
    /// Creates or replaces the entry `id`. `previous` describes what the entry was, so that its
    /// old keys go away (a rename changes the DN key and the parent link).
    Put {
        id: EntryId,
        entry: Entry,
        keys: Vec<Vec<u8>>,
        previous: Option<Previous>,
    },
    Delete {
        id: EntryId,
        previous: Previous,
    },
}

#[derive(Clone, Debug)]
pub struct Previous {
    pub ndn: String,
    pub keys: Vec<Vec<u8>>,
}

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    generation: AtomicU64,
}

const GEN_KEY: &[u8] = b"mgeneration";

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

fn child_key(parent_ndn: &str, id: EntryId) -> Vec<u8> {
    let mut k = prefixed(b'c', &[parent_ndn.as_bytes(), b""]);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn eq_key(key: &[u8], id: EntryId) -> Vec<u8> {
    let mut k = prefixed(b'k', &[key, b""]);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let tree = db.open_tree("directory")?;
        let generation = tree.get(GEN_KEY)?.and_then(|v| read_u64(&v)).unwrap_or(0);
        Ok(Store {
            db,
            tree,
            generation: AtomicU64::new(generation),
        })
    }

    /// The generation of the last applied write batch.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A new, never reused entry id.
    pub fn new_id(&self) -> Result<EntryId, StoreError> {
        Ok(self.db.generate_id()?.saturating_add(1))
    }

    pub fn get(&self, id: EntryId) -> Result<Option<Entry>, StoreError> {
        match self.tree.get(id_key(b'e', id))? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
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

    /// Ids of the entries carrying an equality key (see the module docs).
    pub fn lookup_key(&self, key: &[u8]) -> Result<Vec<EntryId>, StoreError> {
        let prefix = prefixed(b'k', &[key, b""]);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item?;
            if let Some(id) = k.get(prefix.len()..).and_then(read_u64) {
                out.push(id);
            }
        }
        Ok(out)
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
        self.tree.scan_prefix(b"e").map(|item| {
            let (k, v) = item?;
            let id = k.get(1..).and_then(read_u64).unwrap_or(0);
            Ok((id, codec::decode(&v)?))
        })
    }

    /// Entries with ids greater than `after`, in id order (resumable scans).
    pub fn scan_from(
        &self,
        after: EntryId,
    ) -> impl Iterator<Item = Result<(EntryId, Entry), StoreError>> + '_ {
        let start = id_key(b'e', after.saturating_add(1));
        self.tree
            .range(start.as_slice()..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.first() == Some(&b'e'))
            })
            .map(|item| {
                let (k, v) = item?;
                let id = k.get(1..).and_then(read_u64).unwrap_or(0);
                Ok((id, codec::decode(&v)?))
            })
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
        let generation = self.generation() + 1;
        let mut batch = sled::Batch::default();
        for w in writes {
            match w {
                Write::Put {
                    id,
                    entry,
                    keys,
                    previous,
                } => {
                    if let Some(prev) = previous {
                        batch.remove(prefixed(b'd', &[prev.ndn.as_bytes()]));
                        batch.remove(child_key(parent_of(&prev.ndn), *id));
                        for k in &prev.keys {
                            batch.remove(eq_key(k, *id));
                        }
                    }
                    batch.insert(&id_key(b'e', *id), codec::encode(entry));
                    batch.insert(prefixed(b'd', &[entry.ndn.as_bytes()]), &id.to_be_bytes());
                    if !entry.ndn.is_empty() {
                        batch.insert(child_key(parent_of(&entry.ndn), *id), &[]);
                    }
                    for k in keys {
                        batch.insert(eq_key(k, *id), &[]);
                    }
                    batch.insert(log_key(generation, *id).as_slice(), &[]);
                }
                Write::Delete { id, previous } => {
                    batch.remove(&id_key(b'e', *id));
                    batch.remove(prefixed(b'd', &[previous.ndn.as_bytes()]));
                    batch.remove(child_key(parent_of(&previous.ndn), *id));
                    for k in &previous.keys {
                        batch.remove(eq_key(k, *id));
                    }
                    batch.insert(log_key(generation, *id).as_slice(), &[]);
                }
            }
        }
        batch.insert(GEN_KEY, &generation.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.generation.store(generation, Ordering::Release);
        Ok(generation)
    }

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

    /// Forgets change-log records up to `generation` (the index has them).
    pub fn trim_log(&self, generation: u64) -> Result<(), StoreError> {
        let end = log_key(generation.saturating_add(1), 0);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.tree.range(b"l".as_slice()..end.as_slice()) {
            let (k, _) = item?;
            batch.remove(k);
            n += 1;
        }
        if n > 0 {
            self.tree.apply_batch(batch)?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

fn log_key(generation: u64, id: EntryId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'l';
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..17].copy_from_slice(&id.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str) -> Entry {
        Entry::new(dn.into(), dn.to_lowercase())
    }

    #[test]
    fn put_get_rename_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.new_id().unwrap();
        let g1 = store
            .apply(&[Write::Put {
                id,
                entry: entry("cn=A,dc=x"),
                keys: vec![b"uid\0a".to_vec()],
                previous: None,
            }])
            .unwrap();
        assert_eq!(store.id_of("cn=a,dc=x").unwrap(), Some(id));
        assert_eq!(store.children("dc=x").unwrap(), vec![id]);
        assert_eq!(store.lookup_key(b"uid\0a").unwrap(), vec![id]);
        store
            .apply(&[Write::Put {
                id,
                entry: entry("cn=B,dc=y"),
                keys: vec![b"uid\0b".to_vec()],
                previous: Some(Previous {
                    ndn: "cn=a,dc=x".into(),
                    keys: vec![b"uid\0a".to_vec()],
                }),
            }])
            .unwrap();
        assert_eq!(store.id_of("cn=a,dc=x").unwrap(), None);
        assert!(store.children("dc=x").unwrap().is_empty());
        assert!(store.lookup_key(b"uid\0a").unwrap().is_empty());
        assert_eq!(store.get(id).unwrap().unwrap().dn, "cn=B,dc=y");
        let changes = store.changes_since(g1).unwrap();
        assert_eq!(changes.len(), 1);
        store
            .apply(&[Write::Delete {
                id,
                previous: Previous {
                    ndn: "cn=b,dc=y".into(),
                    keys: vec![b"uid\0b".to_vec()],
                },
            }])
            .unwrap();
        assert!(store.get(id).unwrap().is_none());
        assert!(store.is_empty());
        store.trim_log(store.generation()).unwrap();
        assert!(store.changes_since(0).unwrap().is_empty());
    }
}
