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

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf};
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
/// Searches one connection may run at once; further requests wait to be read.
const SEARCHES_PER_CONNECTION: usize = 8;

enum Out {
    Pdu(Bytes),
    Close,
    /// StartTLS: flush what is queued and hand the write half back.
    Handover,
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
    /// The writer task's queue (replaced once, when StartTLS starts a new writer).
    tx: RwLock<mpsc::Sender<Out>>,
    /// Whether the session runs over TLS (from the first byte, or since StartTLS).
    tls: AtomicBool,
    searches: Arc<Semaphore>,
    /// When the connection was accepted, and whether its first whole request has come.
    started: tokio::time::Instant,
    first_request_done: AtomicBool,
}

impl Conn {
    fn identity(&self) -> Identity {
        self.identity.read().map(|i| i.clone()).unwrap_or_default()
    }

    fn sender(&self) -> mpsc::Sender<Out> {
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

    /// Whether any operation of this session is still running (StartTLS needs none).
    fn is_busy(&self) -> bool {
        let running = self.running.lock().map(|m| !m.is_empty()).unwrap_or(true);
        running || self.searches.available_permits() < SEARCHES_PER_CONNECTION
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
        }
    }

    /// One access-log line for this connection's operation `msgid`, when the log is on (the
    /// line is only formatted then).
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
        let _ = self.sender().send(Out::Pdu(encode(msg).freeze())).await;
    }

    async fn reply(&self, msgid: i32, op_tag: u64, result: LdapResult) {
        if let Some(op) = response_for(op_tag, result) {
            self.send(LdapMsg::new(msgid, op)).await;
        }
    }

    async fn disconnect(&self, code: LdapResultCode, message: &str) {
        let tx = self.sender();
        let _ = tx
            .send(Out::Pdu(notice_of_disconnection(code, message).freeze()))
            .await;
        let _ = tx.send(Out::Close).await;
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
        let (tx, rx) = mpsc::channel::<Out>(OUTPUT_QUEUE);
        let (back_tx, back_rx) = oneshot::channel();
        let writer = tokio::spawn(write_loop(
            wr,
            rx,
            Some(back_tx),
            dsa.settings().limits.output_timeout,
        ));
        let conn = Arc::new(Conn {
            dsa: Arc::clone(&dsa),
            tls: AtomicBool::new(info.transport == Transport::Tls),
            shared,
            info,
            grants: Mutex::new(GrantCache::default()),
            paging: Arc::new(Mutex::new(ops::search::PagedSearches::default())),
            identity: RwLock::new(Identity::Anonymous),
            running: Mutex::new(HashMap::new()),
            tx: RwLock::new(tx),
            searches: Arc::new(Semaphore::new(SEARCHES_PER_CONNECTION)),
            started: tokio::time::Instant::now(),
            first_request_done: AtomicBool::new(false),
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
    conn.send(LdapMsg::new(msgid, response)).await;
    let _ = conn.sender().send(Out::Handover).await;
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
    let (tls_rd, tls_wr) = Locked(stream).into_halves();
    let (tx, rx) = mpsc::channel::<Out>(OUTPUT_QUEUE);
    if let Ok(mut current) = conn.tx.write() {
        *current = tx;
    }
    debug!("StartTLS: the session continues over TLS");
    let writer = tokio::spawn(write_loop(
        tls_wr,
        rx,
        None,
        conn.dsa.settings().limits.output_timeout,
    ));
    Some((tls_rd, writer))
}

/// Ends a session: running searches are abandoned and get a grace period; a client that
/// stopped reading cannot hold them up (past it the writer goes, and their sends fail).
async fn finish(conn: &Arc<Conn>, writer: tokio::task::JoinHandle<()>) {
    conn.abandon_all();
    let all = u32::try_from(SEARCHES_PER_CONNECTION).unwrap_or(u32::MAX);
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

/// Writes what the session queues, in order. A write that makes no progress for
/// `output_timeout` (a client that does not read its results) ends the writer: its queue
/// closes, so the searches feeding it stop and give their slots back, and the session loop
/// sees the queue closed and ends the connection. No notice can reach a client that does not
/// read; the socket is simply closed.
async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Out>,
    handover: Option<oneshot::Sender<W>>,
    output_timeout: std::time::Duration,
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
                    match tokio::time::timeout(output_timeout, write).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            info!(
                                secs = output_timeout.as_secs(),
                                "the client has not read its results in time; disconnecting"
                            );
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

/// Any critical control the operation does not implement is refused (RFC 4511 §4.1.11);
/// non-critical ones are ignored.
fn unsupported_critical(op_tag: u64, controls: &[Control]) -> Option<&Control> {
    controls
        .iter()
        .find(|c| c.critical && !super::controls::is_supported(op_tag, &c.oid))
}

fn encode_controls(controls: &[ops::search::ResponseControl]) -> Vec<LdapControl> {
    controls
        .iter()
        .map(|c| {
            let (oid, value) = super::controls::encode_response(c);
            LdapControl::Unknown {
                oid,
                criticality: false,
                value: Some(value),
            }
        })
        .collect()
}

/// The SearchResultDone PDU with its response controls.
fn search_done(msgid: i32, result: LdapResult, ctrls: &[ops::search::ResponseControl]) -> BytesMut {
    encode(LdapMsg::new_with_ctrls(
        msgid,
        LdapOp::SearchResultDone(result),
        encode_controls(ctrls),
    ))
}

fn op_name(tag: u64) -> &'static str {
    match tag {
        0 => "bind",
        2 => "unbind",
        3 => "search",
        6 => "modify",
        8 => "add",
        10 => "delete",
        12 => "modrdn",
        14 => "compare",
        16 => "abandon",
        23 => "extended",
        _ => "unknown",
    }
}

async fn dispatch(conn: &Arc<Conn>, req: Request) -> Next {
    let Request {
        msgid,
        op_tag,
        op,
        controls,
    } = req;
    let op = match op {
        Ok(op) => op,
        Err(why) => {
            if response_for(op_tag, ops::success()).is_some() {
                debug!(msgid, op = op_name(op_tag), %why, "malformed request");
                let e = OpError::new(
                    LdapResultCode::ProtocolError,
                    format!("malformed {} request", op_name(op_tag)),
                );
                conn.reply(msgid, op_tag, e.into_result()).await;
                return Next::Continue;
            }
            conn.disconnect(
                LdapResultCode::ProtocolError,
                &format!("unknown or malformed operation (tag {op_tag})"),
            )
            .await;
            return Next::Stop;
        }
    };
    match &op {
        LdapOp::UnbindRequest => return Next::Stop,
        LdapOp::AbandonRequest(id) => {
            if let Ok(map) = conn.running.lock() {
                if let Some(flag) = map.get(id) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            return Next::Continue;
        }
        _ => {}
    }
    if let Some(c) = unsupported_critical(op_tag, &controls) {
        let e = OpError::new(
            LdapResultCode::UnavailableCriticalExtension,
            format!("critical control {} is not supported", c.oid),
        );
        conn.reply(msgid, op_tag, e.into_result()).await;
        return Next::Continue;
    }
    if let LdapOp::ExtendedRequest(ext) = &op {
        if ext.name == START_TLS_OID {
            return start_tls_request(conn, msgid, op_tag).await;
        }
    }
    let who = conn.identity();
    let started = Instant::now();
    match op {
        LdapOp::SearchRequest(search) => {
            let search_controls = match super::controls::search_controls(&controls) {
                Ok(c) => c,
                Err(bad) => {
                    let e = OpError::new(
                        LdapResultCode::ProtocolError,
                        format!("malformed control {}: {}", bad.oid, bad.why),
                    );
                    conn.reply(msgid, op_tag, e.into_result()).await;
                    return Next::Continue;
                }
            };
            let search = SearchRequest::new(search, search_controls);
            let summary = conn
                .shared
                .access_log
                .is_some()
                .then(|| search_summary(&search));
            if search.is_exact_lookup() {
                // An exact look-up by mail or ONE ID reads an entry or two: answered here,
                // without the hand-over to the blocking pool (which would cost more than it).
                let mut pending = BytesMut::new();
                let mut count = 0usize;
                let ctx = conn.context(&who, msgid);
                let end = ctx.span().in_scope(|| {
                    ops::search::search(
                        &conn.dsa,
                        &ctx,
                        &search,
                        &conn.paging,
                        &AtomicBool::new(false),
                        &mut |entry| {
                            count += 1;
                            encode_found_into(&mut pending, msgid, entry);
                            ControlFlow::Continue(())
                        },
                    )
                });
                if let SearchEnd::Done(result, ctrls) = end {
                    debug!(msgid, op = "search", code = ?result.code, entries = count,
                           ms = started.elapsed().as_millis() as u64, "done");
                    ops::audit::refused(&conn.dsa, &ctx, "search", &search.base, &result);
                    conn.access(msgid, || {
                        search_line(summary.as_deref(), &result, count, started)
                    });
                    pending.extend_from_slice(&search_done(msgid, result, &ctrls));
                }
                let _ = conn.sender().send(Out::Pdu(pending.freeze())).await;
                return Next::Continue;
            }
            let flag = Arc::new(AtomicBool::new(false));
            if let Ok(mut map) = conn.running.lock() {
                map.insert(msgid, Arc::clone(&flag));
            }
            let Ok(permit) = Arc::clone(&conn.searches).acquire_owned().await else {
                return Next::Stop;
            };
            let conn2 = Arc::clone(conn);
            tokio::spawn(
                async move {
                    let tx = conn2.sender();
                    let dsa = Arc::clone(&conn2.dsa);
                    let flag2 = Arc::clone(&flag);
                    let paging = Arc::clone(&conn2.paging);
                    let slots = Arc::clone(&conn2.shared.search_slots);
                    let conn3 = Arc::clone(&conn2);
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                        return;
                    };
                    let handle = tokio::runtime::Handle::current();
                    let joined = tokio::task::spawn_blocking(move || {
                        let mut slot = Some(slot);
                        let mut count = 0usize;
                        // Room for a batch and the entry that overflows it: one allocation
                        // per batch instead of a doubling series.
                        let batch = || BytesMut::with_capacity(STREAM_BATCH_BYTES + 4096);
                        let mut pending = batch();
                        let ctx = conn3.context(&who, msgid);
                        let _op = ctx.span().entered();
                        let end = ops::search::search(
                            &dsa,
                            &ctx,
                            &search,
                            &paging,
                            &flag2,
                            &mut |entry| {
                                count += 1;
                                encode_found_into(&mut pending, msgid, entry);
                                if count.is_multiple_of(SLOT_TURN_ENTRIES) {
                                    // Let queued searches run before this one goes on.
                                    drop(slot.take());
                                    slot = handle.block_on(Arc::clone(&slots).acquire_owned()).ok();
                                }
                                // Entries go to the writer in batches: one hand-over per
                                // STREAM_BATCH_BYTES instead of one per entry.
                                if pending.len() < STREAM_BATCH_BYTES {
                                    return ControlFlow::Continue(());
                                }
                                let chunk = std::mem::replace(&mut pending, batch()).freeze();
                                match tx.try_send(Out::Pdu(chunk)) {
                                    Ok(()) => ControlFlow::Continue(()),
                                    Err(mpsc::error::TrySendError::Closed(_)) => {
                                        ControlFlow::Break(())
                                    }
                                    Err(mpsc::error::TrySendError::Full(out)) => {
                                        // The client reads slower than we find: wait
                                        // without the slot, so that others' searches run.
                                        drop(slot.take());
                                        if tx.blocking_send(out).is_err() {
                                            return ControlFlow::Break(());
                                        }
                                        slot = handle
                                            .block_on(Arc::clone(&slots).acquire_owned())
                                            .ok();
                                        ControlFlow::Continue(())
                                    }
                                }
                            },
                        );
                        drop(slot);
                        if let SearchEnd::Done(result, _) = &end {
                            ops::audit::refused(&dsa, &ctx, "search", &search.base, result);
                        }
                        // The result goes out with the last entries: one hand-over.
                        if let SearchEnd::Done(result, ctrls) = &end {
                            if !flag2.load(Ordering::Relaxed) {
                                pending.extend_from_slice(&search_done(
                                    msgid,
                                    result.clone(),
                                    ctrls,
                                ));
                            }
                        }
                        if !pending.is_empty() {
                            let _ = tx.blocking_send(Out::Pdu(pending.freeze()));
                        }
                        (end, count)
                    })
                    .await;
                    match joined {
                        Ok((SearchEnd::Done(result, _), count)) => {
                            debug!(msgid, op = "search", code = ?result.code, entries = count,
                                   ms = started.elapsed().as_millis() as u64, "done");
                            conn2.access(msgid, || {
                                search_line(summary.as_deref(), &result, count, started)
                            });
                        }
                        Ok((SearchEnd::Silent, count)) => {
                            debug!(msgid, op = "search", entries = count, "abandoned");
                        }
                        Err(e) => {
                            let err = ops::internal(e);
                            conn2
                                .send(LdapMsg::new(
                                    msgid,
                                    LdapOp::SearchResultDone(err.into_result()),
                                ))
                                .await;
                        }
                    }
                    if let Ok(mut map) = conn2.running.lock() {
                        map.remove(&msgid);
                    }
                    drop(permit);
                }
                .in_current_span(),
            );
            Next::Continue
        }
        LdapOp::BindRequest(bind) => {
            conn.abandon_all();
            let wants_policy = controls.iter().any(|c| c.oid == ops::bind::PPOLICY_OID);
            let step = {
                let ctx = conn.context(&who, msgid);
                ops::bind::begin(&conn.dsa, &ctx, &bind)
            };
            let outcome = match step {
                ops::bind::Step::Decided(outcome) => outcome,
                ops::bind::Step::SlowCheck(pending) => {
                    // At most hash_concurrency slow checks at once; the rest wait here.
                    let Ok(permit) = Arc::clone(&conn.shared.hash_slots).acquire_owned().await
                    else {
                        return Next::Stop;
                    };
                    let conn2 = Arc::clone(conn);
                    tokio::task::spawn_blocking(move || {
                        let counted = conn2.shared.slow_checks.start();
                        let ctx = conn2.context(&who, msgid);
                        let outcome = pending.finish(&conn2.dsa, &ctx);
                        drop(counted);
                        drop(permit);
                        outcome
                    })
                    .await
                    .unwrap_or_else(|e| Err(ops::internal(e).into()))
                }
            };
            let (result, locked) = match outcome {
                Ok(bound) => {
                    debug!(
                        msgid,
                        op = "bind",
                        authenticated = bound.identity.is_bound(),
                        "ok"
                    );
                    if let Ok(mut id) = conn.identity.write() {
                        *id = bound.identity;
                    }
                    // The bind read the entry: its decision saves the next operation a look-up.
                    if let (Some(seed), Ok(mut cache)) = (bound.seed, conn.grants.lock()) {
                        cache.seed(seed);
                    }
                    (ops::success(), false)
                }
                Err(refused) => {
                    // RFC 4511 §4.2.1: a failed bind leaves the connection anonymous.
                    if let Ok(mut id) = conn.identity.write() {
                        *id = Identity::Anonymous;
                    }
                    let e = refused.error;
                    // Every wrong name or password is answered after the same time, whatever
                    // the account (unknown, disabled, locked, its hash): no oracle. Waiting
                    // here holds no thread and no memory.
                    if e.code == LdapResultCode::InvalidCredentials {
                        let floor = conn.dsa.failed_bind_floor();
                        tokio::time::sleep_until((started + floor).into()).await;
                    }
                    debug!(msgid, op = "bind", code = ?e.code, "refused");
                    (e.into_result(), refused.account_locked)
                }
            };
            conn.access(msgid, || {
                format!(
                    "BIND dn={:?} result={} ms={:.3}",
                    bind.dn,
                    result.code.clone() as i32,
                    started.elapsed().as_secs_f64() * 1000.0
                )
            });
            let ctrls = if wants_policy {
                vec![super::controls::password_policy_response(locked)]
            } else {
                Vec::new()
            };
            conn.send(LdapMsg::new_with_ctrls(
                msgid,
                LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
                    res: result,
                    saslcreds: None,
                }),
                ctrls,
            ))
            .await;
            Next::Continue
        }
        other => {
            let summary = conn
                .shared
                .access_log
                .is_some()
                .then(|| other_summary(op_tag, &other));
            let conn2 = Arc::clone(conn);
            let response = tokio::task::spawn_blocking(move || {
                let ctx = conn2.context(&who, msgid);
                let _op = ctx.span().entered();
                run_other(&conn2.dsa, &ctx, other)
            })
            .await
            .unwrap_or_else(|e| {
                response_for(op_tag, ops::internal(e).into_result())
                    .unwrap_or(LdapOp::UnbindRequest)
            });
            if let LdapOp::UnbindRequest = response {
                conn.disconnect(
                    LdapResultCode::ProtocolError,
                    "clients may not send response operations",
                )
                .await;
                return Next::Stop;
            }
            debug!(
                msgid,
                op = op_name(op_tag),
                ms = started.elapsed().as_millis() as u64,
                "done"
            );
            conn.access(msgid, || {
                let code = result_of(&response).map_or(-1, |r| r.code.clone() as i32);
                format!(
                    "{} result={code} ms={:.3}",
                    summary.as_deref().unwrap_or(""),
                    started.elapsed().as_secs_f64() * 1000.0
                )
            });
            conn.send(LdapMsg::new(msgid, response)).await;
            Next::Continue
        }
    }
}

/// Which deadline the session's next read waits for.
#[derive(Clone, Copy)]
enum Deadline {
    Idle,
    Request,
    FirstRequest,
}

/// What the session does after a request.
enum Next {
    Continue,
    Stop,
    /// Answer StartTLS and upgrade the stream (every check passed).
    StartTls(i32),
}

/// StartTLS's checks (RFC 4511 §4.14.1): offered only with a certificate; refused with
/// operationsError under TLS already or while other operations are outstanding.
async fn start_tls_request(conn: &Arc<Conn>, msgid: i32, op_tag: u64) -> Next {
    let refusal = if conn.shared.tls.is_none() {
        Some(OpError::new(
            LdapResultCode::ProtocolError,
            "StartTLS is not offered by this server (no certificate is configured)",
        ))
    } else if conn.tls.load(Ordering::Acquire) {
        Some(OpError::new(
            LdapResultCode::OperationsError,
            "TLS is already established on this connection",
        ))
    } else if conn.is_busy() {
        Some(OpError::new(
            LdapResultCode::OperationsError,
            "other operations are outstanding: StartTLS waits until they are done",
        ))
    } else {
        None
    };
    match refusal {
        Some(e) => {
            debug!(msgid, op = "starttls", code = ?e.code, "refused");
            let response = LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res: e.into_result(),
                name: None,
                value: None,
            });
            let _ = op_tag;
            conn.send(LdapMsg::new(msgid, response)).await;
            Next::Continue
        }
        None => Next::StartTls(msgid),
    }
}

/// `SEARCH base=... scope=... filter=... attrs=...` for the access log.
fn search_summary(search: &SearchRequest) -> String {
    let scope = match search.scope {
        ldap3_proto::proto::LdapSearchScope::Base => "base",
        ldap3_proto::proto::LdapSearchScope::OneLevel => "one",
        ldap3_proto::proto::LdapSearchScope::Subtree => "sub",
        ldap3_proto::proto::LdapSearchScope::Children => "children",
    };
    format!(
        "SEARCH base={:?} scope={scope} filter={:?} attrs={:?}",
        search.base,
        crate::directory::filter_text::filter_to_text(&search.filter),
        search.attrs.join(" ")
    )
}

fn search_line(
    summary: Option<&str>,
    result: &LdapResult,
    entries: usize,
    started: Instant,
) -> String {
    format!(
        "{} result={} entries={entries} ms={:.3}",
        summary.unwrap_or("SEARCH"),
        result.code.clone() as i32,
        started.elapsed().as_secs_f64() * 1000.0
    )
}

/// The access log's description of an operation other than search and bind.
fn other_summary(op_tag: u64, op: &LdapOp) -> String {
    let name = op_name(op_tag).to_ascii_uppercase();
    match op {
        LdapOp::CompareRequest(r) => format!("{name} dn={:?} attr={:?}", r.dn, r.atype),
        LdapOp::ExtendedRequest(r) => format!("{name} oid={}", r.name),
        other => match ops::audit::describe(other) {
            Some(w) => format!(
                "{name} dn={:?} attrs={:?}",
                w.target,
                w.attributes.join(" ")
            ),
            None => name,
        },
    }
}

/// The result inside a response.
fn result_of(response: &LdapOp) -> Option<&LdapResult> {
    match response {
        LdapOp::AddResponse(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => Some(r),
        LdapOp::ExtendedResponse(e) => Some(&e.res),
        _ => None,
    }
}

/// Runs an operation that is not a search or bind, returning its response; writes and
/// refusals go to the audit trail.
fn run_other(dsa: &Dsa, ctx: &RequestContext<'_>, op: LdapOp) -> LdapOp {
    let record = ops::audit::describe(&op);
    let target = match &op {
        LdapOp::CompareRequest(r) => r.dn.clone(),
        _ => String::new(),
    };
    let name = match &op {
        LdapOp::CompareRequest(_) => "compare",
        _ => "extended",
    };
    let response = run_operation(dsa, ctx, op);
    if let Some(result) = result_of(&response) {
        match &record {
            Some(w) => ops::audit::written(dsa, ctx, w, result),
            None => ops::audit::refused(dsa, ctx, name, &target, result),
        }
    }
    response
}

fn run_operation(dsa: &Dsa, ctx: &RequestContext<'_>, op: LdapOp) -> LdapOp {
    let done = |r: Result<(), OpError>| match r {
        Ok(()) => ops::success(),
        Err(e) => e.into_result(),
    };
    match op {
        LdapOp::CompareRequest(req) => {
            LdapOp::CompareResult(match ops::compare::compare(dsa, ctx, &req) {
                Ok(true) => LdapResult {
                    code: LdapResultCode::CompareTrue,
                    ..ops::success()
                },
                Ok(false) => LdapResult {
                    code: LdapResultCode::CompareFalse,
                    ..ops::success()
                },
                Err(e) => e.into_result(),
            })
        }
        LdapOp::AddRequest(req) => LdapOp::AddResponse(done(ops::add::add(dsa, ctx, &req))),
        LdapOp::ModifyRequest(req) => {
            LdapOp::ModifyResponse(done(ops::modify::modify(dsa, ctx, &req)))
        }
        LdapOp::DelRequest(dn) => LdapOp::DelResponse(done(ops::delete::delete(dsa, ctx, &dn))),
        LdapOp::ModifyDNRequest(req) => {
            LdapOp::ModifyDNResponse(done(ops::modify_dn::modify_dn(dsa, ctx, &req)))
        }
        LdapOp::ExtendedRequest(req) => match ops::extended::extended(dsa, ctx, &req) {
            Ok(resp) => LdapOp::ExtendedResponse(resp),
            Err(e) => LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res: e.into_result(),
                name: None,
                value: None,
            }),
        },
        // Responses sent by a client are a protocol violation: end the connection.
        _ => LdapOp::UnbindRequest,
    }
}
