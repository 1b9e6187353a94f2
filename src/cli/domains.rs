//! `onepages domains list|add|remove`: the registry of secure mail domains.
//!
//! Registered domains are entries `associatedDomain=<domain>,ou=domains,<suffix>`, so a
//! registration made through a running server (`--server`) or offline takes effect on the
//! next read, without a restart. Domains in the configuration's `secure_domains` are listed
//! too but can only be changed there.

use std::collections::HashSet;

use clap::{Args, Subcommand};

use super::{Common, Online};
use crate::directory::dn::{escape_into, Dn};
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
    },
    /// Remove a registered domain
    Remove { domain: String },
}

fn clean(domain: &str) -> anyhow::Result<String> {
    let d = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    if d.is_empty() || !d.contains('.') || d.contains(|c: char| c.is_whitespace() || c == ',') {
        anyhow::bail!("'{domain}' is not a domain name");
    }
    Ok(d)
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
    let (dsa, _) = Dsa::open(settings, "onepages domains", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (use --server to change a running server)"))?;
    let suffix = dsa.settings().suffix.clone();
    let grant = dsa.operator_grant()?;
    let writer = dsa.writer(&grant);
    let reader = dsa.reader();
    match &args.action {
        Action::List => {
            for d in reader.domains().iter() {
                println!("{d}");
            }
        }
        Action::Add { domain, org } => {
            let domain = clean(domain)?;
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
            let mut attrs = vec![("objectClass".into(), vec![b"onePagesMailDomain".to_vec()])];
            if let Some(o) = org {
                attrs.push(("o".into(), vec![o.as_bytes().to_vec()]));
            }
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
            let dn = Dn::parse(&domain_dn(&domain, &suffix))?;
            if !reader.exists(&dsa.normalize_dn(&dn))? {
                anyhow::bail!("{domain} is not registered (configured domains are changed in the configuration)");
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
            let (entries, _) = conn
                .search(
                    &format!("ou=domains,{suffix}"),
                    ldap3::Scope::OneLevel,
                    "(objectClass=onePagesMailDomain)",
                    vec!["associatedDomain"],
                )?
                .success()?;
            for e in entries {
                let e = ldap3::SearchEntry::construct(e);
                for d in e.attrs.get("associatedDomain").into_iter().flatten() {
                    println!("{d}");
                }
            }
            eprintln!("(domains in the server's configuration are not listed over LDAP)");
        }
        Action::Add { domain, org } => {
            let domain = clean(domain)?;
            let mut attrs: Vec<(String, HashSet<String>)> = vec![
                (
                    "objectClass".into(),
                    HashSet::from(["onePagesMailDomain".to_string()]),
                ),
                ("associatedDomain".into(), HashSet::from([domain.clone()])),
            ];
            if let Some(o) = org {
                attrs.push(("o".into(), HashSet::from([o.clone()])));
            }
            conn.add(&domain_dn(&domain, &suffix), attrs)?.success()?;
            println!("{domain} registered as secure");
        }
        Action::Remove { domain } => {
            let domain = clean(domain)?;
            conn.delete(&domain_dn(&domain, &suffix))?.success()?;
            println!("{domain} removed");
        }
    }
    let _ = conn.unbind();
    Ok(())
}
