//! `onepages trash list|restore|purge`: deleted entries kept for `tombstone_days`.
//!
//! Offline on a data directory, or through a running server with `--server` as an
//! administrator, using what any LDAP tool can send: a search with the Show Deleted control
//! (`1.2.840.113556.1.4.417`) lists the tombstones, and the ONE Pages restore and purge
//! extended operations bring one back or forget them.

use clap::{Args, Subcommand};

use super::{Common, Online};
use crate::clock::generalized_time;
use crate::dsa::trash::{Purge, Tombstone};
use crate::dsa::Dsa;
use crate::ops::search::dse::{PURGE_OID, RESTORE_OID};
use crate::ops::search::request::SHOW_DELETED_OID;

#[derive(Debug, Args)]
pub struct TrashArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the deleted entries, the most recent first
    List {
        /// Only those deleted on or after this day (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// Bring a deleted entry back as it was (its entryUUID, timestamps and password)
    Restore {
        /// Its DN, ONE ID username, mail address or entryUUID (the most recent delete)
        entry: String,
    },
    /// Forget deleted entries for good: those past tombstone_days, or the ones named
    Purge {
        /// Every deleted entry, now
        #[arg(long, conflicts_with = "entry")]
        all: bool,
        /// Only this one: DN, ONE ID username, mail address or entryUUID
        entry: Option<String>,
    },
}

/// One line of `trash list`.
struct Line {
    deleted: String,
    purge: String,
    dn: String,
    by: String,
}

fn print(lines: &[Line]) {
    if lines.is_empty() {
        println!("the trash is empty");
        return;
    }
    for l in lines {
        let by = if l.by.is_empty() {
            "an offline operator"
        } else {
            l.by.as_str()
        };
        println!(
            "{}  {}  (deleted by {by}; purged after {})",
            l.deleted, l.dn, l.purge
        );
    }
}

/// `YYYY-MM-DD` (or a time) as the GeneralizedTime of its first second.
fn since_time(date: &str) -> anyhow::Result<String> {
    Ok(generalized_time(super::parse_day_or_time(
        "--since", date, false,
    )?))
}

pub fn run(args: TrashArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        return online(&args);
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages trash", &|_| {}).map_err(|e| {
        anyhow::anyhow!("{e} (use --server to reach the trash through the running server)")
    })?;
    let outcome = offline(&dsa, &args.action);
    dsa.shutdown()?;
    outcome
}

fn offline(dsa: &Dsa, action: &Action) -> anyhow::Result<()> {
    let line = |t: &Tombstone| Line {
        deleted: generalized_time(t.burial.at),
        purge: generalized_time(dsa.purge_time(t)),
        dn: t.entry.dn.clone(),
        by: t.burial.by.clone(),
    };
    match action {
        Action::List { since } => {
            let since = since.as_deref().map(since_time).transpose()?;
            let lines: Vec<Line> = dsa
                .tombstones()?
                .iter()
                .map(line)
                .filter(|l| since.as_ref().is_none_or(|s| l.deleted >= *s))
                .collect();
            print(&lines);
        }
        Action::Restore { entry } => {
            let grant = dsa.operator_grant()?;
            let restored = dsa
                .writer(&grant)
                .restore(entry)?
                .map_err(|r| anyhow::anyhow!("cannot restore {entry}: {r}"))?;
            println!("{}: restored", restored.dn);
        }
        Action::Purge { all, entry } => {
            let what = match (all, entry) {
                (true, _) => Purge::All,
                (false, None) => Purge::Expired,
                (false, Some(e)) => {
                    let ids: Vec<_> = dsa.find_tombstones(e)?.iter().map(|t| t.id).collect();
                    if ids.is_empty() {
                        anyhow::bail!("no deleted entry named {e}");
                    }
                    Purge::These(ids)
                }
            };
            let grant = dsa.operator_grant()?;
            let purged = dsa.writer(&grant).purge(what)?;
            for t in &purged {
                println!("{}: purged", t.entry.dn);
            }
            println!("{} deleted entries purged", purged.len());
        }
    }
    Ok(())
}

fn online(args: &TrashArgs) -> anyhow::Result<()> {
    let (mut conn, suffix) = args.online.connect(&args.common)?;
    match &args.action {
        Action::List { since } => {
            let mut filter = "(objectClass=*)".to_string();
            if let Some(s) = since {
                filter = format!("(onePagesDeletedAt>={})", since_time(s)?);
            }
            let show_deleted = ldap3::controls::RawControl {
                ctype: SHOW_DELETED_OID.to_string(),
                crit: true,
                val: None,
            };
            let (entries, _) = conn
                .with_controls(vec![show_deleted])
                .search(&suffix, ldap3::Scope::Subtree, &filter, vec!["+"])?
                .success()
                .map_err(|e| anyhow::anyhow!("listing the trash: {e}"))?;
            let first = |e: &ldap3::SearchEntry, a: &str| {
                e.attrs
                    .get(a)
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_default()
            };
            let lines: Vec<Line> = entries
                .into_iter()
                .map(ldap3::SearchEntry::construct)
                .map(|e| Line {
                    deleted: first(&e, "onePagesDeletedAt"),
                    purge: first(&e, "onePagesPurgeAt"),
                    by: first(&e, "onePagesDeletedBy"),
                    dn: e.dn,
                })
                .collect();
            print(&lines);
        }
        Action::Restore { entry } => {
            let (exop, _) = conn
                .extended(ldap3::exop::Exop {
                    name: Some(RESTORE_OID.to_string()),
                    val: Some(entry.trim().as_bytes().to_vec()),
                })?
                .success()
                .map_err(|e| anyhow::anyhow!("cannot restore {entry}: {e}"))?;
            let dn = String::from_utf8_lossy(&exop.val.unwrap_or_default()).into_owned();
            println!("{dn}: restored");
        }
        Action::Purge { all, entry } => {
            let val = match (all, entry) {
                (true, _) => Some(b"all".to_vec()),
                (false, None) => None,
                (false, Some(e)) => Some(e.trim().as_bytes().to_vec()),
            };
            let (exop, _) = conn
                .extended(ldap3::exop::Exop {
                    name: Some(PURGE_OID.to_string()),
                    val,
                })?
                .success()
                .map_err(|e| anyhow::anyhow!("purging the trash: {e}"))?;
            let n = String::from_utf8_lossy(&exop.val.unwrap_or_default()).into_owned();
            println!("{n} deleted entries purged");
        }
    }
    let _ = conn.unbind();
    Ok(())
}
