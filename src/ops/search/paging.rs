//! Simple Paged Results (RFC 2696): cookies bound to the connection and to the search they
//! came from; a scan cursor in constant memory when the index cannot narrow the filter.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use ldap3_proto::proto::LdapResultCode;

use super::request::{PagedRequest, ResponseControl, SearchRequest};
use super::{OpError, OpResult, RequestContext, SearchEnd, Sender, Stop};
use crate::directory::entry::EntryId;
use crate::dsa::reader::{ReadStop, Search};

/// Paged searches in progress on one connection, by cookie.
#[derive(Default)]
pub struct PagedSearches {
    states: HashMap<Vec<u8>, PagedState>,
}

/// Paged searches one connection may keep open at once.
const MAX_PAGED_PER_CONNECTION: usize = 16;

struct PagedState {
    /// Hash of the request and identity: a cookie only continues the search it came from.
    fingerprint: u64,
    cursor: Cursor,
    sent: usize,
}

enum Cursor {
    /// Scanning the store in id order after this id (constant memory).
    Scan { after: EntryId },
    /// Walking candidate ids from the index (or a sorted view).
    Ids { ids: Vec<EntryId>, pos: usize },
}

fn fingerprint(req: &SearchRequest, ctx: &RequestContext<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.base.to_ascii_lowercase().hash(&mut h);
    format!(
        "{:?}|{:?}|{:?}|{}",
        req.scope, req.filter, req.attrs, req.types_only
    )
    .hash(&mut h);
    ctx.grant.entry_id().hash(&mut h);
    h.finish()
}

/// One page of a paged search (`sorted`: the ids of a sorted list, in order).
pub(super) fn paged(
    sender: &mut Sender<'_, '_>,
    search: &mut Search<'_, '_>,
    req: &SearchRequest,
    ctx: &RequestContext<'_>,
    p: &PagedRequest,
    paging: &Mutex<PagedSearches>,
    sorted: Option<Vec<EntryId>>,
) -> OpResult<SearchEnd> {
    let fp = fingerprint(req, ctx);
    let mut state = if p.cookie.is_empty() {
        None
    } else {
        let mut map = paging
            .lock()
            .map_err(|_| super::super::internal("paging lock"))?;
        match map.states.remove(&p.cookie) {
            Some(s) if s.fingerprint == fp => Some(s),
            Some(_) => {
                return Err(OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    "the paged results cookie belongs to another search",
                ))
            }
            None => {
                return Err(OpError::new(
                    LdapResultCode::UnwillingToPerform,
                    "unknown or expired paged results cookie",
                ))
            }
        }
    };
    let last_page = || {
        vec![ResponseControl::Paged {
            size: 0,
            cookie: Vec::new(),
        }]
    };
    // A size of zero abandons the paged search (RFC 2696 §3).
    if p.size == 0 {
        return sender.finish(search, last_page());
    }
    let mut st = match state.take() {
        Some(s) => s,
        None => PagedState {
            fingerprint: fp,
            cursor: match sorted {
                Some(ids) => Cursor::Ids { ids, pos: 0 },
                None => match search.candidate_ids()? {
                    Some(ids) => Cursor::Ids { ids, pos: 0 },
                    None => Cursor::Scan { after: 0 },
                },
            },
            sent: 0,
        },
    };
    if sender.limit > 0 {
        sender.limit = sender.limit.saturating_sub(st.sent);
        if sender.limit == 0 {
            sender.stop = Some(Stop::SizeLimit);
            return sender.finish(search, last_page());
        }
    }
    sender.page = p.size;
    let exhausted = match &mut st.cursor {
        Cursor::Scan { after } => search
            .each_after(after, &mut |_, v| sender.take(v))
            .is_continue(),
        Cursor::Ids { ids, pos } => {
            let mut exhausted = true;
            while let Some(id) = ids.get(*pos).copied() {
                *pos += 1;
                if search.each_of([id], &mut |_, v| sender.take(v)).is_break() {
                    exhausted = false;
                    break;
                }
            }
            exhausted
        }
    };
    st.sent += sender.sent;
    let page_full = sender.stop == Some(Stop::PageFull);
    if page_full {
        sender.stop = None;
    }
    if exhausted || !page_full {
        return sender.finish(search, last_page());
    }
    // A page that ends on the last match is the last page: no cookie, and no round trip for
    // an empty page after it (a total that is a multiple of the page size).
    match more_after(search, &mut st.cursor) {
        Peek::More => {}
        Peek::NoMore => return sender.finish(search, last_page()),
        Peek::Cancelled => return Ok(SearchEnd::Silent),
        Peek::Failed(e) => return Err(super::super::internal(e)),
    }
    let mut cookie = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut cookie);
    {
        let mut map = paging
            .lock()
            .map_err(|_| super::super::internal("paging lock"))?;
        if map.states.len() >= MAX_PAGED_PER_CONNECTION {
            return Err(OpError::new(
                LdapResultCode::AdminLimitExceeded,
                format!("at most {MAX_PAGED_PER_CONNECTION} paged searches at once per connection"),
            ));
        }
        map.states.insert(cookie.to_vec(), st);
    }
    sender.finish(
        search,
        vec![ResponseControl::Paged {
            size: 0,
            cookie: cookie.to_vec(),
        }],
    )
}

/// What a look past a full page found.
enum Peek {
    /// Another match, or it could not tell within the search's limits (a cookie is given).
    More,
    NoMore,
    Cancelled,
    Failed(String),
}

/// Whether another match follows the page, without sending it: candidate ids that do not match
/// are passed over for good (the next page would pass over them too); a scan looks ahead from
/// a copy of its place. A time or work limit reached while looking is not the page's: the
/// answer is then "more", and the next page meets the limit itself.
fn more_after(search: &mut Search<'_, '_>, cursor: &mut Cursor) -> Peek {
    let found = match cursor {
        Cursor::Scan { after } => {
            let mut probe = *after;
            search
                .each_after(&mut probe, &mut |_, _| ControlFlow::Break(()))
                .is_break()
        }
        Cursor::Ids { ids, pos } => {
            let mut found = false;
            while let Some(id) = ids.get(*pos).copied() {
                if search
                    .each_of([id], &mut |_, _| ControlFlow::Break(()))
                    .is_break()
                {
                    found = true;
                    break;
                }
                *pos += 1;
            }
            found
        }
    };
    match search.take_stop() {
        None if found => Peek::More,
        None => Peek::NoMore,
        Some(ReadStop::Cancelled) => Peek::Cancelled,
        Some(ReadStop::Failed(e)) => Peek::Failed(e),
        Some(ReadStop::TimeUp | ReadStop::WorkLimit { .. }) => Peek::More,
    }
}
