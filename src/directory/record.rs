//! The on-disk encoding of an entry: a version byte, then length-prefixed fields.
//!
//! ```text
//! 2u8 | dn | ndn | n attr count | { name | n value count | { value }* }*
//! ```
//! `n` is an unsigned LEB128 number (one byte below 128). The DN is `n` length + bytes; the
//! normalised DN is `n` 0 when it is the DN byte for byte (a DN in lower case), else `n`
//! length + 1 and its bytes. An attribute's name is one byte: `k` ≥ 1 is [`NAMES`]`[k - 1]`,
//! 0 is followed by the name written out. A value is `n` = length × 2 followed by its bytes,
//! or `n` = `k` × 2 + 1 for [`VALUES`]`[k]` (the object classes, statuses and flags most
//! entries carry). Decoding checks every length and number against what is left and the
//! tables, so a damaged record is reported as corrupt, never a panic.
//!
//! Version 1 (stores written before December 2026) is read as well: every length a `u32`
//! little-endian, every name and value written out. A person took about 900 bytes in it
//! against about 550 in version 2, and a serving process holds every record in memory.

use super::entry::{AttrSource, Attribute, Entry};

/// Version 1: `u32` lengths, names written out.
const WIDE: u8 = 1;
/// Version 2 (written now): LEB128 lengths, names from [`NAMES`].
const COMPACT: u8 = 2;

/// Attribute names a record refers to by number (`index + 1`), exactly as the schema spells
/// them (a name in another case is written out). The numbers are on disk: names are only ever
/// appended, never removed or reordered.
pub const NAMES: &[&str] = &[
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "mail",
    "uid",
    "o",
    "ou",
    "department",
    "company",
    "displayName",
    "title",
    "telephoneNumber",
    "mobile",
    "userPassword",
    "description",
    "l",
    "st",
    "c",
    "street",
    "postalCode",
    "postalAddress",
    "initials",
    "employeeNumber",
    "employeeType",
    "departmentNumber",
    "physicalDeliveryOfficeName",
    "facsimileTelephoneNumber",
    "pager",
    "homePhone",
    "roomNumber",
    "businessCategory",
    "manager",
    "secretary",
    "preferredLanguage",
    "labeledURI",
    "userCertificate",
    "userSMIMECertificate",
    "member",
    "uniqueMember",
    "owner",
    "seeAlso",
    "dc",
    "associatedDomain",
    "name",
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
    "entryUUID",
    "pwdFailureTime",
    "pwdAccountLockedTime",
    "onePagesStatus",
    "onePagesAccountType",
    "onePagesRole",
    "onePagesLastSignIn",
    "onePagesExemptUntil",
    "onePagesExemptReason",
    "onePagesStatusReason",
    "onePagesStatusChanged",
    "onePagesForcedReason",
    "onePagesMailDomain",
    "onePagesConfiguredDomain",
    "isDeleted",
    "onePagesDeletedAt",
    "onePagesDeletedBy",
    "onePagesPurgeAt",
    "oneMailSecure",
    "co",
    "jpegPhoto",
    "carLicense",
    "homePostalAddress",
    "buildingName",
];

/// Values a record refers to by number, exactly as written (a value in another case is
/// written out). On disk like [`NAMES`]: only ever appended.
pub const VALUES: &[&[u8]] = &[
    b"top",
    b"person",
    b"organizationalPerson",
    b"inetOrgPerson",
    b"onePagesPerson",
    b"onePagesService",
    b"organizationalUnit",
    b"organization",
    b"dcObject",
    b"domain",
    b"simpleSecurityObject",
    b"applicationProcess",
    b"account",
    b"groupOfNames",
    b"groupOfUniqueNames",
    b"pkiUser",
    b"extensibleObject",
    b"active",
    b"disabled",
    b"user",
    b"external",
    b"service",
    b"admin",
    b"reader",
    b"TRUE",
    b"FALSE",
];

/// `oneMailSecure: TRUE` and `FALSE` as an attribute's encoded values (see
/// [`AttrView::computed`]).
pub const ENCODED_TRUE: &[u8] = &[4 << 1, b'T', b'R', b'U', b'E'];
pub const ENCODED_FALSE: &[u8] = &[5 << 1, b'F', b'A', b'L', b'S', b'E'];

/// The number a record writes for `name`, or 0 when it is written out.
fn name_number(name: &str) -> u8 {
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i + 1).ok())
        .unwrap_or(0)
}

pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut size = 1 + 10 + entry.dn.len() + entry.ndn.len() + 2;
    let mut numbers = smallvec::SmallVec::<[u8; VIEW_ATTRS]>::new();
    for a in &entry.attrs {
        let number = name_number(&a.name);
        numbers.push(number);
        size += 3;
        if number == 0 {
            size += 2 + a.name.len();
        }
        size += a.values.iter().map(|v| 2 + v.len()).sum::<usize>();
    }
    let mut out = Vec::with_capacity(size);
    out.push(COMPACT);
    put_bytes(&mut out, entry.dn.as_bytes());
    if entry.ndn == entry.dn {
        put_len(&mut out, 0);
    } else {
        put_len(&mut out, entry.ndn.len().saturating_add(1));
        out.extend_from_slice(entry.ndn.as_bytes());
    }
    put_len(&mut out, entry.attrs.len());
    for (a, number) in entry.attrs.iter().zip(numbers) {
        out.push(number);
        if number == 0 {
            put_bytes(&mut out, a.name.as_bytes());
        }
        put_len(&mut out, a.values.len());
        for v in &a.values {
            match VALUES.iter().position(|known| *known == v.as_slice()) {
                Some(k) => put_len(&mut out, k * 2 + 1),
                None => {
                    put_len(&mut out, v.len().saturating_mul(2));
                    out.extend_from_slice(v);
                }
            }
        }
    }
    out
}

/// The record in the current version: `record` itself when it is, else re-encoded (a store
/// written before version 2 is held in memory in version 2).
pub fn current(record: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, CorruptRecord> {
    match record.first() {
        Some(&COMPACT) => Ok(std::borrow::Cow::Borrowed(record)),
        _ => Ok(std::borrow::Cow::Owned(encode(&decode(record)?))),
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Entries are bounded by the PDU and import limits, far below 4 GiB.
    let mut n = u32::try_from(len).unwrap_or(u32::MAX);
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
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
    /// Version 1's `u32` lengths.
    wide: bool,
}

impl<'a> Reader<'a> {
    fn len(&mut self) -> Result<usize, CorruptRecord> {
        if self.wide {
            let head = self.buf.get(..4).ok_or(CorruptRecord("truncated length"))?;
            let mut raw = [0u8; 4];
            raw.copy_from_slice(head);
            self.buf = self.buf.get(4..).unwrap_or_default();
            return usize::try_from(u32::from_le_bytes(raw))
                .map_err(|_| CorruptRecord("length overflow"));
        }
        let mut n: u32 = 0;
        for (i, b) in self.buf.iter().take(5).enumerate() {
            let low = u32::from(b & 0x7f);
            if i == 4 && low > 0x0f {
                return Err(CorruptRecord("length overflow"));
            }
            n |= low << (7 * i);
            if b & 0x80 == 0 {
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return usize::try_from(n).map_err(|_| CorruptRecord("length overflow"));
            }
        }
        Err(CorruptRecord("truncated length"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CorruptRecord> {
        let n = self.len()?;
        let out = self.buf.get(..n).ok_or(CorruptRecord("truncated value"))?;
        self.buf = self.buf.get(n..).unwrap_or_default();
        Ok(out)
    }

    /// A value (version 2: written out or from [`VALUES`]).
    fn value(&mut self) -> Result<&'a [u8], CorruptRecord> {
        if self.wide {
            return self.bytes();
        }
        let n = self.len()?;
        if n % 2 == 1 {
            return VALUES
                .get(n / 2)
                .copied()
                .ok_or(CorruptRecord("unknown value number"));
        }
        let out = self
            .buf
            .get(..n / 2)
            .ok_or(CorruptRecord("truncated value"))?;
        self.buf = self.buf.get(n / 2..).unwrap_or_default();
        Ok(out)
    }

    /// The DN and the normalised DN.
    fn dns(&mut self) -> Result<(&'a str, &'a str), CorruptRecord> {
        let dn = text(self.bytes()?)?;
        if self.wide {
            return Ok((dn, text(self.bytes()?)?));
        }
        let n = self.len()?;
        if n == 0 {
            return Ok((dn, dn));
        }
        let ndn = self
            .buf
            .get(..n - 1)
            .ok_or(CorruptRecord("truncated value"))?;
        self.buf = self.buf.get(n - 1..).unwrap_or_default();
        Ok((dn, text(ndn)?))
    }

    /// An attribute's name.
    fn name(&mut self) -> Result<&'a [u8], CorruptRecord> {
        if self.wide {
            return self.bytes();
        }
        let (number, rest) = self
            .buf
            .split_first()
            .ok_or(CorruptRecord("truncated name"))?;
        self.buf = rest;
        match usize::from(*number) {
            0 => self.bytes(),
            k => NAMES
                .get(k - 1)
                .map(|n| n.as_bytes())
                .ok_or(CorruptRecord("unknown attribute number")),
        }
    }
}

/// A reader after the version byte.
fn open(buf: &[u8]) -> Result<Reader<'_>, CorruptRecord> {
    let (version, rest) = buf.split_first().ok_or(CorruptRecord("empty record"))?;
    match *version {
        COMPACT => Ok(Reader {
            buf: rest,
            wide: false,
        }),
        WIDE => Ok(Reader {
            buf: rest,
            wide: true,
        }),
        _ => Err(CorruptRecord("unknown record version")),
    }
}

fn text(b: &[u8]) -> Result<&str, CorruptRecord> {
    std::str::from_utf8(b).map_err(|_| CorruptRecord("invalid UTF-8 in name"))
}

pub fn decode(buf: &[u8]) -> Result<Entry, CorruptRecord> {
    let mut r = open(buf)?;
    let (dn, ndn) = r.dns()?;
    let (dn, ndn) = (dn.to_string(), ndn.to_string());
    let count = r.len()?;
    let mut attrs = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let name = text(r.name()?)?.to_string();
        let n = r.len()?;
        let mut values = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            values.push(r.value()?.to_vec());
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
    /// `count` length-prefixed values.
    raw: &'a [u8],
    count: u32,
    /// Lengths in version 1's form.
    wide: bool,
}

impl<'a> AttrView<'a> {
    /// An attribute with one value, from its encoded form ([`ENCODED_TRUE`], [`ENCODED_FALSE`]).
    pub const fn computed(name: &'a str, encoded: &'a [u8]) -> AttrView<'a> {
        AttrView {
            name: name.as_bytes(),
            raw: encoded,
            count: 1,
            wide: false,
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
            wide: self.wide,
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Values of an [`AttrView`].
#[derive(Debug, Clone)]
pub struct ValueIter<'a> {
    raw: &'a [u8],
    left: u32,
    wide: bool,
}

impl<'a> Iterator for ValueIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let mut r = Reader {
            buf: self.raw,
            wide: self.wide,
        };
        let v = r.value().ok()?;
        self.raw = r.buf;
        self.left -= 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// Reads a record in place (see [`EntryView`]).
pub fn view(buf: &[u8]) -> Result<EntryView<'_>, CorruptRecord> {
    let mut r = open(buf)?;
    let wide = r.wide;
    let (dn, ndn) = r.dns()?;
    let count = r.len()?;
    let mut attrs = smallvec::SmallVec::with_capacity(count.min(256) + 2);
    for _ in 0..count {
        let name = r.name()?;
        let n = r.len()?;
        let start = r.buf;
        for _ in 0..n {
            r.value()?;
        }
        let used = start.len() - r.buf.len();
        attrs.push(AttrView {
            name,
            raw: start.get(..used).unwrap_or_default(),
            count: u32::try_from(n).map_err(|_| CorruptRecord("length overflow"))?,
            wide,
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
            None => ValueIter {
                raw: &[],
                left: 0,
                wide: false,
            },
        }
    }

    fn attribute_names(&self) -> Vec<&str> {
        self.attrs.iter().filter_map(AttrView::name).collect()
    }
}

/// Version 1, as stores before version 2 wrote it (for tests of reading old stores).
#[cfg(test)]
pub fn encode_version_1(entry: &Entry) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    let mut out = vec![WIDE];
    put(&mut out, entry.dn.as_bytes());
    put(&mut out, entry.ndn.as_bytes());
    out.extend_from_slice(&(entry.attrs.len() as u32).to_le_bytes());
    for a in &entry.attrs {
        put(&mut out, a.name.as_bytes());
        out.extend_from_slice(&(a.values.len() as u32).to_le_bytes());
        for v in &a.values {
            put(&mut out, v);
        }
    }
    out
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
            // A record of version 1 reads as the same entry, and is held as version 2.
            let wide = encode_version_1(&entry);
            prop_assert_eq!(decode(&wide).unwrap(), entry.clone());
            prop_assert_eq!(super::view(&wide).unwrap().to_entry(), entry.clone());
            let held = current(&wide).unwrap();
            prop_assert_eq!(held.as_ref(), &bytes[..]);
            for cut in 0..wide.len() {
                prop_assert!(super::view(&wide[..cut]).is_err());
            }
        }
    }

    #[test]
    fn known_names_take_one_byte_and_long_values_several() {
        let entry = Entry {
            dn: "uid=a,o=x".into(),
            ndn: "uid=a,o=x".into(),
            attrs: vec![
                Attribute {
                    name: "givenName".into(),
                    values: vec![b"Ann".to_vec()],
                },
                Attribute {
                    // Another case than the schema's is written out, and kept.
                    name: "givenname".into(),
                    values: vec![vec![b'x'; 300]],
                },
            ],
        };
        let bytes = encode(&entry);
        // version, dn, ndn the same, count; name number 4, one value of 3; name written out,
        // one value of 300 (two bytes of length).
        assert_eq!(
            bytes.len(),
            1 + 10 + 1 + 1 + (1 + 1 + 1 + 3) + (1 + 10 + 1 + 2 + 300)
        );
        assert_eq!(decode(&bytes).unwrap(), entry);
        let view = super::view(&bytes).unwrap();
        assert_eq!(view.attrs[1].name, b"givenname");
        assert_eq!(view.attrs[1].values().next().unwrap().len(), 300);
        // A number past the table is corrupt, not a panic.
        let mut bad = bytes.clone();
        bad[13] = 250;
        assert_eq!(
            decode(&bad).unwrap_err(),
            CorruptRecord("unknown attribute number")
        );

        // A value in the table takes one byte; in another case it is written out.
        let classes = Entry {
            dn: "o=x".into(),
            ndn: "o=x".into(),
            attrs: vec![Attribute {
                name: "objectClass".into(),
                values: vec![b"top".to_vec(), b"Top".to_vec()],
            }],
        };
        let bytes = encode(&classes);
        assert_eq!(bytes.len(), 1 + 4 + 1 + 1 + (1 + 1 + 1 + 4));
        assert_eq!(decode(&bytes).unwrap(), classes);
        let mut bad = bytes.clone();
        bad[9] = 127;
        assert_eq!(
            decode(&bad).unwrap_err(),
            CorruptRecord("unknown value number")
        );

        // The computed flag reads as its value.
        let flag = AttrView::computed("oneMailSecure", ENCODED_TRUE);
        assert_eq!(flag.values().collect::<Vec<_>>(), [b"TRUE"]);
        let flag = AttrView::computed("oneMailSecure", ENCODED_FALSE);
        assert_eq!(flag.values().collect::<Vec<_>>(), [b"FALSE"]);
    }

    #[test]
    fn the_name_table_has_no_repeats() {
        let mut seen = std::collections::HashSet::new();
        assert!(NAMES.iter().all(|n| seen.insert(n.to_ascii_lowercase())));
        assert!(NAMES.len() < 255);
    }
}
