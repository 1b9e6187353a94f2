//! Binds (RFC 4513) as users type them.

use ldap3::exop::WhoAmI;
use ldap3::{LdapConn, Scope};

use crate::support::*;

fn who(conn: &mut LdapConn) -> String {
    let (exop, _) = conn
        .extended(WhoAmI)
        .expect("whoami")
        .success()
        .expect("ok");
    String::from_utf8(exop.val.unwrap_or_default()).expect("utf8")
}

#[test]
fn bind_by_dn_and_by_bare_one_id() {
    let server = TestServer::demo();
    let mut c = server.conn();
    let r = c
        .simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    assert_eq!(
        who(&mut c),
        format!("dn:uid=dewey.rahim@oneid.on.ca,{PEOPLE}")
    );
    // Full DN, a {CRYPT} hash and an {ARGON2} hash imported as they are.
    let r = c
        .simple_bind(
            &format!("uid=helene.cote-tremblay@oneid.on.ca,{PEOPLE}"),
            "helene-demo-2026",
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    let r = c
        .simple_bind("DArcy.ONeil@OneID.on.ca", "darcy-demo-2026")
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    assert!(who(&mut c).contains("darcy.oneil"));
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = TestServer::demo();
    let mut c = server.conn();
    let wrong = c.simple_bind("dewey.rahim@oneid.on.ca", "nope").unwrap();
    let unknown = c.simple_bind("nobody.here@oneid.on.ca", "nope").unwrap();
    let unknown_dn = c
        .simple_bind(&format!("uid=nobody,{PEOPLE}"), "nope")
        .unwrap();
    assert_eq!(wrong.rc, 49);
    assert_eq!(unknown.rc, 49);
    assert_eq!(unknown_dn.rc, 49);
    assert_eq!(wrong.text, unknown.text);
    // A failed bind leaves the connection anonymous.
    assert_eq!(who(&mut c), "");
}

#[test]
fn mail_address_bind_tells_the_user_to_use_the_one_id() {
    let server = TestServer::demo();
    let mut c = server.conn();
    let r = c
        .simple_bind("dewey.rahim@one-mail.on.ca", "dewey-demo-2026")
        .unwrap();
    assert_eq!(r.rc, 49);
    assert!(r.text.contains("ONE ID username"), "{}", r.text);
}

#[test]
fn anonymous_binds_succeed_but_reads_are_refused() {
    let server = TestServer::demo();
    let mut c = server.conn();
    // RFC 4513 §5.1.1 anonymous: a bind, but no identity, and reads are refused with a reason.
    let r = c.simple_bind("", "").unwrap();
    assert_eq!(r.rc, 0);
    assert_eq!(who(&mut c), "");
    let r = c
        .search(PEOPLE, Scope::Subtree, "(cn=dewey*)", vec!["cn"])
        .unwrap();
    assert_eq!(r.1.rc, 50, "{:?}", r.1);
    assert!(r.0.is_empty());
    assert!(r.1.text.contains("bind"), "{}", r.1.text);
    // A password without a name is not an anonymous bind.
    let r = c.simple_bind("", "secret").unwrap();
    assert_eq!(r.rc, 49);
}

/// Issue 13: §5.1.2's unauthenticated bind (a name, no password) is refused, not taken for a
/// success; a failed bind leaves the connection anonymous (RFC 4511 §4.2.1).
#[test]
fn unauthenticated_binds_are_refused_unless_allowed() {
    let server = TestServer::demo();
    let mut c = server.conn();
    c.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        who(&mut c),
        format!("dn:uid=dewey.rahim@oneid.on.ca,{PEOPLE}")
    );
    let r = c.simple_bind("dewey.rahim@oneid.on.ca", "").unwrap();
    assert_eq!(r.rc, 53, "{r:?}");
    assert!(r.text.contains("password"), "{}", r.text);
    assert_eq!(who(&mut c), "");
    let allowing = TestServer::demo_with(|s| s.allow_unauthenticated_bind = true);
    let mut c = allowing.conn();
    let r = c.simple_bind("dewey.rahim@oneid.on.ca", "").unwrap();
    assert_eq!(r.rc, 0);
    assert_eq!(who(&mut c), "");
    let r = c
        .search(PEOPLE, Scope::Subtree, "(cn=dewey*)", vec!["cn"])
        .unwrap();
    assert_eq!(r.1.rc, 50);
}

#[test]
fn anonymous_reading_can_be_allowed() {
    let server = TestServer::demo_with(|s| s.anonymous_read = true);
    let mut c = server.conn();
    assert_eq!(dns(&mut c, PEOPLE, "(cn=dewey rahim)").len(), 1);
}

#[test]
fn passwords_are_never_readable_or_searchable() {
    let server = TestServer::demo();
    for mut c in [server.reader(), server.admin()] {
        let e = one(
            &mut c,
            PEOPLE,
            "(uid=dewey.rahim@oneid.on.ca)",
            vec!["*", "userPassword", "+"],
        );
        assert!(!e.attrs.contains_key("userPassword"));
        assert!(!e.bin_attrs.contains_key("userPassword"));
        assert!(dns(&mut c, SUFFIX, "(userPassword=*)").is_empty());
        assert!(dns(&mut c, SUFFIX, "(!(userPassword=*))").is_empty());
        let r = c
            .compare(
                &format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"),
                "userPassword",
                "dewey-demo-2026",
            )
            .unwrap();
        assert_eq!(r.0.rc, 50);
    }
}

#[test]
fn disabled_accounts_cannot_bind() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let dn = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    admin
        .modify(
            &dn,
            vec![ldap3::Mod::Replace(
                "onePagesStatus",
                std::collections::HashSet::from(["disabled"]),
            )],
        )
        .unwrap()
        .success()
        .unwrap();
    let mut c = server.conn();
    let r = c.simple_bind(&dn, "dewey-demo-2026").unwrap();
    assert_eq!(r.rc, 49);
}
