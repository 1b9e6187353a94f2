//! Dormant accounts, as the service's policy says: an account nobody ever signed in to is
//! removed once it is older than `never_used_days` (183: six months); an account with no
//! sign-in for more than `inactive_days` (396: thirteen months) is disabled; an account
//! exempted until a date (`onePagesExemptUntil`, with `onePagesExemptReason`) is left alone
//! until then, and its exemption ends by itself.
//!
//! The rules apply to the users of the service only: never to administrators, service
//! accounts (`onePagesService`, `onePagesAccountType: service`, `onePagesRole: reader`) or
//! external contacts (`onePagesAccountType: external`), and only to accounts with a ONE ID.
//! Times, all in UTC:
//!
//! - created: `createTimestamp` (kept from imports);
//! - last sign-in: the later of the one the server recorded at bind and the entry's
//!   `onePagesLastSignIn` (from a feed, or OpenLDAP's `authTimestamp` / `pwdLastSuccess`);
//! - re-enabled: `onePagesStatusChanged` of an active account. An administrator re-enables an
//!   account by setting `onePagesStatus: active`; the rules then count from that moment, so a
//!   re-enabled account is not disabled again the next night.
//!
//! "More than N days" is strict: an account created exactly 183 days before the evaluation is
//! kept, one created a second earlier is removed.
//!
//! [`evaluate`] reads the directory through the reader and decides; [`apply`] writes what was
//! decided through the one writer (a disable is a modify of the status with its reason, a
//! removal is a delete, kept as a tombstone for `tombstone_days`), deciding each account again
//! just before its write, and records every change in the audit trail.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::clock::generalized_time;
use crate::config::Dormancy;
use crate::directory::dn::Dn;
use crate::directory::entry::AttrSource;
use crate::directory::filter::compile;
use crate::dsa::access::{is_disabled, Role, WriteGrant};
use crate::dsa::runs::{Run, RunNote};
use crate::dsa::sign_in::time_of;
use crate::dsa::{Budget, Change, Dsa, DsaError, Edit, EditKind, Query, Scope};

const DAY: i64 = 86_400;

/// Exemptions ending within this many days are listed.
pub const EXEMPTION_NOTICE_DAYS: i64 = 30;

/// Accounts changed per write batch when applying.
const APPLY_BATCH: usize = 200;

/// What the rules do to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Never used and older than `never_used_days`: deleted (a tombstone, restorable).
    Remove,
    /// No sign-in for more than `inactive_days`: `onePagesStatus: disabled`.
    Disable,
    /// Due for one of the above, but exempt until a later date.
    Skip,
    /// Not due, exempt, and the exemption ends within [`EXEMPTION_NOTICE_DAYS`].
    ExemptionEnds,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Disable => "disable",
            Action::Skip => "skip",
            Action::ExemptionEnds => "exemption-ends",
        }
    }
}

/// One account the rules act on (or would, but for its exemption), with the dates that decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub action: Action,
    pub dn: String,
    /// The ONE ID username.
    pub uid: String,
    pub name: Option<String>,
    pub mail: Option<String>,
    /// Days (YYYY-MM-DD, UTC).
    pub created: Option<String>,
    pub last_sign_in: Option<String>,
    /// When the rule started to apply (remove, disable, skip).
    pub due: Option<String>,
    pub exempt_until: Option<String>,
    pub exempt_reason: Option<String>,
    /// In words: which rule and which dates.
    pub why: String,
    /// After `apply`: what was done, or why it was refused.
    pub outcome: Option<String>,
}

/// What the rules say about the whole directory at one time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The time the rules were evaluated at (GeneralizedTime).
    pub as_of: String,
    pub never_used_days: u32,
    pub inactive_days: u32,
    /// Accounts the rules apply to (users of the service with a ONE ID).
    pub accounts: usize,
    /// Of those, accounts without a creation time: never removed as never used.
    pub undated: usize,
    /// Whether the actions were applied.
    pub applied: bool,
    /// Milliseconds the evaluation (and the apply) took.
    pub took_ms: u64,
    pub items: Vec<Item>,
}

impl Report {
    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }

    /// Applied actions that were refused.
    pub fn refused(&self) -> usize {
        self.items
            .iter()
            .filter(|i| {
                i.outcome
                    .as_deref()
                    .is_some_and(|o| o.starts_with("refused"))
            })
            .count()
    }

    /// One line for logs and the end of the table.
    pub fn summary(&self) -> String {
        let verb = |done: &'static str, would: &'static str| {
            if self.applied {
                done
            } else {
                would
            }
        };
        format!(
            "{} accounts as of {}: {} {}, {} {}, {} exempt and skipped, {} exemptions ending \
             within {EXEMPTION_NOTICE_DAYS} days{}",
            self.accounts,
            day(time_of(&self.as_of).unwrap_or(0)),
            self.count(Action::Remove),
            verb("removed", "to remove (never used)"),
            self.count(Action::Disable),
            verb("disabled", "to disable (inactive)"),
            self.count(Action::Skip),
            self.count(Action::ExemptionEnds),
            match self.refused() {
                0 => String::new(),
                n => format!("; {n} refused"),
            }
        )
    }
}

/// The facts about one account that the rules read (seconds since 1970).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub created: Option<i64>,
    pub last_sign_in: Option<i64>,
    pub active: bool,
    pub status_changed: Option<i64>,
    pub exempt_until: Option<i64>,
}

/// A rule's verdict before exemptions: the action, when it became due, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub due: i64,
    pub why: String,
}

/// `YYYY-MM-DD` of a time.
pub fn day(t: i64) -> String {
    let g = generalized_time(t);
    format!(
        "{}-{}-{}",
        g.get(..4).unwrap_or(""),
        g.get(4..6).unwrap_or(""),
        g.get(6..8).unwrap_or("")
    )
}

/// What the rules say of one account at `now`, exemptions left aside.
pub fn decide(rules: &Dormancy, f: &Facts, now: i64) -> Option<Verdict> {
    // An active account's re-enabling counts as a fresh start.
    let restarted = f.status_changed.filter(|_| f.active);
    let later = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    match f.last_sign_in {
        None if rules.never_used_days > 0 => {
            let since = if f.active {
                later(f.created, restarted)?
            } else {
                f.created?
            };
            let due = since.saturating_add(i64::from(rules.never_used_days) * DAY);
            (now > due).then(|| Verdict {
                action: Action::Remove,
                due,
                why: format!(
                    "never signed in; {} {}, more than {} days before {}",
                    if Some(since) == restarted && restarted != f.created {
                        "re-enabled"
                    } else {
                        "created"
                    },
                    day(since),
                    rules.never_used_days,
                    day(now)
                ),
            })
        }
        Some(last) if rules.inactive_days > 0 && f.active => {
            let since = later(Some(last), restarted).unwrap_or(last);
            let due = since.saturating_add(i64::from(rules.inactive_days) * DAY);
            (now > due).then(|| Verdict {
                action: Action::Disable,
                due,
                why: if since == last {
                    format!(
                        "last sign-in {}, more than {} days before {}",
                        day(last),
                        rules.inactive_days,
                        day(now)
                    )
                } else {
                    format!(
                        "last sign-in {}; re-enabled {}, more than {} days before {}",
                        day(last),
                        day(since),
                        rules.inactive_days,
                        day(now)
                    )
                },
            })
        }
        _ => None,
    }
}

/// The facts of an entry, read in place.
fn facts_of<E: AttrSource + ?Sized>(entry: &E, last_sign_in: Option<i64>) -> Facts {
    let time = |a: &str| entry.first_text(a).and_then(time_of);
    Facts {
        created: time("createTimestamp"),
        last_sign_in,
        active: !is_disabled(entry),
        status_changed: time("onePagesStatusChanged"),
        exempt_until: time("onePagesExemptUntil"),
    }
}

/// Whether the rules apply to this entry at all.
fn in_scope<E: AttrSource + ?Sized>(dsa: &Dsa, ndn: &str, entry: &E) -> bool {
    entry.first_text("uid").is_some()
        && !entry.has_text_ci("onePagesAccountType", "external")
        && dsa.role_of(ndn, entry) == Role::User
}

/// The report's line for an account, when the rules (or its exemption) put it there.
fn item_of<E: AttrSource + ?Sized>(
    rules: &Dormancy,
    entry: &E,
    f: &Facts,
    now: i64,
) -> Option<Item> {
    let verdict = decide(rules, f, now);
    let exempt = f.exempt_until.filter(|until| *until > now);
    let text = |a: &str| entry.first_text(a).map(str::to_string);
    let reason = text("onePagesExemptReason");
    let (action, due, why) = match (verdict, exempt) {
        (Some(v), None) => (v.action, Some(v.due), v.why),
        (Some(v), Some(until)) => (
            Action::Skip,
            Some(v.due),
            format!(
                "exempt until {}{}; otherwise {}: {}",
                day(until),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                v.action.word(),
                v.why
            ),
        ),
        (None, Some(until)) if until <= now.saturating_add(EXEMPTION_NOTICE_DAYS * DAY) => (
            Action::ExemptionEnds,
            None,
            format!(
                "exemption ends {}{}",
                day(until),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ),
        _ => return None,
    };
    Some(Item {
        action,
        dn: entry.dn().to_string(),
        uid: text("uid").unwrap_or_default(),
        name: text("displayName").or_else(|| text("cn")),
        mail: text("mail"),
        created: f.created.map(day),
        last_sign_in: f.last_sign_in.map(day),
        due: due.map(day),
        exempt_until: exempt.map(day),
        exempt_reason: if exempt.is_some() { reason } else { None },
        why,
        outcome: None,
    })
}

/// Evaluates the rules over the directory at `now` (seconds since 1970).
pub fn evaluate(dsa: &Dsa, now: i64) -> Result<Report, DsaError> {
    let started = std::time::Instant::now();
    let rules = dsa.settings().dormancy;
    let people = ldap3_proto::LdapFilter::And(vec![
        ldap3_proto::LdapFilter::Equality("objectClass".into(), "person".into()),
        ldap3_proto::LdapFilter::Present("uid".into()),
    ]);
    let filter = compile(&people, dsa.schema(), dsa.settings().limits.filter)
        .map_err(|e| DsaError::Internal(e.to_string()))?;
    let reader = dsa.reader();
    let query = Query {
        base_ndn: dsa.suffix_ndn(),
        scope: Scope::Subtree,
        filter: &filter,
        hide_disabled: false,
    };
    let (mut accounts, mut undated, mut items) = (0, 0, Vec::new());
    let mut search = reader.search(query, Budget::unbounded());
    let _ = search.each(&mut |id, view| {
        if in_scope(dsa, view.ndn, view) {
            accounts += 1;
            let facts = facts_of(view, dsa.sign_ins().last(id, view));
            if facts.created.is_none() {
                undated += 1;
            }
            if let Some(item) = item_of(&rules, view, &facts, now) {
                items.push(item);
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(crate::dsa::ReadStop::Failed(e)) = search.take_stop() {
        return Err(DsaError::Internal(format!("reading the accounts: {e}")));
    }
    items.sort_by(|a, b| (a.action as u8, &a.due, &a.uid).cmp(&(b.action as u8, &b.due, &b.uid)));
    Ok(Report {
        as_of: generalized_time(now),
        never_used_days: rules.never_used_days,
        inactive_days: rules.inactive_days,
        accounts,
        undated,
        applied: false,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        items,
    })
}

/// Evaluates the rules now and applies them: disables the inactive, removes the never used.
/// Each account is decided again just before its write (a sign-in since the evaluation saves
/// it); refusals are noted on its line. `via` names who runs it in the audit trail.
pub fn apply(dsa: &Dsa, grant: &WriteGrant, via: &str) -> Result<Report, DsaError> {
    let started = std::time::Instant::now();
    let now = dsa.now();
    let mut report = evaluate(dsa, now)?;
    let rules = dsa.settings().dormancy;
    let writer = dsa.writer(grant);
    let schema = dsa.schema();
    let due: Vec<usize> = report
        .items
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.action, Action::Remove | Action::Disable))
        .map(|(n, _)| n)
        .collect();
    for chunk in due.chunks(APPLY_BATCH) {
        let mut changes = Vec::with_capacity(chunk.len());
        let mut positions = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let Some(item) = report.items.get_mut(n) else {
                continue;
            };
            let Ok(dn) = Dn::parse(&item.dn) else {
                item.outcome = Some("refused: its DN does not parse".into());
                continue;
            };
            // Decided again on the entry as it is now.
            let reader = dsa.reader();
            let current = reader.entry(&dn.normalize(schema))?;
            let still = current.as_ref().and_then(|(id, e)| {
                let f = facts_of(e, dsa.sign_ins().last(*id, e));
                let exempt = f.exempt_until.is_some_and(|u| u > now);
                decide(&rules, &f, now)
                    .filter(|v| v.action == item.action && !exempt && in_scope(dsa, &e.ndn, e))
                    .map(|v| (v, e.values("objectClass").to_vec()))
            });
            let Some((verdict, classes)) = still else {
                item.outcome = Some("not needed any more (changed since the evaluation)".into());
                continue;
            };
            let change = match item.action {
                Action::Remove => Change::Delete { dn },
                _ => {
                    let mut edits = Vec::new();
                    if !classes
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(b"onePagesPerson"))
                    {
                        edits.push(Edit {
                            kind: EditKind::Add,
                            attr: "objectClass".into(),
                            values: vec![b"onePagesPerson".to_vec()],
                        });
                    }
                    edits.push(Edit {
                        kind: EditKind::Replace,
                        attr: "onePagesStatus".into(),
                        values: vec![b"disabled".to_vec()],
                    });
                    edits.push(Edit {
                        kind: EditKind::Replace,
                        attr: "onePagesStatusReason".into(),
                        values: vec![format!("dormant: {}", verdict.why).into_bytes()],
                    });
                    Change::Modify { dn, edits }
                }
            };
            changes.push(change);
            positions.push(n);
        }
        if changes.is_empty() {
            continue;
        }
        let applied = writer.write(changes)?;
        for (k, &n) in positions.iter().enumerate() {
            let Some(item) = report.items.get_mut(n) else {
                continue;
            };
            let refusal = applied.refused.iter().find(|(p, _)| *p == k);
            item.outcome = Some(match refusal {
                Some((_, r)) => format!("refused: {r}"),
                None if item.action == Action::Remove => "removed".into(),
                None => "disabled".into(),
            });
            dsa.audit().record(
                "dormant",
                serde_json::json!({
                    "action": item.action.word(),
                    "dn": item.dn,
                    "why": item.why,
                    "result": item.outcome,
                    "by": if grant.by().is_empty() { via } else { grant.by() },
                }),
            );
        }
    }
    report.applied = true;
    report.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    note(
        dsa,
        &report,
        now,
        if grant.by().is_empty() {
            via
        } else {
            grant.by()
        },
    );
    Ok(report)
}

/// Remembers a run of the rules as the directory's last (`dsa::runs`): what it found, what it
/// did.
fn note(dsa: &Dsa, report: &Report, started: i64, by: &str) {
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("accounts".to_string(), report.accounts as u64);
    for a in [
        Action::Remove,
        Action::Disable,
        Action::Skip,
        Action::ExemptionEnds,
    ] {
        counts.insert(a.word().to_string(), report.count(a) as u64);
    }
    let done = |word: &str| {
        report
            .items
            .iter()
            .filter(|i| i.outcome.as_deref() == Some(word))
            .count()
    };
    let (removed, disabled) = (done("removed"), done("disabled"));
    counts.insert("removed".into(), removed as u64);
    counts.insert("disabled".into(), disabled as u64);
    counts.insert("refused".into(), report.refused() as u64);
    let summary = if report.applied {
        format!(
            "applied: {removed} removed, {disabled} disabled, {} refused, of {} accounts",
            report.refused(),
            report.accounts
        )
    } else {
        format!(
            "report only: {} to remove, {} to disable, of {} accounts",
            report.count(Action::Remove),
            report.count(Action::Disable),
            report.accounts
        )
    };
    let run = RunNote {
        started,
        finished: dsa.now(),
        ok: report.refused() == 0,
        by: by.to_string(),
        summary,
        counts,
    };
    if let Err(e) = dsa.note_run(Run::Dormant, &run) {
        tracing::warn!(error = %e, "the dormant run could not be noted as the last one");
    }
}

/// The server's own run cannot change more than this share of the accounts at once (a clock
/// set years ahead would otherwise disable everyone): beyond it, it logs and waits for an
/// administrator's `onepages dormant --apply`.
pub const AUTO_APPLY_LIMIT_PERCENT: usize = 10;

/// The server's daily run: `report` logs what the rules would do, `apply` does it (within
/// [`AUTO_APPLY_LIMIT_PERCENT`]).
pub fn scheduled(dsa: &Dsa) -> Result<Report, DsaError> {
    use crate::config::DormantMode;
    const DAILY: &str = "the server's daily run";
    let now = dsa.now();
    let report = evaluate(dsa, now)?;
    let due = report.count(Action::Remove) + report.count(Action::Disable);
    let mode = dsa.settings().dormancy.mode;
    if mode != DormantMode::Apply || due == 0 {
        note(dsa, &report, now, DAILY);
        return Ok(report);
    }
    if due * 100 > report.accounts * AUTO_APPLY_LIMIT_PERCENT {
        tracing::warn!(
            due,
            accounts = report.accounts,
            "dormant_policy = apply: the rules would change more than {AUTO_APPLY_LIMIT_PERCENT}% \
             of the accounts at once; nothing done (check the clock, then run onepages dormant \
             --apply)"
        );
        note(dsa, &report, now, DAILY);
        return Ok(report);
    }
    apply(
        dsa,
        &dsa.policy_grant(),
        "the server (dormant_policy = apply)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DormantMode;

    fn rules() -> Dormancy {
        Dormancy {
            never_used_days: 183,
            inactive_days: 396,
            mode: DormantMode::Report,
            record_sign_ins: true,
            sign_in_precision: std::time::Duration::from_secs(86_400),
            every: std::time::Duration::from_secs(86_400),
        }
    }

    const NOW: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

    #[test]
    fn never_used_is_removed_after_more_than_six_months_exactly() {
        let r = rules();
        let at = |created| Facts {
            created: Some(created),
            active: true,
            ..Facts::default()
        };
        assert_eq!(
            decide(&r, &at(NOW - 183 * DAY), NOW),
            None,
            "exactly 183 days"
        );
        let v = decide(&r, &at(NOW - 183 * DAY - 1), NOW).unwrap();
        assert_eq!(v.action, Action::Remove);
        assert_eq!(day(v.due), "2026-11-30");
        assert!(v.why.contains("created 2026-05-31"), "{}", v.why);
        assert!(decide(&r, &at(NOW - 184 * DAY), NOW).is_some());
        // No creation time: never removed as never used.
        let undated = Facts {
            active: true,
            ..Facts::default()
        };
        assert_eq!(decide(&r, &undated, NOW), None);
    }

    #[test]
    fn inactive_is_disabled_after_thirteen_months_and_a_day() {
        let r = rules();
        let signed = |last| Facts {
            created: Some(NOW - 1000 * DAY),
            last_sign_in: Some(last),
            active: true,
            ..Facts::default()
        };
        assert_eq!(decide(&r, &signed(NOW - 396 * DAY), NOW), None);
        let v = decide(&r, &signed(NOW - 397 * DAY), NOW).unwrap();
        assert_eq!(v.action, Action::Disable);
        assert_eq!(
            decide(&r, &signed(NOW - DAY), NOW),
            None,
            "signed in yesterday"
        );
        // Already disabled: nothing more to do.
        let disabled = Facts {
            active: false,
            ..signed(NOW - 999 * DAY)
        };
        assert_eq!(decide(&r, &disabled, NOW), None);
        // Re-enabled a week ago: counts from then.
        let reenabled = Facts {
            status_changed: Some(NOW - 7 * DAY),
            ..signed(NOW - 999 * DAY)
        };
        assert_eq!(decide(&r, &reenabled, NOW), None);
        let long_ago = Facts {
            status_changed: Some(NOW - 400 * DAY),
            ..signed(NOW - 999 * DAY)
        };
        assert!(decide(&r, &long_ago, NOW)
            .unwrap()
            .why
            .contains("re-enabled"));
    }

    #[test]
    fn a_rule_at_zero_days_is_off() {
        let r = Dormancy {
            never_used_days: 0,
            inactive_days: 0,
            ..rules()
        };
        let old = Facts {
            created: Some(0),
            active: true,
            ..Facts::default()
        };
        assert_eq!(decide(&r, &old, NOW), None);
        let inactive = Facts {
            last_sign_in: Some(0),
            ..old
        };
        assert_eq!(decide(&r, &inactive, NOW), None);
    }

    #[test]
    fn exemptions_skip_until_they_end_and_are_listed_before() {
        let r = rules();
        let mut e = crate::directory::entry::Entry::new("uid=a".into(), "uid=a".into());
        for (a, v) in [
            ("uid", "a.b@oneid.on.ca"),
            ("onePagesExemptReason", "parental leave"),
        ] {
            e.attrs.push(crate::directory::entry::Attribute {
                name: a.into(),
                values: vec![v.as_bytes().to_vec()],
            });
        }
        let due = Facts {
            created: Some(NOW - 300 * DAY),
            active: true,
            exempt_until: Some(NOW + 10 * DAY),
            ..Facts::default()
        };
        let item = item_of(&r, &e, &due, NOW).unwrap();
        assert_eq!(item.action, Action::Skip);
        assert_eq!(item.exempt_reason.as_deref(), Some("parental leave"));
        assert!(item.why.contains("otherwise remove"), "{}", item.why);
        // The exemption has ended: the rule applies.
        let ended = Facts {
            exempt_until: Some(NOW),
            ..due
        };
        assert_eq!(item_of(&r, &e, &ended, NOW).unwrap().action, Action::Remove);
        // Not due, exemption ending within 30 days: listed; further away: not.
        let fine = Facts {
            created: Some(NOW - 10 * DAY),
            exempt_until: Some(NOW + 30 * DAY),
            ..due
        };
        assert_eq!(
            item_of(&r, &e, &fine, NOW).unwrap().action,
            Action::ExemptionEnds
        );
        let later = Facts {
            exempt_until: Some(NOW + 31 * DAY),
            ..fine
        };
        assert_eq!(item_of(&r, &e, &later, NOW), None);
    }
}
