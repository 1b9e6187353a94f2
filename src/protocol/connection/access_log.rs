//! The access log's descriptions of requests and results (slapd `stats`-like lines).

use super::dispatch::op_name;
use super::*;

/// `SEARCH base=... scope=... filter=... attrs=...` for the access log.
pub(super) fn search_summary(search: &SearchRequest) -> String {
    let scope = match search.scope {
        ldap3_proto::proto::LdapSearchScope::Base => "base",
        ldap3_proto::proto::LdapSearchScope::OneLevel => "one",
        ldap3_proto::proto::LdapSearchScope::Subtree => "sub",
        ldap3_proto::proto::LdapSearchScope::Children => "children",
    };
    format!(
        "SEARCH base={:?} scope={scope} filter={:?} attrs={:?}",
        search.base,
        crate::directory::filter_text::filter_to_text(&search.filter),
        search.attrs.join(" ")
    )
}

pub(super) fn search_line(
    summary: Option<&str>,
    result: &LdapResult,
    entries: usize,
    started: Instant,
) -> String {
    format!(
        "{} result={} entries={entries} ms={:.3}",
        summary.unwrap_or("SEARCH"),
        result.code.clone() as i32,
        started.elapsed().as_secs_f64() * 1000.0
    )
}

/// The access log's description of an operation other than search and bind.
pub(super) fn other_summary(op_tag: u64, op: &LdapOp) -> String {
    let name = op_name(op_tag).to_ascii_uppercase();
    match op {
        LdapOp::CompareRequest(r) => format!("{name} dn={:?} attr={:?}", r.dn, r.atype),
        LdapOp::ExtendedRequest(r) => format!("{name} oid={}", r.name),
        other => match ops::audit::describe(other) {
            Some(w) => format!(
                "{name} dn={:?} attrs={:?}",
                w.target,
                w.attributes.join(" ")
            ),
            None => name,
        },
    }
}

/// The result inside a response.
pub(super) fn result_of(response: &LdapOp) -> Option<&LdapResult> {
    match response {
        LdapOp::AddResponse(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => Some(r),
        LdapOp::ExtendedResponse(e) => Some(&e.res),
        _ => None,
    }
}
