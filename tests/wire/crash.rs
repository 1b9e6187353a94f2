//! Durability: SIGKILL the real binary at arbitrary moments while it acknowledges writes, then
//! restart it: every acknowledged write is there, and store and index agree.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{LdapConn, LdapConnSettings};

use crate::support::*;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(data: &std::path::Path, port: u16) -> Child {
    spawn_with(data, port, &[], Stdio::null())
}

/// The server with more environment, its log (stderr) going to `log`.
fn spawn_with(data: &std::path::Path, port: u16, env: &[(&str, &str)], log: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_onepages"))
        .args(["serve", "--demo", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .env("ONEPAGES_LOG", "warn")
        // The demo's LDAPS listener on an ephemeral port: tests run side by side.
        .env("ONEPAGES_LDAPS_LISTEN", "127.0.0.1:0")
        .env("ONEPAGES_HTTP_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start onepages")
}

fn connect(port: u16) -> LdapConn {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(2));
        if let Ok(mut c) = LdapConn::with_settings(settings, &format!("ldap://127.0.0.1:{port}")) {
            if c.simple_bind(ADMIN_DN, ADMIN_PW)
                .map(|r| r.rc == 0)
                .unwrap_or(false)
            {
                return c;
            }
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(child: &mut Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut seq = 0usize;
    for round in 0..4u64 {
        let port = free_port();
        let mut child = spawn(dir.path(), port);
        let mut c = connect(port);
        // Everything acknowledged before is still there, through the index and by DN.
        let all = acked.lock().unwrap().clone();
        for uid in &all {
            assert_eq!(
                dns(&mut c, SUFFIX, &format!("(uid={uid})")).len(),
                1,
                "lost {uid}"
            );
        }
        // The index (a prefix term) and a scan (an ordering filter it cannot narrow) agree. A
        // write that was durable but killed before its acknowledgement may be there too.
        let indexed: HashSet<String> = dns(&mut c, PEOPLE, "(sn=crash*)").into_iter().collect();
        let scanned: HashSet<String> = dns(&mut c, PEOPLE, "(&(sn>=crash)(sn<=crasi))")
            .into_iter()
            .collect();
        assert_eq!(
            indexed, scanned,
            "index and store disagree after round {round}"
        );
        for uid in &all {
            let dn = format!("uid={uid},{PEOPLE}");
            assert!(
                indexed.contains(&dn),
                "acknowledged {uid} is not found by the index"
            );
        }
        assert!(
            indexed.len() <= all.len() + 4,
            "unexpected entries appeared"
        );
        // Write until killed at a moment that depends on the round.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            let start = seq;
            std::thread::spawn(move || {
                let mut n = start;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let uid = format!("crash{n}@oneid.on.ca");
                    let attrs: Vec<(String, HashSet<String>)> = vec![
                        (
                            "objectClass".into(),
                            HashSet::from(["inetOrgPerson".to_string()]),
                        ),
                        ("cn".into(), HashSet::from([format!("Crash {n}")])),
                        ("sn".into(), HashSet::from([format!("Crash{n}")])),
                    ];
                    match c.add(&format!("uid={uid},{PEOPLE}"), attrs) {
                        Ok(r) if r.rc == 0 => acked.lock().unwrap().push(uid),
                        _ => break,
                    }
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(150 + 170 * round));
        kill9(&mut child);
        stop.store(true, Ordering::Relaxed);
        seq = writer.join().unwrap() + 1;
    }
    assert!(
        acked.lock().unwrap().len() > 10,
        "too few writes to mean anything"
    );
    // A final clean run: SIGTERM shuts down cleanly (exit status 0).
    let port = free_port();
    let mut child = spawn(dir.path(), port);
    let mut c = connect(port);
    let n = acked.lock().unwrap().len();
    let found = dns(&mut c, PEOPLE, "(sn=crash*)").len();
    assert!(
        found >= n && found <= n + 4,
        "{found} entries for {n} acknowledged writes"
    );
    drop(c);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    assert!(child.wait().expect("wait").success());
}

/// `onepages import` (bulk mode: rare commits, segments merged once at the end) leaves a data
/// directory whose index answers exactly: counts over the wire match the generated data.
#[test]
fn offline_bulk_import_is_searchable_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = spawn(&data, port);
    drop(connect(port));
    terminate(&mut child);

    let people = onepages::gen::people(3000, 11);
    let mut ldif = Vec::new();
    onepages::gen::write_ldif(&mut ldif, &people, SUFFIX).unwrap();
    let file = dir.path().join("people.ldif");
    std::fs::write(&file, &ldif).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_onepages"))
        .args(["import", "--data-dir"])
        .arg(&data)
        .arg(&file)
        .env("ONEPAGES_LOG", "warn")
        // The demo's LDAPS listener on an ephemeral port: tests run side by side.
        .env("ONEPAGES_LDAPS_LISTEN", "127.0.0.1:0")
        .env("ONEPAGES_HTTP_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run import");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("0 refused"), "{said}");

    let port = free_port();
    let mut child = spawn(&data, port);
    let mut c = connect(port);
    let count = |c: &mut LdapConn, filter: &str| {
        c.search(PEOPLE, ldap3::Scope::Subtree, filter, vec!["1.1"])
            .unwrap()
            .success()
            .unwrap()
            .0
            .len()
    };
    // Every mail address under ou=people (the demo's and the imported ones), read whole.
    let mails: Vec<String> = c
        .search(
            PEOPLE,
            ldap3::Scope::Subtree,
            "(objectClass=*)",
            vec!["mail"],
        )
        .unwrap()
        .success()
        .unwrap()
        .0
        .into_iter()
        .flat_map(|e| {
            ldap3::SearchEntry::construct(e)
                .attrs
                .remove("mail")
                .unwrap_or_default()
        })
        .collect();
    assert!(mails.len() >= people.len(), "{}", mails.len());
    for needle in ["ma", "tr", "x", "lab", "@one"] {
        let expected = mails
            .iter()
            .filter(|m| m.to_ascii_lowercase().contains(needle))
            .count();
        assert_eq!(
            count(&mut c, &format!("(mail=*{needle}*)")),
            expected,
            "mail containing {needle:?}"
        );
    }
    let with_uid = people.iter().filter(|p| p.uid.is_some()).count();
    assert!(count(&mut c, "(uid=*)") >= with_uid);
    let first = &people[1234];
    assert_eq!(count(&mut c, &format!("(mail={})", first.mail)), 1);
    terminate(&mut child);
}

/// Issue 16: a sign-in recorded at bind survives a SIGKILL a few seconds later (the flusher
/// hands it to the store every second, sled writes it out within half a second).
#[test]
fn a_sign_in_survives_a_crash_seconds_later() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn(data.path(), port);
    let dewey = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";
    let mut admin = connect(port);
    let mut c = LdapConn::new(&format!("ldap://127.0.0.1:{port}")).unwrap();
    c.simple_bind("dewey.rahim@oneid.on.ca", "dewey-demo-2026")
        .unwrap()
        .success()
        .unwrap();
    let read = |admin: &mut LdapConn| {
        let (entries, _) = admin
            .search(
                dewey,
                ldap3::Scope::Base,
                "(objectClass=*)",
                vec!["onePagesLastSignIn"],
            )
            .unwrap()
            .success()
            .unwrap();
        let e = ldap3::SearchEntry::construct(entries.into_iter().next().unwrap());
        e.attrs
            .get("onePagesLastSignIn")
            .and_then(|v| v.first())
            .cloned()
    };
    let before = read(&mut admin).expect("recorded");
    std::thread::sleep(Duration::from_secs(3));
    kill9(&mut child);
    let mut child = spawn(data.path(), port);
    let mut admin = connect(port);
    assert_eq!(read(&mut admin), Some(before), "the sign-in is on disk");
    terminate(&mut child);
}

/// Outlook's sorted list survives a clean restart: the server keeps it in the data directory
/// at shutdown and reads it back at start (the file is used once), so the first browse after
/// the restart is a window of the kept list, the same as before.
#[test]
fn sorted_lists_survive_a_clean_restart() {
    use ldap3::controls::RawControl;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    // sort on cn + VLV: the 5 entries from offset 40.
    let controls = || {
        let sort = RawControl {
            ctype: "1.2.840.113556.1.4.473".into(),
            crit: true,
            val: Some(vec![0x30, 0x06, 0x30, 0x04, 0x04, 0x02, b'c', b'n']),
        };
        let vlv = RawControl {
            ctype: "2.16.840.1.113730.3.4.9".into(),
            crit: true,
            val: Some(vec![
                0x30, 0x0e, 0x02, 0x01, 0x00, 0x02, 0x01, 0x04, 0xa0, 0x06, 0x02, 0x01, 0x28, 0x02,
                0x01, 0x00,
            ]),
        };
        vec![sort, vlv]
    };
    let window = |c: &mut LdapConn| -> Vec<String> {
        let ldap3::SearchResult(entries, res) = c
            .with_controls(controls())
            .search(
                "ou=people,dc=one-mail,dc=on,dc=ca",
                ldap3::Scope::Subtree,
                "(objectClass=inetOrgPerson)",
                vec!["cn"],
            )
            .unwrap();
        assert_eq!(res.rc, 0, "{res:?}");
        entries
            .into_iter()
            .map(|e| ldap3::SearchEntry::construct(e).dn)
            .collect()
    };
    let mut child = spawn(data.path(), port);
    let mut admin = connect(port);
    let before = window(&mut admin);
    assert_eq!(before.len(), 5);
    drop(admin);
    terminate(&mut child);
    let kept = data.path().join("sorted-views.bin");
    assert!(kept.exists(), "the list is kept at shutdown");
    let mut child = spawn(data.path(), port);
    let mut admin = connect(port);
    assert!(
        kept.exists(),
        "the kept file stays: the change log brings it forward after a crash too"
    );
    assert_eq!(window(&mut admin), before);
    drop(admin);
    terminate(&mut child);
}

/// Outlook's browse list survives a crash (issue 18, item 5): the list the server kept on disk
/// a moment before (`sorted_lists_keep_secs`) comes back after a SIGKILL and is brought
/// forward with the writes made after it was kept, and the window a client reads from it is
/// the same as the one a freshly sorted list gives.
#[test]
fn a_kept_browse_list_is_brought_forward_after_a_crash() {
    use crate::browse::{int_of, response, search_with, sort, vlv_offset, VLV_RESP};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kept = data.join("sorted-views.bin");
    let browse = |c: &mut LdapConn, n: i64| {
        let (entries, res) = search_with(
            c,
            PEOPLE,
            "(objectClass=inetOrgPerson)",
            vec![sort("cn", false, true), vlv_offset(0, n - 1, 1, 0)],
            vec!["cn"],
        );
        assert_eq!(res.rc, 0, "{res:?}");
        let count = int_of(&response(&res, VLV_RESP)[1]);
        (entries.into_iter().map(|e| e.dn).collect::<Vec<_>>(), count)
    };
    let env = [("ONEPAGES_SORTED_LISTS_KEEP_SECS", "1")];
    let port = free_port();
    let mut child = spawn_with(&data, port, &env, Stdio::null());
    let mut c = connect(port);
    let (before, n) = browse(&mut c, 1000);
    assert!(
        n > 250 && before.len() == n as usize,
        "{n} {}",
        before.len()
    );
    let waited = Instant::now();
    while !kept.exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the list was not kept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // After the list was kept: one entry added (first in the list), one deleted, one renamed
    // to the end.
    let aaron = format!("uid=aaron.aardvark@oneid.on.ca,{PEOPLE}");
    let attrs: Vec<(String, HashSet<String>)> = vec![
        (
            "objectClass".into(),
            HashSet::from(["inetOrgPerson".to_string()]),
        ),
        ("cn".into(), HashSet::from(["Aaron Aardvark".to_string()])),
        ("sn".into(), HashSet::from(["Aardvark".to_string()])),
    ];
    assert_eq!(c.add(&aaron, attrs).unwrap().rc, 0);
    let gone = before[3].clone();
    assert_eq!(c.delete(&gone).unwrap().rc, 0);
    let moved = before[10].clone();
    let cn = HashSet::from(["Zzzz Zyzzyva".to_string()]);
    assert_eq!(
        c.modify(&moved, vec![ldap3::Mod::Replace("cn".to_string(), cn)])
            .unwrap()
            .rc,
        0
    );
    kill9(&mut child);

    let port = free_port();
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let env_info = [env[0], ("ONEPAGES_LOG", "info")];
    let mut child = spawn_with(&data, port, &env_info, Stdio::from(file));
    let mut c = connect(port);
    let (after, count) = browse(&mut c, 1000);
    terminate(&mut child);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("sorted lists kept from before the restart"),
        "the kept list was not read back: {said}"
    );
    assert_eq!(count, n, "one added, one deleted");
    assert_eq!(after.first(), Some(&aaron));
    assert_eq!(after.last(), Some(&moved));
    assert!(!after.contains(&gone));

    // The same window from a list sorted afresh.
    std::fs::remove_file(&kept).unwrap();
    let port = free_port();
    let mut child = spawn(&data, port);
    let mut c = connect(port);
    let (fresh, fresh_count) = browse(&mut c, 1000);
    terminate(&mut child);
    assert_eq!(fresh_count, count);
    assert_eq!(
        after, fresh,
        "the brought-forward list differs from a fresh sort"
    );
}
