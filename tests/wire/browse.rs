//! Outlook's browsing and admin dumps: paged results, server-side sort, virtual list view.

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::{LdapConn, LdapResult, Scope, SearchEntry};
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{StructureTag, PL};

use crate::support::*;

const PAGED: &str = "1.2.840.113556.1.4.319";
const SORT: &str = "1.2.840.113556.1.4.473";
const SORT_RESP: &str = "1.2.840.113556.1.4.474";
const VLV: &str = "2.16.840.1.113730.3.4.9";
pub(crate) const VLV_RESP: &str = "2.16.840.1.113730.3.4.10";

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    if content.len() < 128 {
        v.push(content.len() as u8);
    } else {
        v.push(0x82);
        v.extend_from_slice(&(content.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(content);
    v
}

fn int(n: i64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let mut s = 0;
    while s < 7 && ((b[s] == 0 && b[s + 1] & 0x80 == 0) || (b[s] == 0xff && b[s + 1] & 0x80 != 0)) {
        s += 1;
    }
    tlv(0x02, &b[s..])
}

fn paged(size: i64, cookie: &[u8], crit: bool) -> RawControl {
    RawControl {
        ctype: PAGED.into(),
        crit,
        val: Some(tlv(0x30, &[int(size), tlv(0x04, cookie)].concat())),
    }
}

pub(crate) fn sort(attr: &str, reverse: bool, crit: bool) -> RawControl {
    let mut key = tlv(0x04, attr.as_bytes());
    if reverse {
        key.extend(tlv(0x81, &[0xff]));
    }
    RawControl {
        ctype: SORT.into(),
        crit,
        val: Some(tlv(0x30, &tlv(0x30, &key))),
    }
}

pub(crate) fn vlv_offset(before: i64, after: i64, offset: i64, count: i64) -> RawControl {
    let target = tlv(0xa0, &[int(offset), int(count)].concat());
    RawControl {
        ctype: VLV.into(),
        crit: true,
        val: Some(tlv(0x30, &[int(before), int(after), target].concat())),
    }
}

fn vlv_ge(before: i64, after: i64, value: &str) -> RawControl {
    let target = tlv(0x81, value.as_bytes());
    RawControl {
        ctype: VLV.into(),
        crit: true,
        val: Some(tlv(0x30, &[int(before), int(after), target].concat())),
    }
}

/// The elements of a response control's SEQUENCE value.
pub(crate) fn response(res: &LdapResult, oid: &str) -> Vec<StructureTag> {
    let c = res
        .ctrls
        .iter()
        .find(|c| c.1.ctype == oid)
        .unwrap_or_else(|| panic!("no {oid} response control in {res:?}"));
    let bytes = c.1.val.clone().unwrap();
    let (_, tag) = Parser::new(8).parse(&bytes).unwrap();
    match tag.payload {
        PL::C(items) => items,
        PL::P(_) => panic!("not a sequence"),
    }
}

pub(crate) fn int_of(t: &StructureTag) -> i64 {
    match &t.payload {
        PL::P(b) => b.iter().fold(0i64, |a, x| (a << 8) | i64::from(*x)),
        PL::C(_) => panic!("not an integer"),
    }
}

fn bytes_of(t: &StructureTag) -> Vec<u8> {
    match &t.payload {
        PL::P(b) => b.clone(),
        PL::C(_) => panic!("not primitive"),
    }
}

pub(crate) fn search_with(
    c: &mut LdapConn,
    base: &str,
    filter: &str,
    ctrls: Vec<RawControl>,
    attrs: Vec<&str>,
) -> (Vec<SearchEntry>, LdapResult) {
    let r = c
        .with_controls(ctrls)
        .search(base, Scope::Subtree, filter, attrs)
        .unwrap();
    (r.0.into_iter().map(SearchEntry::construct).collect(), r.1)
}

/// All pages of a paged search: (dns, page count).
fn dump(c: &mut LdapConn, filter: &str, size: i64) -> (Vec<String>, usize, LdapResult) {
    let mut cookie = Vec::new();
    let mut dns = Vec::new();
    let mut pages = 0;
    loop {
        let (entries, res) = search_with(
            c,
            SUFFIX,
            filter,
            vec![paged(size, &cookie, true)],
            vec!["1.1"],
        );
        pages += 1;
        assert!(entries.len() as i64 <= size);
        dns.extend(entries.into_iter().map(|e| e.dn));
        if res.rc != 0 {
            return (dns, pages, res);
        }
        let p = response(&res, PAGED);
        cookie = bytes_of(&p[1]);
        if cookie.is_empty() {
            return (dns, pages, res);
        }
        assert!(pages < 1000);
    }
}

#[test]
fn paged_dump_of_the_whole_directory() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let (dns, pages, res) = dump(&mut a, "(objectClass=*)", 50);
    assert_eq!(res.rc, 0);
    assert_eq!(pages, 7);
    assert_eq!(dns.len(), 320);
    assert_eq!(dns.iter().collect::<HashSet<_>>().len(), 320);
    // Through the index, the same answers as without paging.
    let (paged_dns, _, _) = dump(&mut a, "(|(sn=*ga*)(mail=*lab*))", 7);
    let mut paged_dns = paged_dns;
    paged_dns.sort();
    assert_eq!(
        paged_dns,
        crate::support::dns(&mut a, SUFFIX, "(|(sn=*ga*)(mail=*lab*))")
    );
}

/// A total that is a multiple of the page size ends on its last full page (no cookie, no
/// empty page after it), by scan and through the index alike; a client's size limit counts
/// over the pages and its message names the whole limit.
#[test]
fn the_last_full_page_is_the_last_page_and_size_limits_span_pages() {
    let server = TestServer::demo();
    let mut a = server.admin();
    for size in [40, 64, 160, 320] {
        let (dns, pages, res) = dump(&mut a, "(objectClass=*)", size);
        assert_eq!(res.rc, 0);
        assert_eq!(dns.len(), 320);
        assert_eq!(pages as i64, 320 / size, "page size {size}");
    }
    // Not a multiple: one short page at the end, as before.
    assert_eq!(dump(&mut a, "(objectClass=*)", 100).1, 4);
    // Through the index (candidate ids): counted first, then paged by exactly that size.
    let filter = "(|(sn=*ga*)(mail=*lab*))";
    let n = crate::support::dns(&mut a, SUFFIX, filter).len() as i64;
    assert!(n > 2, "{n}");
    assert_eq!(dump(&mut a, filter, n).1, 1);
    assert_eq!(dump(&mut a, filter, 1).1 as i64, n);
    // A size limit of 120 over pages of 20: six pages, then sizeLimitExceeded naming 120.
    let mut cookie = Vec::new();
    let mut got = 0;
    let res = loop {
        let r = a
            .with_controls(vec![paged(20, &cookie, true)])
            .with_search_options(ldap3::SearchOptions::new().sizelimit(120))
            .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
            .unwrap();
        got += r.0.len();
        if r.1.rc != 0 {
            break r.1;
        }
        cookie = bytes_of(&response(&r.1, PAGED)[1]);
        assert!(
            !cookie.is_empty(),
            "stopped at {got} without the size limit"
        );
    };
    assert_eq!(got, 120);
    assert_eq!(res.rc, 4);
    assert!(
        res.text.contains("size limit of 120 entries"),
        "{}",
        res.text
    );
}

#[test]
fn paging_cookies_are_checked() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let (e, res) = search_with(
        &mut a,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(10, b"forged-cookie", true)],
        vec!["1.1"],
    );
    assert!(e.is_empty());
    assert_eq!(res.rc, 53);
    let (_, res) = search_with(
        &mut a,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(10, &[], true)],
        vec!["1.1"],
    );
    let cookie = bytes_of(&response(&res, PAGED)[1]);
    assert!(!cookie.is_empty());
    // The cookie continues only its own search...
    let (_, res) = search_with(
        &mut a,
        SUFFIX,
        "(sn=*)",
        vec![paged(10, &cookie, true)],
        vec!["1.1"],
    );
    assert_eq!(res.rc, 53);
    // ...and not on another connection.
    let mut other = server.admin();
    let (_, res) = search_with(
        &mut other,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(10, &cookie, true)],
        vec!["1.1"],
    );
    assert_eq!(res.rc, 53);
    // A size of zero releases it.
    let (_, res) = search_with(
        &mut a,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(10, &[], true)],
        vec!["1.1"],
    );
    let cookie = bytes_of(&response(&res, PAGED)[1]);
    let (e, res) = search_with(
        &mut a,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(0, &cookie, true)],
        vec!["1.1"],
    );
    assert!(e.is_empty());
    assert_eq!(res.rc, 0);
    assert!(bytes_of(&response(&res, PAGED)[1]).is_empty());
    let (_, res) = search_with(
        &mut a,
        SUFFIX,
        "(objectClass=*)",
        vec![paged(10, &cookie, true)],
        vec!["1.1"],
    );
    assert_eq!(res.rc, 53);
}

#[test]
fn paged_searches_still_respect_the_server_cap_for_readers() {
    let server = TestServer::demo_with(|s| {
        s.limits.roles.reader.size_limit = 45;
        s.limits.roles.user.size_limit = 45;
    });
    let mut r = server.reader();
    let (dns, _, res) = dump(&mut r, "(objectClass=*)", 20);
    assert_eq!(res.rc, 4);
    assert_eq!(dns.len(), 45);
}

fn cns(entries: &[SearchEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            e.attrs
                .get("cn")
                .and_then(|v| v.first().cloned())
                .unwrap_or_default()
        })
        .collect()
}

fn primary(s: &str) -> String {
    onepages::directory::matching::fold(s)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

#[test]
fn server_side_sort_in_french_order() {
    let server = TestServer::demo();
    let mut r = server.reader();
    let (entries, res) = search_with(
        &mut r,
        PEOPLE,
        "(sn=*)",
        vec![sort("cn", false, true)],
        vec!["cn"],
    );
    assert_eq!(res.rc, 0);
    assert_eq!(int_of(&response(&res, SORT_RESP)[0]), 0);
    let names = cns(&entries);
    assert_eq!(
        names.len(),
        crate::support::dns(&mut r, PEOPLE, "(sn=*)").len()
    );
    for w in names.windows(2) {
        assert!(primary(&w[0]) <= primary(&w[1]), "{} before {}", w[0], w[1]);
    }
    // Accented names sit beside their base letter: "Élodie" among the E's, not after Z.
    let e_pos = names
        .iter()
        .position(|n| n.starts_with('É'))
        .expect("an É name");
    assert!(
        primary(&names[e_pos - 1]).starts_with('e') || primary(&names[e_pos - 1]).starts_with('d')
    );
    let (rev, _) = search_with(
        &mut r,
        PEOPLE,
        "(sn=*)",
        vec![sort("cn", true, true)],
        vec!["cn"],
    );
    let mut reversed = cns(&rev);
    reversed.reverse();
    assert_eq!(reversed.len(), names.len());
    assert_eq!(primary(&reversed[0]), primary(&names[0]));
}

#[test]
fn sort_on_unknown_attribute_critical_and_not() {
    let server = TestServer::demo();
    let mut r = server.reader();
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(sn=rahim)",
        vec![sort("noSuchAttr", false, true)],
        vec!["cn"],
    );
    assert!(e.is_empty());
    assert_eq!(res.rc, 12);
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(sn=rahim)",
        vec![sort("noSuchAttr", false, false)],
        vec!["cn"],
    );
    assert_eq!(res.rc, 0);
    assert!(!e.is_empty());
    assert_eq!(int_of(&response(&res, SORT_RESP)[0]), 16);
}

#[test]
fn virtual_list_view_by_offset_and_by_value() {
    let server = TestServer::demo();
    let mut r = server.reader();
    let (all, _) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true)],
        vec!["cn"],
    );
    let all = cns(&all);
    let n = all.len() as i64;
    // A window of 2 before and 17 after the 100th entry.
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(2, 17, 100, 0)],
        vec!["cn"],
    );
    assert_eq!(res.rc, 0);
    assert_eq!(cns(&e), all[97..117].to_vec());
    let v = response(&res, VLV_RESP);
    assert_eq!(int_of(&v[0]), 100);
    assert_eq!(int_of(&v[1]), n);
    assert_eq!(int_of(&v[2]), 0);
    // The client's content count scales the offset: the middle of its list is the middle of ours.
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(0, 0, 50, 100)],
        vec!["cn"],
    );
    let target = int_of(&response(&res, VLV_RESP)[0]);
    assert!((target - n / 2).abs() <= 1, "{target} vs {n}");
    assert_eq!(e.len(), 1);
    // The last page, then past the end.
    let (e, _) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(1, 5, n, 0)],
        vec!["cn"],
    );
    assert_eq!(cns(&e), all[(n as usize - 2)..].to_vec());
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(0, 5, n + 5, 0)],
        vec!["cn"],
    );
    assert!(e.is_empty());
    assert_eq!(res.rc, 76);
    assert_eq!(int_of(&response(&res, VLV_RESP)[2]), 61);
    // greaterThanOrEqual: typing "dew" jumps to the first name at or after it.
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_ge(0, 3, "dew")],
        vec!["cn"],
    );
    assert_eq!(res.rc, 0);
    assert!(primary(&cns(&e)[0]).starts_with("dew"), "{:?}", cns(&e));
    let pos = int_of(&response(&res, VLV_RESP)[0]) as usize;
    assert_eq!(all[pos - 1], cns(&e)[0]);
    // Accents in the typed value do not matter.
    let (e2, _) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_ge(0, 0, "hélè")],
        vec!["cn"],
    );
    assert!(primary(&cns(&e2)[0]).starts_with("hele"), "{:?}", cns(&e2));
}

#[test]
fn virtual_list_view_without_sort_is_an_error() {
    let server = TestServer::demo();
    let mut r = server.reader();
    let (e, res) = search_with(
        &mut r,
        PEOPLE,
        "(objectClass=*)",
        vec![vlv_offset(0, 9, 1, 0)],
        vec!["cn"],
    );
    assert!(e.is_empty());
    assert_eq!(res.rc, 76);
    assert_eq!(int_of(&response(&res, VLV_RESP)[2]), 60);
}

#[test]
fn browsing_sees_writes_at_once() {
    let server = TestServer::demo();
    let mut a = server.admin();
    let before = search_with(
        &mut a,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(0, 0, 1, 0)],
        vec!["cn"],
    )
    .1;
    let n = int_of(&response(&before, VLV_RESP)[1]);
    let attrs: Vec<(String, HashSet<String>)> = vec![
        (
            "objectClass".into(),
            HashSet::from(["inetOrgPerson".to_string()]),
        ),
        ("cn".into(), HashSet::from(["Aaron Aardvark".to_string()])),
        ("sn".into(), HashSet::from(["Aardvark".to_string()])),
    ];
    assert_eq!(
        a.add(&format!("uid=aaron@oneid.on.ca,{PEOPLE}"), attrs)
            .unwrap()
            .rc,
        0
    );
    let (e, res) = search_with(
        &mut a,
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        vec![sort("cn", false, true), vlv_offset(0, 0, 1, 0)],
        vec!["cn"],
    );
    assert_eq!(int_of(&response(&res, VLV_RESP)[1]), n + 1);
    assert_eq!(cns(&e), vec!["Aaron Aardvark".to_string()]);
}

/// Limits per role, the same by every path: a reader capped at 45 gets at most 45 entries
/// from a plain search, from all pages of a paged search and from a VLV window; an
/// administrator is not capped; an identity named in `identity_limits` gets its own limit.
#[test]
fn role_limits_hold_for_plain_paged_and_vlv_reads_and_an_identity_can_have_more() {
    let server = TestServer::demo_with(|s| {
        s.limits.roles.reader.size_limit = 45;
        s.limits.roles.admin.size_limit = 0;
        s.identity_limits = vec![(
            "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca".into(),
            onepages::config::LimitOverride {
                size_limit: Some(0),
                ..Default::default()
            },
        )];
        s.limits.roles.user.size_limit = 10;
    });
    let mut r = server.reader();
    let mut a = server.admin();
    let total = dump(&mut a, "(objectClass=*)", 100).0.len();
    assert!(total > 300);

    let (plain, res) = search_with(&mut r, SUFFIX, "(objectClass=*)", vec![], vec!["1.1"]);
    assert_eq!((plain.len(), res.rc), (45, 4));
    let (paged_dns, _, res) = dump(&mut r, "(objectClass=*)", 20);
    assert_eq!((paged_dns.len(), res.rc), (45, 4));
    // A VLV window wider than the cap returns the cap.
    let (window, res) = search_with(
        &mut r,
        PEOPLE,
        "(sn=*)",
        vec![sort("cn", false, true), vlv_offset(0, 99, 1, 0)],
        vec!["cn"],
    );
    assert_eq!(res.rc, 0, "{res:?}");
    assert_eq!(window.len(), 45);
    // The administrator's window is what it asked for.
    let (window, _) = search_with(
        &mut a,
        PEOPLE,
        "(sn=*)",
        vec![sort("cn", false, true), vlv_offset(0, 99, 1, 0)],
        vec!["cn"],
    );
    assert_eq!(window.len(), 100);

    // A person (role user, capped at 10) named in identity_limits has no cap.
    let mut dewey = LdapConn::new(&server.url).unwrap();
    dewey
        .simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    let (all, res) = search_with(&mut dewey, SUFFIX, "(objectClass=*)", vec![], vec!["1.1"]);
    // Everything but the disabled accounts, which only administrators see.
    let disabled = dump(&mut a, "(onePagesStatus=disabled)", 100).0.len();
    assert!(disabled > 0);
    assert_eq!((all.len(), res.rc), (total - disabled, 0));
    let mut helene = LdapConn::new(&server.url).unwrap();
    helene
        .simple_bind("helene.cote-tremblay@oneid.on.ca", "helene-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    let (some, res) = search_with(&mut helene, SUFFIX, "(objectClass=*)", vec![], vec!["1.1"]);
    assert_eq!((some.len(), res.rc), (10, 4));
}

/// The read budget (entries per minute per identity, over all its searches and
/// connections): browsing within it is untouched, a harvest stops with adminLimitExceeded
/// (11) saying when more may come, and the budget refills with time (an injected clock).
#[test]
fn a_read_budget_stops_harvesting_and_refills() {
    let clock = onepages::clock::Clock::system();
    let server = TestServer::demo_with(|s| {
        s.limits.roles.reader.read_budget_per_minute = 60;
        s.clock = clock.clone();
    });
    let mut r = server.reader();
    // Type-ahead: a few entries at a time, well inside the budget.
    for typed in ["dew", "hél", "mar"] {
        let (_, res) = search_with(
            &mut r,
            PEOPLE,
            &format!("(cn={typed}*)"),
            vec![],
            vec!["cn"],
        );
        assert_eq!(res.rc, 0, "{typed}: {res:?}");
    }
    // A harvest, page by page and over a second connection: the budget is the identity's.
    let (got, _, res) = dump(&mut r, "(objectClass=*)", 25);
    assert_eq!(res.rc, 11, "{res:?}");
    assert!(
        res.text.contains("read budget of 60 entries per minute"),
        "{}",
        res.text
    );
    assert!(got.len() < 60, "{}", got.len());
    let mut r2 = server.reader();
    let (_, res) = search_with(&mut r2, PEOPLE, "(sn=*)", vec![], vec!["1.1"]);
    assert_eq!(res.rc, 11);
    // A minute later the budget is whole again.
    clock.advance(std::time::Duration::from_secs(60));
    let (got, res) = search_with(&mut r2, PEOPLE, "(cn=dew*)", vec![], vec!["cn"]);
    assert_eq!(res.rc, 0, "{res:?}");
    assert!(!got.is_empty());
    // Another identity (the administrator, no budget by default) is not affected.
    let mut a = server.admin();
    assert_eq!(dump(&mut a, "(objectClass=*)", 100).2.rc, 0);
}

/// A sorted list kept across writes is brought forward by moving the changed entries: after
/// adds, a rename, a delete and a disable (hidden from readers), after a dozen adds at once
/// and after more changes than are moved one by one, it is the list a fresh sort gives (a
/// filter that means the same but reads differently is never cached, so it is sorted anew).
#[test]
fn a_sorted_list_brought_forward_equals_a_fresh_sort() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let mut reader = server.reader();
    let sorted = |c: &mut LdapConn, filter: &str| -> Vec<String> {
        let (e, res) = search_with(c, PEOPLE, filter, vec![sort("cn", false, true)], vec!["cn"]);
        assert_eq!(res.rc, 0, "{res:?}");
        e.into_iter().map(|e| e.dn).collect()
    };
    const KEPT: &str = "(objectClass=inetOrgPerson)";
    let same = |kept: &[String], fresh: &[String]| {
        let at = kept.iter().zip(fresh).position(|(a, b)| a != b);
        assert!(
            at.is_none() && kept.len() == fresh.len(),
            "the kept list ({}) differs from a fresh sort ({}) at {at:?}",
            kept.len(),
            fresh.len()
        );
    };
    let first = sorted(&mut reader, KEPT);
    assert!(first.len() > 250);
    let add = |c: &mut LdapConn, uid: &str, cn: &str| {
        let attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("cn", HashSet::from([cn])),
            ("sn", HashSet::from(["Probe"])),
        ];
        let rc = c
            .add(&format!("uid={uid}@oneid.on.ca,{PEOPLE}"), attrs)
            .unwrap()
            .rc;
        assert_eq!(rc, 0, "add {uid}");
    };
    add(&mut admin, "middle.probe", "Mmm Middle");
    let renamed = first[10].clone();
    let rc = admin
        .modify(
            &renamed,
            vec![ldap3::Mod::Replace("cn", HashSet::from(["Zzz Renamed"]))],
        )
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    assert_eq!(admin.delete(&first[20]).unwrap().rc, 0);
    let disabled = first[30].clone();
    let rc = admin
        .modify(
            &disabled,
            vec![ldap3::Mod::Replace(
                "onePagesStatus",
                HashSet::from(["disabled"]),
            )],
        )
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    let moved = sorted(&mut reader, KEPT);
    same(
        &moved,
        &sorted(&mut reader, "(&(objectClass=inetOrgPerson))"),
    );
    assert_eq!(
        moved.len(),
        first.len() - 1,
        "one added, one deleted, one disabled"
    );
    assert!(!moved.contains(&first[20]) && !moved.contains(&disabled));
    assert_eq!(moved.last(), Some(&renamed), "Zzz sorts last");
    assert!(moved.iter().any(|d| d.starts_with("uid=middle.probe")));

    // A dozen at once (merged in), then more than are moved one by one (sorted anew).
    for n in 0..12 {
        add(
            &mut admin,
            &format!("dozen.{n}"),
            &format!("Dozen {}", 11 - n),
        );
    }
    let moved = sorted(&mut reader, KEPT);
    same(
        &moved,
        &sorted(&mut reader, "(&(objectClass=inetOrgPerson)(cn=*))"),
    );
    assert_eq!(moved.len(), first.len() + 11);
    for n in 0..70 {
        add(&mut admin, &format!("many.{n}"), &format!("Many {n:02}"));
    }
    let moved = sorted(&mut reader, KEPT);
    same(
        &moved,
        &sorted(&mut reader, "(&(cn=*)(objectClass=inetOrgPerson))"),
    );
    assert_eq!(moved.len(), first.len() + 81);
}
