//! Which attributes a search returns, and the entry as the client sees it (RFC 4511 §4.5.1.8):
//! selected attributes, never a secret one, computed operational attributes on request, read
//! in place from the stored record so that only the selected values are touched.

use std::borrow::Cow;
use std::ops::ControlFlow;

use ldap3_proto::proto::{LdapPartialAttribute, LdapSearchResultEntry};

use super::dse::SUBSCHEMA_DN;
use crate::directory::entry::Entry;
use crate::directory::record::{EntryView, ValueIter};
use crate::directory::schema::{Schema, Transfer, Unrecognized};
use crate::directory::secret::Sight;
use crate::dsa::Reader;

/// A matching entry as the client will see it. Names and values borrow from the stored record
/// where they can: the caller encodes it at once (`protocol::encode::encode_found_into`).
#[derive(Debug, Clone)]
pub struct Found<'a> {
    pub dn: Cow<'a, str>,
    pub attributes: Vec<FoundAttribute<'a>>,
}

#[derive(Debug, Clone)]
pub struct FoundAttribute<'a> {
    /// The attribute's name, UTF-8 text (checked when the search decided to return it).
    pub name: Cow<'a, [u8]>,
    pub values: FoundValues<'a>,
}

/// The values of a returned attribute. Stored values are walked in place, so rendering an
/// entry allocates nothing per attribute.
#[derive(Debug, Clone)]
pub enum FoundValues<'a> {
    /// A stored attribute's values, each followed by `suffix` (the insecure marker on the
    /// names Outlook shows; empty otherwise).
    Stored {
        values: ValueIter<'a>,
        suffix: &'a [u8],
    },
    List(Vec<Cow<'a, [u8]>>),
}

impl FoundValues<'_> {
    /// Calls `f` with each value as its two parts (value, suffix): the client sees them joined.
    pub fn each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            FoundValues::Stored { values, suffix } => {
                for v in values.clone() {
                    f(v, suffix);
                }
            }
            FoundValues::List(l) => {
                for v in l {
                    f(v, b"");
                }
            }
        }
    }

    /// Each value as the client sees it.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.each(|v, s| out.push([v, s].concat()));
        out
    }
}

impl<'a> Found<'a> {
    /// Borrows an owned result entry.
    pub fn of(entry: &'a LdapSearchResultEntry) -> Found<'a> {
        Found {
            dn: Cow::Borrowed(&entry.dn),
            attributes: entry
                .attributes
                .iter()
                .map(|a| FoundAttribute {
                    name: Cow::Borrowed(a.atype.as_bytes()),
                    values: FoundValues::List(
                        a.vals.iter().map(|v| Cow::Borrowed(v.as_slice())).collect(),
                    ),
                })
                .collect(),
        }
    }

    /// An owned copy (tests, callers that keep entries).
    pub fn to_entry(&self) -> LdapSearchResultEntry {
        LdapSearchResultEntry {
            dn: self.dn.to_string(),
            attributes: self
                .attributes
                .iter()
                .map(|a| LdapPartialAttribute {
                    atype: String::from_utf8_lossy(&a.name).into_owned(),
                    vals: a.values.to_vecs(),
                })
                .collect(),
        }
    }
}

/// What the caller does with each matching entry; `Break` when the client is gone.
pub type Emit<'a> = dyn FnMut(&Found<'_>) -> ControlFlow<()> + 'a;

/// Which attributes a search returns.
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    /// Lower-case canonical names requested, subtypes included.
    named: Vec<String>,
    /// Lower-case canonical names requested with the `binary` transfer option (RFC 4522),
    /// returned under `NAME;binary`.
    binary_named: Vec<String>,
    pub types_only: bool,
    /// Whether `pwdFailureTime` and `pwdAccountLockedTime` are shown (to administrators who
    /// ask for them, while some account has failures recorded).
    pub password_state: bool,
    /// What the requester may see: private attributes only with [`Sight::Full`].
    pub sight: Sight,
    /// Whether `onePagesLastSignIn` is shown as the server knows it (the later of the stored
    /// value and the sign-ins it recorded), to administrators who ask for it.
    pub sign_ins: bool,
    /// Stored attribute names already decided (name bytes, returned?): entries of a search
    /// repeat the same few names, so each is looked up in the schema once per search.
    /// Kept only past the first [`DECIDE_DIRECTLY`] names: a look-up of one entry decides
    /// its dozen names faster than it could fill the map.
    decided: std::cell::RefCell<rustc_hash::FxHashMap<Box<[u8]>, Returned>>,
    asked: std::cell::Cell<u32>,
}

/// Names decided without the per-search map (about two entries' worth).
const DECIDE_DIRECTLY: u32 = 32;

/// Whether, and under which name, a stored attribute goes to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Returned {
    No,
    /// Under its stored (canonical) name.
    AsStored,
    /// Under `NAME;binary` (RFC 4522): always for the certificate syntaxes, when asked for
    /// the Binary syntax.
    Binary,
}

impl Selection {
    pub fn new(schema: &Schema, attrs: &[String], types_only: bool) -> Selection {
        let mut sel = Selection {
            all_user: attrs.is_empty(),
            all_operational: false,
            named: Vec::new(),
            binary_named: Vec::new(),
            types_only,
            password_state: false,
            sight: Sight::Public,
            sign_ins: false,
            decided: std::cell::RefCell::new(rustc_hash::FxHashMap::default()),
            asked: std::cell::Cell::new(0),
        };
        for a in attrs {
            match a.trim() {
                "*" => sel.all_user = true,
                "+" => sel.all_operational = true,
                "1.1" => {}
                // RFC 4529: every attribute the class and its superclasses require or allow;
                // an unknown class names nothing (like an unknown attribute).
                name if name.starts_with('@') => {
                    let class = name.get(1..).and_then(|c| schema.class_index(c));
                    let mut chain = Vec::new();
                    if let Some(index) = class {
                        schema.push_class_chain(index, &mut chain);
                    }
                    for c in chain {
                        let Some(attrs) = schema.class_attrs(c) else {
                            continue;
                        };
                        for id in attrs.must.iter().chain(&attrs.may) {
                            for sub in schema.with_subtypes(*id) {
                                if let Some(at) = schema.attr_by_id(*sub) {
                                    let lower = at.name().to_ascii_lowercase();
                                    if !sel.named.contains(&lower) {
                                        sel.named.push(lower);
                                    }
                                }
                            }
                        }
                    }
                }
                name => match schema.describe(name) {
                    Ok(d) => {
                        for sub in schema.with_subtypes(d.id) {
                            if let Some(at) = schema.attr_by_id(*sub) {
                                let lower = at.name().to_ascii_lowercase();
                                if d.binary {
                                    sel.binary_named.push(lower.clone());
                                }
                                sel.named.push(lower);
                            }
                        }
                    }
                    // Unknown names are skipped (never an error), but kept for computed ones.
                    Err(Unrecognized::Type(_)) => sel.named.push(name.to_ascii_lowercase()),
                    // An unrecognized option (`cn;lang-fr`): no value has it, nothing returned.
                    Err(_) => {}
                },
            }
        }
        // "1.1" with other names: the names win (RFC 4511 §4.5.1.8).
        if attrs.len() == 1 && attrs.first().is_some_and(|a| a.trim() == "1.1") {
            sel.all_user = false;
        }
        sel
    }

    /// Every user and operational attribute (the root DSE read with no attribute list).
    pub fn everything(types_only: bool) -> Selection {
        Selection {
            all_user: true,
            all_operational: true,
            named: Vec::new(),
            binary_named: Vec::new(),
            types_only,
            password_state: false,
            sight: Sight::Public,
            sign_ins: false,
            decided: std::cell::RefCell::new(rustc_hash::FxHashMap::default()),
            asked: std::cell::Cell::new(0),
        }
    }

    /// Whether the client asked for the password state attributes.
    pub fn wants_password_state(&self) -> bool {
        self.wants("pwdFailureTime", true) || self.wants("pwdAccountLockedTime", true)
    }

    pub(super) fn wants(&self, name: &str, operational: bool) -> bool {
        if self.named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return true;
        }
        if operational {
            self.all_operational
        } else {
            self.all_user
        }
    }

    /// Whether, and under which name, a stored attribute goes to the client (never a secret
    /// one), decided once per name and search.
    fn returns(&self, schema: &Schema, name: &[u8]) -> Returned {
        let asked = self.asked.get();
        let cached = asked >= DECIDE_DIRECTLY;
        if cached {
            if let Ok(decided) = self.decided.try_borrow() {
                if let Some(how) = decided.get(name) {
                    return *how;
                }
            }
        } else {
            self.asked.set(asked + 1);
        }
        let how = match std::str::from_utf8(name) {
            Ok(name) if !self.sight.hides(name) => {
                let at = schema.attr(name);
                let operational = at.is_some_and(|at| at.usage.is_operational());
                match at.map(|at| at.transfer) {
                    _ if !self.wants(name, operational) => Returned::No,
                    Some(Transfer::BinaryRequired) => Returned::Binary,
                    Some(Transfer::BinaryAllowed)
                        if self
                            .binary_named
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case(name)) =>
                    {
                        Returned::Binary
                    }
                    _ => Returned::AsStored,
                }
            }
            _ => Returned::No,
        };
        if cached {
            if let Ok(mut decided) = self.decided.try_borrow_mut() {
                decided.insert(name.into(), how);
            }
        }
        how
    }

    pub(super) fn is_empty_request(&self) -> bool {
        self.all_user && self.named.is_empty() && !self.all_operational
    }
}

fn computed<'s>(name: &'static str, value: Cow<'s, [u8]>, types_only: bool) -> FoundAttribute<'s> {
    FoundAttribute {
        name: Cow::Borrowed(name.as_bytes()),
        values: FoundValues::List(if types_only { Vec::new() } else { vec![value] }),
    }
}

/// The entry as the client sees it, read in place: only the selected values are copied.
pub fn render<'s, 'v: 's>(
    reader: &Reader<'_>,
    schema: &Schema,
    marker: Option<&'s str>,
    view: &'s EntryView<'v>,
    sel: &Selection,
) -> Found<'s> {
    let mut attributes = Vec::with_capacity(view.attrs.len() + 2);
    let marker: &'s [u8] = marker
        .filter(|_| {
            view.get("oneMailSecure")
                .is_some_and(|a| a.values().any(|v| v == b"FALSE"))
        })
        .map_or(b"", str::as_bytes);
    for a in &view.attrs {
        let name = a.name;
        let how = sel.returns(schema, name);
        if how == Returned::No || (sel.sign_ins && name == b"onePagesLastSignIn") {
            continue;
        }
        let values = if sel.types_only {
            FoundValues::List(Vec::new())
        } else {
            let named = name == b"displayName" || name == b"cn";
            FoundValues::Stored {
                values: a.values(),
                suffix: if named { marker } else { b"" },
            }
        };
        attributes.push(FoundAttribute {
            name: match how {
                Returned::Binary => Cow::Owned([name, b";binary"].concat()),
                _ => Cow::Borrowed(name),
            },
            values,
        });
    }
    if sel.wants("entryDN", true) {
        attributes.push(computed(
            "entryDN",
            Cow::Borrowed(view.dn.as_bytes()),
            sel.types_only,
        ));
    }
    if sel.wants("subschemaSubentry", true) {
        attributes.push(computed(
            "subschemaSubentry",
            Cow::Borrowed(SUBSCHEMA_DN.as_bytes()),
            sel.types_only,
        ));
    }
    if sel.wants("structuralObjectClass", true) {
        if let Some(c) = schema.structural_class(view) {
            attributes.push(computed(
                "structuralObjectClass",
                Cow::Owned(c.into_bytes()),
                sel.types_only,
            ));
        }
    }
    if sel.wants("hasSubordinates", true) {
        let has = reader.has_children(view.ndn).unwrap_or(false);
        let v = if has { "TRUE" } else { "FALSE" };
        attributes.push(computed(
            "hasSubordinates",
            Cow::Borrowed(v.as_bytes()),
            sel.types_only,
        ));
    }
    if sel.sign_ins {
        if let Some(at) = reader.last_sign_in(view.ndn, view) {
            attributes.push(computed(
                "onePagesLastSignIn",
                Cow::Owned(crate::clock::generalized_time(at).into_bytes()),
                sel.types_only,
            ));
        }
    }
    if sel.password_state {
        if let Some(state) = reader.password_state(view.ndn) {
            let times = |ts: &[i64]| -> FoundValues<'s> {
                FoundValues::List(if sel.types_only {
                    Vec::new()
                } else {
                    ts.iter()
                        .map(|t| Cow::Owned(crate::clock::generalized_time(*t).into_bytes()))
                        .collect()
                })
            };
            if !state.failures.is_empty() && sel.wants("pwdFailureTime", true) {
                attributes.push(FoundAttribute {
                    name: Cow::Borrowed(b"pwdFailureTime"),
                    values: times(&state.failures),
                });
            }
            if let (Some(at), true) = (state.locked_at, sel.wants("pwdAccountLockedTime", true)) {
                attributes.push(FoundAttribute {
                    name: Cow::Borrowed(b"pwdAccountLockedTime"),
                    values: times(&[at]),
                });
            }
        }
    }
    Found {
        dn: Cow::Borrowed(view.dn),
        attributes,
    }
}

/// An owned entry (the root DSE, the subschema entry) as the client sees it.
pub fn render_plain(entry: &Entry, sel: &Selection, schema: &Schema) -> LdapSearchResultEntry {
    let attributes = entry
        .attrs
        .iter()
        .filter(|a| {
            let operational = schema
                .attr(&a.name)
                .is_some_and(|at| at.usage.is_operational());
            sel.wants(&a.name, operational)
        })
        .map(|a| LdapPartialAttribute {
            atype: a.name.clone(),
            vals: if sel.types_only {
                Vec::new()
            } else {
                a.values.clone()
            },
        })
        .collect();
    LdapSearchResultEntry {
        dn: entry.dn.clone(),
        attributes,
    }
}
