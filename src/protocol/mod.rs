//! The LDAP wire: the accept loop, the session loop, framing and decoding, response encoding.

pub mod connection;
pub mod controls;
pub mod encode;
pub mod frame;
pub mod http;
pub mod listener;
mod observe;
pub mod stream;
pub mod tls;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::dsa::Dsa;

/// What every session of one server shares.
pub struct Shared {
    pub dsa: Arc<Dsa>,
    /// Searches executing at once, one more than there are cores; waiting searches queue in
    /// arrival order, and a long search hands its slot on between batches (see
    /// [`connection`]). Keeps type-ahead latency even under load instead of time-slicing many
    /// threads on few cores.
    pub search_slots: Arc<Semaphore>,
    /// Connections served at once, over every listener.
    pub connections: Arc<Semaphore>,
    /// Searches that may wait at once, each holding a blocking thread, for a client to read
    /// (`max_stalled_searches`): the blocking pool stays free for everyone else's work.
    pub stalled_searches: Arc<Semaphore>,
    /// Connections held by each address (`max_connections_per_ip`).
    per_ip: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// Slow password checks (argon2id, crypt) running at once (`hash_concurrency`): a bind
    /// that needs one waits here, holding no thread, so that a burst of binds can neither
    /// exhaust memory (each argon2id check allocates its cost) nor the blocking pool that
    /// searches use.
    pub hash_slots: Arc<Semaphore>,
    /// How many slow checks run, and the most that ever ran at once.
    pub slow_checks: Arc<SlowChecks>,
    /// The access log, when configured.
    pub access_log: Option<crate::audit::LogSink>,
    /// The server's certificate, when it offers TLS (LDAPS and StartTLS).
    pub tls: Option<Arc<tls::TlsCertificates>>,
    /// Imports sent through the server (`onepages import --server`).
    pub imports: Arc<crate::import::online::Imports>,
    /// The operators' counters (served on `http_listen`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The listeners' URLs, once bound (shown to operators).
    pub listeners: std::sync::OnceLock<Vec<String>>,
}

impl Shared {
    pub fn new(
        dsa: Arc<Dsa>,
        tls: Option<Arc<tls::TlsCertificates>>,
        access_log: Option<crate::audit::LogSink>,
    ) -> Shared {
        let max_connections = dsa.settings().limits.max_connections;
        let max_stalled = dsa.settings().limits.max_stalled_searches;
        Shared {
            hash_slots: Arc::new(Semaphore::new(dsa.settings().hash_concurrency)),
            slow_checks: Arc::default(),
            access_log,
            imports: Arc::new(crate::import::online::Imports::new(Arc::clone(&dsa))),
            dsa,
            search_slots: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from) + 1,
            )),
            connections: Arc::new(Semaphore::new(max_connections)),
            stalled_searches: Arc::new(Semaphore::new(max_stalled)),
            per_ip: std::sync::Mutex::default(),
            tls,
            metrics: Arc::default(),
            listeners: std::sync::OnceLock::new(),
        }
    }
}

impl Shared {
    /// Counts one more connection from `ip`, unless it holds `max_connections_per_ip`
    /// already; the claim is given back when dropped.
    pub fn claim_ip(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<IpClaim> {
        let max = self.dsa.settings().limits.max_connections_per_ip;
        let mut map = self.per_ip.lock().ok()?;
        let held = map.entry(ip).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(IpClaim {
            shared: Arc::clone(self),
            ip,
        })
    }
}

/// One connection counted against its address.
pub struct IpClaim {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
}

impl Drop for IpClaim {
    fn drop(&mut self) {
        if let Ok(mut map) = self.shared.per_ip.lock() {
            if let Some(held) = map.get_mut(&self.ip) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

/// Slow password checks under way, and the peak (what `hash_concurrency` bounds).
#[derive(Debug, Default)]
pub struct SlowChecks {
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicU64,
}

impl SlowChecks {
    /// Counts a check while the returned guard lives.
    pub fn start(self: &Arc<Self>) -> SlowCheckGuard {
        use std::sync::atomic::Ordering;
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::Relaxed);
        SlowCheckGuard(Arc::clone(self))
    }

    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub struct SlowCheckGuard(Arc<SlowChecks>);

impl Drop for SlowCheckGuard {
    fn drop(&mut self) {
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
