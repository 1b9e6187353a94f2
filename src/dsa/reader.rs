//! THE reader: every read of the directory goes through here.
//!
//! Searches, bind look-ups by ONE ID, `onepages check`, compare, the look-ups of writes and
//! imports, exports: all read through [`Reader`]. A search plans its candidates from the index
//! (or walks the scope when the index cannot narrow the filter), reads each candidate's record
//! in place, checks scope and filter with the schema's matching rules (the index only narrows;
//! the filter decides), adds the computed `oneMailSecure`, and hands the match to a [`Sink`]
//! the caller supplies. The reader knows nothing of LDAP results, controls or limits beyond a
//! deadline and a cancel flag: the caller's sink decides when enough was sent.
//!
//! [`Search::admits`] is the one place a candidate becomes a match: entries hidden from the
//! reader (disabled accounts, when the query says `hide_disabled`) are left out there;
//! tombstones are not entries (see `trash`) and never reach it.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ldap3_proto::LdapFilter;

use super::security::{self, Security};
use super::views::SortedView;
use super::{Dsa, DsaError};
use crate::directory::dn::{is_within, parent_of, Dn};
use crate::directory::entry::{AttrSource, Entry, EntryId, WithComputed};
use crate::directory::filter::{compile, Filter};
use crate::directory::record::{self, EntryView};
use crate::index::CandidateOutcome;
use crate::store::Record;

/// Which entries a search reaches, relative to its base (RFC 4511 §4.5.1.2, and the
/// subordinate-subtree "children" scope of draft-sermersheim-ldap-subordinate-scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
    Children,
}

/// What a search reads: a base (normalised; empty for the root), a scope and a compiled filter.
#[derive(Clone, Copy)]
pub struct Query<'q> {
    pub base_ndn: &'q str,
    pub scope: Scope,
    pub filter: &'q Filter,
    /// Leaves out disabled accounts (every reader but administrators and the server itself:
    /// a disabled person is out of the address book).
    pub hide_disabled: bool,
}

impl Query<'_> {
    fn reaches(&self, ndn: &str) -> bool {
        let base = self.base_ndn;
        match self.scope {
            Scope::Base => ndn == base,
            Scope::OneLevel => !ndn.is_empty() && ndn != base && parent_of(ndn) == base,
            Scope::Subtree => is_within(ndn, base),
            Scope::Children => ndn != base && is_within(ndn, base),
        }
    }
}

/// When a read must stop by itself: a deadline, a work budget, and a flag the caller may
/// raise (abandon).
#[derive(Clone, Copy)]
pub struct Budget<'q> {
    pub deadline: Option<Instant>,
    pub cancelled: Option<&'q AtomicBool>,
    /// Work units the read may spend (0 = no limit): every entry examined costs one plus
    /// the filter's [`Filter::cost`].
    pub work_limit: u64,
}

impl Budget<'_> {
    /// No deadline, no cancel flag (internal look-ups of one or two entries).
    pub fn unbounded() -> Budget<'static> {
        Budget {
            deadline: None,
            cancelled: None,
            work_limit: 0,
        }
    }
}

/// Why a read stopped before its sink did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStop {
    Cancelled,
    TimeUp,
    /// The work budget is spent: this many entries examined, this many units.
    WorkLimit {
        examined: usize,
        work: u64,
    },
    /// A store or index fault (logged by whoever reports it).
    Failed(String),
}

/// What receives each match: its id and the entry read in place (computed attributes added).
/// `Break` ends the read.
pub type Sink<'s> = dyn FnMut(EntryId, &EntryView<'_>) -> ControlFlow<()> + 's;

/// Candidates whose records a search reads at once (small: a search limited to a few entries
/// should not read many more).
const CANDIDATE_BATCH: usize = 16;

/// A read-only handle on the open directory.
pub struct Reader<'d> {
    dsa: &'d Dsa,
    /// The secure-domain registry, read once per reader (every entry of a search is judged
    /// against the same registry).
    domains: OnceLock<Arc<BTreeSet<String>>>,
}

impl<'d> Reader<'d> {
    /// The schema the directory's entries are read with.
    pub fn schema(&self) -> &'d crate::directory::schema::Schema {
        self.dsa.schema()
    }

    pub(super) fn new(dsa: &'d Dsa) -> Reader<'d> {
        Reader {
            dsa,
            domains: OnceLock::new(),
        }
    }

    /// The secure mail domains (configured and registered).
    pub fn domains(&self) -> Arc<BTreeSet<String>> {
        Arc::clone(
            self.domains
                .get_or_init(|| security::secure_domains(self.dsa)),
        )
    }

    pub fn normalize_dn(&self, dn: &Dn) -> String {
        dn.normalize(&self.dsa.schema)
    }

    /// The stored entry of a normalised DN, as stored (secret attributes included, no computed
    /// ones): what writes and binds work on.
    pub fn entry(&self, ndn: &str) -> Result<Option<(EntryId, Entry)>, DsaError> {
        Ok(self.dsa.store.get_by_ndn(ndn)?)
    }

    /// The stored entry with this id.
    pub fn entry_by_id(&self, id: EntryId) -> Result<Option<Entry>, DsaError> {
        Ok(self.dsa.store.get(id)?)
    }

    /// The id of the entry with this normalised DN.
    pub fn id_of(&self, ndn: &str) -> Result<Option<EntryId>, DsaError> {
        Ok(self.dsa.store.id_of(ndn)?)
    }

    /// Calls `f` with the entry of `id` read in place, as stored (no computed attributes);
    /// `None` when there is no such entry.
    pub fn with_view<T>(
        &self,
        id: EntryId,
        f: impl FnOnce(&EntryView<'_>) -> T,
    ) -> Result<Option<T>, DsaError> {
        let Some(record) = self.dsa.store.record(id)? else {
            return Ok(None);
        };
        let view = record::view(&record).map_err(crate::store::StoreError::from)?;
        Ok(Some(f(&view)))
    }

    pub fn exists(&self, ndn: &str) -> Result<bool, DsaError> {
        Ok(self.dsa.store.id_of(ndn)?.is_some())
    }

    /// The failed binds and lock of the entry named `ndn` (what administrators read as
    /// `pwdFailureTime` and `pwdAccountLockedTime`), when it has any.
    pub fn password_state(&self, ndn: &str) -> Option<super::lockout::AccountState> {
        if !self.dsa.lockout.has_states() {
            return None;
        }
        let id = self.dsa.store.id_of(ndn).ok()??;
        self.dsa.lockout.state(id, self.dsa.now())
    }

    /// The last sign-in of the entry named `ndn` as known (the later of the one recorded at
    /// bind and the entry's own `onePagesLastSignIn`), seconds since 1970.
    pub fn last_sign_in<E: AttrSource + ?Sized>(&self, ndn: &str, entry: &E) -> Option<i64> {
        match self.dsa.store.id_of(ndn).ok().flatten() {
            Some(id) => self.dsa.sign_ins.last(id, entry),
            None => super::sign_in::stored_sign_in(entry),
        }
    }

    /// Writes the last sign-in as known into the entry's `onePagesLastSignIn` (exports carry
    /// what the server recorded, so that another server or a later import keeps it).
    pub fn merge_sign_in(&self, id: EntryId, entry: &mut Entry) {
        if let Some(at) = self.dsa.sign_ins.last(id, entry) {
            if super::sign_in::stored_sign_in(entry) != Some(at) {
                let value = crate::clock::generalized_time(at).into_bytes();
                entry.set_values(&self.dsa.schema, "onePagesLastSignIn", vec![value]);
            }
        }
    }

    /// Every entry below `ndn` (not `ndn` itself), each parent before its children.
    pub fn below(&self, ndn: &str) -> Result<Vec<(EntryId, Entry)>, DsaError> {
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([ndn.to_string()]);
        while let Some(parent) = queue.pop_front() {
            for id in self.dsa.store.children(&parent)? {
                if let Some(e) = self.dsa.store.get(id)? {
                    queue.push_back(e.ndn.clone());
                    out.push((id, e));
                }
            }
        }
        Ok(out)
    }

    pub fn has_children(&self, ndn: &str) -> Result<bool, DsaError> {
        Ok(self.dsa.store.has_children(ndn)?)
    }

    /// The deepest existing ancestor of `dn`, in its stored spelling (the matchedDN of
    /// noSuchObject, RFC 4511 §4.1.9); empty when none is.
    pub fn matched_ancestor(&self, dn: &Dn) -> String {
        let mut cur = dn.parent();
        while let Some(p) = cur {
            if p.is_root() {
                break;
            }
            if let Ok(Some((_, e))) = self.dsa.store.get_by_ndn(&p.normalize(&self.dsa.schema)) {
                return e.dn;
            }
            cur = p.parent();
        }
        String::new()
    }

    /// Adds what the server computes (`oneMailSecure`) to an entry about to be shown.
    pub fn decorate(&self, entry: &mut Entry) {
        security::decorate(entry, &self.domains());
    }

    /// Whether mail to this entry is protected end to end, and if not, why.
    pub fn security<E: AttrSource + ?Sized>(&self, entry: &E) -> Option<Security> {
        security::security_of(entry, &self.domains())
    }

    /// Entries with this value of an attribute (a bind by ONE ID, a check by mail address),
    /// exact: found through the index, including entries it has not committed yet. As stored.
    pub fn find_equal(&self, attr: &str, value: &[u8]) -> Result<Vec<(EntryId, Entry)>, DsaError> {
        let wanted = LdapFilter::Equality(
            attr.to_string(),
            String::from_utf8_lossy(value).into_owned(),
        );
        // One equality item stays far within any limits; a filter refused by them matches nothing.
        let Ok(filter) = compile(&wanted, &self.dsa.schema, self.dsa.settings.limits.filter) else {
            return Ok(Vec::new());
        };
        let query = Query {
            base_ndn: "",
            scope: Scope::Subtree,
            filter: &filter,
            hide_disabled: false,
        };
        let mut ids = Vec::new();
        let mut search = self.search(query, Budget::unbounded());
        let _ = search.each(&mut |id, _| {
            ids.push(id);
            ControlFlow::Continue(())
        });
        if let Some(ReadStop::Failed(e)) = search.take_stop() {
            return Err(DsaError::Internal(format!("look-up failed: {e}")));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self.dsa.store.get(id)? {
                out.push((id, e));
            }
        }
        Ok(out)
    }

    /// Every entry, in id order, as stored (exports and backups).
    pub fn all_entries(&self) -> impl Iterator<Item = Result<(EntryId, Entry), DsaError>> + '_ {
        self.dsa.store.scan().map(|r| r.map_err(DsaError::from))
    }

    /// The store generation: moves with every write (cache keys, VLV contexts).
    pub fn generation(&self) -> u64 {
        self.dsa.store.generation()
    }

    /// A sorted list exact at `generation`, if cached (a list is complete whatever the
    /// index's lag: its candidates include the entries not yet indexed).
    pub fn cached_view(&self, key: &str, generation: u64) -> Option<Arc<SortedView>> {
        self.dsa.views.get(key, generation)
    }

    /// The list kept under `key` at whatever generation, taken out of the cache (to be
    /// brought forward with [`Reader::changed_between`] and kept again).
    pub fn take_view(&self, key: &str) -> Option<(u64, Arc<SortedView>)> {
        self.dsa.views.take(key)
    }

    /// The entries the generations after `from` up to `to` wrote or removed, sorted (from
    /// memory, or from the change log on disk after a restart); `None` when they are no longer
    /// known (rebuild instead).
    pub fn changed_between(&self, from: u64, to: u64) -> Option<Vec<EntryId>> {
        self.dsa.store.changed_between(from, to)
    }

    /// Moves with every write within `ou=domains`: what an entry's `oneMailSecure` depends
    /// on besides the entry (a cached list filtered on it is keyed with this).
    pub fn domains_epoch(&self) -> u64 {
        self.dsa
            .domains_epoch
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps a sorted list for later windows, if the directory has not changed since;
    /// `lasting` when the list depends on nothing but its entries (no computed attribute in
    /// its filter or keys), so that it may be kept across a restart and brought forward there.
    pub fn keep_view(&self, key: String, generation: u64, view: Arc<SortedView>, lasting: bool) {
        if self.generation() == generation {
            self.dsa.views.put(key, generation, view, lasting);
        }
    }

    /// Starts a search.
    pub fn search<'r, 'q>(&'r self, query: Query<'q>, budget: Budget<'q>) -> Search<'r, 'q> {
        Search {
            dsa: self.dsa,
            domains: self.domains(),
            filter_reads_security: query.filter.reads("oneMailSecure"),
            reads_structural: query.filter.reads("structuralObjectClass"),
            reads_subordinates: query.filter.reads("hasSubordinates"),
            per_entry: 1 + query.filter.cost(),
            work: 0,
            query,
            budget,
            examined: 0,
            stop: None,
        }
    }
}

/// One search in progress: candidates in, matches out to a sink.
pub struct Search<'r, 'q> {
    dsa: &'r Dsa,
    domains: Arc<BTreeSet<String>>,
    /// Whether the filter reads `oneMailSecure` (computed before filtering if so).
    filter_reads_security: bool,
    /// Whether it reads `structuralObjectClass`, `hasSubordinates` (the same).
    reads_structural: bool,
    reads_subordinates: bool,
    query: Query<'q>,
    budget: Budget<'q>,
    examined: usize,
    /// What examining one entry costs, and what the read has spent.
    per_entry: u64,
    work: u64,
    stop: Option<ReadStop>,
}

impl Search<'_, '_> {
    /// Whether disabled accounts are left out (part of what a cached result list depends on).
    pub fn hides_disabled(&self) -> bool {
        self.query.hide_disabled
    }

    /// Whether the filter reads an attribute computed from other entries than the one it
    /// examines (`oneMailSecure` reads the domain registry, `hasSubordinates` the children):
    /// a write elsewhere can change which entries match.
    pub fn reads_other_entries(&self) -> bool {
        self.filter_reads_security || self.reads_subordinates
    }

    /// Candidates read and checked so far (how well the index narrowed).
    pub fn examined(&self) -> usize {
        self.examined
    }

    /// Work units spent so far.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// Why the read stopped by itself, if it did (taken: asked once).
    pub fn take_stop(&mut self) -> Option<ReadStop> {
        self.stop.take()
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_some()
    }

    fn fail(&mut self, e: impl std::fmt::Display) -> ControlFlow<()> {
        self.stop = Some(ReadStop::Failed(e.to_string()));
        ControlFlow::Break(())
    }

    /// Cancel and deadline checks before each candidate.
    fn pace(&mut self) -> ControlFlow<()> {
        if self
            .budget
            .cancelled
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            self.stop = Some(ReadStop::Cancelled);
            return ControlFlow::Break(());
        }
        // The clock is read every 16 entries: cheap for scans, exact enough for limits.
        if self.examined.is_multiple_of(16)
            && self.budget.deadline.is_some_and(|d| Instant::now() >= d)
        {
            self.stop = Some(ReadStop::TimeUp);
            return ControlFlow::Break(());
        }
        self.work = self.work.saturating_add(self.per_entry);
        if self.budget.work_limit > 0 && self.work > self.budget.work_limit {
            self.stop = Some(ReadStop::WorkLimit {
                examined: self.examined,
                work: self.work,
            });
            return ControlFlow::Break(());
        }
        self.examined += 1;
        ControlFlow::Continue(())
    }

    /// Whether a candidate read in place is a match: in scope, and the filter says so, with
    /// computed attributes added before the filter when it reads them, after it otherwise (only
    /// matches pay for them). The one place where a candidate becomes a match.
    fn admits(&self, view: &mut EntryView<'_>) -> bool {
        if !self.query.reaches(view.ndn) {
            return false;
        }
        if self.query.hide_disabled && super::access::is_disabled(view) {
            return false;
        }
        if self.filter_reads_security {
            security::decorate_view(view, &self.domains);
        }
        let matched = if self.reads_structural || self.reads_subordinates {
            self.query
                .filter
                .matches(&self.with_computed(view), &self.dsa.schema)
        } else {
            self.query.filter.matches(view, &self.dsa.schema)
        };
        if !matched {
            return false;
        }
        if !self.filter_reads_security {
            security::decorate_view(view, &self.domains);
        }
        true
    }

    /// The candidate with the computed attributes its filter reads.
    fn with_computed<'e, 'v>(&self, view: &'e EntryView<'v>) -> WithComputed<'e, EntryView<'v>> {
        let mut computed = Vec::new();
        if self.reads_structural {
            if let Some(c) = self.dsa.schema.structural_class(view) {
                computed.push(("structuralObjectClass", c.into_bytes()));
            }
        }
        if self.reads_subordinates {
            let has = self.dsa.store.has_children(view.ndn).unwrap_or(false);
            let v: &[u8] = if has { b"TRUE" } else { b"FALSE" };
            computed.push(("hasSubordinates", v.to_vec()));
        }
        WithComputed {
            entry: view,
            computed,
        }
    }

    /// Considers one candidate, reading its record unless the caller has it.
    fn offer(
        &mut self,
        id: EntryId,
        record: Option<Record>,
        sink: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        self.pace()?;
        let record = match record {
            Some(r) => r,
            None => match self.dsa.store.record(id) {
                Ok(Some(r)) => r,
                Ok(None) => return ControlFlow::Continue(()),
                Err(e) => return self.fail(e),
            },
        };
        let mut view = match record::view(&record) {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        if !self.admits(&mut view) {
            return ControlFlow::Continue(());
        }
        sink(id, &view)
    }

    /// Considers the candidates in `ids` (emptied), reading their records under one lock.
    fn offer_batch(
        &mut self,
        ids: &mut Vec<EntryId>,
        records: &mut Vec<(EntryId, Option<Record>)>,
        sink: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        records.clear();
        let read = self.dsa.store.records_into(ids, records);
        ids.clear();
        if let Err(e) = read {
            return self.fail(e);
        }
        touch(records.iter().filter_map(|(_, r)| r.as_deref()));
        for (id, record) in records.drain(..) {
            let Some(record) = record else { continue };
            self.offer(id, Some(record), sink)?;
        }
        ControlFlow::Continue(())
    }

    fn one_level_ids(&self) -> Result<Vec<EntryId>, DsaError> {
        let store = &self.dsa.store;
        Ok(if self.query.base_ndn.is_empty() {
            store.id_of(&self.dsa.suffix_ndn)?.into_iter().collect()
        } else {
            store.children(self.query.base_ndn)?
        })
    }

    /// Hands out every match in the scope as it is found (index order, then a scan when the
    /// index cannot narrow the filter).
    pub fn each(&mut self, sink: &mut Sink<'_>) -> ControlFlow<()> {
        match self.query.scope {
            Scope::Base => match self.dsa.store.id_of(self.query.base_ndn) {
                Ok(Some(id)) => self.offer(id, None, sink),
                Ok(None) => ControlFlow::Continue(()),
                Err(e) => self.fail(e),
            },
            Scope::OneLevel => {
                let ids = match self.one_level_ids() {
                    Ok(ids) => ids,
                    Err(e) => return self.fail(e),
                };
                for id in ids {
                    self.offer(id, None, sink)?;
                }
                ControlFlow::Continue(())
            }
            Scope::Subtree | Scope::Children => {
                // Candidates are taken a few at a time, their records read under one lock.
                let mut ids: Vec<EntryId> = Vec::with_capacity(CANDIDATE_BATCH);
                let mut records = Vec::with_capacity(CANDIDATE_BATCH);
                let mut flow = ControlFlow::Continue(());
                let dsa = self.dsa;
                let filter = self.query.filter;
                let outcome = dsa.index.candidates(&dsa.schema, filter, &mut |id| {
                    ids.push(id);
                    if ids.len() < CANDIDATE_BATCH {
                        return ControlFlow::Continue(());
                    }
                    flow = self.offer_batch(&mut ids, &mut records, sink);
                    flow
                });
                let outcome = match outcome {
                    Ok(o) => o,
                    Err(e) => return self.fail(e),
                };
                flow?;
                self.offer_batch(&mut ids, &mut records, sink)?;
                if outcome == CandidateOutcome::Scan {
                    dsa.count_scan();
                    let mut after = 0;
                    return self.each_after(&mut after, sink);
                }
                ControlFlow::Continue(())
            }
        }
    }

    /// The candidates of the whole scope in id order, for a caller that walks them in turns
    /// (paging, sorting); `None` when the index cannot narrow the filter (walk with
    /// [`Search::each_after`] instead).
    pub fn candidate_ids(&mut self) -> Result<Option<Vec<EntryId>>, DsaError> {
        let store = &self.dsa.store;
        let mut ids = match self.query.scope {
            Scope::Base => store.id_of(self.query.base_ndn)?.into_iter().collect(),
            Scope::OneLevel => self.one_level_ids()?,
            Scope::Subtree | Scope::Children => {
                let mut ids = Vec::new();
                let outcome =
                    self.dsa
                        .index
                        .candidates(&self.dsa.schema, self.query.filter, &mut |id| {
                            ids.push(id);
                            ControlFlow::Continue(())
                        })?;
                if outcome == CandidateOutcome::Scan {
                    self.dsa.count_scan();
                    return Ok(None);
                }
                ids
            }
        };
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(ids))
    }

    /// Hands out the matches among `ids`, in their order.
    pub fn each_of(
        &mut self,
        ids: impl IntoIterator<Item = EntryId>,
        sink: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        for id in ids {
            self.offer(id, None, sink)?;
        }
        ControlFlow::Continue(())
    }

    /// Scans every entry with an id above `after`, in id order, handing out the matches;
    /// `after` follows the scan, so a later call resumes where this one stopped (constant
    /// memory, for paged dumps).
    pub fn each_after(&mut self, after: &mut EntryId, sink: &mut Sink<'_>) -> ControlFlow<()> {
        let dsa = self.dsa;
        for item in dsa.store.scan_records_from(*after) {
            let (id, record) = match item {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            *after = id;
            self.offer(id, Some(record), sink)?;
        }
        ControlFlow::Continue(())
    }
}

/// Reads a byte of every cache line of the records, all at once: held records lie scattered
/// in memory (a directory is larger than the CPU's caches), and independent loads are fetched
/// in parallel where the search, record after record, would wait for each in turn.
fn touch<'a>(records: impl Iterator<Item = &'a [u8]>) {
    let mut acc = 0u8;
    for r in records {
        for b in r.iter().step_by(64) {
            acc ^= *b;
        }
    }
    std::hint::black_box(acc);
}
