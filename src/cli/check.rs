//! `onepages check ADDRESS...`: is mail to these addresses protected end to end?
//!
//! Reads a running server over LDAP (`--server`, the same search any client can make:
//! `(mail=ADDRESS)` asking for `oneMailSecure`), or a data directory offline. Each address is
//! secure, listed but not secure (and why), or unknown — and unknown addresses are not secure.
//! An address that more than one entry holds (data written before mail addresses were
//! unique) is not secure: which holder a sender reaches is not known.
//! Exit status: 0 when every address is secure, 3 otherwise.
//!
//! `onepages check --values` and `--duplicates` survey a data directory offline instead: the
//! entries with values today's rules refuse, and the `uid` and `mail` values held by more than
//! one entry (a running server logs the same at start-up). Exit status 3 when any are found.

use clap::Args;

use super::{Common, Online};
use crate::dsa::{Dsa, Security};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Mail addresses to check (as pasted from a mail client too: `Name <address>`)
    #[arg(required_unless_present_any = ["values", "duplicates"])]
    pub addresses: Vec<String>,
    /// List the stored entries whose values today's rules refuse (offline)
    #[arg(long, conflicts_with = "addresses")]
    pub values: bool,
    /// List the uid and mail values that more than one entry holds (offline)
    #[arg(long, conflicts_with = "addresses")]
    pub duplicates: bool,
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
    if args.values || args.duplicates {
        return survey(&args);
    }
    let verdicts = match &args.online.server {
        Some(_) => online(&args)?,
        None => {
            let settings = args.common.settings(None)?;
            let (dsa, _) =
                Dsa::open_existing(settings, "onepages check", &|_| {}).map_err(|e| {
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

fn survey(args: &CheckArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        anyhow::bail!(
            "--values and --duplicates read a data directory offline; a running server logs \
             the same findings at start-up"
        );
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages check", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (the running server logs these findings at start-up)"))?;
    let survey = dsa.survey(&std::sync::atomic::AtomicBool::new(false))?;
    let mut found = 0;
    if args.values {
        for (dn, why) in &survey.invalid {
            println!("{dn}: {why}");
        }
        found += survey.invalid.len();
        eprintln!(
            "{} of {} entries break a value rule",
            survey.invalid.len(),
            survey.entries
        );
    }
    if args.duplicates {
        for d in &survey.duplicates {
            println!(
                "{} '{}' is held by {} entries:",
                d.attr,
                d.value,
                d.holders.len()
            );
            for dn in &d.holders {
                println!("  {dn}");
            }
        }
        found += survey.duplicates.len();
        eprintln!(
            "{} uid or mail values are held by more than one entry",
            survey.duplicates.len()
        );
    }
    if found > 0 {
        std::process::exit(3);
    }
    Ok(())
}

fn duplicate(holders: usize) -> Verdict {
    Verdict::Listed(format!(
        "held by {holders} entries, so a sender cannot know which one mail reaches \
         (`onepages check --duplicates` lists them), NOT secure"
    ))
}

/// The address of what a user pastes from a mail client: `Name <addr>`, `"Name" <addr>`,
/// `<addr>`, `mailto:addr` or the bare address.
pub fn mailbox_of(text: &str) -> &str {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => text,
    };
    let inner = inner.trim();
    match inner.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => inner[7..].trim(),
        _ => inner,
    }
}

/// The verdict from an open data directory.
pub fn offline(dsa: &Dsa, address: &str) -> anyhow::Result<Verdict> {
    let reader = dsa.reader();
    let found = reader.find_equal("mail", mailbox_of(address).as_bytes())?;
    if found.len() > 1 {
        return Ok(duplicate(found.len()));
    }
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
        let filter = format!("(mail={})", ldap3::ldap_escape(mailbox_of(address)));
        let (entries, res) = conn
            .search(
                &base,
                ldap3::Scope::Subtree,
                &filter,
                vec!["oneMailSecure", "onePagesStatus", "onePagesAccountType"],
            )?
            .success()?;
        let _ = res;
        if entries.len() > 1 {
            out.push(duplicate(entries.len()));
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::mailbox_of;

    #[test]
    fn pasted_addresses_are_read_as_their_mailbox() {
        for text in [
            "amir.haddad@one-mail.on.ca",
            "  amir.haddad@one-mail.on.ca ",
            "Amir Haddad <amir.haddad@one-mail.on.ca>",
            "\"Haddad, Amir\" <amir.haddad@one-mail.on.ca>",
            "<amir.haddad@one-mail.on.ca>",
            "mailto:amir.haddad@one-mail.on.ca",
            "MAILTO:amir.haddad@one-mail.on.ca",
        ] {
            assert_eq!(mailbox_of(text), "amir.haddad@one-mail.on.ca", "{text}");
        }
    }
}
