//! `onepages init`: a fresh directory with its units and the first administrator (offline).

use std::path::PathBuf;

use clap::Args;

use super::Common;
use crate::dsa::init::FirstAdmin;
use crate::dsa::Dsa;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub common: Common,
    /// The first administrator: a ONE ID username (a person under ou=people), or a DN
    /// cn=NAME,ou=services,<suffix> (a service account) or uid=...,ou=people,<suffix>
    #[arg(long)]
    pub admin: String,
    /// File whose first line is the administrator's password (at least 12 characters)
    #[arg(long)]
    pub admin_password_file: PathBuf,
    /// The administrator's full name, for a person (default: the ONE ID's local part)
    #[arg(long)]
    pub admin_name: Option<String>,
    /// The organisation the directory belongs to (the suffix entry's o; default: the
    /// suffix's first value)
    #[arg(long)]
    pub org: Option<String>,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let path = &args.admin_password_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--admin-password-file {}: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_string();
    let min = crate::dsa::init::MIN_ADMIN_PASSWORD;
    if password.chars().count() < min {
        anyhow::bail!(
            "--admin-password-file {}: the password must have at least {min} characters",
            path.display()
        );
    }
    let settings = args.common.settings(None)?;
    let org = match &args.org {
        Some(o) => o.clone(),
        None => crate::directory::dn::Dn::parse(&settings.suffix)?
            .rdns()
            .first()
            .and_then(|r| r.0.first())
            .map(|a| a.value.clone())
            .unwrap_or_default(),
    };
    let data_dir = settings.data_dir.clone();
    let (dsa, _) = Dsa::open(settings, "onepages init", &|_| {})?;
    let grant = dsa.operator_grant()?;
    let admin = FirstAdmin {
        name: args.admin.clone(),
        full_name: args.admin_name.clone(),
        password: password.into_bytes(),
    };
    let result = dsa.initialize(&grant, &org, &admin);
    dsa.shutdown()?;
    let dns = result?;
    for dn in &dns {
        println!("created {dn}");
    }
    eprintln!(
        "{} is ready: load people with `onepages import --data-dir {} FILE.csv` (rows without \
         a dn column go under ou=people), then `onepages serve`",
        data_dir.display(),
        data_dir.display()
    );
    Ok(())
}
