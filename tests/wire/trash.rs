//! Issue 15, point 4: a deleted entry is kept as a tombstone for `tombstone_days`, out of every
//! search but an administrator's Show Deleted view, and restored as it was (entryUUID,
//! timestamps, password) through the restore extended operation; tombstones past their time
//! are purged by the server (at start-up, or asked), with an audit line.

use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::exop::Exop;
use ldap3::{LdapConn, Scope, SearchEntry};
use onepages::clock::Clock;

use crate::support::{dns, settings, TestServer, PEOPLE, SUFFIX};

const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
const RESTORE: &str = "2.25.284118977951875160080438219710100426701.4.1";
const PURGE: &str = "2.25.284118977951875160080438219710100426701.4.2";
const DEWEY: &str = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";
const DEWEY_UID: &str = "dewey.rahim@oneid.on.ca";
const DEWEY_PW: &str = "dewey-demo-2026";

fn deleted(conn: &mut LdapConn, filter: &str) -> Result<Vec<SearchEntry>, u32> {
    let show = RawControl {
        ctype: SHOW_DELETED.into(),
        crit: true,
        val: None,
    };
    let ldap3::SearchResult(entries, res) = conn
        .with_controls(vec![show])
        .search(SUFFIX, Scope::Subtree, filter, vec!["*", "+"])
        .unwrap();
    if res.rc != 0 {
        return Err(res.rc);
    }
    Ok(entries.into_iter().map(SearchEntry::construct).collect())
}

fn exop(conn: &mut LdapConn, oid: &str, value: Option<&str>) -> (u32, String, String) {
    let r = conn
        .extended(Exop {
            name: Some(oid.into()),
            val: value.map(|v| v.as_bytes().to_vec()),
        })
        .unwrap();
    let value = String::from_utf8_lossy(&r.0.val.unwrap_or_default()).into_owned();
    (r.1.rc, r.1.text, value)
}

fn uuid_of(conn: &mut LdapConn, dn: &str) -> String {
    let (entries, _) = conn
        .search(
            dn,
            Scope::Base,
            "(objectClass=*)",
            vec!["entryUUID", "createTimestamp"],
        )
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(entries.into_iter().next().unwrap());
    format!(
        "{:?} {:?}",
        e.attrs["entryUUID"], e.attrs["createTimestamp"]
    )
}

fn binds(server: &TestServer, dn: &str, pw: &str) -> bool {
    let mut c = server.conn();
    c.simple_bind(dn, pw).unwrap().rc == 0
}

#[test]
fn a_deleted_person_is_hidden_then_restored_as_it_was() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let before = uuid_of(&mut admin, DEWEY);
    admin.delete(DEWEY).unwrap().success().unwrap();

    // Invisible to every search, the administrator's plain ones too.
    let mut reader = server.reader();
    assert!(dns(&mut reader, SUFFIX, &format!("(uid={DEWEY_UID})")).is_empty());
    assert!(dns(&mut admin, SUFFIX, &format!("(uid={DEWEY_UID})")).is_empty());
    assert!(
        !binds(&server, DEWEY, DEWEY_PW),
        "a deleted person cannot sign in"
    );

    // The tombstone view is the administrators' alone.
    assert_eq!(deleted(&mut reader, "(objectClass=*)").unwrap_err(), 50);
    let tombs = deleted(&mut admin, &format!("(uid={DEWEY_UID})")).unwrap();
    assert_eq!(tombs.len(), 1);
    let t = &tombs[0];
    assert_eq!(t.dn, DEWEY);
    assert_eq!(t.attrs["isDeleted"], ["TRUE"]);
    assert!(t.attrs["onePagesDeletedBy"][0].starts_with("cn=demo-admin"));
    assert!(t.attrs.contains_key("onePagesDeletedAt"));
    assert!(t.attrs.contains_key("onePagesPurgeAt"));
    assert!(
        !t.attrs.contains_key("userPassword"),
        "the view never shows a password hash"
    );

    // A reader may not restore; an administrator may, by ONE ID.
    assert_eq!(exop(&mut reader, RESTORE, Some(DEWEY_UID)).0, 50);
    let (rc, text, dn) = exop(&mut admin, RESTORE, Some(DEWEY_UID));
    assert_eq!(rc, 0, "{text}");
    assert_eq!(dn, DEWEY);
    assert_eq!(
        uuid_of(&mut admin, DEWEY),
        before,
        "entryUUID and createTimestamp kept"
    );
    assert!(binds(&server, DEWEY, DEWEY_PW), "the password is kept");
    assert_eq!(
        dns(&mut reader, SUFFIX, &format!("(uid={DEWEY_UID})")),
        [DEWEY]
    );
    assert!(deleted(&mut admin, "(objectClass=*)").unwrap().is_empty());

    // Nothing left to restore.
    let (rc, text, _) = exop(&mut admin, RESTORE, Some(DEWEY_UID));
    assert_eq!(rc, 32, "{text}");
}

#[test]
fn a_restore_whose_one_id_was_taken_since_names_the_holder() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    admin.delete(DEWEY).unwrap().success().unwrap();
    // Someone else gets Dewey's ONE ID under another name.
    let other = format!("cn=Dewey Rahim (new),{PEOPLE}");
    admin
        .add(
            &other,
            vec![
                ("objectClass", ["inetOrgPerson"].into()),
                ("cn", ["Dewey Rahim (new)"].into()),
                ("sn", ["Rahim"].into()),
                ("uid", [DEWEY_UID].into()),
            ],
        )
        .unwrap()
        .success()
        .unwrap();
    let (rc, text, _) = exop(&mut admin, RESTORE, Some(DEWEY));
    assert_eq!(rc, 19, "constraintViolation: {text}");
    assert!(text.contains(&other), "names the holder: {text}");
    // The tombstone is still there for when the clash is resolved.
    assert_eq!(deleted(&mut admin, "(objectClass=*)").unwrap().len(), 1);
    admin.delete(&other).unwrap().success().unwrap();
    let (rc, text, _) = exop(&mut admin, RESTORE, Some(DEWEY));
    assert_eq!(rc, 0, "{text}");
}

#[test]
fn tombstones_past_their_time_are_purged_with_an_audit_line() {
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let configure = |clock: &Clock| {
        let mut s = settings(&dir.path().join("data"));
        s.clock = clock.clone();
        s.tombstone_days = 30;
        s.audit_log = Some(onepages::config::LogTarget::File(audit.clone()));
        s
    };
    let mut server = TestServer::start(configure(&clock), true);
    let mut admin = server.admin();
    admin.delete(DEWEY).unwrap().success().unwrap();
    let helene = "uid=helene.cote-tremblay@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";
    admin.delete(helene).unwrap().success().unwrap();

    // Not yet expired: a purge of the expired forgets nothing.
    assert_eq!(exop(&mut admin, PURGE, None).2, "0");
    clock.advance(Duration::from_secs(29 * 86_400));
    assert_eq!(exop(&mut admin, PURGE, None).2, "0");
    assert_eq!(deleted(&mut admin, "(objectClass=*)").unwrap().len(), 2);

    // One purged by name at once; the other left to expire and go at the next start-up.
    assert_eq!(exop(&mut admin, PURGE, Some(helene)).2, "1");
    clock.advance(Duration::from_secs(2 * 86_400));
    drop(admin);
    server.shutdown();
    let server = TestServer::start(configure(&clock), false);
    let mut admin = server.admin();
    assert!(deleted(&mut admin, "(objectClass=*)").unwrap().is_empty());
    let (rc, _, _) = exop(&mut admin, RESTORE, Some(DEWEY));
    assert_eq!(rc, 32, "purged for good");

    let log = std::fs::read_to_string(&audit).unwrap();
    let purges: Vec<&str> = log.lines().filter(|l| l.contains("\"purge\"")).collect();
    assert_eq!(purges.len(), 2, "{log}");
    assert!(purges[0].contains("asked by an administrator") && purges[0].contains("helene"));
    assert!(purges[1].contains("tombstone_days") && purges[1].contains("dewey"));
}
