//! The command line (DESIGN.md §5 is the contract for these spellings).

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

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::run(a),
        Command::Reindex(a) => reindex::run(a),
        Command::Generate(a) => generate::run(a),
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
