//! Search (RFC 4511 §4.5): the operation's side of a read.
//!
//! The directory's reader finds the matches (`dsa::Reader`: candidates, scope, filter, computed
//! attributes) and hands each to this operation's [`Sender`], which applies the size limit and
//! the page size, renders the selected attributes and emits the entry at once. Size and time
//! limits are the smaller of the client's and the server's; on reaching one, the entries sent
//! so far stand and the result says which limit stopped it. Abandon raises the reader's cancel
//! flag. The files beside this one: the typed request ([`request`]), attribute selection and
//! rendering ([`select`]), the root DSE and subschema ([`dse`]), `cn=Monitor` ([`monitor`]),
//! paging ([`paging`]), and
//! sort with virtual list view (`sort`).

pub mod dse;
pub mod monitor;
pub mod paging;
pub mod request;
pub mod select;
mod sort;

use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldap3_proto::proto::{LdapResult, LdapResultCode, LdapSearchScope};

use super::context::RequestContext;
use super::{no_such_object, parse_dn, require_reader, success, OpError, OpResult};
use crate::config::SearchLimits;
use crate::directory::dn::is_within;
use crate::directory::filter::{compile_for, FilterError};
use crate::directory::record::EntryView;
use crate::directory::schema::Schema;
use crate::directory::secret::Sight;
use crate::dsa::reader::Search;
use crate::dsa::{Budget, Dsa, Query, ReadStop, Reader, Scope};
pub use paging::PagedSearches;
pub use request::{ResponseControl, SearchControls, SearchRequest};
pub use select::{Emit, Found, FoundAttribute, FoundValues, Selection};
pub use sort::collation_key;

/// How a search ended.
#[derive(Debug, PartialEq)]
pub enum SearchEnd {
    Done(LdapResult, Vec<ResponseControl>),
    /// Abandoned, or the connection went away: nothing more is sent.
    Silent,
}

/// Why the operation's side stopped a search.
#[derive(Debug, PartialEq)]
enum Stop {
    SizeLimit,
    /// The page of a paged search is full (not an error).
    PageFull,
    /// The client is gone (its connection closed).
    ClientGone,
    /// The identity's read budget is spent: the next entry in this long.
    ReadBudget(Duration),
}

/// The operation's side of one search: limits, paging, rendering, emission.
struct Sender<'a, 'e> {
    reader: &'a Reader<'a>,
    schema: &'a Schema,
    marker: Option<&'a str>,
    sel: &'a Selection,
    /// Size limit of what is left of the search (0 = none): a page of a paged search has
    /// what the earlier pages did not use.
    limit: usize,
    /// The size limit of the whole search, as the message names it.
    whole_limit: usize,
    /// Entries per page of a paged search (0 = not paged).
    page: usize,
    /// The server's own size cap (0 = none), which bounds even a VLV window.
    server_cap: usize,
    /// The work budget (for the message when it is spent).
    work_limit: u64,
    sent: usize,
    emit: &'a mut Emit<'e>,
    stop: Option<Stop>,
    started: Instant,
    /// The identity's read budget (entries per minute, 0 = none), charged per entry sent.
    budget: ReadBudget<'a>,
}

/// Who is charged for the entries a search sends, and how many a minute they may have.
struct ReadBudget<'a> {
    dsa: &'a Dsa,
    grant: &'a crate::dsa::access::Grant,
    per_minute: u64,
}

impl Sender<'_, '_> {
    /// Takes one match: within the limits, rendered and emitted; `Break` once the search must
    /// stop.
    fn take(&mut self, view: &EntryView<'_>) -> ControlFlow<()> {
        if self.limit > 0 && self.sent >= self.limit {
            self.stop = Some(Stop::SizeLimit);
            return ControlFlow::Break(());
        }
        if self.budget.per_minute > 0 {
            if let Err(wait) = self
                .budget
                .dsa
                .take_read_budget(self.budget.grant, self.budget.per_minute)
            {
                self.stop = Some(Stop::ReadBudget(wait));
                return ControlFlow::Break(());
            }
        }
        let rendered = select::render(self.reader, self.schema, self.marker, view, self.sel);
        if (self.emit)(&rendered).is_break() {
            self.stop = Some(Stop::ClientGone);
            return ControlFlow::Break(());
        }
        self.sent += 1;
        if self.page > 0 && self.sent >= self.page {
            self.stop = Some(Stop::PageFull);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Every match of the search, as found.
    fn stream(&mut self, search: &mut Search<'_, '_>) {
        let _ = search.each(&mut |_, view| self.take(view));
    }

    fn finish(
        &mut self,
        search: &mut Search<'_, '_>,
        controls: Vec<ResponseControl>,
    ) -> OpResult<SearchEnd> {
        let read_stop = search.take_stop();
        tracing::debug!(
            examined = search.examined(),
            sent = self.sent,
            stop = ?self.stop,
            read_stop = ?read_stop,
            micros = self.started.elapsed().as_micros(),
            "search finished"
        );
        let end = |r: LdapResult| Ok(SearchEnd::Done(r, controls));
        match read_stop {
            Some(ReadStop::Cancelled) => return Ok(SearchEnd::Silent),
            Some(ReadStop::TimeUp) => {
                return end(result(
                    LdapResultCode::TimeLimitExceeded,
                    "time limit reached",
                ))
            }
            Some(ReadStop::WorkLimit { examined, work }) => {
                return end(result(
                    LdapResultCode::AdminLimitExceeded,
                    &format!(
                        "this search used its budget of {} work units (examined {examined} \
                         entries, {work} units with its filter's cost); use a narrower filter \
                         or a base nearer the entries you want",
                        self.work_limit
                    ),
                ))
            }
            Some(ReadStop::Failed(e)) => return Err(super::internal(e)),
            None => {}
        }
        match self.stop.take() {
            None | Some(Stop::PageFull) => end(success()),
            Some(Stop::SizeLimit) => end(result(
                LdapResultCode::SizeLimitExceeded,
                &format!("size limit of {} entries reached", self.whole_limit),
            )),
            Some(Stop::ClientGone) => Ok(SearchEnd::Silent),
            Some(Stop::ReadBudget(wait)) => end(result(
                LdapResultCode::AdminLimitExceeded,
                &format!(
                    "read budget of {} entries per minute reached for this identity; more in \
                     {} s",
                    self.budget.per_minute,
                    wait.as_secs().max(1)
                ),
            )),
        }
    }
}

/// The smaller of the client's size limit and the server's for this identity (0 = none).
fn size_limit(limits: &SearchLimits, requested: i32) -> usize {
    let client = usize::try_from(requested).unwrap_or(0);
    match (client, limits.size_limit) {
        (0, s) => s,
        (c, 0) => c,
        (c, s) => c.min(s),
    }
}

fn time_limit(limits: &SearchLimits, requested: i32) -> Duration {
    let server = limits.time_limit;
    match u64::try_from(requested) {
        Ok(secs) if secs > 0 => server.min(Duration::from_secs(secs)),
        _ => server,
    }
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_string(),
        referral: Vec::new(),
    }
}

fn scope_of(scope: &LdapSearchScope) -> Scope {
    match scope {
        LdapSearchScope::Base => Scope::Base,
        LdapSearchScope::OneLevel => Scope::OneLevel,
        LdapSearchScope::Subtree => Scope::Subtree,
        LdapSearchScope::Children => Scope::Children,
    }
}

/// An administrator's search with the Show Deleted control: the tombstones within the base and
/// scope that match the filter (the base itself may be a deleted entry), the most recently
/// deleted first, each with `isDeleted`, `onePagesDeletedAt`, `onePagesDeletedBy` and
/// `onePagesPurgeAt`.
fn tombstone_view(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &SearchRequest,
    base_ndn: &str,
    filter: &crate::directory::filter::Filter,
    sel: &Selection,
    emit: &mut Emit<'_>,
) -> OpResult<SearchEnd> {
    if !ctx.grant.is_admin() {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "only directory administrators may see deleted entries",
        ));
    }
    let schema = dsa.schema();
    let entries = dsa
        .tombstones()?
        .into_iter()
        .filter(|t| in_scope(&req.scope, &t.entry.ndn, base_ndn))
        .map(|tomb| {
            let mut entry = tomb.entry.clone();
            // Kept for the restore, never shown (as for live entries).
            entry
                .attrs
                .retain(|a| !crate::directory::secret::is_secret(&a.name));
            let time = |secs| crate::clock::generalized_time(secs).into_bytes();
            entry.set_values(schema, "isDeleted", vec![b"TRUE".to_vec()]);
            entry.set_values(schema, "onePagesDeletedAt", vec![time(tomb.burial.at)]);
            if !tomb.burial.by.is_empty() {
                entry.set_values(
                    schema,
                    "onePagesDeletedBy",
                    vec![tomb.burial.by.clone().into_bytes()],
                );
            }
            entry.set_values(schema, "onePagesPurgeAt", vec![time(dsa.purge_time(&tomb))]);
            entry
        });
    Ok(send_owned(entries, req, filter, sel, schema, emit))
}

/// Whether `ndn` lies in the search scope of `base_ndn` (for entries that are not in the
/// store: tombstones, cn=Monitor).
fn in_scope(scope: &LdapSearchScope, ndn: &str, base_ndn: &str) -> bool {
    match scope {
        LdapSearchScope::Base => ndn == base_ndn,
        LdapSearchScope::OneLevel => {
            ndn != base_ndn && crate::directory::dn::parent_of(ndn) == base_ndn
        }
        LdapSearchScope::Subtree => is_within(ndn, base_ndn),
        LdapSearchScope::Children => ndn != base_ndn && is_within(ndn, base_ndn),
    }
}

/// Sends the owned entries (already in scope) that match the filter, within the client's
/// size limit.
fn send_owned<E: std::borrow::Borrow<crate::directory::entry::Entry>>(
    entries: impl IntoIterator<Item = E>,
    req: &SearchRequest,
    filter: &crate::directory::filter::Filter,
    sel: &Selection,
    schema: &Schema,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    let limit = usize::try_from(req.size_limit).unwrap_or(0);
    let mut sent = 0usize;
    for entry in entries {
        let entry = entry.borrow();
        if !filter.matches(entry, schema) {
            continue;
        }
        if limit > 0 && sent >= limit {
            return SearchEnd::Done(
                result(LdapResultCode::SizeLimitExceeded, "size limit reached"),
                Vec::new(),
            );
        }
        if emit(&Found::of(&select::render_plain(entry, sel, schema))).is_break() {
            return SearchEnd::Silent;
        }
        sent += 1;
    }
    SearchEnd::Done(success(), Vec::new())
}

/// Runs a search, calling `emit` for every entry returned. `paging` holds this connection's
/// paged-results cursors.
pub fn search(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &SearchRequest,
    paging: &Mutex<PagedSearches>,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    match run(dsa, ctx, req, paging, abandoned, emit) {
        Ok(end) => end,
        Err(e) => SearchEnd::Done(e.into_result(), Vec::new()),
    }
}

/// A search without paging state (tests, internal callers).
pub fn simple_search(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &SearchRequest,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    let paging = Mutex::new(PagedSearches::default());
    search(dsa, ctx, req, &paging, abandoned, emit)
}

fn run(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &SearchRequest,
    paging: &Mutex<PagedSearches>,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> OpResult<SearchEnd> {
    let schema = dsa.schema();
    let base = parse_dn(&req.base)?;
    let base_ndn = base.normalize(schema);
    let sight = if ctx.grant.is_admin() {
        Sight::Full
    } else {
        Sight::Public
    };
    let filter = compile_for(&req.filter, schema, dsa.settings().limits.filter, sight).map_err(
        |e| match e {
            FilterError::TooDeep(_) | FilterError::TooLarge(_) => {
                OpError::new(LdapResultCode::UnwillingToPerform, e.to_string())
            }
        },
    )?;
    let mut sel = Selection::new(schema, &req.attrs, req.types_only);
    sel.sight = sight;
    sel.password_state = ctx.grant.is_admin() && sel.wants_password_state();
    sel.sign_ins = ctx.grant.is_admin() && sel.wants("onePagesLastSignIn", true);

    // The root DSE and the subschema entry are readable before binding (discovery).
    if base.is_root() && req.scope == LdapSearchScope::Base {
        let dse = dse::root_dse(dsa);
        if filter.matches(&dse, schema) {
            let shown = if sel.is_empty_request() {
                Selection::everything(sel.types_only)
            } else {
                sel
            };
            let _ = emit(&Found::of(&select::render_plain(&dse, &shown, schema)));
        }
        return Ok(SearchEnd::Done(success(), Vec::new()));
    }
    if base_ndn == "cn=subschema" {
        if req.scope == LdapSearchScope::Base || req.scope == LdapSearchScope::Subtree {
            let sub = dse::subschema(dsa);
            if filter.matches(&sub, schema) {
                let _ = emit(&Found::of(&select::render_plain(&sub, &sel, schema)));
            }
        }
        return Ok(SearchEnd::Done(success(), Vec::new()));
    }

    if monitor::is_monitor(&base_ndn) {
        return monitor::view(ctx, schema, req, &base_ndn, &filter, &sel, emit);
    }
    require_reader(ctx)?;
    if req.controls.show_deleted {
        return tombstone_view(dsa, ctx, req, &base_ndn, &filter, &sel, emit);
    }
    let reader = dsa.reader();
    if !base.is_root() {
        if !is_within(&base_ndn, dsa.suffix_ndn()) {
            return Err(OpError::new(
                LdapResultCode::NoSuchObject,
                format!(
                    "{base} is outside the naming context {}",
                    dsa.settings().suffix
                ),
            ));
        }
        // A disabled account is out of the address book: not even a base to search from
        // (for administrators, existence is enough; for others one read tells both).
        let visible = if ctx.grant.is_admin() {
            reader.exists(&base_ndn)?
        } else {
            reader
                .entry(&base_ndn)?
                .is_some_and(|(_, e)| !crate::dsa::access::is_disabled(&e))
        };
        if !visible {
            return Err(no_such_object(&reader, &base));
        }
    }

    // One identity's limits, whichever way it reads: plain, paged, sorted or VLV.
    let limits = dsa.search_limits(&ctx.grant);
    let mut sender = Sender {
        reader: &reader,
        schema,
        marker: dsa.settings().insecure_marker.as_deref(),
        sel: &sel,
        limit: size_limit(&limits, req.size_limit),
        whole_limit: size_limit(&limits, req.size_limit),
        page: 0,
        server_cap: limits.size_limit,
        work_limit: limits.work_limit,
        sent: 0,
        emit,
        stop: None,
        started: Instant::now(),
        budget: ReadBudget {
            dsa,
            grant: &ctx.grant,
            per_minute: limits.read_budget_per_minute,
        },
    };
    let query = Query {
        base_ndn: &base_ndn,
        scope: scope_of(&req.scope),
        filter: &filter,
        hide_disabled: !ctx.grant.is_admin(),
    };
    let budget = Budget {
        deadline: Some(Instant::now() + time_limit(&limits, req.time_limit)),
        cancelled: Some(abandoned),
        work_limit: limits.work_limit,
    };
    let mut search = reader.search(query, budget);
    let controls = &req.controls;
    if controls.vlv.is_some() && controls.paged.is_some() {
        return Err(OpError::new(
            LdapResultCode::UnwillingToPerform,
            "paged results and virtual list view cannot be combined",
        ));
    }
    if let Some(sort) = &controls.sort {
        return sort::sorted(&mut sender, &mut search, req, ctx, sort, paging, &base_ndn);
    }
    if controls.vlv.is_some() {
        return Ok(sort::vlv_without_sort(&reader));
    }
    if let Some(p) = &controls.paged {
        return paging::paged(&mut sender, &mut search, req, ctx, p, paging, None);
    }
    sender.stream(&mut search);
    sender.finish(&mut search, Vec::new())
}
