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
        vec!["domains", "list"],
        vec!["unlock", "dewey.rahim@oneid.on.ca"],
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
