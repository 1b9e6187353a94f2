//! The open directory (the directory system agent): schema, store and index together, behind
//! one reader, one writer and the access decisions that hand out writing rights.
//!
//! Nothing outside this module touches the store or the index. Reads go through
//! [`Reader`] (`Dsa::reader`), which plans candidates from the index, reads them from the store,
//! adds computed attributes and hands out what matches; it is also where entries hidden from a
//! reader will be left out, once. Changes go through [`Writer`], which exists only for a
//! [`WriteGrant`]: an access decision ([`Dsa::grant`] for a session, [`Dsa::operator_grant`]
//! for an offline command) is the only way to get one. Rights are decided against the
//! directory as it is at each operation, not as it was at bind time.

pub mod access;
pub mod backup;
pub mod budget;
pub mod census;
pub mod change;
mod claims;
mod edit;
pub mod init;
pub mod lockout;
pub mod plan;
pub mod reader;
pub mod runs;
mod schema_stamp;
pub mod security;
pub mod sign_in;
pub mod survey;
pub mod trash;
pub mod views;
pub mod writer;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::store::Repaired;
pub use access::{Grant, GrantCache, GrantSeed, Identity, Role, WriteGrant};
pub use change::{Applied, Change, Edit, EditKind, WriteRefusal};
pub use plan::{Plan, PlannedChange, PlannedKind};
pub use reader::{Budget, Query, ReadStop, Reader, Scope, Sink};
pub use security::Security;
pub use views::{SortValue, SortedView};
pub use writer::Writer;

use crate::config::Settings;
use crate::directory::dn::Dn;
use crate::directory::password::{DecoyHash, VerifiedCache};
use crate::directory::schema::{Schema, SchemaError, ValueRules};
use crate::index::terms::IndexSpec;
use crate::index::{CatchUp, Index, IndexError};
use crate::store::datadir::{DataDir, DataDirError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DsaError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("password hashing: {0}")]
    Password(#[from] crate::directory::password::PasswordError),
    #[error("{0}")]
    Log(#[from] std::io::Error),
    #[error(
        "data directory {dir} holds the directory of {stored}, not of {asked}: give the suffix \
         it was made with (--suffix or the configuration's suffix), or another --data-dir"
    )]
    SuffixMismatch {
        dir: String,
        stored: String,
        asked: String,
    },
    #[error("the writer lock is poisoned")]
    Poisoned,
    #[error("{0}")]
    Denied(String),
    /// A fault in the directory's own bookkeeping (a read that failed mid-way, a plan that
    /// lost an entry): never the client's doing.
    #[error("{0}")]
    Internal(String),
}

pub struct Dsa {
    schema: Arc<Schema>,
    store: Arc<Store>,
    index: Index,
    settings: Settings,
    /// Normalised suffix DN.
    suffix_ndn: String,
    /// Normalised DNs of the administrators named in the configuration.
    admins_ndn: Vec<String>,
    /// `identity_limits` with normalised DNs.
    identity_limits: Vec<(String, crate::config::LimitOverride)>,
    read_budgets: budget::ReadBudgets,
    views: views::ViewCache,
    /// The last census of the directory (`census.rs`).
    census: Mutex<census::Kept>,
    /// Subtree searches the index could not narrow (read in full).
    scans: AtomicU64,
    /// The secure-domain registry, with the domains epoch it was read at.
    registry: Mutex<Option<(u64, Arc<BTreeSet<String>>)>>,
    /// Bumped by every write within `ou=domains` (and only those): the registry is read
    /// again when it moves, not after every write to the directory.
    domains_epoch: AtomicU64,
    /// Held by [`Writer::apply`]: one batch at a time, in order.
    writer_lock: Mutex<()>,
    /// How long a failed bind's answer is held back, at least: what one argon2id check at
    /// the configured cost takes here (measured at open), with a margin so that a real check
    /// of a wrong password, which also allocates and looks up, ends before it.
    failed_bind_floor: std::time::Duration,
    /// Successful binds against slow hashes, remembered in memory for a while.
    verified: VerifiedCache,
    /// Failed binds counted, accounts locked, addresses braked.
    lockout: lockout::Lockout,
    /// Successful sign-ins, recorded off the entries.
    sign_ins: sign_in::SignIns,
    /// The audit trail (off unless configured).
    audit: crate::audit::Audit,
    /// Bumped by every write that changes or removes an existing entry: a session's cached
    /// grant is good while this has not moved (new entries change nobody's rights: entry ids
    /// are never reused, and a grant names its entry by id).
    auth_epoch: AtomicU64,
    /// Whether no network client can reach this directory yet: offline commands, and a server
    /// before [`Dsa::start_serving`]. Operator grants are handed out only then.
    offline: AtomicBool,
    data_dir: DataDir,
    /// When the schema in effect was put in place and last changed (`schema_stamp`).
    schema_times: (i64, i64),
    /// A digest of the schema's definitions (the subschema's times, the kept sorted lists).
    schema_print: String,
}

impl Dsa {
    /// Opens the data directory for `holder` (a description of this process, shown to anyone
    /// else who tries to open it) and brings the index up to date.
    pub fn open(
        settings: Settings,
        holder: &str,
        progress: &dyn Fn(usize),
    ) -> Result<(Dsa, CatchUp), DsaError> {
        let data_dir = DataDir::open(&settings.data_dir, holder)?;
        Dsa::open_in(data_dir, settings, progress)
    }

    /// Opens a data directory that already holds a directory (every command but `init`,
    /// `import` and `serve`): a mistyped --data-dir fails with its path instead of creating
    /// an empty one.
    pub fn open_existing(
        settings: Settings,
        holder: &str,
        progress: &dyn Fn(usize),
    ) -> Result<(Dsa, CatchUp), DsaError> {
        let data_dir = DataDir::open_existing(&settings.data_dir, holder)?;
        Dsa::open_in(data_dir, settings, progress)
    }

    fn open_in(
        data_dir: DataDir,
        settings: Settings,
        progress: &dyn Fn(usize),
    ) -> Result<(Dsa, CatchUp), DsaError> {
        let schema = Arc::new(load_schema(&settings)?);
        let store = Arc::new(Store::open(
            &data_dir.store_path(),
            settings.store_cache_bytes,
        )?);
        check_suffix(&store, &settings, &schema)?;
        let spec = IndexSpec::new(&settings.substring_attributes, &schema);
        let (index, catch_up) = Index::open(
            &data_dir.index_path(),
            Arc::clone(&store),
            Arc::clone(&schema),
            spec,
            progress,
        )?;
        index.set_commit_window(settings.index_commit_window);
        let suffix_ndn = Dn::parse(&settings.suffix)
            .map(|d| d.normalize(&schema))
            .unwrap_or_default();
        let identity_limits = budget::normalised(&settings, &schema);
        let admins_ndn = settings
            .admins
            .iter()
            .filter_map(|a| Dn::parse(a).ok())
            .map(|d| d.normalize(&schema))
            .collect();
        let failed_bind_floor = DecoyHash::new(settings.argon2)?
            .typical_duration(b"calibration")
            .mul_f64(1.4);
        let verified = VerifiedCache::new(settings.bind_cache_ttl, settings.bind_cache_entries);
        let lockout = lockout::Lockout::load(settings.lockout, Arc::clone(&store))?;
        let sign_ins = sign_in::SignIns::load(
            settings.dormancy.record_sign_ins,
            settings.dormancy.sign_in_precision,
            Arc::clone(&store),
        )?;
        let audit = crate::audit::Audit::open(settings.audit_log.as_ref(), settings.clock.clone())?;
        let schema_print = schema_stamp::fingerprint(&schema);
        let schema_times = schema_stamp::stamp(&store, &schema_print, settings.clock.unix_secs());
        Ok((
            Dsa {
                schema,
                store,
                index,
                settings,
                suffix_ndn,
                admins_ndn,
                identity_limits,
                read_budgets: budget::ReadBudgets::default(),
                views: views::ViewCache::default(),
                census: Mutex::new(None),
                scans: AtomicU64::new(0),
                registry: Mutex::new(None),
                domains_epoch: AtomicU64::new(0),
                writer_lock: Mutex::new(()),
                failed_bind_floor,
                verified,
                lockout,
                sign_ins,
                audit,
                auth_epoch: AtomicU64::new(0),
                offline: AtomicBool::new(true),
                data_dir,
                schema_times,
                schema_print,
            },
            catch_up,
        ))
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// When the schema in effect was put in place and when it last changed (seconds since
    /// 1970): the subschema subentry's createTimestamp and modifyTimestamp.
    pub fn schema_times(&self) -> (i64, i64) {
        self.schema_times
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The normalised suffix DN.
    pub fn suffix_ndn(&self) -> &str {
        &self.suffix_ndn
    }

    pub fn normalize_dn(&self, dn: &Dn) -> String {
        dn.normalize(&self.schema)
    }

    /// The least time a failed bind takes to be answered (see `ops::bind`).
    pub fn failed_bind_floor(&self) -> std::time::Duration {
        self.failed_bind_floor
    }

    pub fn verified(&self) -> &VerifiedCache {
        &self.verified
    }

    pub fn lockout(&self) -> &lockout::Lockout {
        &self.lockout
    }

    pub fn sign_ins(&self) -> &sign_in::SignIns {
        &self.sign_ins
    }

    pub fn audit(&self) -> &crate::audit::Audit {
        &self.audit
    }

    /// Clears the failed binds and lock of the entry named `ndn`; refused unless the grant is
    /// an administrator's or the offline operator's. `None` when there is no such entry;
    /// otherwise its DN and whether it was locked. The audit trail records it.
    pub fn unlock(
        &self,
        grant: &WriteGrant,
        ndn: &str,
        via: &str,
    ) -> Result<Option<(String, bool)>, DsaError> {
        if !grant.may_administer() {
            return Err(DsaError::Denied(
                "only administrators may unlock accounts".into(),
            ));
        }
        let Some((id, entry)) = self.store.get_by_ndn(ndn)? else {
            return Ok(None);
        };
        let was_locked = self.lockout.unlock(id, self.now());
        self.audit.record(
            "unlock",
            serde_json::json!({
                "dn": entry.dn,
                "by": grant.by(),
                "via": via,
                "was_locked": was_locked,
            }),
        );
        if was_locked {
            tracing::info!(dn = %entry.dn, by = grant.by(), "account unlocked");
        }
        Ok(Some((entry.dn, was_locked)))
    }

    /// The wall clock of time-dependent rules, in whole seconds since 1970.
    pub fn now(&self) -> i64 {
        self.settings.clock.unix_secs()
    }

    /// The one reader.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(self)
    }

    /// The one writer, for what `grant` allows.
    pub fn writer<'d>(&'d self, grant: &WriteGrant) -> Writer<'d> {
        Writer::new(self, grant.clone())
    }

    /// Starts serving: entries are held in memory for searches, and offline operator grants
    /// are no longer handed out. Returns the number of entries held.
    pub fn start_serving(&self) -> Result<usize, DsaError> {
        self.offline.store(false, Ordering::Release);
        let held = self.store.hold_entries()?;
        // The sorted lists kept before the restart (clean or not), each at its generation:
        // Outlook's first browse brings one forward with the change log instead of sorting
        // the directory.
        let (now, complete_after) = (self.store.generation(), self.store.log_complete_after());
        let views = self
            .views
            .load(&self.data_dir.views_path(), &self.schema_print, |g| {
                g <= now && g >= complete_after
            });
        if views > 0 {
            tracing::info!(views, "sorted lists kept from before the restart");
        }
        Ok(held)
    }

    /// Entries in the directory.
    pub fn entry_count(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Commits everything queued to the index and flushes the store (clean shutdown).
    pub fn shutdown(&self) -> Result<(), DsaError> {
        self.sign_ins.flush();
        self.index.flush()?;
        self.store.flush()?;
        if !self.offline.load(Ordering::Acquire) {
            if let Err(e) = self.keep_views() {
                tracing::warn!(error = %e, "the sorted lists could not be kept");
            }
        }
        self.index.shutdown();
        Ok(())
    }

    /// Writes the sorted lists that may outlive the process to `sorted-views.bin` when they
    /// changed since the last time, and holds the change log after the oldest of them
    /// (`server.rs` calls this every `sorted_lists_keep_secs`, and the shutdown). A log held
    /// for lists nobody uses any more is let go once it is longer than bringing a list
    /// forward is worth.
    pub fn keep_views(&self) -> Result<(), DsaError> {
        let path = self.data_dir.views_path();
        let saved = self
            .views
            .save(&path, self.store.durable_generation(), &self.schema_print)
            .map_err(|e| DsaError::Internal(format!("keeping the sorted lists: {e}")))?;
        match saved {
            views::Saved::Written { lists, oldest } => {
                self.store.keep_log_after(Some(oldest))?;
                tracing::debug!(lists, oldest, "sorted lists kept");
            }
            views::Saved::Nothing => {
                if self.store.log_floor().is_some() {
                    self.store.keep_log_after(None)?;
                }
            }
            views::Saved::Unchanged => {
                if let Some(floor) = self.store.log_floor() {
                    if self.store.log_len_after(floor, views::LOG_HELD_MAX)? >= views::LOG_HELD_MAX
                    {
                        let _ = std::fs::remove_file(&path);
                        self.views.forget_saved();
                        self.store.keep_log_after(None)?;
                        tracing::info!("the kept sorted lists are too far behind; let go");
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until every write so far is visible in the index (tests, checks).
    pub fn sync_index(&self) -> Result<(), DsaError> {
        Ok(self.index.flush()?)
    }

    /// Entries written but not yet committed to the index (searched from the store meanwhile).
    pub fn index_lag(&self) -> usize {
        self.index.dirty_count()
    }

    /// Subtree searches since the directory opened that the index could not narrow, so that
    /// every entry was read.
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    fn count_scan(&self) {
        self.scans.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `ndn` is one of the administrators named in the configuration.
    fn is_configured_admin(&self, ndn: &str) -> bool {
        self.admins_ndn.iter().any(|a| a == ndn)
    }

    fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::Acquire)
    }

    fn bump_auth_epoch(&self) {
        self.auth_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The normalised DN of the folder of registered mail domains.
    pub fn domains_ndn(&self) -> String {
        format!("ou=domains,{}", self.suffix_ndn)
    }
}

fn load_schema(settings: &Settings) -> Result<Schema, SchemaError> {
    let schema = match &settings.schema_dir {
        Some(dir) => Schema::from_dir(dir)?,
        None => Schema::builtin()?,
    };
    Ok(schema.with_value_rules(ValueRules {
        oneid_domain: settings.oneid_domain.clone(),
    }))
}

/// Rebuilds the search index of a data directory from its store, offline (`onepages reindex`).
/// Returns the number of entries indexed.
pub fn reindex_offline(
    settings: &Settings,
    holder: &str,
    progress: &dyn Fn(usize),
) -> Result<usize, DsaError> {
    let (schema, dir, store) = open_store_offline(settings, holder)?;
    rebuild_index(settings, &schema, &dir, &store, progress)
}

/// Removes, offline, the names and child links that lead to no entry of theirs (left by an
/// earlier build's id race; `Store::repair_names`), then rebuilds the search index from the
/// store when anything was removed: the index may describe a lost entry under the id its
/// survivor holds. Returns what was removed and how many entries were indexed (none when
/// nothing was).
pub fn repair_names_offline(
    settings: &Settings,
    holder: &str,
    progress: &dyn Fn(usize),
) -> Result<(Repaired, Option<usize>), DsaError> {
    let (schema, dir, store) = open_store_offline(settings, holder)?;
    let repaired = store.repair_names()?;
    if repaired.is_empty() {
        return Ok((repaired, None));
    }
    let indexed = rebuild_index(settings, &schema, &dir, &store, progress)?;
    Ok((repaired, Some(indexed)))
}

/// The schema, the data directory (held for `holder`) and its store, checked against the
/// configured suffix, without opening the index.
fn open_store_offline(
    settings: &Settings,
    holder: &str,
) -> Result<(Schema, DataDir, Store), DsaError> {
    let schema = load_schema(settings)?;
    let dir = DataDir::open_existing(&settings.data_dir, holder)?;
    let store = Store::open(&dir.store_path(), settings.store_cache_bytes)?;
    check_suffix(&store, settings, &schema)?;
    Ok((schema, dir, store))
}

fn rebuild_index(
    settings: &Settings,
    schema: &Schema,
    dir: &DataDir,
    store: &Store,
    progress: &dyn Fn(usize),
) -> Result<usize, DsaError> {
    let spec = IndexSpec::new(&settings.substring_attributes, schema);
    Ok(crate::index::rebuild_offline(
        &dir.index_path(),
        store,
        schema,
        &spec,
        progress,
    )?)
}

/// A store remembers the naming context it was made for: opening it for another fails with
/// both named (a store from before the record is recognised by one of its entries' names).
fn check_suffix(store: &Store, settings: &Settings, schema: &Schema) -> Result<(), DsaError> {
    let normal = |s: &str| Dn::parse(s).map(|d| d.normalize(schema)).ok();
    let asked = normal(&settings.suffix).unwrap_or_default();
    let mismatch = |stored: String| DsaError::SuffixMismatch {
        dir: settings.data_dir.display().to_string(),
        stored,
        asked: settings.suffix.clone(),
    };
    match store.suffix()? {
        Some(stored) => {
            if normal(&stored).unwrap_or_default() != asked {
                return Err(mismatch(stored));
            }
        }
        None => {
            if let Some(ndn) = store.some_ndn()? {
                let under = ndn == asked || ndn.ends_with(&format!(",{asked}"));
                if !under {
                    return Err(mismatch(format!("another suffix (it holds {ndn})")));
                }
            }
            store.set_suffix(&settings.suffix)?;
        }
    }
    Ok(())
}

/// A random (version 4) UUID in its text form.
pub fn new_uuid() -> String {
    use rand::RngCore;
    // The thread's generator (a CSPRNG seeded from the OS): one system call per UUID was
    // a tenth of an import's record checks.
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(hex(x >> 4));
        out.push(hex(x & 0x0f));
    }
    out
}

#[cfg(test)]
mod tests;
