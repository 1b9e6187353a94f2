//! One request of a session: decoded, checked for critical controls, and run — searches
//! streamed from the blocking pool, binds in their cheap and slow steps, the rest to
//! completion — with the answer, the audit record and the access-log line.

use super::access_log::{other_summary, result_of, search_line, search_summary};
use super::*;

/// Any critical control the operation does not implement is refused (RFC 4511 §4.1.11);
/// non-critical ones are ignored.
fn unsupported_critical(op_tag: u64, controls: &[Control]) -> Option<&Control> {
    controls
        .iter()
        .find(|c| c.critical && !crate::protocol::controls::is_supported(op_tag, &c.oid))
}

fn encode_controls(controls: &[ops::search::ResponseControl]) -> Vec<LdapControl> {
    controls
        .iter()
        .map(|c| {
            let (oid, value) = crate::protocol::controls::encode_response(c);
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

pub(super) fn op_name(tag: u64) -> &'static str {
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

pub(super) async fn dispatch(conn: &Arc<Conn>, req: Request) -> Next {
    let Request {
        msgid,
        op_tag,
        op,
        controls,
    } = req;
    conn.shared.metrics.initiated(op_name(op_tag));
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
        LdapOp::UnbindRequest => {
            conn.shared.metrics.completed_silently("unbind");
            return Next::Stop;
        }
        LdapOp::AbandonRequest(id) => {
            if let Ok(map) = conn.running.lock() {
                if let Some(flag) = map.get(id) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            conn.shared.metrics.completed_silently("abandon");
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
            let search_controls = match crate::protocol::controls::search_controls(&controls) {
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
                    conn.measure("search", result.code.clone() as i32, started);
                    conn.shared.metrics.entries_returned(count);
                    conn.access(msgid, || {
                        search_line(summary.as_deref(), &result, count, started)
                    });
                    pending.extend_from_slice(&search_done(msgid, result, &ctrls));
                }
                conn.sender().pdu(pending.freeze()).await;
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
                                match tx.try_pdu(chunk) {
                                    Ok(()) => ControlFlow::Continue(()),
                                    Err(mpsc::error::TrySendError::Closed(_)) => {
                                        ControlFlow::Break(())
                                    }
                                    Err(mpsc::error::TrySendError::Full(out)) => {
                                        // The client reads slower than we find: wait
                                        // without the slot, so that others' searches run.
                                        drop(slot.take());
                                        // One search per connection, and so many over the
                                        // server, may wait holding a thread; past that the
                                        // client, which does not read, loses its connection.
                                        let Some(_waiting) = conn3.claim_stall() else {
                                            conn3.kill.notify_one();
                                            return ControlFlow::Break(());
                                        };
                                        if !tx.blocking_send(out) {
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
                            // Counted before the result leaves: a client that reads the
                            // figures next sees this search in them.
                            conn3.measure("search", result.code.clone() as i32, started);
                            conn3.shared.metrics.entries_returned(count);
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
                            tx.blocking_pdu(pending.freeze());
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
            conn.measure("bind", result.code.clone() as i32, started);
            conn.shared.metrics.bind(match result.code {
                LdapResultCode::Success => "success",
                LdapResultCode::InvalidCredentials if locked => "locked",
                LdapResultCode::InvalidCredentials => "invalid_credentials",
                _ => "refused",
            });
            conn.access(msgid, || {
                format!(
                    "BIND dn={:?} result={} ms={:.3}",
                    bind.dn,
                    result.code.clone() as i32,
                    started.elapsed().as_secs_f64() * 1000.0
                )
            });
            let ctrls = if wants_policy {
                vec![crate::protocol::controls::password_policy_response(locked)]
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
                let response = run_other(&conn2.dsa, &ctx, other);
                // A write's buffers (its plan, the store batch, the index terms) are freed
                // now, on a pool thread that may idle next.
                crate::memory::release_freed();
                response
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
            if let Some(r) = result_of(&response) {
                conn.measure(op_name(op_tag), r.code.clone() as i32, started);
            }
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

/// What the session does after a request.
pub(super) enum Next {
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
            let e_code = e.code.clone() as i32;
            let response = LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res: e.into_result(),
                name: None,
                value: None,
            });
            let _ = op_tag;
            conn.measure("extended", e_code, Instant::now());
            conn.send(LdapMsg::new(msgid, response)).await;
            Next::Continue
        }
        None => Next::StartTls(msgid),
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
