//! The trash: a deleted entry is kept as a tombstone for `tombstone_days` (30 by default), out
//! of every search, with its id, `entryUUID`, timestamps and password hash, so that an
//! administrator can bring it back as it was. Tombstones live in the store beside the entries
//! (key `t`), written in the same atomic batch as the delete that makes them; the index never
//! sees them.
//!
//! A restore goes through the writer like any other change ([`Change::Restore`]): the name, the
//! parent and the entry's ONE ID and mail must still be free, or it is refused with the holder.
//! Tombstones past their time are purged by [`Writer::purge`], which the server runs at
//! start-up and every hour; each purge is one atomic batch and one audit line.

use super::{Change, Dsa, DsaError, WriteRefusal, Writer};
use crate::directory::dn::Dn;
use crate::directory::entry::EntryId;
use crate::store::Write;
pub use crate::store::{Burial, Tombstone};

const DAY_SECS: i64 = 86_400;

/// How often a serving process purges expired tombstones (besides at start-up).
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The refusal of a restore whose tombstone is gone.
pub(super) fn no_tombstone(id: EntryId) -> WriteRefusal {
    WriteRefusal::NoSuchObject {
        dn: format!("#{id} in the trash (restored or purged already)"),
        matched: String::new(),
    }
}

/// Which tombstones a purge forgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purge {
    /// Those kept longer than `tombstone_days`.
    Expired,
    /// Every one, now.
    All,
    /// These (tombstone ids), now.
    These(Vec<EntryId>),
}

impl Dsa {
    /// Every tombstone, the most recently deleted first.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>, DsaError> {
        let mut all = self.store.tombstones()?;
        all.sort_by(|a, b| b.burial.at.cmp(&a.burial.at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Purges the tombstones past their time (the server's housekeeping: at start-up and
    /// every [`PURGE_EVERY`]).
    pub fn purge_expired(&self) -> Result<Vec<Tombstone>, DsaError> {
        let grant = self.housekeeping_grant();
        self.writer(&grant).purge(Purge::Expired)
    }

    /// When a tombstone is purged (seconds since 1970).
    pub fn purge_time(&self, tomb: &Tombstone) -> i64 {
        tomb.burial
            .at
            .saturating_add(i64::from(self.settings.tombstone_days) * DAY_SECS)
    }

    /// The tombstones `which` names, the most recently deleted first: a DN, an `entryUUID`, a
    /// ONE ID (`uid`) or a mail address.
    pub fn find_tombstones(&self, which: &str) -> Result<Vec<Tombstone>, DsaError> {
        let which = which.trim();
        let ndn = Dn::parse(which)
            .ok()
            .filter(|dn| !dn.is_root() && which.contains('='))
            .map(|dn| self.normalize_dn(&dn));
        let key = super::plan::unique_key(which.as_bytes());
        Ok(self
            .tombstones()?
            .into_iter()
            .filter(|t| {
                let e = &t.entry;
                match &ndn {
                    Some(ndn) => e.ndn == *ndn,
                    None => {
                        e.first_str("entryUUID")
                            .is_some_and(|u| u.eq_ignore_ascii_case(which))
                            || ["uid", "mail"].iter().any(|a| {
                                e.values(a)
                                    .iter()
                                    .any(|v| super::plan::unique_key(v) == key)
                            })
                    }
                }
            })
            .collect())
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub dn: String,
    pub id: EntryId,
}

impl Writer<'_> {
    /// Brings back the most recently deleted entry `which` names (see
    /// [`Dsa::find_tombstones`]); `Ok(Err(refusal))` when there is none, or its name, parent,
    /// ONE ID or mail is not free.
    pub fn restore(&self, which: &str) -> Result<Result<Restored, WriteRefusal>, DsaError> {
        let Some(tomb) = self.dsa.find_tombstones(which)?.into_iter().next() else {
            return Ok(Err(WriteRefusal::NoSuchObject {
                dn: format!("{which} in the trash"),
                matched: String::new(),
            }));
        };
        let (id, dn) = (tomb.id, tomb.entry.dn.clone());
        if let Err(refusal) = self.write_one(Change::Restore { id })? {
            return Ok(Err(refusal));
        }
        let by = self.by();
        self.dsa.audit().record(
            "restore",
            serde_json::json!({
                "entry": dn,
                "deleted": crate::clock::generalized_time(tomb.burial.at),
                "by": if by.is_empty() { "offline operator" } else { by },
            }),
        );
        Ok(Ok(Restored { dn, id }))
    }

    /// Forgets tombstones, in one atomic batch with one audit line; returns those forgotten.
    /// Administrators and offline operators only.
    pub fn purge(&self, what: Purge) -> Result<Vec<Tombstone>, DsaError> {
        if !self.grant.may_administer() {
            return Err(DsaError::Denied(super::access::ADMINS_ONLY.into()));
        }
        let now = self.dsa.now();
        let chosen: Vec<Tombstone> = self
            .dsa
            .tombstones()?
            .into_iter()
            .filter(|t| match &what {
                Purge::Expired => self.dsa.purge_time(t) <= now,
                Purge::All => true,
                Purge::These(ids) => ids.contains(&t.id),
            })
            .collect();
        if chosen.is_empty() {
            return Ok(chosen);
        }
        {
            let _guard = self
                .dsa
                .writer_lock
                .lock()
                .map_err(|_| DsaError::Poisoned)?;
            let writes: Vec<Write> = chosen.iter().map(|t| Write::Forget { id: t.id }).collect();
            self.dsa.store.apply(&writes)?;
        }
        let ids: Vec<EntryId> = chosen.iter().map(|t| t.id).collect();
        self.dsa.sign_ins.forget(&ids);
        let by = self.by();
        self.dsa.audit().record(
            "purge",
            serde_json::json!({
                "reason": match what {
                    Purge::Expired => format!(
                        "kept longer than tombstone_days ({})",
                        self.dsa.settings.tombstone_days
                    ),
                    _ => "asked by an administrator".to_string(),
                },
                "count": chosen.len(),
                "entries": chosen.iter().map(|t| t.entry.dn.as_str()).collect::<Vec<_>>(),
                "by": if by.is_empty() { "the server" } else { by },
            }),
        );
        Ok(chosen)
    }
}
