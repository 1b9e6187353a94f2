//! Bind (RFC 4511 §4.2, RFC 4513 §5).
//!
//! A simple bind names the user by full DN or by bare ONE ID username (`uid`), as Active
//! Directory accepts a UPN. Unknown users, wrong passwords and disabled accounts all get the
//! same invalidCredentials answer, and the protocol layer sends it no sooner than
//! [`Dsa::failed_bind_floor`] after the bind arrived (the time an argon2id check takes), so a
//! failure's timing does not tell whether the name exists or which hash it has; only a name
//! that looks like a mail address (and is not a ONE ID) gets the hint to use the ONE ID
//! instead, which reveals nothing about which addresses exist. Anonymous binds succeed but
//! leave the connection anonymous; unauthenticated ones (a name, no password) are refused.

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResultCode};

use super::context::{RequestContext, Transport};
use super::{OpError, OpResult};
use crate::directory::dn::Dn;
use crate::directory::entry::{Entry, EntryId};
use crate::directory::ONE_ID_DOMAIN;
use crate::dsa::access::is_disabled;
use crate::dsa::{Dsa, GrantSeed, Identity, Reader};

const BAD_CREDENTIALS: &str = "invalid credentials";

/// A successful bind: who the session is now, and the access decision made from the entry
/// the bind read (none for an anonymous bind).
#[derive(Debug)]
pub struct Bound {
    pub identity: Identity,
    pub seed: Option<GrantSeed>,
}

pub fn bind(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapBindRequest) -> OpResult<Bound> {
    // Read before the entry is: a write in between then only makes the seed stale.
    let epoch = dsa.grant_epoch();
    if req.version != 3 {
        return Err(OpError::new(
            LdapResultCode::ProtocolError,
            format!(
                "LDAP version {} is not supported; use version 3",
                req.version
            ),
        ));
    }
    let password =
        match &req.cred {
            LdapBindCred::Simple(p) => p.as_bytes(),
            LdapBindCred::SASL(_) | LdapBindCred::Unsupported => return Err(OpError::new(
                LdapResultCode::AuthMethodNotSupported,
                "SASL is not supported; use a simple bind with your ONE ID username and password",
            )),
        };
    let name = req.dn.trim();
    if password.is_empty() {
        // RFC 4513 §5.1.2: a name without a password is an unauthenticated bind, which clients
        // send by mistake (an empty password field) and which must not look like success.
        if !name.is_empty() && !dsa.settings().allow_unauthenticated_bind {
            return Err(OpError::new(
                LdapResultCode::UnwillingToPerform,
                "a name without a password is an unauthenticated bind, which this server \
                 refuses: give the password (or bind with neither name nor password)",
            ));
        }
        // RFC 4513 §5.1.1 anonymous (or an allowed unauthenticated bind): no identity.
        return Ok(Bound {
            identity: Identity::Anonymous,
            seed: None,
        });
    }
    // A password never crosses the network in clear (unless the operator says it may), and
    // the refusal comes before any look-up: it says nothing about the name.
    if ctx.transport == Transport::Plain
        && !dsa.settings().cleartext_binds.allows(
            ctx.peer
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.ip()),
        )
    {
        return Err(OpError::new(
            LdapResultCode::ConfidentialityRequired,
            "passwords are accepted only over TLS here: connect with ldaps://",
        ));
    }
    if name.is_empty() {
        return Err(OpError::new(
            LdapResultCode::InvalidCredentials,
            "a password was given without a user name",
        ));
    }
    let found = resolve(&dsa.reader(), name)?;
    let Some(found) = found else {
        return Err(OpError::new(
            LdapResultCode::InvalidCredentials,
            hint_for(name),
        ));
    };
    let (id, entry) = found;
    let stored = entry.values("userPassword");
    let mut ok = false;
    for v in stored {
        if dsa.verified().verify(password, v) {
            ok = true;
            break;
        }
    }
    if !ok || is_disabled(&entry) {
        return Err(OpError::new(
            LdapResultCode::InvalidCredentials,
            BAD_CREDENTIALS,
        ));
    }
    let identity = Identity::Bound {
        id,
        dn: entry.dn.clone(),
    };
    let seed = dsa.seed_grant(epoch, &identity, &entry);
    Ok(Bound {
        identity,
        seed: Some(seed),
    })
}

fn hint_for(name: &str) -> String {
    let looks_like_mail = name.contains('@')
        && !name.contains('=')
        && !name
            .to_ascii_lowercase()
            .ends_with(&format!("@{ONE_ID_DOMAIN}"));
    if looks_like_mail {
        format!(
            "{BAD_CREDENTIALS}: sign in with your ONE ID username \
             (firstname.lastname@{ONE_ID_DOMAIN}), not your mail address"
        )
    } else {
        BAD_CREDENTIALS.to_string()
    }
}

/// Finds the entry a bind name designates: a DN, or else a ONE ID username.
pub fn resolve(reader: &Reader<'_>, name: &str) -> OpResult<Option<(EntryId, Entry)>> {
    if name.contains('=') {
        if let Ok(dn) = Dn::parse(name) {
            if !dn.is_root() {
                return Ok(reader.entry(&reader.normalize_dn(&dn))?);
            }
        }
    }
    let mut matches = reader.find_equal("uid", name.as_bytes())?;
    // A username must name exactly one account.
    if matches.len() == 1 {
        Ok(matches.pop())
    } else {
        Ok(None)
    }
}
