//! Secure recipients: the domain registry, the computed oneMailSecure attribute, the visible
//! marker for Outlook, the recipient check, and ambiguous name resolution.

use std::collections::HashSet;
use std::process::Command;

use ldap3::Scope;

use crate::support::*;

const EXTERNAL: &str = "siobhan.lariviere@webmail.example";
const UNREGISTERED: &str = "etienne.leclerc@riversidefht.ca";

fn secure_of(c: &mut ldap3::LdapConn, mail: &str) -> String {
    let e = one(c, SUFFIX, &format!("(mail={mail})"), vec!["oneMailSecure"]);
    e.attrs["oneMailSecure"][0].clone()
}

#[test]
fn one_mail_secure_is_computed_and_filterable() {
    let server = TestServer::demo();
    let mut c = server.reader();
    assert_eq!(secure_of(&mut c, "dewey.rahim@one-mail.on.ca"), "TRUE");
    assert_eq!(secure_of(&mut c, EXTERNAL), "FALSE");
    assert_eq!(secure_of(&mut c, UNREGISTERED), "FALSE");
    // An organisation's own registered domain is secure.
    let lab = dns(
        &mut c,
        PEOPLE,
        "(&(mail=*@pdlabs.ca)(onePagesStatus=active))",
    );
    assert!(!lab.is_empty());
    assert!(dns(
        &mut c,
        PEOPLE,
        "(&(mail=*@pdlabs.ca)(onePagesStatus=active)(oneMailSecure=FALSE))"
    )
    .is_empty());
    // Filterable like any attribute, also combined with the index.
    assert_eq!(
        dns(&mut c, SUFFIX, "(&(oneMailSecure=TRUE)(cn=dew*))").len(),
        dns(&mut c, SUFFIX, "(&(cn=dew*)(!(mail=*@riversidefht.ca))(!(onePagesAccountType=external))(!(onePagesStatus=disabled)))").len()
    );
    assert!(dns(
        &mut c,
        SUFFIX,
        "(&(oneMailSecure=TRUE)(onePagesAccountType=external))"
    )
    .is_empty());
    assert!(dns(
        &mut c,
        SUFFIX,
        "(&(oneMailSecure=TRUE)(onePagesStatus=disabled))"
    )
    .is_empty());
    // Returned with the user attributes; never stored, so it cannot be set.
    let e = one(&mut c, SUFFIX, "(mail=dewey.rahim@one-mail.on.ca)", vec![]);
    assert_eq!(e.attrs["oneMailSecure"], vec!["TRUE".to_string()]);
    let mut a = server.admin();
    let r = a
        .modify(
            &format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"),
            vec![ldap3::Mod::Replace(
                "oneMailSecure",
                HashSet::from(["FALSE"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 19);
    assert_eq!(
        c.compare(
            &format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}"),
            "oneMailSecure",
            "TRUE"
        )
        .unwrap()
        .0
        .rc,
        6
    );
}

#[test]
fn registering_a_domain_takes_effect_without_restart() {
    let server = TestServer::demo();
    let mut a = server.admin();
    assert_eq!(secure_of(&mut a, UNREGISTERED), "FALSE");
    let dn = format!("associatedDomain=riversidefht.ca,ou=domains,{SUFFIX}");
    let attrs = vec![
        ("objectClass", HashSet::from(["onePagesMailDomain"])),
        ("associatedDomain", HashSet::from(["riversidefht.ca"])),
    ];
    assert_eq!(a.add(&dn, attrs).unwrap().rc, 0);
    assert_eq!(secure_of(&mut a, UNREGISTERED), "TRUE");
    assert_eq!(a.delete(&dn).unwrap().rc, 0);
    assert_eq!(secure_of(&mut a, UNREGISTERED), "FALSE");
    // Disabling an account makes it not secure at once.
    let dewey = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    a.modify(
        &dewey,
        vec![ldap3::Mod::Replace(
            "onePagesStatus",
            HashSet::from(["disabled"]),
        )],
    )
    .unwrap()
    .success()
    .unwrap();
    assert_eq!(secure_of(&mut a, "dewey.rahim@one-mail.on.ca"), "FALSE");
}

#[test]
fn configured_domains_count_too() {
    let server = TestServer::demo_with(|s| s.secure_domains.push("riversidefht.ca".into()));
    let mut c = server.reader();
    assert_eq!(secure_of(&mut c, UNREGISTERED), "TRUE");
}

#[test]
fn outlook_sees_the_marker_on_entries_that_are_not_secure() {
    let marker = " [NOT SECURE / NON SÉCURISÉ]";
    let server = TestServer::demo_with(|s| s.insecure_marker = Some(marker.into()));
    let mut c = server.reader();
    // Outlook's Check Names template, typed "siobhan": the external contact is marked, the
    // users on the service are not.
    let filter =
        "(&(mail=*)(|(mail=siobhan*)(|(cn=siobhan*)(|(sn=siobhan*)(givenName=siobhan*)))))";
    let (entries, _) = c
        .search(
            SUFFIX,
            Scope::Subtree,
            filter,
            vec!["cn", "displayName", "mail"],
        )
        .unwrap()
        .success()
        .unwrap();
    let mut marked = 0;
    for e in entries {
        let e = ldap3::SearchEntry::construct(e);
        let mail = e.attrs["mail"][0].clone();
        let shown = e.attrs["displayName"][0].clone();
        let cn = e.attrs["cn"][0].clone();
        let secure = secure_of(&mut c, &mail) == "TRUE";
        assert_eq!(shown.ends_with(marker), !secure, "{mail}: {shown}");
        assert_eq!(cn.ends_with(marker), !secure, "{mail}: {cn}");
        if !secure {
            marked += 1;
        }
    }
    assert!(marked > 0, "the demo has non-secure Siobhans");
    // The marker is for display only: filters match the stored names.
    assert_eq!(dns(&mut c, SUFFIX, "(cn=Siobhan Larivière)").len(), 2);
}

#[test]
fn ambiguous_name_resolution_over_the_wire() {
    let server = TestServer::demo();
    let mut c = server.reader();
    let helene = format!("uid=helene.cote-tremblay@oneid.on.ca,{PEOPLE}");
    let dewey = format!("uid=dewey.rahim@oneid.on.ca,{PEOPLE}");
    for q in [
        "helene cote",
        "Hélène Côté",
        "cote helene",
        "HELENE",
        "tremblay hélène",
        "helene.cote-tremblay",
    ] {
        assert!(
            dns(&mut c, SUFFIX, &format!("(anr={q})")).contains(&helene),
            "{q}"
        );
    }
    for q in [
        "dewey rahim",
        "rahim dewey",
        "dewey.rahim@oneid.on.ca",
        "=Dewey Rahim",
    ] {
        assert!(
            dns(&mut c, SUFFIX, &format!("(anr={q})")).contains(&dewey),
            "{q}"
        );
    }
    assert!(!dns(&mut c, SUFFIX, "(anr=helene rahim)").contains(&dewey));
    assert!(dns(&mut c, SUFFIX, "(anr=zzzz)").is_empty());
    // Approximate match forgives accents and a typo.
    assert!(dns(&mut c, SUFFIX, "(cn~=helene cote-tremblai)").contains(&helene));
}

#[test]
fn recipient_check_online_and_offline() {
    let mut server = TestServer::demo();
    let bin = env!("CARGO_BIN_EXE_onepages");
    let run = |args: &[&str]| {
        let out = Command::new(bin).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let addresses = [
        "dewey.rahim@one-mail.on.ca",
        EXTERNAL,
        UNREGISTERED,
        "nobody@example.org",
    ];
    let online: Vec<&str> = [
        "check",
        "--server",
        &server.url,
        "--bind-dn",
        READER_DN,
        "--password",
        READER_PW,
    ]
    .into_iter()
    .chain(addresses)
    .collect();
    let (code, text) = run(&online);
    assert_eq!(code, Some(3), "{text}");
    // The verdict lines (the indented ones under them are about certificates).
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(lines[0], "dewey.rahim@one-mail.on.ca: secure");
    assert!(lines[1].contains("external contact, NOT secure"), "{text}");
    assert!(
        lines[2].contains("not registered as secure, NOT secure"),
        "{text}"
    );
    assert!(
        lines[3].contains("not in the directory, NOT secure"),
        "{text}"
    );
    let (code, _) = run(&[
        "check",
        "--server",
        &server.url,
        "--bind-dn",
        READER_DN,
        "--password",
        READER_PW,
        "dewey.rahim@one-mail.on.ca",
    ]);
    assert_eq!(code, Some(0));
    // Offline, on the data directory once the server has stopped: the same answers.
    server.shutdown();
    let dir = server.dir.as_ref().unwrap().path().display().to_string();
    let offline: Vec<&str> = ["check", "--data-dir", &dir]
        .into_iter()
        .chain(addresses)
        .collect();
    let (code, text2) = run(&offline);
    assert_eq!(code, Some(3));
    assert_eq!(text, text2);
    // Register the domain offline, and the answer changes.
    let (code, _) = run(&[
        "domains",
        "--data-dir",
        &dir,
        "add",
        "riversidefht.ca",
        "--org",
        "Riverside Family Health Team",
    ]);
    assert_eq!(code, Some(0));
    let (_, list) = run(&["domains", "--data-dir", &dir, "list"]);
    assert!(
        list.lines().any(|l| l == "riversidefht.ca\t(registered)"),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l == "one-mail.on.ca\t(configuration)"),
        "{list}"
    );
    let (code, text) = run(&["check", "--data-dir", &dir, UNREGISTERED]);
    assert_eq!(code, Some(0), "{text}");
}

/// A public webmail domain is not registered as secure unless forced with a reason, by LDAP
/// or by `onepages domains`; the reason stays on the entry and goes to the audit trail;
/// configured domains are listed, marked, and removing one says to edit the configuration.
#[test]
fn webmail_domains_need_force_and_a_reason() {
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("audit.log");
    let server = TestServer::demo_with(|s| {
        s.audit_log = Some(onepages::config::LogTarget::File(audit_file.clone()));
    });
    let mut a = server.admin();
    let dn = format!("associatedDomain=gmail.com,ou=domains,{SUFFIX}");
    let attrs = |reason: Option<&'static str>| {
        let mut v = vec![
            ("objectClass", HashSet::from(["onePagesMailDomain"])),
            ("associatedDomain", HashSet::from(["gmail.com"])),
        ];
        if let Some(r) = reason {
            v.push(("onePagesForcedReason", HashSet::from([r])));
        }
        v
    };
    let r = a.add(&dn, attrs(None)).unwrap();
    assert_eq!(r.rc, 19, "{r:?}");
    assert!(r.text.contains("public webmail domain"), "{}", r.text);
    assert_eq!(a.add(&dn, attrs(Some("because"))).unwrap().rc, 19);
    let r = a
        .add(
            &dn,
            attrs(Some("Pilot: clinic mailboxes hosted by Google Workspace")),
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");

    let bin = env!("CARGO_BIN_EXE_onepages");
    let run = |args: &[&str]| {
        let mut all = vec!["domains", "--server", server.url.as_str()];
        all.extend(["--bind-dn", ADMIN_DN, "--password", ADMIN_PW]);
        all.extend(args);
        let out = Command::new(bin).args(&all).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&["add", "mail.hotmail.ca"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("public webmail domain (listed as hotmail.ca)"),
        "{text}"
    );
    let (code, text) = run(&[
        "add",
        "riversidefht.ca",
        "--force",
        "--reason",
        "not needed",
    ]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("not a public webmail domain"), "{text}");
    let (code, text) = run(&[
        "add",
        "hotmail.ca",
        "--force",
        "--reason",
        "Ministry test accounts, ticket 4711",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, list) = run(&["list"]);
    assert_eq!(code, Some(0), "{list}");
    assert!(list.contains("one-mail.on.ca\t(configuration)"), "{list}");
    assert!(
        list.contains("hotmail.ca\t(registered; forced: Ministry test accounts, ticket 4711)"),
        "{list}"
    );
    assert!(list.contains("lakeshoregeneral.ca\t(registered)"), "{list}");
    let (code, text) = run(&["remove", "one-mail.on.ca"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("remove it there"), "{text}");

    let trail = std::fs::read_to_string(&audit_file).unwrap();
    let forced: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("\"event\":\"secure-domain-forced\""))
        .collect();
    assert_eq!(forced.len(), 2, "{trail}");
    assert!(forced[1].contains("Ministry test accounts"), "{trail}");
    assert!(forced[1].contains(ADMIN_DN), "{trail}");
}
