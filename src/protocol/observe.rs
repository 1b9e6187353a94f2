//! The server seen by its operators: one [`Snapshot`] of the session counters
//! (`metrics::Metrics`), the directory's figures (`Dsa`), the import under way and the
//! certificate, for `/metrics`, `/status` and `cn=Monitor`.

use super::Shared;
use crate::dsa::runs::Run;
use crate::metrics::{Certificate, ImportNow, Observe, Snapshot};

impl Observe for Shared {
    fn snapshot(&self) -> Snapshot {
        let dsa = &self.dsa;
        let mut snap = Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            now: dsa.now(),
            listeners: self.listeners.get().cloned().unwrap_or_default(),
            naming_context: dsa.settings().suffix.clone(),
            entries: dsa.entry_count() as u64,
            index_lag: dsa.index_lag() as u64,
            searches_scanned: dsa.scans(),
            last_import: dsa.last_run(Run::Import),
            last_dormant: dsa.last_run(Run::Dormant),
            ..Snapshot::default()
        };
        match dsa.census() {
            Ok(c) => snap.census = (*c).clone(),
            Err(e) => tracing::warn!(error = %e, "the directory could not be counted"),
        }
        snap.import = self.imports.current().map(|s| ImportNow {
            state: s.state,
            file: s.file,
            records: s.records as u64,
            written: s.written as u64,
            refused: s.refused as u64,
            bytes: s.bytes,
            total_bytes: s.total_bytes,
        });
        snap.certificate = self.tls.as_ref().map(|t| {
            let f = t.facts();
            Certificate {
                subject: f.subject,
                not_after: f.not_after,
            }
        });
        self.metrics.fill(&mut snap);
        snap.started = snap
            .now
            .saturating_sub(i64::try_from(snap.uptime_secs).unwrap_or(0));
        snap
    }
}
