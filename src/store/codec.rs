//! The on-disk encoding of an entry: a version byte, then length-prefixed fields.
//!
//! ```text
//! 1u8 | dn | ndn | u32 attr count | { name | u32 value count | { value }* }*
//! ```
//! Strings and values are `u32` little-endian length + bytes. Decoding checks every length
//! against what is left, so a damaged record is reported as corrupt, never a panic.

use crate::directory::entry::{Attribute, Entry};

const VERSION: u8 = 1;

pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut size = 1 + 8 + entry.dn.len() + entry.ndn.len() + 4;
    for a in &entry.attrs {
        size += 8 + a.name.len();
        size += a.values.iter().map(|v| 4 + v.len()).sum::<usize>();
    }
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    put_bytes(&mut out, entry.dn.as_bytes());
    put_bytes(&mut out, entry.ndn.as_bytes());
    put_len(&mut out, entry.attrs.len());
    for a in &entry.attrs {
        put_bytes(&mut out, a.name.as_bytes());
        put_len(&mut out, a.values.len());
        for v in &a.values {
            put_bytes(&mut out, v);
        }
    }
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Entries are bounded by the PDU and import limits, far below 4 GiB.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt entry record: {0}")]
pub struct CorruptRecord(pub &'static str);

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn len(&mut self) -> Result<usize, CorruptRecord> {
        let head = self.buf.get(..4).ok_or(CorruptRecord("truncated length"))?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(head);
        self.buf = self.buf.get(4..).unwrap_or_default();
        usize::try_from(u32::from_le_bytes(raw)).map_err(|_| CorruptRecord("length overflow"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CorruptRecord> {
        let n = self.len()?;
        let out = self.buf.get(..n).ok_or(CorruptRecord("truncated value"))?;
        self.buf = self.buf.get(n..).unwrap_or_default();
        Ok(out)
    }

    fn string(&mut self) -> Result<String, CorruptRecord> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| CorruptRecord("invalid UTF-8 in name"))
    }
}

pub fn decode(buf: &[u8]) -> Result<Entry, CorruptRecord> {
    let (version, rest) = buf.split_first().ok_or(CorruptRecord("empty record"))?;
    if *version != VERSION {
        return Err(CorruptRecord("unknown record version"));
    }
    let mut r = Reader { buf: rest };
    let dn = r.string()?;
    let ndn = r.string()?;
    let count = r.len()?;
    let mut attrs = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let name = r.string()?;
        let n = r.len()?;
        let mut values = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            values.push(r.bytes()?.to_vec());
        }
        attrs.push(Attribute { name, values });
    }
    if !r.buf.is_empty() {
        return Err(CorruptRecord("trailing bytes"));
    }
    Ok(Entry { dn, ndn, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(dn in ".{0,40}", names in proptest::collection::vec(("[a-zA-Z]{1,12}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..4)), 0..8)) {
            let entry = Entry {
                dn: dn.clone(),
                ndn: dn.to_lowercase(),
                attrs: names.into_iter().map(|(name, values)| Attribute { name, values }).collect(),
            };
            let bytes = encode(&entry);
            prop_assert_eq!(decode(&bytes).unwrap(), entry);
            // Every truncation is an error, never a panic.
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
        }
    }
}
