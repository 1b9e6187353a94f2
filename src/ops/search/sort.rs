//! Server-Side Sort (RFC 2891) and Virtual List View (draft-ietf-ldapext-ldapv3-vlv-09).
//!
//! A sorted search collects the matches' sort keys, sorts them in the order French and English
//! readers expect, and keeps the list for the store generation it was built at (Outlook's
//! browsing asks for window after window of the same list). Sort keys on secret attributes are
//! refused like unknown ones.

use std::sync::{Arc, Mutex};

use ldap3_proto::proto::{LdapResult, LdapResultCode};

use super::paging::{self, PagedSearches};
use super::request::{ResponseControl, SearchRequest, SortRequest, VlvRequest, VlvTarget};
use super::{OpError, OpResult, RequestContext, SearchEnd, Sender};
use crate::directory::entry::{AttrSource, EntryId};
use crate::directory::schema::Schema;
use crate::directory::secret::Sight;
use crate::dsa::reader::Search;
use crate::dsa::{Reader, SortValue, SortedView};

const VLV_SORT_CONTROL_MISSING: u8 = 60;
const VLV_OFFSET_RANGE_ERROR: u8 = 61;
const VLV_UNWILLING: u8 = 53;

/// A resolved sort key: canonical attribute names (with subtypes) and direction.
#[derive(Debug, Clone)]
struct ResolvedKey {
    names: Vec<String>,
    reverse: bool,
    numeric: bool,
}

/// The keys of a sort request, or the sort result code and attribute that refuse it.
fn resolve_sort(
    schema: &Schema,
    sort: &SortRequest,
    sight: Sight,
) -> Result<Vec<ResolvedKey>, (u8, String)> {
    let mut out = Vec::new();
    for k in &sort.keys {
        let Some(id) = schema.attr_id(&k.attr) else {
            return Err((16, k.attr.clone()));
        };
        if sight.hides(&k.attr) {
            return Err((50, k.attr.clone()));
        }
        if let Some(rule) = &k.ordering_rule {
            if schema.matching_rule(rule).is_none() {
                return Err((18, k.attr.clone()));
            }
        }
        let names = schema
            .with_subtypes(id)
            .iter()
            .filter_map(|i| schema.attr_by_id(*i))
            .map(|a| a.name().to_string())
            .collect();
        let numeric = schema
            .attr(&k.attr)
            .and_then(|a| a.equality)
            .is_some_and(|r| r == crate::directory::matching::Rule::Integer);
        out.push(ResolvedKey {
            names,
            reverse: k.reverse,
            numeric,
        });
    }
    Ok(out)
}

/// The collation key of a value as French and English readers expect a list: accents beside
/// their base letter and case ignored first, punctuation (hyphens, apostrophes, spaces) ignored
/// at the first level, then accents, then case, then the value itself as the last tie-break.
pub fn collation_key(value: &[u8], numeric: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(value);
    if numeric {
        if let Ok(n) = text.trim().parse::<i64>() {
            // Order-preserving bytes for signed integers: flip the sign bit.
            let biased = (n as u64) ^ (1 << 63);
            return biased.to_be_bytes().to_vec();
        }
    }
    let folded = crate::directory::matching::fold(&text);
    let lower = text.to_lowercase();
    // Allocated at its size: a kept sorted list holds one key per entry (growing it by
    // pushes left about half of each allocation unused).
    let primary = folded.chars().filter(|c| c.is_alphanumeric());
    let primary_len: usize = primary.clone().map(char::len_utf8).sum();
    let mut key = Vec::with_capacity(primary_len + folded.len() + lower.len() + text.len() + 3);
    let mut utf8 = [0u8; 4];
    for c in primary {
        key.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    key.push(0);
    key.extend_from_slice(folded.as_bytes());
    key.push(0);
    key.extend_from_slice(lower.as_bytes());
    key.push(0);
    key.extend_from_slice(text.as_bytes());
    key
}

fn entry_sort_key<E: AttrSource + ?Sized>(entry: &E, keys: &[ResolvedKey]) -> SortValue {
    keys.iter()
        .map(|k| {
            // RFC 2891: a multi-valued attribute sorts by its least value.
            let mut best: Option<Vec<u8>> = None;
            for n in &k.names {
                for v in entry.values_of(n) {
                    let ck = collation_key(v, k.numeric);
                    let better = match &best {
                        None => true,
                        Some(b) => (ck < *b) != k.reverse && ck != *b,
                    };
                    if better {
                        best = Some(ck);
                    }
                }
            }
            best
        })
        .collect()
}

fn compare_keys(a: &SortValue, b: &SortValue, keys: &[ResolvedKey]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (
            a.get(i).and_then(Option::as_ref),
            b.get(i).and_then(Option::as_ref),
        );
        // Entries without the attribute come last, whatever the direction.
        let ord = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                if k.reverse {
                    y.cmp(x)
                } else {
                    x.cmp(y)
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Changed entries up to which a list is always brought forward rather than rebuilt; a long
/// list takes up to an eighth of its length (bringing forward is a pass over the list and a
/// read of the changed entries, building it a read and sort of every match).
const MOVE_LIMIT: usize = 64;

/// The sorted list of matches: from the cache when the directory has not changed since, or
/// brought forward from an older list by moving the entries that changed (a write moves one
/// entry; nothing rebuilds a million-entry list after it; after a restart, the change log on
/// disk names what changed since the list was kept); built otherwise. `None` when the read
/// stopped first (time limit, abandon, fault).
fn sorted_view(
    reader: &Reader<'_>,
    search: &mut Search<'_, '_>,
    req: &SearchRequest,
    base_ndn: &str,
    keys: &[ResolvedKey],
) -> OpResult<Option<Arc<SortedView>>> {
    // A list whose filter or keys read a computed attribute can change when no entry of it
    // does (a domain registered, a child added): it is reused only exact, keyed with the
    // domains epoch, and never kept across a restart.
    let computed = search.reads_other_entries()
        || keys.iter().any(|k| {
            k.names
                .iter()
                .any(|n| crate::directory::filter::is_virtual(n))
        });
    let epoch = if computed {
        reader.domains_epoch().to_string()
    } else {
        "-".to_string()
    };
    let cache_key = format!(
        "{base_ndn}|{:?}|{}|{:?}|{:?}|{epoch}",
        req.scope,
        search.hides_disabled(),
        req.filter,
        keys.iter()
            .map(|k| (&k.names, k.reverse))
            .collect::<Vec<_>>(),
    );
    let generation = reader.generation();
    if let Some(v) = reader.cached_view(&cache_key, generation) {
        return Ok(Some(v));
    }
    if let Some((built, old)) = reader.take_view(&cache_key).filter(|_| !computed) {
        let limit = MOVE_LIMIT.max(old.len() / 8);
        match reader.changed_between(built, generation) {
            Some(changed) if built <= generation && changed.len() <= limit => {
                let Some(view) = bring_forward(search, old, &changed, keys) else {
                    return Ok(None);
                };
                let view = Arc::new(view);
                reader.keep_view(cache_key, generation, Arc::clone(&view), true);
                return Ok(Some(view));
            }
            // Too many changes, or forgotten: a newer list is built below.
            _ => {}
        }
    }
    let mut items: Vec<(SortValue, EntryId)> = Vec::new();
    match search.candidate_ids()? {
        Some(ids) => {
            items.reserve_exact(ids.len());
            let _ = search.each_of(ids, &mut |id, view| {
                items.push((entry_sort_key(view, keys), id));
                std::ops::ControlFlow::Continue(())
            });
        }
        None => {
            let mut after = 0;
            let _ = search.each_after(&mut after, &mut |id, view| {
                items.push((entry_sort_key(view, keys), id));
                std::ops::ControlFlow::Continue(())
            });
        }
    }
    if search.stopped() {
        return Ok(None);
    }
    // The list is kept: no room left for growth it will not have.
    items.shrink_to_fit();
    items.sort_by(|a, b| compare_keys(&a.0, &b.0, keys).then(a.1.cmp(&b.1)));
    let view = Arc::new(items);
    reader.keep_view(cache_key, generation, Arc::clone(&view), !computed);
    Ok(Some(view))
}

/// A list moved forward: each changed entry leaves its old place and, if it still matches,
/// goes to its new one (found by binary search). The list is changed in place when nobody
/// else holds it. `None` when the read stopped.
fn bring_forward(
    search: &mut Search<'_, '_>,
    old: Arc<SortedView>,
    changed: &[EntryId],
    keys: &[ResolvedKey],
) -> Option<SortedView> {
    let mut fresh: Vec<(SortValue, EntryId)> = Vec::with_capacity(changed.len());
    let _ = search.each_of(changed.iter().copied(), &mut |id, view| {
        fresh.push((entry_sort_key(view, keys), id));
        std::ops::ControlFlow::Continue(())
    });
    if search.stopped() {
        return None;
    }
    let mut view = Arc::try_unwrap(old).unwrap_or_else(|shared| (*shared).clone());
    // `changed` is sorted: one pass takes every changed entry out.
    view.retain(|(_, id)| changed.binary_search(id).is_err());
    let order = |a: &(SortValue, EntryId), b: &(SortValue, EntryId)| {
        compare_keys(&a.0, &b.0, keys).then(a.1.cmp(&b.1))
    };
    if fresh.len() <= 4 {
        // Room for the inserts and a little more, not the doubling a full list would get.
        if view.capacity() < view.len() + fresh.len() {
            view.reserve_exact(fresh.len() + view.len() / 64);
        }
        for item in fresh {
            let at = view.partition_point(|probe| order(probe, &item).is_lt());
            view.insert(at, item);
        }
        return Some(view);
    }
    // More: one merge instead of an insert (a move of the list's tail) each.
    fresh.sort_by(order);
    let mut merged = Vec::with_capacity(view.len() + fresh.len());
    let mut fresh = fresh.into_iter().peekable();
    for item in view {
        while let Some(f) = fresh.next_if(|f| order(f, &item).is_lt()) {
            merged.push(f);
        }
        merged.push(item);
    }
    merged.extend(fresh);
    Some(merged)
}

fn vlv_response(
    target_position: usize,
    content_count: usize,
    result: u8,
    reader: &Reader<'_>,
) -> ResponseControl {
    ResponseControl::Vlv {
        target_position,
        content_count,
        result,
        context: Some(reader.generation().to_be_bytes().to_vec()),
    }
}

/// A VLV request without a sort control is an error (sortControlMissing).
pub(super) fn vlv_without_sort(reader: &Reader<'_>) -> SearchEnd {
    let r = LdapResult {
        code: LdapResultCode::VirtualListViewError,
        matcheddn: String::new(),
        message: "virtual list view needs a server-side sort control".into(),
        referral: Vec::new(),
    };
    SearchEnd::Done(
        r,
        vec![vlv_response(0, 0, VLV_SORT_CONTROL_MISSING, reader)],
    )
}

pub(super) fn with_control(end: SearchEnd, c: ResponseControl) -> SearchEnd {
    match end {
        SearchEnd::Done(r, mut ctrls) => {
            ctrls.push(c);
            SearchEnd::Done(r, ctrls)
        }
        SearchEnd::Silent => SearchEnd::Silent,
    }
}

/// A search with a sort control: sorted entries, a window of them (VLV), or pages of them.
pub(super) fn sorted(
    sender: &mut Sender<'_, '_>,
    search: &mut Search<'_, '_>,
    req: &SearchRequest,
    ctx: &RequestContext<'_>,
    sort: &SortRequest,
    paging_state: &Mutex<PagedSearches>,
    base_ndn: &str,
) -> OpResult<SearchEnd> {
    let reader = sender.reader;
    let controls = &req.controls;
    let keys = match resolve_sort(sender.schema, sort, sender.sel.sight) {
        Ok(k) => k,
        Err((code, attr)) => {
            let response = ResponseControl::Sort {
                result: code,
                attr: Some(attr.clone()),
            };
            if sort.critical || controls.vlv.is_some() {
                let mut r = OpError::new(
                    LdapResultCode::UnavailableCriticalExtension,
                    format!("cannot sort on '{attr}'"),
                )
                .into_result();
                let mut ctrls = vec![response];
                if controls.vlv.is_some() {
                    r.code = LdapResultCode::VirtualListViewError;
                    ctrls.push(vlv_response(0, 0, VLV_UNWILLING, reader));
                }
                return Ok(SearchEnd::Done(r, ctrls));
            }
            // Non-critical: RFC 2891 §1.2 says return the entries unsorted.
            sender.stream(search);
            let end = sender.finish(search, Vec::new())?;
            return Ok(with_control(end, response));
        }
    };
    let Some(view) = sorted_view(reader, search, req, base_ndn, &keys)? else {
        return sender.finish(search, Vec::new());
    };
    let sort_ok = ResponseControl::Sort {
        result: 0,
        attr: None,
    };
    if let Some(vlv) = &controls.vlv {
        return vlv_window(sender, search, &view, vlv, &keys, sort_ok);
    }
    if let Some(p) = &controls.paged {
        let ids: Vec<EntryId> = view.iter().map(|(_, id)| *id).collect();
        let end = paging::paged(sender, search, req, ctx, p, paging_state, Some(ids))?;
        return Ok(with_control(end, sort_ok));
    }
    let _ = search.each_of(view.iter().map(|(_, id)| *id), &mut |_, v| sender.take(v));
    sender.finish(search, vec![sort_ok])
}

fn vlv_window(
    sender: &mut Sender<'_, '_>,
    search: &mut Search<'_, '_>,
    view: &SortedView,
    vlv: &VlvRequest,
    keys: &[ResolvedKey],
    sort_ok: ResponseControl,
) -> OpResult<SearchEnd> {
    let reader = sender.reader;
    let n = view.len();
    let target = match &vlv.target {
        VlvTarget::Offset {
            offset,
            content_count,
        } => {
            let offset = usize::try_from(*offset).unwrap_or(0);
            let cc = usize::try_from(*content_count).unwrap_or(0);
            // Scale the client's position to the real list (draft §5).
            let pos = if cc == 0 || cc == n || n == 0 {
                offset
            } else {
                ((offset as f64) * (n as f64) / (cc as f64)).round() as usize
            };
            if n > 0 && (pos == 0 || pos > n) {
                let r = LdapResult {
                    code: LdapResultCode::VirtualListViewError,
                    matcheddn: String::new(),
                    message: format!("offset {offset} is outside the list of {n} entries"),
                    referral: Vec::new(),
                };
                return Ok(SearchEnd::Done(
                    r,
                    vec![sort_ok, vlv_response(0, n, VLV_OFFSET_RANGE_ERROR, reader)],
                ));
            }
            pos.max(1) - 1
        }
        VlvTarget::GreaterOrEqual(value) => {
            let first = keys.first();
            let probe = collation_key(value, first.is_some_and(|k| k.numeric));
            let reverse = first.is_some_and(|k| k.reverse);
            view.iter()
                .position(|(k, _)| match k.first().and_then(Option::as_ref) {
                    Some(v) => {
                        if reverse {
                            *v <= probe
                        } else {
                            *v >= probe
                        }
                    }
                    None => true,
                })
                .unwrap_or(n)
        }
    };
    let start = target.saturating_sub(vlv.before);
    let end = target.saturating_add(vlv.after).min(n.saturating_sub(1));
    // The window is what the client asked for; the server's size cap still bounds it.
    sender.limit = 0;
    let cap = match sender.server_cap {
        0 => usize::MAX,
        c => c,
    };
    if n > 0 {
        let ids = view
            .iter()
            .take(end + 1)
            .skip(start)
            .take(cap)
            .map(|(_, id)| *id);
        let _ = search.each_of(ids, &mut |_, v| sender.take(v));
    }
    let position = if n == 0 { 0 } else { target + 1 };
    sender.finish(search, vec![sort_ok, vlv_response(position, n, 0, reader)])
}
