//! One client connection: read PDUs, dispatch operations, write responses in order.
//!
//! Reading and writing are separate tasks joined by a bounded channel, so a search streams its
//! entries while the reader keeps taking requests (an Abandon must get through). Searches run
//! on the blocking pool, a few at a time per connection; every other operation runs to
//! completion before the next request is read, which keeps their effects in request order.
//! A PDU that cannot be framed or decoded ends the connection with a Notice of Disconnection;
//! nothing a client sends can affect another connection.
//!
//! The loop is generic over its byte stream (plain TCP today, TLS the same way), and hands
//! every operation a [`RequestContext`]: the peer, the transport, the session's identity and
//! the grant the directory gives that identity for this operation.
//!
//! Files: this one has the connection, its session loop (deadlines, StartTLS, the end);
//! `dispatch` runs one request; `writer` is the writer task; `access_log` formats its lines.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncReadExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, Instrument};

use super::encode::{encode, encode_found_into, notice_of_disconnection, response_for};
use super::frame::{decode, frame_len, Control, Request};
use super::stream::{ByteStream, Locked};
use super::tls::HANDSHAKE_TIMEOUT;
use super::Shared;
use crate::dsa::{Dsa, GrantCache, Identity};
use crate::ops::context::{RequestContext, RequestId, Transport};
use crate::ops::search::dse::START_TLS_OID;
use crate::ops::search::{SearchEnd, SearchRequest};
use crate::ops::{self, OpError};

mod access_log;
mod dispatch;
mod writer;

use dispatch::{dispatch, Next};
use writer::{Out, Output};

/// BER nesting allowed in a request; deep filters are refused later, with a result code.
const MAX_BER_DEPTH: usize = 256;
/// Encoded entries handed to the writer at once (the last batch goes when the search ends).
const STREAM_BATCH_BYTES: usize = 64 * 1024;
/// PDUs (batches) this large skip the connection's write buffer: one copy fewer.
const DIRECT_WRITE_BYTES: usize = 16 * 1024;
/// Entries a search sends before it lets queued searches take its slot.
const SLOT_TURN_ENTRIES: usize = 128;
/// PDUs or batches queued for a connection's writer: at most this × STREAM_BATCH_BYTES
/// (2 MiB) waits in memory for a client that reads slowly.
const OUTPUT_QUEUE: usize = 32;

/// A search waiting for room in its connection's writer queue (see [`Conn::claim_stall`]).
struct StallGuard<'c> {
    conn: &'c Conn,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for StallGuard<'_> {
    fn drop(&mut self) {
        self.conn.stalled.store(false, Ordering::Release);
    }
}

/// Who a connection is: its number, its peer and its transport.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: String,
    pub transport: Transport,
}

struct Conn {
    dsa: Arc<Dsa>,
    shared: Arc<Shared>,
    info: ConnInfo,
    paging: Arc<Mutex<ops::search::PagedSearches>>,
    identity: RwLock<Identity>,
    /// The last access decision for the session's identity (see `dsa::access`).
    grants: Mutex<GrantCache>,
    running: Mutex<HashMap<i32, Arc<AtomicBool>>>,
    /// Where responses go (replaced once, when StartTLS starts a new writer).
    tx: RwLock<Output>,
    /// Whether the session runs over TLS (from the first byte, or since StartTLS).
    tls: AtomicBool,
    searches: Arc<Semaphore>,
    /// Whether one of this connection's searches waits, holding a thread, for room in the
    /// writer's queue; and the signal that ends the writer (a second one would wait too).
    stalled: AtomicBool,
    kill: Arc<tokio::sync::Notify>,
    /// Counts the connection as open, by transport, while it lives.
    gauge: Mutex<crate::metrics::ConnectionGauge>,
    /// When the connection was accepted, and whether its first whole request has come.
    started: tokio::time::Instant,
    first_request_done: AtomicBool,
}

impl Conn {
    fn identity(&self) -> Identity {
        self.identity.read().map(|i| i.clone()).unwrap_or_default()
    }

    fn sender(&self) -> Output {
        match self.tx.read() {
            Ok(tx) => tx.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn transport(&self) -> Transport {
        if self.tls.load(Ordering::Acquire) {
            Transport::Tls
        } else {
            Transport::Plain
        }
    }

    /// Lets one search wait for room in the writer's queue while holding its thread: only
    /// if no other search of this connection waits, and the server's allowance
    /// (`max_stalled_searches`) is not spent.
    fn claim_stall(&self) -> Option<StallGuard<'_>> {
        if self.stalled.swap(true, Ordering::AcqRel) {
            return None;
        }
        match Arc::clone(&self.shared.stalled_searches).try_acquire_owned() {
            Ok(permit) => Some(StallGuard {
                conn: self,
                _permit: permit,
            }),
            Err(_) => {
                self.stalled.store(false, Ordering::Release);
                None
            }
        }
    }

    /// Whether any operation of this session is still running (StartTLS needs none).
    fn is_busy(&self) -> bool {
        let running = self.running.lock().map(|m| !m.is_empty()).unwrap_or(true);
        running
            || self.searches.available_permits()
                < self.dsa.settings().limits.max_searches_per_connection
    }

    /// The context of one operation: the grant is decided now, against the directory as it is.
    fn context<'a>(&'a self, identity: &'a Identity, msgid: i32) -> RequestContext<'a> {
        let grant = match self.grants.lock() {
            Ok(mut cache) => self.dsa.grant(identity, &mut cache),
            Err(_) => self.dsa.grant(identity, &mut GrantCache::default()),
        };
        RequestContext {
            peer: &self.info.peer,
            transport: self.transport(),
            identity,
            grant,
            request_id: RequestId {
                connection: self.info.id,
                msgid,
            },
            imports: Some(&self.shared.imports),
            monitor: Some(crate::ops::context::Monitor(&*self.shared)),
        }
    }

    /// One access-log line for this connection's operation `msgid`, when the log is on (the
    /// line is only formatted then).
    /// An answered operation, for the metrics.
    fn measure(&self, op: &'static str, code: i32, started: std::time::Instant) {
        self.shared.metrics.operation(op, code, started);
    }

    fn access(&self, msgid: i32, line: impl FnOnce() -> String) {
        if let Some(log) = &self.shared.access_log {
            log.line(&format!("conn={} op={msgid} {}", self.info.id, line()));
        }
    }

    /// An access-log line about the connection itself.
    fn connection_line(&self, line: impl FnOnce() -> String) {
        if let Some(log) = &self.shared.access_log {
            log.line(&format!("conn={} {}", self.info.id, line()));
        }
    }

    async fn send(&self, msg: LdapMsg) {
        self.sender().pdu(encode(msg).freeze()).await;
    }

    async fn reply(&self, msgid: i32, op_tag: u64, result: LdapResult) {
        self.measure(
            dispatch::op_name(op_tag),
            result.code.clone() as i32,
            std::time::Instant::now(),
        );
        if let Some(op) = response_for(op_tag, result) {
            self.send(LdapMsg::new(msgid, op)).await;
        }
    }

    async fn disconnect(&self, code: LdapResultCode, message: &str) {
        let tx = self.sender();
        tx.send(Out::Pdu(notice_of_disconnection(code, message).freeze()))
            .await;
        tx.send(Out::Close).await;
    }

    fn abandon_all(&self) {
        if let Ok(map) = self.running.lock() {
            for flag in map.values() {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// How a session phase ended.
enum PhaseEnd {
    /// The client left, misbehaved, idled out, or the server stops.
    Closed,
    /// A StartTLS request was accepted: answer it, then upgrade the stream.
    StartTls { msgid: i32 },
}

/// Serves one connection until the client leaves, misbehaves, idles out, or the server stops.
pub async fn serve<S: ByteStream>(
    stream: S,
    info: ConnInfo,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("conn", id = info.id, peer = %info.peer, transport = info.transport.name());
    async move {
        debug!("connected");
        let dsa = Arc::clone(&shared.dsa);
        let (mut rd, wr) = stream.into_halves();
        let (back_tx, back_rx) = oneshot::channel();
        let kill = Arc::new(tokio::sync::Notify::new());
        let (tx, writer) = writer::start(
            wr,
            Some(back_tx),
            dsa.settings().limits.output_timeout,
            Arc::clone(&kill),
        );
        let gauge = Mutex::new(shared.metrics.connection(info.transport.name()));
        let conn = Arc::new(Conn {
            gauge,
            dsa: Arc::clone(&dsa),
            tls: AtomicBool::new(info.transport == Transport::Tls),
            shared,
            info,
            grants: Mutex::new(GrantCache::default()),
            paging: Arc::new(Mutex::new(ops::search::PagedSearches::default())),
            identity: RwLock::new(Identity::Anonymous),
            running: Mutex::new(HashMap::new()),
            tx: RwLock::new(tx),
            searches: Arc::new(Semaphore::new(
                dsa.settings().limits.max_searches_per_connection,
            )),
            started: tokio::time::Instant::now(),
            first_request_done: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            kill,
        });
        conn.connection_line(|| {
            format!(
                "ACCEPT from={} transport={}",
                conn.info.peer,
                conn.info.transport.name()
            )
        });
        let mut buf = BytesMut::with_capacity(4096);
        let end = session(&conn, &mut rd, &mut buf, &mut shutdown).await;
        let writer = match end {
            PhaseEnd::Closed => writer,
            PhaseEnd::StartTls { msgid } => {
                match start_tls::<S>(&conn, msgid, rd, &buf, writer, back_rx).await {
                    Some((mut tls_rd, tls_writer)) => {
                        conn.connection_line(|| "STARTTLS established".into());
                        let _ = session(&conn, &mut tls_rd, &mut buf, &mut shutdown).await;
                        tls_writer
                    }
                    None => {
                        debug!("closed after a failed StartTLS");
                        conn.connection_line(|| "CLOSED after a failed StartTLS handshake".into());
                        return;
                    }
                }
            }
        };
        finish(&conn, writer).await;
        conn.connection_line(|| "CLOSED".into());
        drop(conn);
        debug!("closed");
    }
    .instrument(span)
    .await
}

/// Reads and dispatches requests until the session ends or asks for TLS.
async fn session<R: AsyncRead + Unpin>(
    conn: &Arc<Conn>,
    rd: &mut R,
    buf: &mut BytesMut,
    shutdown: &mut watch::Receiver<bool>,
) -> PhaseEnd {
    let limits = conn.dsa.settings().limits;
    let first_deadline = conn.started + limits.first_request_timeout;
    let writer_gone = conn.sender();
    let mut request_began: Option<tokio::time::Instant> = None;
    loop {
        loop {
            match frame_len(buf, limits.max_pdu_bytes) {
                Ok(Some(n)) => {
                    let pdu = buf.split_to(n);
                    conn.first_request_done.store(true, Ordering::Relaxed);
                    // What is left of the buffer (pipelined requests) starts afresh.
                    request_began = None;
                    match decode(&pdu, MAX_BER_DEPTH) {
                        Ok(req) => match dispatch(conn, req).await {
                            Next::Continue => {}
                            Next::Stop => return PhaseEnd::Closed,
                            Next::StartTls(msgid) => return PhaseEnd::StartTls { msgid },
                        },
                        Err(e) => {
                            info!(error = %e, "undecodable request; disconnecting");
                            conn.disconnect(LdapResultCode::ProtocolError, &e.to_string())
                                .await;
                            return PhaseEnd::Closed;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    info!(error = %e, "bad PDU framing; disconnecting");
                    conn.disconnect(LdapResultCode::ProtocolError, &e.to_string())
                        .await;
                    return PhaseEnd::Closed;
                }
            }
        }
        // The next read waits until the earliest deadline: the idle timeout; for a request
        // begun, the rest of it (a client dripping bytes cannot keep it open); for a new
        // connection, its first request.
        let now = tokio::time::Instant::now();
        if buf.is_empty() {
            request_began = None;
        } else if request_began.is_none() {
            request_began = Some(now);
        }
        let mut deadline = now + limits.idle_timeout;
        let mut why = Deadline::Idle;
        if let Some(began) = request_began {
            let end = began + limits.request_timeout;
            if end < deadline {
                deadline = end;
                why = Deadline::Request;
            }
        }
        if !conn.first_request_done.load(Ordering::Relaxed) {
            let end = first_deadline;
            if end < deadline {
                deadline = end;
                why = Deadline::FirstRequest;
            }
        }
        tokio::select! {
            read = tokio::time::timeout_at(deadline, rd.read_buf(buf)) => {
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return PhaseEnd::Closed,
                    Ok(Ok(_)) => {}
                    Err(_) => match why {
                        Deadline::Request => {
                            info!(secs = limits.request_timeout.as_secs(), "request not completed in time; disconnecting");
                            conn.disconnect(
                                LdapResultCode::Unavailable,
                                &format!(
                                    "a request must arrive whole within {} s of its first byte",
                                    limits.request_timeout.as_secs()
                                ),
                            )
                            .await;
                            return PhaseEnd::Closed;
                        }
                        Deadline::FirstRequest => {
                            debug!("no first request in time");
                            conn.disconnect(
                                LdapResultCode::Unavailable,
                                &format!(
                                    "a new connection must send its first request within {} s",
                                    limits.first_request_timeout.as_secs()
                                ),
                            )
                            .await;
                            return PhaseEnd::Closed;
                        }
                        Deadline::Idle => {
                            let busy = conn.running.lock().map(|m| !m.is_empty()).unwrap_or(false);
                            if !busy {
                                debug!("idle timeout");
                                conn.disconnect(LdapResultCode::Unavailable, "idle timeout").await;
                                return PhaseEnd::Closed;
                            }
                        }
                    },
                }
            }
            () = writer_gone.closed() => {
                // The writer gave up on a client that does not read: end the session.
                conn.abandon_all();
                return PhaseEnd::Closed;
            }
            _ = shutdown.changed() => {
                conn.abandon_all();
                conn.disconnect(LdapResultCode::Unavailable, "the server is shutting down").await;
                return PhaseEnd::Closed;
            }
        }
    }
}

/// StartTLS (RFC 4511 §4.14, RFC 4513 §3): answers success in clear, takes the write half
/// back from the writer task, joins the halves and runs the TLS handshake on the same
/// stream. The session's identity is kept (RFC 4513 §3 allows either). A client that sent
/// more before the response, or whose handshake fails, is disconnected.
async fn start_tls<S: ByteStream>(
    conn: &Arc<Conn>,
    msgid: i32,
    rd: S::Read,
    buf: &BytesMut,
    writer: tokio::task::JoinHandle<()>,
    back: oneshot::Receiver<S::Write>,
) -> Option<(ReadHalf<TlsStream<TcpStream>>, tokio::task::JoinHandle<()>)> {
    let tls = conn.shared.tls.clone()?;
    if !buf.is_empty() {
        conn.disconnect(
            LdapResultCode::ProtocolError,
            "requests sent after StartTLS before its response",
        )
        .await;
        let _ = writer.await;
        return None;
    }
    let response = LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
        res: ops::success(),
        name: Some(START_TLS_OID.to_string()),
        value: None,
    });
    conn.measure("extended", 0, std::time::Instant::now());
    conn.send(LdapMsg::new(msgid, response)).await;
    conn.sender().send(Out::Handover).await;
    let wr = back.await.ok()?;
    let _ = writer.await;
    let tcp = S::unsplit(rd, wr)?.into_tcp()?;
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(error = %e, "StartTLS handshake failed");
            return None;
        }
        Err(_) => {
            debug!("StartTLS handshake timed out");
            return None;
        }
    };
    conn.tls.store(true, Ordering::Release);
    if let Ok(mut gauge) = conn.gauge.lock() {
        gauge.upgrade(Transport::Tls.name());
    }
    let (tls_rd, tls_wr) = Locked(stream).into_halves();
    let (tx, writer) = writer::start(
        tls_wr,
        None,
        conn.dsa.settings().limits.output_timeout,
        Arc::clone(&conn.kill),
    );
    if let Ok(mut current) = conn.tx.write() {
        *current = tx;
    }
    debug!("StartTLS: the session continues over TLS");
    Some((tls_rd, writer))
}

/// Ends a session: running searches are abandoned and get a grace period; a client that
/// stopped reading cannot hold them up (past it the writer goes, and their sends fail).
async fn finish(conn: &Arc<Conn>, writer: tokio::task::JoinHandle<()>) {
    conn.abandon_all();
    let all =
        u32::try_from(conn.dsa.settings().limits.max_searches_per_connection).unwrap_or(u32::MAX);
    let searches = Arc::clone(&conn.searches);
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        searches.acquire_many(all),
    )
    .await;
    if drained.is_err() {
        writer.abort();
    } else {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            conn.sender().send(Out::Close),
        )
        .await;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
}

/// Which deadline the session's next read waits for.
#[derive(Clone, Copy)]
enum Deadline {
    Idle,
    Request,
    FirstRequest,
}
