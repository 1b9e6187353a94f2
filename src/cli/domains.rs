//! `onepages domains list|add|remove`: the registry of secure mail domains.
//!
//! Registered domains are entries `associatedDomain=<domain>,ou=domains,<suffix>`, so a
//! registration made through a running server (`--server`) or offline takes effect on the
//! next read, without a restart. Domains in the configuration's `secure_domains` are listed
//! too, marked, but can only be changed there (a running server shows them in its root DSE as
//! `onePagesConfiguredDomain`). Public webmail domains (`data/webmail-domains.txt`) are refused
//! unless forced with a reason, which the domain's entry keeps and the audit trail records.

use std::collections::HashSet;

use clap::{Args, Subcommand};

use super::{Common, Online};
use crate::directory::dn::{escape_into, Dn};
use crate::directory::values;
use crate::dsa::{Change, Dsa};

#[derive(Debug, Args)]
pub struct DomainsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the secure mail domains
    List,
    /// Register a domain as secure
    Add {
        domain: String,
        /// The organisation the domain belongs to
        #[arg(long)]
        org: Option<String>,
        /// Register a public webmail domain anyway (needs --reason)
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why a public webmail domain is secure here (kept on the entry, audited)
        #[arg(long, requires = "force")]
        reason: Option<String>,
    },
    /// Remove a registered domain
    Remove { domain: String },
}

fn clean(domain: &str) -> anyhow::Result<String> {
    let d = domain.trim().trim_start_matches('@').to_lowercase();
    if let Some(why) = values::domain_problem(&d) {
        anyhow::bail!("{why}");
    }
    // Registered in A-label form, as the registry compares.
    values::domain_ascii(&d).map_err(|e| anyhow::anyhow!(e))
}

/// The attributes of a domain's entry.
fn domain_attrs(domain: &str, org: Option<&str>, reason: Option<&str>) -> Vec<(String, String)> {
    let mut attrs = vec![
        ("objectClass".to_string(), "onePagesMailDomain".to_string()),
        ("associatedDomain".to_string(), domain.to_string()),
    ];
    if let Some(o) = org {
        attrs.push(("o".into(), o.to_string()));
    }
    if let Some(r) = reason {
        attrs.push(("onePagesForcedReason".into(), r.trim().to_string()));
    }
    attrs
}

/// Refuses a forced registration of a domain that needs no force.
fn check_force(domain: &str, force: bool) -> anyhow::Result<()> {
    if force && values::public_webmail(domain).is_none() {
        anyhow::bail!("{domain} is not a public webmail domain: register it without --force");
    }
    Ok(())
}

/// What removing a configured domain takes.
fn configured(domain: &str) -> String {
    format!(
        "{domain} is secure by the server's configuration (secure_domains): remove it there and \
         restart the server"
    )
}

fn domain_dn(domain: &str, suffix: &str) -> String {
    let mut rdn = String::from("associatedDomain=");
    escape_into(&mut rdn, domain);
    format!("{rdn},ou=domains,{suffix}")
}

pub fn run(args: DomainsArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        return online(&args);
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages domains", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (use --server to change a running server)"))?;
    let suffix = dsa.settings().suffix.clone();
    let grant = dsa.operator_grant()?;
    let writer = dsa.writer(&grant);
    let reader = dsa.reader();
    match &args.action {
        Action::List => {
            let configured: &[String] = &dsa.settings().secure_domains;
            for d in reader.domains().iter() {
                if configured.contains(d) {
                    println!("{d}\t(configuration)");
                } else {
                    println!("{d}\t{}", registered_note(&dsa, d)?);
                }
            }
        }
        Action::Add {
            domain,
            org,
            force,
            reason,
        } => {
            let domain = clean(domain)?;
            check_force(&domain, *force)?;
            if dsa.settings().secure_domains.contains(&domain) {
                anyhow::bail!("{domain} is already secure by the server's configuration");
            }
            let mut changes = Vec::new();
            if !reader.exists(&dsa.domains_ndn())? {
                changes.push(Change::Add {
                    dn: Dn::parse(&format!("ou=domains,{suffix}"))?,
                    attrs: vec![
                        ("objectClass".into(), vec![b"organizationalUnit".to_vec()]),
                        ("ou".into(), vec![b"domains".to_vec()]),
                    ],
                });
            }
            let attrs = domain_attrs(&domain, org.as_deref(), reason.as_deref())
                .into_iter()
                .map(|(a, v)| (a, vec![v.into_bytes()]))
                .collect();
            changes.push(Change::Add {
                dn: Dn::parse(&domain_dn(&domain, &suffix))?,
                attrs,
            });
            if let Some((_, why)) = writer.write(changes)?.refused.into_iter().next() {
                anyhow::bail!("{why}");
            }
            println!("{domain} registered as secure");
        }
        Action::Remove { domain } => {
            let domain = clean(domain)?;
            if dsa.settings().secure_domains.contains(&domain) {
                anyhow::bail!("{}", configured(&domain));
            }
            let dn = Dn::parse(&domain_dn(&domain, &suffix))?;
            if !reader.exists(&dsa.normalize_dn(&dn))? {
                anyhow::bail!("{domain} is not registered");
            }
            if let Err(why) = writer.write_one(Change::Delete { dn })? {
                anyhow::bail!("{why}");
            }
            println!("{domain} removed");
        }
    }
    dsa.shutdown()?;
    Ok(())
}

fn online(args: &DomainsArgs) -> anyhow::Result<()> {
    let (mut conn, suffix) = args.online.connect(&args.common)?;
    match &args.action {
        Action::List => {
            let mut lines = std::collections::BTreeMap::new();
            for d in configured_online(&mut conn)? {
                lines.insert(d, "(configuration)".to_string());
            }
            let (entries, _) = conn
                .search(
                    &format!("ou=domains,{suffix}"),
                    ldap3::Scope::OneLevel,
                    "(objectClass=onePagesMailDomain)",
                    vec!["associatedDomain", "onePagesForcedReason"],
                )?
                .success()?;
            for e in entries {
                let e = ldap3::SearchEntry::construct(e);
                let reason = e.attrs.get("onePagesForcedReason").and_then(|v| v.first());
                for d in e.attrs.get("associatedDomain").into_iter().flatten() {
                    lines
                        .entry(d.to_lowercase())
                        .or_insert_with(|| note(reason));
                }
            }
            for (d, note) in lines {
                println!("{d}\t{note}");
            }
        }
        Action::Add {
            domain,
            org,
            force,
            reason,
        } => {
            let domain = clean(domain)?;
            check_force(&domain, *force)?;
            if configured_online(&mut conn)?.contains(&domain) {
                anyhow::bail!("{domain} is already secure by the server's configuration");
            }
            let attrs: Vec<(String, HashSet<String>)> =
                domain_attrs(&domain, org.as_deref(), reason.as_deref())
                    .into_iter()
                    .map(|(a, v)| (a, HashSet::from([v])))
                    .collect();
            conn.add(&domain_dn(&domain, &suffix), attrs)?.success()?;
            println!("{domain} registered as secure");
        }
        Action::Remove { domain } => {
            let domain = clean(domain)?;
            if configured_online(&mut conn)?.contains(&domain) {
                anyhow::bail!("{}", configured(&domain));
            }
            conn.delete(&domain_dn(&domain, &suffix))?.success()?;
            println!("{domain} removed");
        }
    }
    let _ = conn.unbind();
    Ok(())
}

/// How `list` marks a registered domain.
fn note(reason: Option<&String>) -> String {
    match reason {
        Some(r) => format!("(registered; forced: {r})"),
        None => "(registered)".into(),
    }
}

fn registered_note(dsa: &Dsa, domain: &str) -> anyhow::Result<String> {
    let dn = Dn::parse(&domain_dn(domain, &dsa.settings().suffix))?;
    let reason = dsa
        .reader()
        .entry(&dsa.normalize_dn(&dn))?
        .and_then(|(_, e)| e.first_str("onePagesForcedReason").map(String::from));
    Ok(note(reason.as_ref()))
}

/// The configured secure domains of a running server, from its root DSE.
fn configured_online(conn: &mut ldap3::LdapConn) -> anyhow::Result<Vec<String>> {
    let (entries, _) = conn
        .search(
            "",
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["onePagesConfiguredDomain"],
        )?
        .success()?;
    Ok(entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .flat_map(|e| {
            e.attrs
                .get("onePagesConfiguredDomain")
                .cloned()
                .unwrap_or_default()
        })
        .map(|d| d.to_lowercase())
        .collect())
}
