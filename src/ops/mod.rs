//! LDAP operations, one file each, on typed requests (RFC 4511 §4).
//!
//! Operations never see bytes or sockets: the protocol layer decodes requests, calls the
//! function for the operation with the connection's identity, and encodes what comes back.
//! Every failure leaves here as an [`OpError`]: a result code and a diagnostic the user can act
//! on. Internal faults are logged with an id that the diagnostic repeats, and nothing else of
//! them reaches the client.

pub mod add;
pub mod bind;
pub mod compare;
pub mod delete;
pub mod extended;
pub mod modify;
pub mod modify_dn;
pub mod search;

use ldap3_proto::proto::{LdapResult, LdapResultCode};

use crate::directory::access::Identity;
use crate::directory::dn::{parent_of, Dn};
use crate::directory::validate::ValidationError;
use crate::dsa::{Dsa, DsaError, WriteRefusal};

#[derive(Debug, Clone, PartialEq)]
pub struct OpError {
    pub code: LdapResultCode,
    pub message: String,
    pub matched_dn: String,
}

pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    pub fn new(code: LdapResultCode, message: impl Into<String>) -> OpError {
        OpError {
            code,
            message: message.into(),
            matched_dn: String::new(),
        }
    }

    pub fn into_result(self) -> LdapResult {
        LdapResult {
            code: self.code,
            matcheddn: self.matched_dn,
            message: self.message,
            referral: Vec::new(),
        }
    }
}

/// An internal fault: logged in full under a fresh id; the client learns only the id.
pub fn internal(e: impl std::fmt::Display) -> OpError {
    let id = crate::dsa::new_uuid();
    tracing::error!(error = %e, fault_id = %id, "internal error");
    OpError::new(
        LdapResultCode::Other,
        format!("internal server error (fault id {id}); the administrators can look it up"),
    )
}

impl From<DsaError> for OpError {
    fn from(e: DsaError) -> Self {
        internal(e)
    }
}

impl From<crate::store::StoreError> for OpError {
    fn from(e: crate::store::StoreError) -> Self {
        internal(e)
    }
}

impl From<ValidationError> for OpError {
    fn from(e: ValidationError) -> Self {
        let code = match e {
            ValidationError::ObjectClassViolation(_) => LdapResultCode::ObjectClassViolation,
            ValidationError::UndefinedAttributeType(_) => LdapResultCode::UndefinedAttributeType,
            ValidationError::InvalidAttributeSyntax(_) => LdapResultCode::InvalidAttributeSyntax,
            ValidationError::NamingViolation(_) => LdapResultCode::NamingViolation,
            ValidationError::ConstraintViolation(_) => LdapResultCode::ConstraintViolation,
        };
        OpError::new(code, e.to_string())
    }
}

impl From<WriteRefusal> for OpError {
    fn from(r: WriteRefusal) -> Self {
        let code = match r {
            WriteRefusal::AlreadyExists(_) => LdapResultCode::EntryAlreadyExists,
            WriteRefusal::NoSuchObject(_) | WriteRefusal::NoParent(_) => {
                LdapResultCode::NoSuchObject
            }
            WriteRefusal::OutsideSuffix(..) => LdapResultCode::NoSuchObject,
            WriteRefusal::NotLeaf(_) => LdapResultCode::NotAllowedOnNonLeaf,
        };
        OpError::new(code, r.to_string())
    }
}

pub fn success() -> LdapResult {
    LdapResult {
        code: LdapResultCode::Success,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

pub fn parse_dn(text: &str) -> OpResult<Dn> {
    Dn::parse(text).map_err(|e| OpError::new(LdapResultCode::InvalidDNSyntax, e.to_string()))
}

/// noSuchObject for `ndn`, with the deepest existing ancestor as matchedDN (RFC 4511 §4.1.9).
pub fn no_such_object(dsa: &Dsa, dn: &Dn) -> OpError {
    let mut matched = String::new();
    let mut cur = dn.parent();
    while let Some(p) = cur {
        if p.is_root() {
            break;
        }
        if let Ok(Some((_, e))) = dsa.store.get_by_ndn(&p.normalize(&dsa.schema)) {
            matched = e.dn;
            break;
        }
        cur = p.parent();
    }
    OpError {
        code: LdapResultCode::NoSuchObject,
        message: format!("no entry named {dn}"),
        matched_dn: matched,
    }
}

/// The server's access policy.
pub fn policy(dsa: &Dsa) -> crate::directory::access::AccessPolicy {
    crate::directory::access::AccessPolicy {
        anonymous_read: dsa.settings.anonymous_read,
    }
}

/// Reading the directory needs a bind, unless anonymous reading is configured. The refusal is
/// insufficientAccessRights with a message, so that clients prompt for credentials.
pub fn require_reader(dsa: &Dsa, who: &Identity) -> OpResult<()> {
    if policy(dsa).may_read(who) {
        Ok(())
    } else {
        Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "anonymous reading is not allowed: bind with your ONE ID username and password",
        ))
    }
}

/// Only administrators write.
pub fn require_writer(dsa: &Dsa, who: &Identity) -> OpResult<()> {
    if policy(dsa).may_write(who) {
        Ok(())
    } else if who.is_authenticated() {
        Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "only directory administrators may change entries",
        ))
    } else {
        Err(OpError::new(
            LdapResultCode::StrongerAuthRequired,
            "bind as a directory administrator to change entries",
        ))
    }
}

/// Refuses a write that the DSA reported as refused.
pub fn first_refusal(refused: Vec<(usize, WriteRefusal)>) -> OpResult<()> {
    match refused.into_iter().next() {
        Some((_, r)) => Err(r.into()),
        None => Ok(()),
    }
}

/// `true` when `ndn`'s parent is the given key (used for scope checks).
pub fn is_child_of(ndn: &str, parent: &str) -> bool {
    !ndn.is_empty() && parent_of(ndn) == parent
}

/// Keeps `userPassword` values in a scheme the server verifies and hashes any other value (a
/// clear-text password) with argon2id.
pub fn prepare_passwords(dsa: &Dsa, values: &[Vec<u8>]) -> OpResult<Vec<Vec<u8>>> {
    values
        .iter()
        .map(|v| {
            let keep = crate::directory::password::scheme_of(v)
                .is_some_and(|s| crate::directory::password::is_supported_scheme(&s));
            if keep {
                Ok(v.clone())
            } else {
                crate::directory::password::hash_password(v, dsa.settings.argon2)
                    .map(String::into_bytes)
                    .map_err(internal)
            }
        })
        .collect()
}

/// Writes a changed entry in place of `old`: schema check, modification stamps, one atomic
/// write (modify, modify DN and password changes all end here).
pub fn replace_entry(
    dsa: &Dsa,
    who: &Identity,
    id: crate::store::EntryId,
    old: crate::directory::entry::Entry,
    mut entry: crate::directory::entry::Entry,
    dn: &Dn,
) -> OpResult<()> {
    crate::directory::validate::check(&dsa.schema, &mut entry, dn)?;
    crate::dsa::stamp_modified(&dsa.schema, &mut entry, who.dn());
    first_refusal(dsa.apply(vec![crate::dsa::Change::Replace {
        id,
        old,
        new: entry,
    }])?)
}
