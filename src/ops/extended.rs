//! Extended operations: Who am I? (RFC 4532) and Password Modify (RFC 3062).

use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapPasswordModifyRequest, LdapResultCode,
};

use super::context::RequestContext;
use super::search::dse::{PASSWORD_MODIFY_OID, WHOAMI_OID};
use super::{bind::resolve, parse_dn, success, OpError, OpResult};
use crate::directory::password::verify;
use crate::dsa::{Change, Dsa, Role};

pub fn extended(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    match req.name.as_str() {
        // RFC 4532: the authorization identity as the directory stands now (a deleted or
        // disabled account is anonymous).
        WHOAMI_OID => Ok(LdapExtendedResponse {
            res: success(),
            name: None,
            value: Some(ctx.grant.authz_id().into_bytes()),
        }),
        PASSWORD_MODIFY_OID => password_modify(dsa, ctx, req),
        other => Err(OpError::new(
            LdapResultCode::ProtocolError,
            format!("unsupported extended operation {other}"),
        )),
    }
}

/// RFC 3062: a person changes its own password (giving the old one), or an administrator sets
/// anyone's. New passwords are stored as argon2id, through the one writer.
fn password_modify(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    if !ctx.grant.is_authenticated() {
        return Err(OpError::new(
            LdapResultCode::StrongerAuthRequired,
            "bind before changing a password",
        ));
    }
    let pm = LdapPasswordModifyRequest::try_from(req).map_err(|_| {
        OpError::new(
            LdapResultCode::ProtocolError,
            "malformed password modify request",
        )
    })?;
    let reader = dsa.reader();
    let target = match &pm.user_identity {
        Some(name) => resolve(&reader, name.strip_prefix("dn:").unwrap_or(name))?,
        None => reader.entry(ctx.grant.ndn())?,
    };
    let Some((id, old)) = target else {
        return Err(OpError::new(LdapResultCode::NoSuchObject, "no such user"));
    };
    let is_self = ctx.grant.entry_id() == Some(id);
    let admin = ctx.grant.is_admin();
    if !admin && !is_self {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "only administrators may change another user's password",
        ));
    }
    if !admin && ctx.grant.role() != Some(Role::User) {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "the password of a service account is set by a directory administrator",
        ));
    }
    if !admin {
        let given = pm.old_password.as_deref().unwrap_or("");
        let ok = old
            .values("userPassword")
            .iter()
            .any(|v| verify(given.as_bytes(), v));
        if !ok {
            return Err(OpError::new(
                LdapResultCode::UnwillingToPerform,
                "the old password is wrong or missing",
            ));
        }
    }
    let Some(new_password) = pm.new_password.filter(|p| !p.is_empty()) else {
        return Err(OpError::new(
            LdapResultCode::UnwillingToPerform,
            "give the new password; this server does not generate passwords",
        ));
    };
    let dn = parse_dn(&old.dn)?;
    super::write(
        dsa,
        ctx,
        Change::SetPassword {
            dn,
            password: new_password.into_bytes(),
        },
    )?;
    Ok(LdapExtendedResponse {
        res: success(),
        name: None,
        value: None,
    })
}
