//! The directory model: DNs, entries and their stored record form, the schema and its matching
//! rules, filters, validation and value checks, password hashing, and the one rule on secret
//! attributes. Pure logic: no I/O, no storage, no protocol types beyond the decoded filter. The
//! store and the index build on it; the open directory (`dsa`) puts them together.

pub mod certificate;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod filter_text;
pub mod matching;
pub mod password;
pub mod record;
pub mod schema;
pub mod secret;
pub mod validate;
pub mod values;

/// The domain of ONE ID usernames (`firstname.lastname@oneid.on.ca`): sign-in names, not mail.
pub const ONE_ID_DOMAIN: &str = "oneid.on.ca";
/// The secure mail service's own domain, secure by default.
pub const SERVICE_DOMAIN: &str = "one-mail.on.ca";
