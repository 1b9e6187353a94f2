//! `onepages check ADDRESS...`: is mail to these addresses protected end to end?
//!
//! Reads a running server over LDAP (`--server`, the same search any client can make:
//! `(mail=ADDRESS)` asking for `oneMailSecure`), or a data directory offline. Each address is
//! secure, listed but not secure (and why), or unknown — and unknown addresses are not secure.
//! An address that more than one entry holds (data written before mail addresses were
//! unique) is not secure: which holder a sender reaches is not known.
//! Exit status: 0 when every address is secure, 3 otherwise.
//!
//! It also says which encryption certificates the address's entry publishes
//! (`userSMIMECertificate`, `userCertificate`): subject, issuer and expiry, with a warning for
//! one expired or expiring within 30 days. A certificate never makes an address secure or not:
//! the service's own domains are protected by transport; a certificate is what a sender
//! outside the service encrypts to (S/MIME).
//!
//! `onepages check --values` and `--duplicates` survey a data directory offline instead: the
//! entries with values today's rules refuse, and the `uid` and `mail` values held by more than
//! one entry (a running server logs the same at start-up). Exit status 3 when any are found.

use clap::Args;

use super::{Common, Online};
use crate::directory::certificate::{self, CertFacts, Held};
use crate::dsa::{Dsa, Security};

/// A certificate expiring within this many days is warned of.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The certificate attributes a sender's mail client reads, in the order Outlook tries them.
const CERTIFICATE_ATTRS: [&str; 2] = ["userSMIMECertificate", "userCertificate"];

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Mail addresses to check (as pasted from a mail client too: `Name <address>`)
    #[arg(required_unless_present_any = ["values", "duplicates", "repair_names"])]
    pub addresses: Vec<String>,
    /// List the stored entries whose values today's rules refuse, and names that lead to no
    /// entry of theirs (offline)
    #[arg(long, conflicts_with = "addresses")]
    pub values: bool,
    /// List the uid and mail values that more than one entry holds (offline)
    #[arg(long, conflicts_with = "addresses")]
    pub duplicates: bool,
    /// Remove the names and child links that lead to no entry of theirs (what `--values`
    /// reports of names), then rebuild the search index (offline)
    #[arg(long, conflicts_with_all = ["addresses", "values", "duplicates"])]
    pub repair_names: bool,
}

/// What `check` says of one address: the verdict and the certificates published for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    /// (attribute, certificate) for each certificate the entry publishes.
    pub certificates: Vec<(String, CertFacts)>,
    /// Certificate values that do not parse (written before they were checked).
    pub unreadable: Vec<String>,
}

impl Checked {
    fn of(verdict: Verdict) -> Checked {
        Checked {
            verdict,
            certificates: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// Adds what one stored certificate value carries.
    fn add_value(&mut self, attr: &str, value: &[u8]) {
        let held = if attr.eq_ignore_ascii_case("userSMIMECertificate") {
            Held::Smime
        } else {
            Held::Certificate
        };
        let found = certificate::facts(held, value);
        if found.is_empty() {
            self.unreadable.push(attr.to_string());
        }
        for f in found {
            if !self.certificates.iter().any(|(_, c)| *c == f) {
                self.certificates.push((attr.to_string(), f));
            }
        }
    }

    /// The lines printed for `address`, as of `now` (seconds since 1970).
    pub fn lines(&self, address: &str, now: i64) -> Vec<String> {
        let mut out = vec![self.verdict.line(address)];
        if self.verdict == Verdict::Unknown {
            return out;
        }
        if self.certificates.is_empty() && self.unreadable.is_empty() {
            out.push("  no encryption certificate published".into());
        }
        for (attr, c) in &self.certificates {
            let emails = if c.emails.is_empty() {
                String::new()
            } else {
                format!(", for {}", c.emails.join(", "))
            };
            out.push(format!(
                "  certificate ({attr}): subject {}, issuer {}, serial {}, valid {} to {}{emails}",
                c.subject,
                c.issuer,
                c.serial,
                day(c.not_before),
                day(c.not_after)
            ));
            let left = c.not_after.saturating_sub(now);
            if left < 0 {
                out.push(format!(
                    "  WARNING: this certificate expired on {}: senders cannot encrypt to it",
                    day(c.not_after)
                ));
            } else if left <= EXPIRY_WARNING_DAYS * 86_400 {
                out.push(format!(
                    "  WARNING: this certificate expires in {} days ({})",
                    left / 86_400,
                    day(c.not_after)
                ));
            } else if c.not_before > now {
                out.push(format!(
                    "  WARNING: this certificate is not valid before {}",
                    day(c.not_before)
                ));
            }
        }
        for attr in &self.unreadable {
            out.push(format!(
                "  WARNING: a {attr} value is not a readable certificate"
            ));
        }
        out
    }
}

/// `YYYY-MM-DD` (UTC).
fn day(unix_secs: i64) -> String {
    let (y, m, d, _, _, _) = crate::directory::matching::civil_from_seconds(unix_secs);
    format!("{y:04}-{m:02}-{d:02}")
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
    if args.repair_names {
        return repair_names(&args);
    }
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
    let now = crate::clock::Clock::system().unix_secs();
    for (address, c) in args.addresses.iter().zip(&verdicts) {
        for line in c.lines(address, now) {
            println!("{line}");
        }
        all_secure &= c.verdict == Verdict::Secure;
    }
    if !all_secure {
        std::process::exit(3);
    }
    Ok(())
}

fn repair_names(args: &CheckArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        anyhow::bail!("--repair-names changes a data directory offline: stop the server first");
    }
    let settings = args.common.settings(None)?;
    let bar = super::progress("indexing");
    let (repaired, indexed) =
        crate::dsa::repair_names_offline(&settings, "onepages check --repair-names", &|n| {
            bar.set_position(u64::try_from(n).unwrap_or(0));
        })?;
    bar.finish_and_clear();
    for (ndn, id) in &repaired.names {
        println!("removed name {ndn} (it led to id {id}, which holds no entry of that name)");
    }
    for (parent, id) in &repaired.children {
        println!("removed child link {parent} -> id {id} (no entry of that parent has the id)");
    }
    match indexed {
        Some(n) => eprintln!(
            "removed {} names and {} child links; reindexed {n} entries. An entry a removed \
             name stood for was lost by the id race and can now be added again",
            repaired.names.len(),
            repaired.children.len()
        ),
        None => eprintln!("every name and child link leads to an entry of its own: nothing to do"),
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
        for (ndn, id) in &survey.misnamed {
            println!("{ndn}: the name leads to no entry of that name (id {id})");
        }
        found += survey.misnamed.len();
        eprintln!(
            "{} of {} entries break a value rule",
            survey.invalid.len(),
            survey.entries
        );
        if !survey.misnamed.is_empty() {
            eprintln!(
                "{} names lead to no entry of theirs: an id taken by two concurrent adds in \
                 an earlier build, the entry each named lost to the one now under its id; \
                 the name refuses adding that entry again until `onepages check --repair-names` \
                 removes it",
                survey.misnamed.len()
            );
        }
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
pub fn offline(dsa: &Dsa, address: &str) -> anyhow::Result<Checked> {
    let reader = dsa.reader();
    let found = reader.find_equal("mail", mailbox_of(address).as_bytes())?;
    if found.len() > 1 {
        return Ok(Checked::of(duplicate(found.len())));
    }
    let mut best: Option<Security> = None;
    let mut secure = false;
    for (_, entry) in &found {
        match reader.security(entry) {
            Some(Security::Secure) => secure = true,
            Some(s) => best = best.or(Some(s)),
            None => {}
        }
    }
    let verdict = match best {
        _ if secure => Verdict::Secure,
        Some(s) => Verdict::Listed(s.describe().to_string()),
        None => Verdict::Unknown,
    };
    let mut checked = Checked::of(verdict);
    for (_, entry) in &found {
        for attr in CERTIFICATE_ATTRS {
            for value in entry.values(attr) {
                checked.add_value(attr, value);
            }
        }
    }
    Ok(checked)
}

fn online(args: &CheckArgs) -> anyhow::Result<Vec<Checked>> {
    let (mut conn, base) = args.online.connect(&args.common)?;
    let mut out = Vec::new();
    for address in &args.addresses {
        let filter = format!("(mail={})", ldap3::ldap_escape(mailbox_of(address)));
        let (entries, res) = conn
            .search(
                &base,
                ldap3::Scope::Subtree,
                &filter,
                vec![
                    "oneMailSecure",
                    "onePagesStatus",
                    "onePagesAccountType",
                    "userSMIMECertificate",
                    "userCertificate;binary",
                ],
            )?
            .success()?;
        let _ = res;
        if entries.len() > 1 {
            out.push(Checked::of(duplicate(entries.len())));
            continue;
        }
        let mut verdict = Verdict::Unknown;
        let mut published: Vec<(&str, Vec<u8>)> = Vec::new();
        for e in entries {
            let e = ldap3::SearchEntry::construct(e);
            for attr in CERTIFICATE_ATTRS {
                for (name, values) in &e.bin_attrs {
                    let base = name.split(';').next().unwrap_or(name);
                    if base.eq_ignore_ascii_case(attr) {
                        published.extend(values.iter().map(|v| (attr, v.clone())));
                    }
                }
            }
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
        let mut checked = Checked::of(verdict);
        for (attr, value) in &published {
            checked.add_value(attr, value);
        }
        out.push(checked);
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
