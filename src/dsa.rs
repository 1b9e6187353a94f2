//! The directory system agent: one open data directory with its schema, store and index, and
//! the single writer path through which every change goes.
//!
//! A write takes the writer lock, checks what it depends on (the DN is free, the parent exists,
//! the entry is a leaf), marks the entries dirty in the index, applies one atomic, flushed store
//! batch and queues the ids for indexing. Only then is it acknowledged. Reads never take the
//! lock.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use ldap3_proto::LdapFilter;

use crate::config::Settings;
use crate::directory::dn::{is_within, parent_of, Dn};
use crate::directory::entry::AttrSource;
use crate::directory::entry::Entry;
use crate::directory::filter::{compile, Visibility};
use crate::directory::matching::generalized_time_now;
use crate::directory::password::{DecoyHash, VerifiedCache};
use crate::directory::schema::{Schema, SchemaError};
use crate::index::terms::IndexSpec;
use crate::index::{CandidateOutcome, CatchUp, Index, IndexError, Written};
use crate::store::codec::{AttrView, EntryView};
use crate::store::datadir::{DataDir, DataDirError};
use crate::store::{EntryId, Previous, Store, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum DsaError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("password hashing: {0}")]
    Password(#[from] crate::directory::password::PasswordError),
    #[error("the writer lock is poisoned")]
    Poisoned,
}

/// The secure-mail status of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Secure,
    /// A contact at an outside address.
    External,
    /// A service account, not a person on the service.
    NotAUser,
    Disabled,
    /// The mail domain is not registered with the service.
    UnregisteredDomain,
}

impl Security {
    pub fn describe(self) -> &'static str {
        match self {
            Security::Secure => "secure",
            Security::External => "listed as an external contact, NOT secure",
            Security::NotAUser => "a service account, NOT secure",
            Security::Disabled => "listed but the account is disabled, NOT secure",
            Security::UnregisteredDomain => {
                "listed but the mail domain is not registered as secure, NOT secure"
            }
        }
    }
}

/// Why a write was refused (expected outcomes, mapped to LDAP result codes by the caller).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteRefusal {
    #[error("an entry named {0} already exists")]
    AlreadyExists(String),
    #[error("no entry named {0}")]
    NoSuchObject(String),
    #[error("the parent entry {0} does not exist")]
    NoParent(String),
    #[error("{0} is outside the naming context {1}")]
    OutsideSuffix(String, String),
    #[error("{0} has subordinate entries")]
    NotLeaf(String),
}

/// One change of a write batch.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates the entry, or replaces the entry of the same DN.
    Upsert(Entry),
    /// Creates the entry; refused if it exists.
    Add(Entry),
    /// Replaces an existing entry (possibly under a new DN).
    Replace {
        id: EntryId,
        old: Entry,
        new: Entry,
    },
    Delete {
        id: EntryId,
        old: Entry,
    },
}

/// Sort keys of one entry (one per sort key; `None` when the entry lacks the attribute).
pub type SortValue = Vec<Option<Vec<u8>>>;
/// Matches of a sorted search, in order.
pub type SortedView = Vec<(SortValue, EntryId)>;

/// Recently computed sorted result lists, valid for the store generation they were built at.
/// Outlook's browsing asks for window after window of the same sorted list; this makes every
/// window after the first a slice of a cached list until the directory changes.
#[derive(Default)]
pub struct ViewCache {
    views: Mutex<Vec<(String, u64, Arc<SortedView>)>>,
}

/// Sorted lists kept at once.
const VIEW_CACHE_SIZE: usize = 16;

impl ViewCache {
    pub fn get(&self, key: &str, generation: u64) -> Option<Arc<SortedView>> {
        let mut views = self.views.lock().ok()?;
        let pos = views
            .iter()
            .position(|(k, g, _)| k == key && *g == generation)?;
        // Most recently used last.
        let item = views.remove(pos);
        let view = Arc::clone(&item.2);
        views.push(item);
        Some(view)
    }

    pub fn put(&self, key: String, generation: u64, view: Arc<SortedView>) {
        if let Ok(mut views) = self.views.lock() {
            views.retain(|(k, g, _)| k != &key && *g == generation);
            if views.len() >= VIEW_CACHE_SIZE {
                views.remove(0);
            }
            views.push((key, generation, view));
        }
    }
}

pub struct Dsa {
    pub schema: Arc<Schema>,
    pub store: Arc<Store>,
    pub index: Index,
    pub settings: Settings,
    /// Normalised suffix DN.
    pub suffix_ndn: String,
    admins_ndn: Vec<String>,
    pub views: ViewCache,
    registry: Mutex<Option<(u64, Arc<std::collections::BTreeSet<String>>)>>,
    writer: Mutex<()>,
    decoy: DecoyHash,
    /// Successful binds against slow hashes, remembered in memory for a while.
    pub verified: VerifiedCache,
    /// Searches executing at once, one per core; waiting searches queue in arrival order, and
    /// a long search hands its slot on between batches (see `protocol::connection`). Keeps
    /// type-ahead latency even under load instead of time-slicing many threads on few cores.
    pub search_slots: Arc<tokio::sync::Semaphore>,
    _data_dir: DataDir,
}

impl Dsa {
    /// Opens the data directory for `holder` (a description of this process, shown to anyone
    /// else who tries to open it) and brings the index up to date.
    pub fn open(
        settings: Settings,
        holder: &str,
        progress: &dyn Fn(usize),
    ) -> Result<(Dsa, CatchUp), DsaError> {
        let schema = Arc::new(match &settings.schema_dir {
            Some(dir) => Schema::from_dir(dir)?,
            None => Schema::builtin()?,
        });
        let data_dir = DataDir::open(&settings.data_dir, holder)?;
        let store = Arc::new(Store::open(
            &data_dir.store_path(),
            settings.store_cache_bytes,
        )?);
        let spec = IndexSpec::new(&settings.substring_attributes, &schema);
        let (index, catch_up) = Index::open(
            &data_dir.index_path(),
            Arc::clone(&store),
            Arc::clone(&schema),
            spec,
            progress,
        )?;
        let suffix_ndn = Dn::parse(&settings.suffix)
            .map(|d| d.normalize(&schema))
            .unwrap_or_default();
        let admins_ndn = settings
            .admins
            .iter()
            .filter_map(|a| Dn::parse(a).ok())
            .map(|d| d.normalize(&schema))
            .collect();
        let decoy = DecoyHash::new(settings.argon2)?;
        let verified = VerifiedCache::new(settings.bind_cache_ttl, settings.bind_cache_entries);
        Ok((
            Dsa {
                schema,
                store,
                index,
                settings,
                suffix_ndn,
                admins_ndn,
                views: ViewCache::default(),
                registry: Mutex::new(None),
                writer: Mutex::new(()),
                decoy,
                verified,
                search_slots: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, usize::from) + 1,
                )),
                _data_dir: data_dir,
            },
            catch_up,
        ))
    }

    pub fn decoy(&self) -> &DecoyHash {
        &self.decoy
    }

    pub fn normalize_dn(&self, dn: &Dn) -> String {
        dn.normalize(&self.schema)
    }

    /// Entries with this value of an attribute (a bind by user name, a check by mail address),
    /// found through the index: exact, including entries written but not yet committed there.
    pub fn find_by_key(&self, attr: &str, value: &[u8]) -> Result<Vec<(EntryId, Entry)>, DsaError> {
        let wanted = LdapFilter::Equality(
            attr.to_string(),
            String::from_utf8_lossy(value).into_owned(),
        );
        let visibility = Visibility {
            can_read_passwords: false,
        };
        // One equality item stays far within any limits; a filter refused by them matches nothing.
        let Ok(filter) = compile(
            &wanted,
            &self.schema,
            self.settings.limits.filter,
            visibility,
        ) else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::new();
        let outcome = self.index.candidates(&self.schema, &filter, &mut |id| {
            ids.push(id);
            ControlFlow::Continue(())
        })?;
        let mut out = Vec::new();
        if matches!(outcome, CandidateOutcome::Scan) {
            for item in self.store.scan() {
                let (id, entry) = item?;
                if filter.matches(&entry, &self.schema) {
                    out.push((id, entry));
                }
            }
            return Ok(out);
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            if let Some(entry) = self.store.get(id)? {
                if filter.matches(&entry, &self.schema) {
                    out.push((id, entry));
                }
            }
        }
        Ok(out)
    }

    pub fn is_admin(&self, ndn: &str, entry: &Entry) -> bool {
        self.admins_ndn.iter().any(|a| a == ndn) || entry.has_value_ci("onePagesRole", "admin")
    }

    fn lock(&self) -> Result<MutexGuard<'_, ()>, DsaError> {
        self.writer.lock().map_err(|_| DsaError::Poisoned)
    }

    /// Applies changes as one atomic, durable batch. Changes that are refused are reported with
    /// their position and left out; the rest are applied together (or, on an I/O error, none).
    pub fn apply(&self, changes: Vec<Change>) -> Result<Vec<(usize, WriteRefusal)>, DsaError> {
        let _guard = self.lock()?;
        let mut writes = Vec::with_capacity(changes.len());
        // Whether each write's id was allocated here (the index has never seen it).
        let mut fresh = Vec::with_capacity(changes.len());
        let mut refused = Vec::new();
        // DNs created or removed earlier in this batch, so later changes can depend on them.
        let mut created: std::collections::HashMap<String, EntryId> = Default::default();
        let mut removed: std::collections::HashSet<String> = Default::default();
        // Parents found in the store during this batch: a bulk load puts thousands of entries
        // under one parent, which is then read once.
        let parents = Parents::default();
        for (pos, change) in changes.into_iter().enumerate() {
            match self.plan_change(change, &created, &removed, &parents) {
                Ok((w, new_id)) => {
                    fresh.push(new_id);
                    match &w {
                        Write::Put {
                            id,
                            entry,
                            previous,
                            ..
                        } => {
                            if let Some(p) = previous {
                                if p.ndn != entry.ndn {
                                    created.remove(&p.ndn);
                                    removed.insert(p.ndn.clone());
                                }
                            }
                            removed.remove(&entry.ndn);
                            created.insert(entry.ndn.clone(), *id);
                        }
                        Write::Delete { previous, .. } => {
                            created.remove(&previous.ndn);
                            removed.insert(previous.ndn.clone());
                        }
                    }
                    writes.push(w);
                }
                Err(Refused(r)) => refused.push((pos, r)),
                Err(Failed(e)) => return Err(e),
            }
        }
        if writes.is_empty() {
            return Ok(refused);
        }
        let ids: Vec<EntryId> = writes
            .iter()
            .map(|w| match w {
                Write::Put { id, .. } | Write::Delete { id, .. } => *id,
            })
            .collect();
        self.index.mark_dirty(&ids);
        let generation = self.store.apply(&writes)?;
        // The written entries go on to the indexer (which would otherwise read them back).
        let changes = writes
            .into_iter()
            .zip(fresh)
            .map(|(w, fresh)| match w {
                Write::Put { id, entry, .. } => Written {
                    generation,
                    id,
                    entry: Some(entry),
                    fresh,
                },
                Write::Delete { id, .. } => Written {
                    generation,
                    id,
                    entry: None,
                    fresh: false,
                },
            })
            .collect();
        self.index.changed(changes)?;
        Ok(refused)
    }

    fn exists(
        &self,
        ndn: &str,
        created: &std::collections::HashMap<String, EntryId>,
        removed: &std::collections::HashSet<String>,
    ) -> Result<Option<EntryId>, DsaError> {
        if let Some(id) = created.get(ndn) {
            return Ok(Some(*id));
        }
        if removed.contains(ndn) {
            return Ok(None);
        }
        Ok(self.store.id_of(ndn)?)
    }

    fn check_place(
        &self,
        entry: &Entry,
        created: &std::collections::HashMap<String, EntryId>,
        removed: &std::collections::HashSet<String>,
        parents: &Parents,
    ) -> Result<(), Outcome> {
        if !is_within(&entry.ndn, &self.suffix_ndn) {
            return Err(Refused(WriteRefusal::OutsideSuffix(
                entry.dn.clone(),
                self.settings.suffix.clone(),
            )));
        }
        if entry.ndn != self.suffix_ndn {
            let parent = parent_of(&entry.ndn);
            let known = !removed.contains(parent)
                && parents.0.try_borrow().is_ok_and(|p| p.contains(parent));
            if !known {
                if self
                    .exists(parent, created, removed)
                    .map_err(Failed)?
                    .is_none()
                {
                    let shown = Dn::parse(&entry.dn)
                        .ok()
                        .and_then(|d| d.parent())
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| parent.to_string());
                    return Err(Refused(WriteRefusal::NoParent(shown)));
                }
                if let Ok(mut p) = parents.0.try_borrow_mut() {
                    p.insert(parent.to_string());
                }
            }
        }
        Ok(())
    }

    fn plan_change(
        &self,
        change: Change,
        created: &std::collections::HashMap<String, EntryId>,
        removed: &std::collections::HashSet<String>,
        parents: &Parents,
    ) -> Result<(Write, bool), Outcome> {
        match change {
            Change::Add(entry) => {
                if self
                    .exists(&entry.ndn, created, removed)
                    .map_err(Failed)?
                    .is_some()
                {
                    return Err(Refused(WriteRefusal::AlreadyExists(entry.dn)));
                }
                self.check_place(&entry, created, removed, parents)?;
                let id = self.store.new_id().map_err(|e| Failed(e.into()))?;
                Ok((
                    Write::Put {
                        id,
                        entry,
                        previous: None,
                    },
                    true,
                ))
            }
            Change::Upsert(mut entry) => {
                self.check_place(&entry, created, removed, parents)?;
                let existing = self.exists(&entry.ndn, created, removed).map_err(Failed)?;
                let (id, previous, fresh) = match existing {
                    Some(id) => {
                        let old = self.store.get(id).map_err(|e| Failed(e.into()))?;
                        if let Some(old) = &old {
                            carry_creation(&self.schema, old, &mut entry);
                        }
                        let previous = old.map(|o| Previous { ndn: o.ndn });
                        (id, previous, false)
                    }
                    None => (
                        self.store.new_id().map_err(|e| Failed(e.into()))?,
                        None,
                        true,
                    ),
                };
                Ok((
                    Write::Put {
                        id,
                        entry,
                        previous,
                    },
                    fresh,
                ))
            }
            Change::Replace { id, old, new } => {
                if new.ndn != old.ndn {
                    if self
                        .exists(&new.ndn, created, removed)
                        .map_err(Failed)?
                        .is_some()
                    {
                        return Err(Refused(WriteRefusal::AlreadyExists(new.dn)));
                    }
                    if self
                        .store
                        .has_children(&old.ndn)
                        .map_err(|e| Failed(e.into()))?
                    {
                        return Err(Refused(WriteRefusal::NotLeaf(old.dn)));
                    }
                    self.check_place(&new, created, removed, parents)?;
                }
                Ok((
                    Write::Put {
                        id,
                        previous: Some(Previous { ndn: old.ndn }),
                        entry: new,
                    },
                    false,
                ))
            }
            Change::Delete { id, old } => {
                if self
                    .store
                    .has_children(&old.ndn)
                    .map_err(|e| Failed(e.into()))?
                {
                    return Err(Refused(WriteRefusal::NotLeaf(old.dn)));
                }
                Ok((
                    Write::Delete {
                        id,
                        previous: Previous { ndn: old.ndn },
                    },
                    false,
                ))
            }
        }
    }

    /// The normalised DN of the folder of registered mail domains.
    pub fn domains_ndn(&self) -> String {
        format!("ou=domains,{}", self.suffix_ndn)
    }

    /// The secure mail domains: the configured ones and those registered as entries under
    /// `ou=domains,<suffix>`. Recomputed when the store changes, so a registration takes
    /// effect on the next read.
    pub fn secure_domains(&self) -> Arc<std::collections::BTreeSet<String>> {
        let generation = self.store.generation();
        if let Ok(cache) = self.registry.lock() {
            if let Some((g, set)) = cache.as_ref() {
                if *g == generation {
                    return Arc::clone(set);
                }
            }
        }
        let mut set: std::collections::BTreeSet<String> =
            self.settings.secure_domains.iter().cloned().collect();
        if let Ok(children) = self.store.children(&self.domains_ndn()) {
            for id in children {
                if let Ok(Some(e)) = self.store.get(id) {
                    if e.has_value_ci("objectClass", "onePagesMailDomain") {
                        for d in e.values("associatedDomain") {
                            set.insert(String::from_utf8_lossy(d).trim().to_ascii_lowercase());
                        }
                    }
                }
            }
        }
        let set = Arc::new(set);
        if let Ok(mut cache) = self.registry.lock() {
            *cache = Some((generation, Arc::clone(&set)));
        }
        set
    }

    /// Whether mail to this entry is protected end to end, and if not, why. `None` for entries
    /// that are not people or contacts (no mail address).
    pub fn security<E: AttrSource + ?Sized>(&self, entry: &E) -> Option<Security> {
        self.security_in(entry, &self.secure_domains())
    }

    /// [`Dsa::security`] against a registry read once (by a search, for all its entries).
    pub fn security_in<E: AttrSource + ?Sized>(
        &self,
        entry: &E,
        domains: &std::collections::BTreeSet<String>,
    ) -> Option<Security> {
        let facts = SecurityFacts {
            mail: entry.first_text("mail"),
            kind: entry.first_text("onePagesAccountType"),
            service_class: entry.has_text_ci("objectClass", "onePagesService"),
            disabled: entry.has_text_ci("onePagesStatus", "disabled"),
        };
        facts.security(domains)
    }

    /// [`Dsa::decorate`] for an entry read in place.
    pub fn decorate_view(
        &self,
        view: &mut EntryView<'_>,
        domains: &std::collections::BTreeSet<String>,
    ) {
        /// `TRUE` / `FALSE` with their record length prefixes.
        const TRUE_RAW: &[u8] = &[4, 0, 0, 0, b'T', b'R', b'U', b'E'];
        const FALSE_RAW: &[u8] = &[5, 0, 0, 0, b'F', b'A', b'L', b'S', b'E'];
        if let Some(s) = SecurityFacts::of_view(view).security(domains) {
            let raw = if s == Security::Secure {
                TRUE_RAW
            } else {
                FALSE_RAW
            };
            view.attrs.push(AttrView::computed("oneMailSecure", raw));
        }
    }

    /// Adds what the server computes to an entry about to be read or filtered
    /// (`oneMailSecure`).
    pub fn decorate(&self, entry: &mut Entry) {
        if let Some(s) = self.security(entry) {
            let v: &[u8] = if s == Security::Secure {
                b"TRUE"
            } else {
                b"FALSE"
            };
            entry.attrs.push(crate::directory::entry::Attribute {
                name: "oneMailSecure".into(),
                values: vec![v.to_vec()],
            });
        }
    }

    /// Commits everything queued to the index and flushes the store (clean shutdown).
    pub fn shutdown(&self) -> Result<(), DsaError> {
        self.index.flush()?;
        self.store.flush()?;
        self.index.shutdown();
        Ok(())
    }
}

/// What the security of an entry depends on, read from it once.
struct SecurityFacts<'a> {
    mail: Option<&'a str>,
    kind: Option<&'a str>,
    service_class: bool,
    disabled: bool,
}

impl<'a> SecurityFacts<'a> {
    /// One pass over a view's attributes (every entry a search returns comes here).
    fn of_view(view: &EntryView<'a>) -> SecurityFacts<'a> {
        let mut facts = SecurityFacts {
            mail: None,
            kind: None,
            service_class: false,
            disabled: false,
        };
        let first = |a: &AttrView<'a>| a.values().next().and_then(|v| std::str::from_utf8(v).ok());
        let any_is = |a: &AttrView<'a>, want: &str| {
            a.values().any(|v| v.eq_ignore_ascii_case(want.as_bytes()))
        };
        for a in &view.attrs {
            if facts.mail.is_none() && a.is_named("mail") {
                facts.mail = first(a);
            } else if facts.kind.is_none() && a.is_named("onePagesAccountType") {
                facts.kind = first(a);
            } else if a.is_named("objectClass") {
                facts.service_class |= any_is(a, "onePagesService");
            } else if a.is_named("onePagesStatus") {
                facts.disabled |= any_is(a, "disabled");
            }
        }
        facts
    }

    fn security(&self, domains: &std::collections::BTreeSet<String>) -> Option<Security> {
        let mail = self.mail?;
        let kind = self.kind.unwrap_or("user");
        if kind.eq_ignore_ascii_case("external") {
            return Some(Security::External);
        }
        if kind.eq_ignore_ascii_case("service") || self.service_class {
            return Some(Security::NotAUser);
        }
        if self.disabled {
            return Some(Security::Disabled);
        }
        let Some(at) = mail.as_bytes().iter().rposition(|b| *b == b'@') else {
            return Some(Security::UnregisteredDomain);
        };
        let domain = mail.get(at + 1..).unwrap_or_default().trim();
        // Lower-case on the stack when short.
        let mut buf = [0u8; 128];
        let registered = match buf.get_mut(..domain.len()) {
            Some(lower) => {
                lower.copy_from_slice(domain.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(lower).is_ok_and(|d| domains.contains(d))
            }
            None => domains.contains(&domain.to_ascii_lowercase()),
        };
        Some(if registered {
            Security::Secure
        } else {
            Security::UnregisteredDomain
        })
    }
}

/// Normalised DNs of parents seen to exist during one batch (removals in the batch are
/// checked first, so a parent deleted meanwhile is not taken for present).
#[derive(Default)]
struct Parents(std::cell::RefCell<std::collections::HashSet<String>>);

enum Outcome {
    Refused(WriteRefusal),
    Failed(DsaError),
}
use Outcome::{Failed, Refused};

/// Keeps the creation stamps of the entry being replaced by an upsert.
fn carry_creation(schema: &Schema, old: &Entry, new: &mut Entry) {
    for attr in ["createTimestamp", "creatorsName", "entryUUID"] {
        if new.get(attr).is_none() {
            let values = old.values(attr).to_vec();
            if !values.is_empty() {
                new.set_values(schema, attr, values);
            }
        }
    }
}

/// Sets the operational attributes of a new entry (keeping those an import carried over).
/// `by` is the writer's DN; empty for offline imports, which record no creator.
pub fn stamp_created(schema: &Schema, entry: &mut Entry, by: &str) {
    let now = generalized_time_now();
    if entry.get("createTimestamp").is_none() {
        entry.set_values(schema, "createTimestamp", vec![now.clone().into_bytes()]);
    }
    if entry.get("creatorsName").is_none() && !by.is_empty() {
        entry.set_values(schema, "creatorsName", vec![by.as_bytes().to_vec()]);
    }
    if entry.get("entryUUID").is_none() {
        entry.set_values(schema, "entryUUID", vec![new_uuid().into_bytes()]);
    }
    if entry.get("modifyTimestamp").is_none() {
        entry.set_values(schema, "modifyTimestamp", vec![now.into_bytes()]);
    }
    if entry.get("modifiersName").is_none() && !by.is_empty() {
        entry.set_values(schema, "modifiersName", vec![by.as_bytes().to_vec()]);
    }
}

pub fn stamp_modified(schema: &Schema, entry: &mut Entry, by: &str) {
    entry.set_values(
        schema,
        "modifyTimestamp",
        vec![generalized_time_now().into_bytes()],
    );
    entry.set_values(schema, "modifiersName", vec![by.as_bytes().to_vec()]);
}

/// A random (version 4) UUID in its text form.
pub fn new_uuid() -> String {
    use rand::RngCore;
    // The thread's generator (a CSPRNG seeded from the OS): one system call per UUID was
    // a tenth of an import's record checks.
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(hex(x >> 4));
        out.push(hex(x & 0x0f));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::new_uuid;

    /// Version 4, RFC 4122 variant, lower-case hex in 8-4-4-4-12 groups, and not repeated.
    #[test]
    fn uuids_are_random_version_4() {
        let a = new_uuid();
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert!(groups[2].starts_with('4'));
        assert!(matches!(
            groups[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
        assert_ne!(a, new_uuid());
    }
}
