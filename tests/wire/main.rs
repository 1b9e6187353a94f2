//! Wire tests: the real server on an ephemeral loopback port, driven by real clients
//! (the `ldap3` crate, and raw BER for what clients like Outlook send byte for byte).

// Test helpers fail loudly by design; the no-panic rule is for the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod access;
mod admin;
mod bind;
mod browse;
mod budgets;
mod certificates;
mod clients;
mod crash;
mod dormant;
mod lockout;
mod operators;
mod properties;
mod protocol;
mod search;
mod secure;
mod standards;
mod support;
mod tls;
mod trash;
mod writes;
