//! Group commit: writers that finish their batches while a flush is under way share the next
//! one, instead of each waiting for a disk write of its own.
//!
//! A batch is applied to sled (atomic, visible) under the writer lock, which is then released;
//! the writer waits, without it, until a flush covers its generation. The first writer to find
//! no flush under way runs one for everything applied so far; those arriving meanwhile wait for
//! it and, if it started before their batch, for the next, which the first of them runs. A
//! write is acknowledged only once a flush that began after its batch has ended, so nothing is
//! reported done before it is durable. A concurrent reader can see a batch up to one flush
//! before it is durable; its writer has not been told it succeeded, and after a crash in that
//! window neither has anyone else (sled's log is replayed in order: a later durable batch
//! implies every earlier one).

use std::sync::{Condvar, Mutex};

use super::{Store, StoreError};

#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Every generation up to this is on disk.
    durable: u64,
    /// A flush is running, covering generations up to this.
    flushing: Option<u64>,
    /// Flushes run, and the generations they covered (for the tests and the figures).
    flushes: u64,
}

impl GroupCommit {
    /// Everything up to `generation` is on disk already (a store just opened).
    pub(super) fn at(generation: u64) -> GroupCommit {
        GroupCommit {
            state: Mutex::new(State {
                durable: generation,
                ..State::default()
            }),
            done: Condvar::new(),
        }
    }
}

impl Store {
    /// Waits until `generation` is durable, flushing if no flush under way covers it.
    pub fn sync_through(&self, generation: u64) -> Result<(), StoreError> {
        let gc = &self.durable;
        let mut state = gc
            .state
            .lock()
            .map_err(|_| StoreError::Internal("the group commit lock is poisoned".into()))?;
        loop {
            if state.durable >= generation {
                return Ok(());
            }
            match state.flushing {
                Some(_) => {
                    // A flush is running: it may cover this generation, or it began before
                    // the batch; either way the next look tells.
                    state = gc.done.wait(state).map_err(|_| {
                        StoreError::Internal("the group commit lock is poisoned".into())
                    })?;
                }
                None => {
                    // Everything applied so far goes into this flush.
                    let target = self.generation().max(generation);
                    state.flushing = Some(target);
                    drop(state);
                    let flushed = self.db.flush();
                    let mut after = gc.state.lock().map_err(|_| {
                        StoreError::Internal("the group commit lock is poisoned".into())
                    })?;
                    after.flushing = None;
                    if flushed.is_ok() {
                        after.durable = after.durable.max(target);
                        after.flushes += 1;
                    }
                    gc.done.notify_all();
                    flushed?;
                    state = after;
                }
            }
        }
    }

    /// Every generation up to this one is on disk.
    pub fn durable_generation(&self) -> u64 {
        self.durable.state.lock().map_or(0, |s| s.durable)
    }

    /// How many group flushes ran since the store opened.
    pub fn flushes(&self) -> u64 {
        self.durable.state.lock().map_or(0, |s| s.flushes)
    }

    /// Marks everything up to `generation` durable (the store was just opened, or flushed
    /// by other means).
    pub(super) fn mark_durable(&self, generation: u64) {
        if let Ok(mut s) = self.durable.state.lock() {
            s.durable = s.durable.max(generation);
        }
    }
}
