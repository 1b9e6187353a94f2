//! Directory entries: a DN, its normalised key and attributes with their values.
//!
//! Attribute names are kept in the schema's spelling (`givenName`, whatever the client sent)
//! and looked up case-insensitively. Values are bytes: most are UTF-8 text, some (photos) are
//! not. Attribute order is the order of first insertion, which is the order clients see.

use super::schema::Schema;

/// The store's number for an entry: allocated once, never reused, dense (see `store`).
pub type EntryId = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<Vec<u8>>,
}

/// Read access to an entry's values: implemented by owned entries and by views over stored
/// records (`record::EntryView`), so that filters and the security computation run on
/// either without copying.
pub trait AttrSource {
    type Values<'s>: Iterator<Item = &'s [u8]>
    where
        Self: 's;
    fn dn(&self) -> &str;
    /// Values of the attribute with this canonical name (any case); empty when absent.
    fn values_of<'s>(&'s self, name: &str) -> Self::Values<'s>;
    /// Names of every attribute present.
    fn attribute_names(&self) -> Vec<&str>;

    /// The first value of an attribute as text.
    fn first_text(&self, name: &str) -> Option<&str> {
        self.values_of(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `true` when some value equals `value`, ASCII case ignored.
    fn has_text_ci(&self, name: &str, value: &str) -> bool {
        self.values_of(name)
            .any(|v| v.eq_ignore_ascii_case(value.as_bytes()))
    }
}

type SliceOf = fn(&Vec<u8>) -> &[u8];

/// An entry seen with attributes the server computes (`structuralObjectClass`,
/// `hasSubordinates`) beside its stored ones, for a filter that reads them: the computed
/// values are made only for such a filter, never for the usual search.
pub struct WithComputed<'e, E: ?Sized> {
    pub entry: &'e E,
    /// Computed attributes by canonical name, each with one value.
    pub computed: Vec<(&'static str, Vec<u8>)>,
}

/// Either a stored attribute's values or a computed one's.
pub enum ComputedValues<'s, I> {
    Stored(I),
    Computed(Option<&'s [u8]>),
}

impl<'s, I: Iterator<Item = &'s [u8]>> Iterator for ComputedValues<'s, I> {
    type Item = &'s [u8];

    fn next(&mut self) -> Option<&'s [u8]> {
        match self {
            ComputedValues::Stored(i) => i.next(),
            ComputedValues::Computed(v) => v.take(),
        }
    }
}

impl<E: AttrSource + ?Sized> AttrSource for WithComputed<'_, E> {
    type Values<'s>
        = ComputedValues<'s, E::Values<'s>>
    where
        Self: 's;

    fn dn(&self) -> &str {
        self.entry.dn()
    }

    fn values_of<'s>(&'s self, name: &str) -> Self::Values<'s> {
        match self
            .computed
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => ComputedValues::Computed(Some(v.as_slice())),
            None => ComputedValues::Stored(self.entry.values_of(name)),
        }
    }

    fn attribute_names(&self) -> Vec<&str> {
        let mut names = self.entry.attribute_names();
        names.extend(self.computed.iter().map(|(n, _)| *n));
        names
    }
}

impl AttrSource for Entry {
    type Values<'s> = std::iter::Map<std::slice::Iter<'s, Vec<u8>>, SliceOf>;

    fn dn(&self) -> &str {
        &self.dn
    }

    fn values_of<'s>(&'s self, name: &str) -> Self::Values<'s> {
        self.values(name).iter().map(Vec::as_slice as SliceOf)
    }

    fn attribute_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|a| a.name.as_str()).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// The DN as it was written when the entry was created.
    pub dn: String,
    /// The normalised key of the DN (see [`super::dn::Dn::normalize`]).
    pub ndn: String,
    pub attrs: Vec<Attribute>,
}

impl Entry {
    pub fn new(dn: String, ndn: String) -> Entry {
        Entry {
            dn,
            ndn,
            attrs: Vec::new(),
        }
    }

    /// The attribute with this exact canonical name (any case).
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Attribute> {
        self.attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.get(name)
            .map(|a| a.values.as_slice())
            .unwrap_or_default()
    }

    /// The first value of an attribute as text.
    pub fn first_str(&self, name: &str) -> Option<&str> {
        self.values(name)
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn has_value_ci(&self, name: &str, value: &str) -> bool {
        self.values(name)
            .iter()
            .any(|v| std::str::from_utf8(v).is_ok_and(|s| s.eq_ignore_ascii_case(value)))
    }

    /// Adds values, skipping those already present (by the attribute's equality rule).
    pub fn add_values(&mut self, schema: &Schema, name: &str, values: Vec<Vec<u8>>) {
        let canonical = schema.canonical_name(name).to_string();
        let rule = schema.attr(name).and_then(|a| a.equality);
        let normalize = |v: &[u8]| match rule {
            Some(r) => r.normalize(v, schema),
            None => v.to_vec(),
        };
        let idx = match self
            .attrs
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(&canonical))
        {
            Some(i) => i,
            None => {
                self.attrs.push(Attribute {
                    name: canonical,
                    values: Vec::new(),
                });
                self.attrs.len() - 1
            }
        };
        if let Some(attr) = self.attrs.get_mut(idx) {
            if attr.values.is_empty() && values.len() == 1 {
                // The first value of an attribute repeats nothing (most attributes of most
                // entries: an import adds them one line at a time).
                attr.values = values;
                return;
            }
            let mut seen: Vec<Vec<u8>> = attr.values.iter().map(|v| normalize(v)).collect();
            for v in values {
                let n = normalize(&v);
                if !seen.contains(&n) {
                    seen.push(n);
                    attr.values.push(v);
                }
            }
        }
    }

    /// Replaces every value of an attribute; an empty list removes it.
    /// Keeps the attribute's position, so clients see a stable order.
    pub fn set_values(&mut self, schema: &Schema, name: &str, values: Vec<Vec<u8>>) {
        if values.is_empty() {
            self.remove(name);
            return;
        }
        let canonical = schema.canonical_name(name);
        if let Some(attr) = self.get_mut(canonical) {
            attr.values.clear();
        }
        self.add_values(schema, name, values);
    }

    pub fn remove(&mut self, name: &str) {
        self.attrs.retain(|a| !a.name.eq_ignore_ascii_case(name));
    }
}
