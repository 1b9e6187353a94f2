//! What every operation is handed besides its request: who is asking, from where, over what,
//! and the rights the directory gives that identity now.

use crate::dsa::{Grant, Identity};

/// How the bytes of a session travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
        }
    }
}

/// One operation's context.
#[derive(Clone, Debug)]
pub struct RequestContext<'a> {
    /// The client's address (`ip:port`).
    pub peer: &'a str,
    pub transport: Transport,
    /// Who the session bound as.
    pub identity: &'a Identity,
    /// What that identity may do, decided for this operation.
    pub grant: Grant,
    /// `<connection>.<message id>`: names the operation in logs and fault reports.
    pub request_id: String,
}

impl RequestContext<'_> {
    /// A context for work that has no connection (tests, benchmarks, in-process callers).
    pub fn local<'a>(identity: &'a Identity, grant: Grant) -> RequestContext<'a> {
        RequestContext {
            peer: "local",
            transport: Transport::Plain,
            identity,
            grant,
            request_id: "local".into(),
        }
    }
}
