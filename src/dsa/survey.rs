//! A survey of the stored entries against today's rules: values the checks now refuse,
//! unique values (`uid`, `mail`) that more than one entry holds, and names that lead to no
//! entry of theirs (left by an earlier build's id race). Data written before a rule
//! existed is reported, never changed: the server starts and serves it, logs what it found,
//! and `onepages check --values` / `--duplicates` list it for an administrator to fix.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::claims::Claims;
use super::plan::{unique_key, UNIQUE};
use super::{Dsa, DsaError};
use crate::directory::dn::Dn;
use crate::directory::validate::check;

/// One unique value held by several entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub attr: &'static str,
    /// The value as the first holder stores it.
    pub value: String,
    /// The holders' DNs, in store order.
    pub holders: Vec<String>,
}

/// What the survey found.
#[derive(Debug, Default)]
pub struct Survey {
    pub entries: usize,
    /// Entries with a value the checks refuse: DN and what is wrong.
    pub invalid: Vec<(String, String)>,
    pub duplicates: Vec<Duplicate>,
    /// Names that lead to no entry of that name (`Store::misnamed`): normalised DN and id.
    pub misnamed: Vec<(String, crate::directory::entry::EntryId)>,
}

impl Dsa {
    /// Reads every entry once and checks it as a write would be checked now; ends early
    /// (with what it has seen) when `stop` is set.
    ///
    /// Unique values are found in two steps so that the survey costs little memory beside the
    /// directory (it runs at every start): the first pass notes each value's holder by hash
    /// ([`Claims`]); the entries holding a hash with several holders, normally none, are read
    /// again and compared exactly, so a collision of hashes reports nothing.
    pub fn survey(&self, stop: &AtomicBool) -> Result<Survey, DsaError> {
        let reader = self.reader();
        let mut survey = Survey::default();
        let mut claims = Claims::default();
        for item in reader.all_entries() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (id, entry) = item?;
            survey.entries += 1;
            match Dn::parse(&entry.dn) {
                Ok(dn) => {
                    let mut copy = entry.clone();
                    if let Err(e) = check(&self.schema, &mut copy, &dn) {
                        survey.invalid.push((entry.dn.clone(), e.to_string()));
                    }
                }
                Err(e) => survey.invalid.push((entry.dn.clone(), e.to_string())),
            }
            unique_keys(&entry, |attr, key, _| claims.claim(attr, key, id));
        }
        survey.misnamed = self.store.misnamed(stop)?;
        // The exact comparison, over the entries that share a hash, in store (id) order.
        let mut holders: BTreeMap<(&'static str, String), (String, Vec<String>)> = BTreeMap::new();
        for id in claims.sharing() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(entry) = reader.entry_by_id(id)? else {
                continue;
            };
            unique_keys(&entry, |attr, key, value| {
                if claims.holders(attr, key).len() < 2 {
                    return;
                }
                let slot = holders
                    .entry((attr, key.to_string()))
                    .or_insert_with(|| (String::from_utf8_lossy(value).into_owned(), Vec::new()));
                if !slot.1.contains(&entry.dn) {
                    slot.1.push(entry.dn.clone());
                }
            });
        }
        survey.duplicates = holders
            .into_iter()
            .filter(|(_, (_, dns))| dns.len() > 1)
            .map(|((attr, _), (value, holders))| Duplicate {
                attr,
                value,
                holders,
            })
            .collect();
        Ok(survey)
    }
}

/// Calls `each` with the attribute, the key and the value of every non-empty unique key of
/// `entry`.
fn unique_keys(
    entry: &crate::directory::entry::Entry,
    mut each: impl FnMut(&'static str, &str, &[u8]),
) {
    for attr in UNIQUE {
        for v in entry.values(attr) {
            let key = unique_key(v);
            if !key.is_empty() {
                each(attr, &key, v);
            }
        }
    }
}
