//! `onepages export`: write the directory as LDIF or CSV, offline.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Common;
use crate::dsa::Dsa;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Ldif,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum, default_value = "ldif")]
    pub format: Format,
    /// Output file (default: standard output)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open(settings, "onepages export", &|_| {})?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = match args.format {
        Format::Ldif => crate::export::export_ldif(&dsa.reader(), &mut out)?,
        Format::Csv => crate::export::export_csv(&dsa.reader(), &mut out)?,
    };
    out.flush()?;
    eprintln!("exported {n} entries");
    Ok(())
}
