//! `onepages dormant [--as-of DATE] [--format table|csv|json] [--apply]`: the accounts the
//! dormant-account rules act on (`policy::dormant`), and acting on them.
//!
//! Offline on a data directory, or through a running server with `--server` as an
//! administrator (the ONE Pages dormant extended operation: the server evaluates with its own
//! clock and sign-ins, and applies through its writer). Exit codes: 0 done, 1 applied with
//! refusals, 2 could not run.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::{parse_day_or_time, Common, Online};
use crate::clock::generalized_time;
use crate::dsa::Dsa;
use crate::ops::search::dse::DORMANT_OID;
use crate::policy::dormant::{self, Item, Report};

#[derive(Debug, Args)]
pub struct DormantArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// Evaluate the rules at another day (YYYY-MM-DD, from its first second, UTC) or time
    /// (YYYYMMDDHHMMSSZ): planning, checks
    #[arg(long, value_name = "DATE", conflicts_with = "apply")]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Disable the inactive accounts and remove the never-used ones (as tombstones,
    /// restorable with `onepages trash restore`), each change in the audit trail
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub fn run(args: DormantArgs) -> anyhow::Result<()> {
    let as_of = args
        .as_of
        .as_deref()
        .map(|d| parse_day_or_time("--as-of", d, false))
        .transpose()?;
    let report = if args.online.server.is_some() {
        online(&args, as_of)?
    } else {
        let settings = args.common.settings(None)?;
        let (dsa, _) = Dsa::open_existing(settings, "onepages dormant", &|_| {}).map_err(|e| {
            anyhow::anyhow!("{e} (use --server to run the rules through the running server)")
        })?;
        let outcome = if args.apply {
            dsa.operator_grant()
                .map_err(anyhow::Error::from)
                .and_then(|g| Ok(dormant::apply(&dsa, &g, "onepages dormant --apply")?))
        } else {
            Ok(dormant::evaluate(&dsa, as_of.unwrap_or_else(|| dsa.now()))?)
        };
        dsa.shutdown()?;
        outcome?
    };
    // Written through one handle with its errors (a closed pipe, `| head`, ends quietly).
    let mut out = std::io::stdout().lock();
    match print(&mut out, &report, args.format).and_then(|()| Ok(out.flush()?)) {
        Err(e) if is_broken_pipe(&e) => return Ok(()),
        other => other?,
    }
    if report.refused() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn online(args: &DormantArgs, as_of: Option<i64>) -> anyhow::Result<Report> {
    let (mut conn, _) = args.online.connect(&args.common)?;
    let request = serde_json::json!({
        "as_of": as_of.map(generalized_time),
        "apply": args.apply,
    });
    let (exop, _) = conn
        .extended(ldap3::exop::Exop {
            name: Some(DORMANT_OID.to_string()),
            val: Some(request.to_string().into_bytes()),
        })?
        .success()
        .map_err(|e| anyhow::anyhow!("running the dormant-account rules: {e}"))?;
    let _ = conn.unbind();
    let value = exop.val.unwrap_or_default();
    serde_json::from_slice(&value)
        .map_err(|e| anyhow::anyhow!("the server's dormant report does not parse: {e}"))
}

const COLUMNS: [&str; 12] = [
    "action",
    "uid",
    "dn",
    "name",
    "mail",
    "created",
    "last_sign_in",
    "due",
    "exempt_until",
    "exempt_reason",
    "why",
    "outcome",
];

fn cells(i: &Item) -> [String; 12] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        i.action.word().to_string(),
        i.uid.clone(),
        i.dn.clone(),
        o(&i.name),
        o(&i.mail),
        o(&i.created),
        o(&i.last_sign_in),
        o(&i.due),
        o(&i.exempt_until),
        o(&i.exempt_reason),
        i.why.clone(),
        o(&i.outcome),
    ]
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<csv::Error>().is_some_and(|c| {
                matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}

fn print(out: &mut impl Write, report: &Report, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(COLUMNS)?;
            for i in &report.items {
                w.write_record(cells(i))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let uid_width = report
                .items
                .iter()
                .map(|i| i.uid.chars().count())
                .max()
                .unwrap_or(6)
                .max(6);
            if !report.items.is_empty() {
                writeln!(
                    out,
                    "{:<14}  {:<uid_width$}  {:<12}  {:<10}  {:<10}  WHY",
                    "ACTION", "ONE ID", "LAST SIGN-IN", "CREATED", "DUE"
                )?;
            }
            for i in &report.items {
                let mut why = i.why.clone();
                if let Some(outcome) = &i.outcome {
                    why = format!("{why} -> {outcome}");
                }
                writeln!(
                    out,
                    "{:<14}  {:<uid_width$}  {:<12}  {:<10}  {:<10}  {why}",
                    i.action.word(),
                    i.uid,
                    dash(&i.last_sign_in),
                    dash(&i.created),
                    dash(&i.due),
                )?;
            }
            writeln!(out, "{}", report.summary())?;
            if report.undated > 0 {
                writeln!(
                    out,
                    "{} accounts have no createTimestamp: never removed as never used",
                    report.undated
                )?;
            }
            if !report.applied
                && (report.count(dormant::Action::Remove) + report.count(dormant::Action::Disable))
                    > 0
            {
                writeln!(out, "nothing was changed: run with --apply to act on it")?;
            }
        }
    }
    Ok(())
}
