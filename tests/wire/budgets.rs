//! Per-search budgets: every search is charged for the entries it examines and for its
//! filter's evaluation cost, and stops with adminLimitExceeded (11) when its budget is spent;
//! the client templates of real address books stay far inside the default budget.

use ldap3::Scope;
use onepages::config::DEFAULT_SEARCH_WORK_LIMIT;
use onepages::directory::filter::{compile, FilterLimits};
use onepages::directory::filter_text::parse_filter;
use onepages::directory::schema::Schema;

use crate::support::*;

/// What one entry costs to examine under a filter (one, plus the filter's cost).
fn per_entry(filter: &str) -> u64 {
    let schema = Schema::builtin().unwrap();
    let parsed = parse_filter(filter).unwrap();
    1 + compile(&parsed, &schema, FilterLimits::default())
        .unwrap()
        .cost()
}

/// A thousand approximate branches, as the attack sent.
fn thousand_approx() -> String {
    let branches: String = (0..1000).map(|i| format!("(cn~=name{i})")).collect();
    format!("(|{branches})")
}

/// The templates of CLIENTS.md (and their variations) could scan a directory of a million
/// entries without reaching the default budget; the attack could not scan ten thousand.
#[test]
fn client_templates_fit_the_default_budget_and_the_attack_does_not() {
    let templates = [
        // Outlook: Check Names, the search box, browsing, details.
        "(&(mail=*)(|(mail=dew*)(|(cn=dew*)(|(sn=dew*)(givenName=dew*)))))",
        "(&(|(mail=n*)(cn=n*)(sn=n*)(givenName=n*)(displayName=n*)))",
        "(anr=dewey rahim)",
        "(objectClass=*)",
        // Apple Contacts and iOS.
        "(|(givenname=carmo)(sn=carmo)(cn=carmo)(mail=carmo))",
        "(|(o=foo*)(cn=foo*)(ou=foo*)(sn=foo*)(mail=foo*)(IMHandle=foo*)(givenname=foo*)(postalAddress=foo*)(telephoneNumber=foo*))",
        // Thunderbird, one word and two.
        "(|(cn=*jo**)(mail=*jo*)(givenName=*jo*)(sn=*jo*))",
        "(|(cn=*john*smith*)(mail=*john smith*)(givenName=*john*)(sn=*john smith*))",
        // Admin tools.
        "(&(objectClass=inetOrgPerson)(onePagesStatus=disabled))",
        "(&(oneMailSecure=TRUE)(cn=dew*))",
    ];
    for t in templates {
        let cost = per_entry(t) * 1_000_000;
        assert!(
            cost <= DEFAULT_SEARCH_WORK_LIMIT / 2,
            "{t}: {cost} units for a million entries"
        );
    }
    assert!(per_entry(&thousand_approx()) * 10_000 > DEFAULT_SEARCH_WORK_LIMIT);
}

/// Over the wire: the expensive filter is stopped with adminLimitExceeded and a message
/// that says why; a type-ahead search on the same server is answered; the same filter from
/// an identity whose budget is larger runs to its end.
#[test]
fn an_expensive_search_is_stopped_and_others_are_answered() {
    let server = TestServer::demo_with(|s| {
        // The demo has 320 entries: a budget that scales the default to its size.
        s.limits.roles.reader.work_limit = 2_000_000;
        s.identity_limits = vec![(
            ADMIN_DN.into(),
            onepages::config::LimitOverride {
                search_work_limit: Some(0),
                ..Default::default()
            },
        )];
    });
    let attack = thousand_approx();
    let mut r = server.reader();
    let ldap3::SearchResult(entries, res) = r
        .search(SUFFIX, Scope::Subtree, &attack, vec!["cn"])
        .unwrap();
    assert_eq!(res.rc, 11, "{res:?}");
    assert!(
        res.text.contains("budget of 2000000 work units"),
        "{}",
        res.text
    );
    assert!(entries.is_empty());
    let mut other = server.reader();
    let ldap3::SearchResult(found, res) = other
        .search(SUFFIX, Scope::Subtree, "(cn=dewey*)", vec!["cn"])
        .unwrap();
    assert_eq!(res.rc, 0);
    assert!(!found.is_empty());
    // The administrator has no work limit here: the same search finishes (no match).
    let mut a = server.admin();
    let ldap3::SearchResult(_, res) = a
        .search(SUFFIX, Scope::Subtree, &attack, vec!["cn"])
        .unwrap();
    assert_eq!(res.rc, 0, "{res:?}");
}
