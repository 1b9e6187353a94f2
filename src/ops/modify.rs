//! Modify (RFC 4511 §4.6, RFC 4525 increment): administrators change attributes; a person may
//! change the self-service attributes of its own entry.
//!
//! Changes apply in order to a copy of the entry (in the writer); the result must pass the
//! schema checks as a whole, or nothing is written.

use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType};

use super::context::RequestContext;
use super::{parse_dn, write, OpResult};
use crate::dsa::{Change, Dsa, Edit, EditKind};

pub fn modify(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapModifyRequest) -> OpResult<()> {
    super::writer(dsa, ctx)?;
    let dn = parse_dn(&req.dn)?;
    let edits = req
        .changes
        .iter()
        .map(|c| Edit {
            kind: match c.operation {
                LdapModifyType::Add => EditKind::Add,
                LdapModifyType::Delete => EditKind::Delete,
                LdapModifyType::Replace => EditKind::Replace,
                LdapModifyType::Increment => EditKind::Increment,
            },
            attr: c.modification.atype.clone(),
            values: c.modification.vals.clone(),
        })
        .collect();
    write(dsa, ctx, Change::Modify { dn, edits })
}
