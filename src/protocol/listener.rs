//! One LDAP listener: accepts connections under the server's cap until told to stop.
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
use tracing::{info, warn};

use super::connection::{self, ConnInfo};
use super::encode::notice_of_disconnection;
use super::Shared;
use crate::ops::context::Transport;

/// How long connections get to finish after the stop signal before they are dropped.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Accepts plain LDAP connections on `listener` until `stop` turns true, then waits for its
/// connections (at most [`DRAIN_GRACE`]). `ids` numbers connections across listeners.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    ids: Arc<AtomicU64>,
) {
    let mut tasks = JoinSet::new();
    let transport = Transport::Plain;
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
                    let notice = notice_of_disconnection(LdapResultCode::Busy, "too many connections; try again shortly");
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
                tasks.spawn(async move {
                    connection::serve(stream, info, shared, rx).await;
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
