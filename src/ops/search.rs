//! Search (RFC 4511 §4.5), the root DSE (RFC 4512 §5.1) and the subschema entry (§4.2).
//!
//! The index proposes candidates (or the scope is scanned), each candidate is read from the
//! store, checked against the scope and the compiled filter, and streamed to the client as soon
//! as it matches. Size and time limits are the smaller of the client's and the server's; on
//! reaching one, the entries sent so far stand and the result says which limit stopped it.
//! Abandon is checked between candidates.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ldap3_proto::proto::{
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry,
    LdapSearchScope,
};

use super::{no_such_object, parse_dn, success, OpError, OpResult};
use crate::directory::access::{AccessPolicy, Identity};
use crate::directory::dn::is_within;
use crate::directory::entry::Entry;
use crate::directory::filter::{compile, Filter, FilterError, Visibility};
use crate::directory::schema::{ClassKind, Schema};
use crate::dsa::Dsa;
use crate::index::CandidateOutcome;
use crate::store::EntryId;

pub const SUBSCHEMA_DN: &str = "cn=Subschema";
pub const VENDOR_NAME: &str = "ONE Pages";
pub const WHOAMI_OID: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";
pub const MANAGE_DSA_IT_OID: &str = "2.16.840.1.113730.3.4.2";

/// Controls the server implements, advertised in the root DSE.
pub const SUPPORTED_CONTROLS: &[&str] = &[MANAGE_DSA_IT_OID];
pub const SUPPORTED_EXTENSIONS: &[&str] = &[WHOAMI_OID, PASSWORD_MODIFY_OID];
/// All operational attributes (`+`), absolute true and false filters (`(&)`, `(|)`).
pub const SUPPORTED_FEATURES: &[&str] = &["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"];

/// How a search ended.
#[derive(Debug, PartialEq)]
pub enum SearchEnd {
    Done(LdapResult),
    /// Abandoned, or the connection went away: nothing more is sent.
    Silent,
}

/// What the caller does with each matching entry; `Break` when the client is gone.
pub type Emit<'a> = dyn FnMut(LdapSearchResultEntry) -> ControlFlow<()> + 'a;

/// Which attributes a search returns.
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    /// Lower-case canonical names requested, subtypes included.
    named: Vec<String>,
    pub types_only: bool,
}

impl Selection {
    pub fn new(schema: &Schema, attrs: &[String], types_only: bool) -> Selection {
        let mut sel = Selection {
            all_user: attrs.is_empty(),
            all_operational: false,
            named: Vec::new(),
            types_only,
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
        let lower = name.to_ascii_lowercase();
        if self.named.contains(&lower) {
            return true;
        }
        if operational {
            self.all_operational
        } else {
            self.all_user
        }
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
/// operational attributes on request.
pub fn render(dsa: &Dsa, entry: &Entry, sel: &Selection) -> LdapSearchResultEntry {
    let schema = &dsa.schema;
    let mut attributes = Vec::with_capacity(entry.attrs.len() + 2);
    for a in &entry.attrs {
        if a.name.eq_ignore_ascii_case("userPassword") {
            continue;
        }
        let operational = schema
            .attr(&a.name)
            .is_some_and(|at| at.usage.is_operational());
        if sel.wants(&a.name, operational) {
            attributes.push(attribute(&a.name, a.values.clone(), sel.types_only));
        }
    }
    if sel.wants("entryDN", true) {
        attributes.push(attribute(
            "entryDN",
            vec![entry.dn.clone().into_bytes()],
            sel.types_only,
        ));
    }
    if sel.wants("subschemaSubentry", true) {
        attributes.push(attribute(
            "subschemaSubentry",
            vec![SUBSCHEMA_DN.as_bytes().to_vec()],
            sel.types_only,
        ));
    }
    if sel.wants("structuralObjectClass", true) {
        if let Some(c) = structural_class(schema, entry) {
            attributes.push(attribute(
                "structuralObjectClass",
                vec![c.into_bytes()],
                sel.types_only,
            ));
        }
    }
    if sel.wants("hasSubordinates", true) {
        let has = dsa.store.has_children(&entry.ndn).unwrap_or(false);
        let v = if has { "TRUE" } else { "FALSE" };
        attributes.push(attribute(
            "hasSubordinates",
            vec![v.as_bytes().to_vec()],
            sel.types_only,
        ));
    }
    LdapSearchResultEntry {
        dn: entry.dn.clone(),
        attributes,
    }
}

/// The most specific structural class of an entry.
fn structural_class(schema: &Schema, entry: &Entry) -> Option<String> {
    let names: Vec<String> = entry
        .values("objectClass")
        .iter()
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

/// Runs a search, calling `emit` for every entry returned.
pub fn search(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapSearchRequest,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> SearchEnd {
    match run(dsa, who, req, abandoned, emit) {
        Ok(end) => end,
        Err(e) => SearchEnd::Done(e.into_result()),
    }
}

fn run(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapSearchRequest,
    abandoned: &AtomicBool,
    emit: &mut Emit<'_>,
) -> OpResult<SearchEnd> {
    let schema = &dsa.schema;
    let base = parse_dn(&req.base)?;
    let base_ndn = base.normalize(schema);
    let visibility = Visibility {
        can_read_passwords: false,
    };
    let filter =
        compile(&req.filter, schema, dsa.settings.limits.filter, visibility).map_err(|e| {
            OpError::new(
                LdapResultCode::UnwillingToPerform,
                match e {
                    FilterError::TooDeep(_) | FilterError::TooLarge(_) => e.to_string(),
                },
            )
        })?;
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
                }
            } else {
                sel
            };
            let _ = emit(render_plain(&dse, &shown, schema));
        }
        return Ok(SearchEnd::Done(success()));
    }
    if base_ndn == "cn=subschema" {
        if req.scope == LdapSearchScope::Base || req.scope == LdapSearchScope::Subtree {
            let sub = subschema(dsa);
            if filter.matches(&sub, schema) {
                let _ = emit(render_plain(&sub, &sel, schema));
            }
        }
        return Ok(SearchEnd::Done(success()));
    }

    let policy = AccessPolicy {
        anonymous_read: dsa.settings.anonymous_read,
    };
    if !policy.may_read(who) {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "anonymous reading is not allowed: bind with your ONE ID username and password",
        ));
    }

    let limit = size_limit(dsa, who, req.sizelimit);
    let deadline = Instant::now() + time_limit(dsa, req.timelimit);
    let mut run = Runner {
        dsa,
        filter: &filter,
        sel: &sel,
        limit,
        deadline,
        abandoned,
        emit,
        sent: 0,
        stop: None,
        scope: None,
    };

    let in_suffix = is_within(&base_ndn, &dsa.suffix_ndn);
    if !base.is_root() {
        if !in_suffix {
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

    match req.scope {
        LdapSearchScope::Base => {
            if let Some((id, entry)) = dsa.store.get_by_ndn(&base_ndn)? {
                let _ = run.offer(id, Some(entry));
            }
        }
        LdapSearchScope::OneLevel => {
            let ids = if base.is_root() {
                dsa.store.id_of(&dsa.suffix_ndn)?.into_iter().collect()
            } else {
                dsa.store.children(&base_ndn)?
            };
            for id in ids {
                if run.offer(id, None).is_break() {
                    break;
                }
            }
        }
        LdapSearchScope::Subtree | LdapSearchScope::Children => {
            let children_only = req.scope == LdapSearchScope::Children;
            run.scope = Some((base_ndn.clone(), children_only));
            let outcome = dsa
                .index
                .candidates(schema, &filter, &mut |id| run.offer(id, None))
                .map_err(super::internal)?;
            if outcome == CandidateOutcome::Scan {
                for item in dsa.store.scan() {
                    let (id, entry) = item?;
                    if run.offer(id, Some(entry)).is_break() {
                        break;
                    }
                }
            }
        }
    }
    run.finish()
}

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
    Failed(String),
}

struct Runner<'a, 'e> {
    dsa: &'a Dsa,
    filter: &'a Filter,
    sel: &'a Selection,
    limit: usize,
    deadline: Instant,
    abandoned: &'a AtomicBool,
    emit: &'a mut Emit<'e>,
    sent: usize,
    stop: Option<Stop>,
    /// Subtree scope: the base key, and whether the base itself is excluded.
    scope: Option<(String, bool)>,
}

impl Runner<'_, '_> {
    /// Considers one candidate; `Break` once the search must stop.
    fn offer(&mut self, id: EntryId, entry: Option<Entry>) -> ControlFlow<()> {
        if self.abandoned.load(Ordering::Relaxed) {
            self.stop = Some(Stop::Abandoned);
            return ControlFlow::Break(());
        }
        if Instant::now() >= self.deadline {
            self.stop = Some(Stop::TimeLimit);
            return ControlFlow::Break(());
        }
        let entry = match entry {
            Some(e) => e,
            None => match self.dsa.store.get(id) {
                Ok(Some(e)) => e,
                Ok(None) => return ControlFlow::Continue(()),
                Err(e) => {
                    self.stop = Some(Stop::Failed(e.to_string()));
                    return ControlFlow::Break(());
                }
            },
        };
        if let Some((base, children_only)) = &self.scope {
            if !is_within(&entry.ndn, base) || (*children_only && entry.ndn == *base) {
                return ControlFlow::Continue(());
            }
        }
        if !self.filter.matches(&entry, &self.dsa.schema) {
            return ControlFlow::Continue(());
        }
        if self.limit > 0 && self.sent >= self.limit {
            self.stop = Some(Stop::SizeLimit);
            return ControlFlow::Break(());
        }
        let rendered = render(self.dsa, &entry, self.sel);
        if (self.emit)(rendered).is_break() {
            self.stop = Some(Stop::Abandoned);
            return ControlFlow::Break(());
        }
        self.sent += 1;
        ControlFlow::Continue(())
    }

    fn finish(self) -> OpResult<SearchEnd> {
        Ok(match self.stop {
            None => SearchEnd::Done(success()),
            Some(Stop::SizeLimit) => SearchEnd::Done(result(
                LdapResultCode::SizeLimitExceeded,
                &format!("size limit of {} entries reached", self.limit),
            )),
            Some(Stop::TimeLimit) => SearchEnd::Done(result(
                LdapResultCode::TimeLimitExceeded,
                "time limit reached",
            )),
            Some(Stop::Abandoned) => SearchEnd::Silent,
            Some(Stop::Failed(e)) => return Err(super::internal(e)),
        })
    }
}
