//! `onepages exempt ONE-ID --until DATE --reason TEXT` (or `--clear`): the dormant-account
//! rules leave the account alone until the end of that day (UTC); the exemption then ends by
//! itself. The same as an administrator's LDAP modify of `onePagesExemptUntil` and
//! `onePagesExemptReason`, offline on a data directory or through a running server with
//! `--server`.

use std::collections::HashSet;

use clap::Args;

use super::{parse_day_or_time, Common, Online};
use crate::clock::generalized_time;
use crate::directory::dn::Dn;
use crate::dsa::{Change, Dsa, Edit, EditKind};

#[derive(Debug, Args)]
pub struct ExemptArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// The account: its ONE ID username (firstname.lastname@oneid.on.ca) or its DN
    pub account: String,
    /// The last day of the exemption (YYYY-MM-DD, to its end, UTC), or a time
    #[arg(long, value_name = "DATE", required_unless_present = "clear")]
    pub until: Option<String>,
    /// Why (shown to administrators in reports): parental leave, sabbatical...
    #[arg(long, required_unless_present = "clear")]
    pub reason: Option<String>,
    /// End the account's exemption now
    #[arg(long, conflicts_with_all = ["until", "reason"])]
    pub clear: bool,
}

/// The values to set: `None` clears the exemption.
fn wanted(args: &ExemptArgs, now: i64) -> anyhow::Result<Option<(String, String)>> {
    if args.clear {
        return Ok(None);
    }
    let until = parse_day_or_time("--until", args.until.as_deref().unwrap_or(""), true)?;
    if until <= now {
        anyhow::bail!(
            "--until {}: that is past; an exemption ends in the future",
            args.until.as_deref().unwrap_or("")
        );
    }
    let reason = args.reason.as_deref().unwrap_or("").trim().to_string();
    if reason.is_empty() {
        anyhow::bail!("--reason: say why the account is exempt (it is shown in reports)");
    }
    Ok(Some((generalized_time(until), reason)))
}

fn edits(values: Option<&(String, String)>, has_class: bool) -> Vec<Edit> {
    let mut edits = Vec::new();
    if values.is_some() && !has_class {
        edits.push(Edit {
            kind: EditKind::Add,
            attr: "objectClass".into(),
            values: vec![b"onePagesPerson".to_vec()],
        });
    }
    let (until, reason) = match values {
        Some((u, r)) => (vec![u.clone().into_bytes()], vec![r.clone().into_bytes()]),
        None => (Vec::new(), Vec::new()),
    };
    for (attr, values) in [
        ("onePagesExemptUntil", until),
        ("onePagesExemptReason", reason),
    ] {
        edits.push(Edit {
            kind: EditKind::Replace,
            attr: attr.into(),
            values,
        });
    }
    edits
}

fn said(dn: &str, values: Option<&(String, String)>) {
    match values {
        Some((until, reason)) => println!(
            "{dn}: exempt from the dormant-account rules until {} ({reason})",
            crate::policy::dormant::day(crate::dsa::sign_in::time_of(until).unwrap_or(0))
        ),
        None => println!("{dn}: no longer exempt"),
    }
}

pub fn run(args: ExemptArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        return online(&args);
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages exempt", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (use --server to exempt through the running server)"))?;
    let outcome = offline(&dsa, &args);
    dsa.shutdown()?;
    outcome
}

fn offline(dsa: &Dsa, args: &ExemptArgs) -> anyhow::Result<()> {
    let values = wanted(args, dsa.now())?;
    let found = crate::ops::bind::resolve(&dsa.reader(), args.account.trim())
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let Some((_, entry)) = found else {
        anyhow::bail!("no account {}", args.account);
    };
    let has_class = entry
        .values("objectClass")
        .iter()
        .any(|c| c.eq_ignore_ascii_case(b"onePagesPerson"));
    let grant = dsa.operator_grant()?;
    dsa.writer(&grant)
        .write_one(Change::Modify {
            dn: Dn::parse(&entry.dn)?,
            edits: edits(values.as_ref(), has_class),
        })?
        .map_err(|r| anyhow::anyhow!("{}: {r}", entry.dn))?;
    said(&entry.dn, values.as_ref());
    Ok(())
}

fn online(args: &ExemptArgs) -> anyhow::Result<()> {
    let now = crate::clock::Clock::system().unix_secs();
    let values = wanted(args, now)?;
    let (mut conn, suffix) = args.online.connect(&args.common)?;
    let entry = super::find_account(&mut conn, &suffix, &args.account, vec!["objectClass"])?;
    let has_class = entry
        .attrs
        .get("objectClass")
        .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case("onePagesPerson")));
    let mods: Vec<ldap3::Mod<String>> = edits(values.as_ref(), has_class)
        .into_iter()
        .map(|e| {
            let set: HashSet<String> = e
                .values
                .into_iter()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .collect();
            match e.kind {
                EditKind::Add => ldap3::Mod::Add(e.attr, set),
                _ => ldap3::Mod::Replace(e.attr, set),
            }
        })
        .collect();
    conn.modify(&entry.dn, mods)?
        .success()
        .map_err(|e| anyhow::anyhow!("{}: {e}", entry.dn))?;
    let _ = conn.unbind();
    said(&entry.dn, values.as_ref());
    Ok(())
}
