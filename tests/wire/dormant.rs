//! Issue 16: sign-ins recorded at bind, the dormant-account rules reported and applied through
//! the real server and binary, exemptions, and disabled people out of the address book. Time
//! moves through the server's injectable clock.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::{LdapConn, Mod, Scope, SearchEntry};
use onepages::clock::{generalized_time, Clock};
use serde_json::Value;

use crate::support::*;

const DAY: i64 = 86_400;
const DEWEY: &str = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";

fn attrs_of(c: &mut LdapConn, dn: &str, attrs: Vec<&str>) -> Option<SearchEntry> {
    let (entries, res) = c
        .search(dn, Scope::Base, "(objectClass=*)", attrs)
        .unwrap()
        .success()
        .map(|(e, r)| (e, r.rc))
        .unwrap_or((Vec::new(), 32));
    assert!(res == 0 || res == 32);
    entries.into_iter().next().map(SearchEntry::construct)
}

fn first(e: &SearchEntry, a: &str) -> Option<String> {
    e.attrs.get(a).and_then(|v| v.first()).cloned()
}

fn bind_dewey(server: &TestServer) -> LdapConn {
    let mut c = server.conn();
    c.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    c
}

/// Point 1: a bind records the sign-in without writing the entry; fifty more binds the same
/// day record nothing new; a bind a day later does. Administrators read it, nobody else.
#[test]
fn sign_ins_are_recorded_off_the_entry_once_a_day() {
    let clock = Clock::system();
    let server = TestServer::demo_with(|s| s.clock = clock.clone());
    let mut a = server.admin();
    let wanted = vec!["onePagesLastSignIn", "modifyTimestamp"];
    let before = attrs_of(&mut a, DEWEY, wanted.clone()).unwrap();
    assert_eq!(first(&before, "onePagesLastSignIn"), None);
    let at = clock.unix_secs();
    drop(bind_dewey(&server));
    let after = attrs_of(&mut a, DEWEY, wanted.clone()).unwrap();
    let signed = first(&after, "onePagesLastSignIn").expect("recorded");
    let signed_at = onepages::dsa::sign_in::time_of(&signed).unwrap();
    assert!((at..at + 30).contains(&signed_at), "{signed} vs {at}");
    assert_eq!(
        first(&after, "modifyTimestamp"),
        first(&before, "modifyTimestamp"),
        "the entry itself is not written"
    );
    for _ in 0..50 {
        drop(bind_dewey(&server));
    }
    let same = attrs_of(&mut a, DEWEY, wanted.clone()).unwrap();
    assert_eq!(
        first(&same, "onePagesLastSignIn"),
        Some(signed.clone()),
        "the day's first sign-in stands"
    );
    // Not for readers or the person, with '+' or by name; not in a filter or a compare.
    for mut c in [server.reader(), bind_dewey(&server)] {
        let e = attrs_of(&mut c, DEWEY, vec!["*", "+", "onePagesLastSignIn"]).unwrap();
        assert!(!e.attrs.contains_key("onePagesLastSignIn"), "{:?}", e.attrs);
        let r = c
            .compare(DEWEY, "onePagesLastSignIn", signed.as_str())
            .unwrap();
        assert_eq!(r.0.rc, 50);
    }
    clock.advance(Duration::from_secs(86_400 + 60));
    drop(bind_dewey(&server));
    let next = attrs_of(&mut a, DEWEY, wanted).unwrap();
    let next_at = onepages::dsa::sign_in::time_of(&first(&next, "onePagesLastSignIn").unwrap());
    assert!(
        next_at.unwrap() >= signed_at + DAY,
        "a day later counts afresh"
    );
}

/// Point 5: a disabled person is out of the address book for readers and users (searches,
/// base reads, compare), stays visible to administrators, cannot bind, and the private
/// attributes (exemption, status reason) are for administrators only.
#[test]
fn disabled_people_and_private_attributes_are_for_administrators_only() {
    let server = TestServer::demo();
    let mut a = server.admin();
    a.modify(
        DEWEY,
        vec![
            Mod::Replace("onePagesExemptUntil", HashSet::from(["20991231235959Z"])),
            Mod::Replace("onePagesExemptReason", HashSet::from(["parental leave"])),
        ],
    )
    .unwrap()
    .success()
    .unwrap();
    let mut r = server.reader();
    assert_eq!(
        dns(&mut a, SUFFIX, "(onePagesExemptReason=parental*)").len(),
        1
    );
    assert!(dns(&mut r, SUFFIX, "(onePagesExemptReason=parental*)").is_empty());
    assert_eq!(
        dns(
            &mut r,
            SUFFIX,
            "(|(onePagesExemptReason=*)(uid=dewey.rahim@oneid.on.ca))"
        )
        .len(),
        1,
        "an item on a hidden attribute is Undefined, the OR's other branch still matches"
    );
    let e = attrs_of(&mut r, DEWEY, vec!["*", "+"]).unwrap();
    assert!(
        !e.attrs.keys().any(|k| k.starts_with("onePagesExempt")),
        "{:?}",
        e.attrs
    );
    let e = attrs_of(&mut a, DEWEY, vec!["*"]).unwrap();
    assert_eq!(
        first(&e, "onePagesExemptReason").as_deref(),
        Some("parental leave")
    );

    a.modify(
        DEWEY,
        vec![Mod::Replace("onePagesStatus", HashSet::from(["disabled"]))],
    )
    .unwrap()
    .success()
    .unwrap();
    assert!(dns(&mut r, SUFFIX, "(mail=dewey.rahim@one-mail.on.ca)").is_empty());
    assert!(dns(&mut r, SUFFIX, "(anr=dewey rahim)").is_empty());
    let base = r
        .search(DEWEY, Scope::Base, "(objectClass=*)", vec!["cn"])
        .unwrap();
    assert_eq!(base.1.rc, 32, "not even a base to read");
    assert_eq!(r.compare(DEWEY, "cn", "Dewey Rahim").unwrap().0.rc, 32);
    assert_eq!(
        dns(&mut a, SUFFIX, "(mail=dewey.rahim@one-mail.on.ca)").len(),
        1
    );
    let mut c = server.conn();
    assert_eq!(
        c.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
            .unwrap()
            .rc,
        49
    );
    let e = attrs_of(&mut a, DEWEY, vec!["+"]).unwrap();
    assert!(first(&e, "onePagesStatusChanged").is_some());
    // Re-enabled by an administrator's modify: back in the address book.
    a.modify(
        DEWEY,
        vec![Mod::Replace("onePagesStatus", HashSet::from(["active"]))],
    )
    .unwrap()
    .success()
    .unwrap();
    assert_eq!(
        dns(&mut r, SUFFIX, "(mail=dewey.rahim@one-mail.on.ca)").len(),
        1
    );
    drop(bind_dewey(&server));
}

/// A feed with known dates relative to `now`: one account per rule and boundary.
fn feed(now: i64) -> String {
    let t = |days: i64| generalized_time(now - days * DAY);
    let person = |uid: &str, extra: &[(&str, String)]| {
        let mut s = format!(
            "dn: uid={uid}@oneid.on.ca,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: \
             onePagesPerson\nuid: {uid}@oneid.on.ca\ncn: {uid}\nsn: {uid}\nmail: \
             {uid}@one-mail.on.ca\n"
        );
        for (a, v) in extra {
            s.push_str(&format!("{a}: {v}\n"));
        }
        s.push('\n');
        s
    };
    [
        person("never.used", &[("createTimestamp", t(200))]),
        person("new.account", &[("createTimestamp", t(100))]),
        person(
            "inactive.person",
            &[("createTimestamp", t(800)), ("authTimestamp", t(400))],
        ),
        person(
            "later.wins",
            &[
                ("createTimestamp", t(800)),
                ("onePagesLastSignIn", t(400)),
                ("pwdLastSuccess", t(10)),
            ],
        ),
        person(
            "on.leave",
            &[
                ("createTimestamp", t(800)),
                ("authTimestamp", t(500)),
                ("onePagesExemptUntil", t(-40)),
                ("onePagesExemptReason", "parental leave".into()),
            ],
        ),
        person(
            "back.soon",
            &[
                ("createTimestamp", t(800)),
                ("authTimestamp", t(5)),
                ("onePagesExemptUntil", t(-10)),
                ("onePagesExemptReason", "sabbatical".into()),
            ],
        ),
        person(
            "exemption.over",
            &[
                ("createTimestamp", t(800)),
                ("authTimestamp", t(500)),
                ("onePagesExemptUntil", t(1)),
                ("onePagesExemptReason", "leave".into()),
            ],
        ),
        person(
            "signs.in.today",
            &[
                ("createTimestamp", t(800)),
                ("authTimestamp", t(500)),
                ("userPassword", "today-2026".into()),
            ],
        ),
        person(
            "old.admin",
            &[
                ("createTimestamp", t(900)),
                ("onePagesRole", "admin".into()),
            ],
        ),
        format!(
            "dn: mail=old.contact@webmail.example,ou=contacts,{SUFFIX}\nobjectClass: \
             inetOrgPerson\nobjectClass: onePagesPerson\nmail: old.contact@webmail.example\ncn: \
             Old Contact\nsn: Contact\nonePagesAccountType: external\ncreateTimestamp: {}\n\n",
            t(900)
        ),
    ]
    .concat()
}

fn actions(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["uid"].as_str().unwrap().starts_with("demo"))
        .map(|i| {
            (
                i["uid"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches("@oneid.on.ca")
                    .to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Points 1 to 4 through the real binary against a served directory: an online import with
/// OpenLDAP's sign-in attributes, the report (every rule, the later time winning, exemptions
/// skipped and ending), a sign-in the day of the run saving an account, `--apply` through the
/// writer into the trash and the audit trail, a re-enabled account counting afresh, and
/// `onepages exempt`.
#[test]
fn dormant_accounts_are_reported_applied_and_exempted_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let server = TestServer::demo_with(|s| {
        s.audit_log = Some(onepages::config::LogTarget::File(audit.clone()));
    });
    let now = Clock::system().unix_secs();
    let file = dir.path().join("feed.ldif");
    std::fs::write(&file, feed(now)).unwrap();
    let online = [
        "--server",
        &server.url,
        "--bind-dn",
        ADMIN_DN,
        "--password",
        ADMIN_PW,
    ];
    let mut args = vec!["import"];
    args.extend(online);
    args.push(file.to_str().unwrap());
    let (code, out, err) = onepages(&args);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        format!("{out}{err}").contains("authTimestamp: read as onePagesLastSignIn"),
        "{out}{err}"
    );

    let mut c = server.conn();
    c.simple_bind("signs.in.today@oneid.on.ca", "today-2026")
        .unwrap()
        .success()
        .unwrap();
    let report = |extra: &[&str]| -> Value {
        let mut args = vec!["dormant", "--format", "json"];
        args.extend(online);
        args.extend(extra);
        let (code, out, err) = onepages(&args);
        assert_eq!(code, Some(0), "{out}{err}");
        serde_json::from_str(&out).unwrap()
    };
    let r = report(&[]);
    let expected = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = list
            .iter()
            .map(|(u, a)| (u.to_string(), a.to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        actions(&r),
        expected(&[
            ("back.soon", "exemption-ends"),
            ("exemption.over", "disable"),
            ("inactive.person", "disable"),
            ("never.used", "remove"),
            ("on.leave", "skip"),
        ]),
        "{r:#}"
    );
    let leave = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["uid"] == "on.leave@oneid.on.ca")
        .unwrap();
    assert_eq!(leave["exempt_reason"], "parental leave");
    // The table says the same, with the summary and that nothing was changed.
    let mut args = vec!["dormant"];
    args.extend(online);
    let (_, table, _) = onepages(&args);
    assert!(
        table.contains("1 to remove (never used), 2 to disable (inactive)"),
        "{table}"
    );
    assert!(table.contains("run with --apply"), "{table}");

    let applied = report(&["--apply"]);
    assert_eq!(applied["applied"], true);
    let mut a = server.admin();
    let inactive = format!("uid=inactive.person@oneid.on.ca,{PEOPLE}");
    let e = attrs_of(&mut a, &inactive, vec!["*", "+"]).unwrap();
    assert_eq!(first(&e, "onePagesStatus").as_deref(), Some("disabled"));
    assert!(first(&e, "onePagesStatusReason")
        .unwrap()
        .starts_with("dormant: last sign-in"));
    assert!(first(&e, "onePagesStatusChanged").is_some());
    let never = format!("uid=never.used@oneid.on.ca,{PEOPLE}");
    assert!(attrs_of(&mut a, &never, vec!["1.1"]).is_none(), "removed");
    let mut args = vec!["trash", "list"];
    args.extend(online);
    let (_, trash, _) = onepages(&args);
    assert!(trash.contains("never.used"), "{trash}");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains("\"dormant\"")).count(),
        3,
        "{log}"
    );
    // Nothing is due any more.
    assert_eq!(
        actions(&report(&[])),
        expected(&[("back.soon", "exemption-ends"), ("on.leave", "skip")])
    );

    // Re-enabled by an administrator: it counts from now on.
    a.modify(
        &inactive,
        vec![Mod::Replace("onePagesStatus", HashSet::from(["active"]))],
    )
    .unwrap()
    .success()
    .unwrap();
    let e = attrs_of(&mut a, &inactive, vec!["*"]).unwrap();
    assert_eq!(
        first(&e, "onePagesStatusReason"),
        None,
        "the reason went with the status"
    );
    assert!(!actions(&report(&[]))
        .iter()
        .any(|(u, _)| u == "inactive.person"));
    // ... but a year on, it is due again; --as-of plans it.
    let later = generalized_time(now + 400 * DAY);
    let planned = report(&["--as-of", &later]);
    assert!(actions(&planned).contains(&("inactive.person".into(), "disable".into())));

    // `onepages exempt`, then --clear.
    let soon = onepages::policy::dormant::day(now + 20 * DAY);
    let mut args = vec![
        "exempt",
        "new.account@oneid.on.ca",
        "--until",
        &soon,
        "--reason",
        "secondment",
    ];
    args.extend(online);
    let (code, out, err) = onepages(&args);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("exempt from the dormant-account rules until"),
        "{out}"
    );
    assert!(actions(&report(&[])).contains(&("new.account".into(), "exemption-ends".into())));
    let mut args = vec!["exempt", "new.account@oneid.on.ca", "--clear"];
    args.extend(online);
    assert_eq!(onepages(&args).0, Some(0));
    assert!(!actions(&report(&[]))
        .iter()
        .any(|(u, _)| u == "new.account"));
    // A past date is refused before anything is sent.
    let mut args = vec![
        "exempt",
        "new.account@oneid.on.ca",
        "--until",
        "2020-01-01",
        "--reason",
        "x",
    ];
    args.extend(online);
    let (code, _, err) = onepages(&args);
    assert_eq!(code, Some(2));
    assert!(err.contains("that is past"), "{err}");
    // Readers may not run the rules.
    let (code, _, err) = onepages(&[
        "dormant",
        "--server",
        &server.url,
        "--bind-dn",
        READER_DN,
        "--password",
        READER_PW,
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("only directory administrators"), "{err}");
}

/// `dormant_policy = "apply"`: the server runs the rules itself, and refuses to change more
/// than a tenth of the accounts at once (a clock set far ahead).
#[test]
fn the_server_applies_the_rules_itself_within_a_tenth_of_the_accounts() {
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::demo_with(|s| {
        s.clock = clock.clone();
        s.dormancy.mode = onepages::config::DormantMode::Apply;
        s.dormancy.every = Duration::from_secs(1);
    });
    let now = clock.unix_secs();
    let file = dir.path().join("feed.ldif");
    std::fs::write(&file, feed(now)).unwrap();
    let (code, out, err) = onepages(&[
        "import",
        "--server",
        &server.url,
        "--bind-dn",
        ADMIN_DN,
        "--password",
        ADMIN_PW,
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut a = server.admin();
    let never = format!("uid=never.used@oneid.on.ca,{PEOPLE}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while attrs_of(&mut a, &never, vec!["1.1"]).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daily run did not remove it"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let inactive = format!("uid=inactive.person@oneid.on.ca,{PEOPLE}");
    let e = attrs_of(&mut a, &inactive, vec!["onePagesStatus"]).unwrap();
    assert_eq!(first(&e, "onePagesStatus").as_deref(), Some("disabled"));
    // Two hundred days on, the demo's never-used accounts would all go: refused.
    let people = dns(&mut a, PEOPLE, "(uid=*)").len();
    clock.advance(Duration::from_secs(200 * 86_400));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        dns(&mut a, PEOPLE, "(uid=*)").len(),
        people,
        "the guard held"
    );
}
