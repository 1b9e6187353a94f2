//! The directory counted for operators: entries by kind (people, contacts, services, the
//! rest), people and contacts by whether mail to them is secure, tombstones, the store's size.
//! Counting reads every entry, so a census is kept with the store generation it was taken
//! at and taken again only when the directory has changed and the last one is older than
//! [`CENSUS_MAX_AGE`] (a scrape every few seconds on a busy directory reads it at most that
//! often).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::security::{classify_view, Security};
use super::{Dsa, DsaError};
use crate::directory::record::{self, EntryView};

/// How stale a census may be when the directory has changed since.
pub const CENSUS_MAX_AGE: Duration = Duration::from_secs(30);

/// What the directory holds, counted at one generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Census {
    /// Accounts of people (`onePagesAccountType` user).
    pub people: u64,
    /// External contacts.
    pub contacts: u64,
    /// Service accounts.
    pub services: u64,
    /// Everything else: the suffix, units, registered domains.
    pub other: u64,
    /// People whose mail is protected end to end.
    pub secure: u64,
    /// People and contacts whose mail is not (contacts, disabled accounts, unregistered
    /// domains).
    pub not_secure: u64,
    /// Deleted entries kept for restore.
    pub tombstones: u64,
    /// Bytes of the store on disk.
    pub store_bytes: u64,
    /// The store generation it was taken at.
    pub generation: u64,
}

enum Kind {
    Person,
    Contact,
    Service,
    Other,
}

/// What an entry is: a service account (`onePagesService`, or account type `service`), an
/// external contact (account type `external`), a person (any other `person`), or the rest.
fn kind_of(view: &EntryView<'_>) -> Kind {
    let mut person = false;
    let mut service = false;
    let mut account_type: Option<&[u8]> = None;
    for a in &view.attrs {
        if a.is_named("objectClass") {
            for v in a.values() {
                person |= v.eq_ignore_ascii_case(b"person")
                    || v.eq_ignore_ascii_case(b"inetOrgPerson")
                    || v.eq_ignore_ascii_case(b"organizationalPerson");
                service |= v.eq_ignore_ascii_case(b"onePagesService");
            }
        } else if a.is_named("onePagesAccountType") {
            account_type = a.values().next();
        }
    }
    let is = |t: &[u8]| account_type.is_some_and(|v| v.eq_ignore_ascii_case(t));
    if service || is(b"service") {
        Kind::Service
    } else if is(b"external") {
        Kind::Contact
    } else if person {
        Kind::Person
    } else {
        Kind::Other
    }
}

pub(super) type Kept = Option<(Instant, Arc<Census>)>;

impl Dsa {
    /// The census, taken again if the directory moved and the kept one is older than
    /// [`CENSUS_MAX_AGE`]. Reads every entry when it does: call it off the async threads.
    pub fn census(&self) -> Result<Arc<Census>, DsaError> {
        let generation = self.store.generation();
        if let Ok(kept) = self.census.lock() {
            if let Some((at, c)) = kept.as_ref() {
                if c.generation == generation || at.elapsed() < CENSUS_MAX_AGE {
                    return Ok(Arc::clone(c));
                }
            }
        }
        let census = Arc::new(self.take_census()?);
        if let Ok(mut kept) = self.census.lock() {
            *kept = Some((Instant::now(), Arc::clone(&census)));
        }
        Ok(census)
    }

    /// Counts the directory now.
    pub fn take_census(&self) -> Result<Census, DsaError> {
        let generation = self.store.generation();
        let domains = self.reader().domains();
        let mut c = Census {
            generation,
            ..Census::default()
        };
        for item in self.store.scan_records_from(0) {
            let (_, rec) = item?;
            let view =
                record::view(&rec).map_err(|e| DsaError::Internal(format!("census: {e}")))?;
            match kind_of(&view) {
                Kind::Person => c.people += 1,
                Kind::Contact => c.contacts += 1,
                Kind::Service => c.services += 1,
                Kind::Other => c.other += 1,
            }
            match classify_view(&view, &domains) {
                Some(Security::Secure) => c.secure += 1,
                Some(Security::NotAUser) | None => {}
                Some(_) => c.not_secure += 1,
            }
        }
        c.tombstones = self.store.tombstone_count() as u64;
        c.store_bytes = self.store.size_on_disk();
        Ok(c)
    }
}
