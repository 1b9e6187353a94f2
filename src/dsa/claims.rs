//! Holders of unique values (`uid`, `mail`) by hash, for the passes that see every entry:
//! a bulk load's uniqueness check and the start-up survey.

use crate::directory::entry::EntryId;

/// Holders of unique values by hash: one hash and one id per value, against the value's key
/// and its holder's DN (at a million entries, two million values; the map of those was most
/// of an import's memory and of the start-up survey's). A hash names candidates only: the
/// caller checks a holder's stored entry, so a collision decides nothing; colliding values
/// keep every holder.
#[derive(Default)]
pub(super) struct Claims {
    /// The holder of each (attribute, key) hash; `extra` holds further holders of a hash.
    first: rustc_hash::FxHashMap<u64, EntryId>,
    extra: rustc_hash::FxHashMap<u64, Vec<EntryId>>,
    /// Keyed at random per load: which values collide cannot be chosen by an import file.
    state: std::collections::hash_map::RandomState,
}

impl Claims {
    fn hash(&self, attr: &str, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.state, (attr, key))
    }

    pub(super) fn claim(&mut self, attr: &str, key: &str, id: EntryId) {
        let h = self.hash(attr, key);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(slot) => {
                if *slot.get() != id {
                    let more = self.extra.entry(h).or_default();
                    if !more.contains(&id) {
                        more.push(id);
                    }
                }
            }
        }
    }

    pub(super) fn holders(&self, attr: &str, key: &str) -> Vec<EntryId> {
        let h = self.hash(attr, key);
        let mut ids: Vec<EntryId> = self.first.get(&h).copied().into_iter().collect();
        if let Some(more) = self.extra.get(&h) {
            ids.extend(more);
        }
        ids
    }

    /// Forgets the claims of entries a batch rewrote or removed (their new values, if any,
    /// are claimed again after).
    pub(super) fn forget(&mut self, rewritten: &std::collections::HashSet<EntryId>) {
        self.extra.retain(|_, ids| {
            ids.retain(|id| !rewritten.contains(id));
            !ids.is_empty()
        });
        let mut promoted = Vec::new();
        self.first.retain(|h, id| {
            if !rewritten.contains(id) {
                return true;
            }
            promoted.push(*h);
            false
        });
        for h in promoted {
            let next = self.extra.get_mut(&h).and_then(|ids| ids.pop());
            if let Some(id) = next {
                self.first.insert(h, id);
                if self.extra.get(&h).is_some_and(Vec::is_empty) {
                    self.extra.remove(&h);
                }
            }
        }
    }

    /// Every holder of a hash that has more than one, in id order.
    pub(super) fn sharing(&self) -> Vec<EntryId> {
        let mut ids: Vec<EntryId> = self
            .extra
            .iter()
            .flat_map(|(h, more)| self.first.get(h).into_iter().chain(more))
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::Claims;

    /// Several holders of one hash are all kept (a collision, or a value two entries of a
    /// load hold), and forgetting one leaves the others in place.
    #[test]
    fn bulk_claims_keep_every_holder_of_a_hash() {
        let mut claims = Claims::default();
        claims.claim("mail", "a@x.ca", 1);
        claims.claim("mail", "a@x.ca", 2);
        claims.claim("mail", "a@x.ca", 2);
        claims.claim("mail", "a@x.ca", 3);
        claims.claim("uid", "a@x.ca", 4);
        assert_eq!(claims.holders("mail", "a@x.ca"), [1, 2, 3]);
        assert_eq!(claims.holders("uid", "a@x.ca"), [4]);
        assert_eq!(claims.sharing(), [1, 2, 3]);
        claims.forget(&[1].into_iter().collect());
        let mut left = claims.holders("mail", "a@x.ca");
        left.sort_unstable();
        assert_eq!(left, [2, 3]);
        claims.forget(&[2, 3].into_iter().collect());
        assert!(claims.holders("mail", "a@x.ca").is_empty());
        assert!(claims.extra.is_empty());
        assert_eq!(claims.holders("uid", "a@x.ca"), [4]);
    }
}
