//! What the audit trail records of operations other than binds (those are recorded by
//! [`super::bind`]): every write attempted (who, the operation, its target, the names of the
//! attributes it touched, the result code) and every operation refused for want of rights.
//! Attribute values are never recorded: a password or hash cannot reach the trail.

use ldap3_proto::proto::{LdapOp, LdapPasswordModifyRequest, LdapResult, LdapResultCode};
use serde_json::json;

use super::context::RequestContext;
use super::search::dse::PASSWORD_MODIFY_OID;
use crate::dsa::Dsa;

/// A write request, described before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub op: &'static str,
    pub target: String,
    pub attributes: Vec<String>,
}

/// The write an operation asks for (`None` for reads).
pub fn describe(op: &LdapOp) -> Option<WriteRecord> {
    let names = |it: &mut dyn Iterator<Item = &String>| {
        let mut v: Vec<String> = Vec::new();
        for n in it {
            if !v.iter().any(|m| m.eq_ignore_ascii_case(n)) {
                v.push(n.clone());
            }
        }
        v
    };
    match op {
        LdapOp::AddRequest(r) => Some(WriteRecord {
            op: "add",
            target: r.dn.clone(),
            attributes: names(&mut r.attributes.iter().map(|a| &a.atype)),
        }),
        LdapOp::ModifyRequest(r) => Some(WriteRecord {
            op: "modify",
            target: r.dn.clone(),
            attributes: names(&mut r.changes.iter().map(|c| &c.modification.atype)),
        }),
        LdapOp::DelRequest(dn) => Some(WriteRecord {
            op: "delete",
            target: dn.clone(),
            attributes: Vec::new(),
        }),
        LdapOp::ModifyDNRequest(r) => Some(WriteRecord {
            op: "modrdn",
            target: r.dn.clone(),
            attributes: Vec::new(),
        }),
        LdapOp::ExtendedRequest(r) if r.name == PASSWORD_MODIFY_OID => {
            let target = LdapPasswordModifyRequest::try_from(r)
                .ok()
                .and_then(|pm| pm.user_identity)
                .unwrap_or_default();
            Some(WriteRecord {
                op: "passwordModify",
                target,
                attributes: vec!["userPassword".into()],
            })
        }
        _ => None,
    }
}

/// Records a write and its result.
pub fn written(dsa: &Dsa, ctx: &RequestContext<'_>, record: &WriteRecord, result: &LdapResult) {
    if !dsa.audit().is_on() {
        return;
    }
    dsa.audit().record(
        "write",
        json!({
            "op": record.op,
            "who": ctx.grant.authz_id(),
            "target": record.target,
            "attributes": record.attributes,
            "code": result.code.clone() as i32,
            "message": result.message,
            "peer": ctx.peer,
            "transport": ctx.transport.name(),
            "request": ctx.request_id.to_string(),
        }),
    );
}

/// Whether a result is a refusal of access (what the trail records of reads).
pub fn is_refusal(code: &LdapResultCode) -> bool {
    matches!(
        code,
        LdapResultCode::InsufficentAccessRights
            | LdapResultCode::StrongerAuthRequired
            | LdapResultCode::ConfidentialityRequired
    )
}

/// Records an operation refused for want of rights.
pub fn refused(dsa: &Dsa, ctx: &RequestContext<'_>, op: &str, target: &str, result: &LdapResult) {
    if !dsa.audit().is_on() || !is_refusal(&result.code) {
        return;
    }
    dsa.audit().record(
        "refused",
        json!({
            "op": op,
            "who": ctx.grant.authz_id(),
            "target": target,
            "code": result.code.clone() as i32,
            "message": result.message,
            "peer": ctx.peer,
            "transport": ctx.transport.name(),
            "request": ctx.request_id.to_string(),
        }),
    );
}
