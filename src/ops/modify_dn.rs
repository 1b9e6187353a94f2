//! Modify DN (RFC 4511 §4.9): rename a leaf entry or move it under another parent.

use ldap3_proto::proto::{LdapModifyDNRequest, LdapResultCode};

use super::context::RequestContext;
use super::{parse_dn, write, OpError, OpResult};
use crate::dsa::{Change, Dsa};

pub fn modify_dn(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapModifyDNRequest) -> OpResult<()> {
    super::writer(dsa, ctx)?;
    let dn = parse_dn(&req.dn)?;
    let new_rdn_dn = parse_dn(&req.newrdn)?;
    let (Some(new_rdn), 1) = (new_rdn_dn.rdn().cloned(), new_rdn_dn.rdns().len()) else {
        return Err(OpError::new(
            LdapResultCode::InvalidDNSyntax,
            "the new RDN must be a single RDN",
        ));
    };
    let new_superior = match &req.new_superior {
        Some(sup) => Some(parse_dn(sup)?),
        None => None,
    };
    write(
        dsa,
        ctx,
        Change::Rename {
            dn,
            new_rdn,
            delete_old_rdn: req.deleteoldrdn,
            new_superior,
        },
    )
}
