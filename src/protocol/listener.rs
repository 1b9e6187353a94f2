//! The listener: accepts connections under a cap and stops cleanly.
//!
//! Each connection holds a semaphore permit; past the cap a new client gets a Notice of
//! Disconnection (busy) instead of a silent hang. Shutdown stops accepting, tells every
//! connection to finish (they abandon running searches and send a notice), waits for them,
//! then commits the index and flushes the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ldap3_proto::proto::LdapResultCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::connection;
use super::encode::notice_of_disconnection;
use crate::dsa::Dsa;

/// Accepts connections on `listener` until `shutdown` completes, then stops cleanly.
pub async fn run(listener: TcpListener, dsa: Arc<Dsa>, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(dsa.settings.limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    let notice = notice_of_disconnection(LdapResultCode::Busy, "too many connections; try again shortly");
                    tokio::spawn(async move {
                        let _ = stream.write_all(&notice).await;
                        let _ = stream.shutdown().await;
                    });
                    continue;
                };
                next_id += 1;
                let dsa = Arc::clone(&dsa);
                let rx = stop_rx.clone();
                let id = next_id;
                tasks.spawn(async move {
                    connection::serve(stream, dsa, rx, id).await;
                    drop(permit);
                });
                // Reap finished connections so the set does not grow.
                while tasks.try_join_next().is_some() {}
            }
            () = &mut shutdown => break,
        }
    }
    info!("shutting down: closing connections");
    let _ = stop_tx.send(true);
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("some connections did not finish in time");
        tasks.abort_all();
    }
    let dsa2 = Arc::clone(&dsa);
    match tokio::task::spawn_blocking(move || dsa2.shutdown()).await {
        Ok(Ok(())) => info!("index committed and store flushed"),
        Ok(Err(e)) => warn!(error = %e, "shutdown flush failed"),
        Err(e) => warn!(error = %e, "shutdown task failed"),
    }
}
