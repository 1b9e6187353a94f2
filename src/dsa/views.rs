//! Sorted result lists, cached with the store generation they are exact at.
//!
//! Outlook's browsing asks for window after window of the same sorted list; the cache makes
//! every window after the first a slice of a list built once. After a write, a list is brought
//! forward by moving the entries that changed (`ops::search::sort`), not rebuilt.
//!
//! The lists that depend only on their entries are kept on disk too (`sorted-views.bin`,
//! [`ViewCache::save`]: at a clean shutdown, and every `sorted_lists_keep_secs` while
//! serving), each with its generation; the store keeps the change log after the oldest
//! ([`crate::store::Store::keep_log_after`]). After a restart, clean or not, a list comes back
//! at its generation and the first request brings it forward with the log: a window of a
//! million-entry list without sorting the directory again.

use std::sync::{Arc, Mutex};

use crate::directory::entry::EntryId;

/// Sort keys of one entry (one per sort key; `None` when the entry lacks the attribute).
pub type SortValue = Vec<Option<Vec<u8>>>;
/// Matches of a sorted search, in order.
pub type SortedView = Vec<(SortValue, EntryId)>;

/// One kept list: its key, the generation it is exact at, and whether it may be kept across
/// a restart (it depends on nothing but the entries it holds and those the log names).
struct Kept {
    key: String,
    generation: u64,
    view: Arc<SortedView>,
    lasting: bool,
}

#[derive(Default)]
pub(super) struct ViewCache {
    views: Mutex<Vec<Kept>>,
    /// What the file holds (key and generation of each list), to write it only when that
    /// changes.
    saved: Mutex<Vec<(String, u64)>>,
}

/// Sorted lists kept at once.
const VIEW_CACHE_SIZE: usize = 16;

/// Log records held for the kept lists at most: past this many changes since a list was
/// kept, bringing it forward is no cheaper than building it.
pub(super) const LOG_HELD_MAX: usize = 200_000;

/// What [`ViewCache::save`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Saved {
    /// The file holds these lists already.
    Unchanged,
    /// No list to keep: the file is gone.
    Nothing,
    /// Written: how many lists, and the generation of the oldest.
    Written { lists: usize, oldest: u64 },
}

impl ViewCache {
    pub(super) fn get(&self, key: &str, generation: u64) -> Option<Arc<SortedView>> {
        let mut views = self.views.lock().ok()?;
        let pos = views
            .iter()
            .position(|k| k.key == key && k.generation == generation)?;
        // Most recently used last.
        let item = views.remove(pos);
        let view = Arc::clone(&item.view);
        views.push(item);
        Some(view)
    }

    /// Takes the list kept under `key` out of the cache, whatever its generation (to bring it
    /// forward and put it back).
    pub(super) fn take(&self, key: &str) -> Option<(u64, Arc<SortedView>)> {
        let mut views = self.views.lock().ok()?;
        let pos = views.iter().position(|k| k.key == key)?;
        let k = views.remove(pos);
        Some((k.generation, k.view))
    }

    pub(super) fn put(&self, key: String, generation: u64, view: Arc<SortedView>, lasting: bool) {
        if let Ok(mut views) = self.views.lock() {
            // A newer list of the same key wins (two readers brought it forward at once).
            if views
                .iter()
                .any(|k| k.key == key && k.generation > generation)
            {
                return;
            }
            views.retain(|k| k.key != key);
            if views.len() >= VIEW_CACHE_SIZE {
                views.remove(0);
            }
            views.push(Kept {
                key,
                generation,
                view,
                lasting,
            });
        }
    }

    /// Forgets what the file holds (it is gone, or must be written again).
    pub(super) fn forget_saved(&self) {
        if let Ok(mut saved) = self.saved.lock() {
            saved.clear();
        }
    }
}

/// The file's first bytes; a file of another layout is ignored.
const MAGIC: &[u8; 8] = b"OPVIEWS2";
/// Bounds on what a file may claim (a damaged file is ignored, never trusted to allocate).
const MAX_KEY: usize = 64 * 1024;
const MAX_VALUE: usize = 1 << 20;
const MAX_ITEMS: u64 = 100_000_000;

fn read_u64(r: &mut impl std::io::Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn read_u32(r: &mut impl std::io::Read) -> std::io::Result<usize> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b) as usize)
}

fn read_bytes(r: &mut impl std::io::Read, max: usize) -> std::io::Result<Vec<u8>> {
    let n = read_u32(r)?;
    if n > max {
        return Err(std::io::Error::other("a length beyond the file's bounds"));
    }
    let mut v = vec![0u8; n];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn put_bytes(w: &mut impl std::io::Write, b: &[u8]) -> std::io::Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| std::io::Error::other("a value too long"))?;
    w.write_all(&n.to_be_bytes())?;
    w.write_all(b)
}

impl ViewCache {
    /// Writes every list that may outlive the process and whose generation is on disk
    /// (`durable`: a crash cannot take it back) to `path`, each with its generation, under the
    /// schema's `fingerprint` — unless the file holds those already. Written beside, synced
    /// and renamed, readable by the owner only.
    pub(super) fn save(
        &self,
        path: &std::path::Path,
        durable: u64,
        fingerprint: &str,
    ) -> std::io::Result<Saved> {
        use std::io::Write;
        let mut views: Vec<(String, u64, Arc<SortedView>)> = match self.views.lock() {
            Ok(v) => v
                .iter()
                .filter(|k| k.lasting && k.generation <= durable)
                .map(|k| (k.key.clone(), k.generation, Arc::clone(&k.view)))
                .collect(),
            Err(_) => return Ok(Saved::Unchanged),
        };
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let listed: Vec<(String, u64)> = views.iter().map(|(k, g, _)| (k.clone(), *g)).collect();
        let Ok(mut saved) = self.saved.lock() else {
            return Ok(Saved::Unchanged);
        };
        if *saved == listed && (!listed.is_empty() || !path.exists()) {
            return Ok(Saved::Unchanged);
        }
        let Some(oldest) = views.iter().map(|(_, g, _)| *g).min() else {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            saved.clear();
            return Ok(Saved::Nothing);
        };
        let partial = path.with_extension("partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut w = std::io::BufWriter::with_capacity(1 << 20, options.open(&partial)?);
        w.write_all(MAGIC)?;
        put_bytes(&mut w, fingerprint.as_bytes())?;
        w.write_all(&(views.len() as u64).to_be_bytes())?;
        for (key, generation, view) in &views {
            put_bytes(&mut w, key.as_bytes())?;
            w.write_all(&generation.to_be_bytes())?;
            w.write_all(&(view.len() as u64).to_be_bytes())?;
            for (values, id) in view.iter() {
                w.write_all(&id.to_be_bytes())?;
                w.write_all(&(values.len() as u64).to_be_bytes())?;
                for v in values {
                    match v {
                        Some(b) => {
                            w.write_all(&[1])?;
                            put_bytes(&mut w, b)?;
                        }
                        None => w.write_all(&[0])?,
                    }
                }
            }
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, path)?;
        *saved = listed;
        Ok(Saved::Written {
            lists: views.len(),
            oldest,
        })
    }

    /// Reads back the lists of `path` written under the same schema `fingerprint`, each list
    /// only if `usable` says its generation can be brought forward from (the change log
    /// reaches back to it); they are kept at their own generations and brought forward on
    /// first use. Returns how many. An unreadable file is removed.
    pub(super) fn load(
        &self,
        path: &std::path::Path,
        fingerprint: &str,
        usable: impl Fn(u64) -> bool,
    ) -> usize {
        let read = || -> std::io::Result<Option<Vec<(String, u64, SortedView)>>> {
            let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
            let mut magic = [0u8; 8];
            std::io::Read::read_exact(&mut r, &mut magic)?;
            if &magic != MAGIC || read_bytes(&mut r, MAX_KEY)? != fingerprint.as_bytes() {
                return Ok(None);
            }
            let count = read_u64(&mut r)?.min(VIEW_CACHE_SIZE as u64);
            let mut out = Vec::new();
            for _ in 0..count {
                let key = String::from_utf8(read_bytes(&mut r, MAX_KEY)?)
                    .map_err(|_| std::io::Error::other("a key that is not text"))?;
                let generation = read_u64(&mut r)?;
                let n = read_u64(&mut r)?;
                if n > MAX_ITEMS {
                    return Err(std::io::Error::other("a list beyond the file's bounds"));
                }
                // Sized from the file up to a bound (a damaged count allocates no more).
                let mut view = Vec::with_capacity(usize::try_from(n.min(1 << 20)).unwrap_or(0));
                for _ in 0..n {
                    let id = read_u64(&mut r)?;
                    let keys = read_u64(&mut r)?;
                    if keys > 16 {
                        return Err(std::io::Error::other("more sort keys than a list has"));
                    }
                    let mut values = Vec::with_capacity(keys as usize);
                    for _ in 0..keys {
                        let mut present = [0u8; 1];
                        std::io::Read::read_exact(&mut r, &mut present)?;
                        values.push(match present {
                            [0] => None,
                            _ => Some(read_bytes(&mut r, MAX_VALUE)?),
                        });
                    }
                    view.push((values, id));
                }
                view.shrink_to_fit();
                out.push((key, generation, view));
            }
            Ok(Some(out))
        };
        match read() {
            Ok(Some(views)) => {
                let all = views.len();
                let mut listed = Vec::new();
                for (key, generation, view) in views {
                    if usable(generation) {
                        listed.push((key.clone(), generation));
                        self.put(key, generation, Arc::new(view), true);
                    }
                }
                let n = listed.len();
                if let Ok(mut saved) = self.saved.lock() {
                    // A file with lists that cannot come back is written again.
                    if n == all {
                        listed.sort();
                        *saved = listed;
                    }
                }
                n
            }
            // Another schema or layout: written again at the next keep.
            Ok(None) => 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                tracing::warn!(error = %e, path = %path.display(), "the kept sorted lists are unreadable; they are built again");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> Arc<SortedView> {
        Arc::new(vec![
            (vec![Some(b"ada".to_vec()), None], 7),
            (vec![Some(b"zoe".to_vec()), Some(b"x".to_vec())], 3),
        ])
    }

    #[test]
    fn kept_lists_come_back_at_their_own_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.bin");
        let cache = ViewCache::default();
        cache.put("people".into(), 9, view(), true);
        cache.put("older".into(), 5, view(), true);
        cache.put("secure".into(), 9, view(), false);
        cache.put("not-yet-on-disk".into(), 12, view(), true);
        assert_eq!(
            cache.save(&path, 10, "fp").unwrap(),
            Saved::Written {
                lists: 2,
                oldest: 5
            },
            "lasting lists at durable generations only"
        );
        assert_eq!(cache.save(&path, 10, "fp").unwrap(), Saved::Unchanged);
        let back = ViewCache::default();
        assert_eq!(back.load(&path, "fp", |_| true), 2);
        assert_eq!(back.get("people", 9).as_deref(), Some(&*view()));
        assert_eq!(back.take("older").map(|(g, _)| g), Some(5));
        assert!(back.get("secure", 9).is_none());
        assert!(
            path.exists(),
            "the file stays: the log brings it forward again"
        );
        // A list the log no longer reaches is left out, and the file is written again.
        let partly = ViewCache::default();
        assert_eq!(partly.load(&path, "fp", |g| g >= 7), 1);
        assert!(partly.take("older").is_none());
        assert_eq!(
            partly.save(&path, 10, "fp").unwrap(),
            Saved::Written {
                lists: 1,
                oldest: 9
            }
        );
        // Another schema: nothing comes back.
        assert_eq!(ViewCache::default().load(&path, "other", |_| true), 0);
        // Nothing left to keep: the file goes.
        assert_eq!(
            ViewCache::default().save(&path, 10, "fp").unwrap(),
            Saved::Nothing
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_damaged_file_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.bin");
        let cache = ViewCache::default();
        cache.put("people".into(), 9, view(), true);
        cache.save(&path, 9, "fp").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(ViewCache::default().load(&path, "fp", |_| true), 0);
        assert!(!path.exists());
        // A length no file could hold is refused before anything is allocated.
        let mut huge = MAGIC.to_vec();
        huge.extend(2u32.to_be_bytes());
        huge.extend(b"fp");
        huge.extend(1u64.to_be_bytes());
        huge.extend(u32::MAX.to_be_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert_eq!(ViewCache::default().load(&path, "fp", |_| true), 0);
    }
}
