//! The command line (DESIGN.md §5 is the contract for these spellings).

pub mod backup;
pub mod check;
pub mod domains;
pub mod dormant;
pub mod exempt;
pub mod export;
pub mod generate;
pub mod import;
pub mod init;
pub mod reindex;
pub mod serve;
pub mod status;
pub mod trash;
pub mod unlock;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Overrides, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "onepages",
    version,
    about = "ONE Pages: the directory of the secure health-mail service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the directory over LDAP
    Serve(serve::ServeArgs),
    /// Make a fresh directory: the suffix, its units and the first administrator (offline)
    Init(init::InitArgs),
    /// Load LDIF or CSV files into the data directory (offline)
    Import(import::ImportArgs),
    /// Write the directory out as LDIF or CSV (offline)
    Export(export::ExportArgs),
    /// Rebuild the search index from the store (offline)
    Reindex(reindex::ReindexArgs),
    /// Generate a realistic directory for demos and benchmarks
    Generate(generate::GenerateArgs),
    /// Tell whether mail to these addresses is protected end to end
    Check(check::CheckArgs),
    /// List, register or remove secure mail domains
    Domains(domains::DomainsArgs),
    /// Unlock an account locked by repeated wrong passwords
    Unlock(unlock::UnlockArgs),
    /// List, restore or purge deleted entries (kept tombstone_days, 30 by default)
    Trash(trash::TrashArgs),
    /// Back up the directory (through the running server with --server, or offline)
    Backup(backup::BackupArgs),
    /// Bring a backup back into a new data directory (offline)
    RestoreBackup(backup::RestoreArgs),
    /// List the accounts the dormant-account rules act on (never used, inactive, exempt),
    /// and with --apply act on them
    Dormant(dormant::DormantArgs),
    /// Exempt an account from the dormant-account rules until a date (parental leave...)
    Exempt(exempt::ExemptArgs),
    /// One screen about a running server: uptime, entries, connections, operations, failed
    /// binds, index lag, imports, policy runs, the TLS certificate
    Status(status::StatusArgs),
}

/// Options every data-directory command takes (before or after a subcommand).
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Configuration file (TOML)
    #[arg(long, env = "ONEPAGES_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the store and the index live
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// The naming context, e.g. dc=one-mail,dc=on,dc=ca
    #[arg(long, global = true)]
    pub suffix: Option<String>,
}

impl Common {
    pub fn settings(&self, listen: Option<String>) -> anyhow::Result<Settings> {
        Ok(Settings::load(
            self.config.as_deref(),
            &Overrides {
                data_dir: self.data_dir.clone(),
                listen,
                suffix: self.suffix.clone(),
            },
        )?)
    }
}

/// Options of commands that can talk to a running server instead of a data directory.
#[derive(Debug, Args, Clone)]
pub struct Online {
    /// Ask a running server, e.g. ldap://127.0.0.1:3389
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// DN or ONE ID username to bind as
    #[arg(long, requires = "server", global = true)]
    pub bind_dn: Option<String>,
    /// Password for --bind-dn (or ONEPAGES_PASSWORD in the environment, read only with
    /// --server, so that it never stands in the way of the offline form)
    #[arg(long, requires = "server", global = true)]
    pub password: Option<String>,
    /// Read the password for --bind-dn from this file (its first line), kept out of the
    /// process list
    #[arg(long, requires = "server", conflicts_with = "password", global = true)]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate, for ldaps:// and
    /// --starttls (default: the system's trusted roots)
    #[arg(long, env = "LDAPTLS_CACERT", requires = "server", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Upgrade an ldap:// connection with StartTLS before binding
    #[arg(long, requires = "server", global = true)]
    pub starttls: bool,
}

impl Online {
    /// The bind password: --password, ONEPAGES_PASSWORD or the first line of --password-file.
    fn password(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--password-file {}: {e}", path.display()))?;
            return Ok(text.lines().next().unwrap_or("").to_string());
        }
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        Ok(std::env::var("ONEPAGES_PASSWORD").unwrap_or_default())
    }

    fn tls_config(&self) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        let mut reader = std::io::BufReader::new(pem.as_slice());
        let mut any = false;
        for cert in rustls_pemfile_certs(&mut reader) {
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
            any = true;
        }
        if !any {
            anyhow::bail!("--ca-file {}: no PEM certificate in it", path.display());
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Some(std::sync::Arc::new(config)))
    }

    /// Connects and binds; returns the connection and the suffix to search under.
    pub fn connect(&self, common: &Common) -> anyhow::Result<(ldap3::LdapConn, String)> {
        let url = self.server.as_deref().unwrap_or("ldap://127.0.0.1:3389");
        let mut settings = ldap3::LdapConnSettings::new().set_starttls(self.starttls);
        if let Some(config) = self.tls_config()? {
            settings = settings.set_config(config);
        }
        let mut conn = ldap3::LdapConn::with_settings(settings, url)
            .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
        if let Some(dn) = &self.bind_dn {
            conn.simple_bind(dn, &self.password()?)?
                .success()
                .map_err(|e| anyhow::anyhow!("bind as {dn} failed: {e}"))?;
        }
        let suffix = common
            .suffix
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_SUFFIX.to_string());
        Ok((conn, suffix))
    }
}

/// The one account a name designates over LDAP: a DN, or else a ONE ID username (searched
/// under `suffix`), with the attributes asked for.
pub fn find_account(
    conn: &mut ldap3::LdapConn,
    suffix: &str,
    name: &str,
    attrs: Vec<&str>,
) -> anyhow::Result<ldap3::SearchEntry> {
    let name = name.trim();
    let (base, scope, filter) = if name.contains('=') {
        (
            name.to_string(),
            ldap3::Scope::Base,
            "(objectClass=*)".to_string(),
        )
    } else {
        (
            suffix.to_string(),
            ldap3::Scope::Subtree,
            format!("(uid={})", ldap3::ldap_escape(name)),
        )
    };
    let (entries, _) = conn
        .search(&base, scope, &filter, attrs)?
        .success()
        .map_err(|e| anyhow::anyhow!("looking up {name}: {e}"))?;
    let mut found: Vec<ldap3::SearchEntry> = entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .collect();
    match (found.pop(), found.is_empty()) {
        (Some(entry), true) => Ok(entry),
        _ => anyhow::bail!("no account {name}"),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Init(a) => init::run(a),
        Command::Import(a) => match import::run(a) {
            Ok(0) => Ok(()),
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("error: {}", error_line(&e));
                std::process::exit(import::EXIT_FAILED);
            }
        },
        Command::Export(a) => export::run(a),
        Command::Reindex(a) => reindex::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Check(a) => check::run(a),
        Command::Domains(a) => domains::run(a),
        Command::Unlock(a) => unlock::run(a),
        Command::Trash(a) => trash::run(a),
        Command::Backup(a) => backup::run(a),
        Command::RestoreBackup(a) => backup::restore(a),
        Command::Dormant(a) => dormant::run(a),
        Command::Exempt(a) => exempt::run(a),
        Command::Status(a) => status::run(a),
    }
}

/// A day (`YYYY-MM-DD`, UTC: its first second, or with `end_of_day` its last) or a
/// GeneralizedTime, as seconds since 1970.
pub fn parse_day_or_time(flag: &str, text: &str, end_of_day: bool) -> anyhow::Result<i64> {
    let t = text.trim();
    let is_day = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let time = if is_day {
        let clock = if end_of_day { "235959" } else { "000000" };
        format!("{}{clock}Z", t.replace('-', ""))
    } else {
        t.to_string()
    };
    crate::dsa::sign_in::time_of(&time).ok_or_else(|| {
        anyhow::anyhow!("{flag} {text}: write a day as YYYY-MM-DD, or a time as YYYYMMDDHHMMSSZ")
    })
}

/// An error and its causes on one line, each said once: a cause whose text the line already
/// holds (ldap3 repeats its result in its own source, `rc=50 ...: rc=50 ...`) is left out.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(
    reader: &mut dyn std::io::BufRead,
) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    let mut text = Vec::new();
    if reader.read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    rustls_pki_types::CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .collect()
}

/// The log filter for `ONEPAGES_LOG`: a bare level (`debug`, `trace`) applies to ONE Pages'
/// own lines only, the storage engines (sled, tantivy) staying at `info`; anything with a `=`
/// or a `,` is taken as full `tracing` directives, e.g. `debug,sled=debug,tantivy=debug` to
/// see the engines' debug lines too. Unset: `info`.
pub fn log_directives(value: Option<&str>) -> String {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return "info".into();
    };
    if v.contains('=') || v.contains(',') {
        return v.to_string();
    }
    match v.to_ascii_lowercase().as_str() {
        level @ ("debug" | "trace") => format!("info,onepages={level}"),
        other => other.to_string(),
    }
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn progress(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec}, {elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::{error_line, log_directives};

    #[test]
    fn an_error_says_each_cause_once() {
        let result = ldap3::LdapResult {
            rc: 50,
            matched: String::new(),
            text: "only administrators may do this".into(),
            refs: Vec::new(),
            ctrls: Vec::new(),
        };
        let e = anyhow::Error::from(ldap3::LdapError::from(result)).context("import");
        let line = error_line(&e);
        assert_eq!(line.matches("rc=50").count(), 1, "{line}");
        assert!(line.starts_with("import: "), "{line}");
        let io = anyhow::Error::from(std::io::Error::other("disk full")).context("backup.ldif");
        assert_eq!(error_line(&io), "backup.ldif: disk full");
    }

    #[test]
    fn a_bare_level_is_for_our_own_lines() {
        assert_eq!(log_directives(None), "info");
        assert_eq!(log_directives(Some("debug")), "info,onepages=debug");
        assert_eq!(log_directives(Some("TRACE")), "info,onepages=trace");
        assert_eq!(log_directives(Some("warn")), "warn");
        assert_eq!(
            log_directives(Some("debug,sled=debug")),
            "debug,sled=debug",
            "full directives are kept"
        );
        // Each form parses as a filter.
        for v in ["debug", "warn", "info,sled=debug"] {
            tracing_subscriber::EnvFilter::try_new(log_directives(Some(v))).unwrap();
        }
    }
}
