//! One LDAP listener, plain or LDAPS: accepts connections under the server's cap until told
//! to stop. An LDAPS connection's TLS handshake runs on the connection's own task, within
//! [`HANDSHAKE_TIMEOUT`]; a client that fails it is closed and nobody else waits for it.
//!
//! Each connection holds a permit of the server-wide cap; past it a new client gets a Notice
//! of Disconnection (busy) instead of a silent hang. When the stop signal comes, the listener
//! stops accepting; its connections see the same signal (they abandon running searches and
//! send a notice), and it waits for them within a bound. Ending the directory is not its
//! business: the server handle does that once every listener has returned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ldap3_proto::proto::LdapResultCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::connection::{self, ConnInfo};
use super::encode::notice_of_disconnection;
use super::stream::Locked;
use super::tls::{TlsCertificates, HANDSHAKE_TIMEOUT};
use super::Shared;
use crate::ops::context::Transport;

/// How long connections get to finish after the stop signal before they are dropped.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Accepts LDAP connections on `listener` (over TLS from the first byte when `tls` is given)
/// until `stop` turns true, then waits for its connections (at most [`DRAIN_GRACE`]). `ids`
/// numbers connections across listeners.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<TlsCertificates>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    ids: Arc<AtomicU64>,
) {
    let mut tasks = JoinSet::new();
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Plain
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
                    shared.metrics.refused("max_connections");
                    let notice = notice_of_disconnection(LdapResultCode::Busy, "too many connections; try again shortly");
                    tokio::spawn(async move {
                        let _ = stream.write_all(&notice).await;
                        let _ = stream.shutdown().await;
                    });
                    continue;
                };
                let Some(claim) = shared.claim_ip(peer.ip()) else {
                    debug!(%peer, "refused: too many connections from this address");
                    shared.metrics.refused("max_connections_per_ip");
                    let notice = notice_of_disconnection(
                        LdapResultCode::Busy,
                        &format!(
                            "too many connections from your address (at most {}); close some and try again",
                            shared.dsa.settings().limits.max_connections_per_ip
                        ),
                    );
                    tokio::spawn(async move {
                        let _ = stream.write_all(&notice).await;
                        let _ = stream.shutdown().await;
                    });
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let info = ConnInfo {
                    id: ids.fetch_add(1, Ordering::Relaxed) + 1,
                    peer: peer.to_string(),
                    transport,
                };
                let shared = Arc::clone(&shared);
                let rx = stop.clone();
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                tasks.spawn(async move {
                    match acceptor {
                        None => connection::serve(stream, info, shared, rx).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls_stream)) => {
                                    connection::serve(Locked(tls_stream), info, shared, rx).await;
                                }
                                Ok(Err(e)) => {
                                    debug!(peer = %info.peer, error = %e, "TLS handshake failed");
                                }
                                Err(_) => {
                                    debug!(peer = %info.peer, "TLS handshake timed out");
                                }
                            }
                        }
                    }
                    drop(claim);
                    drop(permit);
                });
                // Reap finished connections so the set does not grow.
                while tasks.try_join_next().is_some() {}
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    info!(
        connections = tasks.len(),
        "listener stopped; closing its connections"
    );
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("some connections did not finish in time");
        tasks.abort_all();
    }
}
