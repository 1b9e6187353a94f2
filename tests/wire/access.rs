//! Rights are decided against the directory as it is, at every operation: an administrator
//! who is disabled, demoted or deleted loses its rights on the connections it already has
//! (issue 12). And what each role may write.

use std::collections::HashSet;

use ldap3::exop::{PasswordModify, WhoAmI};
use ldap3::{LdapConn, Mod, Scope};

use crate::support::*;

const SECOND_ADMIN_PW: &str = "second-admin-2026";

fn second_admin_dn() -> String {
    format!("uid=second.admin@oneid.on.ca,{PEOPLE}")
}

/// A person with the admin role, added by the demo administrator; returns a connection
/// bound as it.
fn second_admin(server: &TestServer, admin: &mut LdapConn) -> LdapConn {
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        (
            "objectClass",
            HashSet::from(["inetOrgPerson", "onePagesPerson"]),
        ),
        ("cn", HashSet::from(["Second Admin"])),
        ("sn", HashSet::from(["Admin"])),
        ("mail", HashSet::from(["second.admin@one-mail.on.ca"])),
        ("onePagesRole", HashSet::from(["admin"])),
        ("userPassword", HashSet::from([SECOND_ADMIN_PW])),
    ];
    admin
        .add(&second_admin_dn(), attrs)
        .unwrap()
        .success()
        .unwrap();
    let mut c = server.conn();
    c.simple_bind(&second_admin_dn(), SECOND_ADMIN_PW)
        .unwrap()
        .success()
        .unwrap();
    c
}

fn who(conn: &mut LdapConn) -> String {
    let (exop, _) = conn.extended(WhoAmI).unwrap().success().unwrap();
    String::from_utf8(exop.val.unwrap_or_default()).unwrap()
}

/// What a connection may still do: (add rc, modify rc, password reset rc, search rc).
fn rights(conn: &mut LdapConn, tag: &str) -> (u32, u32, u32, u32) {
    let uid = format!("probe.{tag}@oneid.on.ca");
    let local = format!("probe.{tag}");
    let mail = format!("{local}@one-mail.on.ca");
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        (
            "objectClass",
            HashSet::from(["inetOrgPerson", "onePagesPerson"]),
        ),
        ("cn", HashSet::from([local.as_str()])),
        ("sn", HashSet::from([local.as_str()])),
        ("mail", HashSet::from([mail.as_str()])),
    ];
    let add = conn.add(&format!("uid={uid},{PEOPLE}"), attrs).unwrap().rc;
    let modify = conn
        .modify(
            &format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"),
            vec![Mod::Replace("title", HashSet::from(["Changed by a probe"]))],
        )
        .unwrap()
        .rc;
    let reset = conn
        .extended(PasswordModify {
            user_id: Some(&format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}")),
            old_pass: None,
            new_pass: Some("taken-over-2026"),
        })
        .unwrap()
        .1
        .rc;
    let search = conn
        .search(PEOPLE, Scope::Subtree, "(sn=rahim)", vec!["cn"])
        .unwrap()
        .1
        .rc;
    (add, modify, reset, search)
}

/// A connection that bound as nobody: what a deleted or disabled identity must look like.
fn anonymous_rights(server: &TestServer, tag: &str) -> (u32, u32, u32, u32) {
    let mut fresh = server.conn();
    rights(&mut fresh, tag)
}

/// The demo server, its administrator's connection, and a connection bound as a second
/// administrator that has been seen to hold every right.
fn with_second_admin() -> (TestServer, LdapConn, LdapConn) {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let mut second = second_admin(&server, &mut admin);
    assert_eq!(rights(&mut second, "before"), (0, 0, 0, 0));
    (server, admin, second)
}

fn change_second_admin(admin: &mut LdapConn, mods: Vec<Mod<&str>>) {
    admin
        .modify(&second_admin_dn(), mods)
        .unwrap()
        .success()
        .unwrap();
}

#[test]
fn a_disabled_administrator_loses_its_rights_on_open_connections() {
    let (server, mut admin, mut second) = with_second_admin();
    change_second_admin(
        &mut admin,
        vec![Mod::Replace("onePagesStatus", HashSet::from(["disabled"]))],
    );
    let after = rights(&mut second, "after");
    assert_eq!(after, anonymous_rights(&server, "anon"));
    assert_eq!(after, (8, 8, 8, 50));
    assert_eq!(who(&mut second), "");
    // A fresh connection cannot bind as it either.
    assert_eq!(
        server
            .conn()
            .simple_bind(&second_admin_dn(), SECOND_ADMIN_PW)
            .unwrap()
            .rc,
        49
    );
}

#[test]
fn a_demoted_administrator_keeps_reading_but_no_longer_writes() {
    let (server, mut admin, mut second) = with_second_admin();
    change_second_admin(
        &mut admin,
        vec![Mod::Delete("onePagesRole", HashSet::new())],
    );
    // Now a person like any other: what a fresh connection bound as it gets.
    let after = rights(&mut second, "after");
    let mut fresh = server.conn();
    fresh
        .simple_bind(&second_admin_dn(), SECOND_ADMIN_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(after, rights(&mut fresh, "fresh"));
    assert_eq!(after, (50, 50, 50, 0));
    assert_eq!(who(&mut second), format!("dn:{}", second_admin_dn()));
}

#[test]
fn a_deleted_administrator_is_anonymous_on_open_connections() {
    let (server, mut admin, mut second) = with_second_admin();
    admin.delete(&second_admin_dn()).unwrap().success().unwrap();
    let after = rights(&mut second, "after");
    assert_eq!(after, anonymous_rights(&server, "anon"));
    assert_eq!(after, (8, 8, 8, 50));
    assert_eq!(who(&mut second), "");
    // Re-created under the same name, it is another entry: the old session stays anonymous.
    let mut again = second_admin(&server, &mut admin);
    assert_eq!(who(&mut again), format!("dn:{}", second_admin_dn()));
    assert_eq!(who(&mut second), "");
}

fn person_conn(server: &TestServer) -> LdapConn {
    let mut c = server.conn();
    c.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    c
}

#[test]
fn people_change_their_own_password_and_configured_numbers_only() {
    let server = TestServer::demo_with(|s| {
        s.self_service_attributes = vec!["telephoneNumber".to_string()].into();
    });
    let own = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    let other = format!("uid=helene.cote-tremblay@oneid.on.ca,{PEOPLE}");
    let mut me = person_conn(&server);
    let phone = |c: &mut LdapConn, dn: &str| {
        c.modify(
            dn,
            vec![Mod::Replace(
                "telephoneNumber",
                HashSet::from(["+1 416 555 0142"]),
            )],
        )
        .unwrap()
        .rc
    };
    assert_eq!(phone(&mut me, &own), 0);
    assert_eq!(phone(&mut me, &other), 50);
    let mail = me
        .modify(
            &own,
            vec![Mod::Replace("mail", HashSet::from(["dewey@gmail.com"]))],
        )
        .unwrap();
    assert_eq!(mail.rc, 50, "{mail:?}");
    let role = me
        .modify(
            &own,
            vec![Mod::Replace("onePagesRole", HashSet::from(["admin"]))],
        )
        .unwrap();
    assert_eq!(role.rc, 50);
    assert_eq!(me.delete(&other).unwrap().rc, 50);
    // The number is stored and readable.
    let e = one(&mut me, &own, "(objectClass=*)", vec!["telephoneNumber"]);
    assert_eq!(e.attrs["telephoneNumber"], vec!["+1 416 555 0142"]);
    // Its own password, with the old one.
    let r = me
        .extended(PasswordModify {
            user_id: None,
            old_pass: Some("dewey-demo-2026"),
            new_pass: Some("dewey-new-2026"),
        })
        .unwrap()
        .1;
    assert_eq!(r.rc, 0, "{r:?}");
    let mut again = server.conn();
    again
        .simple_bind("dewey.rahim@oneid.on.ca", "dewey-new-2026")
        .unwrap()
        .success()
        .unwrap();
}

#[test]
fn without_configuration_people_change_only_their_password() {
    let server = TestServer::demo();
    let own = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    let mut me = person_conn(&server);
    let r = me
        .modify(
            &own,
            vec![Mod::Replace(
                "telephoneNumber",
                HashSet::from(["+1 416 555 0142"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 50);
    assert!(r.text.contains("password"), "{r:?}");
}

#[test]
fn a_reader_account_changes_nothing_not_even_its_password() {
    let server = TestServer::demo();
    let mut r = server.reader();
    let res = r
        .extended(PasswordModify {
            user_id: None,
            old_pass: Some(READER_PW),
            new_pass: Some("new-reader-2026"),
        })
        .unwrap()
        .1;
    assert_eq!(res.rc, 50, "{res:?}");
    let res = r
        .modify(
            READER_DN,
            vec![Mod::Replace("description", HashSet::from(["changed"]))],
        )
        .unwrap();
    assert_eq!(res.rc, 50);
}

#[test]
fn one_password_policy_for_every_writer() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let dn = format!("uid=scheme.test@oneid.on.ca,{PEOPLE}");
    let attrs = |pw: &'static str| -> Vec<(&'static str, HashSet<&'static str>)> {
        vec![
            (
                "objectClass",
                HashSet::from(["inetOrgPerson", "onePagesPerson"]),
            ),
            ("cn", HashSet::from(["Scheme Test"])),
            ("sn", HashSet::from(["Test"])),
            ("userPassword", HashSet::from([pw])),
        ]
    };
    // An unknown scheme could never be verified: refused, over LDAP as in imports.
    let r = admin.add(&dn, attrs("{MD4}c2VjcmV0")).unwrap();
    assert_eq!(r.rc, 21, "{r:?}");
    assert!(r.text.contains("{MD4}"), "{r:?}");
    let r = admin
        .modify(
            &format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"),
            vec![Mod::Replace("userPassword", HashSet::from(["{NTLM}abc"]))],
        )
        .unwrap();
    assert_eq!(r.rc, 21, "{r:?}");
    // A supported hash is kept, clear text is hashed: both bind.
    assert_eq!(admin.add(&dn, attrs("clear-text-2026")).unwrap().rc, 0);
    let mut c = server.conn();
    c.simple_bind(&dn, "clear-text-2026")
        .unwrap()
        .success()
        .unwrap();
}
