//! The one rule on secret attributes: a password hash never leaves the server.
//!
//! `userPassword` is never returned, never matched by a filter (an item on it is Undefined,
//! RFC 4511 §4.5.1.7, as for an attribute the requester may not see), never compared and never
//! a sort key, for every identity, administrators included: they may replace a password,
//! never read one. Every place that returns, filters, compares or sorts asks [`is_secret`].

/// Attributes whose values nobody may read, in the schema's spelling.
const SECRET: &[&str] = &["userPassword"];

/// Whether an attribute (any case, options ignored) is secret.
pub fn is_secret(name: &str) -> bool {
    let base = name.split(';').next().unwrap_or(name);
    SECRET.iter().any(|s| s.eq_ignore_ascii_case(base))
}

/// [`is_secret`] for a stored attribute name.
pub fn is_secret_bytes(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(is_secret)
}

/// Attributes only administrators read: when someone last signed in, when and why an account
/// changed status, why it is exempt from the dormancy rules. For everyone else they are as an
/// attribute they may not see: never returned, Undefined in a filter, never compared, never a
/// sort key (a filter or a sort on them would tell what a read cannot).
const PRIVATE: &[&str] = &[
    "onePagesLastSignIn",
    "onePagesExemptUntil",
    "onePagesExemptReason",
    "onePagesStatusReason",
    "onePagesStatusChanged",
];

/// Whether an attribute (any case, options ignored) is shown to administrators only.
pub fn is_private(name: &str) -> bool {
    let base = name.split(';').next().unwrap_or(name);
    PRIVATE.iter().any(|s| s.eq_ignore_ascii_case(base))
}

/// What a reader may see of the stored attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Everything but the secret attributes (administrators, the server itself).
    Full,
    /// Neither the secret nor the private attributes (every other identity).
    Public,
}

impl Sight {
    /// Whether an attribute is hidden from this sight.
    pub fn hides(self, name: &str) -> bool {
        is_secret(name) || (self == Sight::Public && is_private(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_secret_in_any_spelling() {
        assert!(is_secret("userPassword"));
        assert!(is_secret("USERPASSWORD"));
        assert!(is_secret("userPassword;binary"));
        assert!(is_secret_bytes(b"userpassword"));
        assert!(!is_secret("cn"));
        assert!(!is_secret_bytes(b"mail"));
    }

    #[test]
    fn private_attributes_are_hidden_from_the_public_sight_only() {
        assert!(Sight::Public.hides("onePagesLastSignIn"));
        assert!(Sight::Public.hides("ONEPAGESEXEMPTREASON"));
        assert!(!Sight::Full.hides("onePagesLastSignIn"));
        assert!(Sight::Full.hides("userPassword"));
        assert!(!Sight::Public.hides("mail"));
    }
}
