//! Bind (RFC 4511 §4.2, RFC 4513 §5), with lockout (OpenLDAP ppolicy's semantics).
//!
//! A simple bind names the user by full DN or by bare ONE ID username (`uid`), as Active
//! Directory accepts a UPN. Unknown users, wrong passwords, disabled and locked accounts all
//! get the same invalidCredentials answer, and the protocol layer sends it no sooner than
//! [`Dsa::failed_bind_floor`] after the bind arrived (the time an argon2id check takes), so a
//! failure's timing does not tell whether the name exists, which hash it has or whether it is
//! locked; only a name that looks like a mail address (and is not a ONE ID) gets the hint to
//! use the ONE ID instead, which reveals nothing about which addresses exist. A client that
//! sends the password policy request control learns that an account is locked, as OpenLDAP
//! tells it. Anonymous binds succeed but leave the connection anonymous; unauthenticated ones
//! (a name, no password) are refused.
//!
//! A bind runs in two steps so that slow hashes can be rationed: [`begin`] does everything
//! that is cheap (checks, the look-up, the lockout, fast schemes, a remembered verification)
//! and either decides or hands back a [`PendingBind`], whose [`PendingBind::finish`] runs the
//! slow check; the protocol layer runs it on a blocking thread once a hash slot is free.
//! Every outcome goes to the audit trail.

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResultCode};
use serde_json::json;

use super::context::{RequestContext, Transport};
use super::{OpError, OpResult};
use crate::directory::dn::Dn;
use crate::directory::entry::{Entry, EntryId};
use crate::dsa::access::is_disabled;
use crate::dsa::lockout::Failure;
use crate::dsa::{Dsa, GrantSeed, Identity, Reader};

const BAD_CREDENTIALS: &str = "invalid credentials";

/// The password policy control (draft-behera-ldap-password-policy), as OpenLDAP's ppolicy.
pub const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// A successful bind: who the session is now, and the access decision made from the entry
/// the bind read (none for an anonymous bind).
#[derive(Debug)]
pub struct Bound {
    pub identity: Identity,
    pub seed: Option<GrantSeed>,
}

/// A refused bind, and whether it was refused because the account is locked (what the
/// password policy response control reports).
#[derive(Debug)]
pub struct Refused {
    pub error: OpError,
    pub account_locked: bool,
}

impl From<OpError> for Refused {
    fn from(error: OpError) -> Refused {
        Refused {
            error,
            account_locked: false,
        }
    }
}

pub type Outcome = Result<Bound, Refused>;

/// Where a bind stands after its cheap part.
#[derive(Debug)]
pub enum Step {
    Decided(Outcome),
    /// Only a slow hash check can decide: run [`PendingBind::finish`] where slow work goes.
    SlowCheck(PendingBind),
}

/// A bind waiting for its slow password check.
pub struct PendingBind {
    epoch: u64,
    id: EntryId,
    entry: Entry,
    password: Vec<u8>,
}

impl std::fmt::Debug for PendingBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "PendingBind({})", self.entry.dn)
    }
}

impl PendingBind {
    /// Checks the password against the stored hashes (slow: argon2id or crypt) and decides.
    pub fn finish(self, dsa: &Dsa, ctx: &RequestContext<'_>) -> Outcome {
        let ok = self
            .entry
            .values("userPassword")
            .iter()
            .any(|v| dsa.verified().verify(&self.password, v));
        conclude(dsa, ctx, self.epoch, self.id, &self.entry, ok)
    }
}

/// The whole bind on this thread (tests, in-process callers).
pub fn bind(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapBindRequest) -> Outcome {
    match begin(dsa, ctx, req) {
        Step::Decided(outcome) => outcome,
        Step::SlowCheck(pending) => pending.finish(dsa, ctx),
    }
}

/// The cheap part of a bind: every check, the look-up, the lockout, and the password when
/// that costs nothing.
pub fn begin(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapBindRequest) -> Step {
    match begin_inner(dsa, ctx, req) {
        Ok(step) => step,
        Err(refused) => Step::Decided(Err(refused)),
    }
}

fn begin_inner(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapBindRequest,
) -> Result<Step, Refused> {
    // Read before the entry is: a write in between then only makes the seed stale.
    let epoch = dsa.grant_epoch();
    let name = req.dn.trim();
    let refuse = |reason: &str, error: OpError| {
        audit_bind(dsa, ctx, name, "failure", Some(reason), &error.code);
        Refused::from(error)
    };
    if req.version != 3 {
        return Err(refuse(
            "unsupported LDAP version",
            OpError::new(
                LdapResultCode::ProtocolError,
                format!(
                    "LDAP version {} is not supported; use version 3",
                    req.version
                ),
            ),
        ));
    }
    let password = match &req.cred {
        LdapBindCred::Simple(p) => p.as_bytes(),
        LdapBindCred::SASL(_) | LdapBindCred::Unsupported => return Err(refuse(
            "SASL",
            OpError::new(
                LdapResultCode::AuthMethodNotSupported,
                "SASL is not supported; use a simple bind with your ONE ID username and password",
            ),
        )),
    };
    if password.is_empty() {
        // RFC 4513 §5.1.2: a name without a password is an unauthenticated bind, which clients
        // send by mistake (an empty password field) and which must not look like success.
        if !name.is_empty() && !dsa.settings().allow_unauthenticated_bind {
            return Err(refuse(
                "unauthenticated bind",
                OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    "a name without a password is an unauthenticated bind, which this server \
                     refuses: give the password (or bind with neither name nor password)",
                ),
            ));
        }
        // RFC 4513 §5.1.1 anonymous (or an allowed unauthenticated bind): no identity.
        return Ok(Step::Decided(Ok(Bound {
            identity: Identity::Anonymous,
            seed: None,
        })));
    }
    let peer_ip = ctx
        .peer
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip());
    // A password never crosses the network in clear (unless the operator says it may), and
    // the refusal comes before any look-up: it says nothing about the name.
    if ctx.transport == Transport::Plain && !dsa.settings().cleartext_binds.allows(peer_ip) {
        return Err(refuse(
            "password without TLS",
            OpError::new(
                LdapResultCode::ConfidentialityRequired,
                "passwords are accepted only over TLS here: connect with ldaps:// or start TLS first (StartTLS, ldapsearch -ZZ)",
            ),
        ));
    }
    let now = dsa.now();
    if let Some(ip) = peer_ip {
        if let Some(wait) = dsa.lockout().address_refused(ip, now) {
            return Err(refuse(
                "too many failures from this address",
                OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    format!("too many failed sign-ins from your address: try again in {wait} s"),
                ),
            ));
        }
    }
    let failed = |reason: &str, message: String, account_locked: bool| {
        if let Some(ip) = peer_ip {
            dsa.lockout().address_failure(ip, now);
        }
        audit_bind(
            dsa,
            ctx,
            name,
            "failure",
            Some(reason),
            &LdapResultCode::InvalidCredentials,
        );
        Refused {
            error: OpError::new(LdapResultCode::InvalidCredentials, message),
            account_locked,
        }
    };
    if name.is_empty() {
        return Err(failed(
            "password without a name",
            "a password was given without a user name".into(),
            false,
        ));
    }
    let Some((id, entry)) = resolve(&dsa.reader(), name)? else {
        return Err(failed(
            "no such user",
            hint_for(name, &dsa.settings().oneid_domain),
            false,
        ));
    };
    if dsa.lockout().locked_since(id, now).is_some() {
        // Not even checked: a guess at a locked account learns nothing.
        return Err(failed("account locked", BAD_CREDENTIALS.into(), true));
    }
    let mut unknown = false;
    for v in entry.values("userPassword") {
        match dsa.verified().quick(password, v) {
            Some(true) => return Ok(Step::Decided(conclude(dsa, ctx, epoch, id, &entry, true))),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if !unknown {
        return Ok(Step::Decided(conclude(dsa, ctx, epoch, id, &entry, false)));
    }
    Ok(Step::SlowCheck(PendingBind {
        epoch,
        id,
        entry,
        password: password.to_vec(),
    }))
}

/// Decides a bind once its password is known to be right or wrong.
fn conclude(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    epoch: u64,
    id: EntryId,
    entry: &Entry,
    password_ok: bool,
) -> Outcome {
    let now = dsa.now();
    let peer_ip = ctx
        .peer
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip());
    let refused = |reason: &str| {
        if let Some(ip) = peer_ip {
            dsa.lockout().address_failure(ip, now);
        }
        audit_bind(
            dsa,
            ctx,
            &entry.dn,
            "failure",
            Some(reason),
            &LdapResultCode::InvalidCredentials,
        );
        Err(Refused {
            error: OpError::new(LdapResultCode::InvalidCredentials, BAD_CREDENTIALS),
            account_locked: false,
        })
    };
    if !password_ok {
        match dsa.lockout().failure(id, now) {
            Failure::LockedNow(failures) => {
                dsa.audit().record(
                    "lockout",
                    json!({
                        "dn": entry.dn,
                        "failures": failures,
                        "window_secs": dsa.settings().lockout.window.as_secs(),
                        "lock_secs": dsa.settings().lockout.duration.as_secs(),
                        "peer": ctx.peer,
                    }),
                );
                tracing::warn!(dn = %entry.dn, failures, peer = ctx.peer, "account locked after repeated wrong passwords");
            }
            Failure::Counted(_) | Failure::AlreadyLocked => {}
        }
        return refused("wrong password");
    }
    if is_disabled(entry) {
        return refused("account disabled");
    }
    dsa.lockout().success(id);
    // Every account's, service accounts' too (whether a reader account is still used);
    // at most one write a day each, off this path (see `dsa::sign_in`).
    dsa.sign_ins().record(id, now);
    audit_bind(
        dsa,
        ctx,
        &entry.dn,
        "success",
        None,
        &LdapResultCode::Success,
    );
    let identity = Identity::Bound {
        id,
        dn: entry.dn.clone(),
    };
    let seed = dsa.seed_grant(epoch, &identity, entry);
    Ok(Bound {
        identity,
        seed: Some(seed),
    })
}

fn audit_bind(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    dn: &str,
    result: &str,
    reason: Option<&str>,
    code: &LdapResultCode,
) {
    if !dsa.audit().is_on() {
        return;
    }
    let mut fields = json!({
        "result": result,
        "dn": dn,
        "code": code.clone() as i32,
        "peer": ctx.peer,
        "transport": ctx.transport.name(),
        "tls": ctx.transport == Transport::Tls,
        "request": ctx.request_id.to_string(),
    });
    if let (Some(reason), Some(map)) = (reason, fields.as_object_mut()) {
        map.insert("reason".into(), reason.into());
    }
    dsa.audit().record("bind", fields);
}

fn hint_for(name: &str, oneid_domain: &str) -> String {
    let looks_like_mail = name.contains('@')
        && !name.contains('=')
        && !name
            .to_ascii_lowercase()
            .ends_with(&format!("@{oneid_domain}"));
    if looks_like_mail {
        format!(
            "{BAD_CREDENTIALS}: sign in with your ONE ID username \
             (firstname.lastname@{oneid_domain}), not your mail address"
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
