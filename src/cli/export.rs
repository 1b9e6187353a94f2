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
    let (dsa, _) = Dsa::open_existing(settings, "onepages export", &|_| {})?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(private_file(p)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = match args.format {
        Format::Ldif => crate::export::export_ldif(&dsa.reader(), &mut out)?,
        Format::Csv => {
            let report = crate::export::export_csv(&dsa.reader(), &mut out)?;
            for (attr, count) in &report.left_out {
                eprintln!(
                    "{attr}: binary, left out of the CSV ({count} entries); export LDIF to keep it"
                );
            }
            if report.with_bar > 0 {
                eprintln!(
                    "{} values hold '|', which an import of this CSV reads as two values; \
                     export LDIF to keep them whole",
                    report.with_bar
                );
            }
            report.entries
        }
    };
    out.flush()?;
    eprintln!("exported {n} entries");
    Ok(())
}

/// An export holds health-care staff details (and password hashes in LDIF): the file is
/// created readable by its owner only.
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
