//! Standards corners other servers (slapd) get right and clients rely on: filters on the
//! operational attributes the server returns, invalid assertion values.

use ldap3::{Mod, Scope, SearchEntry};

use crate::support::*;

const DEWEY: &str = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";

/// Every entry with the given attribute's first value, as the server returns it.
fn values_of(conn: &mut ldap3::LdapConn, attr: &str) -> Vec<(String, String)> {
    let (entries, _) = conn
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec![attr])
        .unwrap()
        .success()
        .unwrap();
    let mut out: Vec<(String, String)> = entries
        .into_iter()
        .map(SearchEntry::construct)
        .filter_map(|e| {
            let v = e.attrs.get(attr)?.first()?.clone();
            Some((e.dn, v))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn filters_on_computed_operational_attributes_match_what_is_returned() {
    let server = TestServer::demo();
    let mut c = server.reader();
    // structuralObjectClass: the entries a filter finds are those whose returned value says so.
    let classes = values_of(&mut c, "structuralObjectClass");
    assert_eq!(classes.len(), 315);
    let people: Vec<String> = classes
        .iter()
        .filter(|(_, v)| v == "inetOrgPerson")
        .map(|(dn, _)| dn.clone())
        .collect();
    assert!(people.len() > 250, "{}", people.len());
    assert_eq!(
        dns(&mut c, SUFFIX, "(structuralObjectClass=inetOrgPerson)"),
        people
    );
    // Any case, and in a conjunction with an indexed term.
    assert_eq!(
        dns(
            &mut c,
            SUFFIX,
            "(&(STRUCTURALOBJECTCLASS=INETORGPERSON)(mail=dewey.rahim@one-mail.on.ca))"
        )
        .len(),
        1
    );
    assert!(dns(&mut c, SUFFIX, "(structuralObjectClass=organizationalUnit)").len() >= 4);
    // hasSubordinates: the suffix and its four containers have entries below them.
    let parents = dns(&mut c, SUFFIX, "(hasSubordinates=TRUE)");
    let mut want = vec![
        SUFFIX.to_string(),
        format!("ou=contacts,{SUFFIX}"),
        format!("ou=domains,{SUFFIX}"),
        format!("ou=people,{SUFFIX}"),
        format!("ou=services,{SUFFIX}"),
    ];
    want.sort();
    assert_eq!(parents, want);
    assert_eq!(dns(&mut c, SUFFIX, "(hasSubordinates=false)").len(), 310);
    assert_eq!(dns(&mut c, SUFFIX, "(!(hasSubordinates=TRUE))").len(), 310);
    assert_eq!(dns(&mut c, SUFFIX, "(hasSubordinates=*)").len(), 315);
}

#[test]
fn filters_on_stored_operational_attributes_serve_sync_tools() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let dewey = one(
        &mut c,
        DEWEY,
        "(objectClass=*)",
        vec!["entryUUID", "modifyTimestamp"],
    );
    let uuid = dewey.attrs["entryUUID"][0].clone();
    assert_eq!(
        dns(&mut c, SUFFIX, &format!("(entryUUID={uuid})")),
        vec![DEWEY.to_string()]
    );
    // Upper-case hex is the same UUID (UUIDMatch).
    assert_eq!(
        dns(
            &mut c,
            SUFFIX,
            &format!("(entryUUID={})", uuid.to_uppercase())
        )
        .len(),
        1
    );
    assert_eq!(
        dns(&mut c, SUFFIX, "(createTimestamp>=19700101000000Z)").len(),
        315
    );
    assert!(dns(&mut c, SUFFIX, "(modifyTimestamp>=29991231235959Z)").is_empty());
    assert_eq!(
        dns(&mut c, SUFFIX, "(modifyTimestamp<=29991231235959Z)").len(),
        315
    );
    // A change moves the entry past a sync tool's high-water mark.
    let before = dewey.attrs["modifyTimestamp"][0].clone();
    let mark = dns(&mut c, SUFFIX, &format!("(modifyTimestamp>={before})")).len();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut admin = server.admin();
    admin
        .modify(
            DEWEY,
            vec![Mod::Replace("title", ["Chief of Staff"].into())],
        )
        .unwrap()
        .success()
        .unwrap();
    let after = one(&mut c, DEWEY, "(objectClass=*)", vec!["modifyTimestamp"]).attrs
        ["modifyTimestamp"][0]
        .clone();
    assert!(after > before, "{after} after {before}");
    assert_eq!(
        dns(&mut c, SUFFIX, &format!("(modifyTimestamp>={after})")),
        vec![DEWEY.to_string()]
    );
    assert!(mark >= 1);
}

#[test]
fn an_assertion_invalid_for_the_syntax_is_undefined_and_so_is_its_negation() {
    let server = TestServer::demo();
    let mut c = server.reader();
    // RFC 4511 §4.5.1.7: cn is a Directory String (one character at least): `(cn=)` is
    // Undefined, and so is `(!(cn=))`.
    assert!(dns(&mut c, SUFFIX, "(cn=)").is_empty());
    assert!(dns(&mut c, SUFFIX, "(!(cn=))").is_empty());
    assert!(dns(&mut c, SUFFIX, "(!(telephoneNumber=))").is_empty());
    // An OR still matches on its other branch.
    assert_eq!(
        dns(&mut c, SUFFIX, "(|(cn=)(mail=dewey.rahim@one-mail.on.ca))").len(),
        1
    );
    // A valid value's negation is still true where the value is absent.
    assert_eq!(dns(&mut c, SUFFIX, "(!(cn=nobody at all))").len(), 315);
}

/// Schema browsers (Directory Studio) compare the subschema subentry's timestamps with their
/// cached copy.
#[test]
fn the_subschema_subentry_has_timestamps() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let sub = one(
        &mut c,
        "cn=Subschema",
        "(objectClass=subschema)",
        vec!["createTimestamp", "modifyTimestamp"],
    );
    let created = sub.attrs["createTimestamp"][0].clone();
    let modified = sub.attrs["modifyTimestamp"][0].clone();
    for t in [&created, &modified] {
        assert_eq!(t.len(), 15, "{t}");
        assert!(
            t.ends_with('Z') && t[..14].bytes().all(|b| b.is_ascii_digit()),
            "{t}"
        );
    }
    assert!(modified >= created);
    // Operational: not returned unless asked for.
    let plain = one(&mut c, "cn=Subschema", "(objectClass=subschema)", vec!["*"]);
    assert!(!plain.attrs.contains_key("createTimestamp"));
}

/// RFC 3062 §3.3: Password Modify without a new password gets one made by the server
/// (`ldappasswd` without `-s`, python-ldap `passwd_s(dn, None, None)`).
#[test]
fn password_modify_without_a_new_password_generates_one() {
    use ldap3::exop::{PasswordModify, PasswordModifyResp};
    let server = TestServer::demo();
    let mut admin = server.admin();
    let ldap3::result::ExopResult(exop, res) = admin
        .extended(PasswordModify {
            user_id: Some(DEWEY),
            old_pass: None,
            new_pass: None,
        })
        .unwrap();
    assert_eq!(res.rc, 0, "{res:?}");
    let generated = exop.parse::<PasswordModifyResp>().gen_pass;
    assert_eq!(generated.len(), 20, "{generated}");
    assert!(generated.bytes().all(|b| b.is_ascii_alphanumeric()));
    let mut user = server.conn();
    assert_eq!(user.simple_bind(DEWEY, &generated).unwrap().rc, 0);
    // The user, giving the old one and no new one, gets another; the old one stops working.
    let ldap3::result::ExopResult(exop, res) = user
        .extended(PasswordModify {
            user_id: None,
            old_pass: Some(&generated),
            new_pass: Some(""),
        })
        .unwrap();
    assert_eq!(res.rc, 0, "{res:?}");
    let second = exop.parse::<PasswordModifyResp>().gen_pass;
    assert_ne!(second, generated);
    assert_eq!(server.conn().simple_bind(DEWEY, &generated).unwrap().rc, 49);
    assert_eq!(server.conn().simple_bind(DEWEY, &second).unwrap().rc, 0);
    // A given password is set as given, with no value in the response.
    let ldap3::result::ExopResult(exop, res) = admin
        .extended(PasswordModify {
            user_id: Some(DEWEY),
            old_pass: None,
            new_pass: Some("chosen-by-the-admin-2026"),
        })
        .unwrap();
    assert_eq!(res.rc, 0);
    assert!(exop.val.is_none());
    assert_eq!(
        server
            .conn()
            .simple_bind(DEWEY, "chosen-by-the-admin-2026")
            .unwrap()
            .rc,
        0
    );
}

/// RFC 4529: `@inetOrgPerson` in the attribute list stands for every attribute the class and
/// its superclasses allow; the root DSE says the feature is there.
#[test]
fn an_object_class_in_the_attribute_list_names_its_attributes() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let e = one(&mut c, DEWEY, "(objectClass=*)", vec!["@inetOrgPerson"]);
    for want in [
        "cn",
        "sn",
        "givenName",
        "mail",
        "objectClass",
        "telephoneNumber",
        "uid",
    ] {
        assert!(
            e.attrs.contains_key(want),
            "{want} missing from {:?}",
            e.attrs.keys()
        );
    }
    // Attributes of the directory's own auxiliary classes are not inetOrgPerson's.
    for not in ["company", "onePagesStatus", "oneMailSecure", "userPassword"] {
        assert!(!e.attrs.contains_key(not), "{not} in {:?}", e.attrs.keys());
    }
    // With another name, both; an unknown class names nothing.
    let e = one(&mut c, DEWEY, "(objectClass=*)", vec!["@person", "company"]);
    assert!(e.attrs.contains_key("sn") && e.attrs.contains_key("company"));
    assert!(!e.attrs.contains_key("mail"), "mail is not person's");
    let e = one(&mut c, DEWEY, "(objectClass=*)", vec!["@noSuchClass"]);
    assert!(e.attrs.is_empty(), "{:?}", e.attrs.keys());
    let (dse, _) = c
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["supportedFeatures"],
        )
        .unwrap()
        .success()
        .unwrap();
    let dse = SearchEntry::construct(dse.into_iter().next().unwrap());
    assert!(dse.attrs["supportedFeatures"].contains(&"1.3.6.1.4.1.4203.1.5.2".to_string()));
}
