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
    /// Names the operation in logs and fault reports.
    pub request_id: RequestId,
    /// The server's online imports (none outside a server).
    pub imports: Option<&'a crate::import::online::Imports>,
    /// The server's figures for `cn=Monitor` (none outside a server).
    pub monitor: Option<Monitor<'a>>,
}

/// What `cn=Monitor` is read from.
#[derive(Clone, Copy)]
pub struct Monitor<'a>(pub &'a dyn crate::metrics::Observe);

impl std::fmt::Debug for Monitor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Monitor")
    }
}

/// `<connection>.<message id>`, formatted only when logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    pub connection: u64,
    pub msgid: i32,
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.connection, self.msgid)
    }
}

impl RequestContext<'_> {
    /// The operation's span (debug level: free unless debug logging is on), so that what the
    /// operation logs names its request.
    pub fn span(&self) -> tracing::Span {
        tracing::debug_span!("op", request = %self.request_id, role = self.grant.role().map_or("anonymous", |r| r.name()))
    }

    /// A context for work that has no connection (tests, benchmarks, in-process callers).
    pub fn local<'a>(identity: &'a Identity, grant: Grant) -> RequestContext<'a> {
        RequestContext {
            peer: "local",
            transport: Transport::Plain,
            identity,
            grant,
            request_id: RequestId {
                connection: 0,
                msgid: 0,
            },
            imports: None,
            monitor: None,
        }
    }
}
