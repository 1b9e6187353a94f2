//! What the directory remembers of its last runs of whole-directory work (the last import, the
//! last dormant-account run), for operators: kept in the store beside the entries, so that the
//! server shows an import an offline command made, and a run from before a restart.

use super::{Dsa, DsaError};

/// Which work a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Import,
    Dormant,
}

impl Run {
    fn key(self) -> &'static str {
        match self {
            Run::Import => "last-import",
            Run::Dormant => "last-dormant",
        }
    }
}

/// One finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunNote {
    /// When it began and ended (seconds since 1970, the directory's clock).
    pub started: i64,
    pub finished: i64,
    /// Whether it ran to its end.
    pub ok: bool,
    /// Who or what ran it (`onepages import`, an administrator's DN, `daily`).
    #[serde(default)]
    pub by: String,
    /// One line for a person: what it did, or why it stopped.
    pub summary: String,
    /// Its figures by name (`records`, `written`, `refused`; `disabled`, `removed`...).
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, u64>,
}

impl Dsa {
    /// Remembers `note` as the last run of its kind (flushed).
    pub fn note_run(&self, run: Run, note: &RunNote) -> Result<(), DsaError> {
        let bytes =
            serde_json::to_vec(note).map_err(|e| DsaError::Internal(format!("run note: {e}")))?;
        self.store.set_note(run.key(), &bytes)?;
        self.store.flush()?;
        Ok(())
    }

    /// The last run of a kind, if there was one (a note that does not parse is none).
    pub fn last_run(&self, run: Run) -> Option<RunNote> {
        let bytes = self.store.note(run.key()).ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}
