//! Properties of search that must hold for any data and any filter: the index only narrows,
//! so indexed search returns exactly what a full scan returns — also while the index lags.

use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;

use ldap3_proto::proto::{LdapFilter, LdapSearchScope, LdapSubstringFilter};
use onepages::directory::dn::Dn;
use onepages::directory::filter::{compile_for, FilterLimits};
use onepages::directory::secret::Sight;
use onepages::dsa::{Change, Dsa, Edit, EditKind, GrantCache, Identity};
use onepages::ops::context::RequestContext;
use onepages::ops::search::{simple_search as search, SearchEnd, SearchRequest};
use proptest::prelude::*;

use crate::support::*;

/// A data directory read in-process: anonymous reading on and no size cap, so searches here
/// see what an administrator would.
fn open_settings(dir: &std::path::Path) -> onepages::config::Settings {
    let mut s = settings(dir);
    s.anonymous_read = true;
    s.limits.roles.reader.size_limit = 0;
    s.limits.roles.user.size_limit = 0;
    s
}

fn load(dsa: &Dsa, ldif: &[u8]) -> onepages::import::ImportReport {
    let grant = dsa.operator_grant().unwrap();
    onepages::import::import_ldif_text(
        &dsa.writer(&grant),
        "gen.ldif",
        std::str::from_utf8(ldif).unwrap(),
    )
    .unwrap()
}

fn open_generated(n: usize, seed: u64) -> (tempfile::TempDir, Dsa) {
    let dir = tempfile::tempdir().unwrap();
    let (dsa, _) = Dsa::open(open_settings(dir.path()), "test", &|_| {}).unwrap();
    let mut ldif = Vec::new();
    let people = onepages::gen::people(n, seed);
    onepages::gen::write_ldif(&mut ldif, &people, SUFFIX).unwrap();
    let report = load(&dsa, &ldif);
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    (dir, dsa)
}

fn request(filter: LdapFilter) -> SearchRequest {
    SearchRequest::plain(SUFFIX, LdapSearchScope::Subtree, filter, &["1.1"])
}

fn via_search(dsa: &Dsa, filter: &LdapFilter) -> Vec<String> {
    let mut out = Vec::new();
    let who = Identity::Anonymous;
    let ctx = RequestContext::local(&who, dsa.grant(&who, &mut GrantCache::default()));
    let end = search(
        dsa,
        &ctx,
        &request(filter.clone()),
        &AtomicBool::new(false),
        &mut |e| {
            out.push(e.dn.to_string());
            ControlFlow::Continue(())
        },
    );
    match end {
        SearchEnd::Done(r, _) => assert_eq!(r.code, ldap3_proto::proto::LdapResultCode::Success),
        SearchEnd::Silent => panic!("search went silent"),
    }
    out.sort();
    out
}

/// What an anonymous reader may see, by a full scan: every entry but the disabled accounts,
/// through a filter that cannot read the attributes private to administrators.
fn via_scan(dsa: &Dsa, filter: &LdapFilter) -> Vec<String> {
    let compiled =
        compile_for(filter, dsa.schema(), FilterLimits::default(), Sight::Public).unwrap();
    let active = |e: &onepages::directory::entry::Entry| {
        e.values("onePagesStatus")
            .iter()
            .all(|v| v.trim_ascii().eq_ignore_ascii_case(b"active"))
    };
    let mut out: Vec<String> = dsa
        .reader()
        .all_entries()
        .map(|r| r.unwrap().1)
        .filter(|e| active(e) && compiled.matches(e, dsa.schema()))
        .map(|e| e.dn)
        .collect();
    out.sort();
    out
}

const ATTRS: &[&str] = &[
    "cn",
    "sn",
    "givenName",
    "mail",
    "uid",
    "o",
    "ou",
    "department",
    "title",
    "telephoneNumber",
    "l",
    "displayName",
    "onePagesStatus",
    "objectClass",
    "name",
    "IMHandle",
    "description",
    "SN",
    "surName",
    "anr",
];

/// Values drawn from pieces of what the generator writes, plus accents and oddities.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "a",
            "e",
            "é",
            "tr",
            "côt",
            "cote",
            "rahim",
            "o'n",
            "d'a",
            "-",
            "ga",
            "gagné",
            "marie",
            "hôpital",
            "lab",
            "555",
            "+1 613",
            "one-mail",
            "@",
            "nurse",
            "urgence",
            "x",
            "zz",
            "jean-françois",
            "disabled",
            "active",
            "inetorgperson",
            "person",
            "  ",
            "\\",
            "ü",
            "o ",
            "e ",
            "n d",
            " ga",
            "ie ",
            "ó",
            "o s",
            "ó s",
            "Ó Súil",
            "côté",
            "ß",
        ])
        .prop_map(str::to_string),
        "[a-zé' -]{1,5}",
    ]
}

fn leaf() -> impl Strategy<Value = LdapFilter> {
    let attr = prop::sample::select(ATTRS.to_vec()).prop_map(str::to_string);
    prop_oneof![
        (attr.clone(), value()).prop_map(|(a, v)| LdapFilter::Equality(a, v)),
        (
            attr.clone(),
            prop::option::of(value()),
            prop::collection::vec(value(), 0..3),
            prop::option::of(value())
        )
            .prop_map(|(a, i, any, f)| LdapFilter::Substring(
                a,
                LdapSubstringFilter {
                    initial: i,
                    any,
                    final_: f
                }
            )),
        attr.clone().prop_map(LdapFilter::Present),
        (attr.clone(), value()).prop_map(|(a, v)| LdapFilter::GreaterOrEqual(a, v)),
        (attr.clone(), value()).prop_map(|(a, v)| LdapFilter::Approx(a, v)),
    ]
}

fn filter() -> impl Strategy<Value = LdapFilter> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::And),
            prop::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::Or),
            inner.prop_map(|f| LdapFilter::Not(Box::new(f))),
        ]
    })
}

#[test]
fn indexed_search_equals_full_scan() {
    let (_dir, dsa) = open_generated(400, 11);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    runner
        .run(&filter(), |f| {
            prop_assert_eq!(via_search(&dsa, &f), via_scan(&dsa, &f), "filter {:?}", f);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_lagging_index_never_hides_or_shows_a_wrong_entry() {
    let (_dir, dsa) = open_generated(200, 5);
    // Change entries and search before the indexer has caught up, many times over.
    let people: Vec<_> = dsa
        .reader()
        .all_entries()
        .map(|r| r.unwrap())
        .filter(|(_, e)| e.get("uid").is_some())
        .take(60)
        .collect();
    let grant = dsa.operator_grant().unwrap();
    let writer = dsa.writer(&grant);
    for (i, (_, old)) in people.into_iter().enumerate() {
        let sn = format!("Lagtest{i}");
        let dn = Dn::parse(&old.dn).unwrap();
        let change = if i % 3 == 0 {
            Change::Delete { dn }
        } else {
            Change::Modify {
                dn,
                edits: vec![Edit {
                    kind: EditKind::Replace,
                    attr: "sn".into(),
                    values: vec![sn.clone().into_bytes()],
                }],
            }
        };
        assert_eq!(writer.write_one(change).unwrap(), Ok(()));
        for f in [
            LdapFilter::Equality("sn".into(), sn.clone()),
            LdapFilter::Substring(
                "sn".into(),
                LdapSubstringFilter {
                    initial: Some("lagtest".into()),
                    any: vec![],
                    final_: None,
                },
            ),
            LdapFilter::Equality("uid".into(), old.first_str("uid").unwrap().to_string()),
            LdapFilter::Equality("sn".into(), old.first_str("sn").unwrap().to_string()),
        ] {
            assert_eq!(via_search(&dsa, &f), via_scan(&dsa, &f), "{f:?}");
        }
    }
    dsa.sync_index().unwrap();
    assert_eq!(dsa.index_lag(), 0);
}

#[test]
fn abandon_stops_streaming() {
    let (_dir, dsa) = open_generated(300, 3);
    let flag = AtomicBool::new(false);
    let mut seen = 0;
    let who = Identity::Anonymous;
    let ctx = RequestContext::local(&who, dsa.grant(&who, &mut GrantCache::default()));
    let end = search(
        &dsa,
        &ctx,
        &request(LdapFilter::Present("objectClass".into())),
        &flag,
        &mut |_| {
            seen += 1;
            if seen == 5 {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            ControlFlow::Continue(())
        },
    );
    assert_eq!(end, SearchEnd::Silent);
    assert_eq!(seen, 5);
}

#[test]
fn reindex_rebuilds_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_settings(dir.path());
    let filters = [
        "(sn=ga*)",
        "(mail=*lab*)",
        "(|(cn=*é*)(uid=jean*))",
        "(o=hôpital montclair)",
    ];
    let before: Vec<Vec<String>> = {
        let (dsa, _) = Dsa::open(s.clone(), "test", &|_| {}).unwrap();
        let mut ldif = Vec::new();
        onepages::gen::write_ldif(&mut ldif, &onepages::gen::people(300, 9), SUFFIX).unwrap();
        load(&dsa, &ldif);
        let out = filters
            .iter()
            .map(|f| {
                via_search(
                    &dsa,
                    &onepages::directory::filter_text::parse_filter(f).unwrap(),
                )
            })
            .collect();
        dsa.shutdown().unwrap();
        out
    };
    // Throw the index away: the next open rebuilds it from the store.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let (dsa, catch_up) = Dsa::open(s, "test", &|_| {}).unwrap();
    assert!(catch_up.rebuilt);
    assert_eq!(catch_up.entries, 317);
    let after: Vec<Vec<String>> = filters
        .iter()
        .map(|f| {
            via_search(
                &dsa,
                &onepages::directory::filter_text::parse_filter(f).unwrap(),
            )
        })
        .collect();
    assert_eq!(before, after);
    assert!(before.iter().all(|r| !r.is_empty()), "{before:?}");
}
