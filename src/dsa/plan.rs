//! Planning a batch: each prepared change resolved against the directory as it is — names
//! free or taken, parents present, leaves, modified entries checked whole against the schema,
//! the ids new entries will get — into the exact change set, with no side effect. A dry run
//! is a plan; [`Writer::apply`] writes one.

use std::collections::{HashMap, HashSet};

use super::access::WriteScope;
use super::change::WriteRefusal;
use super::writer::{Prepared, Prepped, Writer};
use super::{edit, DsaError};
use crate::directory::dn::{is_within, parent_of, Dn};
use crate::directory::entry::{Entry, EntryId};
use crate::directory::matching::generalized_time_now;
use crate::directory::schema::Schema;
use crate::directory::validate::check;

/// What a change will do, as planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedKind {
    Add,
    Replace,
    /// An import record identical to the stored entry: nothing is written.
    Unchanged,
    Delete,
    Restore,
}

/// One entry of a plan, for a dry run's report.
#[derive(Debug, PartialEq, Eq)]
pub struct PlannedChange<'p> {
    /// Position of the change in the batch.
    pub pos: usize,
    pub kind: PlannedKind,
    pub dn: &'p str,
    pub id: EntryId,
    /// For an import record that replaces an entry: the attributes whose values change.
    pub changed: &'p [String],
}

#[derive(Debug)]
pub(super) enum Body {
    /// The prepared entry, with creation stamps carried over from the one it replaces.
    Input {
        carry: Vec<(&'static str, Vec<Vec<u8>>)>,
    },
    /// Computed from the stored entry (modify, rename, password).
    Computed(Entry),
}

#[derive(Debug)]
pub(super) enum Effect {
    Put {
        id: EntryId,
        /// The normalised DN the entry had (`None`: a new entry).
        previous: Option<String>,
        body: Body,
        /// An import record replacing an entry: the attributes whose values change.
        changed: Vec<String>,
    },
    /// An import record identical to the stored entry.
    Keep { id: EntryId, dn: String },
    Remove {
        id: EntryId,
        ndn: String,
        dn: String,
    },
    /// A tombstone's entry back under its id.
    Restore { id: EntryId, entry: Entry },
}

#[derive(Debug)]
pub(super) struct Step {
    pub(super) pos: usize,
    pub(super) effect: Effect,
}

/// The exact change set of a batch against the directory at one generation.
#[derive(Debug)]
pub struct Plan {
    pub(super) generation: u64,
    /// The store's next id when the plan was made: new entries were numbered from it.
    pub(super) first_id: EntryId,
    pub(super) inputs: Vec<Option<Prepared>>,
    /// Refused while preparing (kept across re-plans).
    pub(super) early: Vec<(usize, WriteRefusal)>,
    pub(super) steps: Vec<Step>,
    pub(super) refused: Vec<(usize, WriteRefusal)>,
}

impl Plan {
    /// The changes that would be made, in order.
    pub fn changes(&self) -> impl Iterator<Item = PlannedChange<'_>> {
        self.steps.iter().map(|s| {
            const NONE: &[String] = &[];
            let (kind, id, dn, changed) = match &s.effect {
                Effect::Put {
                    id,
                    previous,
                    body,
                    changed,
                } => {
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
                    (kind, *id, dn, changed.as_slice())
                }
                Effect::Keep { id, dn } => (PlannedKind::Unchanged, *id, dn.as_str(), NONE),
                Effect::Remove { id, dn, .. } => (PlannedKind::Delete, *id, dn.as_str(), NONE),
                Effect::Restore { id, entry } => {
                    (PlannedKind::Restore, *id, entry.dn.as_str(), NONE)
                }
            };
            PlannedChange {
                pos: s.pos,
                kind,
                dn,
                id,
                changed,
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
    /// Unique values (`uid`, `mail`) held by the entries this batch writes.
    claims: HashMap<(&'static str, String), (EntryId, String)>,
    /// Entries this batch changes or removes: their stored values no longer hold a claim
    /// (what they keep is in `claims`).
    touched: HashSet<EntryId>,
}

/// Attributes whose values name one entry only: the ONE ID and the mail address.
pub(super) const UNIQUE: &[&str] = &["uid", "mail"];

/// A unique value as compared (both are case-insensitive, spaces insignificant, mail domains
/// in their A-label form).
pub(super) fn unique_key(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    // A mail domain in U-labels is the same address as in A-labels.
    let ascii = (!text.is_ascii())
        .then(|| crate::directory::values::ascii_mail_form(text.trim()))
        .flatten();
    ascii
        .as_deref()
        .unwrap_or(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A dry run over several batches: what the earlier batches would have created, removed and
/// claimed, so that a later batch is planned as if they had been applied.
pub struct DryRun {
    overlay: Overlay,
}

impl Writer<'_> {
    /// Starts a dry run against the directory as it is now.
    pub fn dry_run(&self) -> DryRun {
        DryRun {
            overlay: Overlay {
                next_id: self.dsa.store.next_id(),
                ..Overlay::default()
            },
        }
    }

    /// Plans a batch of a dry run (never to be applied): it sees the batches planned before
    /// it in the same dry run as done.
    pub fn plan_dry(
        &self,
        batch: Vec<Result<Prepared, WriteRefusal>>,
        dry: &mut DryRun,
    ) -> Result<Plan, DsaError> {
        // Entries created earlier in the dry run are not in the store: like entries of the
        // same batch, they are known by name only.
        let generation = self.dsa.reader().generation();
        self.plan_in(batch, &mut dry.overlay, generation)
    }

    /// Resolves a batch against the directory as it is now. No side effect.
    pub fn plan(&self, batch: Vec<Result<Prepared, WriteRefusal>>) -> Result<Plan, DsaError> {
        // The generation first, then everything the plan reads, the next id included: a
        // write applied in between changes the generation, and the plan is made again under
        // the writer's lock. (The next id read before the generation let two concurrent adds
        // take the same id, the later one overwriting the other's entry.)
        let generation = self.dsa.reader().generation();
        let mut overlay = Overlay {
            next_id: self.dsa.store.next_id(),
            ..Overlay::default()
        };
        self.plan_in(batch, &mut overlay, generation)
    }

    fn plan_in(
        &self,
        batch: Vec<Result<Prepared, WriteRefusal>>,
        overlay: &mut Overlay,
        generation: u64,
    ) -> Result<Plan, DsaError> {
        let (inputs, early) = split_early(batch);
        let first_id = overlay.next_id;
        let (steps, refused) = self.resolve_in(&inputs, overlay)?;
        Ok(Plan {
            generation,
            first_id,
            inputs,
            early,
            steps,
            refused,
        })
    }

    pub(super) fn resolve(&self, inputs: &[Option<Prepared>]) -> Result<Resolved, DsaError> {
        let mut overlay = Overlay {
            next_id: self.dsa.store.next_id(),
            ..Overlay::default()
        };
        self.resolve_in(inputs, &mut overlay)
    }

    fn resolve_in(
        &self,
        inputs: &[Option<Prepared>],
        overlay: &mut Overlay,
    ) -> Result<Resolved, DsaError> {
        let mut steps = Vec::with_capacity(inputs.len());
        let mut refused = Vec::new();
        for (pos, input) in inputs.iter().enumerate() {
            let Some(Prepared(p)) = input else { continue };
            match self.resolve_one(p, overlay) {
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
                        Effect::Keep { id, .. } => {
                            let ndn = self.target_ndn(p);
                            overlay.removed.remove(&ndn);
                            overlay.created.insert(ndn, *id);
                        }
                        Effect::Remove { ndn, id, .. } => {
                            overlay.touched.insert(*id);
                            overlay.created.remove(ndn);
                            overlay.removed.insert(ndn.clone());
                        }
                        Effect::Restore { id, entry } => {
                            overlay.fresh.insert(entry.ndn.clone());
                            overlay.removed.remove(&entry.ndn);
                            overlay.created.insert(entry.ndn.clone(), *id);
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
            // Named by its tombstone, which the plan reads (see `Effect::Restore`).
            Prepped::Restore { .. } => String::new(),
        }
    }

    fn exists(&self, ndn: &str, o: &Overlay) -> Result<Option<EntryId>, DsaError> {
        if let Some(id) = o.created.get(ndn) {
            return Ok(Some(*id));
        }
        if o.removed.contains(ndn) {
            return Ok(None);
        }
        self.dsa.reader().id_of(ndn)
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

    /// Refuses a `uid` or `mail` value that another entry holds: in this batch, in a bulk
    /// load's earlier batches, or in the directory. Values the entry already had are not
    /// checked again (a directory written before the rule keeps working).
    fn must_be_unique(
        &self,
        id: EntryId,
        entry: &Entry,
        old: Option<&Entry>,
        o: &mut Overlay,
    ) -> Result<(), Outcome> {
        for attr in UNIQUE {
            let had: HashSet<String> = old
                .map(|e| e.values(attr).iter().map(|v| unique_key(v)).collect())
                .unwrap_or_default();
            for v in entry.values(attr) {
                let key = unique_key(v);
                if key.is_empty() {
                    continue;
                }
                let shown = String::from_utf8_lossy(v).into_owned();
                let taken = |holder: &str| {
                    Outcome::Refused(WriteRefusal::Taken {
                        attr,
                        value: shown.clone(),
                        holder: holder.to_string(),
                    })
                };
                if let Some((holder, dn)) = o.claims.get(&(*attr, key.clone())) {
                    if *holder != id {
                        return Err(taken(dn));
                    }
                    continue;
                }
                if !had.contains(&key) {
                    let holders = self.bulk_claim(attr, &key).map_err(Outcome::Failed)?;
                    if let Some((_, dn)) = holders
                        .iter()
                        .find(|(holder, _)| *holder != id && !o.touched.contains(holder))
                    {
                        return Err(taken(dn));
                    }
                    if self.bulk_needs_lookups() {
                        let found = self
                            .dsa
                            .reader()
                            .find_equal(attr, v)
                            .map_err(Outcome::Failed)?;
                        if let Some((_, other)) = found
                            .iter()
                            .find(|(hid, _)| *hid != id && !o.touched.contains(hid))
                        {
                            return Err(taken(&other.dn));
                        }
                    }
                }
                o.claims.insert((*attr, key), (id, entry.dn.clone()));
            }
        }
        o.touched.insert(id);
        Ok(())
    }

    /// Refuses to move or remove an entry with subordinates.
    fn must_be_leaf(&self, old: &Entry) -> Result<(), Outcome> {
        if self
            .dsa
            .reader()
            .has_children(&old.ndn)
            .map_err(Outcome::Failed)?
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
                .reader()
                .entry_by_id(id)
                .map_err(Outcome::Failed)?
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
                ..
            } => {
                self.must_be_free(entry, o)?;
                self.check_place(&entry.dn, &entry.ndn, o)?;
                let id = Self::fresh_id(o);
                self.must_be_unique(id, entry, None, o)?;
                Ok(Effect::Put {
                    id,
                    previous: None,
                    body: Body::Input { carry: Vec::new() },
                    changed: Vec::new(),
                })
            }
            Prepped::Create {
                entry,
                upsert: true,
                clear_passwords,
            } => {
                self.check_place(&entry.dn, &entry.ndn, o)?;
                match self.exists(&entry.ndn, o).map_err(Outcome::Failed)? {
                    Some(id) => {
                        let old = if o.fresh.contains(&entry.ndn) {
                            None
                        } else {
                            self.dsa.reader().entry_by_id(id).map_err(Outcome::Failed)?
                        };
                        self.must_be_unique(id, entry, old.as_ref(), o)?;
                        let Some(old) = old else {
                            // Replaces a record earlier in this batch: nothing to keep.
                            return Ok(Effect::Put {
                                id,
                                previous: Some(entry.ndn.clone()),
                                body: Body::Input { carry: Vec::new() },
                                changed: Vec::new(),
                            });
                        };
                        let mut carry = creation_stamps(&old);
                        let kept = account_state_kept(&old, entry);
                        let same_password = same_password(&old, entry, clear_passwords);
                        let view = if kept.is_empty() && same_password.is_none() {
                            std::borrow::Cow::Borrowed(entry)
                        } else {
                            let mut view = entry.clone();
                            for (name, values) in &kept {
                                view.set_values(schema, name, values.clone());
                            }
                            if let Some(stored) = &same_password {
                                view.set_values(schema, "userPassword", stored.clone());
                            }
                            std::borrow::Cow::Owned(view)
                        };
                        let changed = differences(&old, &view);
                        let restatus = status_of(&old) != status_of(&view)
                            && entry.get("onePagesStatusChanged").is_none();
                        drop(view);
                        carry.extend(kept);
                        if restatus {
                            carry.push(("onePagesStatusChanged", vec![self.now_value()]));
                        }
                        if changed.is_empty() {
                            return Ok(Effect::Keep {
                                id,
                                dn: old.dn.clone(),
                            });
                        }
                        if let Some(stored) = same_password {
                            carry.push(("userPassword", stored));
                        }
                        Ok(Effect::Put {
                            id,
                            previous: Some(entry.ndn.clone()),
                            body: Body::Input { carry },
                            changed,
                        })
                    }
                    None => {
                        let id = Self::fresh_id(o);
                        self.must_be_unique(id, entry, None, o)?;
                        Ok(Effect::Put {
                            id,
                            previous: None,
                            body: Body::Input { carry: Vec::new() },
                            changed: Vec::new(),
                        })
                    }
                }
            }
            Prepped::Modify { dn, ndn, edits } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                self.may_change(id)?;
                let mut entry = old.clone();
                edit::apply_edits(schema, &mut entry, edits, dn).map_err(Outcome::Refused)?;
                self.finish_replacement(id, old, entry, dn, o)
            }
            Prepped::SetPassword { dn, ndn, hashed } => {
                let (id, old) = self.existing(dn, ndn, o)?;
                self.may_change(id)?;
                let mut entry = old.clone();
                entry.set_values(schema, "userPassword", vec![hashed.clone()]);
                self.finish_replacement(id, old, entry, dn, o)
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
                self.finish_replacement(id, old, entry, new_dn, o)
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
            Prepped::Restore { id } => {
                let id = *id;
                let Some(tomb) = self
                    .dsa
                    .store
                    .tombstone(id)
                    .map_err(|e| Outcome::Failed(e.into()))?
                else {
                    return Err(Outcome::Refused(super::trash::no_tombstone(id)));
                };
                let entry = tomb.entry;
                self.must_be_free(&entry, o)?;
                self.check_place(&entry.dn, &entry.ndn, o)?;
                self.must_be_unique(id, &entry, None, o)?;
                Ok(Effect::Restore { id, entry })
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
        o: &mut Overlay,
    ) -> Result<Effect, Outcome> {
        if status_of(&old) != status_of(&entry) {
            // The time of the change (a re-enabled account's inactivity counts from it), and
            // the old status's reason goes unless this change gives one.
            let schema = self.schema();
            entry.set_values(schema, "onePagesStatusChanged", vec![self.now_value()]);
            if entry.values("onePagesStatusReason") == old.values("onePagesStatusReason") {
                entry.set_values(schema, "onePagesStatusReason", Vec::new());
            }
        }
        check(self.schema(), &mut entry, dn)
            .map_err(|e| Outcome::Refused(WriteRefusal::Invalid(e)))?;
        self.must_be_unique(id, &entry, Some(&old), o)?;
        stamp_modified(self.schema(), &mut entry, self.by());
        Ok(Effect::Put {
            id,
            previous: Some(old.ndn),
            body: Body::Computed(entry),
            changed: Vec::new(),
        })
    }
}

/// A batch's prepared changes, and its refusals from preparing, by position.
type Split = (Vec<Option<Prepared>>, Vec<(usize, WriteRefusal)>);

fn split_early(batch: Vec<Result<Prepared, WriteRefusal>>) -> Split {
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
    (inputs, early)
}

/// The steps of a plan and the refusals met while resolving it.
pub(super) type Resolved = (Vec<Step>, Vec<(usize, WriteRefusal)>);

enum Outcome {
    Refused(WriteRefusal),
    Failed(DsaError),
}

impl Writer<'_> {
    /// The writer's clock as a GeneralizedTime value (the injectable clock: tests move it).
    fn now_value(&self) -> Vec<u8> {
        crate::clock::generalized_time(self.dsa.now()).into_bytes()
    }
}

/// An account's status as the rules read it: active unless it says otherwise.
fn status_of(entry: &Entry) -> bool {
    !super::access::is_disabled(entry)
}

/// What the server and its administrators keep about an account that an import record
/// replacing it keeps when the record does not say it: the later last sign-in, the status
/// (with its reason and time) and the exemption. A feed from the registration system lists who
/// exists; it does not undo the dormancy rules every night, nor forget a sign-in.
fn account_state_kept(old: &Entry, new: &Entry) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut kept = Vec::new();
    let old_sign_in = super::sign_in::stored_sign_in(old);
    if old_sign_in.is_some() && old_sign_in > super::sign_in::stored_sign_in(new) {
        kept.push((
            "onePagesLastSignIn",
            old.values("onePagesLastSignIn").to_vec(),
        ));
    }
    let mut keep = |names: &[&'static str]| {
        if names.iter().all(|n| new.get(n).is_none()) {
            for n in names {
                let values = old.values(n).to_vec();
                if !values.is_empty() {
                    kept.push((*n, values));
                }
            }
        }
    };
    keep(&["onePagesStatus", "onePagesStatusReason"]);
    keep(&["onePagesStatusChanged"]);
    keep(&["onePagesExemptUntil", "onePagesExemptReason"]);
    kept
}

/// The creation stamps of a stored entry, which an import record replacing it keeps: the
/// entry stays the same entry (its `entryUUID`) whatever the record says.
fn creation_stamps(old: &Entry) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    CREATION_STAMPS
        .into_iter()
        .filter_map(|a| {
            let values = old.values(a).to_vec();
            (!values.is_empty()).then_some((a, values))
        })
        .collect()
}

/// The stored password hashes, when an import record gives, in clear text, exactly the
/// passwords they verify (so that re-importing a feed with passwords rewrites nothing).
fn same_password(old: &Entry, new: &Entry, clear: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    let stored = old.values("userPassword");
    if clear.is_empty() || clear.len() != new.values("userPassword").len() {
        return None;
    }
    if stored.len() != clear.len() {
        return None;
    }
    let all = clear.iter().all(|c| {
        stored
            .iter()
            .any(|h| crate::directory::password::verify(c, h))
    });
    all.then(|| stored.to_vec())
}

const CREATION_STAMPS: [&str; 3] = ["createTimestamp", "creatorsName", "entryUUID"];

/// Stamps the server sets: not part of what a record says about a person.
const STAMPS: [&str; 5] = [
    "createTimestamp",
    "creatorsName",
    "entryUUID",
    "modifyTimestamp",
    "modifiersName",
];

/// The attributes whose values differ between a stored entry and the record replacing it
/// (values compared as sets of bytes; the server's stamps left out). Empty: the record says
/// nothing new, and is not written.
pub(super) fn differences(old: &Entry, new: &Entry) -> Vec<String> {
    let is_stamp = |n: &str| STAMPS.iter().any(|s| s.eq_ignore_ascii_case(n));
    let mut names: Vec<&str> = Vec::new();
    for a in old.attrs.iter().chain(&new.attrs) {
        if !is_stamp(&a.name) && !names.iter().any(|n| n.eq_ignore_ascii_case(&a.name)) {
            names.push(&a.name);
        }
    }
    let set = |e: &Entry, n: &str| -> HashSet<Vec<u8>> { e.values(n).iter().cloned().collect() };
    names
        .into_iter()
        .filter(|n| set(old, n) != set(new, n))
        .map(|n| new.get(n).map_or(n, |a| a.name.as_str()).to_string())
        .collect()
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
