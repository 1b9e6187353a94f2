//! What one identity's searches may take: its role's limits, or its own where the
//! configuration names it (`identity_limits`), and the read budget that spans all of its
//! searches and connections (`read_budget_per_minute`, off by default).
//!
//! The read budget is a token bucket per identity: it holds a minute's worth of entries and
//! refills continuously, so interactive browsing (a screenful per keystroke or scroll) never
//! notices it while a harvest of the directory stops within a minute's worth. Time comes from
//! the settings' clock, so tests move it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::access::{Grant, Role};
use super::Dsa;
use crate::config::{LimitOverride, SearchLimits};

/// Identities whose buckets are remembered at most; past this, full buckets are forgotten
/// (a full bucket is the same as none).
const MAX_BUCKETS: usize = 100_000;

/// The identities' read budgets.
#[derive(Default)]
pub struct ReadBudgets {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

impl Bucket {
    fn refill(&mut self, per_minute: u64, now: SystemTime) {
        let elapsed = now.duration_since(self.at).unwrap_or_default();
        let cap = per_minute as f64;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * cap / 60.0).min(cap);
        self.at = now;
    }
}

impl ReadBudgets {
    /// Takes one entry from `who`'s budget of `per_minute`; when it is spent, how long
    /// until the next entry may be read.
    pub fn take(&self, who: &str, per_minute: u64, now: SystemTime) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(who) {
            buckets.retain(|_, b| {
                let mut b = *b;
                b.refill(per_minute, now);
                b.tokens < per_minute as f64
            });
        }
        let bucket = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: per_minute as f64,
            at: now,
        });
        bucket.refill(per_minute, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(Duration::from_secs_f64(missing * 60.0 / per_minute as f64))
    }
}

impl Dsa {
    /// The limits of one search by this grant's identity: its role's (anonymous reads as a
    /// reader), with the identity's own configured limits over them.
    pub fn search_limits(&self, grant: &Grant) -> SearchLimits {
        let roles = &self.settings.limits.roles;
        let base = match grant.role() {
            Some(Role::Admin) => roles.admin,
            Some(Role::User) => roles.user,
            Some(Role::Reader) | None => roles.reader,
        };
        let ndn = grant.ndn();
        match self.identity_limits.iter().find(|(dn, _)| dn == ndn) {
            Some((_, o)) if !ndn.is_empty() => o.over(base),
            _ => base,
        }
    }

    /// Takes one entry from the identity's read budget (see [`ReadBudgets`]).
    pub fn take_read_budget(&self, grant: &Grant, per_minute: u64) -> Result<(), Duration> {
        let who = match grant.ndn() {
            "" => "(anonymous)",
            ndn => ndn,
        };
        self.read_budgets
            .take(who, per_minute, self.settings.clock.now())
    }
}

/// The configured identity limits with their DNs normalised.
pub(super) fn normalised(
    settings: &crate::config::Settings,
    schema: &crate::directory::schema::Schema,
) -> Vec<(String, LimitOverride)> {
    settings
        .identity_limits
        .iter()
        .filter_map(|(dn, o)| {
            crate::directory::dn::Dn::parse(dn)
                .ok()
                .map(|d| (d.normalize(schema), o.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_holds_a_minute_and_refills() {
        let budgets = ReadBudgets::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for _ in 0..120 {
            assert!(budgets.take("a", 120, t0).is_ok());
        }
        let wait = budgets.take("a", 120, t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another identity has its own budget.
        assert!(budgets.take("b", 120, t0).is_ok());
        // Half a minute later, half the budget is back.
        let t1 = t0 + Duration::from_secs(30);
        for _ in 0..60 {
            assert!(budgets.take("a", 120, t1).is_ok());
        }
        assert!(budgets.take("a", 120, t1).is_err());
        // No budget: always fine.
        assert!(budgets.take("a", 0, t1).is_ok());
    }
}
