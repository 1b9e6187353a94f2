//! Per-account sign-in state in trees of their own, apart from the entries: failed binds and
//! lockouts (the bind state), and the last successful sign-in the server recorded.

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

impl Store {
    /// Every recorded last sign-in (seconds since 1970), by entry id.
    pub fn sign_ins(&self) -> Result<Vec<(EntryId, i64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.sign_in.iter() {
            let (k, v) = item?;
            if let (Some(id), Some(at)) = (read_u64(&k), read_u64(&v)) {
                out.push((id, i64::from_be_bytes(at.to_be_bytes())));
            }
        }
        Ok(out)
    }

    /// Records (or, with `None`, forgets) an account's last sign-in. Not flushed, as for the
    /// bind state.
    pub fn set_sign_in(&self, id: EntryId, at: Option<i64>) -> Result<(), StoreError> {
        let key = id.to_be_bytes();
        match at {
            Some(t) => {
                self.sign_in.insert(key, &t.to_be_bytes())?;
            }
            None => {
                self.sign_in.remove(key)?;
            }
        }
        Ok(())
    }
}
