//! A connection's output: PDUs in order, written straight from the task that produced them
//! when nothing else is waiting to go out, else through the writer task (small ones
//! buffered, batches straight to the socket), and the give-up rule for a client that does
//! not read.
//!
//! Why two paths: handing every response to another task costs a wake-up and a task switch
//! per request, which a profile of exact look-ups at 8 connections put at about a fifth of the
//! server's CPU. So [`Output::pdu`] first tries a write that cannot wait: allowed only when no
//! PDU is queued or being written (a count kept by [`Output`] and the writer) and the writer
//! does not hold the socket. What the socket does not take at once is left to the writer task,
//! which writes it before anything else: bytes of one PDU are never split by another's.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use super::{DIRECT_WRITE_BYTES, OUTPUT_QUEUE};

pub(super) enum Out {
    Pdu(Bytes),
    /// A direct write left bytes (or a flush) to finish: nothing else to write.
    Resume,
    Close,
    /// StartTLS: flush what is queued and hand the write half back.
    Handover,
}

/// The socket's write half and what a direct write could not finish.
struct Sink<W> {
    /// `None` once the writer has ended or handed the stream back.
    w: Option<W>,
    /// Small PDUs of one writer turn, written together at its end. Empty (no memory) between
    /// turns: most responses are written directly and never need it.
    buf: Vec<u8>,
    /// The unwritten end of a PDU a direct write began.
    rest: Option<Bytes>,
    /// A direct write that the stream (TLS) has not flushed yet.
    unflushed: bool,
}

/// What the session's tasks and the writer task share.
struct Link<W> {
    sink: tokio::sync::Mutex<Sink<W>>,
    /// Items sent to the writer's queue and not yet written (counted before they are sent,
    /// uncounted by the writer while it holds the sink).
    queued: AtomicUsize,
}

/// The direct write, without the stream's type (the session does not know it).
trait Direct: Send + Sync {
    fn queued(&self) -> &AtomicUsize;
    fn try_now(&self, pdu: Bytes) -> Now;
}

enum Now {
    /// Written whole.
    Done,
    /// Begun; the writer task must finish it.
    Begun,
    /// Not attempted: queue it.
    Refused(Bytes),
}

impl<W: AsyncWrite + Send + Unpin> Direct for Link<W> {
    fn queued(&self) -> &AtomicUsize {
        &self.queued
    }

    fn try_now(&self, pdu: Bytes) -> Now {
        if self.queued.load(Ordering::Acquire) != 0 {
            return Now::Refused(pdu);
        }
        let Ok(mut sink) = self.sink.try_lock() else {
            return Now::Refused(pdu);
        };
        let sink = &mut *sink;
        if sink.rest.is_some() || sink.unflushed {
            return Now::Refused(pdu);
        }
        let Some(w) = sink.w.as_mut() else {
            return Now::Refused(pdu);
        };
        if !sink.buf.is_empty() {
            return Now::Refused(pdu);
        }
        // Polled once with a waker that does nothing: the writer task is not waiting on the
        // socket (it would hold the sink), and it polls with its own waker for what is left.
        let mut cx = Context::from_waker(Waker::noop());
        let raw = w;
        let mut written = 0;
        while let Some(left) = pdu.get(written..).filter(|l| !l.is_empty()) {
            match Pin::new(&mut *raw).poll_write(&mut cx, left) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                // Nothing taken (or an error, which the writer will meet and end on).
                _ => break,
            }
        }
        if written == 0 {
            return Now::Refused(pdu);
        }
        if written < pdu.len() {
            sink.rest = Some(pdu.slice(written..));
            return Now::Begun;
        }
        match Pin::new(raw).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => Now::Done,
            _ => {
                sink.unflushed = true;
                Now::Begun
            }
        }
    }
}

/// Where a session's tasks send their PDUs (one per writer; StartTLS starts another).
#[derive(Clone)]
pub(super) struct Output {
    tx: mpsc::Sender<Out>,
    link: Arc<dyn Direct>,
}

impl Output {
    /// Sends a PDU: written now if nothing is ahead of it, else queued (waiting for room).
    /// False when the writer has gone.
    pub(super) async fn pdu(&self, pdu: Bytes) -> bool {
        match self.link.try_now(pdu) {
            Now::Done => true,
            Now::Begun => self.resume(),
            Now::Refused(pdu) => self.send(Out::Pdu(pdu)).await,
        }
    }

    /// As [`Output::pdu`], from a blocking thread, without waiting for room: a full queue
    /// gives the PDU back.
    pub(super) fn try_pdu(&self, pdu: Bytes) -> Result<(), TrySendError<Out>> {
        match self.link.try_now(pdu) {
            Now::Done => Ok(()),
            Now::Begun => {
                self.resume();
                Ok(())
            }
            Now::Refused(pdu) => {
                self.link.queued().fetch_add(1, Ordering::AcqRel);
                self.tx.try_send(Out::Pdu(pdu)).inspect_err(|_| {
                    self.link.queued().fetch_sub(1, Ordering::AcqRel);
                })
            }
        }
    }

    /// As [`Output::pdu`], from a blocking thread. False when the writer has gone.
    pub(super) fn blocking_pdu(&self, pdu: Bytes) -> bool {
        match self.link.try_now(pdu) {
            Now::Done => true,
            Now::Begun => self.resume(),
            Now::Refused(pdu) => self.blocking_send(Out::Pdu(pdu)),
        }
    }

    /// Queues an item from a blocking thread, waiting for room. False when the writer has gone.
    pub(super) fn blocking_send(&self, out: Out) -> bool {
        self.link.queued().fetch_add(1, Ordering::AcqRel);
        self.tx.blocking_send(out).is_ok()
    }

    /// Queues an item, waiting for room. False when the writer has gone.
    pub(super) async fn send(&self, out: Out) -> bool {
        self.link.queued().fetch_add(1, Ordering::AcqRel);
        self.tx.send(out).await.is_ok()
    }

    /// Wakes the writer for what a direct write left. A full queue needs no wake-up: the
    /// writer finishes the rest before the next item it takes.
    fn resume(&self) -> bool {
        self.link.queued().fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(Out::Resume) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.link.queued().fetch_sub(1, Ordering::AcqRel);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Resolves when the writer has gone.
    pub(super) async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// A writer task for `wr` and the output that feeds it.
pub(super) fn start<W: AsyncWrite + Send + Unpin + 'static>(
    wr: W,
    handover: Option<oneshot::Sender<W>>,
    output_timeout: std::time::Duration,
    kill: Arc<tokio::sync::Notify>,
) -> (Output, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Out>(OUTPUT_QUEUE);
    // Only PDUs below DIRECT_WRITE_BYTES are buffered, and only during a writer turn: an idle
    // connection holds no output buffer (it held 64 KiB once, then 16 KiB; 2,000 idle
    // connections at 64 KiB: 125 MiB, measured with benches/bind-burst.py).
    let link = Arc::new(Link {
        sink: tokio::sync::Mutex::new(Sink {
            w: Some(wr),
            buf: Vec::new(),
            rest: None,
            unflushed: false,
        }),
        queued: AtomicUsize::new(0),
    });
    let task = tokio::spawn(write_loop(
        Arc::clone(&link),
        rx,
        handover,
        output_timeout,
        kill,
    ));
    (Output { tx, link }, task)
}

/// How one turn of the writer ended.
enum Turn {
    Continue,
    /// The writer is done (closed, failed, timed out, killed or handed over).
    End,
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
async fn write_loop<W: AsyncWrite + Send + Unpin>(
    link: Arc<Link<W>>,
    mut rx: mpsc::Receiver<Out>,
    mut handover: Option<oneshot::Sender<W>>,
    output_timeout: std::time::Duration,
    kill: Arc<tokio::sync::Notify>,
) {
    while let Some(out) = rx.recv().await {
        let mut sink = link.sink.lock().await;
        let turn = turn(
            &link,
            &mut sink,
            out,
            &mut rx,
            &mut handover,
            output_timeout,
            &kill,
        )
        .await;
        if let Turn::End = turn {
            sink.w = None;
            return;
        }
    }
    let mut sink = link.sink.lock().await;
    let sink = &mut *sink;
    if let Some(mut w) = sink.w.take() {
        if flush(&mut w, &mut sink.buf, output_timeout, &kill).await {
            let _ = tokio::time::timeout(output_timeout, w.shutdown()).await;
        }
    }
}

/// One turn, holding the sink: what a direct write left, then the queue until it is empty,
/// then a flush.
async fn turn<W: AsyncWrite + Send + Unpin>(
    link: &Link<W>,
    sink: &mut Sink<W>,
    first: Out,
    rx: &mut mpsc::Receiver<Out>,
    handover: &mut Option<oneshot::Sender<W>>,
    output_timeout: std::time::Duration,
    kill: &tokio::sync::Notify,
) -> Turn {
    let Some(w) = sink.w.as_mut() else {
        return Turn::End;
    };
    let buf = &mut sink.buf;
    if let Some(rest) = sink.rest.take() {
        if !timed_write(w, buf, &rest, output_timeout, kill).await {
            return Turn::End;
        }
    }
    sink.unflushed = false;
    let mut next = Some(first);
    while let Some(item) = next.take() {
        link.queued.fetch_sub(1, Ordering::AcqRel);
        match item {
            Out::Pdu(b) => {
                if !timed_write(w, buf, &b, output_timeout, kill).await {
                    return Turn::End;
                }
            }
            Out::Resume => {}
            Out::Close => {
                if flush(w, buf, output_timeout, kill).await {
                    let _ = tokio::time::timeout(output_timeout, w.shutdown()).await;
                }
                return Turn::End;
            }
            Out::Handover => {
                if !flush(w, buf, output_timeout, kill).await {
                    return Turn::End;
                }
                if let (Some(back), Some(w)) = (handover.take(), sink.w.take()) {
                    let _ = back.send(w);
                }
                return Turn::End;
            }
        }
        next = rx.try_recv().ok();
    }
    let flushed = flush(w, buf, output_timeout, kill).await;
    // The buffer's memory goes back between turns.
    sink.buf = Vec::new();
    if flushed {
        Turn::Continue
    } else {
        Turn::End
    }
}

/// Writes what is buffered and flushes the stream. False when the writer must end.
async fn flush<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &mut Vec<u8>,
    output_timeout: std::time::Duration,
    kill: &tokio::sync::Notify,
) -> bool {
    let write = async {
        write_buffered(w, buf).await?;
        w.flush().await
    };
    bounded(write, output_timeout, kill).await
}

/// Writes one PDU (small ones into the turn's buffer, batches straight to the socket after
/// what is buffered), giving up after `output_timeout` without progress or when `kill`
/// fires. False when the writer must end.
async fn timed_write<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &mut Vec<u8>,
    b: &[u8],
    output_timeout: std::time::Duration,
    kill: &tokio::sync::Notify,
) -> bool {
    if b.len() < DIRECT_WRITE_BYTES && buf.len() + b.len() <= DIRECT_WRITE_BYTES {
        if buf.capacity() == 0 {
            buf.reserve_exact(DIRECT_WRITE_BYTES);
        }
        buf.extend_from_slice(b);
        return true;
    }
    let write = async {
        write_buffered(w, buf).await?;
        if b.len() >= DIRECT_WRITE_BYTES {
            w.write_all(b).await
        } else {
            buf.extend_from_slice(b);
            Ok(())
        }
    };
    bounded(write, output_timeout, kill).await
}

/// Writes what the turn's buffer holds and empties it.
async fn write_buffered<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    if !buf.is_empty() {
        w.write_all(buf).await?;
        buf.clear();
    }
    Ok(())
}

/// Runs one write, giving up after `output_timeout` without completion or when `kill` fires
/// (every write of the writer goes through here: one that waits on a client that does not
/// read must end when told to). False when the writer must end.
async fn bounded(
    write: impl std::future::Future<Output = std::io::Result<()>>,
    output_timeout: std::time::Duration,
    kill: &tokio::sync::Notify,
) -> bool {
    let timed = tokio::time::timeout(output_timeout, write);
    tokio::select! {
        result = timed => match result {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                info!(
                    secs = output_timeout.as_secs(),
                    "the client has not read its results in time; disconnecting"
                );
                false
            }
        },
        () = kill.notified() => {
            info!("the client does not read its results and has more searches \
                   waiting on them; disconnecting");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A PDU of the test: sender, sequence number, length, then that many filler bytes.
    fn pdu(sender: u8, seq: u32, len: usize) -> Bytes {
        let mut v = vec![sender];
        v.extend(seq.to_be_bytes());
        v.extend(u32::try_from(len).unwrap().to_be_bytes());
        v.extend(std::iter::repeat_n(sender ^ 0x5a, len));
        Bytes::from(v)
    }

    /// Senders writing directly and through the queue at once, to a reader slower than they
    /// are (a pipe of 1 KiB): every PDU arrives whole, and each sender's in its order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_and_queued_writes_never_split_or_reorder_a_senders_pdus() {
        let (wr, mut rd) = tokio::io::duplex(1024);
        let kill = Arc::new(tokio::sync::Notify::new());
        let (out, task) = start(wr, None, std::time::Duration::from_secs(30), kill);
        let senders = 6u8;
        let each = 100u32;
        let mut jobs = Vec::new();
        for s in 0..senders {
            let out = out.clone();
            jobs.push(tokio::spawn(async move {
                for seq in 0..each {
                    // Small, middling and batch-sized PDUs (past DIRECT_WRITE_BYTES).
                    let len = match (seq + u32::from(s)) % 3 {
                        0 => 20,
                        1 => 3000,
                        _ => DIRECT_WRITE_BYTES + 500,
                    };
                    let p = pdu(s, seq, len);
                    if seq % 2 == 0 {
                        assert!(out.pdu(p).await);
                    } else {
                        let out = out.clone();
                        // From a blocking thread, as a streaming search sends.
                        tokio::task::spawn_blocking(move || assert!(out.blocking_pdu(p)))
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        let reader = tokio::spawn(async move {
            let mut next = vec![0u32; usize::from(senders)];
            let mut seen = 0;
            while seen < u32::from(senders) * each {
                let mut head = [0u8; 9];
                rd.read_exact(&mut head).await.unwrap();
                let [s, a, b, c, d, e, f, g, h] = head;
                let seq = u32::from_be_bytes([a, b, c, d]);
                let len = u32::from_be_bytes([e, f, g, h]) as usize;
                let mut body = vec![0u8; len];
                rd.read_exact(&mut body).await.unwrap();
                assert!(body.iter().all(|&x| x == s ^ 0x5a), "a PDU was split");
                let want = next.get_mut(usize::from(s)).expect("a sender byte");
                assert_eq!(seq, *want, "sender {s} out of order");
                *want += 1;
                seen += 1;
                if seen % 7 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            rd
        });
        for j in jobs {
            tokio::time::timeout(std::time::Duration::from_secs(20), j)
                .await
                .expect("every sender done")
                .unwrap();
        }
        let mut rd = tokio::time::timeout(std::time::Duration::from_secs(20), reader)
            .await
            .expect("every PDU arrived")
            .unwrap();
        assert!(out.send(Out::Close).await);
        task.await.unwrap();
        let mut rest = Vec::new();
        rd.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "bytes after the last PDU");
    }
}
