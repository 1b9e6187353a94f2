//! The search index: tantivy, derived from the store and rebuildable at any time.
//!
//! One document per entry: its id (fast field) and its terms ([`terms`]). A single indexer
//! thread owns the `IndexWriter` and is fed entry ids through a channel after each store write;
//! it re-reads those entries from the store, commits with the store generation as payload, and
//! reloads the one reader. Until then the ids are *pending* ([`pending`]): searches skip them in
//! index results and evaluate them straight from the store (those whose terms may satisfy the
//! search's plan), so a lagging index can neither hide a new entry nor show a deleted one.
//!
//! On open, the commit payload says which store generation the index reflects; the store's
//! change log supplies what it missed (after a crash), or the index is rebuilt when it is
//! missing, unreadable or of another layout, or when an offline bulk load, which writes
//! without the change log, stopped before its index was committed.

mod pending;
pub mod plan;
pub mod terms;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::{IndexRecordOption, NumericOptions, TextFieldIndexing, TextOptions};
use tantivy::{
    DocSet, Index as TantivyIndex, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
    TERMINATED,
};

use crate::directory::entry::Entry;
use crate::directory::filter::Filter;
use crate::directory::schema::Schema;
use crate::store::{EntryId, Store, StoreError};
use plan::{Plan, Planner};
use terms::{write_entry_terms, IndexSpec, TermTokenizer, TERM_TOKENIZER};

/// How long the indexer gathers changes before committing them together, by default.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(100);
/// The same for a bulk load that nobody searches meanwhile (`onepages import`): a tantivy
/// commit writes a segment that must later be merged, and at one per 100 ms commits took a
/// third of an import's CPU time.
pub const BULK_COALESCE: std::time::Duration = std::time::Duration::from_secs(10);
/// Most changes in one commit.
const MAX_CHANGES_PER_COMMIT: usize = 100_000;
/// Write batches queued for the indexer before writers wait for it: the entries they carry
/// are held in memory until indexed, so a bulk load must not run far ahead.
const QUEUED_JOBS: usize = 16;

/// Segments up to this many documents are merged together whatever their sizes (see
/// [`serving_merge_policy`]).
const SMALL_SEGMENT: u32 = 100;
/// A segment with more than this share of its documents deleted is merged with its level
/// (rewritten without them).
const DELETED_SHARE_BEFORE_MERGE: f32 = 0.5;

/// Bumped whenever terms change meaning; an index of another layout is rebuilt.
const LAYOUT: &str = "onepages-index-8";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
    #[error("the indexer thread has stopped")]
    Stopped,
    #[error("search index: merging segments: {0}")]
    Merge(String),
}

#[derive(Clone, Copy)]
struct Fields {
    id: tantivy::schema::Field,
    terms: tantivy::schema::Field,
}

enum Job {
    Changed(Vec<Made>),
    Flush(mpsc::Sender<()>),
    /// Start of a bulk load: segments are left unmerged until it ends.
    BulkLoad,
    /// End of a bulk load: commit, merge every segment into one, reply.
    Compact(mpsc::Sender<Result<(), String>>),
}

/// A write handed to the indexer, with its document's terms when the writer made them.
struct Made {
    written: Written,
    /// The terms text of the entry as written ([`write_entry_terms`]); `None` for a removal,
    /// or within a bulk load (the indexer makes them).
    terms: Option<String>,
}

/// An entry written to the store under `generation`, as the indexer learns of it.
pub struct Written {
    pub generation: u64,
    pub id: EntryId,
    /// The entry as written (`None`: removed). The writer hands it over, so the indexer
    /// does not read back from the store what was just written there.
    pub entry: Option<Entry>,
    /// The id is new (allocated by this write): no document of it can be in the index, so
    /// none is deleted (a delete by term costs a look-up in every segment at commit).
    pub fresh: bool,
}

struct Shared {
    reader: IndexReader,
    /// The indexer's gathering window, in milliseconds ([`COALESCE`] unless set).
    window_ms: std::sync::atomic::AtomicU64,
    /// The window outside bulk loads (`index_commit_ms`), restored when one ends.
    normal_ms: std::sync::atomic::AtomicU64,
    fields: Fields,
    /// Entries written to the store but not yet visible in the index: the generation of their
    /// latest write, and its terms once the indexer has seen it.
    pending: Mutex<pending::Pending>,
    /// Within a bulk load: nobody searches, so writers leave the terms to the indexer and
    /// nothing is noted in `pending`.
    bulk: std::sync::atomic::AtomicBool,
    /// The id columns of the current searcher's segments, opened once per reload instead of
    /// once per search (opening one decodes its codec header: 3% of a type-ahead search).
    id_columns: Mutex<Option<IdColumns>>,
}

/// Id columns of one searcher generation, in segment order.
type IdColumns = (u64, Arc<Vec<tantivy::columnar::Column<u64>>>);

/// Handle to the index: searches from any thread, changes through the indexer thread.
pub struct Index {
    shared: Arc<Shared>,
    spec: IndexSpec,
    schema: Arc<Schema>,
    jobs: Mutex<Option<mpsc::SyncSender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Statistics of a catch-up or rebuild.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatchUp {
    pub rebuilt: bool,
    pub entries: usize,
}

fn open_tantivy(path: &Path) -> Result<(TantivyIndex, Fields, bool), IndexError> {
    let mut builder = tantivy::schema::Schema::builder();
    let id = builder.add_u64_field("id", NumericOptions::default().set_indexed().set_fast());
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TERM_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let terms = builder.add_text_field("t", text);
    let schema = builder.build();
    std::fs::create_dir_all(path)?;
    let existing = TantivyIndex::open_in_dir(path).ok().filter(|idx| {
        idx.schema() == schema
            && idx
                .load_metas()
                .ok()
                .and_then(|m| m.payload)
                .is_some_and(|p| p.starts_with(LAYOUT))
    });
    let (index, fresh) = match existing {
        Some(i) => (i, false),
        None => {
            // Missing, unreadable or of another layout: start again from the store.
            for item in std::fs::read_dir(path)? {
                let p = item?.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
            (TantivyIndex::create_in_dir(path, schema)?, true)
        }
    };
    let mut index = index;
    // No field is stored, so the document store's compressor has nothing to do; on its own
    // thread (tantivy's default) it is a thread started and ended for every segment, that
    // is every commit of the serving writer, each with its own allocator heap.
    index.settings_mut().docstore_compress_dedicated_thread = false;
    index
        .tokenizers()
        .register(TERM_TOKENIZER, TermTokenizer::default());
    Ok((index, Fields { id, terms }, fresh))
}

fn payload_generation(index: &TantivyIndex) -> Option<u64> {
    let payload = index.load_metas().ok()?.payload?;
    payload
        .strip_prefix(LAYOUT)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

fn make_doc(
    fields: Fields,
    id: EntryId,
    entry: &crate::directory::entry::Entry,
    schema: &Schema,
    spec: &IndexSpec,
) -> TantivyDocument {
    thread_local! {
        static TERMS: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    TERMS.with_borrow_mut(|text| {
        text.clear();
        write_entry_terms(entry, schema, spec, text);
        doc_of(fields, id, text)
    })
}

/// The document of entry `id` whose terms text ([`write_entry_terms`]) is `terms`.
fn doc_of(fields: Fields, id: EntryId, terms: &str) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(fields.id, id);
    doc.add_text(fields.terms, terms);
    doc
}

/// How the segments written while serving are merged: by levels of similar sizes (tantivy's log
/// merge policy), with the bottom level kept small. tantivy's default puts every segment under
/// 10,000 documents in one level, so after an online import of some thousands of entries each
/// eight commits of a few modifies rewrote that import's segment whole (a quarter of a core
/// for as long as writes came in); here a segment is rewritten only with segments of about its
/// own size, so each document is rewritten about once per eightfold growth.
fn serving_merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_layer_size(SMALL_SEGMENT);
    policy.set_del_docs_ratio_before_merge(DELETED_SHARE_BEFORE_MERGE);
    policy
}

fn commit(writer: &mut IndexWriter, generation: u64) -> Result<(), IndexError> {
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&format!("{LAYOUT}:{generation}"));
    prepared.commit()?;
    Ok(())
}

impl Index {
    /// Opens (or builds) the index next to `store`, brings it up to the store's generation, and
    /// starts the indexer thread.
    pub fn open(
        path: &Path,
        store: Arc<Store>,
        schema: Arc<Schema>,
        spec: IndexSpec,
        progress: &dyn Fn(usize),
    ) -> Result<(Index, CatchUp), IndexError> {
        let (index, fields, fresh) = open_tantivy(path)?;
        // One indexing thread: the machine's cores are busy reading, checking and writing
        // the store meanwhile, and each extra thread writes its own segment (its own term
        // dictionary) per commit, to be merged later.
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 256 * 1024 * 1024)?;
        writer.set_merge_policy(Box::new(serving_merge_policy()));
        // Merging only makes later searches cheaper: it runs on what searches leave free.
        crate::background::lower_priority_of_threads("merge_thread", crate::background::BACKGROUND);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut stats = CatchUp::default();
        // After an unlogged bulk load that did not finish, the log cannot say what the index
        // lacks: rebuild.
        let unlogged = store.is_unlogged()?;
        let indexed = if fresh || unlogged {
            None
        } else {
            payload_generation(&index)
        };
        let store_gen = store.generation();
        match indexed {
            Some(g) if g <= store_gen => {
                let changes = store.changes_since(g)?;
                stats.entries = changes.len();
                apply_logged(&mut writer, fields, &store, &schema, &spec, &changes)?;
                if g < store_gen || !changes.is_empty() {
                    commit(&mut writer, store_gen)?;
                }
            }
            _ => {
                stats.rebuilt = true;
                stats.entries = rebuild(&mut writer, fields, &store, &schema, &spec, progress)?;
                commit(&mut writer, store_gen)?;
            }
        }
        store.trim_log(store_gen)?;
        if unlogged {
            store.end_unlogged()?;
        }
        reader.reload()?;
        let shared = Arc::new(Shared {
            reader,
            window_ms: std::sync::atomic::AtomicU64::new(
                u64::try_from(COALESCE.as_millis()).unwrap_or(100),
            ),
            normal_ms: std::sync::atomic::AtomicU64::new(
                u64::try_from(COALESCE.as_millis()).unwrap_or(100),
            ),
            fields,
            pending: Mutex::new(pending::Pending::default()),
            bulk: std::sync::atomic::AtomicBool::new(false),
            id_columns: Mutex::new(None),
        });
        let (tx, rx) = mpsc::sync_channel(QUEUED_JOBS);
        let thread = {
            let shared = Arc::clone(&shared);
            let spec = spec.clone();
            let schema = Arc::clone(&schema);
            std::thread::Builder::new()
                .name("indexer".into())
                .spawn(move || indexer_loop(rx, writer, shared, store, schema, spec))?
        };
        Ok((
            Index {
                shared,
                spec,
                schema,
                jobs: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            },
            stats,
        ))
    }

    pub fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    /// Sets how long the indexer gathers changes into one commit. Longer windows make bulk
    /// loads cheaper; searches stay exact meanwhile (changed entries are read from the store)
    /// but read more entries that way.
    pub fn set_commit_window(&self, window: std::time::Duration) {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .window_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .normal_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Marks entries as changed in the store (before the store write, so no search can miss
    /// them) — see [`Index::changed`] for after.
    pub fn mark_dirty(&self, ids: &[EntryId]) {
        if let Ok(mut d) = self.shared.pending.lock() {
            for id in ids {
                d.mark(*id, pending::BEING_WRITTEN, None);
            }
        }
    }

    /// Queues entries written to the store for indexing. Outside bulk loads the writer's
    /// thread makes their terms here (at the writer's priority: an online import's is low),
    /// so that searches know at once which pending entries they may match, and the indexer
    /// only hands the documents to tantivy.
    pub fn changed(&self, changes: Vec<Written>) -> Result<(), IndexError> {
        let bulk = self.shared.bulk.load(std::sync::atomic::Ordering::Acquire);
        let made: Vec<Made> = changes
            .into_iter()
            .map(|written| {
                let terms = written.entry.as_ref().filter(|_| !bulk).map(|entry| {
                    let mut text = String::new();
                    write_entry_terms(entry, &self.schema, &self.spec, &mut text);
                    text
                });
                Made { written, terms }
            })
            .collect();
        if let Ok(mut d) = self.shared.pending.lock() {
            for m in &made {
                let w = &m.written;
                match (&m.terms, &w.entry) {
                    (Some(text), _) => {
                        d.mark(w.id, w.generation, Some(pending::hash_terms(text)));
                    }
                    // Removed: no search reads it until the commit.
                    (None, None) => d.mark(w.id, w.generation, Some(Default::default())),
                    (None, Some(_)) => d.mark(w.id, w.generation, None),
                }
            }
        }
        let jobs = self.jobs.lock().map_err(|_| IndexError::Stopped)?;
        let tx = jobs.as_ref().ok_or(IndexError::Stopped)?;
        tx.send(Job::Changed(made)).map_err(|_| IndexError::Stopped)
    }

    /// Prepares for a bulk load nobody searches meanwhile (`onepages import`): commits are
    /// rare and segments are not merged as they appear (tantivy would merge the same postings
    /// again and again as the index grows); [`Index::finish_bulk_load`] merges them once.
    pub fn begin_bulk_load(&self) -> Result<(), IndexError> {
        self.shared
            .bulk
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.window_ms.store(
            u64::try_from(BULK_COALESCE.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        let jobs = self.jobs.lock().map_err(|_| IndexError::Stopped)?;
        let tx = jobs.as_ref().ok_or(IndexError::Stopped)?;
        tx.send(Job::BulkLoad).map_err(|_| IndexError::Stopped)
    }

    /// Ends a bulk load: everything is committed and merged into one segment (searches then
    /// read one posting list per term), and normal merging and commit windows resume.
    pub fn finish_bulk_load(&self) -> Result<(), IndexError> {
        let (tx, rx) = mpsc::channel();
        {
            let jobs = self.jobs.lock().map_err(|_| IndexError::Stopped)?;
            let sender = jobs.as_ref().ok_or(IndexError::Stopped)?;
            sender
                .send(Job::Compact(tx))
                .map_err(|_| IndexError::Stopped)?;
        }
        let merged = rx.recv().map_err(|_| IndexError::Stopped)?;
        self.shared
            .bulk
            .store(false, std::sync::atomic::Ordering::Release);
        self.shared.window_ms.store(
            self.shared
                .normal_ms
                .load(std::sync::atomic::Ordering::Relaxed),
            std::sync::atomic::Ordering::Relaxed,
        );
        merged.map_err(IndexError::Merge)
    }

    /// Waits until everything queued so far is committed and visible.
    pub fn flush(&self) -> Result<(), IndexError> {
        let (tx, rx) = mpsc::channel();
        {
            let jobs = self.jobs.lock().map_err(|_| IndexError::Stopped)?;
            let sender = jobs.as_ref().ok_or(IndexError::Stopped)?;
            sender
                .send(Job::Flush(tx))
                .map_err(|_| IndexError::Stopped)?;
        }
        rx.recv().map_err(|_| IndexError::Stopped)
    }

    /// Stops the indexer thread after it has committed everything queued.
    pub fn shutdown(&self) {
        let _ = self.flush();
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut t) = self.thread.lock() {
            if let Some(handle) = t.take() {
                let _ = handle.join();
            }
        }
    }

    pub fn dirty_count(&self) -> usize {
        self.shared.pending.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Calls `visit` with every candidate id for `filter` until it breaks: pending entries
    /// first (those whose terms may satisfy the plan, and those of unknown terms), then index
    /// hits that are not pending. `None` from the plan means "scan".
    pub fn candidates(
        &self,
        schema: &Schema,
        filter: &Filter,
        visit: &mut dyn FnMut(EntryId) -> ControlFlow<()>,
    ) -> Result<CandidateOutcome, IndexError> {
        let planner = Planner {
            schema,
            spec: &self.spec,
        };
        let plan = planner.plan(filter);
        let (query, hashed) = match plan {
            Plan::All => return Ok(CandidateOutcome::Scan),
            Plan::Nothing => (None, None),
            Plan::Query(q) => (
                Some(q.to_query(self.shared.fields.terms)),
                Some(pending::Hashed::of(&q)),
            ),
        };
        // Pending entries first, searcher second: a commit that lands in between is then
        // visible through the searcher (see the module docs).
        let pending::Seen {
            all: dirty,
            visit: read,
        } = match self.shared.pending.lock() {
            Ok(p) if p.len() > 0 => p.seen(hashed.as_ref()),
            _ => pending::Seen {
                all: Vec::new(),
                visit: Vec::new(),
            },
        };
        for id in read {
            if visit(id).is_break() {
                return Ok(CandidateOutcome::Stopped);
            }
        }
        let Some(query) = query else {
            return Ok(CandidateOutcome::Done);
        };
        let searcher = self.shared.reader.searcher();
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        // During an online import hundreds of entries can be pending: looked up by hash, not
        // by a walk of the list for every posting.
        let dirty_set: rustc_hash::FxHashSet<EntryId> = if dirty.len() > 16 {
            dirty.iter().copied().collect()
        } else {
            rustc_hash::FxHashSet::default()
        };
        let is_dirty = |id: &EntryId| {
            !dirty.is_empty()
                && if dirty_set.is_empty() {
                    dirty.contains(id)
                } else {
                    dirty_set.contains(id)
                }
        };
        let columns = self.id_columns(&searcher)?;
        for (segment, ids) in searcher.segment_readers().iter().zip(columns.iter()) {
            let alive = segment.alive_bitset();
            let mut scorer = weight.scorer(segment, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    if let Some(id) = ids.first(doc) {
                        if !is_dirty(&id) && visit(id).is_break() {
                            return Ok(CandidateOutcome::Stopped);
                        }
                    }
                }
                doc = scorer.advance();
            }
        }
        Ok(CandidateOutcome::Done)
    }

    fn id_columns(
        &self,
        searcher: &tantivy::Searcher,
    ) -> Result<Arc<Vec<tantivy::columnar::Column<u64>>>, IndexError> {
        let generation = searcher.generation().generation_id();
        if let Ok(cached) = self.shared.id_columns.lock() {
            if let Some((g, columns)) = cached.as_ref() {
                if *g == generation {
                    return Ok(Arc::clone(columns));
                }
            }
        }
        let columns = Arc::new(
            searcher
                .segment_readers()
                .iter()
                .map(|segment| segment.fast_fields().u64("id"))
                .collect::<Result<Vec<_>, _>>()?,
        );
        if let Ok(mut cached) = self.shared.id_columns.lock() {
            *cached = Some((generation, Arc::clone(&columns)));
        }
        Ok(columns)
    }

    /// Counts the documents in the index (for checks and tests).
    pub fn doc_count(&self) -> u64 {
        self.shared.reader.searcher().num_docs()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateOutcome {
    /// The index cannot narrow this filter: the caller scans.
    Scan,
    Done,
    Stopped,
}

fn id_term(fields: Fields, id: EntryId) -> Term {
    Term::from_field_u64(fields.id, id)
}

/// Replays the change log from the store (catching up at start-up).
fn apply_logged(
    writer: &mut IndexWriter,
    fields: Fields,
    store: &Store,
    schema: &Schema,
    spec: &IndexSpec,
    changes: &[(u64, EntryId)],
) -> Result<(), IndexError> {
    let mut seen = std::collections::HashSet::new();
    for (_, id) in changes {
        if !seen.insert(*id) {
            continue;
        }
        writer.delete_term(id_term(fields, *id));
        if let Some(entry) = store.get(*id)? {
            writer.add_document(make_doc(fields, *id, &entry, schema, spec))?;
        }
    }
    Ok(())
}

/// Indexes changes handed over by writers; an entry changed several times is indexed as last
/// written.
fn apply_changes(
    writer: &mut IndexWriter,
    fields: Fields,
    schema: &Schema,
    spec: &IndexSpec,
    changes: &[Made],
) -> Result<(), IndexError> {
    let mut last: HashMap<EntryId, usize> = HashMap::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        last.insert(c.written.id, i);
    }
    for (i, Made { written: c, terms }) in changes.iter().enumerate() {
        if last.get(&c.id) != Some(&i) {
            continue;
        }
        if !c.fresh {
            writer.delete_term(id_term(fields, c.id));
        }
        match (terms, &c.entry) {
            (Some(text), _) => {
                writer.add_document(doc_of(fields, c.id, text))?;
            }
            (None, Some(entry)) => {
                writer.add_document(make_doc(fields, c.id, entry, schema, spec))?;
            }
            (None, None) => {}
        }
    }
    Ok(())
}

fn rebuild(
    writer: &mut IndexWriter,
    fields: Fields,
    store: &Store,
    schema: &Schema,
    spec: &IndexSpec,
    progress: &dyn Fn(usize),
) -> Result<usize, IndexError> {
    writer.delete_all_documents()?;
    let mut n = 0;
    for item in store.scan() {
        let (id, entry) = item?;
        writer.add_document(make_doc(fields, id, &entry, schema, spec))?;
        n += 1;
        if n % 10_000 == 0 {
            progress(n);
        }
    }
    progress(n);
    Ok(n)
}

fn indexer_loop(
    rx: mpsc::Receiver<Job>,
    mut writer: IndexWriter,
    shared: Arc<Shared>,
    store: Arc<Store>,
    schema: Arc<Schema>,
    spec: IndexSpec,
) {
    while let Ok(first) = rx.recv() {
        let mut waiters = Vec::new();
        let mut compact = None;
        // Changes are indexed as they arrive; what arrives within a short window is committed
        // at once: a commit costs far more than a document, and searches stay exact meanwhile
        // through the pending set. A flush request ends the window at once.
        let window = std::time::Duration::from_millis(
            shared.window_ms.load(std::sync::atomic::Ordering::Relaxed),
        );
        let window_end = std::time::Instant::now() + window;
        let mut top = None;
        let mut indexed = 0usize;
        let mut failed: Option<IndexError> = None;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Changed(c) => {
                    indexed += c.len();
                    top = c.iter().map(|m| m.written.generation).chain(top).max();
                    if failed.is_none() {
                        if let Err(e) =
                            apply_changes(&mut writer, shared.fields, &schema, &spec, &c)
                        {
                            failed = Some(e);
                        }
                    }
                }
                Job::Flush(w) => waiters.push(w),
                Job::BulkLoad => writer.set_merge_policy(Box::new(NoMergePolicy)),
                Job::Compact(w) => compact = Some(w),
            }
            if indexed >= MAX_CHANGES_PER_COMMIT {
                break;
            }
            next = if waiters.is_empty() && compact.is_none() {
                let left = window_end.saturating_duration_since(std::time::Instant::now());
                rx.recv_timeout(left).ok()
            } else {
                rx.try_recv().ok()
            };
        }
        if let Some(top) = top {
            let result = match failed {
                Some(e) => Err(e),
                None => commit(&mut writer, top)
                    .and_then(|()| shared.reader.reload().map_err(IndexError::from)),
            };
            // The commit's segment writer (its term table and arena) is freed: handed back
            // before the indexer waits for the next change.
            crate::memory::release_freed();
            match result {
                Ok(()) => {
                    if let Ok(mut d) = shared.pending.lock() {
                        d.committed_through(top);
                    }
                    if let Err(e) = store.trim_log(top) {
                        tracing::warn!(error = %e, "could not trim the change log");
                    }
                }
                Err(e) => {
                    // The entries stay pending (searched straight from the store) and in the
                    // change log, so the next start replays them.
                    tracing::error!(error = %e, "index update failed; entries stay dirty");
                    let _ = writer.rollback();
                }
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
        if let Some(w) = compact {
            let _ = w.send(merge_all(&mut writer, &shared));
        }
    }
    let _ = writer.wait_merging_threads();
}

/// Merges every committed segment into one and restores the serving merge policy.
fn merge_all(writer: &mut IndexWriter, shared: &Shared) -> Result<(), String> {
    writer.set_merge_policy(Box::new(serving_merge_policy()));
    let ids = writer
        .index()
        .searchable_segment_ids()
        .map_err(|e| e.to_string())?;
    // Two merges side by side (one per core), each of about half the documents: two
    // segments search as fast as one, and the merge takes half the time.
    if ids.len() > 2 {
        let (a, b) = ids.split_at(ids.len() / 2);
        let first = writer.merge(a);
        let second = writer.merge(b);
        first.wait().map_err(|e| e.to_string())?;
        second.wait().map_err(|e| e.to_string())?;
    }
    shared.reader.reload().map_err(|e| e.to_string())
}

/// Rebuilds the index of a data directory from its store (the `reindex` command).
pub fn rebuild_offline(
    path: &Path,
    store: &Store,
    schema: &Schema,
    spec: &IndexSpec,
    progress: &dyn Fn(usize),
) -> Result<usize, IndexError> {
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    let (index, fields, _) = open_tantivy(path)?;
    let mut writer: IndexWriter = index.writer_with_num_threads(2, 256 * 1024 * 1024)?;
    let n = rebuild(&mut writer, fields, store, schema, spec, progress)?;
    commit(&mut writer, store.generation())?;
    store.trim_log(store.generation())?;
    if store.is_unlogged()? {
        store.end_unlogged()?;
    }
    let _ = writer.wait_merging_threads();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Write;

    #[test]
    fn a_large_segment_is_not_rewritten_with_the_small_ones_written_after_it() {
        use tantivy::indexer::MergePolicy;
        let index = TantivyIndex::create_in_ram(tantivy::schema::Schema::builder().build());
        let meta =
            |docs: u32| index.new_segment_meta(tantivy::index::SegmentId::generate_random(), docs);
        let policy = serving_merge_policy();
        // An online import's segment and the commits of single modifies after it: the small
        // ones merge among themselves.
        let imported = meta(9_600);
        let mut segments = vec![imported.clone()];
        segments.extend((0..8).map(|_| meta(5)));
        let candidates = policy.compute_merge_candidates(&segments);
        assert_eq!(candidates.len(), 1, "{candidates:?}");
        let merged = &candidates.first().expect("one candidate").0;
        assert_eq!(merged.len(), 8);
        assert!(!merged.contains(&imported.id()));
        // Eight of about the same size merge; the two halves of a bulk load do not.
        let peers: Vec<_> = (0..8).map(|k| meta(9_000 + k * 100)).collect();
        assert_eq!(policy.compute_merge_candidates(&peers).len(), 1);
        let halves = [meta(50_000), meta(50_000), meta(5), meta(5)];
        assert!(policy.compute_merge_candidates(&halves).is_empty());
    }

    fn put(store: &Store, schema: &Schema, cn: &str) -> EntryId {
        let id = store.next_id();
        let dn = format!("cn={cn},dc=x");
        let mut entry = Entry::new(dn.clone(), dn.to_lowercase());
        entry.add_values(schema, "cn", vec![cn.as_bytes().to_vec()]);
        store
            .apply(&[Write::Put {
                id,
                entry,
                previous: None,
            }])
            .unwrap();
        id
    }

    /// An entry written but not yet committed is read from the store by the searches its terms
    /// may match, and by no other once the indexer has noted its terms.
    #[test]
    fn a_pending_entry_is_read_only_by_the_searches_it_may_match() {
        use crate::directory::filter::{compile, FilterLimits};
        use crate::directory::filter_text::parse_filter;
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::builtin().unwrap());
        let spec = IndexSpec::new(&["cn".into()], &schema);
        let store = Arc::new(Store::open(&dir.path().join("store"), 8 << 20).unwrap());
        let (index, _) = Index::open(
            &dir.path().join("index"),
            Arc::clone(&store),
            Arc::clone(&schema),
            spec,
            &|_| {},
        )
        .unwrap();
        // Nothing is committed for a minute: both entries stay pending.
        index.set_commit_window(std::time::Duration::from_secs(60));
        let mut written = Vec::new();
        for cn in ["Alice Martin", "Bob Tremblay"] {
            let id = store.next_id();
            let dn = format!("cn={cn},dc=x");
            let mut entry = Entry::new(dn.clone(), dn.to_lowercase());
            entry.add_values(&schema, "cn", vec![cn.as_bytes().to_vec()]);
            index.mark_dirty(&[id]);
            let generation = store
                .apply(&[Write::Put {
                    id,
                    entry: entry.clone(),
                    previous: None,
                }])
                .unwrap();
            written.push(Written {
                generation,
                id,
                entry: Some(entry),
                fresh: true,
            });
        }
        let (alice, bob) = (written[0].id, written[1].id);
        index.changed(written).unwrap();
        let read_by = |text: &str| {
            let filter = compile(
                &parse_filter(text).unwrap(),
                &schema,
                FilterLimits::default(),
            )
            .unwrap();
            let mut ids = Vec::new();
            index
                .candidates(&schema, &filter, &mut |id| {
                    ids.push(id);
                    ControlFlow::Continue(())
                })
                .unwrap();
            ids.sort_unstable();
            ids
        };
        // Before the indexer notes the terms both are read; after, only the one that may match.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read_by("(cn=alice*)") != vec![alice] {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                read_by("(cn=alice*)")
            );
            assert!(
                read_by("(cn=alice*)").contains(&alice),
                "a pending match is never missed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(read_by("(cn=*tremblay)"), vec![bob]);
        assert_eq!(read_by("(|(cn=bob*)(cn=alice*))"), vec![alice, bob]);
        assert!(read_by("(cn=carol*)").is_empty());
        assert_eq!(index.dirty_count(), 2, "nothing committed yet");
        index.flush().unwrap();
        assert_eq!(index.dirty_count(), 0);
        assert_eq!(read_by("(cn=alice*)"), vec![alice], "now through the index");
        index.shutdown();
    }

    /// Writes made without the change log, by a bulk load that died before confirming its
    /// index, are not lost to the index: the next open rebuilds it and clears the marker.
    #[test]
    fn an_unfinished_unlogged_load_is_rebuilt_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::builtin().unwrap());
        let spec = IndexSpec::new(&["cn".into()], &schema);
        let index_path = dir.path().join("index");
        {
            let store = Arc::new(Store::open(&dir.path().join("store"), 8 << 20).unwrap());
            put(&store, &schema, "Logged");
            let (index, catch_up) = Index::open(
                &index_path,
                Arc::clone(&store),
                Arc::clone(&schema),
                spec.clone(),
                &|_| {},
            )
            .unwrap();
            assert!(catch_up.rebuilt);
            index.shutdown();
            store.begin_unlogged().unwrap();
            put(&store, &schema, "Unlogged");
            assert!(store.changes_since(0).unwrap().is_empty());
            store.flush().unwrap();
            // The process dies here: no index commit, no end_unlogged.
        }
        let store = Arc::new(Store::reopen_for_test(&dir.path().join("store"), 8 << 20));
        assert!(store.is_unlogged().unwrap());
        let (index, catch_up) = Index::open(
            &index_path,
            Arc::clone(&store),
            Arc::clone(&schema),
            spec,
            &|_| {},
        )
        .unwrap();
        assert!(catch_up.rebuilt);
        assert_eq!(catch_up.entries, 2);
        assert_eq!(index.doc_count(), 2);
        assert!(!store.is_unlogged().unwrap());
        // A normal write after that is logged again.
        let g = store.generation();
        put(&store, &schema, "Later");
        assert_eq!(store.changes_since(g).unwrap().len(), 1);
    }
}
