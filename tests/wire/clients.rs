//! The address-book clients' templates (CLIENTS.md), replayed with variations of what users
//! type, checked against an oracle written here from the templates' meaning — not from the
//! server's filter code.

use ldap3::{Scope, SearchEntry, SearchOptions};

use crate::support::*;

/// Every entry with the attributes the templates look at.
fn everyone(c: &mut ldap3::LdapConn) -> Vec<SearchEntry> {
    let (entries, _) = c
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["*"])
        .unwrap()
        .success()
        .unwrap();
    entries.into_iter().map(SearchEntry::construct).collect()
}

fn vals<'a>(e: &'a SearchEntry, a: &str) -> impl Iterator<Item = String> + 'a {
    let key = a.to_string();
    e.attrs
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(&key))
        .flat_map(|(_, v)| v.iter().map(|s| s.to_lowercase()))
}

fn prefix(e: &SearchEntry, a: &str, p: &str) -> bool {
    vals(e, a).any(|v| v.starts_with(&p.to_lowercase()))
}

fn equal(e: &SearchEntry, a: &str, x: &str) -> bool {
    vals(e, a).any(|v| v == x.to_lowercase())
}

/// `*p1*p2*...*` in order.
fn contains_in_order(e: &SearchEntry, a: &str, parts: &[&str]) -> bool {
    vals(e, a).any(|v| {
        let mut rest = v.as_str();
        for p in parts {
            match rest.find(&p.to_lowercase()) {
                Some(i) => rest = &rest[i + p.len()..],
                None => return false,
            }
        }
        true
    })
}

fn search(
    c: &mut ldap3::LdapConn,
    filter: &str,
    size: i32,
    attrs: Vec<&str>,
) -> (Vec<String>, u32) {
    let r = c
        .with_search_options(
            SearchOptions::new()
                .sizelimit(size)
                .deref(ldap3::DerefAliases::Always),
        )
        .search(SUFFIX, Scope::Subtree, filter, attrs)
        .unwrap_or_else(|e| panic!("{filter}: {e}"));
    let mut dns: Vec<String> =
        r.0.into_iter()
            .map(|e| SearchEntry::construct(e).dn)
            .collect();
    dns.sort();
    (dns, r.1.rc)
}

fn expect(everyone: &[SearchEntry], pred: impl Fn(&SearchEntry) -> bool) -> Vec<String> {
    let mut v: Vec<String> = everyone
        .iter()
        .filter(|e| pred(e))
        .map(|e| e.dn.clone())
        .collect();
    v.sort();
    v
}

/// What users type: one letter, prefixes, accents, apostrophes, hyphens, mixed case, stray
/// characters.
const TYPED: &[&str] = &[
    "d", "de", "dew", "Dewey", "hé", "Hélène", "o'n", "côté-t", "jean-f", "MARIE", "st-p", "z",
    "q", "x*", "a\\b",
];

#[test]
fn outlook_check_names_and_search_box() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let all = everyone(&mut c);
    for t in TYPED {
        let esc = ldap3::ldap_escape(*t);
        let f =
            format!("(&(mail=*)(|(mail={esc}*)(|(cn={esc}*)(|(sn={esc}*)(givenName={esc}*)))))");
        let want = expect(&all, |e| {
            vals(e, "mail").next().is_some()
                && ["mail", "cn", "sn", "givenName"]
                    .iter()
                    .any(|a| prefix(e, a, t))
        });
        let (got, rc) = search(
            &mut c,
            &f,
            1000,
            vec!["cn", "mail", "company", "department"],
        );
        assert_eq!(rc, 0);
        assert_eq!(got, want, "Check Names '{t}'");
        let f = format!(
            "(&(|(mail={esc}*)(cn={esc}*)(sn={esc}*)(givenName={esc}*)(displayName={esc}*)))"
        );
        let want = expect(&all, |e| {
            ["mail", "cn", "sn", "givenName", "displayName"]
                .iter()
                .any(|a| prefix(e, a, t))
        });
        let (got, _) = search(&mut c, &f, 1000, vec!["cn", "mail"]);
        assert_eq!(got, want, "search box '{t}'");
    }
    // Outlook's limit of 100 on a one-letter search: exactly 100 and sizeLimitExceeded.
    let (got, rc) = search(
        &mut c,
        "(&(mail=*)(|(mail=a*)(|(cn=a*)(|(sn=a*)(givenName=a*)))))",
        100,
        vec!["cn"],
    );
    let total = expect(&all, |e| {
        ["mail", "cn", "sn", "givenName"]
            .iter()
            .any(|a| prefix(e, a, "a"))
    })
    .len();
    if total > 100 {
        assert_eq!((got.len(), rc), (100, 4));
    } else {
        assert_eq!((got.len(), rc), (total, 0));
    }
}

const APPLE_ATTRS: &[&str] = &[
    "givenName",
    "sn",
    "cn",
    "mail",
    "telephoneNumber",
    "facsimileTelephoneNumber",
    "o",
    "title",
    "ou",
    "buildingName",
    "street",
    "l",
    "st",
    "postalCode",
    "c",
    "jpegPhoto",
    "mobile",
    "co",
    "pager",
    "destinationIndicator",
    "labeledURI",
    "IMHandle",
];

#[test]
fn apple_contacts_equality_and_prefix() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let all = everyone(&mut c);
    for t in [
        "Dewey",
        "rahim",
        "Dewey Rahim",
        "hélène",
        "Côté-Tremblay",
        "dewey.rahim@one-mail.on.ca",
        "carmo",
    ] {
        let f = format!("(|(givenname={t})(sn={t})(cn={t})(mail={t}))");
        let want = expect(&all, |e| {
            ["givenName", "sn", "cn", "mail"]
                .iter()
                .any(|a| equal(e, a, t))
        });
        let (got, rc) = search(&mut c, &f, 0, APPLE_ATTRS.to_vec());
        assert_eq!(rc, 0);
        assert_eq!(got, want, "Apple equality '{t}'");
    }
    // iOS: a wider initial-substring OR, including attributes the directory does not have.
    for t in ["de", "lak", "+1 613", "ph"] {
        let f = format!(
            "(|(givenName={t}*)(sn={t}*)(cn={t}*)(mail={t}*)(o={t}*)(title={t}*)(telephoneNumber={t}*)(mobile={t}*)(IMHandle={t}*)(nickname={t}*))"
        );
        let phone = |e: &SearchEntry| {
            let digits: String = t.chars().filter(|c| *c != ' ' && *c != '-').collect();
            vals(e, "telephoneNumber").any(|v| v.replace([' ', '-'], "").starts_with(&digits))
        };
        let want = expect(&all, |e| {
            ["givenName", "sn", "cn", "mail", "o", "title"]
                .iter()
                .any(|a| prefix(e, a, t))
                || phone(e)
        });
        let (got, _) = search(&mut c, &f, 0, APPLE_ATTRS.to_vec());
        assert_eq!(got, want, "iOS prefix '{t}'");
    }
    // Apple reads givenName, sn, cn, mail, telephoneNumber, title, o, ou in the schema's spelling.
    let e = one(
        &mut c,
        SUFFIX,
        "(|(givenname=dewey rahim)(sn=dewey rahim)(cn=dewey rahim)(mail=dewey rahim))",
        APPLE_ATTRS.to_vec(),
    );
    for a in [
        "givenName",
        "sn",
        "cn",
        "mail",
        "telephoneNumber",
        "title",
        "o",
        "ou",
    ] {
        assert!(e.attrs.contains_key(a), "{a} missing: {:?}", e.attrs.keys());
    }
}

#[test]
fn thunderbird_autocomplete_one_word_and_several() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let all = everyone(&mut c);
    for typed in [
        "jo",
        "dew",
        "ahim",
        "hélène côté",
        "marie tremblay",
        "lab",
        "é",
        "o'n",
        "x",
    ] {
        let words: Vec<&str> = typed.split(' ').collect();
        let first = words[0];
        // Thunderbird sends `*jo**` (an empty middle piece): the ldap3 crate cannot parse it,
        // so it is sent as raw BER in protocol::thunderbird_empty_substring_piece.
        let rest = words[1..].join(" ");
        // (|(cn=*%v1*%v2-*)(mail=*%v*)(givenName=*%v1*)(sn=*%v*)), input lower-cased
        let cn_part = if rest.is_empty() {
            format!("*{first}*")
        } else {
            format!("*{first}*{rest}*")
        };
        let f = format!("(|(cn={cn_part})(mail=*{typed}*)(givenName=*{first}*)(sn=*{typed}*))");
        let want = expect(&all, |e| {
            let mut cn_parts = vec![first];
            if !rest.is_empty() {
                cn_parts.push(&rest);
            }
            contains_in_order(e, "cn", &cn_parts)
                || contains_in_order(e, "mail", &[typed])
                || contains_in_order(e, "givenName", &[first])
                || contains_in_order(e, "sn", &[typed])
        });
        let (got, rc) = search(&mut c, &f, 0, vec![]);
        assert_eq!(rc, 0);
        assert_eq!(got, want, "Thunderbird '{typed}'");
    }
    // A fresh connection per keystroke: connect, bind, one search, unbind.
    for _ in 0..20 {
        let mut k = server.conn();
        k.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
            .unwrap()
            .success()
            .unwrap();
        let found = dns(
            &mut k,
            SUFFIX,
            "(|(cn=*rahi*)(mail=*rahi*)(givenName=*rahi*)(sn=*rahi*))",
        );
        assert!(found.contains(&format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}")));
        k.unbind().unwrap();
    }
}
