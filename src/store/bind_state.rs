//! Per-account sign-in state (failed binds, lockout) in its own tree, apart from the entries.

use super::{read_u64, EntryId, Store, StoreError};

impl Store {
    /// Every account's recorded sign-in state.
    pub fn bind_states(&self) -> Result<Vec<(EntryId, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.bind_state.iter() {
            let (k, v) = item?;
            if let Some(id) = read_u64(&k) {
                out.push((id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Records (or, with `None`, forgets) an account's sign-in state. Not flushed: sled writes
    /// it out within its flush interval (half a second), so a flood of failed binds costs no
    /// disk wait, and a crash loses at most that interval's records.
    pub fn set_bind_state(&self, id: EntryId, state: Option<&[u8]>) -> Result<(), StoreError> {
        let key = id.to_be_bytes();
        match state {
            Some(bytes) => {
                self.bind_state.insert(key, bytes)?;
            }
            None => {
                self.bind_state.remove(key)?;
            }
        }
        Ok(())
    }
}
