//! Extended operations: Who am I? (RFC 4532) and Password Modify (RFC 3062).

use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapPasswordModifyRequest,
    LdapPasswordModifyResponse, LdapResultCode,
};

use super::context::RequestContext;
use super::search::dse::{
    BACKUP_OID, BACKUP_READ_OID, DORMANT_OID, PASSWORD_MODIFY_OID, PURGE_OID, RESTORE_OID,
    WHOAMI_OID,
};
use super::{bind::resolve, parse_dn, success, OpError, OpResult};
use crate::directory::password::verify;
use crate::dsa::{Change, Dsa, Role};
use crate::import::online::{OnlineError, BEGIN_OID, DATA_OID, RUN_OID, STATUS_OID};

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
        RESTORE_OID => restore(dsa, ctx, req),
        BACKUP_OID | BACKUP_READ_OID => backup(dsa, ctx, req),
        BEGIN_OID | DATA_OID | RUN_OID | STATUS_OID => online_import(ctx, req),
        PURGE_OID => purge(dsa, ctx, req),
        DORMANT_OID => dormant(dsa, ctx, req),
        other => Err(OpError::new(
            LdapResultCode::ProtocolError,
            format!("unsupported extended operation {other}"),
        )),
    }
}

/// Refuses anyone but a directory administrator, saying what only they may do.
fn admins_only(ctx: &RequestContext<'_>, what: &str) -> OpResult<()> {
    if ctx.grant.is_admin() {
        Ok(())
    } else {
        Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            format!("only directory administrators may {what}"),
        ))
    }
}

/// The request's value as text, or a protocol error.
fn text_value(req: &LdapExtendedRequest) -> OpResult<String> {
    match &req.value {
        None => Ok(String::new()),
        Some(v) => String::from_utf8(v.clone())
            .map(|s| s.trim().to_string())
            .map_err(|_| {
                OpError::new(
                    LdapResultCode::ProtocolError,
                    "the request value must be UTF-8 text",
                )
            }),
    }
}

fn admin_writer<'d>(dsa: &'d Dsa, ctx: &RequestContext<'_>) -> OpResult<crate::dsa::Writer<'d>> {
    admins_only(ctx, "restore or purge deleted entries")?;
    super::writer(dsa, ctx)
}

/// The four steps of `onepages import --server` (see `import::online`).
fn online_import(
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    let Some(imports) = ctx.imports else {
        return Err(OpError::new(
            LdapResultCode::UnwillingToPerform,
            "online imports are taken by a running server only",
        ));
    };
    admins_only(ctx, "import")?;
    let grant = ctx.grant.write()?;
    let by = grant.by().to_string();
    let value = req.value.as_deref().unwrap_or_default();
    let answer = match req.name.as_str() {
        BEGIN_OID => imports.begin(grant, value).map(Some),
        DATA_OID => imports.data(&by, value).map(Some),
        RUN_OID => imports.run(&by, value).map(|()| None),
        _ => imports.status(&by, value).map(Some),
    };
    let value = answer.map_err(|e| {
        let code = match e {
            OnlineError::Busy(_) => LdapResultCode::Busy,
            OnlineError::Malformed(_) => LdapResultCode::ProtocolError,
            OnlineError::Refused(_) => LdapResultCode::UnwillingToPerform,
            OnlineError::Io(_) => LdapResultCode::Other,
        };
        OpError::new(code, e.to_string())
    })?;
    Ok(LdapExtendedResponse {
        res: success(),
        name: Some(req.name.clone()),
        value,
    })
}

/// What `onepages dormant --server` asks.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DormantRequest {
    /// GeneralizedTime; the server's clock when absent.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    apply: bool,
}

/// The dormant-account rules: a report at any date, or applied now.
fn dormant(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    admins_only(ctx, "run the dormant-account rules")?;
    let text = text_value(req)?;
    let asked: DormantRequest = if text.is_empty() {
        DormantRequest {
            as_of: None,
            apply: false,
        }
    } else {
        serde_json::from_str(&text).map_err(|e| {
            OpError::new(
                LdapResultCode::ProtocolError,
                format!("the request value must be JSON {{\"as_of\", \"apply\"}}: {e}"),
            )
        })?
    };
    let as_of = match &asked.as_of {
        Some(t) => Some(crate::dsa::sign_in::time_of(t).ok_or_else(|| {
            OpError::new(
                LdapResultCode::ProtocolError,
                format!("as_of '{t}' is not a GeneralizedTime (YYYYMMDDHHMMSSZ)"),
            )
        })?),
        None => None,
    };
    let report = match (asked.apply, as_of) {
        (true, Some(_)) => {
            return Err(OpError::new(
                LdapResultCode::UnwillingToPerform,
                "the rules are applied as of now only: --as-of is for reports",
            ))
        }
        (true, None) => {
            let grant = ctx.grant.write()?;
            crate::policy::dormant::apply(dsa, &grant, "onepages dormant --apply")?
        }
        (false, at) => crate::policy::dormant::evaluate(dsa, at.unwrap_or_else(|| dsa.now()))?,
    };
    let json = serde_json::to_vec(&report)
        .map_err(|e| OpError::new(LdapResultCode::Other, e.to_string()))?;
    Ok(LdapExtendedResponse {
        res: success(),
        name: Some(req.name.clone()),
        value: Some(json),
    })
}

/// Bytes of a backup per read request.
const BACKUP_CHUNK: usize = 512 * 1024;

/// A backup of the running directory, made in the server's spool and fetched in chunks.
fn backup(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    admins_only(ctx, "make backups (they hold password hashes)")?;
    let refused = |e: crate::dsa::DsaError| match e {
        crate::dsa::DsaError::Denied(m) => OpError::new(LdapResultCode::UnwillingToPerform, m),
        other => OpError::from(other),
    };
    let value = if req.name == BACKUP_OID {
        let (token, info, bytes) = dsa.spool_backup().map_err(refused)?;
        serde_json::json!({ "token": token, "bytes": bytes, "info": info })
            .to_string()
            .into_bytes()
    } else {
        let text = text_value(req)?;
        let (token, offset) = text.split_once('\n').unwrap_or((text.as_str(), "0"));
        let offset: u64 = offset.trim().parse().map_err(|_| {
            OpError::new(LdapResultCode::ProtocolError, "the offset is not a number")
        })?;
        let max = BACKUP_CHUNK.min(dsa.settings().limits.max_pdu_bytes);
        dsa.read_spooled_backup(token.trim(), offset, max)
            .map_err(refused)?
    };
    Ok(LdapExtendedResponse {
        res: success(),
        name: Some(req.name.clone()),
        value: Some(value),
    })
}

/// Brings back a deleted entry from its tombstone.
fn restore(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    let which = text_value(req)?;
    if which.is_empty() {
        return Err(OpError::new(
            LdapResultCode::ProtocolError,
            "name the deleted entry: its DN, ONE ID, mail or entryUUID",
        ));
    }
    let writer = admin_writer(dsa, ctx)?;
    let restored = writer.restore(&which)??;
    Ok(LdapExtendedResponse {
        res: success(),
        name: Some(RESTORE_OID.to_string()),
        value: Some(restored.dn.into_bytes()),
    })
}

/// Purges tombstones: those past their time, all of them, or those one name gives.
fn purge(
    dsa: &Dsa,
    ctx: &RequestContext<'_>,
    req: &LdapExtendedRequest,
) -> OpResult<LdapExtendedResponse> {
    use crate::dsa::trash::Purge;
    let which = text_value(req)?;
    let writer = admin_writer(dsa, ctx)?;
    let what = match which.as_str() {
        "" => Purge::Expired,
        w if w.eq_ignore_ascii_case("all") => Purge::All,
        w => {
            let ids: Vec<_> = dsa.find_tombstones(w)?.iter().map(|t| t.id).collect();
            if ids.is_empty() {
                return Err(OpError::new(
                    LdapResultCode::NoSuchObject,
                    format!("no deleted entry named {w}"),
                ));
            }
            Purge::These(ids)
        }
    };
    let purged = writer.purge(what)?;
    Ok(LdapExtendedResponse {
        res: success(),
        name: Some(PURGE_OID.to_string()),
        value: Some(purged.len().to_string().into_bytes()),
    })
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
    // RFC 3062 §3.3: without a new password (or with an empty one) the server makes one and
    // answers it in genPasswd, as slapd does; admin tools rely on it.
    let (new_password, generated) = match pm.new_password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (crate::directory::password::generate(), true),
    };
    let dn = parse_dn(&old.dn)?;
    super::write(
        dsa,
        ctx,
        Change::SetPassword {
            dn,
            password: new_password.clone().into_bytes(),
        },
    )?;
    if generated {
        return Ok(LdapPasswordModifyResponse {
            res: success(),
            gen_password: Some(new_password),
        }
        .into());
    }
    Ok(LdapExtendedResponse {
        res: success(),
        name: None,
        value: None,
    })
}
