//! `onepages generate`: a deterministic, realistic directory for demos and benchmarks.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
    Ldif,
    Csv,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of people
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "ldif")]
    pub format: GenFormat,
    /// The naming context
    #[arg(long, default_value = crate::config::DEFAULT_SUFFIX)]
    pub suffix: String,
    /// Output file (default: standard output)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also write sampled query terms to this file
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// How many query terms to sample
    #[arg(long, default_value_t = 10_000)]
    pub query_count: usize,
    /// Store every N-th user's password as argon2id (0 = none; the rest keep {SSHA}), so that
    /// load tests can bind as argon2id users (query lines `bind-argon2`)
    #[arg(long, default_value_t = 0)]
    pub argon2_every: usize,
    /// Write the demo directory (service accounts and named demo people included)
    #[arg(long)]
    pub demo: bool,
    /// Give each account a realistic history as of this day (YYYY-MM-DD): createTimestamp,
    /// a last sign-in (as OpenLDAP's authTimestamp) and a few exemptions, for the
    /// dormant-account rules (LDIF only)
    #[arg(long, value_name = "DATE", conflicts_with = "demo")]
    pub history: Option<String>,
    /// Give every N-th person an S/MIME certificate for their address (userSMIMECertificate
    /// as PKCS#7 and userCertificate;binary, one generated CA; 0 = none; LDIF only)
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "demo")]
    pub certificates_every: usize,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if args.demo {
        crate::gen::write_demo(&mut out, args.entries, args.seed, &args.suffix)?;
        // The demo's generated people are `people(entries, seed)`: the same queries fit.
        if let Some(q) = &args.queries {
            let people = crate::gen::people(args.entries, args.seed);
            let mut f = std::io::BufWriter::new(std::fs::File::create(q)?);
            crate::gen::write_queries(&mut f, &people, args.query_count, args.seed)?;
            f.flush()?;
        }
    } else {
        let mut people = crate::gen::people(args.entries, args.seed);
        crate::gen::use_argon2(&mut people, args.argon2_every, args.seed)?;
        if let Some(day) = &args.history {
            let as_of = super::parse_day_or_time("--history", day, false)?;
            crate::gen::with_history(&mut people, as_of, args.seed);
        }
        if args.certificates_every > 0 && args.format != GenFormat::Ldif {
            anyhow::bail!("--certificates-every writes LDIF only");
        }
        let now = crate::clock::Clock::system().unix_secs();
        crate::gen::with_certificates(&mut people, args.certificates_every, now - 86_400)
            .map_err(|e| anyhow::anyhow!("generating certificates: {e}"))?;
        match args.format {
            GenFormat::Ldif => crate::gen::write_ldif(&mut out, &people, &args.suffix)?,
            GenFormat::Csv => crate::gen::write_csv(&mut out, &people)?,
        }
        if let Some(q) = &args.queries {
            let mut f = std::io::BufWriter::new(std::fs::File::create(q)?);
            crate::gen::write_queries(&mut f, &people, args.query_count, args.seed)?;
            f.flush()?;
        }
    }
    out.flush()?;
    Ok(())
}
