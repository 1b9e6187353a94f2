//! `onepages-load`: drives any LDAP server with the address-book workloads and reports
//! throughput and latency percentiles. Bounded in time and requests; loopback only by default.
//!
//! ```text
//! onepages-load --url ldap://127.0.0.1:3389 --bind-dn DN --password PW --queries q.tsv \
//!     --workload outlook --connections 8 --seconds 10
//! ```
//! The queries file is what `onepages generate --queries` writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ldap3::controls::RawControl;
use ldap3::{DerefAliases, Ldap, LdapConnAsync, Scope, SearchOptions};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Workload {
    MailEq,
    Outlook,
    Thunderbird,
    ConnectBind,
    Browse,
    Dump,
}

#[derive(Debug, Parser)]
#[command(name = "onepages-load", about = "Address-book load for LDAP servers")]
struct Args {
    #[arg(long, default_value = "ldap://127.0.0.1:3389")]
    url: String,
    /// Bind DN for the search workloads (connect-bind binds as the users of the queries file)
    #[arg(long)]
    bind_dn: Option<String>,
    #[arg(long, default_value = "")]
    password: String,
    #[arg(long, default_value = "dc=one-mail,dc=on,dc=ca")]
    base: String,
    /// Query terms (`onepages generate --queries`)
    #[arg(long)]
    queries: std::path::PathBuf,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests in all (0 = only the time bound)
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// Prefix users' ONE IDs with this to bind (connect-bind): "" binds with the bare ONE ID,
    /// "dn" binds with uid=<ONE ID>,ou=people,<base>
    #[arg(long, default_value = "dn")]
    bind_form: String,
    /// Print one tab-separated line without a header
    #[arg(long)]
    tsv: bool,
}

struct Queries {
    prefixes: Vec<String>,
    mails: Vec<String>,
    binds: Vec<(String, String)>,
}

fn load_queries(path: &std::path::Path) -> anyhow::Result<Queries> {
    let text = std::fs::read_to_string(path)?;
    let mut q = Queries {
        prefixes: Vec::new(),
        mails: Vec::new(),
        binds: Vec::new(),
    };
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["prefix", p] => q.prefixes.push((*p).to_string()),
            ["mail", m] => q.mails.push((*m).to_string()),
            ["bind", u, p] => q.binds.push(((*u).to_string(), (*p).to_string())),
            _ => {}
        }
    }
    if q.prefixes.is_empty() || q.mails.is_empty() || q.binds.is_empty() {
        anyhow::bail!("{}: needs prefix, mail and bind lines", path.display());
    }
    Ok(q)
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    entries: u64,
    errors: u64,
}

fn escape(s: &str) -> String {
    ldap3::ldap_escape(s).into_owned()
}

fn pick<T>(items: &[T], n: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok()?;
    if len == 0 {
        return None;
    }
    items.get(usize::try_from(n % len).ok()?)
}

async fn connect(args: &Args) -> anyhow::Result<Ldap> {
    let (conn, mut ldap) = LdapConnAsync::new(&args.url).await?;
    ldap3::drive!(conn);
    if let Some(dn) = &args.bind_dn {
        ldap.simple_bind(dn, &args.password).await?.success()?;
    }
    Ok(ldap)
}

fn vlv_control(offset: i64, before: i64, after: i64) -> Vec<RawControl> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, u8::try_from(content.len()).unwrap_or(0)];
        v.extend_from_slice(content);
        v
    }
    fn int(n: i64) -> Vec<u8> {
        let b = n.to_be_bytes();
        let mut s = 0;
        while s < 7
            && ((b.get(s) == Some(&0) && b.get(s + 1).is_some_and(|x| x & 0x80 == 0))
                || (b.get(s) == Some(&0xff) && b.get(s + 1).is_some_and(|x| x & 0x80 != 0)))
        {
            s += 1;
        }
        tlv(0x02, b.get(s..).unwrap_or_default())
    }
    let sort = RawControl {
        ctype: "1.2.840.113556.1.4.473".into(),
        crit: true,
        val: Some(tlv(0x30, &tlv(0x30, &tlv(0x04, b"cn")))),
    };
    let target = tlv(0xa0, &[int(offset), int(0)].concat());
    let vlv = RawControl {
        ctype: "2.16.840.1.113730.3.4.9".into(),
        crit: true,
        val: Some(tlv(0x30, &[int(before), int(after), target].concat())),
    };
    vec![sort, vlv]
}

/// Reads the content count from a VLV response control.
fn vlv_count(res: &ldap3::LdapResult) -> Option<i64> {
    let c = res
        .ctrls
        .iter()
        .find(|c| c.1.ctype == "2.16.840.1.113730.3.4.10")?;
    let v = c.1.val.as_ref()?;
    // SEQUENCE { INTEGER targetPosition, INTEGER contentCount, ... } with short lengths.
    let mut i = 2;
    let mut ints = Vec::new();
    while ints.len() < 2 {
        let len = usize::from(*v.get(i + 1)?);
        let bytes = v.get(i + 2..i + 2 + len)?;
        ints.push(bytes.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b)));
        i += 2 + len;
    }
    ints.get(1).copied()
}

async fn one_request(
    args: &Args,
    q: &Queries,
    ldap: &mut Option<Ldap>,
    n: u64,
    stats: &mut Stats,
    browse_count: &AtomicU64,
) -> anyhow::Result<()> {
    let outlook_opts = || {
        SearchOptions::new()
            .sizelimit(100)
            .deref(DerefAliases::Always)
    };
    if args.workload == Workload::ConnectBind {
        {
            let Some((uid, pw)) = pick(&q.binds, n) else {
                return Ok(());
            };
            let who = if args.bind_form == "dn" {
                format!("uid={},ou=people,{}", uid, args.base)
            } else {
                uid.clone()
            };
            let (conn, mut l) = LdapConnAsync::new(&args.url).await?;
            ldap3::drive!(conn);
            l.simple_bind(&who, pw).await?.success()?;
            let mail = pick(&q.mails, n).cloned().unwrap_or_default();
            let (rs, _) = l
                .search(
                    &args.base,
                    Scope::Subtree,
                    &format!("(mail={})", escape(&mail)),
                    vec!["cn", "mail"],
                )
                .await?
                .success()?;
            stats.entries += u64::try_from(rs.len()).unwrap_or(0);
            l.unbind().await?;
            return Ok(());
        }
    }
    if ldap.is_none() {
        *ldap = Some(connect(args).await?);
    }
    let Some(l) = ldap.as_mut() else {
        return Ok(());
    };
    let (count, rc) = match args.workload {
        Workload::MailEq => {
            let mail = pick(&q.mails, n).cloned().unwrap_or_default();
            let r = l
                .search(
                    &args.base,
                    Scope::Subtree,
                    &format!("(mail={})", escape(&mail)),
                    vec!["cn", "mail", "o"],
                )
                .await?;
            (r.0.len(), r.1.rc)
        }
        Workload::Outlook => {
            let p = escape(pick(&q.prefixes, n).map(String::as_str).unwrap_or("a"));
            let f = format!("(&(mail=*)(|(mail={p}*)(|(cn={p}*)(|(sn={p}*)(givenName={p}*)))))");
            let r = l
                .with_search_options(outlook_opts())
                .search(
                    &args.base,
                    Scope::Subtree,
                    &f,
                    vec![
                        "cn",
                        "mail",
                        "company",
                        "department",
                        "title",
                        "telephoneNumber",
                    ],
                )
                .await?;
            (r.0.len(), r.1.rc)
        }
        Workload::Thunderbird => {
            let p = escape(
                &pick(&q.prefixes, n)
                    .map(|s| s.to_lowercase())
                    .unwrap_or_default(),
            );
            let f = format!("(|(cn=*{p}*)(mail=*{p}*)(givenName=*{p}*)(sn=*{p}*))");
            let r = l
                .with_search_options(SearchOptions::new().sizelimit(100))
                .search(&args.base, Scope::Subtree, &f, Vec::<&str>::new())
                .await?;
            (r.0.len(), r.1.rc)
        }
        Workload::Browse => {
            let known = browse_count.load(Ordering::Relaxed);
            let offset = if known > 20 {
                1 + (n.wrapping_mul(2_654_435_761) % (known - 20))
            } else {
                1
            };
            let r = l
                .with_controls(vlv_control(i64::try_from(offset).unwrap_or(1), 0, 19))
                .search(
                    &args.base,
                    Scope::Subtree,
                    "(objectClass=inetOrgPerson)",
                    vec!["cn", "mail"],
                )
                .await?;
            if let Some(c) = vlv_count(&r.1) {
                browse_count.store(u64::try_from(c).unwrap_or(0), Ordering::Relaxed);
            }
            (r.0.len(), r.1.rc)
        }
        Workload::Dump => {
            let mut total = 0usize;
            let mut stream = l
                .streaming_search_with(
                    ldap3::adapters::PagedResults::new(500),
                    &args.base,
                    Scope::Subtree,
                    "(objectClass=*)",
                    vec!["*"],
                )
                .await?;
            while let Some(_e) = stream.next().await? {
                total += 1;
            }
            let res = stream.finish().await;
            (total, res.rc)
        }
        Workload::ConnectBind => (0, 0),
    };
    stats.entries += u64::try_from(count).unwrap_or(0);
    if rc != 0 && rc != 4 {
        anyhow::bail!("result code {rc}");
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or(0) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let queries = Arc::new(load_queries(&args.queries)?);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let browse_count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let (args, queries, issued, stop, browse_count) = (
            Arc::clone(&args),
            Arc::clone(&queries),
            Arc::clone(&issued),
            Arc::clone(&stop),
            Arc::clone(&browse_count),
        );
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut ldap: Option<Ldap> = None;
            let mut n = u64::try_from(worker).unwrap_or(0).wrapping_mul(7919);
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let k = issued.fetch_add(1, Ordering::Relaxed);
                if args.max_requests > 0 && k >= args.max_requests {
                    break;
                }
                n = n.wrapping_add(1);
                let t = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    one_request(&args, &queries, &mut ldap, n, &mut stats, &browse_count),
                )
                .await
                {
                    Ok(Ok(())) => stats
                        .latencies_us
                        .push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)),
                    _ => {
                        stats.errors += 1;
                        ldap = None;
                    }
                }
            }
            if let Some(mut l) = ldap {
                let _ = l.unbind().await;
            }
            stats
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        let s = t.await?;
        all.latencies_us.extend(s.latencies_us);
        all.entries += s.entries;
        all.errors += s.errors;
    }
    let secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let ops = all.latencies_us.len();
    let name = format!("{:?}", args.workload).to_lowercase();
    let line = format!(
        "{name}\t{}\t{ops}\t{:.0}\t{:.0}\t{:.2}\t{:.2}\t{:.2}\t{}",
        args.connections,
        ops as f64 / secs,
        all.entries as f64 / secs,
        percentile(&all.latencies_us, 0.50),
        percentile(&all.latencies_us, 0.95),
        percentile(&all.latencies_us, 0.99),
        all.errors
    );
    if !args.tsv {
        println!("workload\tconns\tops\tops/s\tentries/s\tp50_ms\tp95_ms\tp99_ms\terrors");
    }
    println!("{line}");
    Ok(())
}
