//! Administrators' commands with the real binary: what they refuse, and how they say it.

use std::path::Path;
use std::process::Command;

use crate::support::*;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn onepages(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onepages"));
    cmd.args(args).env_remove("ONEPAGES_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A data directory holding the demo directory, not served.
fn demo_data_dir() -> tempfile::TempDir {
    let mut server = TestServer::demo();
    server.shutdown();
    server.dir.take().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Issue 15, point 7: a mistyped data directory is never created, a store opened for another
/// suffix names both, ONEPAGES_PASSWORD does not break an offline command, `check` reads a
/// pasted `Name <address>`, and an LDAP refusal is said once.
#[test]
fn footguns_are_refused_with_the_reason() {
    let data = demo_data_dir();
    let typo = data.path().with_extension("typo");
    for args in [
        vec!["export"],
        vec!["check", "dewey.rahim@one-mail.on.ca"],
        vec!["check", "--values"],
        vec!["check", "--repair-names"],
        vec!["domains", "list"],
        vec!["unlock", "dewey.rahim@oneid.on.ca"],
        vec!["import", "--dry-run", "/nonexistent/feed.csv"],
        vec!["trash", "list"],
        vec!["backup", "-o", "/nonexistent/backup"],
    ] {
        let mut all = args.clone();
        all.extend(["--data-dir", path(&typo)]);
        let run = onepages(&all, &[]);
        assert_ne!(run.code, Some(0), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("does not exist") && run.stderr.contains(path(&typo)),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }

    let other = onepages(
        &[
            "export",
            "--data-dir",
            path(data.path()),
            "--suffix",
            "dc=other,dc=ca",
        ],
        &[],
    );
    assert_ne!(other.code, Some(0));
    assert!(
        other.stderr.contains("dc=one-mail,dc=on,dc=ca") && other.stderr.contains("dc=other,dc=ca"),
        "{}",
        other.stderr
    );

    let pasted = onepages(
        &[
            "check",
            "--data-dir",
            path(data.path()),
            "Dewey Rahim <dewey.rahim@one-mail.on.ca>",
        ],
        &[("ONEPAGES_PASSWORD", "not for offline commands")],
    );
    assert_eq!(pasted.code, Some(0), "{}{}", pasted.stdout, pasted.stderr);
    assert!(
        pasted
            .stdout
            .contains("Dewey Rahim <dewey.rahim@one-mail.on.ca>: secure"),
        "{}",
        pasted.stdout
    );

    // Online, ONEPAGES_PASSWORD is the bind password; a reader may not register a domain.
    let server = TestServer::start(settings(data.path()), false);
    let refused = onepages(
        &[
            "domains",
            "add",
            "clinic.example.org",
            "--server",
            &server.url,
            "--bind-dn",
            READER_DN,
        ],
        &[("ONEPAGES_PASSWORD", READER_PW)],
    );
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("rc=50"), "{}", refused.stderr);
    assert_eq!(
        refused.stderr.matches("rc=50").count(),
        1,
        "{}",
        refused.stderr
    );
}

/// Issue 15, point 6: `init` makes the suffix, its units and the first administrator, so that
/// a CSV without a dn column loads into a fresh directory; the administrator signs in by ONE
/// ID; a second `init` is refused.
#[test]
fn init_then_a_csv_feed_into_a_fresh_directory() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let secret = parent.path().join("admin-password");
    std::fs::write(&secret, "correct horse battery 2026\n").unwrap();
    let suffix = "dc=clinic,dc=on,dc=ca";
    let base = [
        "--data-dir",
        path(&data),
        "--suffix",
        suffix,
        "--admin",
        "ops.admin@oneid.on.ca",
        "--admin-name",
        "Ops Admin",
    ];
    let short = parent.path().join("short");
    std::fs::write(&short, "short\n").unwrap();
    let mut args = vec!["init"];
    args.extend(base);
    args.extend(["--admin-password-file", path(&short)]);
    let refused = onepages(&args, &[]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("at least 12"), "{}", refused.stderr);

    let mut args = vec!["init"];
    args.extend(base);
    args.extend([
        "--admin-password-file",
        path(&secret),
        "--org",
        "Lakeshore Clinic",
    ]);
    let made = onepages(&args, &[]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    for dn in [
        suffix.to_string(),
        format!("ou=people,{suffix}"),
        format!("ou=contacts,{suffix}"),
        format!("ou=services,{suffix}"),
        format!("ou=domains,{suffix}"),
        format!("uid=ops.admin@oneid.on.ca,ou=people,{suffix}"),
    ] {
        assert!(
            made.stdout.contains(&format!("created {dn}\n")),
            "{}",
            made.stdout
        );
    }
    let again = onepages(&args, &[]);
    assert_ne!(again.code, Some(0));
    assert!(
        again.stderr.contains("already holds 6 entries"),
        "{}",
        again.stderr
    );

    let csv = parent.path().join("people.csv");
    std::fs::write(
        &csv,
        "uid,givenName,sn,mail,o\n\
         amir.haddad@oneid.on.ca,Amir,Haddad,amir.haddad@lakeshore.example,Lakeshore Clinic\n",
    )
    .unwrap();
    let import = onepages(
        &[
            "import",
            "--data-dir",
            path(&data),
            "--suffix",
            suffix,
            path(&csv),
        ],
        &[],
    );
    assert_eq!(import.code, Some(0), "{}", import.stderr);
    assert!(import.stderr.contains("1 added"), "{}", import.stderr);

    let mut s = settings(&data);
    s.suffix = suffix.to_string();
    let server = TestServer::start(s, false);
    let mut c = server.conn();
    c.simple_bind("ops.admin@oneid.on.ca", "correct horse battery 2026")
        .unwrap()
        .success()
        .unwrap();
    let found = dns(&mut c, &format!("ou=people,{suffix}"), "(sn=haddad)");
    assert_eq!(
        found,
        vec![format!("uid=amir.haddad@oneid.on.ca,ou=people,{suffix}")]
    );
    let amir = one(&mut c, &found[0], "(objectClass=*)", vec!["cn"]);
    assert_eq!(amir.attrs["cn"], vec!["Amir Haddad".to_string()]);
    // The first administrator is an administrator: it may write.
    c.modify(
        &found[0],
        vec![ldap3::Mod::Replace(
            "title",
            std::collections::HashSet::from(["Nurse"]),
        )],
    )
    .unwrap()
    .success()
    .unwrap();
}

/// A fresh directory (init) for feed tests; returns the temp dir and the data path.
fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let secret = parent.path().join("pw");
    std::fs::write(&secret, "correct horse battery 2026\n").unwrap();
    let made = onepages(
        &[
            "init",
            "--data-dir",
            path(&data),
            "--admin",
            "ops.admin@oneid.on.ca",
            "--admin-password-file",
            path(&secret),
        ],
        &[],
    );
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    (parent, data)
}

fn feed(dir: &Path, name: &str, rows: &[&str]) -> String {
    let p = dir.join(name);
    let mut text = String::from("First Name,Last Name,E-mail,ONE ID,Job Title\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&p, text).unwrap();
    path(&p).to_string()
}

const AMIR: &str = "Amir,Haddad,amir.haddad@one-mail.on.ca,amir.haddad@oneid.on.ca,Nurse";
const BEA: &str = "Bea,Roy,bea.roy@one-mail.on.ca,bea.roy@oneid.on.ca,Clerk";
const CAL: &str = "Cal,Ng,cal.ng@one-mail.on.ca,cal.ng@oneid.on.ca,Pharmacist";

/// Issue 15, points 2 and 3: a second feed as a dry run says what would change and writes
/// nothing; for real, the counts split added / changed / unchanged / refused, the exit status
/// says there were refusals, and --report writes the same as JSON.
#[test]
fn a_second_feed_as_a_dry_run_then_for_real() {
    let (parent, data) = fresh();
    let first = feed(parent.path(), "first.csv", &[AMIR, BEA, CAL]);
    let run = onepages(&["import", "--data-dir", path(&data), &first], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("3 records: 3 added, 0 changed, 0 unchanged, 0 deleted, 0 refused"),
        "{}",
        run.stderr
    );

    let second = feed(
        parent.path(),
        "second.csv",
        &[
            AMIR,
            "Bea,Roy,bea.roy@one-mail.on.ca,bea.roy@oneid.on.ca,Head Clerk",
            CAL,
            "Dana,Lee,dana.lee@one-mail.on.ca,dana.lee@oneid.on.ca,Physician",
            "Eve,Bad,eve@@one-mail,eve.bad@oneid.on.ca,Nurse",
        ],
    );
    let report = parent.path().join("report.json");
    let dry = onepages(
        &[
            "import",
            "--data-dir",
            path(&data),
            "--dry-run",
            "--report",
            path(&report),
            &second,
        ],
        &[],
    );
    assert_eq!(dry.code, Some(1), "{}", dry.stderr);
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "change uid=bea.roy@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca (title)",
            "add uid=dana.lee@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca",
        ],
        "{}",
        dry.stdout
    );
    assert!(dry.stderr.contains("second.csv:6: "), "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains("would be 1 added, 1 changed, 2 unchanged, 0 deleted, 1 refused"),
        "{}",
        dry.stderr
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["exit"], 1);
    assert_eq!(json["files"][0]["changed"], 1);
    assert_eq!(json["files"][0]["issues"][0]["line"], 6);
    assert_eq!(json["files"][0]["changes"][0]["attributes"][0], "title");
    // Nothing was written: the same dry run says the same.
    let again = onepages(
        &["import", "--data-dir", path(&data), "--dry-run", &second],
        &[],
    );
    assert_eq!(again.stdout, dry.stdout);

    let real = onepages(&["import", "--data-dir", path(&data), &second], &[]);
    assert_eq!(real.code, Some(1), "{}", real.stderr);
    assert!(real.stdout.is_empty(), "{}", real.stdout);
    assert!(
        real.stderr
            .contains("5 records: 1 added, 1 changed, 2 unchanged, 0 deleted, 1 refused"),
        "{}",
        real.stderr
    );
    assert!(
        real.stderr.contains("the others were applied"),
        "{}",
        real.stderr
    );
    let after = onepages(
        &["import", "--data-dir", path(&data), "--dry-run", &second],
        &[],
    );
    assert!(after.stdout.is_empty(), "{}", after.stdout);
}

/// Issue 15, point 3: a migration dump's computed attributes are left out with a note; one
/// the schema lacks refuses its record unless --drop-unknown (then noted with a count); a
/// CSV header the schema lacks is refused once (exit 2); a non-UTF-8 CSV is refused once.
#[test]
fn migrations_and_bad_files_are_reported_once() {
    let (parent, data) = fresh();
    let dump = parent.path().join("dump.ldif");
    let mut text = String::new();
    for who in ["amir.haddad", "bea.roy"] {
        text.push_str(&format!(
            "dn: uid={who}@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca\n\
             objectClass: inetOrgPerson\nobjectClass: onePagesPerson\ncn: {who}\nsn: {who}\n\
             mail: {who}@one-mail.on.ca\noneMailSecure: TRUE\nentryCSN: 20260101000000.000000Z#000000#000#000000\n\
             memberOf: cn=staff,ou=groups,dc=one-mail,dc=on,dc=ca\npwdChangedTime: 20260101000000Z\n\n"
        ));
    }
    std::fs::write(&dump, text).unwrap();
    let strict = onepages(&["import", "--data-dir", path(&data), path(&dump)], &[]);
    assert_eq!(strict.code, Some(1), "{}", strict.stderr);
    assert!(
        strict.stderr.contains("nothing was written"),
        "{}",
        strict.stderr
    );
    assert!(strict.stderr.contains("memberOf"), "{}", strict.stderr);
    let loose = onepages(
        &[
            "import",
            "--data-dir",
            path(&data),
            "--drop-unknown",
            path(&dump),
        ],
        &[],
    );
    assert_eq!(loose.code, Some(0), "{}", loose.stderr);
    for note in [
        "oneMailSecure: computed by the server, left out (2 records)",
        "entryCSN: computed by the server, left out (2 records)",
        "memberOf: not in the schema, left out (--drop-unknown) (2 records)",
        "pwdChangedTime: not in the schema, left out (--drop-unknown) (2 records)",
    ] {
        assert!(loose.stderr.contains(note), "{note}: {}", loose.stderr);
    }
    assert!(loose.stderr.contains("2 added"), "{}", loose.stderr);

    let header = parent.path().join("header.csv");
    let mut rows = String::from("First Name,Last Name,ONE ID,Pager Code\n");
    for i in 0..50 {
        rows.push_str(&format!("A{i},B{i},p{i}@oneid.on.ca,{i}\n"));
    }
    std::fs::write(&header, rows).unwrap();
    let bad = onepages(&["import", "--data-dir", path(&data), path(&header)], &[]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert_eq!(
        bad.stderr.matches("Pager Code").count(),
        1,
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("column 4"), "{}", bad.stderr);

    let latin1 = parent.path().join("latin1.csv");
    std::fs::write(&latin1, b"givenName,sn,uid\nH\xe9l\xe8ne,C,h@oneid.on.ca\n").unwrap();
    let enc = onepages(&["import", "--data-dir", path(&data), path(&latin1)], &[]);
    assert_eq!(enc.code, Some(2), "{}", enc.stderr);
    assert!(enc.stderr.contains("not UTF-8"), "{}", enc.stderr);
}

/// Issue 15, point 8: exports round trip. The demo directory exported as LDIF and imported
/// into an empty data directory exports the same LDIF and the same CSV; importing the CSV
/// back changes nothing (it holds every attribute of the people it lists).
#[test]
fn exports_round_trip() {
    let data = demo_data_dir();
    let out = tempfile::tempdir().unwrap();
    let file = |n: &str| out.path().join(n);
    let export = |dir: &Path, format: &str, to: &Path| {
        let run = onepages(
            &[
                "export",
                "--data-dir",
                path(dir),
                "--format",
                format,
                "-o",
                path(to),
            ],
            &[],
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        std::fs::read_to_string(to).unwrap()
    };
    let ldif1 = export(data.path(), "ldif", &file("1.ldif"));
    let csv1 = export(data.path(), "csv", &file("1.csv"));
    let copy = out.path().join("copy");
    let load = onepages(
        &["import", "--data-dir", path(&copy), path(&file("1.ldif"))],
        &[],
    );
    assert_eq!(load.code, Some(0), "{}", load.stderr);
    assert_eq!(export(&copy, "ldif", &file("2.ldif")), ldif1);
    assert_eq!(export(&copy, "csv", &file("2.csv")), csv1);
    let header = csv1.lines().next().unwrap();
    for column in ["company", "objectClass", "userPassword", "entryUUID"] {
        assert!(header.split(',').any(|c| c == column), "{column}: {header}");
    }
    let again = onepages(
        &["import", "--data-dir", path(&copy), path(&file("1.csv"))],
        &[],
    );
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let people = csv1.lines().count() - 1;
    assert!(
        again.stderr.contains(&format!(
            "{people} records: 0 added, 0 changed, {people} unchanged, 0 deleted, 0 refused"
        )),
        "{}",
        again.stderr
    );
}

/// Ten people of a nightly feed, as CSV rows.
fn staff(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!("Nurse{i},Staff,nurse{i}.staff@one-mail.on.ca,nurse{i}.staff@oneid.on.ca,Nurse")
        })
        .collect()
}

/// Issue 15, points 2 and 4: the nightly feed. A second feed with three leavers and two
/// changes, as a dry run (what would be deleted, with the changes) and then for real with
/// `--sync`: the leavers go to the trash (the first administrator, not in the feed, stays),
/// one comes back with `trash restore`; a truncated feed is refused by the delete guard
/// before anything is written.
#[test]
fn a_nightly_sync_feed_with_leavers_then_a_restore() {
    let (parent, data) = fresh();
    let rows = staff(10);
    let all: Vec<&str> = rows.iter().map(String::as_str).collect();
    let first = feed(parent.path(), "night1.csv", &all);
    let sync = "ou=people,dc=one-mail,dc=on,dc=ca";
    let run = onepages(
        &["import", "--data-dir", path(&data), "--sync", sync, &first],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("10 added"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("administrators are never deleted by a sync"),
        "{}",
        run.stderr
    );

    // Night 2: nurses 7, 8, 9 left; 0 and 1 changed title.
    let changed0 = rows[0].replace(",Nurse", ",Head Nurse");
    let changed1 = rows[1].replace(",Nurse", ",Charge Nurse");
    let mut second_rows = vec![changed0.as_str(), changed1.as_str()];
    second_rows.extend(all[2..7].iter().copied());
    let second = feed(parent.path(), "night2.csv", &second_rows);
    let dry = onepages(
        &[
            "import",
            "--data-dir",
            path(&data),
            "--sync",
            sync,
            "--dry-run",
            &second,
        ],
        &[],
    );
    // The dry run shows everything, and that the default guard (10% of 11: 1) would stop it.
    assert_eq!(dry.code, Some(1), "{}", dry.stderr);
    assert!(
        dry.stderr.contains("a real run would refuse to start"),
        "{}",
        dry.stderr
    );
    let mut lines: Vec<&str> = dry.stdout.lines().collect();
    lines.sort_unstable();
    let person = |i: usize| format!("uid=nurse{i}.staff@oneid.on.ca,{sync}");
    assert_eq!(
        lines,
        [
            format!("change {} (title)", person(0)),
            format!("change {} (title)", person(1)),
            format!("delete {}", person(7)),
            format!("delete {}", person(8)),
            format!("delete {}", person(9)),
        ],
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr
            .contains("would be 0 added, 2 changed, 5 unchanged"),
        "{}",
        dry.stderr
    );

    // The guard stops the real run before it writes anything.
    let guarded = onepages(
        &["import", "--data-dir", path(&data), "--sync", sync, &second],
        &[],
    );
    assert_eq!(guarded.code, Some(2), "{}", guarded.stderr);
    assert!(
        guarded.stderr.contains("would delete 3 of the 11 entries")
            && guarded.stderr.contains("nothing was written"),
        "{}",
        guarded.stderr
    );
    let real = onepages(
        &[
            "import",
            "--data-dir",
            path(&data),
            "--sync",
            sync,
            "--max-deletes",
            "3",
            &second,
        ],
        &[],
    );
    assert_eq!(real.code, Some(0), "{}", real.stderr);
    assert!(
        real.stderr
            .contains("7 records: 0 added, 2 changed, 5 unchanged, 0 deleted, 0 refused"),
        "{}",
        real.stderr
    );
    assert!(real.stderr.contains("3 deleted"), "{}", real.stderr);

    let trash = onepages(&["trash", "list", "--data-dir", path(&data)], &[]);
    assert_eq!(trash.code, Some(0), "{}", trash.stderr);
    assert_eq!(trash.stdout.lines().count(), 3, "{}", trash.stdout);
    let back = onepages(
        &[
            "trash",
            "restore",
            "nurse8.staff@oneid.on.ca",
            "--data-dir",
            path(&data),
        ],
        &[],
    );
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    assert_eq!(back.stdout.trim(), format!("{}: restored", person(8)));
    let trash = onepages(&["trash", "list", "--data-dir", path(&data)], &[]);
    assert_eq!(trash.stdout.lines().count(), 2, "{}", trash.stdout);

    // A truncated feed: one row of ten would delete nearly everyone.
    let short = feed(parent.path(), "night3.csv", &all[..1]);
    let cut = onepages(
        &["import", "--data-dir", path(&data), "--sync", sync, &short],
        &[],
    );
    assert_eq!(cut.code, Some(2), "{}", cut.stderr);
    let export = onepages(&["export", "--data-dir", path(&data)], &[]);
    assert_eq!(
        export.stdout.matches("\ndn: uid=nurse").count(),
        8,
        "nothing written: {}",
        cut.stderr
    );
}

/// An LDIF feed of `ou=night` and its people `from..to` (title as given).
fn night_ldif(dir: &Path, name: &str, people: std::ops::Range<usize>, title: &str) -> String {
    let unit = "ou=night,ou=people,dc=one-mail,dc=on,dc=ca";
    let mut text = format!("dn: {unit}\nobjectClass: organizationalUnit\nou: night\n\n");
    for i in people {
        text.push_str(&format!(
            "dn: uid=night{i}.staff@oneid.on.ca,{unit}\nobjectClass: inetOrgPerson\n\
             objectClass: onePagesPerson\ncn: Night{i} Staff\ngivenName: Night{i}\nsn: Staff\n\
             mail: night{i}.staff@one-mail.on.ca\ntitle: {title}\no: Night Clinic\n\n"
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    path(&p).to_string()
}

/// Issue 15, points 1 and 2: `import --server` loads through the running server while a
/// reader searches; the reader only ever sees a person as the old feed or the new one left
/// it (never half-written); a sync deletes the leavers, its guard refuses a truncated feed
/// before writing, a dry run writes nothing, and a non-administrator is refused.
#[test]
fn online_imports_while_a_reader_searches() {
    let server = TestServer::demo();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, format!("{ADMIN_PW}\n")).unwrap();
    let url = server.url.clone();
    let online = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--server",
            &url,
            "--bind-dn",
            ADMIN_DN,
            "--password-file",
            path(&secret),
        ];
        args.extend_from_slice(extra);
        onepages(&args, &[])
    };
    let unit = "ou=night,ou=people,dc=one-mail,dc=on,dc=ca";

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = std::sync::Arc::clone(&stop);
        let mut conn = server.reader();
        std::thread::spawn(move || {
            let mut seen = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (entries, _) = conn
                    .search(
                        PEOPLE,
                        ldap3::Scope::Subtree,
                        "(&(sn=Staff)(givenName=Night1*))",
                        vec!["title", "mail", "cn", "o"],
                    )
                    .unwrap()
                    .success()
                    .unwrap();
                for e in entries.into_iter().map(ldap3::SearchEntry::construct) {
                    let title = e.attrs.get("title").cloned().unwrap_or_default();
                    assert!(
                        title == ["Nurse"] || title == ["Head Nurse"],
                        "{}: {title:?}",
                        e.dn
                    );
                    assert_eq!(e.attrs["o"], ["Night Clinic"], "{}", e.dn);
                    assert_eq!(e.attrs["mail"].len(), 1);
                    seen += 1;
                }
            }
            seen
        })
    };

    let first = night_ldif(dir.path(), "first.ldif", 0..1500, "Nurse");
    let run = online(&[&first]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("1501 records: 1501 added"),
        "{}",
        run.stderr
    );
    // Everyone's title changes; 20 leave (1.3%, within the default guard of 10%).
    let second = night_ldif(dir.path(), "second.ldif", 0..1480, "Head Nurse");
    let dry = online(&["--dry-run", "--sync", unit, &second]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let deletes = dry
        .stdout
        .lines()
        .filter(|l| l.starts_with("delete "))
        .count();
    assert_eq!(deletes, 20, "{}", dry.stdout);
    assert!(
        dry.stderr
            .contains("would be 0 added, 1480 changed, 1 unchanged"),
        "{}",
        dry.stderr
    );
    let real = online(&["--sync", unit, &second]);
    assert_eq!(real.code, Some(0), "{}", real.stderr);
    assert!(
        real.stderr
            .contains("1481 records: 0 added, 1480 changed, 1 unchanged"),
        "{}",
        real.stderr
    );
    assert!(real.stderr.contains("20 deleted"), "{}", real.stderr);

    // A truncated feed: the guard refuses before anything is written.
    let cut = night_ldif(dir.path(), "cut.ldif", 0..10, "Nurse");
    let guarded = online(&["--sync", unit, &cut]);
    assert_eq!(guarded.code, Some(2), "{}", guarded.stderr);
    assert!(
        guarded.stderr.contains("nothing was written"),
        "{}",
        guarded.stderr
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(seen > 0, "the reader searched during the loads");

    let mut admin = server.admin();
    let people = dns(&mut admin, unit, "(title=Head Nurse)");
    assert_eq!(people.len(), 1480);
    assert!(dns(&mut admin, unit, "(title=Nurse)").is_empty());

    // Only administrators import.
    let reader_pw = dir.path().join("reader-pw");
    std::fs::write(&reader_pw, READER_PW).unwrap();
    let refused = onepages(
        &[
            "import",
            "--server",
            &url,
            "--bind-dn",
            READER_DN,
            "--password-file",
            path(&reader_pw),
            &cut,
        ],
        &[],
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("only directory administrators may import"),
        "{}",
        refused.stderr
    );
}

/// Issue 15, point 5: backups of a running server while a client writes. Each step of the
/// writer adds `cn=wN` and then sets the counter entry's description to N: a backup of one
/// generation holds w0..wK with no gap and a counter of K-1 or K. Each backup is 0600, comes
/// back into a fresh data directory, and serves again with its password hashes.
#[test]
fn backups_while_writing_are_one_generation() {
    let server = TestServer::demo();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, format!("{ADMIN_PW}\n")).unwrap();
    let counter = format!("cn=counter,{PEOPLE}");
    let mut admin = server.admin();
    admin
        .add(
            &counter,
            vec![
                ("objectClass", ["inetOrgPerson"].into()),
                ("cn", ["counter"].into()),
                ("sn", ["counter"].into()),
                ("description", ["-1"].into()),
            ],
        )
        .unwrap()
        .success()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let counter = counter.clone();
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                let name = format!("w{i}");
                admin
                    .add(
                        &format!("cn={name},{PEOPLE}"),
                        vec![
                            ("objectClass", ["inetOrgPerson"].into()),
                            ("cn", [name.as_str()].into()),
                            ("sn", ["w"].into()),
                        ],
                    )
                    .unwrap()
                    .success()
                    .unwrap();
                let n = i.to_string();
                admin
                    .modify(
                        &counter,
                        vec![ldap3::Mod::Replace("description", [n.as_str()].into())],
                    )
                    .unwrap()
                    .success()
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    let mut files = Vec::new();
    for b in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = dir.path().join(format!("b{b}.onepages-backup"));
        let run = onepages(
            &[
                "backup",
                "--server",
                &server.url,
                "--bind-dn",
                ADMIN_DN,
                "--password-file",
                path(&secret),
                "-o",
                path(&out),
            ],
            &[],
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        files.push(out);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let steps = writer.join().unwrap();
    assert!(steps > 0);

    let mut last_k = None;
    for (b, file) in files.iter().enumerate() {
        let data = dir.path().join(format!("restored{b}"));
        let run = onepages(
            &["restore-backup", path(file), "--data-dir", path(&data)],
            &[],
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let export = onepages(&["export", "--data-dir", path(&data)], &[]);
        assert_eq!(export.code, Some(0), "{}", export.stderr);
        let mut ws: Vec<usize> = export
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("dn: cn=w"))
            .filter_map(|l| l.split(',').next()?.parse().ok())
            .collect();
        ws.sort_unstable();
        let k = ws.len() as i64 - 1;
        assert!(
            ws.iter().enumerate().all(|(i, w)| i == *w),
            "backup {b}: a gap in {ws:?}"
        );
        let record = export
            .stdout
            .split("\n\n")
            .find(|r| r.starts_with(&format!("dn: {counter}")))
            .unwrap();
        let value: i64 = record
            .lines()
            .find_map(|l| l.strip_prefix("description: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            value == k || value == k - 1,
            "backup {b}: w0..w{k} with the counter at {value}"
        );
        assert!(last_k.is_none_or(|l| k >= l), "later backups hold more");
        last_k = Some(k);
        // A restored directory refuses to be restored over.
        let again = onepages(
            &["restore-backup", path(file), "--data-dir", path(&data)],
            &[],
        );
        assert_ne!(again.code, Some(0));
        assert!(
            again.stderr.contains("holds a directory already"),
            "{}",
            again.stderr
        );
    }
    // The last one serves again, its password hashes with it.
    let data = dir.path().join("restored2");
    let restored = TestServer::start(settings(&data), false);
    let mut conn = restored.admin();
    assert!(!dns(&mut conn, PEOPLE, "(cn=w0)").is_empty());

    // A damaged backup is refused as a whole.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    let damaged = dir.path().join("damaged");
    std::fs::write(&damaged, bytes).unwrap();
    let run = onepages(
        &[
            "restore-backup",
            path(&damaged),
            "--data-dir",
            path(&dir.path().join("never")),
        ],
        &[],
    );
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("checksum"), "{}", run.stderr);
    assert!(!dir.path().join("never").exists());
}
