//! Configuration: defaults < TOML file < `ONEPAGES_*` environment < command-line flags.
//!
//! The three sources are merged as TOML tables and deserialised once into [`RawConfig`], which
//! rejects unknown keys (a typo must not silently fall back to a default), then checked into
//! [`Settings`], the only form the rest of the server sees. An environment variable
//! `ONEPAGES_SIZE_LIMIT=500` sets the key `size_limit`; its value is read as TOML when it
//! parses as such (numbers, booleans, lists) and as a string otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::directory::dn::Dn;
use crate::directory::filter::FilterLimits;
use crate::directory::password::Argon2Cost;

pub const DEFAULT_SUFFIX: &str = "dc=one-mail,dc=on,dc=ca";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3389";
/// sled's page cache when `store_cache_mib` is not set, for the offline commands: an import
/// walks the whole DN tree (at 1,000,000 entries, 8 MiB made it 8 % slower).
pub const OFFLINE_STORE_CACHE_MIB: u64 = 32;
/// The same for `serve`, which answers reads from its in-memory copy of the entries: the
/// cache then only serves a write's DN and child look-ups (at 100,000 entries, 8 MiB instead
/// of 32 lowered the peak after the write workloads by 28 MB, at the same write speed).
pub const SERVING_STORE_CACHE_MIB: u64 = 8;

/// Attributes the configuration may let people change on their own entries. Nothing that
/// names, routes mail, marks security or grants rights is in it.
pub const SELF_SERVICE_ALLOWED: &[&str] = &[
    "telephoneNumber",
    "mobile",
    "pager",
    "facsimileTelephoneNumber",
];

/// Attributes that get prefix and substring terms by default: the ones address books search.
pub const DEFAULT_SUBSTRING_ATTRIBUTES: &[&str] = &[
    "cn",
    "sn",
    "givenName",
    "displayName",
    "mail",
    "uid",
    "o",
    "ou",
    "company",
    "department",
    "title",
    "telephoneNumber",
    "mobile",
    "l",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub suffix: Option<String>,
    pub schema_dir: Option<PathBuf>,
    pub anonymous_read: Option<bool>,
    pub admins: Option<Vec<String>>,
    pub max_pdu_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub output_timeout_secs: Option<u64>,
    pub first_request_timeout_secs: Option<u64>,
    pub max_connections_per_ip: Option<usize>,
    pub size_limit: Option<usize>,
    pub time_limit_secs: Option<u64>,
    pub max_filter_depth: Option<usize>,
    pub max_filter_elements: Option<usize>,
    pub substring_attributes: Option<Vec<String>>,
    pub argon2: Option<Argon2Cost>,
    pub secure_domains: Option<Vec<String>>,
    pub insecure_marker: Option<String>,
    pub store_cache_mib: Option<u64>,
    pub bind_cache_secs: Option<u64>,
    pub bind_cache_entries: Option<usize>,
    pub self_service_attributes: Option<Vec<String>>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub ldaps_listen: Option<String>,
    pub http_listen: Option<String>,
    pub index_commit_ms: Option<u64>,
    pub sorted_lists_keep_secs: Option<u64>,
    pub cleartext_binds: Option<String>,
    pub allow_unauthenticated_bind: Option<bool>,
    pub lockout_failures: Option<u32>,
    pub lockout_window_secs: Option<u64>,
    pub lockout_secs: Option<u64>,
    pub tombstone_days: Option<u32>,
    pub never_used_days: Option<u32>,
    pub inactive_days: Option<u32>,
    pub dormant_policy: Option<String>,
    pub record_sign_ins: Option<bool>,
    pub sign_in_precision_secs: Option<u64>,
    pub address_failures: Option<u32>,
    pub address_window_secs: Option<u64>,
    pub hash_concurrency: Option<usize>,
    pub audit_log: Option<String>,
    pub access_log: Option<String>,
    pub oneid_domain: Option<String>,
    pub search_work_limit: Option<u64>,
    pub read_budget_per_minute: Option<u64>,
    pub max_searches_per_connection: Option<usize>,
    pub max_stalled_searches: Option<usize>,
    pub role_limits: Option<std::collections::BTreeMap<String, LimitOverride>>,
    pub identity_limits: Option<std::collections::BTreeMap<String, LimitOverride>>,
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The naming context, as configured (display form).
    pub suffix: String,
    pub schema_dir: Option<PathBuf>,
    pub anonymous_read: bool,
    /// DNs with write access besides entries carrying `onePagesRole: admin`.
    pub admins: Vec<String>,
    pub limits: Limits,
    pub substring_attributes: Vec<String>,
    pub argon2: Argon2Cost,
    /// Mail domains that are secure by configuration (the service's own domain at least);
    /// entries under `ou=domains,<suffix>` add more at run time.
    pub secure_domains: Vec<String>,
    /// The domain of ONE ID usernames: a person's `uid` is `local@` this domain.
    pub oneid_domain: String,
    /// Search limits for particular identities (DN as configured), over their role's.
    pub identity_limits: Vec<(String, LimitOverride)>,
    /// Appended to the names Outlook shows for entries that are not secure; `None` = off.
    pub insecure_marker: Option<String>,
    /// sled's page cache, bytes. A serving process reads entries from its own in-memory copy,
    /// so this cache only serves DN, key and child look-ups and writes.
    pub store_cache_bytes: u64,
    /// Whether `store_cache_mib` was set (otherwise `serve` takes
    /// [`SERVING_STORE_CACHE_MIB`] instead of the offline commands' default).
    pub store_cache_set: bool,
    /// How long a successful bind against a slow hash (argon2id, crypt) is remembered in
    /// memory (0 = never); see `directory::password::VerifiedCache`.
    pub bind_cache_ttl: Duration,
    pub bind_cache_entries: usize,
    /// Attributes a person may change on its own entry, besides its password (canonical
    /// names; only contact numbers are allowed here, see [`SELF_SERVICE_ALLOWED`]).
    pub self_service_attributes: std::sync::Arc<[String]>,
    /// The server's certificate chain and key (PEM), when it offers TLS.
    pub tls: Option<TlsFiles>,
    /// Where LDAPS (LDAP over TLS from the first byte) is served; needs `tls`.
    pub ldaps_listen: Option<SocketAddr>,
    /// Where the operators' HTTP endpoints (`/healthz`, `/readyz`, `/metrics`) are served.
    pub http_listen: Option<SocketAddr>,
    /// How long the indexer gathers changes into one commit (`index_commit_ms`, 100 ms):
    /// longer costs less per write, and searches stay exact meanwhile (changed entries are
    /// read from the store), but `/readyz` reports the lag until the commit.
    pub index_commit_window: Duration,
    /// How often a serving process writes its sorted lists to disk when they changed
    /// (`sorted_lists_keep_secs`, 30 s; `None` = only at a clean shutdown): after a crash, a
    /// kept list is brought forward with the changes since instead of built again.
    pub sorted_lists_keep_every: Option<Duration>,
    /// Where simple binds with a password may come over a connection without TLS.
    pub cleartext_binds: CleartextBinds,
    /// Whether a bind with a name and no password (RFC 4513 §5.1.2) is taken as anonymous
    /// instead of refused.
    pub allow_unauthenticated_bind: bool,
    /// When repeated wrong passwords lock an account, and repeated failures from one address
    /// are refused.
    pub lockout: LockoutPolicy,
    /// Slow password checks (argon2id, crypt) running at once; the others wait their turn
    /// without holding a thread.
    pub hash_concurrency: usize,
    /// Where the audit trail (one JSON line per bind, write, lockout, unlock, refusal) goes.
    pub audit_log: Option<LogTarget>,
    /// Where the access log (one line per operation, like slapd's `stats`) goes.
    pub access_log: Option<LogTarget>,
    /// The wall clock of time-dependent rules (tests move it; see [`crate::clock`]).
    pub clock: crate::clock::Clock,
    /// How long a deleted entry is kept for restore (0: deletes are final).
    pub tombstone_days: u32,
    /// The dormant-account rules and how sign-ins are recorded.
    pub dormancy: Dormancy,
}

/// The service's dormant-account policy (see `policy::dormant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dormancy {
    /// An account nobody ever signed in to is removed (as a tombstone) once it is older than
    /// this (0: never).
    pub never_used_days: u32,
    /// An account with no sign-in for longer than this is disabled (0: never).
    pub inactive_days: u32,
    /// What the server does with the rules each day.
    pub mode: DormantMode,
    /// Whether a successful bind records the sign-in.
    pub record_sign_ins: bool,
    /// A sign-in is recorded when the last one recorded is at least this old (OpenLDAP
    /// lastbind's `lastbind_precision`): one write a day for a user binding all day.
    pub sign_in_precision: Duration,
    /// How often a server runs the rules (a day; the first run comes ten minutes after
    /// start-up, or sooner when this is shorter: tests).
    pub every: Duration,
}

/// `dormant_policy`: what the server's daily run of the rules does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DormantMode {
    /// Logs what the rules would do (the default).
    Report,
    /// Disables and removes as the rules say.
    Apply,
    /// Does not run them (`onepages dormant` still does).
    Off,
}

/// Lockout after repeated wrong passwords (OpenLDAP ppolicy's pwdMaxFailure,
/// pwdFailureCountInterval and pwdLockoutDuration), and the per-address brake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Wrong passwords within `window` that lock the account (0 = never locked).
    pub failures: u32,
    pub window: Duration,
    /// How long a locked account stays locked (zero = until an administrator unlocks it).
    pub duration: Duration,
    /// Failed binds from one address within `address_window` after which that address's
    /// binds are refused without a look-up, whatever the account (0 = no limit).
    pub address_failures: u32,
    pub address_window: Duration,
}

/// A log destination: a file (created 0600, appended to) or standard error (`-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    File(PathBuf),
}

impl LogTarget {
    fn parse(key: &str, text: &str) -> Result<Option<LogTarget>, ConfigError> {
        match text.trim() {
            "" => Err(ConfigError::Invalid(format!(
                "{key} is empty: give a file path, or - for standard error"
            ))),
            "-" => Ok(Some(LogTarget::Stderr)),
            path => Ok(Some(LogTarget::File(PathBuf::from(path)))),
        }
    }
}

/// `cleartext_binds`: where a password may travel without TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleartextBinds {
    /// Only from this machine (127.0.0.0/8, ::1): the default.
    Loopback,
    /// Nowhere: every password bind needs TLS.
    Never,
    /// From anywhere (a network that is itself encrypted).
    Allow,
}

impl CleartextBinds {
    /// Whether a password bind from `peer` over a connection without TLS is accepted.
    pub fn allows(self, peer: Option<std::net::IpAddr>) -> bool {
        match self {
            CleartextBinds::Allow => true,
            CleartextBinds::Never => false,
            CleartextBinds::Loopback => peer.is_some_and(|ip| match ip {
                std::net::IpAddr::V4(v4) => v4.is_loopback(),
                std::net::IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            }),
        }
    }
}

/// PEM files of a certificate chain and its private key (RSA, ECDSA or Ed25519).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request PDU accepted; a larger one ends the connection.
    pub max_pdu_bytes: usize,
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Once the first byte of a request has arrived, the whole request must within this.
    pub request_timeout: Duration,
    /// A write to a client that makes no progress for this long (it does not read its
    /// results) closes the connection.
    pub output_timeout: Duration,
    /// A new connection must have sent its first whole request within this.
    pub first_request_timeout: Duration,
    /// Connections one address may hold at once (loopback included).
    pub max_connections_per_ip: usize,
    /// What one search may take, by role.
    pub roles: RoleLimits,
    /// Searches one connection may run at once; its further requests wait, unread.
    pub max_searches_per_connection: usize,
    /// Searches of the whole server that may wait at once for clients that do not read
    /// (each holds a thread); one per connection.
    pub max_stalled_searches: usize,
    pub filter: FilterLimits,
}

/// What one search may take: the same for plain, paged and VLV reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchLimits {
    /// Entries per search, or per VLV window (0 = none).
    pub size_limit: usize,
    /// How long a search may run.
    pub time_limit: Duration,
    /// Work units a search may spend: each entry it examines costs one plus its filter's
    /// evaluation cost (approximate matches cost most; see `Filter::cost`). 0 = none.
    pub work_limit: u64,
    /// Entries an identity may read per minute over all its searches and connections
    /// (0 = no budget).
    pub read_budget_per_minute: u64,
}

/// Search limits for each role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleLimits {
    pub reader: SearchLimits,
    pub user: SearchLimits,
    pub admin: SearchLimits,
}

/// Limits given to one identity (by DN), over its role's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub size_limit: Option<usize>,
    pub time_limit_secs: Option<u64>,
    pub search_work_limit: Option<u64>,
    pub read_budget_per_minute: Option<u64>,
}

impl LimitOverride {
    /// `base` with what this override sets.
    pub fn over(&self, base: SearchLimits) -> SearchLimits {
        SearchLimits {
            size_limit: self.size_limit.unwrap_or(base.size_limit),
            time_limit: self
                .time_limit_secs
                .map_or(base.time_limit, Duration::from_secs),
            work_limit: self.search_work_limit.unwrap_or(base.work_limit),
            read_budget_per_minute: self
                .read_budget_per_minute
                .unwrap_or(base.read_budget_per_minute),
        }
    }
}

/// Default work units per search: a scan of a million entries with a twenty-branch
/// substring filter stays well inside; a thousand approximate branches over the directory
/// does not.
pub const DEFAULT_SEARCH_WORK_LIMIT: u64 = 100_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Values given on the command line (the last layer).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub suffix: Option<String>,
}

impl Settings {
    /// Loads and checks the configuration from its sources.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Settings::load_from(file, &env, overrides)
    }

    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let text = match file {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.display().to_string(), e))?,
            )),
            None => None,
        };
        let file = text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
        Settings::load_from_text(file, env, overrides)
    }

    /// Like [`Settings::load_from`], with the file's name and text already read.
    pub fn load_from_text(
        file: Option<(&str, &str)>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let mut table = toml::Table::new();
        if let Some((name, text)) = file {
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse(name.to_string(), e.to_string()))?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("ONEPAGES_") else {
                continue;
            };
            if matches!(key, "CONFIG" | "LOG" | "PASSWORD") {
                continue;
            }
            let key = key.to_ascii_lowercase();
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            table.insert(key, parsed);
        }
        if let Some(d) = &overrides.data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(d.display().to_string()),
            );
        }
        if let Some(l) = &overrides.listen {
            table.insert("listen".into(), toml::Value::String(l.clone()));
        }
        if let Some(s) = &overrides.suffix {
            table.insert("suffix".into(), toml::Value::String(s.clone()));
        }
        let raw: RawConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    ConfigError::Parse("configuration".into(), e.to_string())
                })?;
        Settings::check(raw)
    }

    fn check(raw: RawConfig) -> Result<Settings, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid(format!("listen = '{listen_text}' is not HOST:PORT")))?;
        let suffix = raw.suffix.unwrap_or_else(|| DEFAULT_SUFFIX.to_string());
        let parsed = Dn::parse(&suffix).map_err(|e| invalid(format!("suffix: {e}")))?;
        if parsed.is_root() {
            return Err(invalid("suffix must not be empty".into()));
        }
        for a in raw.admins.iter().flatten() {
            Dn::parse(a).map_err(|e| invalid(format!("admins: {e}")))?;
        }
        let max_pdu_bytes = raw.max_pdu_bytes.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&max_pdu_bytes) {
            return Err(invalid(
                "max_pdu_bytes must be between 1024 and 67108864".into(),
            ));
        }
        let max_connections = raw.max_connections.unwrap_or(4096);
        if max_connections == 0 {
            return Err(invalid("max_connections must be at least 1".into()));
        }
        let mut secure_domains: Vec<String> = raw
            .secure_domains
            .unwrap_or_else(|| vec![crate::directory::SERVICE_DOMAIN.to_string()])
            .into_iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect();
        for d in &mut secure_domains {
            if let Some(why) = crate::directory::values::domain_problem(d) {
                return Err(invalid(format!("secure_domains: {why}")));
            }
            if let Some(listed) = crate::directory::values::public_webmail(d) {
                return Err(invalid(format!(
                    "secure_domains: {d} is a public webmail domain (listed as {listed}); if \
                     it must be secure, register it with `onepages domains add {d} --force \
                     --reason \"...\"`, which records why"
                )));
            }
            if let Ok(ascii) = crate::directory::values::domain_ascii(d) {
                *d = ascii;
            }
        }
        secure_domains.sort();
        secure_domains.dedup();
        let insecure_marker = raw.insecure_marker.filter(|m| !m.is_empty());
        let argon2 = raw.argon2.unwrap_or_default();
        if argon2.memory_kib < 8 * argon2.parallelism.max(1) || argon2.iterations == 0 {
            return Err(invalid("argon2: memory_kib or iterations too small".into()));
        }
        let store_cache_mib = raw.store_cache_mib.unwrap_or(OFFLINE_STORE_CACHE_MIB);
        if !(4..=65536).contains(&store_cache_mib) {
            return Err(invalid(
                "store_cache_mib must be between 4 and 65536".into(),
            ));
        }
        let bind_cache_secs = raw.bind_cache_secs.unwrap_or(600);
        if bind_cache_secs > 86_400 {
            return Err(invalid(
                "bind_cache_secs must be at most 86400 (one day)".into(),
            ));
        }
        let mut self_service = Vec::new();
        for a in raw.self_service_attributes.unwrap_or_default() {
            let Some(name) = SELF_SERVICE_ALLOWED
                .iter()
                .find(|n| n.eq_ignore_ascii_case(a.trim()))
            else {
                return Err(invalid(format!(
                    "self_service_attributes: '{a}' cannot be changed by its owner; allowed: {}",
                    SELF_SERVICE_ALLOWED.join(", ")
                )));
            };
            self_service.push((*name).to_string());
        }
        let tls = match (raw.tls_cert_file, raw.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "tls_cert_file and tls_key_file go together: give both or neither".into(),
                ))
            }
        };
        let address =
            |key: &str, text: Option<String>| -> Result<Option<SocketAddr>, ConfigError> {
                text.map(|t| {
                    t.parse::<SocketAddr>()
                        .map_err(|_| invalid(format!("{key} = '{t}' is not HOST:PORT")))
                })
                .transpose()
            };
        let ldaps_listen = address("ldaps_listen", raw.ldaps_listen)?;
        let http_listen = address("http_listen", raw.http_listen)?;
        let index_commit_window = match raw.index_commit_ms.unwrap_or(100) {
            ms @ 1..=60_000 => Duration::from_millis(ms),
            ms => {
                return Err(invalid(format!(
                    "index_commit_ms = {ms}: use 1 to 60000 (milliseconds)"
                )))
            }
        };
        let sorted_lists_keep_every = match raw.sorted_lists_keep_secs.unwrap_or(30) {
            0 => None,
            secs @ 1..=86_400 => Some(Duration::from_secs(secs)),
            secs => {
                return Err(invalid(format!(
                    "sorted_lists_keep_secs = {secs}: use 0 (only at shutdown) to 86400 (seconds)"
                )))
            }
        };
        let cleartext_binds = match raw.cleartext_binds.as_deref().map(str::trim) {
            None | Some("loopback") => CleartextBinds::Loopback,
            Some("never") => CleartextBinds::Never,
            Some("allow") => CleartextBinds::Allow,
            Some(other) => {
                return Err(invalid(format!(
                    "cleartext_binds = '{other}': use \"loopback\", \"never\" or \"allow\""
                )))
            }
        };
        let request_timeout_secs = raw.request_timeout_secs.unwrap_or(30);
        let first_request_timeout_secs = raw.first_request_timeout_secs.unwrap_or(10);
        if request_timeout_secs == 0 || first_request_timeout_secs == 0 {
            return Err(invalid(
                "request_timeout_secs and first_request_timeout_secs must be at least 1".into(),
            ));
        }
        let max_connections_per_ip = raw.max_connections_per_ip.unwrap_or(256);
        if max_connections_per_ip == 0 {
            return Err(invalid("max_connections_per_ip must be at least 1".into()));
        }
        let lockout_failures = raw.lockout_failures.unwrap_or(5);
        let lockout_window_secs = raw.lockout_window_secs.unwrap_or(900);
        let address_window_secs = raw.address_window_secs.unwrap_or(300);
        if lockout_window_secs == 0 || address_window_secs == 0 {
            return Err(invalid(
                "lockout_window_secs and address_window_secs must be at least 1".into(),
            ));
        }
        let lockout = LockoutPolicy {
            failures: lockout_failures,
            window: Duration::from_secs(lockout_window_secs),
            duration: Duration::from_secs(raw.lockout_secs.unwrap_or(900)),
            address_failures: raw.address_failures.unwrap_or(50),
            address_window: Duration::from_secs(address_window_secs),
        };
        let hash_concurrency = raw
            .hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        if !(1..=1024).contains(&hash_concurrency) {
            return Err(invalid(
                "hash_concurrency must be between 1 and 1024".into(),
            ));
        }
        let audit_log = match raw.audit_log {
            Some(t) => LogTarget::parse("audit_log", &t)?,
            None => None,
        };
        let access_log = match raw.access_log {
            Some(t) => LogTarget::parse("access_log", &t)?,
            None => None,
        };
        let oneid_domain = raw
            .oneid_domain
            .unwrap_or_else(|| crate::directory::ONE_ID_DOMAIN.to_string())
            .trim()
            .to_ascii_lowercase();
        if let Some(why) = crate::directory::values::domain_problem(&oneid_domain) {
            return Err(invalid(format!("oneid_domain: {why}")));
        }
        let person = SearchLimits {
            size_limit: raw.size_limit.unwrap_or(1000),
            time_limit: Duration::from_secs(raw.time_limit_secs.unwrap_or(60)),
            work_limit: raw.search_work_limit.unwrap_or(DEFAULT_SEARCH_WORK_LIMIT),
            read_budget_per_minute: raw.read_budget_per_minute.unwrap_or(0),
        };
        let mut roles = RoleLimits {
            reader: person,
            user: person,
            // Administrators export and repair: no size cap, ten minutes.
            admin: SearchLimits {
                size_limit: 0,
                time_limit: Duration::from_secs(600),
                ..person
            },
        };
        for (role, o) in raw.role_limits.unwrap_or_default() {
            let slot = match role.as_str() {
                "reader" => &mut roles.reader,
                "user" => &mut roles.user,
                "admin" => &mut roles.admin,
                other => {
                    return Err(invalid(format!(
                        "role_limits.{other}: the roles are reader, user and admin"
                    )))
                }
            };
            *slot = o.over(*slot);
        }
        let mut identity_limits = Vec::new();
        for (dn, o) in raw.identity_limits.unwrap_or_default() {
            Dn::parse(&dn).map_err(|e| invalid(format!("identity_limits: '{dn}': {e}")))?;
            identity_limits.push((dn, o));
        }
        let max_searches_per_connection = raw.max_searches_per_connection.unwrap_or(8);
        if !(1..=256).contains(&max_searches_per_connection) {
            return Err(invalid(
                "max_searches_per_connection must be between 1 and 256".into(),
            ));
        }
        let max_stalled_searches = raw.max_stalled_searches.unwrap_or(128);
        if !(1..=400).contains(&max_stalled_searches) {
            // tokio's blocking pool holds 512 threads: the rest stay for everyone else.
            return Err(invalid(
                "max_stalled_searches must be between 1 and 400".into(),
            ));
        }
        let mode = match raw.dormant_policy.as_deref().map(str::trim) {
            None | Some("report") => DormantMode::Report,
            Some("apply") => DormantMode::Apply,
            Some("off") => DormantMode::Off,
            Some(other) => {
                return Err(invalid(format!(
                    "dormant_policy = '{other}': use \"report\", \"apply\" or \"off\""
                )))
            }
        };
        let dormancy = Dormancy {
            never_used_days: raw.never_used_days.unwrap_or(183),
            inactive_days: raw.inactive_days.unwrap_or(396),
            mode,
            record_sign_ins: raw.record_sign_ins.unwrap_or(true),
            sign_in_precision: Duration::from_secs(raw.sign_in_precision_secs.unwrap_or(86_400)),
            every: Duration::from_secs(86_400),
        };
        if dormancy.inactive_days > 0
            && (dormancy.inactive_days as u64) * 86_400 < dormancy.sign_in_precision.as_secs()
        {
            return Err(invalid(
                "sign_in_precision_secs is longer than inactive_days: active users would \
                 look dormant"
                    .into(),
            ));
        }
        Ok(Settings {
            dormancy,
            oneid_domain,
            identity_limits,
            lockout,
            hash_concurrency,
            audit_log,
            access_log,
            clock: crate::clock::Clock::system(),
            tombstone_days: raw.tombstone_days.unwrap_or(30),
            tls,
            ldaps_listen,
            http_listen,
            index_commit_window,
            sorted_lists_keep_every,
            cleartext_binds,
            allow_unauthenticated_bind: raw.allow_unauthenticated_bind.unwrap_or(false),
            self_service_attributes: self_service.into(),
            store_cache_bytes: store_cache_mib * 1024 * 1024,
            store_cache_set: raw.store_cache_mib.is_some(),
            bind_cache_ttl: Duration::from_secs(bind_cache_secs),
            bind_cache_entries: if bind_cache_secs == 0 {
                0
            } else {
                raw.bind_cache_entries.unwrap_or(100_000)
            },
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from("onepages-data")),
            listen,
            suffix: parsed.to_string(),
            schema_dir: raw.schema_dir,
            anonymous_read: raw.anonymous_read.unwrap_or(false),
            admins: raw.admins.unwrap_or_default(),
            limits: Limits {
                max_pdu_bytes,
                max_connections,
                idle_timeout: Duration::from_secs(raw.idle_timeout_secs.unwrap_or(900)),
                request_timeout: Duration::from_secs(request_timeout_secs),
                output_timeout: Duration::from_secs(raw.output_timeout_secs.unwrap_or(10).max(1)),
                first_request_timeout: Duration::from_secs(first_request_timeout_secs),
                max_connections_per_ip,
                roles,
                max_searches_per_connection,
                max_stalled_searches,
                filter: FilterLimits {
                    max_depth: raw.max_filter_depth.unwrap_or(32),
                    max_elements: raw.max_filter_elements.unwrap_or(1024),
                },
            },
            substring_attributes: raw.substring_attributes.unwrap_or_else(|| {
                DEFAULT_SUBSTRING_ATTRIBUTES
                    .iter()
                    .map(|s| (*s).to_string())
                    .collect()
            }),
            argon2,
            secure_domains,
            insecure_marker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("onepages.toml");
        std::fs::write(
            &file,
            "size_limit = 10\nlisten = \"127.0.0.1:1\"\nsuffix = \"dc=a\"\n",
        )
        .unwrap();
        let env = vec![
            ("ONEPAGES_SIZE_LIMIT".to_string(), "20".to_string()),
            ("ONEPAGES_ANONYMOUS_READ".to_string(), "true".to_string()),
            ("ONEPAGES_SUFFIX".to_string(), "dc=b".to_string()),
        ];
        let flags = Overrides {
            suffix: Some("dc=c".into()),
            ..Overrides::default()
        };
        let s = Settings::load_from(Some(&file), &env, &flags).unwrap();
        assert_eq!(s.limits.roles.reader.size_limit, 20);
        assert_eq!(s.limits.roles.user.size_limit, 20);
        assert_eq!(s.limits.roles.admin.size_limit, 0);
        assert!(s.anonymous_read);
        assert_eq!(s.suffix, "dc=c");
        assert_eq!(s.listen.port(), 1);
    }

    #[test]
    fn a_public_webmail_domain_is_not_secure_by_configuration() {
        for (value, says) in [
            ("[\"gmail.com\"]", "public webmail domain"),
            ("[\"one-mail\"]", "not a fully qualified"),
            ("[\"bücher.example\"]", ""),
        ] {
            let env = vec![("ONEPAGES_SECURE_DOMAINS".to_string(), value.to_string())];
            let r = Settings::load_from(None, &env, &Overrides::default());
            match r {
                Err(e) => assert!(!says.is_empty() && e.to_string().contains(says), "{e}"),
                Ok(s) => {
                    assert!(says.is_empty(), "{value}");
                    assert_eq!(s.secure_domains, ["xn--bcher-kva.example"]);
                }
            }
        }
        let env = vec![(
            "ONEPAGES_ONEID_DOMAIN".to_string(),
            "id.health.example".into(),
        )];
        let s = Settings::load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.oneid_domain, "id.health.example");
    }

    #[test]
    fn cleartext_binds_from_loopback_only_by_default() {
        let s = Settings::load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(s.cleartext_binds, CleartextBinds::Loopback);
        let ip = |t: &str| Some(t.parse::<std::net::IpAddr>().unwrap());
        for yes in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(CleartextBinds::Loopback.allows(ip(yes)), "{yes}");
        }
        for no in ["10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1"] {
            assert!(!CleartextBinds::Loopback.allows(ip(no)), "{no}");
        }
        assert!(!CleartextBinds::Loopback.allows(None));
        assert!(!CleartextBinds::Never.allows(ip("127.0.0.1")));
        assert!(CleartextBinds::Allow.allows(ip("10.0.0.5")));
        let env = vec![(
            "ONEPAGES_CLEARTEXT_BINDS".to_string(),
            "sometimes".to_string(),
        )];
        assert!(Settings::load_from(None, &env, &Overrides::default()).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let env = vec![("ONEPAGES_SIZE_LIMTI".to_string(), "20".to_string())];
        assert!(Settings::load_from(None, &env, &Overrides::default()).is_err());
        let env = vec![("ONEPAGES_LISTEN".to_string(), "nowhere".to_string())];
        assert!(Settings::load_from(None, &env, &Overrides::default()).is_err());
        let env = vec![("ONEPAGES_SUFFIX".to_string(), "cn".to_string())];
        assert!(Settings::load_from(None, &env, &Overrides::default()).is_err());
    }
}
