//! What writers ask for ([`Change`]), why a change is refused ([`WriteRefusal`]), and what an
//! applied batch did ([`Applied`]).

use crate::directory::dn::{Dn, Rdn};
use crate::directory::validate::ValidationError;

/// How a modification changes an attribute (RFC 4511 §4.6, RFC 4525).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    Add,
    Delete,
    Replace,
    Increment,
}

/// One modification of a modify request.
#[derive(Clone, Debug)]
pub struct Edit {
    pub kind: EditKind,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

/// What a writer wants done.
#[derive(Clone, Debug)]
pub enum Change {
    /// A new entry from an LDAP client; refused if the name is taken.
    Add {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    /// A record of an import: creates the entry or replaces the one of the same name, keeping
    /// its creation stamps. Operational attributes another server exported are kept where they
    /// mean the same here.
    Import {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Modify {
        dn: Dn,
        edits: Vec<Edit>,
    },
    /// Password Modify (RFC 3062): the new password, in clear text.
    SetPassword {
        dn: Dn,
        password: Vec<u8>,
    },
    Rename {
        dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Dn>,
    },
    Delete {
        dn: Dn,
    },
    /// Brings a deleted entry back from its tombstone (the entry's id), as it was.
    Restore {
        id: crate::directory::entry::EntryId,
    },
}

/// Why a change was refused (expected outcomes; the caller maps them to result codes).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WriteRefusal {
    #[error("an entry named {0} already exists")]
    AlreadyExists(String),
    #[error("no entry named {dn}")]
    NoSuchObject {
        dn: String,
        /// The deepest existing ancestor (RFC 4511 §4.1.9).
        matched: String,
    },
    #[error("the parent entry {0} does not exist")]
    NoParent(String),
    #[error("{0} is outside the naming context {1}")]
    OutsideSuffix(String, String),
    #[error("{0} has subordinate entries")]
    NotLeaf(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    ValueExists(String),
    #[error("{0}")]
    NoSuchAttribute(String),
    #[error("{0}")]
    NotAllowedOnRdn(String),
    /// The grant does not reach this change.
    #[error("{0}")]
    Denied(String),
    /// The entry was created earlier in the same batch and cannot be changed in it.
    #[error("{0} is created earlier in this batch; change it in a later one")]
    InBatch(String),
    /// A unique value (`uid`, `mail`) another entry holds: constraintViolation.
    #[error(
        "{attr} '{value}' is already held by {holder}: {}",
        unique_reason(attr)
    )]
    Taken {
        attr: &'static str,
        value: String,
        /// The holder's DN, as stored.
        holder: String,
    },
}

fn unique_reason(attr: &str) -> &'static str {
    if attr == "uid" {
        "a ONE ID names one account"
    } else {
        "a mail address belongs to one entry"
    }
}

/// What an applied batch did.
#[derive(Debug, Default)]
pub struct Applied {
    pub added: usize,
    pub replaced: usize,
    /// Import records identical to the stored entry (not written).
    pub unchanged: usize,
    pub deleted: usize,
    /// Entries brought back from their tombstones.
    pub restored: usize,
    /// Refused changes by position, in order.
    pub refused: Vec<(usize, WriteRefusal)>,
    /// The store generation the batch was written under (0 when nothing was written).
    pub generation: u64,
}

impl Applied {
    /// The first refusal, as the result of a one-change batch.
    pub fn into_result(self) -> Result<(), WriteRefusal> {
        match self.refused.into_iter().next() {
            Some((_, r)) => Err(r),
            None => Ok(()),
        }
    }
}
