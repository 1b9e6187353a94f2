//! What operators measure: counters and histograms the session loop records, and the
//! directory's figures read when scraped, in the Prometheus exposition format
//! (`prometheus-client`). Recording is a label look-up and an atomic add.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
    pub code: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecureLabel {
    pub secure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

/// The LDAP operations, in the order `cn=Operations,cn=Monitor` lists them.
pub const OPERATIONS: [&str; 11] = [
    "bind", "unbind", "search", "compare", "modify", "modrdn", "add", "delete", "abandon",
    "extended", "unknown",
];

fn op_index(op: &str) -> usize {
    OPERATIONS
        .iter()
        .position(|o| *o == op)
        .unwrap_or(OPERATIONS.len() - 1)
}

/// Counts over a sliding window of 60 slots (seconds, or minutes): each slot holds the slot
/// number it counts for in its high half and the count in its low half, so a slot that comes
/// round again starts over without a lock.
struct Window {
    slots: [AtomicU64; 60],
    /// Seconds per slot.
    unit: u64,
}

impl Window {
    fn new(unit: u64) -> Window {
        Window {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            unit,
        }
    }

    fn add(&self, secs: u64) {
        let n = secs / self.unit;
        let stamp = n & 0xffff_ffff;
        let Some(slot) = self.slots.get((n % 60) as usize) else {
            return;
        };
        loop {
            let cur = slot.load(Ordering::Relaxed);
            if cur >> 32 == stamp {
                slot.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if slot
                .compare_exchange(cur, (stamp << 32) | 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The count over the last 60 slots, the current one included.
    fn sum(&self, secs: u64) -> u64 {
        let n = secs / self.unit;
        let oldest = n.saturating_sub(59) & 0xffff_ffff;
        let newest = n & 0xffff_ffff;
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|v| (oldest..=newest).contains(&(v >> 32)))
            .map(|v| v & 0xffff_ffff)
            .sum()
    }
}

/// Initiated and completed operations of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCount {
    pub initiated: u64,
    pub completed: u64,
}

/// An online import under way.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportNow {
    /// `receiving` or `running`.
    pub state: String,
    pub file: String,
    pub records: u64,
    pub written: u64,
    pub refused: u64,
    pub bytes: u64,
    pub total_bytes: u64,
}

/// The served certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    pub subject: String,
    /// Seconds since 1970.
    pub not_after: i64,
}

/// Everything an operator is shown, at one moment: the HTTP `/status` answer, the source of
/// `/metrics`' directory figures and of `cn=Monitor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: String,
    /// Seconds since 1970: when the server started, and now.
    pub started: i64,
    pub now: i64,
    pub uptime_secs: u64,
    /// The listeners' URLs (`ldap://127.0.0.1:389`, `http://...`).
    pub listeners: Vec<String>,
    pub naming_context: String,
    /// Open connections by transport (`plain`, `tls`).
    pub connections_open: BTreeMap<String, u64>,
    /// Connections accepted since the start.
    pub connections_total: u64,
    /// Connections refused by a limit, by limit.
    pub connections_refused: BTreeMap<String, u64>,
    /// Operations by kind (`bind`, `search`...).
    pub operations: BTreeMap<String, OpCount>,
    /// Operations answered in the last 60 seconds.
    pub operations_last_minute: u64,
    /// Binds by outcome since the start.
    pub binds: BTreeMap<String, u64>,
    /// Binds refused for a wrong password or a locked account in the last hour.
    pub failed_binds_last_hour: u64,
    pub entries_returned: u64,
    /// Subtree searches the index could not narrow.
    pub searches_scanned: u64,
    /// Entries in the directory, exact.
    pub entries: u64,
    /// The last census (kinds, secure, tombstones, store size), at most
    /// `dsa::census::CENSUS_MAX_AGE` old when the directory changes.
    pub census: crate::dsa::census::Census,
    /// Entries written but not yet searchable through the index.
    pub index_lag: u64,
    pub import: Option<ImportNow>,
    pub last_import: Option<crate::dsa::runs::RunNote>,
    pub last_dormant: Option<crate::dsa::runs::RunNote>,
    pub certificate: Option<Certificate>,
    pub resident_memory_bytes: u64,
}

/// Something that can take a [`Snapshot`] (the server; `cn=Monitor` reads it through this).
pub trait Observe: Send + Sync {
    /// Reads the directory (a census may scan it): call off the async threads.
    fn snapshot(&self) -> Snapshot;
}

/// Latency buckets: 0.1 ms doubling to 13 s (18 buckets).
/// Result codes whose counters are kept at hand (every code but the LCUP/cancel ones).
const HANDLED_CODES: usize = 128;

/// The series of one operation, each made on first use.
struct OpHandles {
    latency: std::sync::OnceLock<Histogram>,
    by_code: [std::sync::OnceLock<Counter>; HANDLED_CODES],
}

impl OpHandles {
    fn new() -> OpHandles {
        OpHandles {
            latency: std::sync::OnceLock::new(),
            by_code: std::array::from_fn(|_| std::sync::OnceLock::new()),
        }
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The server's own metrics (one per process, shared by every connection).
pub struct Metrics {
    started: Instant,
    operations: Family<OpLabels, Counter>,
    latency: Family<OpLabel, Histogram, fn() -> Histogram>,
    /// The series above once used, per operation (and result code below
    /// [`HANDLED_CODES`]): an answered operation then costs no label hashing and no lock of
    /// the family. Filled on first use, so `/metrics` lists only the series that occurred.
    handles: Box<[OpHandles]>,
    binds: Family<OutcomeLabel, Counter>,
    entries_returned: Counter,
    connections_open: Family<TransportLabel, Gauge>,
    connections_refused: Family<OutcomeLabel, Counter>,
    connections_total: Counter,
    /// Figures read from the directory when scraped.
    entries: Gauge,
    entries_by_kind: Family<KindLabel, Gauge>,
    recipients: Family<SecureLabel, Gauge>,
    tombstones: Gauge,
    store_bytes: Gauge,
    index_lag: Gauge,
    scanned: Counter,
    import_running: Gauge,
    import_records: Family<StageLabel, Gauge>,
    last_import_time: Gauge,
    last_import_ok: Gauge,
    dormant_time: Gauge,
    dormant_accounts: Family<ActionLabel, Gauge>,
    cert_expiry: Gauge,
    uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    resident: Gauge,
    /// Per operation (in [`OPERATIONS`] order): initiated, completed (for `cn=Monitor`).
    initiated: [AtomicU64; OPERATIONS.len()],
    completed: [AtomicU64; OPERATIONS.len()],
    /// Answered operations per second, failed binds per minute.
    recent_ops: Window,
    recent_failed_binds: Window,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("onepages");
        let operations = Family::<OpLabels, Counter>::default();
        registry.register(
            "operations",
            "LDAP operations answered, by operation and result code",
            operations.clone(),
        );
        let latency: Family<OpLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "operation_seconds",
            "Time from a request's arrival to its answer, by operation",
            latency.clone(),
        );
        let binds = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "binds",
            "Binds by outcome: success, invalid_credentials, locked, refused (unauthenticated, \
             no TLS, braked address...)",
            binds.clone(),
        );
        let entries_returned = Counter::default();
        registry.register(
            "search_entries",
            "Entries returned by searches",
            entries_returned.clone(),
        );
        let connections_open = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "connections_open",
            "Connections open now, by transport (plain, tls)",
            connections_open.clone(),
        );
        let connections_refused = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections refused by a limit (max_connections, max_connections_per_ip)",
            connections_refused.clone(),
        );
        let connections_total = Counter::default();
        registry.register(
            "connections",
            "Connections accepted since the start",
            connections_total.clone(),
        );
        let entries = Gauge::default();
        registry.register(
            "directory_entries",
            "Entries in the directory",
            entries.clone(),
        );
        let entries_by_kind = Family::<KindLabel, Gauge>::default();
        registry.register(
            "directory_entries_by_kind",
            "Entries by kind: people, contacts, services, other (suffix, units, domains); from \
             the last census",
            entries_by_kind.clone(),
        );
        let recipients = Family::<SecureLabel, Gauge>::default();
        registry.register(
            "directory_recipients",
            "People and contacts by whether mail to them is secure end to end (secure=true) or \
             not; from the last census",
            recipients.clone(),
        );
        let tombstones = Gauge::default();
        registry.register(
            "directory_tombstones",
            "Deleted entries kept for restore, waiting to be purged",
            tombstones.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_size_bytes",
            "Bytes of the store on disk",
            store_bytes.clone(),
        );
        let index_lag = Gauge::default();
        registry.register(
            "index_lag_entries",
            "Entries written but not yet in the search index",
            index_lag.clone(),
        );
        let scanned = Counter::default();
        registry.register(
            "searches_scanned",
            "Subtree searches the index could not narrow, which read every entry",
            scanned.clone(),
        );
        let import_running = Gauge::default();
        registry.register(
            "import_running",
            "1 while an online import receives or runs",
            import_running.clone(),
        );
        let import_records = Family::<StageLabel, Gauge>::default();
        registry.register(
            "import_records",
            "The online import under way: records read, written and refused in its current file",
            import_records.clone(),
        );
        let last_import_time = Gauge::default();
        registry.register(
            "last_import_timestamp_seconds",
            "When the last import (online or offline) finished (0: none yet)",
            last_import_time.clone(),
        );
        let last_import_ok = Gauge::default();
        registry.register(
            "last_import_success",
            "1 if the last import ran to its end, 0 if it stopped",
            last_import_ok.clone(),
        );
        let dormant_time = Gauge::default();
        registry.register(
            "dormant_last_run_timestamp_seconds",
            "When the dormant-account rules last ran (the daily run or an apply)",
            dormant_time.clone(),
        );
        let dormant_accounts = Family::<ActionLabel, Gauge>::default();
        registry.register(
            "dormant_last_run_accounts",
            "Accounts of the last dormant run by action (remove, disable, skip, exemption-ends \
             found; removed, disabled, refused done)",
            dormant_accounts.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served TLS certificate expires (0 without TLS)",
            cert_expiry.clone(),
        );
        let uptime = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "uptime_seconds",
            "Seconds since the server started",
            uptime.clone(),
        );
        let resident = Gauge::default();
        registry.register(
            "resident_memory_bytes",
            "Resident memory of the process",
            resident.clone(),
        );
        Metrics {
            started: Instant::now(),
            operations,
            latency,
            handles: OPERATIONS.iter().map(|_| OpHandles::new()).collect(),
            binds,
            entries_returned,
            connections_open,
            connections_refused,
            connections_total,
            entries,
            entries_by_kind,
            recipients,
            tombstones,
            store_bytes,
            index_lag,
            scanned,
            import_running,
            import_records,
            last_import_time,
            last_import_ok,
            dormant_time,
            dormant_accounts,
            cert_expiry,
            uptime,
            resident,
            initiated: std::array::from_fn(|_| AtomicU64::new(0)),
            completed: std::array::from_fn(|_| AtomicU64::new(0)),
            recent_ops: Window::new(1),
            recent_failed_binds: Window::new(60),
            registry,
        }
    }

    fn secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A request arrived.
    pub fn initiated(&self, op: &'static str) {
        if let Some(c) = self.initiated.get(op_index(op)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request that has no answer (unbind, abandon) was carried out.
    pub fn completed_silently(&self, op: &'static str) {
        if let Some(c) = self.completed.get(op_index(op)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.recent_ops.add(self.secs());
    }

    /// One answered operation.
    pub fn operation(&self, op: &'static str, code: i32, started: Instant) {
        let handles = self.handles.get(op_index(op));
        let counter = handles.and_then(|h| {
            let slot = usize::try_from(code).ok().and_then(|c| h.by_code.get(c))?;
            Some(slot.get_or_init(|| {
                self.operations
                    .get_or_create(&OpLabels { op, code })
                    .clone()
            }))
        });
        match counter {
            Some(c) => {
                c.inc();
            }
            None => {
                self.operations.get_or_create(&OpLabels { op, code }).inc();
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        match handles {
            Some(h) => h
                .latency
                .get_or_init(|| self.latency.get_or_create(&OpLabel { op }).clone())
                .observe(seconds),
            None => self.latency.get_or_create(&OpLabel { op }).observe(seconds),
        }
        if let Some(c) = self.completed.get(op_index(op)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.recent_ops.add(self.secs());
    }

    /// Entries a search returned.
    pub fn entries_returned(&self, n: usize) {
        self.entries_returned.inc_by(n as u64);
    }

    /// One bind's outcome.
    pub fn bind(&self, outcome: &'static str) {
        self.binds.get_or_create(&OutcomeLabel { outcome }).inc();
        if outcome == "invalid_credentials" || outcome == "locked" {
            self.recent_failed_binds.add(self.secs());
        }
    }

    /// A connection opened (the guard closes it).
    pub fn connection(self: &std::sync::Arc<Self>, transport: &'static str) -> ConnectionGauge {
        self.connections_total.inc();
        self.connections_open
            .get_or_create(&TransportLabel { transport })
            .inc();
        ConnectionGauge {
            metrics: std::sync::Arc::clone(self),
            transport,
        }
    }

    /// A connection refused by a limit (`max_connections`, `per_ip`).
    pub fn refused(&self, limit: &'static str) {
        self.connections_refused
            .get_or_create(&OutcomeLabel { outcome: limit })
            .inc();
    }

    /// The counters this process keeps, into `snap` (the directory's figures are the
    /// caller's).
    pub fn fill(&self, snap: &mut Snapshot) {
        let secs = self.secs();
        snap.uptime_secs = self.started.elapsed().as_secs();
        for t in ["plain", "tls"] {
            let open = self
                .connections_open
                .get(&TransportLabel { transport: t })
                .map_or(0, |g| g.get());
            snap.connections_open
                .insert(t.to_string(), u64::try_from(open).unwrap_or(0));
        }
        snap.connections_total = self.connections_total.get();
        for limit in ["max_connections", "max_connections_per_ip"] {
            let n = self
                .connections_refused
                .get(&OutcomeLabel { outcome: limit })
                .map_or(0, |c| c.get());
            snap.connections_refused.insert(limit.to_string(), n);
        }
        for (i, op) in OPERATIONS.iter().enumerate() {
            let get = |a: &[AtomicU64]| a.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            let count = OpCount {
                initiated: get(&self.initiated),
                completed: get(&self.completed),
            };
            if count != OpCount::default() || *op != "unknown" {
                snap.operations.insert((*op).to_string(), count);
            }
        }
        snap.operations_last_minute = self.recent_ops.sum(secs);
        for outcome in ["success", "invalid_credentials", "locked", "refused"] {
            let n = self
                .binds
                .get(&OutcomeLabel { outcome })
                .map_or(0, |c| c.get());
            snap.binds.insert(outcome.to_string(), n);
        }
        snap.failed_binds_last_hour = self.recent_failed_binds.sum(secs);
        snap.entries_returned = self.entries_returned.get();
        snap.resident_memory_bytes = resident_bytes();
    }

    /// The exposition, with the directory's figures of `snap` (taken with [`Metrics::fill`]).
    pub fn render(&self, snap: &Snapshot) -> String {
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.entries, snap.entries);
        let c = &snap.census;
        for (kind, n) in [
            ("people", c.people),
            ("contacts", c.contacts),
            ("services", c.services),
            ("other", c.other),
        ] {
            gauge(&self.entries_by_kind.get_or_create(&KindLabel { kind }), n);
        }
        gauge(
            &self
                .recipients
                .get_or_create(&SecureLabel { secure: "true" }),
            c.secure,
        );
        gauge(
            &self
                .recipients
                .get_or_create(&SecureLabel { secure: "false" }),
            c.not_secure,
        );
        gauge(&self.tombstones, c.tombstones);
        gauge(&self.store_bytes, c.store_bytes);
        gauge(&self.index_lag, snap.index_lag);
        // A counter kept by the directory: brought up to its value.
        let scanned = self.scanned.get();
        if snap.searches_scanned > scanned {
            self.scanned.inc_by(snap.searches_scanned - scanned);
        }
        let import = snap.import.clone().unwrap_or_default();
        gauge(&self.import_running, u64::from(snap.import.is_some()));
        for (stage, n) in [
            ("read", import.records),
            ("written", import.written),
            ("refused", import.refused),
        ] {
            gauge(&self.import_records.get_or_create(&StageLabel { stage }), n);
        }
        if let Some(last) = &snap.last_import {
            self.last_import_time.set(last.finished);
            self.last_import_ok.set(i64::from(last.ok));
        }
        if let Some(last) = &snap.last_dormant {
            self.dormant_time.set(last.finished);
            for (action, n) in &last.counts {
                if action != "accounts" {
                    gauge(
                        &self.dormant_accounts.get_or_create(&ActionLabel {
                            action: action.clone(),
                        }),
                        *n,
                    );
                }
            }
        }
        if let Some(cert) = &snap.certificate {
            self.cert_expiry.set(cert.not_after);
        }
        self.uptime.set(self.started.elapsed().as_secs_f64());
        gauge(&self.resident, snap.resident_memory_bytes);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The same exposition in the Prometheus text format 0.0.4 (what `promtool`, older
    /// scrapers and agents read): a counter family is named with its `_total`, and the
    /// OpenMetrics-only lines (`# UNIT`, `# EOF`) are left out. Samples are the same.
    pub fn render_text_004(&self, snap: &Snapshot) -> String {
        text_004(&self.render(snap))
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// OpenMetrics text to Prometheus text 0.0.4 (see [`Metrics::render_text_004`]).
fn text_004(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            (counters.contains(name) && !name.ends_with("_total"))
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Counts a connection as open while it lives.
pub struct ConnectionGauge {
    metrics: std::sync::Arc<Metrics>,
    transport: &'static str,
}

impl ConnectionGauge {
    /// The connection moved to TLS (StartTLS).
    pub fn upgrade(&mut self, transport: &'static str) {
        self.metrics
            .connections_open
            .get_or_create(&TransportLabel {
                transport: self.transport,
            })
            .dec();
        self.metrics
            .connections_open
            .get_or_create(&TransportLabel { transport })
            .inc();
        self.transport = transport;
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .get_or_create(&TransportLabel {
                transport: self.transport,
            })
            .dec();
    }
}

/// Resident set size from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_exposition() {
        let m = std::sync::Arc::new(Metrics::new());
        m.operation("search", 0, Instant::now());
        m.operation("search", 0, Instant::now());
        m.bind("invalid_credentials");
        m.entries_returned(7);
        let open = m.connection("plain");
        let snap = |entries, lag| {
            let mut s = Snapshot {
                entries,
                index_lag: lag,
                ..Snapshot::default()
            };
            m.fill(&mut s);
            s
        };
        let taken = snap(42, 3);
        assert_eq!(taken.binds.get("invalid_credentials"), Some(&1));
        assert_eq!(taken.failed_binds_last_hour, 1);
        assert_eq!(taken.operations_last_minute, 2);
        assert_eq!(taken.operations.get("search").map(|c| c.completed), Some(2));
        assert_eq!(taken.connections_open.get("plain"), Some(&1));
        let text = m.render(&taken);
        assert!(
            text.contains("onepages_operations_total{op=\"search\",code=\"0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("onepages_binds_total{outcome=\"invalid_credentials\"} 1"),
            "{text}"
        );
        assert!(text.contains("onepages_search_entries_total 7"), "{text}");
        assert!(
            text.contains("onepages_connections_open{transport=\"plain\"} 1"),
            "{text}"
        );
        assert!(text.contains("onepages_directory_entries 42"), "{text}");
        assert!(text.contains("onepages_index_lag_entries 3"), "{text}");
        assert!(
            text.contains("onepages_operation_seconds_bucket{le=\"0.0001\",op=\"search\"}"),
            "{text}"
        );
        drop(open);
        assert!(m
            .render(&snap(0, 0))
            .contains("onepages_connections_open{transport=\"plain\"} 0"));
    }

    #[test]
    fn the_004_text_names_counters_with_their_total() {
        let m = Metrics::new();
        m.bind("success");
        m.operation("search", 0, Instant::now());
        let text = m.render_text_004(&Snapshot::default());
        assert!(
            text.contains("# TYPE onepages_binds_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP onepages_binds_total Binds by outcome"),
            "{text}"
        );
        assert!(
            text.contains("onepages_binds_total{outcome=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE onepages_operation_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE onepages_uptime_seconds gauge\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }

    #[test]
    fn a_window_forgets_what_slid_out() {
        let w = Window::new(1);
        w.add(10);
        w.add(10);
        w.add(30);
        assert_eq!(w.sum(30), 3);
        assert_eq!(w.sum(69), 3);
        // Second 10 is out of the last minute at 70; 30 stays until 89.
        assert_eq!(w.sum(70), 1);
        assert_eq!(w.sum(90), 0);
        // A slot that comes round again starts over.
        w.add(70);
        assert_eq!(w.sum(70), 2);
        let hourly = Window::new(60);
        hourly.add(0);
        hourly.add(3599);
        assert_eq!(hourly.sum(3599), 2);
        assert_eq!(hourly.sum(3600), 1);
    }
}
