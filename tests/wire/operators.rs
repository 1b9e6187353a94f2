//! Issue 17: the operators' HTTP listener — health, readiness while the index lags, Prometheus
//! metrics whose counters follow known operations, `/status` — and `cn=Monitor` over LDAP for
//! administrators only.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ldap3::{Scope, SearchEntry};

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

#[test]
fn the_directory_figures_and_status_follow_the_directory() {
    let server = TestServer::demo_with(|s| s.http_listen = Some("127.0.0.1:0".parse().unwrap()));
    let http = server.http.expect("an HTTP listener");
    let (_, text) = get(http, "/metrics");
    let kind = |t: &str, k: &str| {
        sample(
            t,
            &format!("onepages_directory_entries_by_kind{{kind=\"{k}\"}}"),
        )
        .unwrap()
    };
    // The demo directory: 292 people, 11 contacts, 2 service accounts, 15 other entries.
    assert_eq!(kind(&text, "people"), 292.0, "{text}");
    assert_eq!(kind(&text, "contacts"), 11.0);
    assert_eq!(kind(&text, "services"), 2.0);
    assert_eq!(kind(&text, "other"), 15.0);
    let secure = sample(&text, "onepages_directory_recipients{secure=\"true\"}").unwrap();
    let not = sample(&text, "onepages_directory_recipients{secure=\"false\"}").unwrap();
    assert_eq!(secure + not, 303.0, "{text}");
    assert_eq!(sample(&text, "onepages_directory_tombstones"), Some(0.0));
    assert!(sample(&text, "onepages_store_size_bytes").unwrap() > 0.0);
    let scans = |t: &str| sample(t, "onepages_searches_scanned_total").unwrap();
    let before = scans(&text);

    // A search the index cannot narrow is a scan; a delete leaves a tombstone.
    let mut admin = server.admin();
    let _ = dns(&mut admin, SUFFIX, "(!(sn=nobody))");
    let victim = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    assert_eq!(admin.delete(&victim).unwrap().rc, 0);
    // The entry count is exact at once (the census by kind follows within 30 s).
    let (_, text) = get(http, "/metrics");
    assert_eq!(scans(&text) - before, 1.0, "{text}");
    assert_eq!(sample(&text, "onepages_directory_entries"), Some(319.0));

    let (code, body) = get(http, "/status");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["entries"], 319);
    assert_eq!(status["naming_context"], SUFFIX);
    assert!(
        status["operations"]["delete"]["completed"].as_u64() == Some(1),
        "{body}"
    );
    assert!(
        status["operations_last_minute"].as_u64().unwrap() >= 3,
        "{body}"
    );
    assert!(status["listeners"].as_array().unwrap().len() >= 2, "{body}");
    drop(admin);
}

#[test]
fn readiness_waits_for_the_index_to_catch_up() {
    let server = TestServer::demo_with(|s| {
        s.http_listen = Some("127.0.0.1:0".parse().unwrap());
        // Commits are gathered for 3 s: a write leaves the index behind that long.
        s.index_commit_window = Duration::from_secs(3);
    });
    let http = server.http.expect("an HTTP listener");
    assert_eq!(get(http, "/readyz").0, 200);
    let mut admin = server.admin();
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        (
            "objectClass",
            HashSet::from(["inetOrgPerson", "onePagesPerson"]),
        ),
        ("cn", HashSet::from(["Lag Probe"])),
        ("sn", HashSet::from(["Probe"])),
        ("mail", HashSet::from(["lag.probe@one-mail.on.ca"])),
    ];
    let dn = format!("uid=lag.probe@oneid.on.ca,{PEOPLE}");
    assert_eq!(admin.add(&dn, attrs).unwrap().rc, 0);
    let (code, body) = get(http, "/readyz");
    assert_eq!(code, 503, "{body}");
    let lag: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(lag["ready"], false);
    assert!(lag["index_lag"].as_u64().unwrap() >= 1, "{body}");
    let (_, text) = get(http, "/metrics");
    assert!(
        sample(&text, "onepages_index_lag_entries").unwrap() >= 1.0,
        "{text}"
    );
    // /healthz stays 200: the server serves, and searches find the new entry meanwhile.
    assert_eq!(get(http, "/healthz").0, 200);
    assert_eq!(
        dns(&mut admin, PEOPLE, "(mail=lag.probe@one-mail.on.ca)").len(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = get(http, "/readyz");
        if code == 200 {
            assert!(body.contains("\"index_lag\":0"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the index never caught up: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(admin);
}

/// The monitor entries under `base` (subtree) with their attributes.
fn monitor(conn: &mut ldap3::LdapConn, base: &str, attrs: Vec<&str>) -> Vec<SearchEntry> {
    let (entries, _) = conn
        .search(base, Scope::Subtree, "(objectClass=*)", attrs)
        .unwrap()
        .success()
        .unwrap();
    entries.into_iter().map(SearchEntry::construct).collect()
}

fn counter(entries: &[SearchEntry], dn: &str, attr: &str) -> u64 {
    entries
        .iter()
        .find(|e| e.dn == dn)
        .unwrap_or_else(|| panic!("no {dn}"))
        .attrs
        .get(attr)
        .and_then(|v| v.first())
        .unwrap_or_else(|| panic!("{dn} has no {attr}"))
        .parse()
        .unwrap()
}

#[test]
fn cn_monitor_shows_the_same_figures_to_administrators_only() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    for _ in 0..4 {
        let _ = dns(&mut admin, PEOPLE, "(sn=rahim)");
    }
    let all = monitor(&mut admin, "cn=Monitor", vec!["*", "+"]);
    let names: Vec<&str> = all.iter().map(|e| e.dn.as_str()).collect();
    for dn in [
        "cn=Monitor",
        "cn=Connections,cn=Monitor",
        "cn=Operations,cn=Monitor",
        "cn=Search,cn=Operations,cn=Monitor",
        "cn=Statistics,cn=Monitor",
        "cn=Time,cn=Monitor",
        "cn=Database 1,cn=Databases,cn=Monitor",
        "cn=Listeners,cn=Monitor",
    ] {
        assert!(names.contains(&dn), "{dn} missing from {names:?}");
    }
    let search = counter(
        &all,
        "cn=Search,cn=Operations,cn=Monitor",
        "monitorOpCompleted",
    );
    // Four searches answered; the one under way is initiated, not completed.
    assert_eq!(search, 4, "{all:?}");
    assert_eq!(
        counter(
            &all,
            "cn=Search,cn=Operations,cn=Monitor",
            "monitorOpInitiated"
        ),
        5
    );
    assert_eq!(
        counter(
            &all,
            "cn=Entries,cn=Database 1,cn=Databases,cn=Monitor",
            "monitorCounter"
        ),
        320
    );
    assert_eq!(
        counter(
            &all,
            "cn=People,cn=Database 1,cn=Databases,cn=Monitor",
            "monitorCounter"
        ),
        292
    );
    assert!(
        counter(
            &all,
            "cn=Current,cn=Connections,cn=Monitor",
            "monitorCounter"
        ) >= 1
    );
    // The counters are operational, as in slapd: not returned for "*" alone.
    let plain = monitor(&mut admin, "cn=Operations,cn=Monitor", vec!["*"]);
    assert!(plain
        .iter()
        .all(|e| !e.attrs.contains_key("monitorOpCompleted")));
    // A filter on a counter, one level, and a name that is not there.
    let (busy, _) = admin
        .search(
            "cn=Operations,cn=Monitor",
            Scope::OneLevel,
            "(monitorOpCompleted>=4)",
            vec!["1.1"],
        )
        .unwrap()
        .success()
        .unwrap();
    let busy: Vec<String> = busy
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    assert!(
        busy.contains(&"cn=Search,cn=Operations,cn=Monitor".to_string()),
        "{busy:?}"
    );
    let missing = admin
        .search(
            "cn=Nothing,cn=Monitor",
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .unwrap();
    assert_eq!(missing.1.rc, 32);
    assert_eq!(missing.1.matched, "cn=Monitor");
    // The root DSE says where it is.
    let dse = one_base(&mut admin, "", vec!["monitorContext"]);
    assert_eq!(dse.attrs["monitorContext"], vec!["cn=Monitor".to_string()]);

    for mut who in [server.reader(), server.conn()] {
        let refused = who
            .search("cn=Monitor", Scope::Subtree, "(objectClass=*)", vec!["*"])
            .unwrap();
        assert_eq!(refused.1.rc, 50, "{:?}", refused.1);
        assert!(refused.0.is_empty());
    }
    drop(admin);
}

fn one_base(conn: &mut ldap3::LdapConn, base: &str, attrs: Vec<&str>) -> SearchEntry {
    let (entries, _) = conn
        .search(base, Scope::Base, "(objectClass=*)", attrs)
        .unwrap()
        .success()
        .unwrap();
    SearchEntry::construct(entries.into_iter().next().unwrap())
}
