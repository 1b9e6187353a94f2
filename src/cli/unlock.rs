//! `onepages unlock ONE-ID|DN`: clears an account's failed binds and lockout.
//!
//! Through a running server (`--server`, as an administrator: the same LDAP modify any admin
//! tool can send, deleting `pwdAccountLockedTime`), or offline on a data directory. Either way
//! the audit trail records who unlocked whom.

use clap::Args;

use super::{Common, Online};
use crate::dsa::Dsa;

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// The account: its ONE ID username (firstname.lastname@oneid.on.ca) or its DN
    pub account: String,
}

pub fn run(args: UnlockArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        return online(&args);
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages unlock", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (use --server to unlock through the running server)"))?;
    let found = crate::ops::bind::resolve(&dsa.reader(), args.account.trim())
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let Some((_, entry)) = found else {
        anyhow::bail!("no account {}", args.account);
    };
    let grant = dsa.operator_grant()?;
    let ndn = dsa.normalize_dn(&crate::directory::dn::Dn::parse(&entry.dn)?);
    match dsa.unlock(&grant, &ndn, "cli")? {
        Some((dn, true)) => println!("{dn}: unlocked"),
        Some((dn, false)) => println!("{dn}: was not locked (its failed sign-ins are cleared)"),
        None => anyhow::bail!("no account {}", args.account),
    }
    dsa.shutdown()?;
    Ok(())
}

fn online(args: &UnlockArgs) -> anyhow::Result<()> {
    let (mut conn, suffix) = args.online.connect(&args.common)?;
    let entry = super::find_account(
        &mut conn,
        &suffix,
        &args.account,
        vec!["pwdAccountLockedTime"],
    )?;
    let was_locked = entry.attrs.contains_key("pwdAccountLockedTime");
    let mods: Vec<ldap3::Mod<String>> = vec![ldap3::Mod::Delete(
        "pwdAccountLockedTime".to_string(),
        std::collections::HashSet::new(),
    )];
    conn.modify(&entry.dn, mods)?
        .success()
        .map_err(|e| anyhow::anyhow!("unlocking {}: {e}", entry.dn))?;
    if was_locked {
        println!("{}: unlocked", entry.dn);
    } else {
        println!(
            "{}: was not locked (its failed sign-ins are cleared)",
            entry.dn
        );
    }
    let _ = conn.unbind();
    Ok(())
}
