//! THE writer: every change to the directory goes through here.
//!
//! LDAP add, modify, delete and modify DN, Password Modify, imports and `onepages domains` all
//! describe what they want as a [`Change`] and hand it to the one [`Writer`], which exists only
//! for a [`WriteGrant`]. Three steps:
//!
//! 1. [`Writer::prepare`]: checks a change on its own — the grant's scope, the password
//!    policy, the schema — and stamps new entries. Pure; any thread (imports prepare records
//!    on one thread while another writes).
//! 2. [`Writer::plan`]: resolves a batch against the directory as it is — names free or taken,
//!    parents present, leaves, the modified entries checked whole — into the exact change set,
//!    with the ids new entries will get. No side effect: a dry run is a plan.
//! 3. [`Writer::apply`]: under the writer lock, re-plans if anything was written since the
//!    plan, marks the entries dirty in the index, writes one atomic, flushed store batch and
//!    queues the entries for indexing. Only then may the caller acknowledge.
//!
//! Password policy, for every writer: a `userPassword` value in a scheme the server verifies
//! (`{SSHA}`, `{SSHA256}`, `{SSHA512}`, `{SMD5}`, `{SHA}`, `{SHA256}`, `{SHA512}`, `{MD5}`,
//! `{CRYPT}`, `{ARGON2}`) is kept as it is (migrations); a value tagged with any other
//! `{SCHEME}` is refused (nobody could ever bind with it); anything else is a clear-text
//! password and is stored as argon2id. Password Modify's new password is always clear text.

use std::collections::{HashMap, HashSet};

use super::access::WriteScope;
use super::{edit, Dsa, DsaError, WriteGrant};
use crate::directory::dn::{is_within, parent_of, Dn, Rdn};
use crate::directory::entry::{Entry, EntryId};
use crate::directory::matching::generalized_time_now;
use crate::directory::password::{hash_password, is_supported_scheme, scheme_of};
use crate::directory::schema::Schema;
use crate::directory::validate::{check, prepare, Source, ValidationError};
use crate::index::Written;
use crate::store::{Previous, Write};

/// How a modification changes an attribute (RFC 4511 §4.6, RFC 4525).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    Add,
    Delete,
    Replace,
    Increment,
}

/// One modification of a modify request.
#[derive(Clone, Debug)]
pub struct Edit {
    pub kind: EditKind,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

/// What a writer wants done.
#[derive(Clone, Debug)]
pub enum Change {
    /// A new entry from an LDAP client; refused if the name is taken.
    Add {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    /// A record of an import: creates the entry or replaces the one of the same name, keeping
    /// its creation stamps. Operational attributes another server exported are kept where they
    /// mean the same here.
    Import {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Modify {
        dn: Dn,
        edits: Vec<Edit>,
    },
    /// Password Modify (RFC 3062): the new password, in clear text.
    SetPassword {
        dn: Dn,
        password: Vec<u8>,
    },
    Rename {
        dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Dn>,
    },
    Delete {
        dn: Dn,
    },
}

/// Why a change was refused (expected outcomes; the caller maps them to result codes).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WriteRefusal {
    #[error("an entry named {0} already exists")]
    AlreadyExists(String),
    #[error("no entry named {dn}")]
    NoSuchObject {
        dn: String,
        /// The deepest existing ancestor (RFC 4511 §4.1.9).
        matched: String,
    },
    #[error("the parent entry {0} does not exist")]
    NoParent(String),
    #[error("{0} is outside the naming context {1}")]
    OutsideSuffix(String, String),
    #[error("{0} has subordinate entries")]
    NotLeaf(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    ValueExists(String),
    #[error("{0}")]
    NoSuchAttribute(String),
    #[error("{0}")]
    NotAllowedOnRdn(String),
    /// The grant does not reach this change.
    #[error("{0}")]
    Denied(String),
    /// The entry was created earlier in the same batch and cannot be changed in it.
    #[error("{0} is created earlier in this batch; change it in a later one")]
    InBatch(String),
}

/// A change checked on its own, ready to plan.
#[derive(Debug)]
pub struct Prepared(Prepped);

#[derive(Debug)]
enum Prepped {
    Create {
        entry: Entry,
        upsert: bool,
    },
    Modify {
        dn: Dn,
        ndn: String,
        edits: Vec<Edit>,
    },
    SetPassword {
        dn: Dn,
        ndn: String,
        hashed: Vec<u8>,
    },
    Rename {
        dn: Dn,
        ndn: String,
        new_dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
    },
    Delete {
        dn: Dn,
        ndn: String,
    },
}

/// What a change will do, as planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedKind {
    Add,
    Replace,
    Delete,
}

/// One entry of a plan, for a dry run's report.
#[derive(Debug, PartialEq, Eq)]
pub struct PlannedChange<'p> {
    /// Position of the change in the batch.
    pub pos: usize,
    pub kind: PlannedKind,
    pub dn: &'p str,
    pub id: EntryId,
}

#[derive(Debug)]
enum Body {
    /// The prepared entry, with creation stamps carried over from the one it replaces.
    Input {
        carry: Vec<(&'static str, Vec<Vec<u8>>)>,
    },
    /// Computed from the stored entry (modify, rename, password).
    Computed(Entry),
}

#[derive(Debug)]
enum Effect {
    Put {
        id: EntryId,
        /// The normalised DN the entry had (`None`: a new entry).
        previous: Option<String>,
        body: Body,
    },
    Remove {
        id: EntryId,
        ndn: String,
        dn: String,
    },
}

#[derive(Debug)]
struct Step {
    pos: usize,
    effect: Effect,
}

/// The exact change set of a batch against the directory at one generation.
#[derive(Debug)]
pub struct Plan {
    generation: u64,
    inputs: Vec<Option<Prepared>>,
    /// Refused while preparing (kept across re-plans).
    early: Vec<(usize, WriteRefusal)>,
    steps: Vec<Step>,
    refused: Vec<(usize, WriteRefusal)>,
}

impl Plan {
    /// The changes that would be made, in order.
    pub fn changes(&self) -> impl Iterator<Item = PlannedChange<'_>> {
        self.steps.iter().map(|s| {
            let (kind, id, dn) = match &s.effect {
                Effect::Put { id, previous, body } => {
                    let dn = match body {
                        Body::Computed(e) => e.dn.as_str(),
                        Body::Input { .. } => match self.inputs.get(s.pos) {
                            Some(Some(Prepared(Prepped::Create { entry, .. }))) => {
                                entry.dn.as_str()
                            }
                            _ => "",
                        },
                    };
                    let kind = if previous.is_some() {
                        PlannedKind::Replace
                    } else {
                        PlannedKind::Add
                    };
                    (kind, *id, dn)
                }
                Effect::Remove { id, dn, .. } => (PlannedKind::Delete, *id, dn.as_str()),
            };
            PlannedChange {
                pos: s.pos,
                kind,
                dn,
                id,
            }
        })
    }

    /// The changes that would be refused, by position, in order.
    pub fn refusals(&self) -> Vec<(usize, WriteRefusal)> {
        let mut all: Vec<(usize, WriteRefusal)> =
            self.early.iter().chain(&self.refused).cloned().collect();
        all.sort_by_key(|(pos, _)| *pos);
        all
    }
}

/// What an applied batch did.
#[derive(Debug, Default)]
pub struct Applied {
    pub added: usize,
    pub replaced: usize,
    pub deleted: usize,
    /// Refused changes by position, in order.
    pub refused: Vec<(usize, WriteRefusal)>,
    /// The store generation the batch was written under (0 when nothing was written).
    pub generation: u64,
}

impl Applied {
    /// The first refusal, as the result of a one-change batch.
    pub fn into_result(self) -> Result<(), WriteRefusal> {
        match self.refused.into_iter().next() {
            Some((_, r)) => Err(r),
            None => Ok(()),
        }
    }
}

/// The one writer, for what its grant allows.
pub struct Writer<'d> {
    dsa: &'d Dsa,
    grant: WriteGrant,
}

/// Names created or removed earlier in a batch, so later changes can depend on them.
#[derive(Default)]
struct Overlay {
    created: HashMap<String, EntryId>,
    removed: HashSet<String>,
    /// Created in this batch (not in the store yet).
    fresh: HashSet<String>,
    /// Parents found in the store: a bulk load puts thousands of entries under one parent,
    /// which is then read once.
    parents: HashSet<String>,
    next_id: EntryId,
}

impl<'d> Writer<'d> {
    pub(super) fn new(dsa: &'d Dsa, grant: WriteGrant) -> Writer<'d> {
        Writer { dsa, grant }
    }

    /// The directory this writer changes.
    pub fn dsa(&self) -> &'d Dsa {
        self.dsa
    }

    /// The writer's DN, as recorded in modification stamps.
    pub fn by(&self) -> &str {
        self.grant.by()
    }

    fn schema(&self) -> &Schema {
        &self.dsa.schema
    }

    fn parse_ndn(&self, dn: &Dn) -> String {
        dn.normalize(self.schema())
    }

    /// Checks a change on its own: the grant's scope, the password policy, the schema.
    pub fn prepare(&self, change: Change) -> Result<Prepared, WriteRefusal> {
        let admin = !matches!(self.grant.scope(), WriteScope::SelfService { .. });
        let denied = || WriteRefusal::Denied(super::access::ADMINS_ONLY.into());
        let p = match change {
            Change::Add { dn, attrs } | Change::Import { dn, attrs } if !admin => {
                let _ = (dn, attrs);
                return Err(denied());
            }
            Change::Add { dn, attrs } => self.create(&dn, attrs, Source::Client, false)?,
            Change::Import { dn, attrs } => self.create(&dn, attrs, Source::Import, true)?,
            Change::Modify { dn, mut edits } => {
                if let WriteScope::SelfService { attrs, .. } = self.grant.scope() {
                    if let Some(e) = edits.iter().find(|e| {
                        !attrs
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(self.schema().canonical_name(&e.attr)))
                    }) {
                        return Err(WriteRefusal::Denied(self_service_refusal(&e.attr, attrs)));
                    }
                }
                for e in &mut edits {
                    if is_password(self.schema(), &e.attr)
                        && matches!(e.kind, EditKind::Add | EditKind::Replace)
                    {
                        e.values = self.stored_passwords(std::mem::take(&mut e.values))?;
                    }
                }
                let ndn = self.parse_ndn(&dn);
                Prepped::Modify { dn, ndn, edits }
            }
            Change::SetPassword { dn, password } => {
                let hashed = hash_password(&password, self.dsa.settings.argon2)
                    .map_err(|e| {
                        WriteRefusal::Invalid(ValidationError::ConstraintViolation(e.to_string()))
                    })?
                    .into_bytes();
                let ndn = self.parse_ndn(&dn);
                Prepped::SetPassword { dn, ndn, hashed }
            }
            Change::Rename { .. } | Change::Delete { .. } if !admin => return Err(denied()),
            Change::Rename {
                dn,
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => {
                let parent = match new_superior {
                    Some(sup) => sup,
                    None => dn.parent().unwrap_or_else(Dn::root),
                };
                let new_dn = parent.child(new_rdn.clone());
                let ndn = self.parse_ndn(&dn);
                Prepped::Rename {
                    dn,
                    ndn,
                    new_dn,
                    new_rdn,
                    delete_old_rdn,
                }
            }
            Change::Delete { dn } => {
                let ndn = self.parse_ndn(&dn);
                Prepped::Delete { dn, ndn }
            }
        };
        Ok(Prepared(p))
    }

    fn create(
        &self,
        dn: &Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
        source: Source,
        upsert: bool,
    ) -> Result<Prepped, WriteRefusal> {
        if dn.is_root() {
            return Err(WriteRefusal::Invalid(ValidationError::NamingViolation(
                "the root DSE cannot be written".into(),
            )));
        }
        let mut checked = Vec::with_capacity(attrs.len());
        for (name, values) in attrs {
            if is_password(self.schema(), &name) {
                checked.push((name, self.stored_passwords(values)?));
            } else {
                checked.push((name, values));
            }
        }
        let mut entry = prepare(self.schema(), dn, checked, source)?;
        stamp_created(self.schema(), &mut entry, self.by());
        Ok(Prepped::Create { entry, upsert })
    }

    /// The password policy (see the module docs).
    fn stored_passwords(&self, values: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, WriteRefusal> {
        values
            .into_iter()
            .map(|v| match scheme_of(&v) {
                Some(s) if is_supported_scheme(&s) => Ok(v),
                Some(s) => Err(WriteRefusal::Invalid(
                    ValidationError::InvalidAttributeSyntax(format!(
                        "userPassword uses the scheme {{{s}}}, which ONE Pages cannot verify; \
                         give the password in clear text (it is stored as argon2id) or hashed as \
                         {{SSHA}}, {{SSHA256}}, {{SSHA512}}, {{SMD5}}, {{CRYPT}} or {{ARGON2}}"
                    )),
                )),
                None => hash_password(&v, self.dsa.settings.argon2)
                    .map(String::into_bytes)
                    .map_err(|e| {
                        WriteRefusal::Invalid(ValidationError::ConstraintViolation(e.to_string()))
                    }),
            })
            .collect()
    }

    /// Resolves a batch against the directory as it is now. No side effect.
    pub fn plan(&self, batch: Vec<Result<Prepared, WriteRefusal>>) -> Result<Plan, DsaError> {
        let mut inputs = Vec::with_capacity(batch.len());
        let mut early = Vec::new();
        for (pos, item) in batch.into_iter().enumerate() {
            match item {
                Ok(p) => inputs.push(Some(p)),
                Err(r) => {
                    early.push((pos, r));
                    inputs.push(None);
                }
            }
        }
        let generation = self.dsa.store.generation();
        let (steps, refused) = self.resolve(&inputs)?;
        Ok(Plan {
            generation,
            inputs,
            early,
            steps,
            refused,
        })
    }

    fn resolve(&self, inputs: &[Option<Prepared>]) -> Result<Resolved, DsaError> {
        let mut overlay = Overlay {
            next_id: self.dsa.store.next_id(),
            ..Overlay::default()
        };
        let mut steps = Vec::with_capacity(inputs.len());
        let mut refused = Vec::new();
        for (pos, input) in inputs.iter().enumerate() {
            let Some(Prepared(p)) = input else { continue };
            match self.resolve_one(p, &mut overlay) {
                Ok(effect) => {
                    match &effect {
                        Effect::Put { id, previous, .. } => {
                            let ndn = self.target_ndn(p);
                            if let Some(prev) = previous {
                                if *prev != ndn {
                                    overlay.created.remove(prev);
                                    overlay.removed.insert(prev.clone());
                                }
                            } else {
                                overlay.fresh.insert(ndn.clone());
                            }
                            overlay.removed.remove(&ndn);
                            overlay.created.insert(ndn, *id);
                        }
                        Effect::Remove { ndn, .. } => {
                            overlay.created.remove(ndn);
                            overlay.removed.insert(ndn.clone());
                        }
                    }
                    steps.push(Step { pos, effect });
                }
                Err(Outcome::Refused(r)) => refused.push((pos, r)),
                Err(Outcome::Failed(e)) => return Err(e),
            }
        }
        Ok((steps, refused))
    }

    /// The normalised DN a prepared change ends at.
    fn target_ndn(&self, p: &Prepped) -> String {
        match p {
            Prepped::Create { entry, .. } => entry.ndn.clone(),
            Prepped::Modify { ndn, .. }
            | Prepped::SetPassword { ndn, .. }
            | Prepped::Delete { ndn, .. } => ndn.clone(),
            Prepped::Rename { new_dn, .. } => self.parse_ndn(new_dn),
        }
    }

    fn exists(&self, ndn: &str, o: &Overlay) -> Result<Option<EntryId>, DsaError> {
        if let Some(id) = o.created.get(ndn) {
            return Ok(Some(*id));
        }
        if o.removed.contains(ndn) {
            return Ok(None);
        }
        Ok(self.dsa.store.id_of(ndn)?)
    }

    fn check_place(&self, dn: &str, ndn: &str, o: &mut Overlay) -> Result<(), Outcome> {
        let suffix = &self.dsa.suffix_ndn;
        if !is_within(ndn, suffix) {
            return Err(Outcome::Refused(WriteRefusal::OutsideSuffix(
                dn.to_string(),
                self.dsa.settings.suffix.clone(),
            )));
        }
        if ndn == suffix.as_str() {
            return Ok(());
        }
        let parent = parent_of(ndn);
        if !o.removed.contains(parent) && o.parents.contains(parent) {
            return Ok(());
        }
        if self.exists(parent, o).map_err(Outcome::Failed)?.is_none() {
            let shown = Dn::parse(dn)
                .ok()
                .and_then(|d| d.parent())
                .map(|d| d.to_string())
                .unwrap_or_else(|| parent.to_string());
            return Err(Outcome::Refused(WriteRefusal::NoParent(shown)));
        }
        o.parents.insert(parent.to_string());
        Ok(())
    }

    /// Refuses a name another entry has.
    fn must_be_free(&self, entry: &Entry, o: &Overlay) -> Result<(), Outcome> {
        match self.exists(&entry.ndn, o).map_err(Outcome::Failed)? {
            Some(_) => Err(Outcome::Refused(WriteRefusal::AlreadyExists(
                entry.dn.clone(),
            ))),
            None => Ok(()),
        }
    }

    /// Refuses to move or remove an entry with subordinates.
    fn must_be_leaf(&self, old: &Entry) -> Result<(), Outcome> {
        if self
            .dsa
            .store
            .has_children(&old.ndn)
            .map_err(|e| Outcome::Failed(e.into()))?
        {
            return Err(Outcome::Refused(WriteRefusal::NotLeaf(old.dn.clone())));
        }
        Ok(())
    }

    /// The stored entry a change works on, or the refusal.
    fn existing(&self, dn: &Dn, ndn: &str, o: &Overlay) -> Result<(EntryId, Entry), Outcome> {
        if o.fresh.contains(ndn) {
            return Err(Outcome::Refused(WriteRefusal::InBatch(dn.to_string())));
        }
        let found = match self.exists(ndn, o).map_err(Outcome::Failed)? {
            Some(id) => self
                .dsa
                .store
                .get(id)
                .map_err(|e| Outcome::Failed(e.into()))?
                .map(|e| (id, e)),
            None => None,
        };
        found.ok_or_else(|| {
            Outcome::Refused(WriteRefusal::NoSuchObject {
                dn: dn.to_string(),
                matched: self.dsa.reader().matched_ancestor(dn),
            })
        })
    }

    /// The grant's scope for a change of an existing entry.
    fn may_change(&self, id: EntryId) -> Result<(), Outcome> {
        match self.grant.scope() {
            WriteScope::SelfService { id: own, .. } if *own != id => Err(Outcome::Refused(
                WriteRefusal::Denied("you may change only your own entry".into()),
            )),
            _ => Ok(()),
        }
    }

    fn fresh_id(o: &mut Overlay) -> EntryId {
        let id = o.next_id;
        o.next_id += 1;
        id
    }

    fn resolve_one(&self, p: &Prepped, o: &mut Overlay) -> Result<Effect, Outcome> {
        let schema = self.schema();
        match p {
            Prepped::Create {
                entry,
                upsert: false,
            } => {
                self.must_be_free(entry, o)?;
                self.check_place(&entry.dn, &entry.ndn, o)?;
                Ok(Effect::Put {
                    id: Self::fresh_id(o),
                    previous: None,
                    body: Body::Input { carry: Vec::new() },
                })
            }
            Prepped::Create {
                entry,
                upsert: true,
            } => {
                self.check_place(&entry.dn, &entry.ndn, o)?;
                match self.exists(&entry.ndn, o).map_err(Outcome::Failed)? {
                    Some(id) => {
                        let old = if o.fresh.contains(&entry.ndn) {
                            None
                        } else {
                            self.dsa
                                .store
                                .get(id)
                                .map_err(|e| Outcome::Failed(e.into()))?
                        };
                        let carry = old
                            .map(|old| creation_stamps(&old, entry))
                            .unwrap_or_default();
                        Ok(Effect::Put {
                            id,
                            previous: Some(entry.ndn.clone()),
                            body: Body::Input { carry },
                        })
                    }
                    None => Ok(Effect::Put {
                        id: Self::fresh_id(o),
                        previous: None,
                        body: Body::Input { carry: Vec::new() },
                    }),
                }
            }
            Prepped::Modify { dn, ndn, edits } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                self.may_change(id)?;
                let mut entry = old.clone();
                edit::apply_edits(schema, &mut entry, edits, dn).map_err(Outcome::Refused)?;
                self.finish_replacement(id, old, entry, dn)
            }
            Prepped::SetPassword { dn, ndn, hashed } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                self.may_change(id)?;
                let mut entry = old.clone();
                entry.set_values(schema, "userPassword", vec![hashed.clone()]);
                self.finish_replacement(id, old, entry, dn)
            }
            Prepped::Rename {
                dn,
                ndn,
                new_dn,
                new_rdn,
                delete_old_rdn,
            } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                let entry = edit::renamed(schema, &old, dn, new_dn, new_rdn, *delete_old_rdn);
                if entry.ndn != old.ndn {
                    self.must_be_free(&entry, o)?;
                    self.must_be_leaf(&old)?;
                    self.check_place(&entry.dn, &entry.ndn, o)?;
                }
                self.finish_replacement(id, old, entry, new_dn)
            }
            Prepped::Delete { dn, ndn } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                self.must_be_leaf(&old)?;
                Ok(Effect::Remove {
                    id,
                    ndn: old.ndn,
                    dn: old.dn,
                })
            }
        }
    }

    /// A changed entry in place of `old`: the schema check of the whole, modification stamps.
    fn finish_replacement(
        &self,
        id: EntryId,
        old: Entry,
        mut entry: Entry,
        dn: &Dn,
    ) -> Result<Effect, Outcome> {
        check(self.schema(), &mut entry, dn)
            .map_err(|e| Outcome::Refused(WriteRefusal::Invalid(e)))?;
        stamp_modified(self.schema(), &mut entry, self.by());
        Ok(Effect::Put {
            id,
            previous: Some(old.ndn),
            body: Body::Computed(entry),
        })
    }

    /// Applies a plan as one atomic, durable batch (re-planned first if the directory changed
    /// since). Refused changes are left out; the rest are applied together, or, on an I/O
    /// error, none.
    pub fn apply(&self, plan: Plan) -> Result<Applied, DsaError> {
        let _guard = self
            .dsa
            .writer_lock
            .lock()
            .map_err(|_| DsaError::Poisoned)?;
        let Plan {
            generation,
            mut inputs,
            early,
            mut steps,
            mut refused,
        } = plan;
        if generation != self.dsa.store.generation() {
            (steps, refused) = self.resolve(&inputs)?;
        }
        refused.extend(early);
        refused.sort_by_key(|(pos, _)| *pos);
        let mut applied = Applied {
            refused,
            ..Applied::default()
        };
        if steps.is_empty() {
            return Ok(applied);
        }
        let mut writes = Vec::with_capacity(steps.len());
        let mut fresh = Vec::with_capacity(steps.len());
        let mut touches_existing = false;
        for step in steps {
            match step.effect {
                Effect::Put { id, previous, body } => {
                    let entry = match body {
                        Body::Computed(e) => e,
                        Body::Input { carry } => {
                            let Some(Some(Prepared(Prepped::Create { entry, .. }))) =
                                inputs.get_mut(step.pos).map(Option::take)
                            else {
                                return Err(DsaError::Denied(
                                    "a planned entry went missing from its batch".into(),
                                ));
                            };
                            let mut entry = entry;
                            for (name, values) in carry {
                                entry.set_values(&self.dsa.schema, name, values);
                            }
                            entry
                        }
                    };
                    if previous.is_some() {
                        applied.replaced += 1;
                        touches_existing = true;
                    } else {
                        applied.added += 1;
                    }
                    fresh.push(previous.is_none());
                    writes.push(Write::Put {
                        id,
                        entry,
                        previous: previous.map(|ndn| Previous { ndn }),
                    });
                }
                Effect::Remove { id, ndn, .. } => {
                    applied.deleted += 1;
                    touches_existing = true;
                    fresh.push(false);
                    writes.push(Write::Delete {
                        id,
                        previous: Previous { ndn },
                    });
                }
            }
        }
        let ids: Vec<EntryId> = writes
            .iter()
            .map(|w| match w {
                Write::Put { id, .. } | Write::Delete { id, .. } => *id,
            })
            .collect();
        self.dsa.index.mark_dirty(&ids);
        let generation = self.dsa.store.apply(&writes)?;
        if touches_existing {
            self.dsa.bump_auth_epoch();
        }
        applied.generation = generation;
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
        self.dsa.index.changed(changes)?;
        Ok(applied)
    }

    /// Prepares, plans and applies a batch.
    pub fn write(&self, changes: Vec<Change>) -> Result<Applied, DsaError> {
        let batch = changes.into_iter().map(|c| self.prepare(c)).collect();
        let plan = self.plan(batch)?;
        self.apply(plan)
    }

    /// One change: `Ok(Err(refusal))` when refused.
    pub fn write_one(&self, change: Change) -> Result<Result<(), WriteRefusal>, DsaError> {
        Ok(self.write(vec![change])?.into_result())
    }

    /// Prepares for a bulk load nobody searches meanwhile (offline imports): writes are
    /// batched to disk and left out of the change log behind a durable marker, the index
    /// commits rarely. [`Writer::finish_bulk_load`] ends it.
    pub fn begin_bulk_load(&self) -> Result<(), DsaError> {
        if !self.grant.is_operator() {
            return Err(DsaError::Denied(
                "a bulk load is for an offline import".into(),
            ));
        }
        self.dsa.index.begin_bulk_load()?;
        self.dsa.store.set_sync_each_write(false);
        self.dsa.store.begin_unlogged()?;
        Ok(())
    }

    /// Ends a bulk load: the index committed and merged, then the store told so, durably
    /// with all it holds (a load that stops before leaves the marker, and the next open
    /// rebuilds the index).
    pub fn finish_bulk_load(&self) -> Result<(), DsaError> {
        self.dsa.index.finish_bulk_load()?;
        self.dsa.store.end_unlogged()?;
        self.dsa.store.set_sync_each_write(true);
        Ok(())
    }
}

/// The steps of a plan and the refusals met while resolving it.
type Resolved = (Vec<Step>, Vec<(usize, WriteRefusal)>);

enum Outcome {
    Refused(WriteRefusal),
    Failed(DsaError),
}

fn is_password(schema: &Schema, name: &str) -> bool {
    let base = name.split(';').next().unwrap_or(name);
    schema
        .canonical_name(base)
        .eq_ignore_ascii_case("userPassword")
}

fn self_service_refusal(attr: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        format!("you may not change {attr}; only your password (use Password Modify)")
    } else {
        format!(
            "you may not change {attr}; only your password and {}",
            allowed.join(", ")
        )
    }
}

/// The creation stamps of `old` that the replacing `new` lacks.
fn creation_stamps(old: &Entry, new: &Entry) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    ["createTimestamp", "creatorsName", "entryUUID"]
        .into_iter()
        .filter(|a| new.get(a).is_none())
        .filter_map(|a| {
            let values = old.values(a).to_vec();
            (!values.is_empty()).then_some((a, values))
        })
        .collect()
}

/// Sets the operational attributes of a new entry (keeping those an import carried over).
/// `by` is the writer's DN; empty for offline imports, which record no creator.
fn stamp_created(schema: &Schema, entry: &mut Entry, by: &str) {
    let now = generalized_time_now();
    if entry.get("createTimestamp").is_none() {
        entry.set_values(schema, "createTimestamp", vec![now.clone().into_bytes()]);
    }
    if entry.get("creatorsName").is_none() && !by.is_empty() {
        entry.set_values(schema, "creatorsName", vec![by.as_bytes().to_vec()]);
    }
    if entry.get("entryUUID").is_none() {
        entry.set_values(schema, "entryUUID", vec![super::new_uuid().into_bytes()]);
    }
    if entry.get("modifyTimestamp").is_none() {
        entry.set_values(schema, "modifyTimestamp", vec![now.into_bytes()]);
    }
    if entry.get("modifiersName").is_none() && !by.is_empty() {
        entry.set_values(schema, "modifiersName", vec![by.as_bytes().to_vec()]);
    }
}

fn stamp_modified(schema: &Schema, entry: &mut Entry, by: &str) {
    entry.set_values(
        schema,
        "modifyTimestamp",
        vec![generalized_time_now().into_bytes()],
    );
    // An offline operator has no DN: the last modifier named stays.
    if !by.is_empty() {
        entry.set_values(schema, "modifiersName", vec![by.as_bytes().to_vec()]);
    }
}
