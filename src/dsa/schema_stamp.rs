//! When the schema in effect was put in place and when it last changed, for the subschema
//! subentry's `createTimestamp` and `modifyTimestamp` (schema browsers such as Directory
//! Studio compare them with their cached copy). The schema is built into the binary or read
//! from `schema_dir`, so the store remembers a fingerprint of its definitions and the times:
//! the modification time moves only when a start finds other definitions.

use sha2::{Digest, Sha256};

use crate::directory::schema::Schema;
use crate::store::Store;

const NOTE: &str = "schema-stamp";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    fingerprint: String,
    created: i64,
    modified: i64,
}

/// A digest of every definition the schema publishes, in order.
pub(super) fn fingerprint(schema: &Schema) -> String {
    let mut h = Sha256::new();
    let mut add = |d: &str| {
        h.update((d.len() as u64).to_be_bytes());
        h.update(d.as_bytes());
    };
    schema.syntax_definitions().for_each(&mut add);
    schema.matching_rule_definitions().for_each(&mut add);
    schema
        .attribute_types()
        .iter()
        .for_each(|a| add(&a.definition));
    schema
        .object_classes()
        .iter()
        .for_each(|c| add(&c.definition));
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The schema's (created, modified) times in seconds since 1970 for its `print`
/// ([`fingerprint`]), noted in the store when they are new (a store that cannot be written
/// gives `now` for a new schema, unnoted).
pub(super) fn stamp(store: &Store, print: &str, now: i64) -> (i64, i64) {
    let print = print.to_string();
    let known: Option<Stamp> = store
        .note(NOTE)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let stamp = match known {
        Some(s) if s.fingerprint == print => return (s.created, s.modified),
        Some(s) => Stamp {
            fingerprint: print,
            created: s.created,
            modified: now.max(s.created),
        },
        None => Stamp {
            fingerprint: print,
            created: now,
            modified: now,
        },
    };
    if let Ok(bytes) = serde_json::to_vec(&stamp) {
        if store.set_note(NOTE, &bytes).is_ok() {
            let _ = store.flush();
        }
    }
    (stamp.created, stamp.modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::schema::BUILTIN_FILES;

    fn schema(extra: &str) -> Schema {
        let mut files: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
            .collect();
        files.push(("90-local.schema".into(), extra.into()));
        Schema::from_files(&files).unwrap()
    }

    #[test]
    fn the_modification_time_moves_only_when_the_definitions_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let base = schema("");
        assert_eq!(stamp(&store, &fingerprint(&base), 1_000), (1_000, 1_000));
        // Another start with the same definitions keeps both times.
        assert_eq!(stamp(&store, &fingerprint(&base), 2_000), (1_000, 1_000));
        let more = schema(
            "attributetype ( 2.25.1.99 NAME 'localNote' EQUALITY caseIgnoreMatch \
             SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        );
        assert_eq!(stamp(&store, &fingerprint(&more), 3_000), (1_000, 3_000));
        assert_eq!(stamp(&store, &fingerprint(&more), 4_000), (1_000, 3_000));
        // Going back is a change too.
        assert_eq!(stamp(&store, &fingerprint(&base), 5_000), (1_000, 5_000));
    }
}
