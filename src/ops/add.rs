//! Add (RFC 4511 §4.7): administrators create entries.

use ldap3_proto::proto::LdapAddRequest;

use super::context::RequestContext;
use super::{parse_dn, write, OpResult};
use crate::dsa::{Change, Dsa};

pub fn add(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapAddRequest) -> OpResult<()> {
    // Refused before the request is looked at when the grant cannot write at all.
    super::writer(dsa, ctx)?;
    let dn = parse_dn(&req.dn)?;
    let attrs = req
        .attributes
        .iter()
        .map(|a| (a.atype.clone(), a.vals.clone()))
        .collect();
    write(dsa, ctx, Change::Add { dn, attrs })
}
