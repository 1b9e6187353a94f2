//! Tombstones: a deleted entry kept under key `t` id (when, by whom, the encoded entry),
//! written in the delete's own batch ([`super::Write::Delete`] with `keep`) and forgotten by
//! [`super::Write::Forget`].

use super::{codec, id_key, read_u64, EntryId, Store, StoreError};
use crate::directory::entry::Entry;

/// When and by whom a kept entry was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Burial {
    /// Seconds since 1970.
    pub at: i64,
    /// The deleter's DN (empty: an offline operator).
    pub by: String,
}

/// A deleted entry kept for restore: its id, its entry as it was, and its burial.
#[derive(Clone, Debug)]
pub struct Tombstone {
    pub id: EntryId,
    pub burial: Burial,
    pub entry: Entry,
}

pub(super) fn encode_tombstone(burial: &Burial, record: &[u8]) -> Vec<u8> {
    let by = burial.by.as_bytes();
    let mut v = Vec::with_capacity(12 + by.len() + record.len());
    v.extend_from_slice(&burial.at.to_be_bytes());
    v.extend_from_slice(&(by.len() as u32).to_be_bytes());
    v.extend_from_slice(by);
    v.extend_from_slice(record);
    v
}

fn decode_tombstone(id: EntryId, v: &[u8]) -> Result<Tombstone, StoreError> {
    let _ = id;
    let bad = || StoreError::Corrupt(codec::CorruptRecord("a tombstone is truncated"));
    let at = v
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
        .ok_or_else(bad)?;
    let len = v
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(bad)? as usize;
    let by = v.get(12..12 + len).ok_or_else(bad)?;
    let record = v.get(12 + len..).ok_or_else(bad)?;
    Ok(Tombstone {
        id,
        burial: Burial {
            at,
            by: String::from_utf8_lossy(by).into_owned(),
        },
        entry: codec::decode(record)?,
    })
}

impl Store {
    /// Every tombstone, in id order.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"t") {
            let (k, v) = item?;
            if let Some(id) = k.get(1..).and_then(read_u64) {
                out.push(decode_tombstone(id, &v)?);
            }
        }
        Ok(out)
    }

    /// The tombstone of entry `id`, if it is kept.
    pub fn tombstone(&self, id: EntryId) -> Result<Option<Tombstone>, StoreError> {
        match self.tree.get(id_key(b't', id))? {
            Some(v) => Ok(Some(decode_tombstone(id, &v)?)),
            None => Ok(None),
        }
    }
}
