//! A real ONE Pages server on an ephemeral loopback port, with a temporary data directory.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use ldap3::{LdapConn, Scope, SearchEntry};
use onepages::config::{Overrides, Settings};

pub const SUFFIX: &str = "dc=one-mail,dc=on,dc=ca";
pub const PEOPLE: &str = "ou=people,dc=one-mail,dc=on,dc=ca";
pub const READER_DN: &str = "cn=demo-reader,ou=services,dc=one-mail,dc=on,dc=ca";
pub const READER_PW: &str = "demo-reader-2026";
pub const ADMIN_DN: &str = "cn=demo-admin,ou=services,dc=one-mail,dc=on,dc=ca";
pub const ADMIN_PW: &str = "demo-admin-2026";

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    /// The LDAPS listener's address, when the settings asked for one.
    pub ldaps: Option<SocketAddr>,
    /// The HTTP listener's address, when the settings asked for one.
    pub http: Option<SocketAddr>,
    /// The server's certificate holder (to reload it as SIGHUP would).
    pub tls: Option<std::sync::Arc<onepages::protocol::tls::TlsCertificates>>,
    /// Slow password checks the server ran (count and peak concurrency).
    pub slow_checks: std::sync::Arc<onepages::protocol::SlowChecks>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pub dir: Option<tempfile::TempDir>,
}

pub fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::load_from(
        None,
        &[],
        &Overrides {
            data_dir: Some(dir.to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            suffix: None,
        },
    )
    .expect("settings");
    // Cheap hashing for passwords set during tests (the demo's own hashes stay as they are).
    s.argon2 = onepages::directory::password::Argon2Cost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    s
}

impl TestServer {
    /// The demo directory, served with default settings.
    pub fn demo() -> TestServer {
        TestServer::demo_with(|_| {})
    }

    pub fn demo_with(tweak: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = settings(dir.path());
        tweak(&mut s);
        let mut server = TestServer::start(s, true);
        server.dir = Some(dir);
        server
    }

    pub fn start(settings: Settings, demo: bool) -> TestServer {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let stop = async move {
                    let _ = stop_rx.await;
                };
                match onepages::server::start(settings, demo, stop).await {
                    Ok(running) => {
                        let _ = addr_tx.send(Ok((
                            running.addr,
                            running.ldaps_addr(),
                            running.http_addr(),
                            running.tls.clone(),
                            std::sync::Arc::clone(&running.slow_checks),
                        )));
                        running.wait().await;
                    }
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("{e:#}")));
                    }
                }
            });
        });
        let (addr, ldaps, http, tls, slow_checks) = addr_rx
            .recv()
            .expect("server thread")
            .expect("server started");
        TestServer {
            addr,
            url: format!("ldap://{addr}"),
            ldaps,
            http,
            tls,
            slow_checks,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: None,
        }
    }

    pub fn conn(&self) -> LdapConn {
        LdapConn::new(&self.url).expect("connect")
    }

    pub fn reader(&self) -> LdapConn {
        let mut c = self.conn();
        c.simple_bind(READER_DN, READER_PW)
            .expect("bind")
            .success()
            .expect("reader bind");
        c
    }

    pub fn admin(&self) -> LdapConn {
        let mut c = self.conn();
        c.simple_bind(ADMIN_DN, ADMIN_PW)
            .expect("bind")
            .success()
            .expect("admin bind");
        c
    }

    /// Stops the server cleanly and waits for it.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// DNs returned by a subtree search, sorted.
pub fn dns(conn: &mut LdapConn, base: &str, filter: &str) -> Vec<String> {
    let (entries, res) = conn
        .search(base, Scope::Subtree, filter, vec!["1.1"])
        .expect("search")
        .success()
        .expect("search succeeded");
    let _ = res;
    let mut out: Vec<String> = entries
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    out.sort();
    out
}

pub fn one(conn: &mut LdapConn, base: &str, filter: &str, attrs: Vec<&str>) -> SearchEntry {
    let (entries, _) = conn
        .search(base, Scope::Subtree, filter, attrs)
        .expect("search")
        .success()
        .expect("search succeeded");
    assert_eq!(entries.len(), 1, "expected one entry for {filter}");
    SearchEntry::construct(entries.into_iter().next().expect("one entry"))
}

/// Runs the `onepages` binary (without ONEPAGES_PASSWORD): exit code, stdout, stderr.
pub fn onepages(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_onepages"))
        .args(args)
        .env_remove("ONEPAGES_PASSWORD")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
