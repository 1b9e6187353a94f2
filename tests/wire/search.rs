//! Search (RFC 4511 §4.5) over the demo directory.

use ldap3::{Scope, SearchEntry, SearchOptions};

use crate::support::*;

const DEWEY: &str = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";
const HELENE: &str = "uid=helene.cote-tremblay@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";

#[test]
fn scopes_base_one_subtree() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let (base, _) = c
        .search(DEWEY, Scope::Base, "(objectClass=*)", vec!["cn"])
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(base.len(), 1);
    let (one, _) = c
        .search(SUFFIX, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
        .unwrap()
        .success()
        .unwrap();
    let mut ous: Vec<String> = one
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    ous.sort();
    assert_eq!(
        ous,
        vec![
            format!("ou=contacts,{SUFFIX}"),
            format!("ou=domains,{SUFFIX}"),
            format!("ou=people,{SUFFIX}"),
            format!("ou=services,{SUFFIX}")
        ]
    );
    // The demo's 320 entries but its 5 disabled accounts: out of the address book.
    let all = dns(&mut c, SUFFIX, "(objectClass=*)");
    assert_eq!(all.len(), 315);
    assert_eq!(
        dns(&mut server.admin(), SUFFIX, "(objectClass=*)").len(),
        320
    );
    let services = dns(&mut c, &format!("ou=services,{SUFFIX}"), "(objectClass=*)");
    assert_eq!(services.len(), 3);
    // A missing base is noSuchObject with the deepest existing ancestor as matchedDN.
    let r = c
        .search(
            &format!("uid=nobody,{PEOPLE}"),
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .unwrap();
    assert_eq!(r.1.rc, 32);
    assert_eq!(r.1.matched, PEOPLE);
    let r = c
        .search(
            "o=elsewhere",
            Scope::Subtree,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .unwrap();
    assert_eq!(r.1.rc, 32);
    let r = c
        .search("not a dn", Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 34);
}

#[test]
fn every_filter_type() {
    let server = TestServer::demo();
    let mut c = server.reader();
    // (filter, entries it must return, entries it must not return)
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("(cn=Dewey Rahim)", vec![DEWEY], vec![HELENE]),
        ("(CN=dewey   RAHIM)", vec![DEWEY], vec![HELENE]),
        ("(commonName=dewey rahim)", vec![DEWEY], vec![HELENE]),
        ("(sn=rah*)", vec![DEWEY], vec![HELENE]),
        ("(sn=*ahi*)", vec![DEWEY], vec![HELENE]),
        ("(sn=*him)", vec![DEWEY], vec![HELENE]),
        ("(cn=d*y*r*m)", vec![DEWEY], vec![HELENE]),
        ("(cn=*lène*côté*)", vec![HELENE], vec![DEWEY]),
        ("(&(sn=rahim)(givenName=dewey))", vec![DEWEY], vec![HELENE]),
        (
            "(&(sn=rahim)(!(givenName=dewey)))",
            vec![],
            vec![DEWEY, HELENE],
        ),
        (
            "(|(sn=rahim)(sn=côté-tremblay))",
            vec![DEWEY, HELENE],
            vec![],
        ),
        (
            "(mail=DEWEY.RAHIM@one-mail.on.ca)",
            vec![DEWEY],
            vec![HELENE],
        ),
        ("(uid=dewey.rahim@oneid.on.ca)", vec![DEWEY], vec![HELENE]),
        (
            "(&(sn=rahim)(telephoneNumber=+14165550100))",
            vec![DEWEY],
            vec![HELENE],
        ),
        (
            "(&(sn=rahim)(telephoneNumber=*555-0100))",
            vec![DEWEY],
            vec![HELENE],
        ),
        ("(&(sn=rahim)(cn~=rahim dewy))", vec![DEWEY], vec![HELENE]),
        ("(cn~=helene cote tremblay)", vec![HELENE], vec![DEWEY]),
        (
            "(&(sn=rahim)(createTimestamp>=20000101000000Z))",
            vec![DEWEY],
            vec![HELENE],
        ),
        (
            "(&(sn=rahim)(createTimestamp<=20000101000000Z))",
            vec![],
            vec![DEWEY, HELENE],
        ),
        ("(&(sn=rahim)(department=*))", vec![DEWEY], vec![HELENE]),
        (
            "(&(sn:caseExactMatch:=Rahim)(uid=dewey*))",
            vec![DEWEY],
            vec![HELENE],
        ),
        (
            "(&(sn:caseExactMatch:=RAHIM)(uid=dewey*))",
            vec![],
            vec![DEWEY, HELENE],
        ),
        (
            "(&(sn:2.5.13.2:=RAHIM)(uid=dewey*))",
            vec![DEWEY],
            vec![HELENE],
        ),
        ("(&(uid=dewey*)(ou:dn:=people))", vec![DEWEY], vec![HELENE]),
        (
            "(&(uid=dewey.rahim*)(:caseIgnoreMatch:=rahim))",
            vec![DEWEY],
            vec![HELENE],
        ),
        (
            "(entryDN=uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca)",
            vec![DEWEY],
            vec![HELENE],
        ),
        // Unknown attributes are Undefined: an OR still matches on its other branches.
        (
            "(|(IMHandle=x)(mozillaNickname=x)(sn=rahim))",
            vec![DEWEY],
            vec![HELENE],
        ),
        ("(IMHandle=*)", vec![], vec![DEWEY, HELENE]),
        ("(&(sn=rahim)(!(IMHandle=x)))", vec![], vec![DEWEY, HELENE]),
        // The supertype `name` reaches cn, sn, givenName...
        (
            "(&(name=rahim)(objectClass=inetOrgPerson))",
            vec![DEWEY],
            vec![HELENE],
        ),
    ];
    for (filter, yes, no) in cases {
        let got = dns(&mut c, SUFFIX, filter);
        for dn in yes {
            assert!(got.iter().any(|g| g == dn), "{filter} misses {dn}: {got:?}");
        }
        for dn in no {
            assert!(
                !got.iter().any(|g| g == dn),
                "{filter} wrongly returns {dn}"
            );
        }
    }
}

#[test]
fn attribute_lists_follow_the_rfc() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let all = one(&mut c, DEWEY, "(objectClass=*)", vec![]);
    assert!(all.attrs.contains_key("givenName"));
    assert!(all.attrs.contains_key("department"));
    assert!(!all.attrs.contains_key("createTimestamp"));
    let plus = one(&mut c, DEWEY, "(objectClass=*)", vec!["+"]);
    assert!(plus.attrs.contains_key("createTimestamp"));
    assert!(plus.attrs.contains_key("entryUUID"));
    assert_eq!(plus.attrs["entryDN"], vec![DEWEY.to_string()]);
    assert_eq!(
        plus.attrs["subschemaSubentry"],
        vec!["cn=Subschema".to_string()]
    );
    assert!(!plus.attrs.contains_key("cn"));
    let none = one(&mut c, DEWEY, "(objectClass=*)", vec!["1.1"]);
    assert!(none.attrs.is_empty());
    // Names in the schema's spelling, whatever the client sent; unknown names skipped.
    let named = one(
        &mut c,
        DEWEY,
        "(objectClass=*)",
        vec!["GIVENNAME", "mail", "IMHandle"],
    );
    let mut keys: Vec<&String> = named.attrs.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["givenName", "mail"]);
    let (entries, _) = c
        .with_search_options(SearchOptions::new().typesonly(true))
        .search(DEWEY, Scope::Base, "(objectClass=*)", vec!["cn", "sn"])
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert!(e.attrs.values().all(|v| v.is_empty()));
    assert_eq!(e.attrs.len(), 2);
}

#[test]
fn entries_without_a_department_have_none() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let e = one(
        &mut c,
        HELENE,
        "(objectClass=*)",
        vec!["department", "ou", "cn"],
    );
    assert!(!e.attrs.contains_key("department"));
    assert!(!e.attrs.contains_key("ou"));
    assert!(!dns(&mut c, PEOPLE, "(!(department=*))").is_empty());
}

#[test]
fn size_limits_return_partial_results() {
    let server = TestServer::demo_with(|s| {
        s.limits.roles.reader.size_limit = 50;
        s.limits.roles.user.size_limit = 50;
    });
    let mut c = server.reader();
    let r = c
        .with_search_options(SearchOptions::new().sizelimit(7))
        .search(PEOPLE, Scope::Subtree, "(mail=*)", vec!["mail"])
        .unwrap();
    assert_eq!(r.1.rc, 4);
    assert_eq!(r.0.len(), 7);
    // One-character prefix over the whole directory, cut at the limit.
    let r = c
        .with_search_options(SearchOptions::new().sizelimit(3))
        .search(PEOPLE, Scope::Subtree, "(|(mail=a*)(cn=a*))", vec!["mail"])
        .unwrap();
    assert_eq!(r.1.rc, 4);
    assert_eq!(r.0.len(), 3);
    // Client limit 0 means the server's cap.
    let r = c
        .with_search_options(SearchOptions::new().sizelimit(0))
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 4);
    assert_eq!(r.0.len(), 50);
    // Exactly at the limit is success.
    let r = c
        .with_search_options(SearchOptions::new().sizelimit(4))
        .search(SUFFIX, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 0);
    assert_eq!(r.0.len(), 4);
    // Administrators are not capped by the server.
    let mut a = server.admin();
    let r = a
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 0);
    assert_eq!(r.0.len(), 320);
}

#[test]
fn root_dse_and_subschema_are_discoverable() {
    let server = TestServer::demo();
    let mut c = server.conn();
    let (entries, _) = c
        .search("", Scope::Base, "(objectClass=*)", vec!["+"])
        .unwrap()
        .success()
        .unwrap();
    let dse = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert_eq!(dse.attrs["namingContexts"], vec![SUFFIX.to_string()]);
    assert_eq!(dse.attrs["supportedLDAPVersion"], vec!["3".to_string()]);
    assert_eq!(
        dse.attrs["subschemaSubentry"],
        vec!["cn=Subschema".to_string()]
    );
    assert!(dse.attrs["supportedExtension"].contains(&"1.3.6.1.4.1.4203.1.11.3".to_string()));
    assert!(dse.attrs.contains_key("supportedControl"));
    assert!(dse.attrs.contains_key("supportedFeatures"));
    assert_eq!(dse.attrs["vendorName"], vec!["ONE Pages".to_string()]);
    let (entries, _) = c
        .search(
            "cn=Subschema",
            Scope::Base,
            "(objectClass=subschema)",
            vec![
                "attributeTypes",
                "objectClasses",
                "matchingRules",
                "ldapSyntaxes",
            ],
        )
        .unwrap()
        .success()
        .unwrap();
    let sub = SearchEntry::construct(entries.into_iter().next().unwrap());
    let ats = &sub.attrs["attributeTypes"];
    assert!(ats.iter().any(|a| a.contains("NAME ( 'cn' 'commonName' )")));
    assert!(ats.iter().any(|a| a.contains("'onePagesStatus'")));
    for a in ats.iter().chain(sub.attrs["objectClasses"].iter()) {
        assert!(a.starts_with("( ") && a.ends_with(" )"), "{a}");
    }
    assert!(sub.attrs["matchingRules"]
        .iter()
        .any(|m| m.contains("caseIgnoreMatch")));
    assert!(!sub.attrs["ldapSyntaxes"].is_empty());
}

#[test]
fn compare_uses_matching_rules() {
    let server = TestServer::demo();
    let mut c = server.reader();
    assert_eq!(c.compare(DEWEY, "sn", "RAHIM").unwrap().0.rc, 6);
    assert_eq!(c.compare(DEWEY, "sn", "Smith").unwrap().0.rc, 5);
    assert_eq!(c.compare(DEWEY, "surname", "rahim").unwrap().0.rc, 6);
    assert_eq!(c.compare(DEWEY, "mobile", "1").unwrap().0.rc, 16);
    assert_eq!(c.compare(DEWEY, "bogusAttr", "1").unwrap().0.rc, 17);
    assert_eq!(
        c.compare(&format!("uid=nobody,{PEOPLE}"), "sn", "x")
            .unwrap()
            .0
            .rc,
        32
    );
    let mut anon = server.conn();
    assert_eq!(anon.compare(DEWEY, "sn", "rahim").unwrap().0.rc, 50);
}

#[test]
fn deref_always_and_never_give_the_same_results() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let a = c
        .with_search_options(SearchOptions::new().deref(ldap3::DerefAliases::Always))
        .search(PEOPLE, Scope::Subtree, "(sn=tremblay*)", vec!["1.1"])
        .unwrap()
        .0
        .len();
    let n = c
        .with_search_options(SearchOptions::new().deref(ldap3::DerefAliases::Never))
        .search(PEOPLE, Scope::Subtree, "(sn=tremblay*)", vec!["1.1"])
        .unwrap()
        .0
        .len();
    assert_eq!(a, n);
    assert!(a > 0);
}

#[test]
fn time_limit_returns_time_limit_exceeded() {
    let server = TestServer::demo_with(|s| {
        let roles = &mut s.limits.roles;
        for role in [&mut roles.reader, &mut roles.user, &mut roles.admin] {
            role.time_limit = std::time::Duration::ZERO;
        }
    });
    let mut c = server.reader();
    let r = c
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .unwrap();
    assert_eq!(r.1.rc, 3, "{:?}", r.1);
}
