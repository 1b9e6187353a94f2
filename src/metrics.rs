//! What operators measure: counters and histograms the session loop records, and the
//! directory's figures read when scraped, in the Prometheus exposition format
//! (`prometheus-client`). Recording is a label look-up and an atomic add.

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

/// Latency buckets: 0.1 ms doubling to 13 s (18 buckets).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The server's own metrics (one per process, shared by every connection).
pub struct Metrics {
    started: Instant,
    operations: Family<OpLabels, Counter>,
    latency: Family<OpLabel, Histogram, fn() -> Histogram>,
    binds: Family<OutcomeLabel, Counter>,
    entries_returned: Counter,
    connections_open: Family<TransportLabel, Gauge>,
    connections_refused: Family<OutcomeLabel, Counter>,
    /// Figures read from the directory when scraped.
    entries: Gauge,
    index_lag: Gauge,
    uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    resident: Gauge,
    scrapes: AtomicU64,
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
        let entries = Gauge::default();
        registry.register(
            "directory_entries",
            "Entries in the directory",
            entries.clone(),
        );
        let index_lag = Gauge::default();
        registry.register(
            "index_lag_entries",
            "Entries written but not yet in the search index",
            index_lag.clone(),
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
            binds,
            entries_returned,
            connections_open,
            connections_refused,
            entries,
            index_lag,
            uptime,
            resident,
            scrapes: AtomicU64::new(0),
            registry,
        }
    }

    /// One answered operation.
    pub fn operation(&self, op: &'static str, code: i32, started: Instant) {
        self.operations.get_or_create(&OpLabels { op, code }).inc();
        self.latency
            .get_or_create(&OpLabel { op })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Entries a search returned.
    pub fn entries_returned(&self, n: usize) {
        self.entries_returned.inc_by(n as u64);
    }

    /// One bind's outcome.
    pub fn bind(&self, outcome: &'static str) {
        self.binds.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A connection opened (the guard closes it).
    pub fn connection(self: &std::sync::Arc<Self>, transport: &'static str) -> ConnectionGauge {
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

    /// The exposition, with the directory's figures as of now.
    pub fn render(&self, entries: usize, index_lag: usize) -> String {
        self.entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.index_lag
            .set(i64::try_from(index_lag).unwrap_or(i64::MAX));
        self.uptime.set(self.started.elapsed().as_secs_f64());
        self.resident
            .set(i64::try_from(resident_bytes()).unwrap_or(i64::MAX));
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
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
        let text = m.render(42, 3);
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
            .render(0, 0)
            .contains("onepages_connections_open{transport=\"plain\"} 0"));
    }
}
