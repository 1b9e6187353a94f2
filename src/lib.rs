//! ONE Pages: the LDAP directory server of a provincial secure health-mail service.
//!
//! Layers, outermost first; each depends only on the ones below it:
//!
//! | module | owns |
//! | --- | --- |
//! | [`cli`] | one file per command: parse arguments, call the library |
//! | [`config`] | the configuration file, environment and flags, checked once into [`config::Settings`] |
//! | [`protocol`] | listener, connection loop, BER framing, controls, response encoding |
//! | [`ops`] | one file per LDAP operation, on typed requests; never sees bytes |
//! | [`server`] | start-up: open the data directory, listen, serve until stopped |
//! | [`dsa`] | the open directory: schema, store and index together, and the single writer path |
//! | [`directory`] | DNs, entries, schema, matching rules, filters, access rules |
//! | [`store`] | sled: the source of truth, written atomically and flushed before a write is acknowledged |
//! | [`index`] | tantivy: a derived, rebuildable accelerator that only narrows candidates |
//! | [`import`] / [`export`] | LDIF and CSV in, LDIF and CSV out |
//! | [`gen`] | deterministic generator of realistic directories for demos and benchmarks |
//!
//! Rules between layers: the store is written first and the index follows; a search asks the
//! index for candidates, reads each from the store and lets [`directory::filter`] decide, so a
//! lagging index can never add or hide an entry. Nothing reachable from network or file input
//! panics.

pub mod cli;
pub mod config;
pub mod directory;
pub mod dsa;
pub mod export;
pub mod gen;
pub mod import;
pub mod index;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod store;
