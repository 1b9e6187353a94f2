//! `onepages status [--server URL] [--json]`: one screen for a person about a running server —
//! version, uptime, entries, connections, operations per second over the last minute, failed
//! binds in the last hour, index lag, the import under way and the last one, the last
//! dormant-account run, tombstones, the TLS certificate's expiry (a warning under 21 days).
//!
//! From the operators' HTTP listener (`--server http://127.0.0.1:8389`, its `/status`; the
//! default is the configuration's `http_listen`), or over LDAP from `cn=Monitor` as an
//! administrator (`--server ldap://... --bind-dn ... --password-file ...`). Exit codes: 0
//! ready, 1 served but with a warning (the index lags, the certificate expires within 21
//! days, the last import stopped), 2 could not ask.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use http_body_util::BodyExt;

use super::{Common, Online};
use crate::dsa::runs::RunNote;
use crate::metrics::{Certificate, OpCount, Snapshot};

/// Under this many days to expiry the certificate is a warning.
pub const CERT_WARN_DAYS: i64 = 21;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Print the server's figures as JSON instead of the screen
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let url = match &args.online.server {
        Some(u) => u.clone(),
        None => {
            let settings = args.common.settings(None)?;
            match settings.http_listen {
                Some(a) => format!("http://{a}"),
                None => anyhow::bail!(
                    "no server to ask: give --server http://HOST:PORT (the server's http_listen) \
                     or --server ldap://HOST:PORT with --bind-dn as an administrator"
                ),
            }
        }
    };
    let snap = if url.starts_with("http://") {
        over_http(&url)?
    } else if url.starts_with("https://") {
        anyhow::bail!(
            "--server {url}: the HTTP listener serves plain http:// (keep it on loopback)"
        )
    } else {
        over_ldap(&args)?
    };
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        serde_json::to_string_pretty(&snap)? + "\n"
    } else {
        screen(&snap)
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    }
    if !warnings(&snap).is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// `GET /status` from the operators' listener.
fn over_http(url: &str) -> anyhow::Result<Snapshot> {
    let uri: hyper::Uri = format!("{}/status", url.trim_end_matches('/'))
        .parse()
        .map_err(|e| anyhow::anyhow!("--server {url}: {e}"))?;
    let host = uri.host().unwrap_or("127.0.0.1").to_string();
    let port = uri.port_u16().unwrap_or(80);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = rt.block_on(async {
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        let stream = tokio::time::timeout(std::time::Duration::from_secs(10), connect)
            .await
            .map_err(|_| anyhow::anyhow!("{url}: no answer within 10 s"))?
            .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::get(uri.clone())
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let answer =
            tokio::time::timeout(std::time::Duration::from_secs(30), send.send_request(req))
                .await
                .map_err(|_| anyhow::anyhow!("{uri}: no answer within 30 s"))??;
        let code = answer.status();
        let bytes = answer.into_body().collect().await?.to_bytes();
        if !code.is_success() {
            anyhow::bail!("{uri}: {code}: {}", String::from_utf8_lossy(&bytes).trim());
        }
        Ok::<_, anyhow::Error>(bytes)
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url}/status is not a ONE Pages status: {e}"))
}

/// Reads `cn=Monitor` (administrators) and puts the figures back together.
fn over_ldap(args: &StatusArgs) -> anyhow::Result<Snapshot> {
    let (mut conn, _) = args.online.connect(&args.common)?;
    let (entries, _) = conn
        .search(
            crate::ops::search::monitor::MONITOR_DN,
            ldap3::Scope::Subtree,
            "(objectClass=*)",
            vec!["*", "+"],
        )?
        .success()
        .map_err(|e| anyhow::anyhow!("reading cn=Monitor: {e}"))?;
    let _ = conn.unbind();
    let entries: Vec<ldap3::SearchEntry> = entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .collect();
    Ok(from_monitor(&entries))
}

/// The snapshot `cn=Monitor` was built from, as far as its entries tell.
fn from_monitor(entries: &[ldap3::SearchEntry]) -> Snapshot {
    let by_dn: BTreeMap<String, &ldap3::SearchEntry> = entries
        .iter()
        .map(|e| (e.dn.to_ascii_lowercase(), e))
        .collect();
    let first = |dn: &str, attr: &str| -> Option<String> {
        by_dn
            .get(&dn.to_ascii_lowercase())
            .and_then(|e| e.attrs.get(attr))
            .and_then(|v| v.first())
            .cloned()
    };
    let n =
        |dn: &str, attr: &str| -> u64 { first(dn, attr).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let count = |cn: &str| n(cn, "monitorCounter");
    let time = |dn: &str| {
        first(dn, "monitorTimestamp")
            .and_then(|t| crate::directory::matching::generalized_seconds(&t))
            .unwrap_or(0)
    };
    let db = "cn=Database 1,cn=Databases,cn=Monitor";
    let mut s = Snapshot {
        version: first("cn=Monitor", "monitoredInfo")
            .map(|v| v.trim_start_matches("ONE Pages ").to_string())
            .unwrap_or_default(),
        started: time("cn=Start,cn=Time,cn=Monitor"),
        now: time("cn=Current,cn=Time,cn=Monitor"),
        uptime_secs: count("cn=Uptime,cn=Time,cn=Monitor"),
        naming_context: first(db, "namingContexts").unwrap_or_default(),
        connections_total: count("cn=Total,cn=Connections,cn=Monitor"),
        operations_last_minute: count("cn=Operations Last Minute,cn=Statistics,cn=Monitor"),
        failed_binds_last_hour: count("cn=Failed Binds Last Hour,cn=Statistics,cn=Monitor"),
        entries_returned: count("cn=Entries,cn=Statistics,cn=Monitor"),
        searches_scanned: count("cn=Scanned Searches,cn=Statistics,cn=Monitor"),
        entries: count(&format!("cn=Entries,{db}")),
        index_lag: count(&format!("cn=Index Lag,{db}")),
        ..Snapshot::default()
    };
    let c = &mut s.census;
    c.people = count(&format!("cn=People,{db}"));
    c.contacts = count(&format!("cn=Contacts,{db}"));
    c.services = count(&format!("cn=Services,{db}"));
    c.other = count(&format!("cn=Other,{db}"));
    c.secure = count(&format!("cn=Secure,{db}"));
    c.not_secure = count(&format!("cn=Not Secure,{db}"));
    c.tombstones = count(&format!("cn=Tombstones,{db}"));
    c.store_bytes = count(&format!("cn=Store Bytes,{db}"));
    for t in ["plain", "tls"] {
        let cn = if t == "tls" { "Tls" } else { "Plain" };
        s.connections_open.insert(
            t.into(),
            count(&format!("cn={cn},cn=Connections,cn=Monitor")),
        );
    }
    for e in entries {
        let dn = e.dn.to_ascii_lowercase();
        let cn = e
            .attrs
            .get("cn")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        if let Some(parent) = dn.split_once(',').map(|(_, p)| p) {
            match parent {
                "cn=operations,cn=monitor" => {
                    s.operations.insert(
                        cn.to_ascii_lowercase(),
                        OpCount {
                            initiated: n(&e.dn, "monitorOpInitiated"),
                            completed: n(&e.dn, "monitorOpCompleted"),
                        },
                    );
                }
                "cn=statistics,cn=monitor" => {
                    if let Some(outcome) = cn.strip_prefix("Binds ") {
                        s.binds.insert(outcome.into(), n(&e.dn, "monitorCounter"));
                    }
                }
                "cn=connections,cn=monitor" => {
                    if let Some(limit) = cn.strip_prefix("Refused ") {
                        s.connections_refused
                            .insert(limit.into(), n(&e.dn, "monitorCounter"));
                    }
                }
                "cn=listeners,cn=monitor" => {
                    if let Some(u) = first(&e.dn, "labeledURI") {
                        s.listeners.push(u);
                    }
                }
                _ => {}
            }
        }
    }
    let run = |cn: &str| -> Option<RunNote> {
        let dn = format!("cn={cn},cn=Runs,cn=Monitor");
        let info = first(&dn, "monitoredInfo")?;
        let (ok, rest) = if let Some(r) = info.strip_prefix("ok: ") {
            (true, r)
        } else {
            (false, info.strip_prefix("stopped: ")?)
        };
        let (summary, by) = match rest.rsplit_once(" (by ") {
            Some((s, b)) => (s.to_string(), b.trim_end_matches(')').to_string()),
            None => (rest.to_string(), String::new()),
        };
        Some(RunNote {
            finished: time(&dn),
            ok,
            by,
            summary,
            ..RunNote::default()
        })
    };
    s.last_import = run("Last Import");
    s.last_dormant = run("Last Dormant Run");
    if let Some(subject) = first("cn=Certificate,cn=TLS,cn=Monitor", "monitoredInfo") {
        s.certificate = Some(Certificate {
            subject,
            not_after: time("cn=Certificate,cn=TLS,cn=Monitor"),
        });
    }
    if let Some(info) = first("cn=Import Running,cn=Runs,cn=Monitor", "monitoredInfo") {
        s.import = Some(crate::metrics::ImportNow {
            state: info.split_whitespace().next().unwrap_or("running").into(),
            file: info,
            ..Default::default()
        });
    }
    s
}

/// `2 h 05 min`, `3 d 4 h`.
fn duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} min {} s", secs % 60),
        (0, _) => format!("{h} h {m:02} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// `2026-12-02 18:04 UTC`.
fn when(secs: i64) -> String {
    let (y, mo, d, h, mi, _) = crate::directory::matching::civil_from_seconds(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

fn bytes(n: u64) -> String {
    match n {
        0..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

/// What a person should act on.
pub fn warnings(s: &Snapshot) -> Vec<String> {
    let mut w = Vec::new();
    if s.index_lag > 0 {
        w.push(format!(
            "the search index is {} entries behind the store (not ready)",
            s.index_lag
        ));
    }
    if let Some(c) = &s.certificate {
        let days = (c.not_after - s.now).div_euclid(86_400);
        if days < 0 {
            w.push(format!(
                "the TLS certificate EXPIRED on {}",
                when(c.not_after)
            ));
        } else if days < CERT_WARN_DAYS {
            w.push(format!(
                "the TLS certificate expires in {days} days ({}): renew it, then send the \
                 server SIGHUP",
                when(c.not_after)
            ));
        }
    }
    if s.last_import.as_ref().is_some_and(|i| !i.ok) {
        w.push("the last import stopped before its end (see below)".into());
    }
    w
}

/// The one screen.
pub fn screen(s: &Snapshot) -> String {
    let mut o = String::new();
    let mut line = |label: &str, text: String| {
        o.push_str(&format!("{label:<17}{text}\n"));
    };
    line(
        "ONE Pages",
        format!(
            "{} serving {}, up {} (since {})",
            s.version,
            s.naming_context,
            duration(s.uptime_secs),
            when(s.started)
        ),
    );
    if !s.listeners.is_empty() {
        line("Listeners", s.listeners.join("  "));
    }
    let c = &s.census;
    line(
        "Entries",
        format!(
            "{} ({} people, {} contacts, {} services, {} other; {} secure, {} not secure)",
            s.entries, c.people, c.contacts, c.services, c.other, c.secure, c.not_secure
        ),
    );
    line(
        "Tombstones",
        format!("{} waiting to be purged", c.tombstones),
    );
    line(
        "Store, index",
        format!(
            "{} on disk; index {}",
            bytes(c.store_bytes),
            if s.index_lag == 0 {
                "caught up (ready)".to_string()
            } else {
                format!("{} entries behind (not ready)", s.index_lag)
            }
        ),
    );
    let open: u64 = s.connections_open.values().sum();
    let refused: u64 = s.connections_refused.values().sum();
    line(
        "Connections",
        format!(
            "{open} open ({} plain, {} TLS); {} since the start, {refused} refused by a limit",
            s.connections_open.get("plain").copied().unwrap_or(0),
            s.connections_open.get("tls").copied().unwrap_or(0),
            s.connections_total
        ),
    );
    let total: u64 = s.operations.values().map(|c| c.completed).sum();
    let mut busiest: Vec<(&String, &OpCount)> = s
        .operations
        .iter()
        .filter(|(_, c)| c.completed > 0)
        .collect();
    busiest.sort_by_key(|(_, c)| std::cmp::Reverse(c.completed));
    let parts: Vec<String> = busiest
        .iter()
        .take(5)
        .map(|(op, c)| format!("{op} {}", c.completed))
        .collect();
    line(
        "Operations",
        format!(
            "{:.1}/s over the last minute ({}); {total} since the start{}",
            s.operations_last_minute as f64 / 60.0,
            s.operations_last_minute,
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        ),
    );
    let bind = |k: &str| s.binds.get(k).copied().unwrap_or(0);
    line(
        "Failed binds",
        format!(
            "{} in the last hour; since the start {} wrong password, {} locked, {} refused, {} \
             succeeded",
            s.failed_binds_last_hour,
            bind("invalid_credentials"),
            bind("locked"),
            bind("refused"),
            bind("success")
        ),
    );
    line(
        "Scanned searches",
        format!(
            "{} (searches the index could not narrow)",
            s.searches_scanned
        ),
    );
    line(
        "Import",
        match &s.import {
            None => "none under way".into(),
            Some(i) if i.total_bytes > 0 => format!(
                "{} {}: {} read, {} written, {} refused ({}%)",
                i.state,
                i.file,
                i.records,
                i.written,
                i.refused,
                i.bytes * 100 / i.total_bytes
            ),
            Some(i) => format!(
                "{} {}: {} read, {} written, {} refused",
                i.state, i.file, i.records, i.written, i.refused
            ),
        },
    );
    let run = |r: &Option<RunNote>| match r {
        None => "none yet".to_string(),
        Some(n) => format!(
            "{}, {}: {}{}",
            when(n.finished),
            if n.ok { "ok" } else { "STOPPED" },
            n.summary,
            if n.by.is_empty() {
                String::new()
            } else {
                format!(" (by {})", n.by)
            }
        ),
    };
    line("Last import", run(&s.last_import));
    line("Last policy run", run(&s.last_dormant));
    line(
        "TLS certificate",
        match &s.certificate {
            None => "none (no TLS configured)".into(),
            Some(c) => format!(
                "{}, expires {} (in {} days)",
                c.subject,
                when(c.not_after),
                (c.not_after - s.now).div_euclid(86_400)
            ),
        },
    );
    for w in warnings(s) {
        o.push_str(&format!("WARNING: {w}\n"));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            version: "0.1.0".into(),
            naming_context: "dc=x".into(),
            started: 1_764_700_000,
            now: 1_764_700_000 + 7_500,
            uptime_secs: 7_500,
            entries: 320,
            operations_last_minute: 90,
            failed_binds_last_hour: 4,
            ..Snapshot::default()
        };
        s.operations.insert(
            "search".into(),
            OpCount {
                initiated: 10,
                completed: 9,
            },
        );
        s
    }

    #[test]
    fn the_screen_says_what_a_person_asks() {
        let mut s = snapshot();
        let text = screen(&s);
        assert!(text.contains("up 2 h 05 min"), "{text}");
        assert!(
            text.contains("1.5/s over the last minute (90); 9 since the start (search 9)"),
            "{text}"
        );
        assert!(text.contains("4 in the last hour"), "{text}");
        assert!(text.contains("Last import      none yet"), "{text}");
        assert!(!text.contains("WARNING"), "{text}");
        s.certificate = Some(Certificate {
            subject: "CN=pages".into(),
            not_after: s.now + 20 * 86_400 + 5,
        });
        s.index_lag = 3;
        let text = screen(&s);
        assert!(text.contains("expires in 20 days"), "{text}");
        assert!(text.contains("3 entries behind"), "{text}");
        assert_eq!(warnings(&s).len(), 2);
        s.certificate = Some(Certificate {
            subject: "CN=pages".into(),
            not_after: s.now + 21 * 86_400,
        });
        s.index_lag = 0;
        assert!(warnings(&s).is_empty(), "{:?}", warnings(&s));
    }
}
