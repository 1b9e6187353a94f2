//! LDAP operations, one file each, on typed requests (RFC 4511 §4).
//!
//! Operations never see bytes or sockets, and never name the store or the index: the protocol
//! layer decodes requests and calls the function for the operation with a
//! [`context::RequestContext`] (peer, transport, identity, the grant decided for this
//! operation); reads go through the directory's reader and changes through its writer, which
//! only a grant opens. Every failure leaves here as an [`OpError`]: a result code and a
//! diagnostic the user can act on. Internal faults are logged with an id that the diagnostic
//! repeats, and nothing else of them reaches the client.

pub mod add;
pub mod audit;
pub mod bind;
pub mod compare;
pub mod context;
pub mod delete;
pub mod extended;
pub mod modify;
pub mod modify_dn;
pub mod search;

use ldap3_proto::proto::{LdapResult, LdapResultCode};

use crate::directory::dn::Dn;
use crate::directory::validate::ValidationError;
use crate::dsa::access::Denied;
use crate::dsa::{Dsa, DsaError, Reader, WriteRefusal, Writer};
use context::RequestContext;

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
        let code = match &r {
            WriteRefusal::Invalid(v) => return v.clone().into(),
            WriteRefusal::NoSuchObject { dn, matched } => {
                return OpError {
                    code: LdapResultCode::NoSuchObject,
                    message: format!("no entry named {dn}"),
                    matched_dn: matched.clone(),
                }
            }
            WriteRefusal::AlreadyExists(_) => LdapResultCode::EntryAlreadyExists,
            WriteRefusal::Taken { .. } => LdapResultCode::ConstraintViolation,
            WriteRefusal::NoParent(_) | WriteRefusal::OutsideSuffix(..) => {
                LdapResultCode::NoSuchObject
            }
            WriteRefusal::NotLeaf(_) => LdapResultCode::NotAllowedOnNonLeaf,
            WriteRefusal::ValueExists(_) => LdapResultCode::AttributeOrValueExists,
            WriteRefusal::NoSuchAttribute(_) => LdapResultCode::NoSuchAttribute,
            WriteRefusal::NotAllowedOnRdn(_) => LdapResultCode::NotALlowedOnRDN,
            WriteRefusal::Denied(_) => LdapResultCode::InsufficentAccessRights,
            WriteRefusal::InBatch(_) => LdapResultCode::UnwillingToPerform,
        };
        OpError::new(code, r.to_string())
    }
}

impl From<Denied> for OpError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::NotBound(m) => OpError::new(LdapResultCode::StrongerAuthRequired, m),
            Denied::NotAllowed(m) => OpError::new(LdapResultCode::InsufficentAccessRights, m),
        }
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

/// noSuchObject for `dn`, with the deepest existing ancestor as matchedDN (RFC 4511 §4.1.9).
pub fn no_such_object(reader: &Reader<'_>, dn: &Dn) -> OpError {
    OpError {
        code: LdapResultCode::NoSuchObject,
        message: format!("no entry named {dn}"),
        matched_dn: reader.matched_ancestor(dn),
    }
}

/// Reading the directory needs a bind, unless anonymous reading is configured. The refusal is
/// insufficientAccessRights with a message, so that clients prompt for credentials.
pub fn require_reader(ctx: &RequestContext<'_>) -> OpResult<()> {
    if ctx.grant.may_read() {
        Ok(())
    } else {
        Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "anonymous reading is not allowed: bind with your ONE ID username and password",
        ))
    }
}

/// The writer this operation's grant opens, or the refusal.
pub fn writer<'d>(dsa: &'d Dsa, ctx: &RequestContext<'_>) -> OpResult<Writer<'d>> {
    let grant = ctx.grant.write()?;
    Ok(dsa.writer(&grant))
}

/// Writes one change through the operation's writer.
pub fn write(dsa: &Dsa, ctx: &RequestContext<'_>, change: crate::dsa::Change) -> OpResult<()> {
    writer(dsa, ctx)?.write_one(change)??;
    Ok(())
}
