//! Search (RFC 4511 §4.5), the root DSE (RFC 4512 §5.1) and the subschema entry (§4.2).
//!
//! The index proposes candidates (or the scope is scanned), each candidate is read from the
//! store, checked against the scope and the compiled filter, and streamed to the client as soon
//! as it matches. Size and time limits are the smaller of the client's and the server's; on
//! reaching one, the entries sent so far stand and the result says which limit stopped it.
//! Abandon is checked between candidates.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3_proto::proto::{
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry,
    LdapSearchScope,
};

use super::{no_such_object, parse_dn, success, OpError, OpResult};
use crate::directory::access::Identity;
use crate::directory::dn::{is_within, Dn};
use crate::directory::entry::{AttrSource, Entry};
use crate::directory::filter::{compile, Filter, FilterError, Visibility};
use crate::directory::schema::{ClassKind, Schema};
use crate::dsa::Dsa;
use crate::index::CandidateOutcome;
use crate::store::codec::{self, EntryView, ValueIter};
use crate::store::EntryId;
use crate::store::Record;

pub const SUBSCHEMA_DN: &str = "cn=Subschema";
pub const VENDOR_NAME: &str = "ONE Pages";
pub const WHOAMI_OID: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";
pub const MANAGE_DSA_IT_OID: &str = "2.16.840.1.113730.3.4.2";

/// Controls the server implements, advertised in the root DSE.
pub const SUPPORTED_CONTROLS: &[&str] = &[
    MANAGE_DSA_IT_OID,
    "1.2.840.113556.1.4.319",
    "1.2.840.113556.1.4.473",
    "2.16.840.1.113730.3.4.9",
];
pub const SUPPORTED_EXTENSIONS: &[&str] = &[WHOAMI_OID, PASSWORD_MODIFY_OID];
/// All operational attributes (`+`), absolute true and false filters (`(&)`, `(|)`).
pub const SUPPORTED_FEATURES: &[&str] = &["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"];

/// How a search ended.
#[derive(Debug, PartialEq)]
pub enum SearchEnd {
    Done(LdapResult, Vec<ResponseControl>),
    /// Abandoned, or the connection went away: nothing more is sent.
    Silent,
}

/// Simple Paged Results request (RFC 2696).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagedRequest {
    pub size: usize,
    pub cookie: Vec<u8>,
    pub critical: bool,
}

/// One key of a Server-Side Sort request (RFC 2891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub attr: String,
    pub ordering_rule: Option<String>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRequest {
    pub keys: Vec<SortKey>,
    pub critical: bool,
}

/// Where a Virtual List View window is anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlvTarget {
    /// 1-based offset, scaled by the client's idea of the list size (0 = unknown).
    Offset {
        offset: i64,
        content_count: i64,
    },
    GreaterOrEqual(Vec<u8>),
}

/// Virtual List View request (draft-ietf-ldapext-ldapv3-vlv-09).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlvRequest {
    pub before: usize,
    pub after: usize,
    pub target: VlvTarget,
    pub context: Option<Vec<u8>>,
    pub critical: bool,
}

/// The controls of a search request that change how it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchControls {
    pub paged: Option<PagedRequest>,
    pub sort: Option<SortRequest>,
    pub vlv: Option<VlvRequest>,
}

/// Response controls, encoded by the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseControl {
    Paged {
        size: usize,
        cookie: Vec<u8>,
    },
    Sort {
        result: u8,
        attr: Option<String>,
    },
    Vlv {
        target_position: usize,
        content_count: usize,
        result: u8,
        context: Option<Vec<u8>>,
    },
}

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
    pub types_only: bool,
    /// Stored attribute names already decided (name bytes, returned?): entries of a search
    /// repeat the same few names, so each is looked up in the schema once per search.
    decided: std::cell::RefCell<rustc_hash::FxHashMap<Box<[u8]>, bool>>,
}

impl Selection {
    pub fn new(schema: &Schema, attrs: &[String], types_only: bool) -> Selection {
        let mut sel = Selection {
            all_user: attrs.is_empty(),
            all_operational: false,
            named: Vec::new(),
            types_only,
            decided: std::cell::RefCell::new(rustc_hash::FxHashMap::default()),
        };
        for a in attrs {
            match a.trim() {
                "*" => sel.all_user = true,
                "+" => sel.all_operational = true,
                "1.1" => {}
                name => {
                    if let Some(id) = schema.attr_id(name) {
                        for sub in schema.with_subtypes(id) {
                            if let Some(at) = schema.attr_by_id(*sub) {
                                sel.named.push(at.name().to_ascii_lowercase());
                            }
                        }
                    } else {
                        // Unknown names are skipped (CLIENTS.md §1.4), but kept for computed ones.
                        sel.named.push(name.to_ascii_lowercase());
                    }
                }
            }
        }
        // "1.1" with other names: the names win (RFC 4511 §4.5.1.8).
        if attrs.len() == 1 && attrs.first().is_some_and(|a| a.trim() == "1.1") {
            sel.all_user = false;
        }
        sel
    }

    fn wants(&self, name: &str, operational: bool) -> bool {
        if self.named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return true;
        }
        if operational {
            self.all_operational
        } else {
            self.all_user
        }
    }

    /// Whether a stored attribute goes to the client (never a password), decided once per
    /// name and search.
    fn returns(&self, schema: &Schema, name: &[u8]) -> bool {
        if let Ok(decided) = self.decided.try_borrow() {
            if let Some(yes) = decided.get(name) {
                return *yes;
            }
        }
        let yes = std::str::from_utf8(name).is_ok_and(|name| {
            if name.eq_ignore_ascii_case("userPassword") {
                return false;
            }
            let operational = schema
                .attr(name)
                .is_some_and(|at| at.usage.is_operational());
            self.wants(name, operational)
        });
        if let Ok(mut decided) = self.decided.try_borrow_mut() {
            decided.insert(name.into(), yes);
        }
        yes
    }

    fn is_empty_request(&self) -> bool {
        self.all_user && self.named.is_empty() && !self.all_operational
    }
}

fn attribute(name: &str, values: Vec<Vec<u8>>, types_only: bool) -> LdapPartialAttribute {
    LdapPartialAttribute {
        atype: name.to_string(),
        vals: if types_only { Vec::new() } else { values },
    }
}

/// The entry as the client sees it: selected attributes, never a password, computed
/// operational attributes on request. Read in place: only the selected values are copied.
fn computed<'v>(name: &'static str, value: Cow<'v, [u8]>, types_only: bool) -> FoundAttribute<'v> {
    FoundAttribute {
        name: Cow::Borrowed(name.as_bytes()),
        values: FoundValues::List(if types_only { Vec::new() } else { vec![value] }),
    }
}

pub fn render<'v, 'd: 'v>(dsa: &'d Dsa, view: &EntryView<'v>, sel: &Selection) -> Found<'v> {
    let schema = &dsa.schema;
    let mut attributes = Vec::with_capacity(view.attrs.len() + 2);
    let marker: &'v [u8] = dsa
        .settings
        .insecure_marker
        .as_deref()
        .filter(|_| {
            view.get("oneMailSecure")
                .is_some_and(|a| a.values().any(|v| v == b"FALSE"))
        })
        .map_or(b"", str::as_bytes);
    for a in &view.attrs {
        let name = a.name;
        if !sel.returns(schema, name) {
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
            name: Cow::Borrowed(name),
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
        if let Some(c) = structural_class(schema, view) {
            attributes.push(computed(
                "structuralObjectClass",
                Cow::Owned(c.into_bytes()),
                sel.types_only,
            ));
        }
    }
    if sel.wants("hasSubordinates", true) {
        let has = dsa.store.has_children(view.ndn).unwrap_or(false);
        let v = if has { "TRUE" } else { "FALSE" };
        attributes.push(computed(
            "hasSubordinates",
            Cow::Borrowed(v.as_bytes()),
            sel.types_only,
        ));
    }
    Found {
        dn: Cow::Borrowed(view.dn),
        attributes,
    }
}

/// The most specific structural class of an entry.
fn structural_class<E: AttrSource + ?Sized>(schema: &Schema, entry: &E) -> Option<String> {
    let names: Vec<String> = entry
        .values_of("objectClass")
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect();
    names
        .iter()
        .filter(|n| {
            schema
                .class(n)
                .is_some_and(|c| c.kind == ClassKind::Structural)
        })
        .max_by_key(|n| schema.class_chain(n).len())
        .cloned()
}

/// The root DSE (RFC 4512 §5.1).
pub fn root_dse(dsa: &Dsa) -> Entry {
    let schema = &dsa.schema;
    let mut e = Entry::new(String::new(), String::new());
    let strs = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    e.add_values(schema, "objectClass", strs(&["top", "extensibleObject"]));
    e.add_values(
        schema,
        "namingContexts",
        vec![dsa.settings.suffix.clone().into_bytes()],
    );
    e.add_values(schema, "subschemaSubentry", strs(&[SUBSCHEMA_DN]));
    e.add_values(schema, "supportedLDAPVersion", strs(&["3"]));
    e.add_values(schema, "supportedControl", strs(SUPPORTED_CONTROLS));
    e.add_values(schema, "supportedExtension", strs(SUPPORTED_EXTENSIONS));
    e.add_values(schema, "supportedFeatures", strs(SUPPORTED_FEATURES));
    e.add_values(schema, "vendorName", strs(&[VENDOR_NAME]));
    e.add_values(
        schema,
        "vendorVersion",
        strs(&[concat!("ONE Pages ", env!("CARGO_PKG_VERSION"))]),
    );
    e
}

/// The subschema subentry, built from the loaded schema files.
pub fn subschema(dsa: &Dsa) -> Entry {
    let schema = &dsa.schema;
    let mut e = Entry::new(SUBSCHEMA_DN.into(), "cn=subschema".into());
    let bytes = |s: &str| s.as_bytes().to_vec();
    e.add_values(
        schema,
        "objectClass",
        vec![bytes("top"), bytes("subschema")],
    );
    e.add_values(schema, "cn", vec![bytes("Subschema")]);
    let defs = |it: Vec<String>| it.into_iter().map(String::into_bytes).collect::<Vec<_>>();
    e.add_values(
        schema,
        "ldapSyntaxes",
        defs(schema.syntax_definitions().map(str::to_string).collect()),
    );
    e.add_values(
        schema,
        "matchingRules",
        defs(
            schema
                .matching_rule_definitions()
                .map(str::to_string)
                .collect(),
        ),
    );
    e.add_values(
        schema,
        "attributeTypes",
        defs(
            schema
                .attribute_types()
                .iter()
                .map(|a| a.definition.clone())
                .collect(),
        ),
    );
    e.add_values(
        schema,
        "objectClasses",
        defs(
            schema
                .object_classes()
                .iter()
                .map(|c| c.definition.clone())
                .collect(),
        ),
    );
    e
}

fn size_limit(dsa: &Dsa, who: &Identity, requested: i32) -> usize {
    let client = usize::try_from(requested).unwrap_or(0);
    // Administrators dump the directory; everyone else gets the server's cap.
    let server = if who.is_admin() {
        0
    } else {
        dsa.settings.limits.size_limit
    };
    match (client, server) {
        (0, s) => s,
        (c, 0) => c,
        (c, s) => c.min(s),
    }
}

fn time_limit(dsa: &Dsa, requested: i32) -> Duration {
    let server = dsa.settings.limits.time_limit;
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

/// Runs a search, calling `emit` for every entry returned. `paging` holds this connection's
/// paged-results cursors.
pub fn search(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapSearchRequest,
    controls: &SearchControls,
    paging: &Mutex<PagedSearches>,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    match run(dsa, who, req, controls, paging, abandoned, emit) {
        Ok(end) => end,
        Err(e) => SearchEnd::Done(e.into_result(), Vec::new()),
    }
}

/// A search without controls (tests, the recipient check).
pub fn simple_search(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapSearchRequest,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    let paging = Mutex::new(PagedSearches::default());
    search(
        dsa,
        who,
        req,
        &SearchControls::default(),
        &paging,
        abandoned,
        emit,
    )
}

fn done(result: LdapResult) -> OpResult<SearchEnd> {
    Ok(SearchEnd::Done(result, Vec::new()))
}

#[allow(clippy::too_many_arguments)]
fn run(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapSearchRequest,
    controls: &SearchControls,
    paging: &Mutex<PagedSearches>,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> OpResult<SearchEnd> {
    let schema = &dsa.schema;
    let base = parse_dn(&req.base)?;
    let base_ndn = base.normalize(schema);
    let visibility = Visibility {
        can_read_passwords: false,
    };
    let filter = compile(&req.filter, schema, dsa.settings.limits.filter, visibility).map_err(
        |e| match e {
            FilterError::TooDeep(_) | FilterError::TooLarge(_) => {
                OpError::new(LdapResultCode::UnwillingToPerform, e.to_string())
            }
        },
    )?;
    let sel = Selection::new(schema, &req.attrs, req.typesonly);

    // The root DSE and the subschema entry are readable before binding (discovery).
    if base.is_root() && req.scope == LdapSearchScope::Base {
        let dse = root_dse(dsa);
        if filter.matches(&dse, schema) {
            let shown = if sel.is_empty_request() {
                Selection {
                    all_user: true,
                    all_operational: true,
                    named: Vec::new(),
                    types_only: sel.types_only,
                    decided: std::cell::RefCell::new(rustc_hash::FxHashMap::default()),
                }
            } else {
                sel
            };
            let _ = emit(&Found::of(&render_plain(&dse, &shown, schema)));
        }
        return done(success());
    }
    if base_ndn == "cn=subschema" {
        if req.scope == LdapSearchScope::Base || req.scope == LdapSearchScope::Subtree {
            let sub = subschema(dsa);
            if filter.matches(&sub, schema) {
                let _ = emit(&Found::of(&render_plain(&sub, &sel, schema)));
            }
        }
        return done(success());
    }

    super::require_reader(dsa, who)?;
    if !base.is_root() {
        if !is_within(&base_ndn, &dsa.suffix_ndn) {
            return Err(OpError {
                code: LdapResultCode::NoSuchObject,
                message: format!(
                    "{base} is outside the naming context {}",
                    dsa.settings.suffix
                ),
                matched_dn: String::new(),
            });
        }
        if dsa.store.id_of(&base_ndn)?.is_none() {
            return Err(no_such_object(dsa, &base));
        }
    }

    let limit = size_limit(dsa, who, req.sizelimit);
    let mut run = Runner {
        dsa,
        filter: &filter,
        sel: &sel,
        limit,
        page: 0,
        deadline: Instant::now() + time_limit(dsa, req.timelimit),
        abandoned,
        emit,
        sent: 0,
        examined: 0,
        domains: dsa.secure_domains(),
        filter_reads_security: filter.reads("oneMailSecure"),
        started: Instant::now(),
        stop: None,
        scope: Scope::new(&base_ndn, &req.scope),
    };

    if controls.vlv.is_some() && controls.paged.is_some() {
        return Err(OpError::new(
            LdapResultCode::UnwillingToPerform,
            "paged results and virtual list view cannot be combined",
        ));
    }
    if let Some(sort) = &controls.sort {
        let keys = match resolve_sort(schema, sort) {
            Ok(k) => k,
            Err((code, attr)) => {
                let response = ResponseControl::Sort {
                    result: code,
                    attr: Some(attr.clone()),
                };
                if sort.critical || controls.vlv.is_some() {
                    let mut r = OpError::new(
                        LdapResultCode::UnavailableCriticalExtension,
                        format!("cannot sort on '{attr}'"),
                    )
                    .into_result();
                    let mut ctrls = vec![response];
                    if controls.vlv.is_some() {
                        r.code = LdapResultCode::VirtualListViewError;
                        ctrls.push(vlv_response(0, 0, VLV_UNWILLING, dsa));
                    }
                    return Ok(SearchEnd::Done(r, ctrls));
                }
                // Non-critical: RFC 2891 §1.2 says return the entries unsorted.
                let end = stream(&mut run, req.scope.clone(), &base_ndn)?;
                return Ok(with_control(end, response));
            }
        };
        let view = sorted_view(&mut run, req, &base_ndn, &keys)?;
        let Some(view) = view else {
            return run.finish(Vec::new());
        };
        let sort_ok = ResponseControl::Sort {
            result: 0,
            attr: None,
        };
        if let Some(vlv) = &controls.vlv {
            return vlv_window(&mut run, &view, vlv, &keys, sort_ok);
        }
        if let Some(p) = &controls.paged {
            let ids: Vec<EntryId> = view.iter().map(|(_, id)| *id).collect();
            let end = paged(&mut run, req, who, p, paging, Some(ids))?;
            return Ok(with_control(end, sort_ok));
        }
        for (_, id) in view.iter() {
            if run.offer(*id, None).is_break() {
                break;
            }
        }
        return run.finish(vec![sort_ok]);
    }
    if controls.vlv.is_some() {
        let r = LdapResult {
            code: LdapResultCode::VirtualListViewError,
            matcheddn: String::new(),
            message: "virtual list view needs a server-side sort control".into(),
            referral: Vec::new(),
        };
        return Ok(SearchEnd::Done(
            r,
            vec![vlv_response(0, 0, VLV_SORT_CONTROL_MISSING, dsa)],
        ));
    }
    if let Some(p) = &controls.paged {
        return paged(&mut run, req, who, p, paging, None);
    }
    stream(&mut run, req.scope.clone(), &base_ndn)
}

fn with_control(end: SearchEnd, c: ResponseControl) -> SearchEnd {
    match end {
        SearchEnd::Done(r, mut ctrls) => {
            ctrls.push(c);
            SearchEnd::Done(r, ctrls)
        }
        SearchEnd::Silent => SearchEnd::Silent,
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

/// Candidates whose records a search reads at once (small: a search limited to a few entries
/// should not read many more).
const CANDIDATE_BATCH: usize = 16;

/// Streams every match as it is found.
fn stream(run: &mut Runner<'_, '_>, scope: LdapSearchScope, base_ndn: &str) -> OpResult<SearchEnd> {
    let dsa = run.dsa;
    match scope {
        LdapSearchScope::Base => {
            if let Some(id) = dsa.store.id_of(base_ndn)? {
                let _ = run.offer(id, None);
            }
        }
        LdapSearchScope::OneLevel => {
            for id in one_level_ids(dsa, base_ndn)? {
                if run.offer(id, None).is_break() {
                    break;
                }
            }
        }
        LdapSearchScope::Subtree | LdapSearchScope::Children => {
            // Candidates are taken a few at a time, their records read under one lock.
            let mut ids: Vec<EntryId> = Vec::with_capacity(CANDIDATE_BATCH);
            let mut records = Vec::with_capacity(CANDIDATE_BATCH);
            let mut stopped = false;
            let outcome = dsa
                .index
                .candidates(&dsa.schema, run.filter, &mut |id| {
                    ids.push(id);
                    if ids.len() < CANDIDATE_BATCH {
                        return ControlFlow::Continue(());
                    }
                    let flow = run.offer_batch(&mut ids, &mut records);
                    stopped = flow.is_break();
                    flow
                })
                .map_err(super::internal)?;
            if !stopped {
                let _ = run.offer_batch(&mut ids, &mut records);
            }
            if outcome == CandidateOutcome::Scan {
                for item in dsa.store.scan_records_from(0) {
                    let (id, record) = item?;
                    if run.offer(id, Some(record)).is_break() {
                        break;
                    }
                }
            }
        }
    }
    run.finish(Vec::new())
}

fn one_level_ids(dsa: &Dsa, base_ndn: &str) -> OpResult<Vec<EntryId>> {
    Ok(if base_ndn.is_empty() {
        dsa.store.id_of(&dsa.suffix_ndn)?.into_iter().collect()
    } else {
        dsa.store.children(base_ndn)?
    })
}

/// Candidate ids in id order, or `None` when the whole store must be scanned.
fn candidate_ids(
    run: &Runner<'_, '_>,
    scope: &LdapSearchScope,
    base_ndn: &str,
) -> OpResult<Option<Vec<EntryId>>> {
    let dsa = run.dsa;
    let mut ids = match scope {
        LdapSearchScope::Base => dsa.store.id_of(base_ndn)?.into_iter().collect(),
        LdapSearchScope::OneLevel => one_level_ids(dsa, base_ndn)?,
        LdapSearchScope::Subtree | LdapSearchScope::Children => {
            let mut ids = Vec::new();
            let outcome = dsa
                .index
                .candidates(&dsa.schema, run.filter, &mut |id| {
                    ids.push(id);
                    ControlFlow::Continue(())
                })
                .map_err(super::internal)?;
            if outcome == CandidateOutcome::Scan {
                return Ok(None);
            }
            ids
        }
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

// ---------------------------------------------------------------------------------------------
// Simple Paged Results (RFC 2696)

/// Paged searches in progress on one connection, by cookie.
#[derive(Default)]
pub struct PagedSearches {
    states: HashMap<Vec<u8>, PagedState>,
}

/// Paged searches one connection may keep open at once.
const MAX_PAGED_PER_CONNECTION: usize = 16;

struct PagedState {
    /// Hash of the request and identity: a cookie only continues the search it came from.
    fingerprint: u64,
    cursor: Cursor,
    sent: usize,
}

enum Cursor {
    /// Scanning the store in id order after this id (constant memory).
    Scan { after: EntryId },
    /// Walking candidate ids from the index (or a sorted view).
    Ids { ids: Vec<EntryId>, pos: usize },
}

fn fingerprint(req: &LdapSearchRequest, who: &Identity) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.base.to_ascii_lowercase().hash(&mut h);
    format!(
        "{:?}|{:?}|{:?}|{}",
        req.scope, req.filter, req.attrs, req.typesonly
    )
    .hash(&mut h);
    who.dn().hash(&mut h);
    h.finish()
}

fn paged(
    run: &mut Runner<'_, '_>,
    req: &LdapSearchRequest,
    who: &Identity,
    p: &PagedRequest,
    paging: &Mutex<PagedSearches>,
    sorted: Option<Vec<EntryId>>,
) -> OpResult<SearchEnd> {
    let fp = fingerprint(req, who);
    let mut state = if p.cookie.is_empty() {
        None
    } else {
        let mut map = paging.lock().map_err(|_| super::internal("paging lock"))?;
        match map.states.remove(&p.cookie) {
            Some(s) if s.fingerprint == fp => Some(s),
            Some(_) => {
                return Err(OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    "the paged results cookie belongs to another search",
                ))
            }
            None => {
                return Err(OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    "unknown or expired paged results cookie",
                ))
            }
        }
    };
    let page_end = |run: &mut Runner<'_, '_>| {
        run.finish(vec![ResponseControl::Paged {
            size: 0,
            cookie: Vec::new(),
        }])
    };
    // A size of zero abandons the paged search (RFC 2696 §3).
    if p.size == 0 {
        return page_end(run);
    }
    let base_ndn = Dn::parse(&req.base)
        .map(|d| d.normalize(&run.dsa.schema))
        .unwrap_or_default();
    let mut st = match state.take() {
        Some(s) => s,
        None => PagedState {
            fingerprint: fp,
            cursor: match sorted {
                Some(ids) => Cursor::Ids { ids, pos: 0 },
                None => match candidate_ids(run, &req.scope, &base_ndn)? {
                    Some(ids) => Cursor::Ids { ids, pos: 0 },
                    None => Cursor::Scan { after: 0 },
                },
            },
            sent: 0,
        },
    };
    if run.limit > 0 {
        run.limit = run.limit.saturating_sub(st.sent);
        if run.limit == 0 {
            run.stop = Some(Stop::SizeLimit);
            return page_end(run);
        }
    }
    run.page = p.size;
    let exhausted = match &mut st.cursor {
        Cursor::Scan { after } => {
            let mut exhausted = true;
            for item in run.dsa.store.scan_records_from(*after) {
                let (id, record) = item?;
                *after = id;
                if run.offer(id, Some(record)).is_break() {
                    exhausted = false;
                    break;
                }
            }
            exhausted
        }
        Cursor::Ids { ids, pos } => {
            let mut exhausted = true;
            while let Some(id) = ids.get(*pos).copied() {
                *pos += 1;
                if run.offer(id, None).is_break() {
                    exhausted = false;
                    break;
                }
            }
            exhausted
        }
    };
    st.sent += run.sent;
    let page_full = run.stop == Some(Stop::PageFull);
    if page_full {
        run.stop = None;
    }
    if exhausted || !page_full {
        return page_end(run);
    }
    let mut cookie = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut cookie);
    {
        let mut map = paging.lock().map_err(|_| super::internal("paging lock"))?;
        if map.states.len() >= MAX_PAGED_PER_CONNECTION {
            return Err(OpError::new(
                LdapResultCode::AdminLimitExceeded,
                format!("at most {MAX_PAGED_PER_CONNECTION} paged searches at once per connection"),
            ));
        }
        map.states.insert(cookie.to_vec(), st);
    }
    run.finish(vec![ResponseControl::Paged {
        size: 0,
        cookie: cookie.to_vec(),
    }])
}

// ---------------------------------------------------------------------------------------------
// Server-Side Sort (RFC 2891) and Virtual List View

const VLV_SORT_CONTROL_MISSING: u8 = 60;
const VLV_OFFSET_RANGE_ERROR: u8 = 61;
const VLV_UNWILLING: u8 = 53;

/// A resolved sort key: canonical attribute names (with subtypes) and direction.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    names: Vec<String>,
    reverse: bool,
    numeric: bool,
}

fn resolve_sort(schema: &Schema, sort: &SortRequest) -> Result<Vec<ResolvedKey>, (u8, String)> {
    let mut out = Vec::new();
    for k in &sort.keys {
        let Some(id) = schema.attr_id(&k.attr) else {
            return Err((16, k.attr.clone()));
        };
        if k.attr.eq_ignore_ascii_case("userPassword") {
            return Err((50, k.attr.clone()));
        }
        if let Some(rule) = &k.ordering_rule {
            if schema.matching_rule(rule).is_none() {
                return Err((18, k.attr.clone()));
            }
        }
        let names = schema
            .with_subtypes(id)
            .iter()
            .filter_map(|i| schema.attr_by_id(*i))
            .map(|a| a.name().to_string())
            .collect();
        let numeric = schema
            .attr(&k.attr)
            .and_then(|a| a.equality)
            .is_some_and(|r| r == crate::directory::matching::Rule::Integer);
        out.push(ResolvedKey {
            names,
            reverse: k.reverse,
            numeric,
        });
    }
    Ok(out)
}

/// The collation key of a value as French and English readers expect a list: accents beside
/// their base letter and case ignored first, punctuation (hyphens, apostrophes, spaces) ignored
/// at the first level, then accents, then case, then the value itself as the last tie-break.
pub fn collation_key(value: &[u8], numeric: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(value);
    if numeric {
        if let Ok(n) = text.trim().parse::<i64>() {
            // Order-preserving bytes for signed integers.
            let biased = (n as i128 - i64::MIN as i128) as u128;
            return (biased as u64).to_be_bytes().to_vec();
        }
    }
    let folded = crate::directory::matching::fold(&text);
    let primary: String = folded.chars().filter(|c| c.is_alphanumeric()).collect();
    let mut key = primary.into_bytes();
    key.push(0);
    key.extend(folded.as_bytes());
    key.push(0);
    key.extend(text.to_lowercase().as_bytes());
    key.push(0);
    key.extend(text.as_bytes());
    key
}

use crate::dsa::SortValue;

fn entry_sort_key(entry: &Entry, keys: &[ResolvedKey]) -> SortValue {
    keys.iter()
        .map(|k| {
            // RFC 2891: a multi-valued attribute sorts by its least value.
            let mut best: Option<Vec<u8>> = None;
            for n in &k.names {
                for v in entry.values(n) {
                    let ck = collation_key(v, k.numeric);
                    let better = match &best {
                        None => true,
                        Some(b) => (ck < *b) != k.reverse && ck != *b,
                    };
                    if better {
                        best = Some(ck);
                    }
                }
            }
            best
        })
        .collect()
}

fn compare_keys(a: &SortValue, b: &SortValue, keys: &[ResolvedKey]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (
            a.get(i).and_then(Option::as_ref),
            b.get(i).and_then(Option::as_ref),
        );
        // Entries without the attribute come last, whatever the direction.
        let ord = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                if k.reverse {
                    y.cmp(x)
                } else {
                    x.cmp(y)
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// The sorted list of matches, from the cache when the directory has not changed since.
fn sorted_view(
    run: &mut Runner<'_, '_>,
    req: &LdapSearchRequest,
    base_ndn: &str,
    keys: &[ResolvedKey],
) -> OpResult<Option<Arc<SortedView>>> {
    let dsa = run.dsa;
    let cache_key = format!(
        "{base_ndn}|{:?}|{:?}|{:?}",
        req.scope,
        req.filter,
        keys.iter()
            .map(|k| (&k.names, k.reverse))
            .collect::<Vec<_>>()
    );
    let generation = dsa.store.generation();
    if dsa.index.dirty_count() == 0 {
        if let Some(v) = dsa.views.get(&cache_key, generation) {
            return Ok(Some(v));
        }
    }
    let mut items: Vec<(SortValue, EntryId)> = Vec::new();
    let mut collect =
        |run: &mut Runner<'_, '_>, id: EntryId, entry: Option<Record>| -> ControlFlow<()> {
            match run.check(id, entry) {
                Ok(Some(e)) => {
                    items.push((entry_sort_key(&e, keys), id));
                    ControlFlow::Continue(())
                }
                Ok(None) => ControlFlow::Continue(()),
                Err(()) => ControlFlow::Break(()),
            }
        };
    match candidate_ids(run, &req.scope, base_ndn)? {
        Some(ids) => {
            for id in ids {
                if collect(run, id, None).is_break() {
                    break;
                }
            }
        }
        None => {
            for item in dsa.store.scan_records_from(0) {
                let (id, record) = item?;
                if collect(run, id, Some(record)).is_break() {
                    break;
                }
            }
        }
    }
    if run.stop.is_some() {
        return Ok(None);
    }
    items.sort_by(|a, b| compare_keys(&a.0, &b.0, keys).then(a.1.cmp(&b.1)));
    let view = Arc::new(items);
    if dsa.store.generation() == generation {
        dsa.views.put(cache_key, generation, Arc::clone(&view));
    }
    Ok(Some(view))
}

pub use crate::dsa::SortedView;

fn vlv_response(
    target_position: usize,
    content_count: usize,
    result: u8,
    dsa: &Dsa,
) -> ResponseControl {
    ResponseControl::Vlv {
        target_position,
        content_count,
        result,
        context: Some(dsa.store.generation().to_be_bytes().to_vec()),
    }
}

fn vlv_window(
    run: &mut Runner<'_, '_>,
    view: &SortedView,
    vlv: &VlvRequest,
    keys: &[ResolvedKey],
    sort_ok: ResponseControl,
) -> OpResult<SearchEnd> {
    let n = view.len();
    let target = match &vlv.target {
        VlvTarget::Offset {
            offset,
            content_count,
        } => {
            let offset = usize::try_from(*offset).unwrap_or(0);
            let cc = usize::try_from(*content_count).unwrap_or(0);
            // Scale the client's position to the real list (draft §5).
            let pos = if cc == 0 || cc == n || n == 0 {
                offset
            } else {
                ((offset as f64) * (n as f64) / (cc as f64)).round() as usize
            };
            if n > 0 && (pos == 0 || pos > n) {
                let r = LdapResult {
                    code: LdapResultCode::VirtualListViewError,
                    matcheddn: String::new(),
                    message: format!("offset {offset} is outside the list of {n} entries"),
                    referral: Vec::new(),
                };
                return Ok(SearchEnd::Done(
                    r,
                    vec![sort_ok, vlv_response(0, n, VLV_OFFSET_RANGE_ERROR, run.dsa)],
                ));
            }
            pos.max(1) - 1
        }
        VlvTarget::GreaterOrEqual(value) => {
            let first = keys.first();
            let probe = collation_key(value, first.is_some_and(|k| k.numeric));
            let reverse = first.is_some_and(|k| k.reverse);
            view.iter()
                .position(|(k, _)| match k.first().and_then(Option::as_ref) {
                    Some(v) => {
                        if reverse {
                            *v <= probe
                        } else {
                            *v >= probe
                        }
                    }
                    None => true,
                })
                .unwrap_or(n)
        }
    };
    let start = target.saturating_sub(vlv.before);
    let end = target.saturating_add(vlv.after).min(n.saturating_sub(1));
    // The window is what the client asked for; the server's size cap still bounds it.
    run.limit = 0;
    let cap = if run.dsa.settings.limits.size_limit > 0 {
        run.dsa.settings.limits.size_limit
    } else {
        usize::MAX
    };
    if n > 0 {
        for (_, id) in view.iter().take(end + 1).skip(start).take(cap) {
            if run.offer(*id, None).is_break() {
                break;
            }
        }
    }
    let position = if n == 0 { 0 } else { target + 1 };
    run.finish(vec![sort_ok, vlv_response(position, n, 0, run.dsa)])
}

// ---------------------------------------------------------------------------------------------

fn render_plain(entry: &Entry, sel: &Selection, schema: &Schema) -> LdapSearchResultEntry {
    let attributes = entry
        .attrs
        .iter()
        .filter(|a| {
            let operational = schema
                .attr(&a.name)
                .is_some_and(|at| at.usage.is_operational());
            sel.wants(&a.name, operational)
        })
        .map(|a| attribute(&a.name, a.values.clone(), sel.types_only))
        .collect();
    LdapSearchResultEntry {
        dn: entry.dn.clone(),
        attributes,
    }
}

#[derive(Debug, PartialEq)]
enum Stop {
    SizeLimit,
    TimeLimit,
    Abandoned,
    /// The page of a paged search is full (not an error).
    PageFull,
    Failed(String),
}

/// Which entries the search scope reaches (checked on every candidate).
struct Scope {
    base: String,
    kind: LdapSearchScope,
}

impl Scope {
    fn new(base_ndn: &str, kind: &LdapSearchScope) -> Scope {
        Scope {
            base: base_ndn.to_string(),
            kind: kind.clone(),
        }
    }

    fn contains(&self, ndn: &str) -> bool {
        match self.kind {
            LdapSearchScope::Base => ndn == self.base,
            LdapSearchScope::OneLevel => {
                if self.base.is_empty() {
                    !ndn.is_empty() && crate::directory::dn::parent_of(ndn).is_empty()
                } else {
                    super::is_child_of(ndn, &self.base)
                }
            }
            LdapSearchScope::Subtree => is_within(ndn, &self.base),
            LdapSearchScope::Children => ndn != self.base && is_within(ndn, &self.base),
        }
    }
}

struct Runner<'a, 'e> {
    dsa: &'a Dsa,
    filter: &'a Filter,
    sel: &'a Selection,
    /// Size limit of the whole search (0 = none).
    limit: usize,
    /// Entries per page of a paged search (0 = not paged).
    page: usize,
    deadline: Instant,
    abandoned: &'a AtomicBool,
    emit: &'a mut Emit<'e>,
    sent: usize,
    /// Candidates read and checked (for the debug log: how well the index narrowed).
    examined: usize,
    /// The secure-domain registry as it was when the search began.
    domains: Arc<std::collections::BTreeSet<String>>,
    /// Whether the filter reads `oneMailSecure` (computed before filtering if so).
    filter_reads_security: bool,
    started: Instant,
    stop: Option<Stop>,
    scope: Scope,
}

impl Runner<'_, '_> {
    /// Abandon and time checks before each candidate; `Err` means stop.
    fn pace(&mut self) -> Result<(), ()> {
        if self.abandoned.load(Ordering::Relaxed) {
            self.stop = Some(Stop::Abandoned);
            return Err(());
        }
        if Instant::now() >= self.deadline {
            self.stop = Some(Stop::TimeLimit);
            return Err(());
        }
        self.examined += 1;
        Ok(())
    }

    /// The record of a candidate (read now unless the caller has it); `Ok(None)` when the
    /// entry has gone.
    fn fetch(&mut self, id: EntryId, record: Option<Record>) -> Result<Option<Record>, ()> {
        match record {
            Some(r) => Ok(Some(r)),
            None => self.dsa.store.record(id).map_err(|e| {
                self.stop = Some(Stop::Failed(e.to_string()));
            }),
        }
    }

    /// Reads a candidate in place and decides whether it is in scope and matches.
    fn view<'r>(&mut self, record: &'r [u8]) -> Result<Option<EntryView<'r>>, ()> {
        let mut view = codec::view(record).map_err(|e| {
            self.stop = Some(Stop::Failed(e.to_string()));
        })?;
        if !self.scope.contains(view.ndn) {
            return Ok(None);
        }
        // The computed attribute is added before filtering only when the filter reads it;
        // otherwise only entries that match pay for it.
        if self.filter_reads_security {
            self.dsa.decorate_view(&mut view, &self.domains);
        }
        if !self.filter.matches(&view, &self.dsa.schema) {
            return Ok(None);
        }
        if !self.filter_reads_security {
            self.dsa.decorate_view(&mut view, &self.domains);
        }
        Ok(Some(view))
    }

    /// A matching candidate as an owned entry (for sorting); `Err` means stop.
    fn check(&mut self, id: EntryId, record: Option<Record>) -> Result<Option<Entry>, ()> {
        self.pace()?;
        let Some(record) = self.fetch(id, record)? else {
            return Ok(None);
        };
        let entry = self.view(&record)?.map(|v| v.to_entry());
        Ok(entry)
    }

    /// Considers the candidates in `ids` (emptied), reading their records at once.
    fn offer_batch(
        &mut self,
        ids: &mut Vec<EntryId>,
        records: &mut Vec<(EntryId, Option<Record>)>,
    ) -> ControlFlow<()> {
        records.clear();
        let read = self.dsa.store.records_into(ids, records);
        ids.clear();
        if let Err(e) = read {
            self.stop = Some(Stop::Failed(e.to_string()));
            return ControlFlow::Break(());
        }
        touch(records.iter().filter_map(|(_, r)| r.as_deref()));
        for (id, record) in records.drain(..) {
            self.offer(id, record)?;
        }
        ControlFlow::Continue(())
    }

    /// Considers one candidate; `Break` once the search must stop.
    fn offer(&mut self, id: EntryId, record: Option<Record>) -> ControlFlow<()> {
        if self.pace().is_err() {
            return ControlFlow::Break(());
        }
        let record = match self.fetch(id, record) {
            Ok(Some(r)) => r,
            Ok(None) => return ControlFlow::Continue(()),
            Err(()) => return ControlFlow::Break(()),
        };
        let view = match self.view(&record) {
            Ok(Some(v)) => v,
            Ok(None) => return ControlFlow::Continue(()),
            Err(()) => return ControlFlow::Break(()),
        };
        if self.limit > 0 && self.sent >= self.limit {
            self.stop = Some(Stop::SizeLimit);
            return ControlFlow::Break(());
        }
        let rendered = render(self.dsa, &view, self.sel);
        if (self.emit)(&rendered).is_break() {
            self.stop = Some(Stop::Abandoned);
            return ControlFlow::Break(());
        }
        self.sent += 1;
        if self.page > 0 && self.sent >= self.page {
            self.stop = Some(Stop::PageFull);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn finish(&mut self, controls: Vec<ResponseControl>) -> OpResult<SearchEnd> {
        tracing::debug!(
            examined = self.examined,
            sent = self.sent,
            stop = ?self.stop,
            micros = self.started.elapsed().as_micros(),
            "search finished"
        );
        let end = |r: LdapResult| Ok(SearchEnd::Done(r, controls));
        match self.stop.take() {
            None | Some(Stop::PageFull) => end(success()),
            Some(Stop::SizeLimit) => end(result(
                LdapResultCode::SizeLimitExceeded,
                &format!("size limit of {} entries reached", self.limit),
            )),
            Some(Stop::TimeLimit) => end(result(
                LdapResultCode::TimeLimitExceeded,
                "time limit reached",
            )),
            Some(Stop::Abandoned) => Ok(SearchEnd::Silent),
            Some(Stop::Failed(e)) => Err(super::internal(e)),
        }
    }
}
