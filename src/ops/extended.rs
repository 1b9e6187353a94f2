//! Extended operations: Who am I? (RFC 4532) and Password Modify (RFC 3062).

use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapPasswordModifyRequest, LdapResultCode,
};

use super::search::{PASSWORD_MODIFY_OID, WHOAMI_OID};
use super::{bind::resolve, first_refusal, success, OpError, OpResult};
use crate::directory::access::Identity;
use crate::directory::password::{hash_password, verify};
use crate::dsa::{stamp_modified, Change, Dsa};

pub fn extended(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    match req.name.as_str() {
        WHOAMI_OID => Ok(LdapExtendedResponse {
            res: success(),
            name: None,
            value: Some(who.authz_id().into_bytes()),
        }),
        PASSWORD_MODIFY_OID => password_modify(dsa, who, req),
        "1.3.6.1.4.1.1466.20037" => Err(OpError::new(
            LdapResultCode::ProtocolError,
            "StartTLS is not offered by this server",
        )),
        other => Err(OpError::new(
            LdapResultCode::ProtocolError,
            format!("unsupported extended operation {other}"),
        )),
    }
}

/// RFC 3062: a user changes their own password (giving the old one), or an administrator sets
/// anyone's. New passwords are stored as argon2id.
fn password_modify(
    dsa: &Dsa,
    who: &Identity,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    let Identity::User { ndn: self_ndn, .. } = who else {
        return Err(OpError::new(
            LdapResultCode::StrongerAuthRequired,
            "bind before changing a password",
        ));
    };
    let pm = LdapPasswordModifyRequest::try_from(req).map_err(|_| {
        OpError::new(
            LdapResultCode::ProtocolError,
            "malformed password modify request",
        )
    })?;
    let target = match &pm.user_identity {
        Some(name) => resolve(dsa, name.strip_prefix("dn:").unwrap_or(name))?,
        None => dsa.store.get_by_ndn(self_ndn)?,
    };
    let Some((id, old)) = target else {
        return Err(OpError::new(LdapResultCode::NoSuchObject, "no such user"));
    };
    let is_self = old.ndn == *self_ndn;
    if !is_self && !who.is_admin() {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "only administrators may change another user's password",
        ));
    }
    if is_self && !who.is_admin() {
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
    let hashed =
        hash_password(new_password.as_bytes(), dsa.settings.argon2).map_err(super::internal)?;
    let mut entry = old.clone();
    entry.set_values(&dsa.schema, "userPassword", vec![hashed.into_bytes()]);
    stamp_modified(&dsa.schema, &mut entry, who.dn());
    first_refusal(dsa.apply(vec![Change::Replace {
        id,
        old,
        new: entry,
    }])?)?;
    Ok(LdapExtendedResponse {
        res: success(),
        name: None,
        value: None,
    })
}
