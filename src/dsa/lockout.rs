//! Guessing stopped: accounts locked after repeated wrong passwords, addresses braked after
//! repeated failed binds (OpenLDAP ppolicy's semantics, with its attribute names for what an
//! administrator reads: `pwdFailureTime`, `pwdAccountLockedTime`).
//!
//! An account's state is its recent failure times and, once `failures` of them fall within
//! `window`, the time it was locked. A locked account's binds fail like a wrong password
//! until `duration` has passed (or for good when it is zero) or an administrator unlocks it;
//! a successful bind clears the failures. The state lives in memory and in the store's
//! bind-state tree (by entry id, apart from the entries: recording a failure touches no entry
//! and no cache), written without waiting for the disk, so that a flood of failures costs no
//! fsync; it survives a restart, and a crash loses at most sled's flush interval of it.
//!
//! Addresses are counted in memory only: beyond `address_failures` failed binds within
//! `address_window`, an address's binds are refused before any look-up, whatever account
//! they name.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::LockoutPolicy;
use crate::directory::entry::EntryId;
use crate::store::{Store, StoreError};

/// Addresses remembered at most (a spray from many addresses cannot grow the map beyond it).
const MAX_ADDRESSES: usize = 100_000;

/// What is known of one account's failed binds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountState {
    /// Seconds since 1970 of each failure still counted, oldest first.
    pub failures: Vec<i64>,
    /// When the account was locked, if it is.
    pub locked_at: Option<i64>,
}

impl AccountState {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * (self.failures.len() + 1));
        out.extend_from_slice(&self.locked_at.unwrap_or(-1).to_be_bytes());
        for t in &self.failures {
            out.extend_from_slice(&t.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<AccountState> {
        if !bytes.len().is_multiple_of(8) || bytes.is_empty() {
            return None;
        }
        let mut times = bytes
            .chunks_exact(8)
            .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(i64::from_be_bytes));
        let locked = times.next()?;
        Some(AccountState {
            locked_at: (locked >= 0).then_some(locked),
            failures: times.collect(),
        })
    }
}

/// What a failed bind did to its account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted: this many failures are now within the window.
    Counted(usize),
    /// This failure locked the account.
    LockedNow(usize),
    /// The account was locked already (nothing more is recorded).
    AlreadyLocked,
}

pub struct Lockout {
    policy: LockoutPolicy,
    accounts: Mutex<HashMap<EntryId, AccountState>>,
    addresses: Mutex<HashMap<IpAddr, VecDeque<i64>>>,
    store: Arc<Store>,
}

impl Lockout {
    /// The policy, with the state the store recorded.
    pub(super) fn load(policy: LockoutPolicy, store: Arc<Store>) -> Result<Lockout, StoreError> {
        let mut accounts = HashMap::new();
        for (id, bytes) in store.bind_states()? {
            match AccountState::decode(&bytes) {
                Some(state) => {
                    accounts.insert(id, state);
                }
                None => store.set_bind_state(id, None)?,
            }
        }
        Ok(Lockout {
            policy,
            accounts: Mutex::new(accounts),
            addresses: Mutex::new(HashMap::new()),
            store,
        })
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    fn persist(&self, id: EntryId, state: Option<&AccountState>) {
        let bytes = state.map(AccountState::encode);
        if let Err(e) = self.store.set_bind_state(id, bytes.as_deref()) {
            tracing::error!(error = %e, id, "cannot record an account's sign-in state");
        }
    }

    fn lock_expired(&self, locked_at: i64, now: i64) -> bool {
        let secs = i64::try_from(self.policy.duration.as_secs()).unwrap_or(i64::MAX);
        secs > 0 && now >= locked_at.saturating_add(secs)
    }

    /// When the account was locked, if it is locked now.
    pub fn locked_since(&self, id: EntryId, now: i64) -> Option<i64> {
        let accounts = self.accounts.lock().ok()?;
        let at = accounts.get(&id)?.locked_at?;
        (!self.lock_expired(at, now)).then_some(at)
    }

    /// Counts a wrong password for the account.
    pub fn failure(&self, id: EntryId, now: i64) -> Failure {
        if self.policy.failures == 0 {
            return Failure::Counted(0);
        }
        let Ok(mut accounts) = self.accounts.lock() else {
            return Failure::Counted(0);
        };
        let state = accounts.entry(id).or_default();
        if let Some(at) = state.locked_at {
            if !self.lock_expired(at, now) {
                return Failure::AlreadyLocked;
            }
            // The lock has run out: start counting afresh.
            *state = AccountState::default();
        }
        let window = i64::try_from(self.policy.window.as_secs()).unwrap_or(i64::MAX);
        state.failures.retain(|t| now.saturating_sub(*t) < window);
        state.failures.push(now);
        let n = state.failures.len();
        let outcome = if n >= self.policy.failures as usize {
            state.locked_at = Some(now);
            Failure::LockedNow(n)
        } else {
            Failure::Counted(n)
        };
        let snapshot = state.clone();
        drop(accounts);
        self.persist(id, Some(&snapshot));
        outcome
    }

    /// A successful bind: the account's failures are forgotten.
    pub fn success(&self, id: EntryId) {
        let removed = match self.accounts.lock() {
            Ok(mut accounts) => accounts.remove(&id).is_some(),
            Err(_) => false,
        };
        if removed {
            self.persist(id, None);
        }
    }

    /// Clears the account's failures and lock; whether it was locked.
    pub fn unlock(&self, id: EntryId, now: i64) -> bool {
        let removed = match self.accounts.lock() {
            Ok(mut accounts) => accounts.remove(&id),
            Err(_) => None,
        };
        match removed {
            Some(state) => {
                self.persist(id, None);
                state
                    .locked_at
                    .is_some_and(|at| !self.lock_expired(at, now))
            }
            None => false,
        }
    }

    /// What an administrator reads of the account: the failures still counted and the lock
    /// if it holds. `None` when there is nothing to show.
    pub fn state(&self, id: EntryId, now: i64) -> Option<AccountState> {
        let accounts = self.accounts.lock().ok()?;
        let state = accounts.get(&id)?;
        let locked_at = state.locked_at.filter(|at| !self.lock_expired(*at, now));
        let window = i64::try_from(self.policy.window.as_secs()).unwrap_or(i64::MAX);
        let failures: Vec<i64> = if locked_at.is_some() {
            state.failures.clone()
        } else if state.locked_at.is_some() {
            Vec::new()
        } else {
            state
                .failures
                .iter()
                .copied()
                .filter(|t| now.saturating_sub(*t) < window)
                .collect()
        };
        (locked_at.is_some() || !failures.is_empty()).then_some(AccountState {
            failures,
            locked_at,
        })
    }

    /// Whether any account has a recorded state (a cheap test before a look-up).
    pub fn has_states(&self) -> bool {
        self.accounts.lock().is_ok_and(|a| !a.is_empty())
    }

    /// Seconds until `ip` may try again, when it has failed too often lately.
    pub fn address_refused(&self, ip: IpAddr, now: i64) -> Option<u64> {
        if self.policy.address_failures == 0 {
            return None;
        }
        let window = i64::try_from(self.policy.address_window.as_secs()).unwrap_or(i64::MAX);
        let mut addresses = self.addresses.lock().ok()?;
        let times = addresses.get_mut(&ip)?;
        while times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() < self.policy.address_failures as usize {
            return None;
        }
        let oldest = times.front().copied().unwrap_or(now);
        let wait = oldest.saturating_add(window).saturating_sub(now).max(1);
        Some(u64::try_from(wait).unwrap_or(1))
    }

    /// Counts a failed bind from `ip`.
    pub fn address_failure(&self, ip: IpAddr, now: i64) {
        if self.policy.address_failures == 0 {
            return;
        }
        let window = i64::try_from(self.policy.address_window.as_secs()).unwrap_or(i64::MAX);
        let Ok(mut addresses) = self.addresses.lock() else {
            return;
        };
        if addresses.len() >= MAX_ADDRESSES && !addresses.contains_key(&ip) {
            addresses.retain(|_, t| t.back().is_some_and(|last| now - last < window));
            if addresses.len() >= MAX_ADDRESSES {
                // Still full of live addresses: forget them rather than grow.
                addresses.clear();
            }
        }
        let times = addresses.entry(ip).or_default();
        times.push_back(now);
        // Only the last `address_failures` matter.
        while times.len() > self.policy.address_failures as usize {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            failures: 3,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
            address_failures: 4,
            address_window: Duration::from_secs(100),
        }
    }

    fn store(dir: &std::path::Path) -> Arc<Store> {
        Arc::new(Store::reopen_for_test(&dir.join("store"), 4 << 20))
    }

    #[test]
    fn locks_after_failures_within_the_window_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let l = Lockout::load(policy(), store(dir.path())).unwrap();
        assert_eq!(l.failure(7, 1000), Failure::Counted(1));
        // Outside the window: the first failure no longer counts.
        assert_eq!(l.failure(7, 1070), Failure::Counted(1));
        assert_eq!(l.failure(7, 1080), Failure::Counted(2));
        assert_eq!(l.locked_since(7, 1080), None);
        assert_eq!(l.failure(7, 1090), Failure::LockedNow(3));
        assert_eq!(l.locked_since(7, 1090), Some(1090));
        assert_eq!(l.failure(7, 1100), Failure::AlreadyLocked);
        assert_eq!(l.locked_since(7, 1689), Some(1090));
        assert_eq!(l.locked_since(7, 1690), None, "expired after lockout_secs");
        assert_eq!(
            l.failure(7, 1700),
            Failure::Counted(1),
            "counting starts afresh"
        );
        l.success(7);
        assert_eq!(l.state(7, 1700), None);
    }

    #[test]
    fn state_survives_a_reopen_and_unlock_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            let l = Lockout::load(policy(), Arc::clone(&s)).unwrap();
            for t in 0..3 {
                l.failure(9, 500 + t);
            }
            assert!(l.locked_since(9, 510).is_some());
            s.flush().unwrap();
        }
        let s = store(dir.path());
        let l = Lockout::load(policy(), Arc::clone(&s)).unwrap();
        let state = l.state(9, 510).unwrap();
        assert_eq!(state.locked_at, Some(502));
        assert_eq!(state.failures, vec![500, 501, 502]);
        assert!(l.unlock(9, 510));
        assert!(!l.unlock(9, 510));
        assert_eq!(l.locked_since(9, 510), None);
        assert!(!l.has_states());
        s.flush().unwrap();
        drop(l);
        drop(s);
        let l = Lockout::load(policy(), store(dir.path())).unwrap();
        assert!(!l.has_states(), "the unlock is on disk too");
    }

    #[test]
    fn a_lock_without_expiry_holds_until_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let p = LockoutPolicy {
            duration: Duration::ZERO,
            ..policy()
        };
        let l = Lockout::load(p, store(dir.path())).unwrap();
        for t in 0..3 {
            l.failure(1, t);
        }
        assert_eq!(l.locked_since(1, 1_000_000_000), Some(2));
        assert!(l.unlock(1, 1_000_000_000));
    }

    #[test]
    fn addresses_are_braked_beyond_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let l = Lockout::load(policy(), store(dir.path())).unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        for t in 0..4 {
            assert_eq!(l.address_refused(ip, 100 + t), None);
            l.address_failure(ip, 100 + t);
        }
        assert_eq!(l.address_refused(ip, 110), Some(90));
        assert_eq!(l.address_refused(other, 110), None);
        assert_eq!(
            l.address_refused(ip, 200),
            None,
            "the oldest failure left the window"
        );
    }
}
