//! The connection's writer task: PDUs in queue order, small ones buffered, batches straight
//! to the socket, and the give-up rule for a client that does not read.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use super::DIRECT_WRITE_BYTES;

pub(super) enum Out {
    Pdu(Bytes),
    Close,
    /// StartTLS: flush what is queued and hand the write half back.
    Handover,
}

/// Writes what the session queues, in order. A write that makes no progress for
/// `output_timeout` (a client that does not read its results) ends the writer: its queue
/// closes, so the searches feeding it stop and give their slots back, and the session loop
/// sees the queue closed and ends the connection. No notice can reach a client that does not
/// read; the socket is simply closed.
///
/// `kill` ends the writer at once, as a timeout would: a search of this connection found the
/// queue full while another of its searches already waited on it, or while the server's
/// allowance of waiting searches was spent (see `dispatch`).
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Out>,
    handover: Option<oneshot::Sender<W>>,
    output_timeout: std::time::Duration,
    kill: std::sync::Arc<tokio::sync::Notify>,
) {
    // Only PDUs below DIRECT_WRITE_BYTES are buffered: a buffer of that size serves them, and
    // an idle connection costs 16 KiB here instead of the 64 KiB it once did (2,000 idle
    // connections: 125 MiB of buffers, measured with benches/bind-burst.py).
    let mut w = BufWriter::with_capacity(DIRECT_WRITE_BYTES, wr);
    while let Some(out) = rx.recv().await {
        let mut close = false;
        let mut hand_over = false;
        let mut next = Some(out);
        while let Some(item) = next.take() {
            match item {
                Out::Pdu(b) => {
                    let write = async {
                        if b.len() >= DIRECT_WRITE_BYTES {
                            // What is buffered goes first, then the batch straight to the socket.
                            w.flush().await?;
                            w.get_mut().write_all(&b).await
                        } else {
                            w.write_all(&b).await
                        }
                    };
                    let timed = tokio::time::timeout(output_timeout, write);
                    tokio::select! {
                        result = timed => match result {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                info!(
                                    secs = output_timeout.as_secs(),
                                    "the client has not read its results in time; disconnecting"
                                );
                                return;
                            }
                        },
                        () = kill.notified() => {
                            info!("the client does not read its results and has more searches \
                                   waiting on them; disconnecting");
                            return;
                        }
                    }
                }
                Out::Close => {
                    close = true;
                    break;
                }
                Out::Handover => {
                    hand_over = true;
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        if !matches!(
            tokio::time::timeout(output_timeout, w.flush()).await,
            Ok(Ok(()))
        ) {
            return;
        }
        if hand_over {
            if let Some(back) = handover {
                let _ = back.send(w.into_inner());
            }
            return;
        }
        if close {
            let _ = w.shutdown().await;
            return;
        }
    }
    let _ = w.shutdown().await;
}
