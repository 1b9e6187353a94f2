//! The on-disk encoding of an entry: a version byte, then length-prefixed fields.
//!
//! ```text
//! 1u8 | dn | ndn | u32 attr count | { name | u32 value count | { value }* }*
//! ```
//! Strings and values are `u32` little-endian length + bytes. Decoding checks every length
//! against what is left, so a damaged record is reported as corrupt, never a panic.

use super::entry::{AttrSource, Attribute, Entry};

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

/// A stored record read in place: names and values borrow from the record's bytes. Every
/// length is checked when the view is made, so walking it afterwards cannot fail.
#[derive(Debug)]
pub struct EntryView<'a> {
    pub dn: &'a str,
    pub ndn: &'a str,
    /// On the stack for the usual entry (a search views every candidate).
    pub attrs: smallvec::SmallVec<[AttrView<'a>; VIEW_ATTRS]>,
}

/// Attributes a view keeps without allocating: a person has about fifteen.
pub const VIEW_ATTRS: usize = 24;

#[derive(Debug, Clone, Copy)]
pub struct AttrView<'a> {
    /// The name's bytes; UTF-8 is checked only when the name is shown ([`AttrView::name`]).
    pub name: &'a [u8],
    count: usize,
    /// `count` length-prefixed values.
    raw: &'a [u8],
}

impl<'a> AttrView<'a> {
    /// An attribute with one value, from its encoded form (see [`encoded_value`]).
    pub const fn computed(name: &'a str, encoded: &'a [u8]) -> AttrView<'a> {
        AttrView {
            name: name.as_bytes(),
            count: 1,
            raw: encoded,
        }
    }

    /// The name as text (`None` for a damaged record).
    pub fn name(&self) -> Option<&'a str> {
        std::str::from_utf8(self.name).ok()
    }

    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    pub fn values(&self) -> ValueIter<'a> {
        ValueIter {
            raw: self.raw,
            left: self.count,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Values of an [`AttrView`].
#[derive(Debug, Clone)]
pub struct ValueIter<'a> {
    raw: &'a [u8],
    left: usize,
}

impl<'a> Iterator for ValueIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut r = Reader { buf: self.raw };
        let v = r.bytes().ok()?;
        self.raw = r.buf;
        self.left -= 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

fn text(b: &[u8]) -> Result<&str, CorruptRecord> {
    std::str::from_utf8(b).map_err(|_| CorruptRecord("invalid UTF-8 in name"))
}

/// Reads a record in place (see [`EntryView`]).
pub fn view(buf: &[u8]) -> Result<EntryView<'_>, CorruptRecord> {
    let (version, rest) = buf.split_first().ok_or(CorruptRecord("empty record"))?;
    if *version != VERSION {
        return Err(CorruptRecord("unknown record version"));
    }
    let mut r = Reader { buf: rest };
    let dn = text(r.bytes()?)?;
    let ndn = text(r.bytes()?)?;
    let count = r.len()?;
    let mut attrs = smallvec::SmallVec::with_capacity(count.min(256) + 2);
    for _ in 0..count {
        let name = r.bytes()?;
        let n = r.len()?;
        let start = r.buf;
        for _ in 0..n {
            r.bytes()?;
        }
        let used = start.len() - r.buf.len();
        attrs.push(AttrView {
            name,
            count: n,
            raw: start.get(..used).unwrap_or_default(),
        });
    }
    if !r.buf.is_empty() {
        return Err(CorruptRecord("trailing bytes"));
    }
    Ok(EntryView { dn, ndn, attrs })
}

impl<'a> EntryView<'a> {
    pub fn get(&self, name: &str) -> Option<&AttrView<'a>> {
        self.attrs.iter().find(|a| a.is_named(name))
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            dn: self.dn.to_string(),
            ndn: self.ndn.to_string(),
            attrs: self
                .attrs
                .iter()
                .map(|a| Attribute {
                    name: String::from_utf8_lossy(a.name).into_owned(),
                    values: a.values().map(<[u8]>::to_vec).collect(),
                })
                .collect(),
        }
    }
}

impl AttrSource for EntryView<'_> {
    type Values<'s>
        = ValueIter<'s>
    where
        Self: 's;

    fn dn(&self) -> &str {
        self.dn
    }

    fn values_of<'s>(&'s self, name: &str) -> ValueIter<'s> {
        match self.get(name) {
            Some(a) => a.values(),
            None => ValueIter { raw: &[], left: 0 },
        }
    }

    fn attribute_names(&self) -> Vec<&str> {
        self.attrs.iter().filter_map(AttrView::name).collect()
    }
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
            prop_assert_eq!(decode(&bytes).unwrap(), entry.clone());
            // Reading in place sees the same entry.
            let view = view(&bytes).unwrap();
            prop_assert_eq!(view.to_entry(), entry.clone());
            for a in &entry.attrs {
                let seen: Vec<&[u8]> = view.values_of(&a.name).collect();
                let first = entry.values(&a.name);
                prop_assert_eq!(seen, first.iter().map(Vec::as_slice).collect::<Vec<_>>());
            }
            // Every truncation is an error, never a panic.
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
                prop_assert!(super::view(&bytes[..cut]).is_err());
            }
        }
    }
}
