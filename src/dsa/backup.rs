//! Backups of a directory while it serves: [`Dsa::backup`] copies the store's records under
//! the writer lock (writes wait the few hundred milliseconds the copy takes, so the backup is
//! exactly one generation), then writes the file without holding anything. [`restore_backup`]
//! brings a backup back into a fresh data directory, whose index is rebuilt on first open.

use std::path::Path;

use super::{Dsa, DsaError};
use crate::config::Settings;
use crate::directory::dn::Dn;
pub use crate::store::backup::BackupInfo;
use crate::store::backup::{self, BackupError};
use crate::store::datadir::DataDir;
use crate::store::Store;

impl From<BackupError> for DsaError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Io(e) => DsaError::Log(e),
            BackupError::Store(e) => DsaError::Store(e),
            other => DsaError::Denied(other.to_string()),
        }
    }
}

impl Dsa {
    /// Writes a consistent backup of the directory to `out` (see the module docs).
    pub fn backup(&self, out: impl std::io::Write) -> Result<(BackupInfo, u64), DsaError> {
        // The sign-ins recorded in memory go into the copy too.
        self.sign_ins.flush();
        let snapshot = {
            let _guard = self.writer_lock.lock().map_err(|_| DsaError::Poisoned)?;
            self.store.snapshot()?
        };
        let info = BackupInfo {
            generation: snapshot.generation,
            entries: snapshot.entries,
            tombstones: snapshot.tombstones,
            suffix: self.settings.suffix.clone(),
            made: crate::clock::rfc3339(self.settings.clock.now()),
        };
        let bytes = backup::write(&snapshot, &info, out)?;
        self.audit.record(
            "backup",
            serde_json::json!({
                "generation": info.generation,
                "entries": info.entries,
                "tombstones": info.tombstones,
                "bytes": bytes,
            }),
        );
        Ok((info, bytes))
    }
}

/// Spooled backups older than this are removed when the next one is made.
const SPOOL_KEEP: std::time::Duration = std::time::Duration::from_secs(3600);

impl Dsa {
    fn spool(&self) -> std::path::PathBuf {
        self.settings.data_dir.join("spool")
    }

    fn spooled(&self, token: &str) -> Result<std::path::PathBuf, DsaError> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DsaError::Denied(format!("no backup {token}")));
        }
        Ok(self.spool().join(format!("backup-{token}")))
    }

    /// Makes a backup in the data directory's spool (0600) for a client to fetch with
    /// [`Dsa::read_spooled_backup`]; returns its token, description and size.
    pub fn spool_backup(&self) -> Result<(String, BackupInfo, u64), DsaError> {
        let spool = self.spool();
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&spool)?;
        if let Ok(old) = std::fs::read_dir(&spool) {
            for e in old.flatten() {
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > SPOOL_KEEP);
                if stale && e.file_name().to_string_lossy().starts_with("backup-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let token = super::new_uuid().replace('-', "");
        let path = self.spooled(&token)?;
        let file = private_file(&path)?;
        match self.backup(file) {
            Ok((info, bytes)) => Ok((token, info, bytes)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Up to `max` bytes of a spooled backup from `offset`; the file goes once it has been
    /// read to its end (an empty answer).
    pub fn read_spooled_backup(
        &self,
        token: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, DsaError> {
        use std::io::{Read, Seek};
        let path = self.spooled(token)?;
        let mut f = std::fs::File::open(&path)
            .map_err(|_| DsaError::Denied(format!("no backup {token} (fetched already?)")))?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut out = Vec::with_capacity(max);
        f.take(max as u64).read_to_end(&mut out)?;
        if out.is_empty() {
            let _ = std::fs::remove_file(&path);
        }
        Ok(out)
    }
}

/// A new file only its owner can read.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Restores the backup `file` into `settings.data_dir`, which must not hold a directory yet;
/// the index is rebuilt from the restored store.
pub fn restore_backup(settings: Settings, file: &Path) -> Result<BackupInfo, DsaError> {
    let root = settings.data_dir.clone();
    let shown = root.display().to_string();
    if root.join("store").exists() {
        return Err(DsaError::Denied(format!(
            "{shown} holds a directory already: restore into a new data directory (or move \
             this one away first)"
        )));
    }
    let reader = std::fs::File::open(file)
        .map_err(|e| DsaError::Denied(format!("{}: {e}", file.display())))?;
    let loaded = backup::read(std::io::BufReader::new(reader))
        .map_err(|e| DsaError::Denied(format!("{}: {e}", file.display())))?;
    let wanted = Dn::parse(&settings.suffix)
        .map(|d| d.to_string())
        .unwrap_or_default();
    if !loaded.info.suffix.eq_ignore_ascii_case(&wanted) {
        return Err(DsaError::Denied(format!(
            "{} is a backup of {}, not of {} (give --suffix {})",
            file.display(),
            loaded.info.suffix,
            settings.suffix,
            loaded.info.suffix
        )));
    }
    let info = {
        let dir = DataDir::open(&root, "onepages restore-backup")?;
        let store = Store::open(&dir.store_path(), settings.store_cache_bytes)?;
        let info = loaded.info.clone();
        store.load(loaded)?;
        info
    };
    let (dsa, _) = Dsa::open_existing(settings, "onepages restore-backup", &|_| {})?;
    dsa.shutdown()?;
    Ok(info)
}
