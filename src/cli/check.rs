//! `onepages check ADDRESS...`: is mail to these addresses protected end to end?
//!
//! Reads a running server over LDAP (`--server`, the same search any client can make:
//! `(mail=ADDRESS)` asking for `oneMailSecure`), or a data directory offline. Each address is
//! secure, listed but not secure (and why), or unknown — and unknown addresses are not secure.
//! Exit status: 0 when every address is secure, 3 otherwise.

use clap::Args;

use super::{Common, Online};
use crate::dsa::{Dsa, Security};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Mail addresses to check
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

/// The verdict on one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Secure,
    Listed(String),
    Unknown,
}

impl Verdict {
    pub fn line(&self, address: &str) -> String {
        match self {
            Verdict::Secure => format!("{address}: secure"),
            Verdict::Listed(why) => format!("{address}: {why}"),
            Verdict::Unknown => format!("{address}: not in the directory, NOT secure"),
        }
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let verdicts = match &args.online.server {
        Some(_) => online(&args)?,
        None => {
            let settings = args.common.settings(None)?;
            let (dsa, _) = Dsa::open(settings, "onepages check", &|_| {}).map_err(|e| {
                anyhow::anyhow!("{e} (use --server to ask the running server instead)")
            })?;
            args.addresses
                .iter()
                .map(|a| offline(&dsa, a))
                .collect::<anyhow::Result<Vec<_>>>()?
        }
    };
    let mut all_secure = true;
    for (address, v) in args.addresses.iter().zip(&verdicts) {
        println!("{}", v.line(address));
        all_secure &= *v == Verdict::Secure;
    }
    if !all_secure {
        std::process::exit(3);
    }
    Ok(())
}

/// The verdict from an open data directory.
pub fn offline(dsa: &Dsa, address: &str) -> anyhow::Result<Verdict> {
    let reader = dsa.reader();
    let found = reader.find_equal("mail", address.trim().as_bytes())?;
    let mut best: Option<Security> = None;
    for (_, entry) in &found {
        match reader.security(entry) {
            Some(Security::Secure) => return Ok(Verdict::Secure),
            Some(s) => best = best.or(Some(s)),
            None => {}
        }
    }
    Ok(match best {
        Some(s) => Verdict::Listed(s.describe().to_string()),
        None => Verdict::Unknown,
    })
}

fn online(args: &CheckArgs) -> anyhow::Result<Vec<Verdict>> {
    let (mut conn, base) = args.online.connect(&args.common)?;
    let mut out = Vec::new();
    for address in &args.addresses {
        let filter = format!("(mail={})", ldap3::ldap_escape(address.trim()));
        let (entries, res) = conn
            .search(
                &base,
                ldap3::Scope::Subtree,
                &filter,
                vec!["oneMailSecure", "onePagesStatus", "onePagesAccountType"],
            )?
            .success()?;
        let _ = res;
        let mut verdict = Verdict::Unknown;
        for e in entries {
            let e = ldap3::SearchEntry::construct(e);
            let secure = e
                .attrs
                .get("oneMailSecure")
                .and_then(|v| v.first())
                .is_some_and(|v| v == "TRUE");
            if secure {
                verdict = Verdict::Secure;
                break;
            }
            let status = e
                .attrs
                .get("onePagesStatus")
                .and_then(|v| v.first())
                .cloned();
            let kind = e
                .attrs
                .get("onePagesAccountType")
                .and_then(|v| v.first())
                .cloned();
            let why = if kind.as_deref() == Some("external") {
                Security::External
            } else if status.as_deref() == Some("disabled") {
                Security::Disabled
            } else {
                Security::UnregisteredDomain
            };
            verdict = Verdict::Listed(why.describe().to_string());
        }
        out.push(verdict);
    }
    let _ = conn.unbind();
    Ok(out)
}
