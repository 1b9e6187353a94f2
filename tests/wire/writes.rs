//! Administrator writes over LDAP: add, modify, delete, modify DN, password modify.

use std::collections::HashSet;

use ldap3::exop::PasswordModify;
use ldap3::{LdapConn, Mod, Scope};

use crate::support::*;

fn person(uid: &str) -> Vec<(String, HashSet<String>)> {
    let local = uid.split('@').next().unwrap_or(uid).to_string();
    vec![
        (
            "objectClass".into(),
            HashSet::from(["inetOrgPerson".to_string(), "onePagesPerson".to_string()]),
        ),
        ("cn".into(), HashSet::from([format!("Test {local}")])),
        ("sn".into(), HashSet::from([local.clone()])),
        (
            "mail".into(),
            HashSet::from([format!("{local}@one-mail.on.ca")]),
        ),
    ]
}

fn add(c: &mut LdapConn, uid: &str) -> ldap3::LdapResult {
    c.add(&format!("uid={uid},{PEOPLE}"), person(uid)).unwrap()
}

#[test]
fn add_modify_rename_delete_round_trip() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let dn = format!("uid=zed.test@oneid.on.ca,{PEOPLE}");
    assert_eq!(add(&mut a, "zed.test@oneid.on.ca").rc, 0);
    assert_eq!(add(&mut a, "zed.test@oneid.on.ca").rc, 68);
    // Found at once through the index's dirty set and, later, the index itself.
    assert_eq!(
        dns(&mut a, SUFFIX, "(mail=zed.test@one-mail.on.ca)"),
        vec![dn.clone()]
    );
    assert_eq!(dns(&mut a, SUFFIX, "(sn=zed*)"), vec![dn.clone()]);
    let r = a
        .modify(
            &dn,
            vec![
                Mod::Replace("title", HashSet::from(["Nurse"])),
                Mod::Add("department", HashSet::from(["Urgence"])),
                Mod::Add("telephoneNumber", HashSet::from(["+1 613 555 0199"])),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    assert_eq!(
        dns(
            &mut a,
            SUFFIX,
            "(&(department=urgence)(title=nurse)(sn=zed*))"
        ),
        vec![dn.clone()]
    );
    // Schema: single-valued displayName, unknown attributes, RDN values.
    let r = a
        .modify(
            &dn,
            vec![Mod::Add("displayName", HashSet::from(["A", "B"]))],
        )
        .unwrap();
    assert_eq!(r.rc, 19);
    let r = a
        .modify(&dn, vec![Mod::Add("bogus", HashSet::from(["x"]))])
        .unwrap();
    assert_eq!(r.rc, 17);
    let r = a
        .modify(&dn, vec![Mod::Delete("uid", HashSet::new())])
        .unwrap();
    assert_eq!(r.rc, 67);
    let r = a
        .modify(&dn, vec![Mod::Delete("mobile", HashSet::new())])
        .unwrap();
    assert_eq!(r.rc, 16);
    let r = a
        .modify(
            &dn,
            vec![Mod::Add(
                "createTimestamp",
                HashSet::from(["20200101000000Z"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 19);
    // Rename.
    let r = a
        .modifydn(&dn, "uid=zed.renamed@oneid.on.ca", true, None)
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    let new_dn = format!("uid=zed.renamed@oneid.on.ca,{PEOPLE}");
    assert!(dns(&mut a, SUFFIX, "(uid=zed.test@oneid.on.ca)").is_empty());
    assert_eq!(
        dns(&mut a, SUFFIX, "(uid=zed.renamed@oneid.on.ca)"),
        vec![new_dn.clone()]
    );
    // Delete.
    assert_eq!(a.delete(&new_dn).unwrap().rc, 0);
    assert_eq!(a.delete(&new_dn).unwrap().rc, 32);
    assert!(dns(&mut a, SUFFIX, "(sn=zed*)").is_empty());
    // Non-leaf entries and missing parents.
    assert_eq!(a.delete(PEOPLE).unwrap().rc, 66);
    let r = a
        .add(
            &format!("uid=x@oneid.on.ca,ou=nowhere,{SUFFIX}"),
            person("x@oneid.on.ca"),
        )
        .unwrap();
    assert_eq!(r.rc, 32);
}

#[test]
fn only_administrators_write() {
    let server = TestServer::demo();
    let mut r = server.reader();
    assert_eq!(add(&mut r, "nope@oneid.on.ca").rc, 50);
    let mut anon = server.conn();
    assert_eq!(add(&mut anon, "nope@oneid.on.ca").rc, 8);
    assert_eq!(
        r.delete(&format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"))
            .unwrap()
            .rc,
        50
    );
}

#[test]
fn new_passwords_are_stored_as_argon2id_and_work() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let uid = "pw.test@oneid.on.ca";
    let mut attrs = person(uid);
    attrs.push((
        "userPassword".into(),
        HashSet::from(["first-pass".to_string()]),
    ));
    let dn = format!("uid={uid},{PEOPLE}");
    assert_eq!(a.add(&dn, attrs).unwrap().rc, 0);
    let mut u = server.conn();
    assert_eq!(u.simple_bind(uid, "first-pass").unwrap().rc, 0);
    // The user changes their own password (RFC 3062).
    let r = u
        .extended(PasswordModify {
            user_id: None,
            old_pass: Some("first-pass"),
            new_pass: Some("second-pass"),
        })
        .unwrap();
    assert_eq!(r.1.rc, 0, "{:?}", r.1);
    let mut v = server.conn();
    assert_eq!(v.simple_bind(uid, "first-pass").unwrap().rc, 49);
    assert_eq!(v.simple_bind(uid, "second-pass").unwrap().rc, 0);
    // Never readable over LDAP, not even by an administrator...
    let (entries, _) = a
        .search(&dn, Scope::Base, "(objectClass=*)", vec!["userPassword"])
        .unwrap()
        .success()
        .unwrap();
    assert!(
        ldap3::SearchEntry::construct(entries.into_iter().next().unwrap())
            .attrs
            .is_empty()
    );
    // ...and stored as argon2id, as the store shows once the server has stopped.
    drop(a);
    drop(u);
    drop(v);
    let mut server = server;
    server.shutdown();
    let dir = server.dir.as_ref().unwrap().path().to_path_buf();
    let s = crate::support::settings(&dir);
    let (dsa, _) = onepages::dsa::Dsa::open(s, "test", &|_| {}).unwrap();
    let found = dsa.reader().find_equal("uid", uid.as_bytes()).unwrap();
    let stored = found[0].1.values("userPassword")[0].clone();
    assert!(
        stored.starts_with(b"{ARGON2}$argon2id$"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
}

#[test]
fn one_id_and_mail_name_one_entry_even_in_a_race() {
    let server = TestServer::demo();
    let mut a = server.admin();
    // Dewey's address under another name, in another case: refused, naming the holder.
    let mut attrs = person("impostor@oneid.on.ca");
    attrs.retain(|(n, _)| n != "mail");
    attrs.push((
        "mail".into(),
        HashSet::from(["DEWEY.RAHIM@one-mail.on.ca".to_string()]),
    ));
    let r = a
        .add(&format!("uid=impostor@oneid.on.ca,{PEOPLE}"), attrs)
        .unwrap();
    assert_eq!(r.rc, 19, "{r:?}");
    assert!(
        r.text.contains("uid=dewey.rahim@oneid.on.ca,ou=people"),
        "{}",
        r.text
    );
    // A modify that takes it is refused too; the entry's own values stay changeable.
    assert_eq!(add(&mut a, "second@oneid.on.ca").rc, 0);
    let dn = format!("uid=second@oneid.on.ca,{PEOPLE}");
    let take = |mail: &str| {
        vec![Mod::Replace(
            "mail".to_string(),
            HashSet::from([mail.to_string()]),
        )]
    };
    assert_eq!(
        a.modify(&dn, take("dewey.rahim@one-mail.on.ca"))
            .unwrap()
            .rc,
        19
    );
    assert_eq!(a.modify(&dn, take("Second@one-mail.on.ca")).unwrap().rc, 0);
    // Eight administrators add eight entries with one address at once: exactly one wins.
    let url = server.url.clone();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = LdapConn::new(&url).unwrap();
                c.simple_bind(ADMIN_DN, ADMIN_PW)
                    .unwrap()
                    .success()
                    .unwrap();
                let uid = format!("racer{i}@oneid.on.ca");
                let mut attrs = person(&uid);
                attrs.retain(|(n, _)| n != "mail");
                attrs.push((
                    "mail".into(),
                    HashSet::from(["race@one-mail.on.ca".to_string()]),
                ));
                c.add(&format!("uid={uid},{PEOPLE}"), attrs).unwrap().rc
            })
        })
        .collect();
    let codes: Vec<u32> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 0 || *c == 19), "{codes:?}");
    let mut r = server.reader();
    assert_eq!(dns(&mut r, PEOPLE, "(mail=race@one-mail.on.ca)").len(), 1);
}

/// Values that would mislead a sender are refused over LDAP, on add and on modify, with
/// invalidAttributeSyntax (21) or objectClassViolation (65) and a diagnostic naming the value.
#[test]
fn misleading_values_are_refused() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let uid = "mia.values@oneid.on.ca";
    let dn = format!("uid={uid},{PEOPLE}");
    let with = |attr: &str, value: &str| {
        let mut attrs: Vec<(String, HashSet<String>)> = person(uid)
            .into_iter()
            .filter(|(a, _)| !a.eq_ignore_ascii_case(attr))
            .collect();
        attrs.push((attr.into(), HashSet::from([value.to_string()])));
        attrs
    };
    let refused: &[(&str, &str, u32, &str)] = &[
        (
            "onePagesStatus",
            "disabled ",
            21,
            "not one of active, disabled",
        ),
        ("onePagesStatus", "inactive", 21, "not one of"),
        ("onePagesStatus", "suspended", 21, "not one of"),
        (
            "onePagesAccountType",
            "admin",
            21,
            "not one of user, external, service",
        ),
        ("mail", "amir.haddad@@one-mail", 21, "is not a mail address"),
        ("mail", "amir.haddad@one-mail", 21, "fully qualified"),
        ("cn", "Mia\u{0}Values", 21, "NUL"),
        ("cn", "Mia \u{1b}[31mValues", 21, "escape"),
        ("cn", "Mia\r\nValues", 21, "line break"),
        ("sn", "seulaV\u{202e}aiM", 21, "bidirectional override"),
        ("telephoneNumber", "not a phone", 21, "telephone"),
        ("destinationIndicator", "Montréal", 21, "printable-string"),
        ("objectClass", "applicationProcess", 65, "structural"),
    ];
    for (attr, value, rc, says) in refused {
        let mut attrs = with(attr, value);
        if *attr == "objectClass" {
            attrs = person(uid);
            for (name, values) in &mut attrs {
                if name == "objectClass" {
                    values.insert((*value).to_string());
                }
            }
        }
        let r = a.add(&dn, attrs).unwrap();
        assert_eq!(r.rc, *rc, "{attr}: {value:?}: {r:?}");
        assert!(r.text.contains(says), "{attr}: {value:?}: {}", r.text);
    }
    // A person's uid is a ONE ID username.
    let r = a
        .add(
            &format!("uid=mia.values@one-mail.on.ca,{PEOPLE}"),
            person("mia.values@one-mail.on.ca"),
        )
        .unwrap();
    assert_eq!(r.rc, 21, "{r:?}");
    assert!(r.text.contains("not a ONE ID username"), "{}", r.text);

    // What is right is accepted: any case of an enumerated value, U-label and A-label mail
    // domains, an E.123 number with an extension, accented and right-to-left names.
    let mut attrs = with("onePagesStatus", "Disabled");
    attrs.push((
        "telephoneNumber".into(),
        HashSet::from(["+1 416 555 0100 x 204".into()]),
    ));
    attrs.push((
        "description".into(),
        HashSet::from(["Médecin — عيادة".into()]),
    ));
    let r = a.add(&dn, attrs).unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    for mail in ["mia@bücher.example", "mia@xn--bcher-kva.example"] {
        let r = a
            .modify(&dn, vec![Mod::Replace("mail", HashSet::from([mail]))])
            .unwrap();
        assert_eq!(r.rc, 0, "{mail}: {r:?}");
    }
    // The two forms of one domain are one address.
    assert_eq!(
        dns(&mut a, SUFFIX, "(mail=mia@BÜCHER.example)"),
        vec![dn.clone()]
    );

    // Modify is checked the same way.
    for (attr, value) in [
        ("onePagesStatus", "suspended"),
        ("mail", "mia@@bücher.example"),
        ("givenName", "Mia\u{202e}"),
        ("telephoneNumber", "call me"),
    ] {
        let r = a
            .modify(&dn, vec![Mod::Replace(attr, HashSet::from([value]))])
            .unwrap();
        assert_eq!(r.rc, 21, "{attr}: {value:?}: {r:?}");
    }
    let r = a
        .modify(
            &dn,
            vec![Mod::Add(
                "objectClass",
                HashSet::from(["applicationProcess"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 65, "{r:?}");
}
