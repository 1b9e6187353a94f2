//! Modify (RFC 4511 §4.6, RFC 4525 increment): administrators change attributes; a person may
//! change the self-service attributes of its own entry.
//!
//! Changes apply in order to a copy of the entry (in the writer); the result must pass the
//! schema checks as a whole, or nothing is written. Deleting `pwdAccountLockedTime` or
//! `pwdFailureTime` (the lockout state, which is not stored in the entry) unlocks the account,
//! as with OpenLDAP's ppolicy; administrators only, after the request's other changes are
//! written.

use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType, LdapResultCode};

use super::context::RequestContext;
use super::{parse_dn, write, OpError, OpResult};
use crate::dsa::{Change, Dsa, Edit, EditKind};

/// The lockout state's attributes: computed, and cleared by deleting either.
const PASSWORD_STATE: &[&str] = &[
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "1.3.6.1.4.1.42.2.27.8.1.17",
    "1.3.6.1.4.1.42.2.27.8.1.19",
];

fn is_password_state(name: &str) -> bool {
    let base = name.split(';').next().unwrap_or(name).trim();
    PASSWORD_STATE.iter().any(|a| a.eq_ignore_ascii_case(base))
}

pub fn modify(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapModifyRequest) -> OpResult<()> {
    let dn = parse_dn(&req.dn)?;
    let (state, rest): (Vec<_>, Vec<_>) = req
        .changes
        .iter()
        .partition(|c| is_password_state(&c.modification.atype));
    let unlock = !state.is_empty();
    if unlock {
        let grant = ctx.grant.write()?;
        if !grant.may_administer() {
            return Err(OpError::new(
                LdapResultCode::InsufficentAccessRights,
                "only administrators may unlock accounts",
            ));
        }
        for c in &state {
            let clears = match c.operation {
                LdapModifyType::Delete => true,
                LdapModifyType::Replace => c.modification.vals.is_empty(),
                LdapModifyType::Add | LdapModifyType::Increment => false,
            };
            if !clears {
                return Err(OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    format!(
                        "{} is kept by the server: delete it to unlock the account; to stop \
                         an account from signing in, set onePagesStatus: disabled",
                        c.modification.atype
                    ),
                ));
            }
        }
    }
    if !rest.is_empty() || !unlock {
        super::writer(dsa, ctx)?;
        let edits = rest
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
        write(
            dsa,
            ctx,
            Change::Modify {
                dn: dn.clone(),
                edits,
            },
        )?;
    }
    if unlock {
        let grant = ctx.grant.write()?;
        let ndn = dsa.normalize_dn(&dn);
        if dsa.unlock(&grant, &ndn, "ldap")?.is_none() {
            return Err(super::no_such_object(&dsa.reader(), &dn));
        }
    }
    Ok(())
}
