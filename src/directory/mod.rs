//! The directory model: DNs, entries, the schema and its matching rules, filters, and who may
//! see what. Pure logic: no I/O, no storage, no protocol types beyond the decoded filter.

pub mod access;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod filter_text;
pub mod matching;
pub mod password;
pub mod schema;
pub mod validate;
