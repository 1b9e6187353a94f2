//! Imports through a running server: `onepages import --server ...` sends its files with four
//! extended operations, and the server runs the same feed ([`super::feed::import_feed`]) as
//! the offline form, under the administrator's grant, while searches go on.
//!
//! 1. *begin* ([`BEGIN_OID`]): the options and the file names, as JSON; the server answers
//!    with a job token. One import runs at a time (the writer is one anyway); another admin's
//!    begin is told who holds it.
//! 2. *data* ([`DATA_OID`]): `token \n file-number \n bytes`, in order; the server spools the
//!    bytes to `<data_dir>/spool/<token>/` (0700, files 0600), so that a sync's delete guard
//!    can read the whole feed before anything is written.
//! 3. *run* ([`RUN_OID`]): the feed starts on its own thread; the answer comes at once.
//! 4. *status* ([`STATUS_OID`]): how far it got (file, records, bytes), and once done the
//!    reports, exactly as the offline form makes them. The job and its spool go once the
//!    finished status has been read, or when a job is left receiving for [`IDLE`].
//!
//! A server that stops cancels the running import at its next batch (the batches written
//! stay; imports upsert, so the same feed run again completes it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::feed::{import_feed, MaxDeletes, Observer, SyncOptions};
use super::{file_kind, ImportOptions, ImportReport, Progress};
use crate::dsa::{Dsa, WriteGrant};

pub const BEGIN_OID: &str = "2.25.284118977951875160080438219710100426701.4.3";
pub const DATA_OID: &str = "2.25.284118977951875160080438219710100426701.4.4";
pub const RUN_OID: &str = "2.25.284118977951875160080438219710100426701.4.5";
pub const STATUS_OID: &str = "2.25.284118977951875160080438219710100426701.4.6";

/// A job left receiving this long is dropped (its spool removed).
pub const IDLE: Duration = Duration::from_secs(600);
/// The most a feed may spool.
pub const MAX_FEED_BYTES: u64 = 4 << 30;
/// Bytes of a file per data request, at most (the server's PDU limit may make it less).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// What a begin request says (JSON).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Begin {
    /// The files' names as the client knows them (reports name them so); the extension says
    /// the kind.
    pub files: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub drop_unknown: bool,
    #[serde(default)]
    pub map: Vec<(String, String)>,
    #[serde(default)]
    pub sync: Option<String>,
    /// `N` or `N%`.
    #[serde(default)]
    pub max_deletes: Option<String>,
}

/// What the begin answer says (JSON).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Begun {
    pub job: String,
    /// The most bytes one data request may carry.
    pub chunk_bytes: usize,
}

/// A status answer (JSON).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// `receiving`, `running` or `done`.
    pub state: String,
    /// The file (or sync step) being imported.
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub records: usize,
    /// Of them, written (added, changed or deleted) and refused, as batches land.
    #[serde(default)]
    pub written: usize,
    #[serde(default)]
    pub refused: usize,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub total_bytes: u64,
    /// Once done: a report per file, and one for a sync's deletes.
    #[serde(default)]
    pub reports: Vec<ImportReport>,
    /// Once done: why the feed stopped, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Why a request about an online import is refused.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// Another import holds the server.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Refused(String),
    #[error("the import spool: {0}")]
    Io(String),
}

struct Job {
    token: String,
    /// The administrator who began it (only they may go on with it).
    by: String,
    grant: WriteGrant,
    options: ImportOptions,
    dir: PathBuf,
    files: Vec<(String, PathBuf)>,
    received: u64,
    last: Instant,
    status: Arc<Mutex<Status>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server's online imports (one at a time).
pub struct Imports {
    dsa: Arc<Dsa>,
    job: Mutex<Option<Job>>,
    cancel: Arc<AtomicBool>,
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Imports")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn io(e: std::io::Error) -> OnlineError {
    OnlineError::Io(e.to_string())
}

/// Creates a directory only its owner can enter.
fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// Opens a spool file for appending, readable by its owner only.
fn private_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Splits `token \n rest`.
fn split_token(value: &[u8]) -> Result<(&str, &[u8]), OnlineError> {
    let at = value
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(value.len());
    let token = std::str::from_utf8(value.get(..at).unwrap_or_default())
        .map_err(|_| OnlineError::Malformed("the job token is not text".into()))?;
    Ok((token.trim(), value.get(at + 1..).unwrap_or_default()))
}

struct Watch {
    status: Arc<Mutex<Status>>,
}

impl Observer for Watch {
    fn start(&self, name: &str) {
        let mut s = lock(&self.status);
        s.file = name.to_string();
        s.records = 0;
        s.written = 0;
        s.refused = 0;
        s.bytes = 0;
        s.total_bytes = 0;
    }

    fn progress(&self, p: Progress) {
        let mut s = lock(&self.status);
        s.records = p.records;
        s.written = p.written;
        s.refused = p.refused;
        s.bytes = p.bytes;
        s.total_bytes = p.total_bytes;
    }

    fn done(&self, report: &ImportReport) {
        lock(&self.status).reports.push(report.clone());
    }
}

impl Imports {
    pub fn new(dsa: Arc<Dsa>) -> Imports {
        Imports {
            dsa,
            job: Mutex::new(None),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts a job: checks the options, makes its spool; returns the answer (JSON).
    pub fn begin(&self, grant: WriteGrant, value: &[u8]) -> Result<Vec<u8>, OnlineError> {
        let req: Begin = serde_json::from_slice(value)
            .map_err(|e| OnlineError::Malformed(format!("the import request: {e}")))?;
        if req.files.is_empty() {
            return Err(OnlineError::Malformed("name at least one file".into()));
        }
        let mut files = Vec::new();
        let token = crate::dsa::new_uuid().replace('-', "");
        let dir = self.dsa.settings().data_dir.join("spool").join(&token);
        for (i, name) in req.files.iter().enumerate() {
            let kind = file_kind(name, std::path::Path::new(name))
                .map_err(|e| OnlineError::Refused(e.to_string()))?;
            let ext = match kind {
                super::Kind::Ldif => "ldif",
                super::Kind::Csv => "csv",
            };
            files.push((name.clone(), dir.join(format!("{i}.{ext}"))));
        }
        let max_deletes = match &req.max_deletes {
            Some(m) => m.parse::<MaxDeletes>().map_err(OnlineError::Refused)?,
            None => MaxDeletes::default(),
        };
        let options = ImportOptions {
            dry_run: req.dry_run,
            drop_unknown: req.drop_unknown,
            csv_map: req.map,
            sync: req.sync.map(|base| SyncOptions { base, max_deletes }),
            cancel: Some(Arc::clone(&self.cancel)),
            background: true,
        };
        let mut slot = lock(&self.job);
        if let Some(job) = slot.as_ref() {
            let state = lock(&job.status).state.clone();
            let stale = state == "receiving" && job.last.elapsed() > IDLE;
            let finished = state == "done";
            if !stale && !finished {
                return Err(OnlineError::Busy(format!(
                    "an import by {} is {state} (began {} s ago); one import runs at a time",
                    if job.by.is_empty() {
                        "an operator"
                    } else {
                        &job.by
                    },
                    job.last.elapsed().as_secs()
                )));
            }
        }
        // The previous job (finished or abandoned) goes with its spool.
        *slot = None;
        private_dir(&dir).map_err(io)?;
        for (_, path) in &files {
            private_append(path).map_err(io)?;
        }
        let chunk_bytes = CHUNK_BYTES.min(
            self.dsa
                .settings()
                .limits
                .max_pdu_bytes
                .saturating_sub(512)
                .max(256),
        );
        *slot = Some(Job {
            token: token.clone(),
            by: grant.by().to_string(),
            grant,
            options,
            dir,
            files,
            received: 0,
            last: Instant::now(),
            status: Arc::new(Mutex::new(Status {
                state: "receiving".into(),
                ..Status::default()
            })),
            thread: None,
        });
        serde_json::to_vec(&Begun {
            job: token,
            chunk_bytes,
        })
        .map_err(|e| OnlineError::Io(e.to_string()))
    }

    fn with_job<T>(
        &self,
        by: &str,
        token: &str,
        f: impl FnOnce(&mut Job) -> Result<T, OnlineError>,
    ) -> Result<T, OnlineError> {
        let mut slot = lock(&self.job);
        match slot.as_mut() {
            Some(job) if job.token == token && job.by == by => f(job),
            _ => Err(OnlineError::Refused(format!(
                "no import job {token} of yours (finished, abandoned for {} s, or begun by \
                 someone else)",
                IDLE.as_secs()
            ))),
        }
    }

    /// Appends a chunk to a job's file; returns the bytes received so far (as text).
    pub fn data(&self, by: &str, value: &[u8]) -> Result<Vec<u8>, OnlineError> {
        let (token, rest) = split_token(value)?;
        let (number, bytes) = split_token(rest)?;
        let n: usize = number
            .parse()
            .map_err(|_| OnlineError::Malformed(format!("file number '{number}'")))?;
        self.with_job(by, token, |job| {
            if lock(&job.status).state != "receiving" {
                return Err(OnlineError::Refused("the import is running already".into()));
            }
            let Some((_, path)) = job.files.get(n) else {
                return Err(OnlineError::Malformed(format!("no file number {n}")));
            };
            job.received += bytes.len() as u64;
            if job.received > MAX_FEED_BYTES {
                return Err(OnlineError::Refused(format!(
                    "the feed is over {} GiB: split it, or load it offline",
                    MAX_FEED_BYTES >> 30
                )));
            }
            let mut f = private_append(path).map_err(io)?;
            std::io::Write::write_all(&mut f, bytes).map_err(io)?;
            job.last = Instant::now();
            Ok(job.received.to_string().into_bytes())
        })
    }

    /// Starts the feed of a job that has received its files.
    pub fn run(&self, by: &str, value: &[u8]) -> Result<(), OnlineError> {
        let (token, _) = split_token(value)?;
        self.with_job(by, token, |job| {
            {
                let mut s = lock(&job.status);
                if s.state != "receiving" {
                    return Err(OnlineError::Refused("the import is running already".into()));
                }
                s.state = "running".into();
            }
            let dsa = Arc::clone(&self.dsa);
            let grant = job.grant.clone();
            let options = job.options.clone();
            let files = job.files.clone();
            let status = Arc::clone(&job.status);
            let thread = std::thread::Builder::new()
                .name("online-import".into())
                .spawn(move || {
                    crate::background::lower_priority(crate::background::BACKGROUND);
                    let writer = dsa.writer(&grant);
                    let watch = Watch {
                        status: Arc::clone(&status),
                    };
                    let outcome = import_feed(&writer, &files, &options, &watch);
                    let mut s = lock(&status);
                    if let Err(stop) = outcome {
                        s.error = Some(stop.error.to_string());
                    }
                    s.state = "done".into();
                })
                .map_err(io)?;
            job.thread = Some(thread);
            Ok(())
        })
    }

    /// How a job stands (JSON); a finished job is forgotten once its status has been read.
    pub fn status(&self, by: &str, value: &[u8]) -> Result<Vec<u8>, OnlineError> {
        let (token, _) = split_token(value)?;
        let (status, done) = self.with_job(by, token, |job| {
            let s = lock(&job.status).clone();
            let done = s.state == "done";
            Ok((s, done))
        })?;
        if done {
            *lock(&self.job) = None;
        }
        serde_json::to_vec(&status).map_err(|e| OnlineError::Io(e.to_string()))
    }

    /// The import under way, if one is receiving or running (for the operators' figures).
    pub fn current(&self) -> Option<Status> {
        let job = lock(&self.job);
        let s = lock(&job.as_ref()?.status).clone();
        (s.state != "done").then_some(s)
    }

    /// Stops a running import at its next batch and waits for it (the server is stopping).
    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        *lock(&self.job) = None;
    }
}
