//! Issue 17 (first part): the operators' HTTP listener — health, readiness and Prometheus
//! metrics whose counters follow known operations.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::support::*;

/// `GET path` over a fresh connection: the status code and the body.
fn get(at: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(at).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn health_readiness_and_metrics_follow_the_operations() {
    let server = TestServer::demo_with(|s| s.http_listen = Some("127.0.0.1:0".parse().unwrap()));
    let http = server.http.expect("an HTTP listener");
    let (code, body) = get(http, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"serving\""), "{body}");
    let (code, body) = get(http, "/readyz");
    assert_eq!(code, 200, "{body}");
    let (code, _) = get(http, "/nothing");
    assert_eq!(code, 404);

    let (_, before) = get(http, "/metrics");
    let searches =
        |t: &str| sample(t, "onepages_operations_total{op=\"search\",code=\"0\"}").unwrap_or(0.0);
    let wrong =
        |t: &str| sample(t, "onepages_binds_total{outcome=\"invalid_credentials\"}").unwrap_or(0.0);
    let mut r = server.reader();
    for _ in 0..3 {
        assert_eq!(
            dns(&mut r, PEOPLE, "(mail=dewey.rahim@one-mail.on.ca)").len(),
            1
        );
    }
    let mut c = server.conn();
    assert_eq!(c.simple_bind(READER_DN, "wrong").unwrap().rc, 49);
    let (code, after) = get(http, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(searches(&after) - searches(&before), 3.0, "{after}");
    assert_eq!(wrong(&after) - wrong(&before), 1.0, "{after}");
    assert!(sample(&after, "onepages_binds_total{outcome=\"success\"}").unwrap() >= 1.0);
    assert_eq!(sample(&after, "onepages_directory_entries"), Some(320.0));
    assert_eq!(sample(&after, "onepages_index_lag_entries"), Some(0.0));
    assert!(sample(&after, "onepages_connections_open{transport=\"plain\"}").unwrap() >= 2.0);
    assert!(sample(&after, "onepages_search_entries_total").unwrap() >= 3.0);
    assert!(after.contains("onepages_operation_seconds_bucket{le=\"0.0001\",op=\"search\"}"));
    assert!(sample(&after, "onepages_resident_memory_bytes").unwrap() > 0.0);
    drop(c);
    drop(r);
}
