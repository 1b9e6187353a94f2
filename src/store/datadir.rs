//! The data directory: where the store and the index live, and who holds them.
//!
//! A process that opens a data directory takes an exclusive lock on `LOCK` and writes who it
//! is into that file. A second process fails at once with that description ("held by onepages
//! serve, pid 1234, listening on 127.0.0.1:3389") instead of a lock error from sled or a hang.
//! The operating system drops the lock when the process dies, even on SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data directory {dir} is in use by another process: {holder}")]
    Busy { dir: String, holder: String },
    #[error(
        "data directory {dir} does not exist or holds no directory (give the right --data-dir, \
         or make one with `onepages init` or `onepages import`)"
    )]
    Missing { dir: String },
    #[error("data directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// An open, locked data directory. The lock is held until this value is dropped.
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

/// Creates `dir` (and missing parents) readable by the owner only, as slapd's mdb files are:
/// the store holds health-care staff details and password hashes. An existing directory that
/// others may read is left as it is, with a warning.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory can be read by other users; chmod 700 it"
                );
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl DataDir {
    /// Opens a data directory that must already hold a store: commands that only read or
    /// mend a directory never create one where a mistyped path points.
    pub fn open_existing(root: &Path, holder: &str) -> Result<DataDir, DataDirError> {
        if !root.join("store").is_dir() {
            return Err(DataDirError::Missing {
                dir: root.display().to_string(),
            });
        }
        DataDir::open(root, holder)
    }

    /// Creates the directory if needed and locks it for this process, described by `holder`.
    pub fn open(root: &Path, holder: &str) -> Result<DataDir, DataDirError> {
        let io = |source| DataDirError::Io {
            dir: root.display().to_string(),
            source,
        };
        create_private_dir(root).map_err(io)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut lock = options.open(root.join("LOCK")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                let holder = if text.trim().is_empty() {
                    "unknown process".to_string()
                } else {
                    text.trim().to_string()
                };
                return Err(DataDirError::Busy {
                    dir: root.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        lock.set_len(0).map_err(io)?;
        lock.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(lock, "{holder}, pid {}", std::process::id()).map_err(io)?;
        lock.sync_all().map_err(io)?;
        Ok(DataDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join("store")
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index")
    }

    /// The sorted lists kept across a clean restart (`dsa::views`).
    pub fn views_path(&self) -> PathBuf {
        self.root.join("sorted-views.bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the data directory and its lock file are the owner's only.
    #[cfg(unix)]
    #[test]
    fn data_directories_are_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("new").join("data");
        let _dir = DataDir::open(&root, "test").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("LOCK")), 0o600);
    }

    #[test]
    fn a_missing_directory_is_not_created_by_open_existing() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("typo-dir");
        let err = DataDir::open_existing(&root, "test").err().unwrap();
        assert!(err.to_string().contains("typo-dir"), "{err}");
        assert!(!root.exists());
    }

    #[test]
    fn second_opener_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let _first = DataDir::open(dir.path(), "onepages serve on 127.0.0.1:3389").unwrap();
        let err = DataDir::open(dir.path(), "onepages import").err().unwrap();
        let text = err.to_string();
        assert!(text.contains("onepages serve on 127.0.0.1:3389"), "{text}");
    }
}
