//! Sign-ins: when each account last proved its password here (OpenLDAP lastbind's
//! `authTimestamp`, kept as `onePagesLastSignIn`).
//!
//! A successful bind of an account whose last recorded sign-in is at least `precision` old (one
//! day by default) records the bind's time; any other bind records nothing, so a client that
//! binds on every keystroke costs one write a day. Recording touches no entry: the time goes to
//! memory at once (what searches and the dormancy rules read) and to the store's sign-in tree
//! when the server's flusher runs ([`SignIns::flush`], every second), without waiting for the
//! disk — no fsync in a bind, no write through the writer, no cache made stale. A crash loses
//! the sign-ins of the last flush interval plus sled's (half a second): those accounts look as
//! they did a day earlier, which the dormancy rules (months) cannot notice.
//!
//! The time an import brings (`onePagesLastSignIn`, or OpenLDAP's `authTimestamp` or
//! `pwdLastSuccess`) is stored on the entry; whoever reads the last sign-in takes the later of
//! the two ([`SignIns::last`] with the entry's value).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::directory::entry::{AttrSource, EntryId};
use crate::store::{Store, StoreError};

pub struct SignIns {
    on: bool,
    precision: i64,
    /// The last recorded sign-in of each account.
    known: Mutex<HashMap<EntryId, i64>>,
    /// Recorded in memory, not yet handed to the store.
    pending: Mutex<Vec<(EntryId, i64)>>,
    /// Sign-ins handed to the store since start (what the coalescing saves is visible here).
    writes: AtomicU64,
    store: Arc<Store>,
}

impl SignIns {
    pub(super) fn load(
        on: bool,
        precision: std::time::Duration,
        store: Arc<Store>,
    ) -> Result<SignIns, StoreError> {
        let known = store.sign_ins()?.into_iter().collect();
        Ok(SignIns {
            on,
            precision: i64::try_from(precision.as_secs()).unwrap_or(i64::MAX),
            known: Mutex::new(known),
            pending: Mutex::new(Vec::new()),
            writes: AtomicU64::new(0),
            store,
        })
    }

    /// A successful bind at `now`: recorded when the last one recorded is `precision` old (or
    /// there is none). Whether it was recorded.
    pub fn record(&self, id: EntryId, now: i64) -> bool {
        if !self.on {
            return false;
        }
        let Ok(mut known) = self.known.lock() else {
            return false;
        };
        if let Some(last) = known.get(&id) {
            // A clock set back never makes the known sign-in earlier.
            if now < last.saturating_add(self.precision.max(1)) {
                return false;
            }
        }
        known.insert(id, now);
        drop(known);
        if let Ok(mut pending) = self.pending.lock() {
            pending.push((id, now));
        }
        true
    }

    /// The last sign-in recorded here, seconds since 1970.
    pub fn recorded(&self, id: EntryId) -> Option<i64> {
        self.known.lock().ok()?.get(&id).copied()
    }

    /// The account's last sign-in as known: the later of the one recorded here and the entry's
    /// `onePagesLastSignIn` (an import's).
    pub fn last<E: AttrSource + ?Sized>(&self, id: EntryId, entry: &E) -> Option<i64> {
        let stored = stored_sign_in(entry);
        match (self.recorded(id), stored) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hands the pending sign-ins to the store (not flushed: sled writes them out within its
    /// flush interval). The number written.
    pub fn flush(&self) -> usize {
        let batch = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return 0,
        };
        let mut written = 0;
        for (id, at) in batch {
            match self.store.set_sign_in(id, Some(at)) {
                Ok(()) => written += 1,
                Err(e) => tracing::error!(error = %e, id, "cannot record a sign-in"),
            }
        }
        self.writes.fetch_add(written as u64, Ordering::Relaxed);
        written
    }

    /// Whether some sign-ins wait for [`SignIns::flush`].
    pub fn has_pending(&self) -> bool {
        self.pending.lock().is_ok_and(|p| !p.is_empty())
    }

    /// Forgets the accounts (purged for good).
    pub fn forget(&self, ids: &[EntryId]) {
        if let Ok(mut known) = self.known.lock() {
            for id in ids {
                if known.remove(id).is_some() {
                    if let Err(e) = self.store.set_sign_in(*id, None) {
                        tracing::error!(error = %e, id, "cannot forget a sign-in");
                    }
                }
            }
        }
    }

    /// Sign-ins written to the store since start.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

/// The entry's own `onePagesLastSignIn` (an import's), seconds since 1970.
pub fn stored_sign_in<E: AttrSource + ?Sized>(entry: &E) -> Option<i64> {
    entry
        .values_of("onePagesLastSignIn")
        .filter_map(|v| std::str::from_utf8(v).ok().and_then(time_of))
        .max()
}

/// Seconds since 1970 of a GeneralizedTime value (any form the syntax allows).
pub fn time_of(text: &str) -> Option<i64> {
    crate::directory::matching::generalized_seconds(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store(dir: &std::path::Path) -> Arc<Store> {
        Arc::new(Store::reopen_for_test(&dir.join("store"), 4 << 20))
    }

    #[test]
    fn a_thousand_binds_in_a_day_cost_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let s = SignIns::load(true, Duration::from_secs(86_400), store(dir.path())).unwrap();
        let day = 1_800_000_000;
        let mut recorded = 0;
        for i in 0..1000 {
            recorded += usize::from(s.record(7, day + i * 60));
        }
        assert_eq!(recorded, 1);
        assert_eq!(s.flush(), 1);
        assert_eq!(s.writes(), 1);
        assert_eq!(s.recorded(7), Some(day));
        // A day after the recorded one: the next bind counts.
        assert!(!s.record(7, day + 86_399));
        assert!(s.record(7, day + 86_400));
        assert_eq!(s.flush(), 1);
        assert_eq!(s.writes(), 2);
    }

    #[test]
    fn off_records_nothing_and_a_clock_set_back_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let off = SignIns::load(false, Duration::from_secs(86_400), store(dir.path())).unwrap();
        assert!(!off.record(1, 1000));
        assert_eq!(off.recorded(1), None);
        drop(off);
        let s = SignIns::load(true, Duration::ZERO, store(dir.path())).unwrap();
        assert!(s.record(1, 1000));
        assert!(!s.record(1, 1000), "the same second is no news");
        assert!(!s.record(1, 500), "earlier than the known one");
        assert!(s.record(1, 1001), "precision 0: every later bind");
    }

    #[test]
    fn flushed_sign_ins_survive_a_reopen_and_the_later_time_wins() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = store(dir.path());
            let s = SignIns::load(true, Duration::from_secs(86_400), Arc::clone(&st)).unwrap();
            s.record(3, 2_000_000_000);
            s.record(4, 2_000_000_000);
            s.flush();
            s.forget(&[4]);
            st.flush().unwrap();
        }
        let s = SignIns::load(true, Duration::from_secs(86_400), store(dir.path())).unwrap();
        assert_eq!(s.recorded(3), Some(2_000_000_000));
        assert_eq!(s.recorded(4), None);
        let mut e = crate::directory::entry::Entry::new("uid=a".into(), "uid=a".into());
        e.attrs.push(crate::directory::entry::Attribute {
            name: "onePagesLastSignIn".into(),
            values: vec![b"20330518033320Z".to_vec()],
        });
        // 20330518033320Z is 2_000_000_000.
        assert_eq!(s.last(3, &e), Some(2_000_000_000));
        assert_eq!(s.last(9, &e), Some(2_000_000_000));
        e.attrs[0].values = vec![b"20400101000000Z".to_vec()];
        assert_eq!(s.last(3, &e), Some(2_208_988_800), "the import's is later");
        assert_eq!(
            s.last(
                9,
                &crate::directory::entry::Entry::new("x".into(), "x".into())
            ),
            None
        );
    }
}
