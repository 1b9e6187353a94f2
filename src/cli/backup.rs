//! `onepages backup -o FILE` and `onepages restore-backup FILE`.
//!
//! A backup holds every entry with its password hash, the domain registry and the trash, at
//! one generation. Through a running server (`--server`, as an administrator) the server makes
//! it in its spool while it goes on serving and writing, and the command fetches it; offline,
//! the command reads the data directory itself. The file is written 0600 under a temporary
//! name and renamed when complete. `restore-backup` checks the whole file (its checksum) and
//! brings it back into a new data directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Common, Online};
use crate::dsa::Dsa;
use crate::ops::search::dse::{BACKUP_OID, BACKUP_READ_OID};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub online: Online,
    /// The backup file to write (readable by its owner only)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// A file made by `onepages backup`
    pub file: PathBuf,
}

/// The temporary name a backup is written under.
fn partial(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    output.with_file_name(name)
}

fn create(output: &Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let tmp = partial(output);
    let _ = std::fs::remove_file(&tmp);
    let file = crate::dsa::backup::private_file(&tmp)
        .map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
    Ok((tmp, file))
}

fn done(tmp: &Path, output: &Path) -> anyhow::Result<()> {
    std::fs::rename(tmp, output).map_err(|e| anyhow::anyhow!("{}: {e}", output.display()))
}

pub fn run(args: BackupArgs) -> anyhow::Result<()> {
    if args.online.server.is_some() {
        return online(&args);
    }
    let settings = args.common.settings(None)?;
    let (dsa, _) = Dsa::open_existing(settings, "onepages backup", &|_| {})
        .map_err(|e| anyhow::anyhow!("{e} (use --server to back up the running server)"))?;
    let (tmp, file) = create(&args.output)?;
    let made = dsa.backup(file);
    dsa.shutdown()?;
    let (info, bytes) = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    done(&tmp, &args.output)?;
    println!(
        "{}: {} entries, {} deleted entries kept, generation {}, {bytes} bytes",
        args.output.display(),
        info.entries,
        info.tombstones,
        info.generation
    );
    Ok(())
}

fn online(args: &BackupArgs) -> anyhow::Result<()> {
    let (mut conn, _) = args.online.connect(&args.common)?;
    let mut exop = |oid: &str, val: Option<Vec<u8>>| -> anyhow::Result<Vec<u8>> {
        let (answer, _) = conn
            .extended(ldap3::exop::Exop {
                name: Some(oid.to_string()),
                val,
            })?
            .success()
            .map_err(|e| anyhow::anyhow!("the server refused the backup: {e}"))?;
        Ok(answer.val.unwrap_or_default())
    };
    #[derive(serde::Deserialize)]
    struct Made {
        token: String,
        bytes: u64,
        info: crate::dsa::backup::BackupInfo,
    }
    let made: Made = serde_json::from_slice(&exop(BACKUP_OID, None)?)?;
    let (token, total) = (made.token.clone(), made.bytes);
    let (tmp, mut file) = create(&args.output)?;
    let bar = super::progress("fetching the backup");
    let mut got = 0u64;
    let fetched = (|| -> anyhow::Result<()> {
        loop {
            let chunk = exop(
                BACKUP_READ_OID,
                Some(format!("{token}\n{got}").into_bytes()),
            )?;
            if chunk.is_empty() {
                break;
            }
            file.write_all(&chunk)?;
            got += chunk.len() as u64;
            bar.set_position(got);
        }
        file.sync_all()?;
        Ok(())
    })();
    bar.finish_and_clear();
    if let Err(e) = fetched {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if got != total {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("the backup came incomplete: {got} of {total} bytes");
    }
    done(&tmp, &args.output)?;
    let info = &made.info;
    println!(
        "{}: {} entries, {} deleted entries kept, generation {}, {got} bytes",
        args.output.display(),
        info.entries,
        info.tombstones,
        info.generation
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let settings = args.common.settings(None)?;
    let dir = settings.data_dir.display().to_string();
    let info = crate::dsa::backup::restore_backup(settings, &args.file)?;
    println!(
        "{dir}: restored {} entries and {} deleted entries from {} (generation {}, made {})",
        info.entries,
        info.tombstones,
        args.file.display(),
        info.generation,
        info.made
    );
    Ok(())
}
