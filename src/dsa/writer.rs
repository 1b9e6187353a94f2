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

use super::access::WriteScope;
use super::change::{Applied, Change, Edit, EditKind, WriteRefusal};
use super::claims::Claims;
use super::plan::{Body, Effect, Plan};
use super::{Dsa, DsaError, WriteGrant};
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::{Entry, EntryId};
use crate::directory::matching::generalized_time_now;
use crate::directory::password::{hash_password, is_supported_scheme, scheme_of};
use crate::directory::schema::Schema;
use crate::directory::validate::{prepare, Source, ValidationError};
use crate::index::Written;
use crate::store::{Previous, Write};

/// A change checked on its own, ready to plan.
#[derive(Debug)]
pub struct Prepared(pub(super) Prepped);

impl Prepared {
    /// The normalised DN of the entry a content record creates or replaces.
    pub fn created_ndn(&self) -> Option<&str> {
        match &self.0 {
            Prepped::Create { entry, .. } => Some(&entry.ndn),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(super) enum Prepped {
    Create {
        entry: Entry,
        upsert: bool,
        /// An import record's clear-text passwords (hashed in `entry`): a record whose
        /// password is the one already stored leaves the stored hash, and can be unchanged.
        clear_passwords: Vec<Vec<u8>>,
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
    /// The tombstone's id (read when planned).
    Restore {
        id: EntryId,
    },
}

/// The one writer, for what its grant allows.
pub struct Writer<'d> {
    pub(super) dsa: &'d Dsa,
    pub(super) grant: WriteGrant,
    /// During a bulk load: the unique values (`uid`, `mail`) its applied batches hold (the
    /// index does not show them until the load commits it), and whether the directory held
    /// entries before the load (only then are index look-ups needed too).
    bulk: std::sync::Mutex<Option<BulkClaims>>,
}

/// The unique values of a bulk load's applied batches (a million entries hold two million: by
/// hash, see [`Claims`]), and whether the directory held entries before the load.
#[derive(Default)]
struct BulkClaims {
    claims: Claims,
    had_entries: bool,
}

impl<'d> Writer<'d> {
    pub(super) fn new(dsa: &'d Dsa, grant: WriteGrant) -> Writer<'d> {
        Writer {
            dsa,
            grant,
            bulk: std::sync::Mutex::new(None),
        }
    }

    /// The holders of a unique value among a bulk load's applied batches (checked against
    /// their stored entries: a hash shared with another value names nobody), with their DNs.
    pub(super) fn bulk_claim(
        &self,
        attr: &str,
        key: &str,
    ) -> Result<Vec<(EntryId, String)>, DsaError> {
        let ids = match self.bulk.lock() {
            Ok(bulk) => match bulk.as_ref() {
                Some(b) => b.claims.holders(attr, key),
                None => return Ok(Vec::new()),
            },
            Err(_) => return Ok(Vec::new()),
        };
        let reader = self.dsa.reader();
        let mut found = Vec::new();
        for id in ids {
            if let Some(entry) = reader.entry_by_id(id)? {
                if entry
                    .values(attr)
                    .iter()
                    .any(|v| super::plan::unique_key(v) == key)
                {
                    found.push((id, entry.dn));
                }
            }
        }
        Ok(found)
    }

    /// Whether unique values must be looked up in the directory (always, except in a bulk
    /// load into a directory that was empty: there every holder is in the load's claims).
    pub(super) fn bulk_needs_lookups(&self) -> bool {
        match self.bulk.lock() {
            Ok(bulk) => bulk.as_ref().is_none_or(|b| b.had_entries),
            Err(_) => true,
        }
    }

    /// The directory this writer changes.
    pub fn dsa(&self) -> &'d Dsa {
        self.dsa
    }

    /// The writer's DN, as recorded in modification stamps.
    pub fn by(&self) -> &str {
        self.grant.by()
    }

    pub(super) fn schema(&self) -> &Schema {
        &self.dsa.schema
    }

    pub(super) fn parse_ndn(&self, dn: &Dn) -> String {
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
            Change::Rename { .. } | Change::Delete { .. } | Change::Restore { .. } if !admin => {
                return Err(denied())
            }
            Change::Restore { id } => Prepped::Restore { id },
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
        let mut clear_passwords = Vec::new();
        for (name, values) in attrs {
            if is_password(self.schema(), &name) {
                if upsert {
                    clear_passwords
                        .extend(values.iter().filter(|v| scheme_of(v).is_none()).cloned());
                }
                checked.push((name, self.stored_passwords(values)?));
            } else {
                checked.push((name, values));
            }
        }
        let mut entry = prepare(self.schema(), dn, checked, source)?;
        stamp_created(self.schema(), &mut entry, self.by());
        Ok(Prepped::Create {
            entry,
            upsert,
            clear_passwords,
        })
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

    /// Applies a plan as one atomic, durable batch (re-planned first if the directory changed
    /// since). Refused changes are left out; the rest are applied together, or, on an I/O
    /// error, none.
    pub fn apply(&self, plan: Plan) -> Result<Applied, DsaError> {
        let applied = self.apply_locked(plan)?;
        // The disk wait is outside the writer lock, so that the writers that finish their
        // batches meanwhile share the next flush (group commit, `store::durable`).
        if applied.generation > 0 && self.dsa.store.syncs_each_write() {
            self.dsa.store.sync_through(applied.generation)?;
        }
        Ok(applied)
    }

    /// [`Writer::apply`] up to the durable wait: planned again if need be, applied, indexed.
    fn apply_locked(&self, plan: Plan) -> Result<Applied, DsaError> {
        let _guard = self
            .dsa
            .writer_lock
            .lock()
            .map_err(|_| DsaError::Poisoned)?;
        let Plan {
            generation,
            first_id,
            mut inputs,
            early,
            mut steps,
            mut refused,
        } = plan;
        // Planned again when anything was written since, or when the ids it gave new entries
        // may have been taken (a plan's ids must never name another entry's record).
        if generation != self.dsa.store.generation() || first_id != self.dsa.store.next_id() {
            (steps, refused) = self.resolve(&inputs)?;
        }
        refused.extend(early);
        refused.sort_by_key(|(pos, _)| *pos);
        let mut applied = Applied {
            refused,
            ..Applied::default()
        };
        if steps
            .iter()
            .all(|s| matches!(s.effect, Effect::Keep { .. }))
        {
            applied.unchanged = steps.len();
            return Ok(applied);
        }
        let mut writes = Vec::with_capacity(steps.len());
        let mut fresh = Vec::with_capacity(steps.len());
        let mut touches_existing = false;
        for step in steps {
            match step.effect {
                Effect::Keep { .. } => applied.unchanged += 1,
                Effect::Put {
                    id, previous, body, ..
                } => {
                    let entry = match body {
                        Body::Computed(e) => e,
                        Body::Input { carry } => {
                            let Some(Some(Prepared(Prepped::Create { entry, .. }))) =
                                inputs.get_mut(step.pos).map(Option::take)
                            else {
                                return Err(DsaError::Internal(
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
                        keep: self.burial(),
                    });
                }
                Effect::Restore { id, entry } => {
                    applied.restored += 1;
                    // A session bound as this entry before its delete gets its rights back.
                    touches_existing = true;
                    fresh.push(true);
                    writes.push(Write::Put {
                        id,
                        entry,
                        previous: None,
                    });
                    fresh.push(false);
                    writes.push(Write::Forget { id });
                }
            }
        }
        let ids: Vec<EntryId> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Put { id, .. } | Write::Delete { id, .. } => Some(*id),
                Write::Forget { .. } => None,
            })
            .collect();
        self.dsa.index.mark_dirty(&ids);
        let generation = self.dsa.store.apply_unsynced(&writes)?;
        self.note_domain_writes(&writes);
        self.record_bulk_claims(&writes);
        self.record_forced_domains(&writes);
        if touches_existing {
            self.dsa.bump_auth_epoch();
        }
        applied.generation = generation;
        // The written entries go on to the indexer (which would otherwise read them back).
        let changes = writes
            .into_iter()
            .zip(fresh)
            .filter_map(|(w, fresh)| match w {
                Write::Put { id, entry, .. } => Some(Written {
                    generation,
                    id,
                    entry: Some(entry),
                    fresh,
                }),
                Write::Delete { id, .. } => Some(Written {
                    generation,
                    id,
                    entry: None,
                    fresh: false,
                }),
                Write::Forget { .. } => None,
            })
            .collect();
        self.dsa.index.changed(changes)?;
        Ok(applied)
    }

    /// Moves the domains epoch when a write lands within `ou=domains` (the secure-domain
    /// registry is read again then, and only then).
    fn note_domain_writes(&self, writes: &[Write]) {
        let domains = self.dsa.domains_ndn();
        let within = |ndn: &str| crate::directory::dn::is_within(ndn, &domains);
        let touches = writes.iter().any(|w| match w {
            Write::Put {
                entry, previous, ..
            } => within(&entry.ndn) || previous.as_ref().is_some_and(|p| within(&p.ndn)),
            Write::Delete { previous, .. } => within(&previous.ndn),
            Write::Forget { .. } => false,
        });
        if touches {
            self.dsa
                .domains_epoch
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// What a delete keeps: the entry as a tombstone, unless tombstones are off.
    fn burial(&self) -> Option<crate::store::Burial> {
        (self.dsa.settings.tombstone_days > 0).then(|| crate::store::Burial {
            at: self.dsa.now(),
            by: self.grant.by().to_string(),
        })
    }

    /// Writes to the audit trail every public webmail domain registered as secure by force,
    /// with its reason (the entry keeps the reason too).
    fn record_forced_domains(&self, writes: &[Write]) {
        for w in writes {
            let Write::Put { entry, .. } = w else {
                continue;
            };
            let Some(reason) = entry.first_str("onePagesForcedReason") else {
                continue;
            };
            if !entry.has_value_ci("objectClass", "onePagesMailDomain") {
                continue;
            }
            let by = self.grant.by();
            self.dsa.audit().record(
                "secure-domain-forced",
                serde_json::json!({
                    "domain": entry.first_str("associatedDomain").unwrap_or(""),
                    "entry": entry.dn,
                    "reason": reason,
                    "by": if by.is_empty() { "offline operator" } else { by },
                }),
            );
        }
    }

    /// Remembers the unique values a bulk load's batch wrote (and forgets those of entries it
    /// removed or changed).
    fn record_bulk_claims(&self, writes: &[Write]) {
        let Ok(mut bulk) = self.bulk.lock() else {
            return;
        };
        let Some(bulk) = bulk.as_mut() else { return };
        let rewritten: std::collections::HashSet<EntryId> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Put {
                    id,
                    previous: Some(_),
                    ..
                }
                | Write::Delete { id, .. } => Some(*id),
                Write::Put { previous: None, .. } | Write::Forget { .. } => None,
            })
            .collect();
        if !rewritten.is_empty() {
            bulk.claims.forget(&rewritten);
        }
        for w in writes {
            if let Write::Put { id, entry, .. } = w {
                for attr in super::plan::UNIQUE {
                    for v in entry.values(attr) {
                        let key = super::plan::unique_key(v);
                        if !key.is_empty() {
                            bulk.claims.claim(attr, &key, *id);
                        }
                    }
                }
            }
        }
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
        let had_entries = !self.dsa.store.is_empty();
        self.dsa.index.begin_bulk_load()?;
        self.dsa.store.set_sync_each_write(false);
        self.dsa.store.begin_unlogged()?;
        if let Ok(mut bulk) = self.bulk.lock() {
            *bulk = Some(BulkClaims {
                had_entries,
                ..BulkClaims::default()
            });
        }
        Ok(())
    }

    /// Ends a bulk load: the index committed and merged, then the store told so, durably
    /// with all it holds (a load that stops before leaves the marker, and the next open
    /// rebuilds the index).
    pub fn finish_bulk_load(&self) -> Result<(), DsaError> {
        if let Ok(mut bulk) = self.bulk.lock() {
            *bulk = None;
        }
        self.dsa.index.finish_bulk_load()?;
        self.dsa.store.end_unlogged()?;
        self.dsa.store.set_sync_each_write(true);
        Ok(())
    }
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
