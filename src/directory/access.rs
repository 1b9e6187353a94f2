//! Access rules: who is bound, and what that identity may read and write.
//!
//! ONE Pages holds health-care staff details, so nothing is readable before a successful bind
//! unless the operator allows anonymous reading. Password hashes are never readable over LDAP,
//! not even by administrators (they can replace them, never read them). Writes need the
//! `admin` role (`onePagesRole: admin` on the bound entry, or a DN listed in the configuration).

/// The identity a connection is bound as.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Identity {
    /// Not bound, or bound anonymously / unauthenticated (RFC 4513 §5.1).
    #[default]
    Anonymous,
    User {
        dn: String,
        ndn: String,
        is_admin: bool,
    },
}

impl Identity {
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Identity::User { .. })
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Identity::User { is_admin: true, .. })
    }

    /// The authorization identity of RFC 4532 (`dn:...`, or empty for anonymous).
    pub fn authz_id(&self) -> String {
        match self {
            Identity::Anonymous => String::new(),
            Identity::User { dn, .. } => format!("dn:{dn}"),
        }
    }

    pub fn dn(&self) -> &str {
        match self {
            Identity::Anonymous => "",
            Identity::User { dn, .. } => dn,
        }
    }
}

/// The access policy of one server.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    pub anonymous_read: bool,
}

impl AccessPolicy {
    /// May this identity read directory entries at all?
    pub fn may_read(&self, who: &Identity) -> bool {
        who.is_authenticated() || self.anonymous_read
    }

    pub fn may_write(&self, who: &Identity) -> bool {
        who.is_admin()
    }

    /// May this attribute be returned or filtered on? Password hashes never leave the server.
    pub fn may_read_attribute(&self, _who: &Identity, attr: &str) -> bool {
        !attr.eq_ignore_ascii_case("userPassword")
    }
}
