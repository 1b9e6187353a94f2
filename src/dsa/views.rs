//! Sorted result lists, cached with the store generation they are exact at.
//!
//! Outlook's browsing asks for window after window of the same sorted list; the cache makes
//! every window after the first a slice of a list built once. After a write, a list is brought
//! forward by moving the entries that changed (`ops::search::sort`), not rebuilt.

use std::sync::{Arc, Mutex};

use crate::directory::entry::EntryId;

/// Sort keys of one entry (one per sort key; `None` when the entry lacks the attribute).
pub type SortValue = Vec<Option<Vec<u8>>>;
/// Matches of a sorted search, in order.
pub type SortedView = Vec<(SortValue, EntryId)>;

#[derive(Default)]
pub(super) struct ViewCache {
    views: Mutex<Vec<(String, u64, Arc<SortedView>)>>,
}

/// Sorted lists kept at once.
const VIEW_CACHE_SIZE: usize = 16;

impl ViewCache {
    pub(super) fn get(&self, key: &str, generation: u64) -> Option<Arc<SortedView>> {
        let mut views = self.views.lock().ok()?;
        let pos = views
            .iter()
            .position(|(k, g, _)| k == key && *g == generation)?;
        // Most recently used last.
        let item = views.remove(pos);
        let view = Arc::clone(&item.2);
        views.push(item);
        Some(view)
    }

    /// Takes the list kept under `key` out of the cache, whatever its generation (to bring it
    /// forward and put it back).
    pub(super) fn take(&self, key: &str) -> Option<(u64, Arc<SortedView>)> {
        let mut views = self.views.lock().ok()?;
        let pos = views.iter().position(|(k, _, _)| k == key)?;
        let (_, g, v) = views.remove(pos);
        Some((g, v))
    }

    pub(super) fn put(&self, key: String, generation: u64, view: Arc<SortedView>) {
        if let Ok(mut views) = self.views.lock() {
            // A newer list of the same key wins (two readers brought it forward at once).
            if views.iter().any(|(k, g, _)| k == &key && *g > generation) {
                return;
            }
            views.retain(|(k, _, _)| k != &key);
            if views.len() >= VIEW_CACHE_SIZE {
                views.remove(0);
            }
            views.push((key, generation, view));
        }
    }
}
