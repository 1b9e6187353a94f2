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

use bytes::BytesMut;
use clap::{Parser, ValueEnum};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapMsg, LdapOp, LdapSearchRequest,
    LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use onepages::directory::filter_text::{escape_filter_value as escape, parse_filter};
use onepages::protocol::encode::{int_bytes, put_tlv};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::codec::Encoder;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Workload {
    MailEq,
    /// a sender's client fetching a recipient's certificates: `(mail=x)` of people who publish
    /// one (`cert` lines), asking for `userSMIMECertificate userCertificate;binary` as Outlook does
    CertLookup,
    /// the same look-up asking for both with the binary option,
    /// `userSMIMECertificate;binary userCertificate;binary` (slapd allows `;binary` only on the
    /// certificate syntaxes: it answers with `userCertificate` alone)
    CertLookupBinary,
    /// Outlook's ANR template with the `(mail=*)` conjunct (Exchange-style GAL)
    Outlook,
    /// the same prefix OR without the `(mail=*)` conjunct (CLIENTS.md §2's other template)
    OutlookNoMail,
    Thunderbird,
    ConnectBind,
    /// connect-bind as users whose passwords are stored as argon2id
    ConnectBindArgon2,
    /// connect-bind over LDAPS (an ldaps:// --url): a full TLS handshake per connection
    ConnectBindTls,
    Browse,
    Dump,
    /// replace `telephoneNumber` and `title` of a random person (bind as an administrator)
    Modify,
    /// add a new person, then delete it: two writes per request (bind as an administrator)
    AddDelete,
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
    /// The ordering rule the browse workload's sort key names (e.g. 2.5.13.3,
    /// caseIgnoreOrderingMatch, for a slapd whose cn has no ORDERING rule); none by default,
    /// as Outlook sends
    #[arg(long)]
    sort_rule: Option<String>,
    /// Issue at most this many requests per second over all connections (0 = as fast as
    /// the server answers): a steady writer beside a read load
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Prefix users' ONE IDs with this to bind (connect-bind): "" binds with the bare ONE ID,
    /// "dn" binds with uid=<ONE ID>,ou=people,<base>
    #[arg(long, default_value = "dn")]
    bind_form: String,
    /// Print one tab-separated line without a header
    #[arg(long)]
    tsv: bool,
    /// CA certificate (PEM) that signed the server's, for ldaps:// URLs
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Also write, per second of the run, the requests begun in it and their p50 / p99 (ms),
    /// tab-separated: where in a run its slow requests were
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

/// The TLS client configuration for ldaps:// URLs: the given CA only, and no session
/// resumption, so that every connection pays a full handshake as a new client process does.
fn tls_config(args: &Args) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    let Some(path) = &args.ca_file else {
        return Ok(None);
    };
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Some(Arc::new(config)))
}

/// Built once in `main`.
static TLS: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> = std::sync::OnceLock::new();

fn tls() -> Option<&'static Arc<rustls::ClientConfig>> {
    TLS.get().and_then(Option::as_ref)
}

/// A byte stream to the server: plain TCP or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

struct Queries {
    prefixes: Vec<String>,
    mails: Vec<String>,
    certs: Vec<String>,
    binds: Vec<(String, String)>,
    argon2_binds: Vec<(String, String)>,
}

fn load_queries(path: &std::path::Path) -> anyhow::Result<Queries> {
    let text = std::fs::read_to_string(path)?;
    let mut q = Queries {
        prefixes: Vec::new(),
        mails: Vec::new(),
        certs: Vec::new(),
        binds: Vec::new(),
        argon2_binds: Vec::new(),
    };
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["prefix", p] => q.prefixes.push((*p).to_string()),
            ["mail", m] => q.mails.push((*m).to_string()),
            ["cert", m] => q.certs.push((*m).to_string()),
            ["bind", u, p] => q.binds.push(((*u).to_string(), (*p).to_string())),
            ["bind-argon2", u, p] => q.argon2_binds.push(((*u).to_string(), (*p).to_string())),
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
    /// The second of the run each request of `latencies_us` began in.
    begun_s: Vec<u32>,
    entries: u64,
    errors: u64,
}

fn pick<T>(items: &[T], n: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok()?;
    if len == 0 {
        return None;
    }
    items.get(usize::try_from(n % len).ok()?)
}

// ---------------------------------------------------------------------------------------------
// A lean LDAP client. Requests are encoded with ldap3_proto; responses are only framed and
// their envelopes read (message ID, operation tag, result code, the controls the workloads
// need), so that the load generator spends as little of the shared CPU as possible and both
// servers are measured with the same small client cost per entry.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 6);
    put_tlv(&mut v, tag, content);
    v
}

fn int(n: i64) -> Vec<u8> {
    tlv(0x02, &int_bytes(n))
}

fn control(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut c = tlv(0x04, oid.as_bytes());
    if critical {
        c.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    c.extend(tlv(0x04, value));
    tlv(0x30, &c)
}

fn sort_vlv_controls(offset: i64, before: i64, after: i64, rule: Option<&str>) -> Vec<u8> {
    let mut key = tlv(0x04, b"cn");
    if let Some(rule) = rule {
        // orderingRule [0]: for a server whose cn has no ORDERING rule (slapd).
        key.extend(tlv(0x80, rule.as_bytes()));
    }
    let sort = control("1.2.840.113556.1.4.473", true, &tlv(0x30, &tlv(0x30, &key)));
    let target = tlv(0xa0, &[int(offset), int(0)].concat());
    let vlv = control(
        "2.16.840.1.113730.3.4.9",
        true,
        &tlv(0x30, &[int(before), int(after), target].concat()),
    );
    [sort, vlv].concat()
}

fn paged_control(size: i64, cookie: &[u8]) -> Vec<u8> {
    control(
        "1.2.840.113556.1.4.319",
        false,
        &tlv(0x30, &[int(size), tlv(0x04, cookie)].concat()),
    )
}

/// One BER element inside `buf` at `pos`: (tag, content range, next position).
fn element(buf: &[u8], pos: usize) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let tag = *buf.get(pos)?;
    let first = *buf.get(pos + 1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), pos + 2)
    } else {
        let n = usize::from(first & 0x7f);
        let bytes = buf.get(pos + 2..pos + 2 + n)?;
        (
            bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
            pos + 2 + n,
        )
    };
    let end = start.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    Some((tag, start..end, end))
}

fn integer(bytes: &[u8]) -> i64 {
    let init = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    bytes.iter().fold(init, |a, b| (a << 8) | i64::from(*b))
}

/// A response: operation tag, result code (for result messages) and raw controls.
struct Response {
    op: u8,
    rc: i64,
    controls: Vec<(String, Vec<u8>)>,
}

struct Client {
    stream: BufReader<Box<dyn Io>>,
    next_id: i32,
    buf: Vec<u8>,
    out: BytesMut,
}

impl Client {
    async fn connect(url: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> anyhow::Result<Client> {
        let (addr, secure) = match (url.strip_prefix("ldap://"), url.strip_prefix("ldaps://")) {
            (Some(a), _) => (a, false),
            (None, Some(a)) => (a, true),
            (None, None) => anyhow::bail!("only ldap:// and ldaps:// URLs are supported: {url}"),
        };
        let addr = addr.trim_end_matches('/');
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = if secure {
            let config = tls.ok_or_else(|| anyhow::anyhow!("ldaps:// needs --ca-file"))?;
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls_pki_types::ServerName::try_from(host.to_string())?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            Box::new(connector.connect(name, tcp).await?)
        } else {
            Box::new(tcp)
        };
        Ok(Client {
            stream: BufReader::with_capacity(64 * 1024, stream),
            next_id: 0,
            buf: Vec::with_capacity(4096),
            out: BytesMut::with_capacity(512),
        })
    }

    /// Sends one operation with optional raw controls (already encoded Control elements).
    async fn send(&mut self, op: LdapOp, controls: &[u8]) -> anyhow::Result<i32> {
        self.next_id += 1;
        let id = self.next_id;
        self.out.clear();
        LdapCodec::default().encode(LdapMsg::new(id, op), &mut self.out)?;
        if controls.is_empty() {
            self.stream.get_mut().write_all(&self.out).await?;
        } else {
            let (_, body, _) = element(&self.out, 0)
                .ok_or_else(|| anyhow::anyhow!("cannot re-frame the request"))?;
            let mut inner = self.out.get(body).unwrap_or_default().to_vec();
            inner.extend(tlv(0xa0, controls));
            self.stream.get_mut().write_all(&tlv(0x30, &inner)).await?;
        }
        Ok(id)
    }

    /// Reads one message into `self.buf` and returns its operation tag and content range.
    async fn read(&mut self) -> anyhow::Result<(u8, std::ops::Range<usize>, usize)> {
        let tag = self.stream.read_u8().await?;
        anyhow::ensure!(tag == 0x30, "not an LDAPMessage (tag {tag:#x})");
        let first = self.stream.read_u8().await?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let mut len = 0usize;
            for _ in 0..(first & 0x7f) {
                len = (len << 8) | usize::from(self.stream.read_u8().await?);
            }
            len
        };
        anyhow::ensure!(len <= 64 << 20, "message of {len} bytes");
        self.buf.resize(len, 0);
        self.stream.read_exact(&mut self.buf).await?;
        let (_, _, after_id) =
            element(&self.buf, 0).ok_or_else(|| anyhow::anyhow!("no message ID"))?;
        let (op, body, after_op) =
            element(&self.buf, after_id).ok_or_else(|| anyhow::anyhow!("no operation"))?;
        Ok((op, body, after_op))
    }

    /// Reads until the result of the outstanding request; counts entries on the way.
    async fn result(&mut self, entries: &mut u64) -> anyhow::Result<Response> {
        loop {
            let (op, body, after_op) = self.read().await?;
            match op {
                0x64 => *entries += 1,
                0x73 => {}
                _ => {
                    let rc = element(&self.buf, body.start)
                        .and_then(|(_, r, _)| self.buf.get(r))
                        .map(integer)
                        .unwrap_or(-1);
                    let mut controls = Vec::new();
                    if let Some((0xa0, list, _)) = element(&self.buf, after_op) {
                        let mut pos = list.start;
                        while let Some((_, c, next)) = element(&self.buf, pos) {
                            if next > list.end {
                                break;
                            }
                            let (_, oid, mut p) = element(&self.buf, c.start)
                                .ok_or_else(|| anyhow::anyhow!("bad control"))?;
                            let oid =
                                String::from_utf8_lossy(self.buf.get(oid).unwrap_or_default())
                                    .into_owned();
                            let mut value = Vec::new();
                            while let Some((t, r, n)) = element(&self.buf, p) {
                                if n > c.end {
                                    break;
                                }
                                if t == 0x04 {
                                    value = self.buf.get(r).unwrap_or_default().to_vec();
                                }
                                p = n;
                            }
                            controls.push((oid, value));
                            pos = next;
                        }
                    }
                    return Ok(Response { op, rc, controls });
                }
            }
        }
    }

    async fn bind(&mut self, dn: &str, password: &str) -> anyhow::Result<()> {
        self.send(
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: dn.to_string(),
                cred: LdapBindCred::Simple(password.to_string()),
            }),
            &[],
        )
        .await?;
        let r = self.result(&mut 0).await?;
        anyhow::ensure!(
            r.op == 0x61 && r.rc == 0,
            "bind failed: result code {}",
            r.rc
        );
        Ok(())
    }

    async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[&str],
        size_limit: i32,
        controls: &[u8],
        entries: &mut u64,
    ) -> anyhow::Result<Response> {
        let filter = parse_filter(filter).map_err(|e| anyhow::anyhow!("{filter}: {e}"))?;
        self.send(
            LdapOp::SearchRequest(LdapSearchRequest {
                base: base.to_string(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Always,
                sizelimit: size_limit,
                timelimit: 0,
                typesonly: false,
                filter,
                attrs: attrs.iter().map(|a| (*a).to_string()).collect(),
            }),
            controls,
        )
        .await?;
        self.result(entries).await
    }

    /// Sends a write and reads its result code.
    async fn write(&mut self, op: LdapOp) -> anyhow::Result<i64> {
        self.send(op, &[]).await?;
        Ok(self.result(&mut 0).await?.rc)
    }

    async fn unbind(mut self) -> anyhow::Result<()> {
        self.send(LdapOp::UnbindRequest, &[]).await?;
        self.stream.get_mut().shutdown().await?;
        Ok(())
    }
}

async fn connect(args: &Args) -> anyhow::Result<Client> {
    let mut c = Client::connect(&args.url, tls()).await?;
    if let Some(dn) = &args.bind_dn {
        c.bind(dn, &args.password).await?;
    }
    Ok(c)
}

/// Reads the content count from a VLV response control.
fn vlv_count(r: &Response) -> Option<i64> {
    let (_, v) = r
        .controls
        .iter()
        .find(|(oid, _)| oid == "2.16.840.1.113730.3.4.10")?;
    let (_, seq, _) = element(v, 0)?;
    let (_, _, next) = element(v, seq.start)?;
    let (_, count, _) = element(v, next)?;
    Some(integer(v.get(count)?))
}

/// The cookie of a paged-results response control (empty when the search is complete).
fn paged_cookie(r: &Response) -> Vec<u8> {
    let Some((_, v)) = r
        .controls
        .iter()
        .find(|(oid, _)| oid == "1.2.840.113556.1.4.319")
    else {
        return Vec::new();
    };
    element(v, 0)
        .and_then(|(_, seq, _)| element(v, seq.start))
        .and_then(|(_, _, next)| element(v, next))
        .and_then(|(_, c, _)| v.get(c).map(<[u8]>::to_vec))
        .unwrap_or_default()
}

const OUTLOOK_ATTRS: [&str; 6] = [
    "cn",
    "mail",
    "company",
    "department",
    "title",
    "telephoneNumber",
];

async fn one_request(
    args: &Args,
    q: &Queries,
    client: &mut Option<Client>,
    n: u64,
    stats: &mut Stats,
    browse_count: &AtomicU64,
) -> anyhow::Result<()> {
    let mut entries = 0u64;
    if matches!(
        args.workload,
        Workload::ConnectBind | Workload::ConnectBindArgon2 | Workload::ConnectBindTls
    ) {
        let users = if args.workload != Workload::ConnectBindArgon2 {
            &q.binds
        } else {
            &q.argon2_binds
        };
        let Some((uid, pw)) = pick(users, n) else {
            anyhow::bail!("the queries file has no bind lines for this workload");
        };
        let who = if args.bind_form == "dn" {
            format!("uid={},ou=people,{}", uid, args.base)
        } else {
            uid.clone()
        };
        let mut c = Client::connect(&args.url, tls()).await?;
        c.bind(&who, pw).await?;
        let mail = pick(&q.mails, n).cloned().unwrap_or_default();
        let f = format!("(mail={})", escape(&mail));
        let r = c
            .search(&args.base, &f, &["cn", "mail"], 0, &[], &mut entries)
            .await?;
        anyhow::ensure!(r.rc == 0, "result code {}", r.rc);
        c.unbind().await?;
        stats.entries += entries;
        return Ok(());
    }
    if client.is_none() {
        *client = Some(connect(args).await?);
    }
    let Some(c) = client.as_mut() else {
        return Ok(());
    };
    let rc = match args.workload {
        Workload::MailEq => {
            let mail = pick(&q.mails, n).cloned().unwrap_or_default();
            let f = format!("(mail={})", escape(&mail));
            c.search(&args.base, &f, &["cn", "mail", "o"], 0, &[], &mut entries)
                .await?
                .rc
        }
        Workload::CertLookup | Workload::CertLookupBinary => {
            let Some(mail) = pick(&q.certs, n).cloned() else {
                anyhow::bail!("the queries file has no cert lines (generate --certificates-every)");
            };
            let f = format!("(mail={})", escape(&mail));
            let smime = if args.workload == Workload::CertLookup {
                "userSMIMECertificate"
            } else {
                "userSMIMECertificate;binary"
            };
            let attrs = [smime, "userCertificate;binary"];
            c.search(&args.base, &f, &attrs, 0, &[], &mut entries)
                .await?
                .rc
        }
        Workload::Outlook => {
            let p = escape(pick(&q.prefixes, n).map(String::as_str).unwrap_or("a"));
            let f = format!("(&(mail=*)(|(mail={p}*)(|(cn={p}*)(|(sn={p}*)(givenName={p}*)))))");
            c.search(&args.base, &f, &OUTLOOK_ATTRS, 100, &[], &mut entries)
                .await?
                .rc
        }
        Workload::OutlookNoMail => {
            let p = escape(pick(&q.prefixes, n).map(String::as_str).unwrap_or("a"));
            let f = format!("(|(mail={p}*)(|(cn={p}*)(|(sn={p}*)(givenName={p}*))))");
            c.search(&args.base, &f, &OUTLOOK_ATTRS, 100, &[], &mut entries)
                .await?
                .rc
        }
        Workload::Modify => {
            use ldap3_proto::proto::{
                LdapModify, LdapModifyRequest, LdapModifyType, LdapPartialAttribute,
            };
            let Some((uid, _)) = pick(&q.binds, n) else {
                anyhow::bail!("the queries file has no bind lines");
            };
            let replace = |atype: &str, v: String| LdapModify {
                operation: LdapModifyType::Replace,
                modification: LdapPartialAttribute {
                    atype: atype.into(),
                    vals: vec![v.into_bytes()],
                },
            };
            let phone = format!("+1 416 555 {:04}", n % 10_000);
            c.write(LdapOp::ModifyRequest(LdapModifyRequest {
                dn: format!("uid={uid},ou=people,{}", args.base),
                changes: vec![
                    replace("telephoneNumber", phone),
                    replace("title", format!("Clinician grade {}", n % 97)),
                ],
            }))
            .await?
        }
        Workload::AddDelete => {
            use ldap3_proto::proto::LdapPartialAttribute as A;
            let who = format!("load.{}.{n}", std::process::id());
            let dn = format!("uid={who}@oneid.on.ca,ou=people,{}", args.base);
            let attr = |atype: &str, vals: &[&str]| A {
                atype: atype.into(),
                vals: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
            };
            let mail = format!("{who}@one-mail.on.ca");
            let uid = format!("{who}@oneid.on.ca");
            let rc = c
                .write(LdapOp::AddRequest(ldap3_proto::proto::LdapAddRequest {
                    dn: dn.clone(),
                    attributes: vec![
                        attr(
                            "objectClass",
                            &["top", "person", "organizationalPerson", "inetOrgPerson"],
                        ),
                        attr("uid", &[&uid]),
                        attr("cn", &[&format!("Load {n}")]),
                        attr("sn", &["Load"]),
                        attr("givenName", &["Test"]),
                        attr("mail", &[&mail]),
                        attr("o", &["Load Test Clinic"]),
                    ],
                }))
                .await?;
            if rc != 0 {
                anyhow::bail!("add: result code {rc}");
            }
            c.write(LdapOp::DelRequest(dn)).await?
        }
        Workload::Thunderbird => {
            let p = escape(
                &pick(&q.prefixes, n)
                    .map(|s| s.to_lowercase())
                    .unwrap_or_default(),
            );
            let f = format!("(|(cn=*{p}*)(mail=*{p}*)(givenName=*{p}*)(sn=*{p}*))");
            c.search(&args.base, &f, &[], 100, &[], &mut entries)
                .await?
                .rc
        }
        Workload::Browse => {
            let known = browse_count.load(Ordering::Relaxed);
            let offset = if known > 20 {
                1 + (n.wrapping_mul(2_654_435_761) % (known - 20))
            } else {
                1
            };
            let controls = sort_vlv_controls(
                i64::try_from(offset).unwrap_or(1),
                0,
                19,
                args.sort_rule.as_deref(),
            );
            let r = c
                .search(
                    &args.base,
                    "(objectClass=inetOrgPerson)",
                    &["cn", "mail"],
                    0,
                    &controls,
                    &mut entries,
                )
                .await?;
            if let Some(count) = vlv_count(&r) {
                browse_count.store(u64::try_from(count).unwrap_or(0), Ordering::Relaxed);
            }
            r.rc
        }
        Workload::Dump => {
            let mut cookie = Vec::new();
            loop {
                let r = c
                    .search(
                        &args.base,
                        "(objectClass=*)",
                        &["*"],
                        0,
                        &paged_control(500, &cookie),
                        &mut entries,
                    )
                    .await?;
                cookie = paged_cookie(&r);
                if r.rc != 0 || cookie.is_empty() {
                    break r.rc;
                }
            }
        }
        Workload::ConnectBind | Workload::ConnectBindArgon2 | Workload::ConnectBindTls => 0,
    };
    stats.entries += entries;
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

/// One line per second of the run: the second, requests begun in it, their p50 and p99 (ms).
fn write_timeline(path: &std::path::Path, stats: &Stats) -> anyhow::Result<()> {
    let mut by_second: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for (second, latency) in stats.begun_s.iter().zip(&stats.latencies_us) {
        by_second.entry(*second).or_default().push(*latency);
    }
    let mut out = String::from("second\trequests\tp50_ms\tp99_ms\n");
    for (second, mut latencies) in by_second {
        latencies.sort_unstable();
        out.push_str(&format!(
            "{second}\t{}\t{:.2}\t{:.2}\n",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99)
        ));
    }
    std::fs::write(path, out)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.workload == Workload::ConnectBindTls && !args.url.starts_with("ldaps://") {
        anyhow::bail!("connect-bind-tls needs an ldaps:// --url (and --ca-file)");
    }
    let _ = TLS.set(tls_config(&args)?);
    let queries = Arc::new(load_queries(&args.queries)?);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let browse_count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // With --rate: the request slots, one every 1/rate s from the start, taken in turn.
    let slots = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let (args, queries, issued, stop, browse_count, slots) = (
            Arc::clone(&args),
            Arc::clone(&queries),
            Arc::clone(&issued),
            Arc::clone(&stop),
            Arc::clone(&browse_count),
            Arc::clone(&slots),
        );
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut ldap: Option<Client> = None;
            let mut n = u64::try_from(worker).unwrap_or(0).wrapping_mul(7919);
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let k = issued.fetch_add(1, Ordering::Relaxed);
                if args.max_requests > 0 && k >= args.max_requests {
                    break;
                }
                n = n.wrapping_add(1);
                if let Some(gap) = 1_000_000_000u64.checked_div(args.rate) {
                    let slot = slots.fetch_add(1, Ordering::Relaxed);
                    let at = started + Duration::from_nanos(slot.saturating_mul(gap));
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                let t = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    one_request(&args, &queries, &mut ldap, n, &mut stats, &browse_count),
                )
                .await
                {
                    Ok(Ok(())) => {
                        stats
                            .latencies_us
                            .push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                        let second = t.saturating_duration_since(started).as_secs();
                        stats
                            .begun_s
                            .push(u32::try_from(second).unwrap_or(u32::MAX));
                    }
                    failed => {
                        // The first few failures of each connection are said, so that a
                        // run's error count can be explained.
                        if stats.errors < 3 {
                            match failed {
                                Ok(Err(e)) => eprintln!("connection {worker}: request {n}: {e:#}"),
                                _ => {
                                    eprintln!("connection {worker}: request {n}: no answer in 30 s")
                                }
                            }
                        }
                        stats.errors += 1;
                        ldap = None;
                    }
                }
            }
            if let Some(l) = ldap {
                let _ = l.unbind().await;
            }
            stats
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        let s = t.await?;
        all.latencies_us.extend(s.latencies_us);
        all.begun_s.extend(s.begun_s);
        all.entries += s.entries;
        all.errors += s.errors;
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &args.timeline {
        write_timeline(path, &all)?;
    }
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
