//! The audit trail and the access log: line sinks that write to a file (created readable by
//! the owner only, appended to) or to standard error.
//!
//! The audit trail (`audit_log`) has one JSON object per line: every bind (success or failure
//! and why), every write (who, what, which attributes, the result code), every lockout and
//! unlock, and every refusal of access. It never holds a password or a hash: the events take
//! attribute *names*, never values. The access log (`access_log`) has one text line per
//! operation, in the spirit of slapd's `stats` level. Both are off unless configured.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::clock::{rfc3339, Clock};
use crate::config::LogTarget;

/// Lines to a file or to standard error. A failed write is reported once on the server's log
/// and never fails the operation that wanted to record it.
pub struct LogSink {
    out: Mutex<Box<dyn Write + Send>>,
    target: LogTarget,
    what: &'static str,
    broken: std::sync::atomic::AtomicBool,
}

impl LogSink {
    pub fn open(target: &LogTarget, what: &'static str) -> std::io::Result<LogSink> {
        Ok(LogSink {
            out: Mutex::new(Self::writer(target, what)?),
            target: target.clone(),
            what,
            broken: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Opens the file again (log rotation: the old name was moved away, SIGHUP). On an error
    /// the sink keeps writing where it did, and says so.
    pub fn reopen(&self) -> std::io::Result<()> {
        if matches!(self.target, LogTarget::Stderr) {
            return Ok(());
        }
        let fresh = Self::writer(&self.target, self.what)?;
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
            *out = fresh;
        }
        self.broken
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn writer(target: &LogTarget, what: &'static str) -> std::io::Result<Box<dyn Write + Send>> {
        Ok(match target {
            LogTarget::Stderr => Box::new(std::io::stderr()),
            LogTarget::File(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let file = options.open(path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
                })?;
                #[cfg(unix)]
                if let Ok(meta) = file.metadata() {
                    use std::os::unix::fs::PermissionsExt;
                    if meta.permissions().mode() & 0o077 != 0 {
                        tracing::warn!(
                            path = %path.display(),
                            "the {what} is readable by others than its owner: chmod 600 it"
                        );
                    }
                }
                Box::new(file)
            }
        })
    }

    /// Writes one line (a newline is added), in one write so lines never interleave.
    pub fn line(&self, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        let written = match self.out.lock() {
            Ok(mut out) => out.write_all(&bytes).and_then(|()| out.flush()),
            Err(_) => Err(std::io::Error::other("log lock poisoned")),
        };
        if let Err(e) = written {
            if !self.broken.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::error!(error = %e, "cannot write the {}; its lines are lost", self.what);
            }
        }
    }
}

/// The audit trail: off, or JSON lines to a sink.
pub struct Audit {
    sink: Option<LogSink>,
    clock: Clock,
}

impl Audit {
    pub fn open(target: Option<&LogTarget>, clock: Clock) -> std::io::Result<Audit> {
        let sink = match target {
            Some(t) => Some(LogSink::open(t, "audit log")?),
            None => None,
        };
        Ok(Audit { sink, clock })
    }

    pub fn off() -> Audit {
        Audit {
            sink: None,
            clock: Clock::system(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Opens the audit file again (after a rotation).
    pub fn reopen(&self) -> std::io::Result<()> {
        self.sink.as_ref().map_or(Ok(()), LogSink::reopen)
    }

    /// Records one event: `event` names it, `fields` say the rest (a JSON object; anything
    /// else is recorded under `detail`). The time comes first.
    pub fn record(&self, event: &str, fields: Value) {
        let Some(sink) = &self.sink else { return };
        let mut line = Map::new();
        line.insert("time".into(), Value::String(rfc3339(self.clock.now())));
        line.insert("event".into(), Value::String(event.to_string()));
        match fields {
            Value::Object(map) => line.extend(map),
            Value::Null => {}
            other => {
                line.insert("detail".into(), other);
            }
        }
        sink.line(&Value::Object(line).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_log_writes_to_the_new_file_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&LogTarget::File(path.clone())), Clock::system()).unwrap();
        audit.record("bind", serde_json::json!({"n": 1}));
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        audit.record("bind", serde_json::json!({"n": 2}));
        audit.reopen().unwrap();
        audit.record("bind", serde_json::json!({"n": 3}));
        let old = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(old.lines().count(), 2, "{old}");
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.contains("\"n\":3"), "{new}");
    }

    #[test]
    fn audit_lines_are_json_with_the_time_first_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&LogTarget::File(path.clone())), Clock::system()).unwrap();
        audit.record(
            "bind",
            serde_json::json!({"result": "success", "dn": "uid=a"}),
        );
        audit.record("unlock", serde_json::json!({"dn": "uid=b"}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "bind");
        assert_eq!(lines[0]["dn"], "uid=a");
        assert!(text.starts_with("{\"time\":\""), "{text}");
        assert_eq!(lines[1]["event"], "unlock");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!Audit::off().is_on());
    }
}
