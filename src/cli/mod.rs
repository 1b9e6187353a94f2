//! The command line (DESIGN.md §5 is the contract for these spellings).

pub mod check;
pub mod domains;
pub mod export;
pub mod generate;
pub mod import;
pub mod reindex;
pub mod serve;

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
}

/// Options every data-directory command takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Configuration file (TOML)
    #[arg(long, env = "ONEPAGES_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the store and the index live
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The naming context, e.g. dc=one-mail,dc=on,dc=ca
    #[arg(long)]
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
    #[arg(long)]
    pub server: Option<String>,
    /// DN or ONE ID username to bind as
    #[arg(long, requires = "server")]
    pub bind_dn: Option<String>,
    /// Password for --bind-dn (or ONEPAGES_PASSWORD)
    #[arg(
        long,
        env = "ONEPAGES_PASSWORD",
        hide_env_values = true,
        requires = "server"
    )]
    pub password: Option<String>,
}

impl Online {
    /// Connects and binds; returns the connection and the suffix to search under.
    pub fn connect(&self, common: &Common) -> anyhow::Result<(ldap3::LdapConn, String)> {
        let url = self.server.as_deref().unwrap_or("ldap://127.0.0.1:3389");
        let mut conn = ldap3::LdapConn::new(url)?;
        if let Some(dn) = &self.bind_dn {
            conn.simple_bind(dn, self.password.as_deref().unwrap_or(""))?
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

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::run(a),
        Command::Reindex(a) => reindex::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Check(a) => check::run(a),
        Command::Domains(a) => domains::run(a),
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
