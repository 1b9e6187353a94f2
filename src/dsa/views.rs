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

/// What a file holds: the domains epoch, and the lists by key.
type Kept = (u64, Vec<(String, SortedView)>);

/// The file's first bytes; a file of another layout is ignored.
const MAGIC: &[u8; 8] = b"OPVIEWS1";
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
    /// Writes the lists exact at `generation` to `path` (a clean shutdown), with `epoch` (the
    /// domains epoch their keys carry). Written beside and renamed, readable by the owner
    /// only. Returns how many.
    pub(super) fn save(
        &self,
        path: &std::path::Path,
        generation: u64,
        epoch: u64,
    ) -> std::io::Result<usize> {
        use std::io::Write;
        let views: Vec<(String, Arc<SortedView>)> = match self.views.lock() {
            Ok(v) => v
                .iter()
                .filter(|(_, g, _)| *g == generation)
                .map(|(k, _, v)| (k.clone(), Arc::clone(v)))
                .collect(),
            Err(_) => return Ok(0),
        };
        if views.is_empty() {
            let _ = std::fs::remove_file(path);
            return Ok(0);
        }
        let partial = path.with_extension("partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut w = std::io::BufWriter::with_capacity(1 << 20, options.open(&partial)?);
        w.write_all(MAGIC)?;
        w.write_all(&generation.to_be_bytes())?;
        w.write_all(&epoch.to_be_bytes())?;
        w.write_all(&(views.len() as u64).to_be_bytes())?;
        for (key, view) in &views {
            put_bytes(&mut w, key.as_bytes())?;
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
        Ok(views.len())
    }

    /// Reads the lists a clean shutdown left, if they are exact at `generation` (the store
    /// has not changed since); the file is removed either way, so it is never read twice.
    /// Returns how many, and the domains epoch their keys carry.
    pub(super) fn load(&self, path: &std::path::Path, generation: u64) -> (usize, Option<u64>) {
        let read = || -> std::io::Result<Option<Kept>> {
            let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
            let mut magic = [0u8; 8];
            std::io::Read::read_exact(&mut r, &mut magic)?;
            if &magic != MAGIC || read_u64(&mut r)? != generation {
                return Ok(None);
            }
            let epoch = read_u64(&mut r)?;
            let count = read_u64(&mut r)?.min(VIEW_CACHE_SIZE as u64);
            let mut out = Vec::new();
            for _ in 0..count {
                let key = String::from_utf8(read_bytes(&mut r, MAX_KEY)?)
                    .map_err(|_| std::io::Error::other("a key that is not text"))?;
                let n = read_u64(&mut r)?;
                if n > MAX_ITEMS {
                    return Ok(None);
                }
                let mut view = Vec::new();
                for _ in 0..n {
                    let id = read_u64(&mut r)?;
                    let keys = read_u64(&mut r)?;
                    if keys > 16 {
                        return Ok(None);
                    }
                    let mut values = Vec::new();
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
                out.push((key, view));
            }
            Ok(Some((epoch, out)))
        };
        let loaded = read();
        let _ = std::fs::remove_file(path);
        match loaded {
            Ok(Some((epoch, views))) => {
                let n = views.len();
                for (key, view) in views {
                    self.put(key, generation, Arc::new(view));
                }
                (n, Some(epoch))
            }
            Ok(None) => (0, None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, None),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "the kept sorted lists are unreadable; they are built again");
                (0, None)
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
    fn kept_lists_come_back_once_at_their_generation_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.bin");
        let cache = ViewCache::default();
        cache.put("people".into(), 9, view());
        cache.put("stale".into(), 8, view());
        assert_eq!(
            cache.save(&path, 9, 4).unwrap(),
            1,
            "only the lists exact at 9"
        );
        let back = ViewCache::default();
        assert_eq!(back.load(&path, 9), (1, Some(4)));
        assert_eq!(back.get("people", 9).as_deref(), Some(&*view()));
        assert!(!path.exists(), "read once");
        // Another generation: ignored (and removed).
        cache.save(&path, 9, 4).unwrap();
        assert_eq!(ViewCache::default().load(&path, 10), (0, None));
        assert!(!path.exists());
        // A damaged file: ignored, never a panic or a huge allocation.
        cache.save(&path, 9, 4).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(ViewCache::default().load(&path, 9), (0, None));
        let mut huge = MAGIC.to_vec();
        huge.extend(9u64.to_be_bytes());
        huge.extend(0u64.to_be_bytes());
        huge.extend(1u64.to_be_bytes());
        huge.extend(u32::MAX.to_be_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert_eq!(ViewCache::default().load(&path, 9), (0, None));
    }
}
