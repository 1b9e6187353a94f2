//! ONE Pages: the LDAP directory server of a provincial secure health-mail service.
//!
//! Layers, outermost first; each depends only on the ones below it (ARCHITECTURE.md):
//!
//! | module | owns |
//! | --- | --- |
//! | [`cli`] | one file per command: parse arguments, call the library; never opens the store or the index |
//! | [`server`] | the server handle: opens the directory, starts every listener, owns the one shutdown |
//! | [`clock`] / [`audit`] / [`metrics`] | the injectable wall clock of time rules; the audit trail and access log sinks; the operators' counters |
//! | [`config`] | the configuration file, environment and flags, checked once into [`config::Settings`] |
//! | [`protocol`] | listener, session loop (generic over its byte stream), BER framing, controls, response encoding |
//! | [`ops`] | one file per LDAP operation, on typed requests and a request context; never sees bytes, the store or the index |
//! | [`dsa`] | the open directory: access decisions (grants), THE reader, THE writer |
//! | [`directory`] | the model: DNs, entries and their stored form, schema, matching rules, filters, validation, passwords |
//! | [`store`] | sled: the source of truth, written atomically and flushed before a write is acknowledged |
//! | [`index`] | tantivy: a derived, rebuildable accelerator that only narrows candidates |
//! | [`import`] / [`export`] | LDIF and CSV in (through the writer), LDIF and CSV out (through the reader) |
//! | [`policy`] | rules over the whole directory (dormant accounts), through the reader and the writer |
//! | [`background`] / [`memory`] | the CPU priority of background threads; pages a thread freed handed back after a burst of work (any layer may call them) |
//! | [`gen`] | deterministic generator of realistic directories for demos and benchmarks |
//!
//! Rules between layers: every read goes through [`dsa::Reader`] and every change through
//! [`dsa::Writer`], which only a [`dsa::WriteGrant`] opens; rights are decided against the
//! directory as it is at each operation. The store is written first and the index follows; a
//! search asks the index for candidates, reads each from the store and lets
//! [`directory::filter`] decide, so a lagging index can never add or hide an entry. Nothing
//! reachable from network or file input panics.

pub mod audit;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod dsa;
pub mod export;
pub mod gen;
pub mod import;
pub mod index;
pub mod memory;
pub mod metrics;
pub mod ops;
pub mod policy;
pub mod protocol;
pub mod server;
pub mod store;
