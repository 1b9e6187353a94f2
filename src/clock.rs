//! The wall clock that time-dependent rules read (lockout windows and expiries, audit times),
//! injectable so that tests can move it forward instead of waiting.
//!
//! A clock is the system time plus an offset that only tests change; clones share the
//! offset, so a test keeps one clone and advances the server's time through it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Default)]
pub struct Clock {
    /// Seconds added to the system time.
    offset: Arc<AtomicI64>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(+{}s)", self.offset.load(Ordering::Relaxed))
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> SystemTime {
        let offset = self.offset.load(Ordering::Relaxed);
        let base = SystemTime::now();
        if offset >= 0 {
            base + Duration::from_secs(offset.unsigned_abs())
        } else {
            base.checked_sub(Duration::from_secs(offset.unsigned_abs()))
                .unwrap_or(UNIX_EPOCH)
        }
    }

    /// Whole seconds since 1970 (what stored times are kept in).
    pub fn unix_secs(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// `YYYYMMDDHHMMSSZ`, the GeneralizedTime form LDAP uses for times (RFC 4517 §3.3.13).
pub fn generalized_time(unix_secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::directory::matching::civil_from_seconds(unix_secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z")
}

/// RFC 3339 in UTC with milliseconds, for log lines.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::directory::matching::civil_from_seconds(secs);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix_secs();
        clock.advance(Duration::from_secs(3600));
        assert!(other.unix_secs() >= before + 3600);
    }

    #[test]
    fn formats() {
        assert_eq!(generalized_time(0), "19700101000000Z");
        assert_eq!(generalized_time(1_798_761_600), "20270101000000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_798_761_600_042);
        assert_eq!(rfc3339(at), "2027-01-01T00:00:00.042Z");
    }
}
