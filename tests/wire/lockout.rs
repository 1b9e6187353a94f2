//! Guessing stopped (lockout, per-address brake, the ppolicy control), slow hashes rationed,
//! and the audit trail, over the wire. Time moves through the server's injectable clock.

use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{LdapConn, Mod, Scope, SearchEntry};
use onepages::clock::Clock;
use serde_json::Value;

use crate::support::*;

const DEWEY: &str = "dewey.rahim@oneid.on.ca";
const DEWEY_PW: &str = "dewey-demo-2026";
const PPOLICY: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

fn bind_rc(server: &TestServer, name: &str, password: &str) -> u32 {
    let mut c = server.conn();
    c.simple_bind(name, password).unwrap().rc
}

/// Dewey's DN and what an administrator reads of its lockout state.
fn state(server: &TestServer) -> (String, Vec<String>, Vec<String>) {
    let mut admin = server.admin();
    let e = one(
        &mut admin,
        PEOPLE,
        "(uid=dewey.rahim@oneid.on.ca)",
        vec!["pwdFailureTime", "pwdAccountLockedTime"],
    );
    let get = |a: &str| e.attrs.get(a).cloned().unwrap_or_default();
    (
        e.dn.clone(),
        get("pwdFailureTime"),
        get("pwdAccountLockedTime"),
    )
}

fn locking(clock: &Clock) -> impl FnOnce(&mut onepages::config::Settings) + '_ {
    move |s| {
        s.lockout.failures = 3;
        s.lockout.window = Duration::from_secs(60);
        s.lockout.duration = Duration::from_secs(600);
        s.lockout.address_failures = 0;
        s.clock = clock.clone();
    }
}

#[test]
fn an_account_locks_after_repeated_wrong_passwords_and_unlocks_when_the_time_is_up() {
    let clock = Clock::system();
    let server = TestServer::demo_with(locking(&clock));
    assert_eq!(bind_rc(&server, DEWEY, "wrong-1"), 49);
    assert_eq!(bind_rc(&server, DEWEY, "wrong-2"), 49);
    let (_, failures, locked) = state(&server);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(locked.is_empty());
    // Failures older than the window no longer count.
    clock.advance(Duration::from_secs(61));
    assert_eq!(bind_rc(&server, DEWEY, "wrong-3"), 49);
    assert_eq!(state(&server).1.len(), 1);
    assert_eq!(bind_rc(&server, DEWEY, "wrong-4"), 49);
    assert_eq!(bind_rc(&server, DEWEY, "wrong-5"), 49);
    let (_, failures, locked) = state(&server);
    assert_eq!(failures.len(), 3);
    assert_eq!(
        locked.len(),
        1,
        "locked after three failures within the window"
    );
    assert!(
        locked[0].ends_with('Z') && locked[0].len() == 15,
        "{locked:?}"
    );
    // Locked: the right password is refused exactly like a wrong one.
    let mut c = server.conn();
    let r = c.simple_bind(DEWEY, DEWEY_PW).unwrap();
    assert_eq!(r.rc, 49);
    assert_eq!(r.text, "invalid credentials");
    // Only administrators see the state.
    let mut reader = server.reader();
    let e = one(
        &mut reader,
        PEOPLE,
        "(uid=dewey.rahim@oneid.on.ca)",
        vec!["pwdFailureTime", "pwdAccountLockedTime", "+"],
    );
    assert!(!e.attrs.contains_key("pwdAccountLockedTime"), "{e:?}");
    assert!(!e.attrs.contains_key("pwdFailureTime"));
    // After lockout_secs the lock is over; a successful bind clears the failures.
    // (The clock is the system's plus the offset: leave room for the real seconds that pass.)
    clock.advance(Duration::from_secs(500));
    assert_eq!(
        bind_rc(&server, DEWEY, DEWEY_PW),
        49,
        "still locked at 500 s"
    );
    clock.advance(Duration::from_secs(101));
    assert_eq!(bind_rc(&server, DEWEY, DEWEY_PW), 0);
    let (_, failures, locked) = state(&server);
    assert!(failures.is_empty() && locked.is_empty());
    // Other accounts were never affected.
    assert_eq!(
        bind_rc(&server, "darcy.oneil@oneid.on.ca", "darcy-demo-2026"),
        0
    );
}

#[test]
fn administrators_unlock_with_a_modify_and_nobody_else_can() {
    let clock = Clock::system();
    let server = TestServer::demo_with(locking(&clock));
    for i in 0..3 {
        assert_eq!(bind_rc(&server, DEWEY, &format!("guess-{i}")), 49);
    }
    let (dn, _, locked) = state(&server);
    assert_eq!(locked.len(), 1);
    let delete = || {
        vec![Mod::Delete(
            "pwdAccountLockedTime",
            std::collections::HashSet::new(),
        )]
    };
    let mut reader = server.reader();
    assert_eq!(reader.modify(&dn, delete()).unwrap().rc, 50);
    let mut admin = server.admin();
    let r = admin
        .modify(
            &dn,
            vec![Mod::Replace(
                "pwdAccountLockedTime",
                std::collections::HashSet::from(["20270101000000Z"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 53, "{r:?}");
    assert!(r.text.contains("onePagesStatus"), "{}", r.text);
    assert_eq!(bind_rc(&server, DEWEY, DEWEY_PW), 49, "still locked");
    // An unlock can go with other changes; both happen.
    let r = admin
        .modify(
            &dn,
            vec![
                Mod::Replace(
                    "telephoneNumber",
                    std::collections::HashSet::from(["+1 416 555 0199"]),
                ),
                Mod::Delete("pwdAccountLockedTime", std::collections::HashSet::new()),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    let (_, failures, locked) = state(&server);
    assert!(failures.is_empty() && locked.is_empty());
    assert_eq!(bind_rc(&server, DEWEY, DEWEY_PW), 0);
    let e = one(
        &mut admin,
        PEOPLE,
        "(uid=dewey.rahim@oneid.on.ca)",
        vec!["telephoneNumber"],
    );
    assert_eq!(e.attrs["telephoneNumber"], vec!["+1 416 555 0199"]);
    // Unlocking an entry that does not exist says so.
    let missing = format!("uid=nobody@oneid.on.ca,{PEOPLE}");
    assert_eq!(admin.modify(&missing, delete()).unwrap().rc, 32);
}

fn ppolicy_bind(server: &TestServer, password: &str) -> (u32, Option<Vec<u8>>) {
    let mut c: LdapConn = server.conn();
    let r = c
        .with_controls(RawControl {
            ctype: PPOLICY.into(),
            crit: false,
            val: None,
        })
        .simple_bind(DEWEY, password)
        .unwrap();
    let value = r
        .ctrls
        .iter()
        .find(|c| c.1.ctype == PPOLICY)
        .map(|c| c.1.val.clone().unwrap_or_default());
    (r.rc, value)
}

#[test]
fn the_password_policy_control_says_account_locked_when_asked() {
    let clock = Clock::system();
    let server = TestServer::demo_with(locking(&clock));
    assert_eq!(ppolicy_bind(&server, DEWEY_PW), (0, Some(vec![0x30, 0x00])));
    assert_eq!(ppolicy_bind(&server, "nope").0, 49);
    for _ in 0..2 {
        ppolicy_bind(&server, "nope");
    }
    // accountLocked (error [1] ENUMERATED 1), for the right password as for a wrong one.
    let locked = Some(vec![0x30, 0x03, 0x81, 0x01, 0x01]);
    assert_eq!(ppolicy_bind(&server, DEWEY_PW), (49, locked.clone()));
    assert_eq!(ppolicy_bind(&server, "nope"), (49, locked));
    // Without the control, nothing tells.
    let mut c = server.conn();
    let r = c.simple_bind(DEWEY, DEWEY_PW).unwrap();
    assert_eq!(r.rc, 49);
    assert!(r.ctrls.is_empty());
    // The control is listed in the root DSE.
    let (entries, _) = c
        .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
        .unwrap()
        .success()
        .unwrap();
    let dse = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert!(dse.attrs["supportedControl"].iter().any(|o| o == PPOLICY));
}

#[test]
fn failed_binds_from_one_address_are_braked_whatever_the_account() {
    let clock = Clock::system();
    let server = TestServer::demo_with(|s| {
        s.lockout.failures = 0;
        s.lockout.address_failures = 4;
        s.lockout.address_window = Duration::from_secs(120);
        s.clock = clock.clone();
    });
    for i in 0..4 {
        assert_eq!(bind_rc(&server, &format!("nobody{i}@oneid.on.ca"), "x"), 49);
    }
    // Now even the right password of an existing account is refused, before any look-up.
    let mut c = server.conn();
    let r = c.simple_bind(DEWEY, DEWEY_PW).unwrap();
    assert_eq!(r.rc, 53, "{r:?}");
    assert!(r.text.contains("too many failed sign-ins"), "{}", r.text);
    // Anonymous binds are not sign-ins and still work.
    assert_eq!(bind_rc(&server, "", ""), 0);
    clock.advance(Duration::from_secs(121));
    assert_eq!(bind_rc(&server, DEWEY, DEWEY_PW), 0);
}

#[test]
fn a_lockout_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let configure = |clock: &Clock| {
        let mut s = settings(dir.path());
        locking(clock)(&mut s);
        s
    };
    {
        let server = TestServer::start(configure(&clock), true);
        for _ in 0..3 {
            assert_eq!(bind_rc(&server, DEWEY, "guess"), 49);
        }
        assert_eq!(state(&server).2.len(), 1);
    }
    let server = TestServer::start(configure(&clock), true);
    assert_eq!(
        bind_rc(&server, DEWEY, DEWEY_PW),
        49,
        "still locked after a restart"
    );
    let (_, failures, locked) = state(&server);
    assert_eq!((failures.len(), locked.len()), (3, 1));
}

#[test]
fn slow_hashes_run_at_most_hash_concurrency_at_once_and_searches_go_on() {
    let server = TestServer::demo_with(|s| {
        s.hash_concurrency = 1;
        s.lockout.failures = 0;
        s.lockout.address_failures = 0;
        // Wrong passwords never match the remembered verifications: every bind hashes.
        s.bind_cache_entries = 0;
        // Costly enough that unrationed checks would overlap on the blocking pool.
        s.argon2 = onepages::directory::password::Argon2Cost {
            memory_kib: 8192,
            iterations: 2,
            parallelism: 1,
        };
    });
    // Dewey's demo password is {SSHA} (fast); a new one is stored as argon2id (slow).
    let (dn, _, _) = state(&server);
    let mut admin = server.admin();
    let set = admin
        .modify(
            &dn,
            vec![Mod::Replace(
                "userPassword",
                std::collections::HashSet::from(["argon-2027"]),
            )],
        )
        .unwrap();
    assert_eq!(set.rc, 0);
    let url = server.url.clone();
    let burst: Vec<_> = (0..24)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = LdapConn::new(&url).unwrap();
                c.simple_bind(DEWEY, &format!("wrong-{i}")).unwrap().rc
            })
        })
        .collect();
    // While the burst waits for the one slot, another user's search is answered.
    let mut reader = server.reader();
    let found = dns(&mut reader, PEOPLE, "(cn=dewey*)");
    assert!(!found.is_empty());
    let codes: Vec<u32> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(codes.iter().all(|rc| *rc == 49), "{codes:?}");
    assert!(server.slow_checks.total() >= 24);
    assert_eq!(
        server.slow_checks.peak(),
        1,
        "never more than hash_concurrency at once"
    );
    // And the right password still works afterwards.
    assert_eq!(bind_rc(&server, DEWEY, "argon-2027"), 0);
}

#[test]
fn the_audit_trail_records_binds_writes_lockouts_unlocks_and_refusals_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let clock = Clock::system();
    let server = TestServer::demo_with(|s| {
        locking(&clock)(s);
        s.audit_log = Some(onepages::config::LogTarget::File(audit.clone()));
    });
    assert_eq!(bind_rc(&server, DEWEY, DEWEY_PW), 0);
    assert_eq!(bind_rc(&server, "nobody@oneid.on.ca", "secret-guess-1"), 49);
    for i in 0..3 {
        assert_eq!(bind_rc(&server, DEWEY, &format!("secret-guess-{i}")), 49);
    }
    let (dn, _, _) = state(&server);
    let mut admin = server.admin();
    let r = admin
        .modify(
            &dn,
            vec![
                Mod::Replace(
                    "mobile",
                    std::collections::HashSet::from(["+1 416 555 0100"]),
                ),
                Mod::Delete("pwdAccountLockedTime", std::collections::HashSet::new()),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 0);
    let r = admin
        .modify(
            &dn,
            vec![Mod::Replace(
                "userPassword",
                std::collections::HashSet::from(["new-secret-2027"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 0);
    let mut reader = server.reader();
    let r = reader
        .modify(
            &dn,
            vec![Mod::Replace(
                "mobile",
                std::collections::HashSet::from(["0"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 50);
    drop(admin);
    drop(reader);
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in [
        "dewey-demo-2026",
        "secret-guess",
        "new-secret-2027",
        "{ARGON2}",
        "$argon2",
    ] {
        assert!(!text.contains(secret), "the audit log holds {secret}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |pred: &dyn Fn(&Value) -> bool| lines.iter().find(|l| pred(l)).cloned();
    let ok = find(&|l| l["event"] == "bind" && l["result"] == "success" && l["dn"] == dn.as_str())
        .expect("a successful bind");
    assert_eq!(ok["transport"], "plain");
    assert_eq!(ok["tls"], false);
    assert!(ok["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(ok["time"].as_str().unwrap().ends_with('Z'));
    let unknown = find(&|l| l["event"] == "bind" && l["reason"] == "no such user").unwrap();
    assert_eq!(unknown["code"], 49);
    assert!(find(&|l| l["event"] == "bind" && l["reason"] == "wrong password").is_some());
    let lockout = find(&|l| l["event"] == "lockout").expect("the lockout");
    assert_eq!(lockout["failures"], 3);
    let unlock = find(&|l| l["event"] == "unlock").expect("the unlock");
    assert_eq!(unlock["was_locked"], true);
    assert_eq!(unlock["via"], "ldap");
    let write =
        find(&|l| l["event"] == "write" && l["code"] == 0 && l["attributes"][0] == "mobile")
            .expect("the admin's write");
    assert_eq!(write["op"], "modify");
    assert_eq!(write["target"], dn.as_str());
    assert!(write["who"].as_str().unwrap().contains("demo-admin"));
    let password = find(&|l| l["event"] == "write" && l["attributes"][0] == "userPassword")
        .expect("the password change, by name only");
    assert_eq!(password["code"], 0);
    let refused = find(&|l| l["event"] == "write" && l["code"] == 50).expect("the refusal");
    assert!(refused["who"].as_str().unwrap().contains("demo-reader"));
}

#[test]
fn the_access_log_has_a_line_per_operation_like_slapd_stats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = TestServer::demo_with(|s| {
        s.access_log = Some(onepages::config::LogTarget::File(log.clone()));
    });
    {
        let mut reader = server.reader();
        let found = dns(&mut reader, PEOPLE, "(|(cn=dewey*)(mail=dewey*))");
        let mut other = server.conn();
        assert_eq!(other.simple_bind(DEWEY, "wrong").unwrap().rc, 49);
        let _ = reader.unbind();
        let _ = other.unbind();
        assert!(!found.is_empty());
        let text = wait_for(&log, "CLOSED", 2);
        let search = text
            .lines()
            .find(|l| l.contains("SEARCH base="))
            .expect("a search line");
        assert!(search.contains(&format!("base={PEOPLE:?}")), "{search}");
        assert!(search.contains("scope=sub"), "{search}");
        assert!(
            search.contains("filter=\"(|(cn=dewey*)(mail=dewey*))\""),
            "{search}"
        );
        assert!(
            search.contains(&format!("result=0 entries={}", found.len())),
            "{search}"
        );
        assert!(search.starts_with("conn="), "{search}");
        assert!(
            text.contains(&format!("BIND dn={:?} result=0", READER_DN)),
            "{text}"
        );
        assert!(
            text.contains(&format!("BIND dn={DEWEY:?} result=49")),
            "{text}"
        );
        assert!(text.contains("ACCEPT from=127.0.0.1:"), "{text}");
        assert!(!text.contains("wrong"), "no password in the access log");
    }
}

/// The log's text once `needle` appears `times` times (the server writes as it goes).
fn wait_for(path: &std::path::Path, needle: &str, times: usize) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::read_to_string(path).unwrap_or_default()
}
