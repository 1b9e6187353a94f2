//! Backups: the store's records at one generation, in one file, checked on the way back.
//!
//! A backup holds every record of the directory tree — entries (with their password hashes),
//! DN keys and parent links, tombstones, the generation, the next id and the suffix — and the
//! last sign-ins the server recorded (the dormancy rules need them), but not the change log (a
//! restored store has its index rebuilt) nor the failed binds and lockouts (they start afresh).
//! The index is derived and is not in it.
//!
//! Format: the line `ONEPAGES-BACKUP 1`, one line of JSON that describes the backup, then for
//! each record `[kind][key length u32][key][value length u32][value]` (kind 1: the directory
//! tree, 2: a last sign-in), then `[0]` and the SHA-256 of everything before it. A truncated
//! or altered file is refused as a whole.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::{read_u64, Store, StoreError, GEN_KEY, UNLOGGED_KEY};

const MAGIC: &[u8] = b"ONEPAGES-BACKUP 1\n";

/// The records of a store at one generation.
pub struct Snapshot {
    pub generation: u64,
    pub entries: usize,
    pub tombstones: usize,
    records: Vec<(sled::IVec, sled::IVec)>,
    sign_ins: Vec<(sled::IVec, sled::IVec)>,
}

/// What a backup file says about itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupInfo {
    pub generation: u64,
    pub entries: usize,
    pub tombstones: usize,
    pub suffix: String,
    /// When it was made (RFC 3339).
    pub made: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a ONE Pages backup (it does not begin with ONEPAGES-BACKUP 1)")]
    NotABackup,
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Copies every record but the change log. The caller holds the writer lock, so that no
    /// write lands in the middle: the copy is one generation.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut records = Vec::new();
        let (mut entries, mut tombstones) = (0, 0);
        for item in self.tree.iter() {
            let (k, v) = item?;
            match k.first() {
                Some(b'l') => continue,
                Some(b'e') => entries += 1,
                Some(b't') => tombstones += 1,
                _ if &k[..] == UNLOGGED_KEY => continue,
                _ => {}
            }
            records.push((k, v));
        }
        let sign_ins = self.sign_in.iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            generation: self.generation(),
            entries,
            tombstones,
            records,
            sign_ins,
        })
    }

    /// Loads a backup's records into this (empty) store, marked so that the next open
    /// rebuilds the index from them.
    pub fn load(&self, loaded: Loaded) -> Result<(), StoreError> {
        let Loaded {
            records, sign_ins, ..
        } = loaded;
        self.tree.insert(UNLOGGED_KEY, &0u64.to_be_bytes())?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for (k, v) in records {
            batch.insert(k, v);
            n += 1;
            if n % 10_000 == 0 {
                self.tree.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        self.tree.apply_batch(batch)?;
        let mut batch = sled::Batch::default();
        for (k, v) in sign_ins {
            batch.insert(k, v);
        }
        self.sign_in.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }
}

struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn len32(n: usize) -> std::io::Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| std::io::Error::other("a record over 4 GiB"))
}

/// Writes a snapshot as a backup file; returns its size in bytes.
pub fn write(snapshot: &Snapshot, info: &BackupInfo, out: impl Write) -> std::io::Result<u64> {
    let mut w = Hashing {
        inner: std::io::BufWriter::with_capacity(1 << 20, out),
        hash: Sha256::new(),
        bytes: 0,
    };
    w.write_all(MAGIC)?;
    w.write_all(serde_json::to_string(info)?.as_bytes())?;
    w.write_all(b"\n")?;
    for (k, v) in &snapshot.records {
        w.write_all(&[1])?;
        w.write_all(&len32(k.len())?)?;
        w.write_all(k)?;
        w.write_all(&len32(v.len())?)?;
        w.write_all(v)?;
    }
    for (k, v) in &snapshot.sign_ins {
        w.write_all(&[2])?;
        w.write_all(&len32(k.len())?)?;
        w.write_all(k)?;
        w.write_all(&len32(v.len())?)?;
        w.write_all(v)?;
    }
    w.write_all(&[0])?;
    let digest = w.hash.clone().finalize();
    w.inner.write_all(&digest)?;
    w.inner.flush()?;
    Ok(w.bytes + digest.len() as u64)
}

/// A backup's description and records.
pub struct Loaded {
    pub info: BackupInfo,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    pub sign_ins: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads and checks a whole backup file.
pub fn read(mut input: impl Read) -> Result<Loaded, BackupError> {
    let mut all = Vec::new();
    input.read_to_end(&mut all)?;
    if !all.starts_with(MAGIC) {
        return Err(BackupError::NotABackup);
    }
    let damaged = |what: &str| BackupError::Damaged(what.to_string());
    if all.len() < MAGIC.len() + 33 {
        return Err(damaged("it is truncated"));
    }
    let (body, digest) = all.split_at(all.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(damaged(
            "its checksum does not match (truncated or altered)",
        ));
    }
    let rest = body.get(MAGIC.len()..).unwrap_or_default();
    let line_end = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| damaged("no description line"))?;
    let info: BackupInfo = serde_json::from_slice(rest.get(..line_end).unwrap_or_default())
        .map_err(|e| BackupError::Damaged(format!("its description: {e}")))?;
    let mut at = rest.get(line_end + 1..).unwrap_or_default();
    let mut records = Vec::new();
    let mut sign_ins = Vec::new();
    let take = |at: &mut &[u8], n: usize| -> Result<Vec<u8>, BackupError> {
        let (head, tail) = (at.get(..n), at.get(n..));
        match (head, tail) {
            (Some(h), Some(t)) => {
                let out = h.to_vec();
                *at = t;
                Ok(out)
            }
            _ => Err(damaged("a record is cut short")),
        }
    };
    let len = |at: &mut &[u8]| -> Result<usize, BackupError> {
        let b = take(at, 4)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| damaged("a length"))?;
        Ok(u32::from_be_bytes(arr) as usize)
    };
    loop {
        let kind = take(&mut at, 1)?.first().copied();
        match kind {
            Some(0) => break,
            Some(1 | 2) => {
                let n = len(&mut at)?;
                let k = take(&mut at, n)?;
                let n = len(&mut at)?;
                let v = take(&mut at, n)?;
                if kind == Some(1) {
                    records.push((k, v));
                } else {
                    sign_ins.push((k, v));
                }
            }
            _ => return Err(damaged("an unknown record kind")),
        }
    }
    if !at.is_empty() {
        return Err(damaged("bytes after the end"));
    }
    let generation = records
        .iter()
        .find(|(k, _)| k.as_slice() == GEN_KEY)
        .and_then(|(_, v)| read_u64(v))
        .unwrap_or(0);
    if generation != info.generation {
        return Err(damaged("its generation does not match its description"));
    }
    let entries = records
        .iter()
        .filter(|(k, _)| k.first() == Some(&b'e'))
        .count();
    if entries != info.entries {
        return Err(BackupError::Damaged(format!(
            "it holds {entries} entries, its description says {}",
            info.entries
        )));
    }
    Ok(Loaded {
        info,
        records,
        sign_ins,
    })
}
