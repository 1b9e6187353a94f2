//! The wire itself: BER as Outlook encodes it, malformed and hostile input, controls, Abandon.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{Scope, SearchOptions};
use ldap3_proto::proto::{LdapOp, LdapResultCode};
use onepages::protocol::frame::{decode, frame_len};

use crate::support::*;

/// A TLV with the length in the 4-byte long form, as the Windows LDAP library writes it.
fn long(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = u32::try_from(content.len()).unwrap().to_be_bytes();
    let mut v = vec![tag, 0x84];
    v.extend_from_slice(&len);
    v.extend_from_slice(content);
    v
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn int(n: u8) -> Vec<u8> {
    long(0x02, &[n])
}

fn octets(s: &str) -> Vec<u8> {
    long(0x04, s.as_bytes())
}

fn message(id: u8, op: Vec<u8>) -> Vec<u8> {
    long(0x30, &cat(&[int(id), op]))
}

fn bind_pdu(id: u8, dn: &str, pw: &str) -> Vec<u8> {
    message(
        id,
        long(0x60, &cat(&[int(3), octets(dn), long(0x80, pw.as_bytes())])),
    )
}

fn substr_initial(attr: &str, v: &str) -> Vec<u8> {
    long(
        0xa4,
        &cat(&[octets(attr), long(0x30, &long(0x80, v.as_bytes()))]),
    )
}

fn present(attr: &str) -> Vec<u8> {
    long(0x87, attr.as_bytes())
}

fn search_pdu(id: u8, base: &str, filter: Vec<u8>, size: u8, attrs: &[&str]) -> Vec<u8> {
    let attrs: Vec<Vec<u8>> = attrs.iter().map(|a| octets(a)).collect();
    let body = cat(&[
        octets(base),
        long(0x0a, &[2]),
        long(0x0a, &[3]), // derefAliases = always, as Outlook sends it
        int(size),
        long(0x02, &[60]),
        long(0x01, &[0]),
        filter,
        long(0x30, &attrs.concat()),
    ]);
    message(id, long(0x63, &body))
}

struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn new(server: &TestServer) -> Raw {
        let s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next response PDU, or `None` when the server closed the connection.
    fn recv(&mut self) -> Option<(i32, LdapOp)> {
        loop {
            if let Some(n) = frame_len(&self.buf, 1 << 24).unwrap() {
                let pdu: Vec<u8> = self.buf.drain(..n).collect();
                let req = decode(&pdu, 64).unwrap();
                return Some((req.msgid, req.op.unwrap()));
            }
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn expect_notice_and_close(&mut self) -> LdapResultCode {
        let (id, op) = self.recv().expect("a notice of disconnection");
        assert_eq!(id, 0);
        let code = match op {
            LdapOp::ExtendedResponse(r) => {
                assert_eq!(r.name.as_deref(), Some("1.3.6.1.4.1.1466.20036"));
                r.res.code
            }
            other => panic!("expected a notice, got {other:?}"),
        };
        assert!(self.recv().is_none(), "the connection must close");
        code
    }
}

#[test]
fn outlook_long_form_bind_and_check_names() {
    let server = TestServer::demo();
    let mut raw = Raw::new(&server);
    raw.send(&bind_pdu(1, READER_DN, READER_PW));
    match raw.recv() {
        Some((1, LdapOp::BindResponse(r))) => assert_eq!(r.res.code, LdapResultCode::Success),
        other => panic!("{other:?}"),
    }
    // (&(mail=*)(|(mail=dew*)(|(cn=dew*)(|(sn=dew*)(givenName=dew*))))) — the Check Names
    // template, every length in long form.
    let inner = long(
        0xa1,
        &cat(&[
            substr_initial("sn", "dew"),
            substr_initial("givenName", "dew"),
        ]),
    );
    let mid = long(0xa1, &cat(&[substr_initial("cn", "dew"), inner]));
    let or = long(0xa1, &cat(&[substr_initial("mail", "dew"), mid]));
    let filter = long(0xa0, &cat(&[present("mail"), or]));
    raw.send(&search_pdu(
        2,
        SUFFIX,
        filter,
        100,
        &["cn", "mail", "company", "department"],
    ));
    let mut dns = Vec::new();
    loop {
        match raw.recv() {
            Some((2, LdapOp::SearchResultEntry(e))) => dns.push(e.dn),
            Some((2, LdapOp::SearchResultDone(r))) => {
                assert_eq!(r.code, LdapResultCode::Success);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        dns.contains(&format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}")),
        "{dns:?}"
    );
    assert_eq!(dns.len(), 4, "{dns:?}");
}

#[test]
fn garbage_gets_a_notice_and_others_carry_on() {
    let server = TestServer::demo();
    let mut bystander = server.reader();
    for bad in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], // absurd length claim
        vec![0x30, 0x80, 0x02, 0x01, 0x01],       // indefinite length
        vec![0x30, 0x03, 0x02, 0x01, 0x01],       // envelope without an operation
        vec![0x30, 0x05, 0x02, 0x01, 0x01, 0x7e, 0x00], // unknown operation tag
        vec![0x30, 0x06, 0x04, 0x01, 0x01, 0x42, 0x01, 0x00], // message ID not an INTEGER
    ] {
        let mut raw = Raw::new(&server);
        raw.send(&bad);
        let code = raw.expect_notice_and_close();
        assert_eq!(code, LdapResultCode::ProtocolError, "{bad:?}");
        assert_eq!(dns(&mut bystander, PEOPLE, "(cn=dewey rahim)").len(), 1);
    }
}

#[test]
fn oversized_pdus_are_refused() {
    let server = TestServer::demo_with(|s| s.limits.max_pdu_bytes = 4096);
    let mut raw = Raw::new(&server);
    let big = "x".repeat(5000);
    raw.send(&bind_pdu(1, &big, "pw"));
    raw.expect_notice_and_close();
    let mut c = server.reader();
    assert_eq!(dns(&mut c, PEOPLE, "(cn=dewey rahim)").len(), 1);
}

#[test]
fn truncated_pdu_then_hang_up_does_not_disturb_the_server() {
    let server = TestServer::demo();
    {
        let mut raw = Raw::new(&server);
        let pdu = bind_pdu(1, READER_DN, READER_PW);
        raw.send(&pdu[..pdu.len() / 2]);
    }
    let mut c = server.reader();
    assert_eq!(dns(&mut c, PEOPLE, "(cn=dewey rahim)").len(), 1);
}

#[test]
fn malformed_operation_gets_protocol_error_with_its_message_id() {
    let server = TestServer::demo();
    let mut raw = Raw::new(&server);
    // A bind whose body is an INTEGER only.
    raw.send(&message(9, long(0x60, &int(3))));
    match raw.recv() {
        Some((9, LdapOp::BindResponse(r))) => assert_eq!(r.res.code, LdapResultCode::ProtocolError),
        other => panic!("{other:?}"),
    }
    // LDAP version 2 is refused politely.
    raw.send(&message(
        10,
        long(0x60, &cat(&[int(2), octets(""), long(0x80, b"")])),
    ));
    match raw.recv() {
        Some((10, LdapOp::BindResponse(r))) => {
            assert_eq!(r.res.code, LdapResultCode::ProtocolError)
        }
        other => panic!("{other:?}"),
    }
    // Invalid UTF-8 in a filter value: the search fails, the connection stays.
    raw.send(&bind_pdu(11, READER_DN, READER_PW));
    assert!(matches!(raw.recv(), Some((11, LdapOp::BindResponse(_)))));
    let bad_filter = long(0xa3, &cat(&[octets("cn"), long(0x04, &[0xff, 0xfe])]));
    raw.send(&search_pdu(12, SUFFIX, bad_filter, 0, &[]));
    match raw.recv() {
        Some((12, LdapOp::SearchResultDone(r))) => {
            assert_eq!(r.code, LdapResultCode::ProtocolError)
        }
        other => panic!("{other:?}"),
    }
    raw.send(&search_pdu(13, SUFFIX, present("objectClass"), 1, &["1.1"]));
    assert!(matches!(
        raw.recv(),
        Some((13, LdapOp::SearchResultEntry(_)))
    ));
}

#[test]
fn deep_and_huge_filters_are_refused_with_a_result() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let mut deep = "(cn=x)".to_string();
    for _ in 0..40 {
        deep = format!("(!{deep})");
    }
    let r = c
        .search(SUFFIX, Scope::Subtree, &deep, vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 53, "{:?}", r.1);
    let huge = format!("(|{})", "(cn=x)".repeat(2000));
    let r = c
        .search(SUFFIX, Scope::Subtree, &huge, vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 53, "{:?}", r.1);
    assert_eq!(dns(&mut c, PEOPLE, "(cn=dewey rahim)").len(), 1);
}

#[test]
fn unknown_controls_critical_and_not() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let critical = RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: true,
        val: None,
    };
    let r = c
        .with_controls(vec![critical])
        .search(PEOPLE, Scope::Subtree, "(cn=dewey rahim)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 12);
    assert!(r.0.is_empty());
    let relaxed = RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: false,
        val: Some(vec![1, 2, 3]),
    };
    let r = c
        .with_controls(vec![relaxed])
        .search(PEOPLE, Scope::Subtree, "(cn=dewey rahim)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 0);
    assert_eq!(r.0.len(), 1);
}

#[test]
fn abandon_stops_a_search_and_gets_no_reply() {
    let server = TestServer::demo();
    let mut c = server.admin();
    let mut stream = c
        .with_search_options(SearchOptions::new())
        .streaming_search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["*"])
        .unwrap();
    let first = stream.next().unwrap();
    assert!(first.is_some());
    let id = stream.last_id();
    drop(stream);
    c.abandon(id).unwrap();
    // The connection still works and got nothing in reply to the Abandon itself (a stray
    // reply would be taken for the next request's answer). That the search stops is shown
    // deterministically in properties::abandon_stops_streaming.
    assert_eq!(dns(&mut c, PEOPLE, "(cn=dewey rahim)").len(), 1);
}

impl Raw {
    /// A connection from another loopback address (127.0.0.0/8 is all this machine's).
    fn from_address(server: &TestServer, source: &str) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addr = server.addr;
        let local: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
        let s = rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(local).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        });
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// Binds anonymously and returns the result code.
    fn anonymous_bind(&mut self, id: u8) -> LdapResultCode {
        self.send(&bind_pdu(id, "", ""));
        match self.recv() {
            Some((_, LdapOp::BindResponse(r))) => r.res.code,
            other => panic!("expected a bind response, got {other:?}"),
        }
    }
}

#[test]
fn a_request_dripped_byte_by_byte_is_cut_off_and_others_are_served() {
    let server = TestServer::demo_with(|s| s.limits.request_timeout = Duration::from_secs(1));
    let mut slow = Raw::new(&server);
    let pdu = bind_pdu(1, READER_DN, READER_PW);
    let started = std::time::Instant::now();
    let mut sent = 0;
    // One byte every 100 ms: each byte would restart an idle timer; the request's does not.
    while sent < pdu.len() - 1 && started.elapsed() < Duration::from_secs(5) {
        if slow.s.write_all(&pdu[sent..=sent]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
        // Meanwhile another client is answered.
        if sent == 3 {
            let mut other = Raw::new(&server);
            assert_eq!(other.anonymous_bind(1), LdapResultCode::Success);
        }
    }
    assert!(sent < pdu.len() - 1, "the server waited for the whole drip");
    assert_eq!(slow.expect_notice_and_close(), LdapResultCode::Unavailable);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_first_request_timeout() {
    let server = TestServer::demo_with(|s| s.limits.first_request_timeout = Duration::from_secs(1));
    let mut silent = Raw::new(&server);
    assert_eq!(
        silent.expect_notice_and_close(),
        LdapResultCode::Unavailable
    );
    // One that asks in time stays, past that timeout, until its idle timeout.
    let mut prompt = Raw::new(&server);
    assert_eq!(prompt.anonymous_bind(1), LdapResultCode::Success);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(prompt.anonymous_bind(2), LdapResultCode::Success);
}

#[test]
fn one_address_cannot_take_every_connection() {
    let server = TestServer::demo_with(|s| s.limits.max_connections_per_ip = 3);
    let mut held: Vec<Raw> = (0..3).map(|_| Raw::new(&server)).collect();
    for (i, r) in held.iter_mut().enumerate() {
        assert_eq!(
            r.anonymous_bind(u8::try_from(i).unwrap() + 1),
            LdapResultCode::Success
        );
    }
    // Loopback is not exempt: the fourth from 127.0.0.1 is refused with a notice.
    let mut fourth = Raw::new(&server);
    assert_eq!(fourth.expect_notice_and_close(), LdapResultCode::Busy);
    // Another address is still served.
    let mut elsewhere = Raw::from_address(&server, "127.0.0.2");
    assert_eq!(elsewhere.anonymous_bind(1), LdapResultCode::Success);
    // A connection closed gives its place back.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = Raw::new(&server);
    assert_eq!(again.anonymous_bind(1), LdapResultCode::Success);
}

#[test]
fn a_client_that_never_reads_gives_up_its_slots_and_is_disconnected() {
    let server = TestServer::demo_with(|s| s.limits.output_timeout = Duration::from_secs(4));
    // A small receive window, so that the results back up on the server sooner.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr;
    let mut stalled = rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    stalled.set_nonblocking(false).unwrap();
    let mut pipeline = bind_pdu(1, READER_DN, READER_PW);
    // About 190 KB of results each: far more than the socket buffers hold.
    for id in 2..200u8 {
        pipeline.extend(search_pdu(id, SUFFIX, present("objectClass"), 0, &["*"]));
    }
    stalled.write_all(&pipeline).unwrap();
    // Long enough for the searches to fill the socket and the writer's queue and block.
    std::thread::sleep(Duration::from_millis(1500));
    // Another user's type-ahead (a non-exact search, which needs a search slot) is answered
    // while the stalled searches still wait (before output_timeout ends them).
    let mut other = server.reader();
    let found = other
        .with_timeout(Duration::from_secs(2))
        .search(PEOPLE, Scope::Subtree, "(cn=dewey*)", vec!["cn"])
        .unwrap()
        .success()
        .unwrap()
        .0;
    assert!(!found.is_empty());
    // Past output_timeout without reading, the client is disconnected.
    std::thread::sleep(Duration::from_millis(3500));
    // The client that never read is disconnected: reading now drains what the kernel held,
    // then the end of the stream.
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut sink = [0u8; 65536];
    let mut total = 0usize;
    loop {
        match stalled.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n,
            // Closed with results unsent: the kernel resets the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the stalled connection was not closed: {e} after {total} bytes"),
        }
    }
    // Far less than 198 searches' worth of entries reached it.
    assert!(total < 100 * 190_000, "{total} bytes");
    // And the server goes on serving.
    assert_eq!(Raw::new(&server).anonymous_bind(1), LdapResultCode::Success);
}

#[test]
fn connection_cap_gives_busy_notice() {
    let server = TestServer::demo_with(|s| s.limits.max_connections = 2);
    let _a = Raw::new(&server);
    let _b = Raw::new(&server);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Raw::new(&server);
    assert_eq!(c.expect_notice_and_close(), LdapResultCode::Busy);
}

#[test]
fn thunderbird_empty_substring_piece() {
    // (cn=*rahi**) as a substring filter with an empty trailing "any" piece.
    let server = TestServer::demo();
    let mut raw = Raw::new(&server);
    raw.send(&bind_pdu(1, READER_DN, READER_PW));
    assert!(matches!(raw.recv(), Some((1, LdapOp::BindResponse(_)))));
    let pieces = cat(&[long(0x81, b"rahi"), long(0x81, b"")]);
    let filter = long(0xa4, &cat(&[octets("cn"), long(0x30, &pieces)]));
    raw.send(&search_pdu(2, SUFFIX, filter, 100, &["cn"]));
    let mut n = 0;
    loop {
        match raw.recv() {
            Some((2, LdapOp::SearchResultEntry(_))) => n += 1,
            Some((2, LdapOp::SearchResultDone(r))) => {
                assert_eq!(r.code, LdapResultCode::Success);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(n >= 1);
}

/// Many clients that pipeline searches and never read cannot take the threads other users'
/// work needs: one search per connection, and `max_stalled_searches` over the server, may
/// wait for a client to read; a connection whose second search would wait too, or that finds
/// the allowance spent, is closed at once (long before `output_timeout`), and other users are
/// answered throughout.
#[test]
fn clients_that_never_read_hold_a_bounded_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = TestServer::demo_with(|s| {
        s.limits.output_timeout = Duration::from_secs(60);
        s.limits.max_stalled_searches = 4;
        s.access_log = Some(onepages::config::LogTarget::File(log.clone()));
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr;
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut conn = rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(2048).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        });
        conn.set_nonblocking(false).unwrap();
        let mut pipeline = bind_pdu(1, READER_DN, READER_PW);
        for id in 2..40u8 {
            pipeline.extend(search_pdu(id, SUFFIX, present("objectClass"), 0, &["*"]));
        }
        conn.write_all(&pipeline).unwrap();
        stalled.push(conn);
    }
    std::thread::sleep(Duration::from_millis(1000));
    // Others are answered while the stalled clients are connected.
    let mut other = server.reader();
    let found = other
        .with_timeout(Duration::from_secs(2))
        .search(PEOPLE, Scope::Subtree, "(cn=dewey*)", vec!["cn"])
        .unwrap()
        .success()
        .unwrap()
        .0;
    assert!(!found.is_empty());
    // Every stalled client is disconnected well before the 60 s output timeout: each had
    // more than one search waiting on its full queue. Watched in the access log, without
    // reading (a read would let its searches go on).
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let closed = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with(" CLOSED"))
            .count()
    };
    while std::time::Instant::now() < until && closed() < 12 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed = closed();
    drop(stalled);
    assert_eq!(closed, 12);
    assert_eq!(Raw::new(&server).anonymous_bind(1), LdapResultCode::Success);
}
