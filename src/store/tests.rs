//! The store's unit tests.

use super::*;

fn entry(dn: &str) -> Entry {
    Entry::new(dn.into(), dn.to_lowercase())
}

/// Stores written before look-ups by value moved to the index kept `k` keys; opening one
/// removes them and keeps everything else.
#[test]
fn opening_removes_old_equality_keys() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::reopen_for_test(dir.path(), 8 << 20);
        let id = store.next_id();
        store
            .apply(&[Write::Put {
                id,
                entry: entry("cn=A,dc=x"),
                previous: None,
            }])
            .unwrap();
        for n in 0..25_000u32 {
            let mut k = b"kuid\0a".to_vec();
            k.extend_from_slice(&n.to_be_bytes());
            store.tree.insert(k, &[]).unwrap();
        }
        store.flush().unwrap();
        id
    };
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    assert!(store.tree.scan_prefix(b"k").next().is_none());
    assert_eq!(store.id_of("cn=a,dc=x").unwrap(), Some(id));
    assert_eq!(store.get(id).unwrap().unwrap().dn, "cn=A,dc=x");
}

#[test]
fn put_get_rename_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let id = store.next_id();
    let g1 = store
        .apply(&[Write::Put {
            id,
            entry: entry("cn=A,dc=x"),
            previous: None,
        }])
        .unwrap();
    assert_eq!(store.id_of("cn=a,dc=x").unwrap(), Some(id));
    assert_eq!(store.children("dc=x").unwrap(), vec![id]);
    store
        .apply(&[Write::Put {
            id,
            entry: entry("cn=B,dc=y"),
            previous: Some(Previous {
                ndn: "cn=a,dc=x".into(),
            }),
        }])
        .unwrap();
    assert_eq!(store.id_of("cn=a,dc=x").unwrap(), None);
    assert!(store.children("dc=x").unwrap().is_empty());
    assert_eq!(store.get(id).unwrap().unwrap().dn, "cn=B,dc=y");
    let changes = store.changes_since(g1).unwrap();
    assert_eq!(changes.len(), 1);
    store
        .apply(&[Write::Delete {
            id,
            previous: Previous {
                ndn: "cn=b,dc=y".into(),
            },
            keep: Some(Burial {
                at: 1_800_000_000,
                by: "cn=admin".into(),
            }),
        }])
        .unwrap();
    assert!(store.get(id).unwrap().is_none());
    assert!(store.is_empty());
    // The entry as it was is kept as a tombstone, in the same batch; forgetting it is a
    // write of its own.
    let tombs = store.tombstones().unwrap();
    assert_eq!(tombs.len(), 1);
    assert_eq!((tombs[0].id, tombs[0].entry.dn.as_str()), (id, "cn=B,dc=y"));
    assert_eq!(tombs[0].burial.by, "cn=admin");
    store.apply(&[Write::Forget { id }]).unwrap();
    assert!(store.tombstone(id).unwrap().is_none());
    store.trim_log(store.generation()).unwrap();
    assert!(store.changes_since(0).unwrap().is_empty());
}

fn put(store: &Store, dn: &str) -> EntryId {
    let id = store.next_id();
    store
        .apply(&[Write::Put {
            id,
            entry: entry(dn),
            previous: None,
        }])
        .unwrap();
    id
}

fn scanned(store: &Store) -> Vec<(EntryId, String)> {
    store
        .scan_records_from(0)
        .map(|r| {
            let (id, rec) = r.unwrap();
            (id, codec::decode(&rec).unwrap().dn)
        })
        .collect()
}

/// A store written with version 1 records reads them, and holds them as version 2.
#[test]
fn records_of_version_1_are_read_and_held_in_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let mut old = entry("cn=A,dc=x");
    old.attrs.push(crate::directory::entry::Attribute {
        name: "objectClass".into(),
        values: vec![b"top".to_vec(), b"person".to_vec()],
    });
    let id = put(&store, "cn=A,dc=x");
    let mut key = vec![b'e'];
    key.extend_from_slice(&id.to_be_bytes());
    store
        .tree
        .insert(key, codec::encode_version_1(&old))
        .unwrap();
    assert_eq!(store.get(id).unwrap().unwrap(), old);
    store.hold_entries().unwrap();
    let Some(Record::Held(held)) = store.record(id).unwrap() else {
        panic!("not held");
    };
    assert_eq!(held.first(), Some(&2));
    assert_eq!(codec::view(&held).unwrap().to_entry(), old);
}

/// What the race wrote: B under A's id (`a`), as if new, A's name still leading there; and
/// a name whose record is gone (id 999).
fn race_left(store: &Store, a: EntryId) {
    store
        .apply(&[Write::Put {
            id: a,
            entry: entry("cn=B,dc=x"),
            previous: None,
        }])
        .unwrap();
    store
        .tree
        .insert(b"dcn=ghost,dc=x", &999u64.to_be_bytes())
        .unwrap();
}

/// The names an id taken twice left behind are found, held or not: a name whose record
/// carries another DN, and one whose record is gone.
#[test]
fn names_that_lead_to_no_entry_of_theirs_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let stop = AtomicBool::new(false);
    let a = put(&store, "cn=A,dc=x");
    put(&store, "cn=C,dc=x");
    assert_eq!(store.misnamed(&stop).unwrap(), Vec::new());
    race_left(&store, a);
    let expected = vec![
        ("cn=a,dc=x".to_string(), a),
        ("cn=ghost,dc=x".to_string(), 999),
    ];
    assert_eq!(store.misnamed(&stop).unwrap(), expected);
    store.hold_entries().unwrap();
    assert_eq!(store.misnamed(&stop).unwrap(), expected);
}

/// The repair removes exactly those names, and the child links whose entry is gone or lives
/// under another parent; B (now holding A's old id) and C keep theirs, A can be added again.
#[test]
fn the_repair_removes_only_names_and_links_of_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let a = put(&store, "cn=A,dc=x");
    let c = put(&store, "cn=C,dc=x");
    race_left(&store, a);
    store.tree.insert(child_key("dc=x", 998), &[]).unwrap();
    store.tree.insert(child_key("dc=y", c), &[]).unwrap();
    store.hold_entries().unwrap();
    assert_eq!(
        store.stray_children().unwrap(),
        vec![("dc=x".to_string(), 998), ("dc=y".to_string(), c)]
    );
    let generation = store.generation();
    let repaired = store.repair_names().unwrap();
    assert_eq!(
        repaired.names,
        vec![
            ("cn=a,dc=x".to_string(), a),
            ("cn=ghost,dc=x".to_string(), 999)
        ]
    );
    assert_eq!(repaired.children.len(), 2);
    assert_eq!(store.generation(), generation, "no entry changed");
    let stop = AtomicBool::new(false);
    assert_eq!(store.misnamed(&stop).unwrap(), Vec::new());
    assert_eq!(store.stray_children().unwrap(), Vec::new());
    assert_eq!(store.id_of("cn=a,dc=x").unwrap(), None);
    assert_eq!(store.id_of("cn=b,dc=x").unwrap(), Some(a));
    assert_eq!(store.id_of("cn=c,dc=x").unwrap(), Some(c));
    assert_eq!(store.children("dc=x").unwrap(), vec![a, c]);
    assert!(!store.has_children("dc=y").unwrap());
    let again = put(&store, "cn=A,dc=x");
    assert_ne!(again, a);
    assert_eq!(store.misnamed(&stop).unwrap(), Vec::new());
    assert!(store.repair_names().unwrap().is_empty(), "nothing is left");
}

#[test]
fn held_entries_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let a = put(&store, "cn=A,dc=x");
    let b = put(&store, "cn=B,dc=x");
    assert_eq!(store.hold_entries().unwrap(), 2);
    assert!(matches!(store.record(a).unwrap(), Some(Record::Held(_))));
    // Writes after holding began: a new entry, a replacement, a deletion.
    let c = put(&store, "cn=C,dc=x");
    store
        .apply(&[Write::Put {
            id: a,
            entry: entry("cn=A2,dc=x"),
            previous: Some(Previous {
                ndn: "cn=a,dc=x".into(),
            }),
        }])
        .unwrap();
    store
        .apply(&[Write::Delete {
            id: b,
            previous: Previous {
                ndn: "cn=b,dc=x".into(),
            },
            keep: None,
        }])
        .unwrap();
    assert_eq!(store.get(a).unwrap().unwrap().dn, "cn=A2,dc=x");
    assert!(store.get(b).unwrap().is_none());
    // Read together, in the order asked, held or not: what one at a time reads.
    let batch_dns = |store: &Store, ids: &[EntryId]| {
        let mut out = vec![(99, None)];
        store.records_into(ids, &mut out).unwrap();
        out.into_iter()
            .skip(1)
            .map(|(id, r)| (id, r.map(|r| codec::view(&r).unwrap().dn.to_string())))
            .collect::<Vec<_>>()
    };
    let ids = [c, b, a, 1 << 40];
    let expect = vec![
        (c, Some("cn=C,dc=x".to_string())),
        (b, None),
        (a, Some("cn=A2,dc=x".to_string())),
        (1 << 40, None),
    ];
    assert_eq!(batch_dns(&store, &ids), expect);
    assert_eq!(store.get(c).unwrap().unwrap().dn, "cn=C,dc=x");
    let held = scanned(&store);
    assert_eq!(
        held,
        vec![(a, "cn=A2,dc=x".into()), (c, "cn=C,dc=x".into())]
    );
    // The held copy says exactly what sled says.
    let dir2 = dir.path().to_path_buf();
    drop(store);
    let reopened = Store::reopen_for_test(&dir2, 8 << 20);
    assert_eq!(scanned(&reopened), held);
    assert!(!reopened.holding());
    assert_eq!(batch_dns(&reopened, &ids), expect);
    // Scans resume after an id, in chunks, across many entries.
    reopened.hold_entries().unwrap();
    let many: Vec<EntryId> = (0..600)
        .map(|i| put(&reopened, &format!("cn={i},dc=x")))
        .collect();
    let after: Vec<EntryId> = reopened
        .scan_records_from(c)
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(after, many);
}

/// Issue 12: import, serve, one add, restart — ids stay dense, so every entry is held in
/// the array again (sled's own generator jumped a million ids ahead at every restart, and
/// the held copy then gave up: "entry ids too sparse to hold in memory").
#[test]
fn ids_stay_dense_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..4 {
        let store = Store::reopen_for_test(dir.path(), 8 << 20);
        assert_eq!(store.hold_entries().unwrap(), all.len());
        for i in 0..3 {
            all.push(put(&store, &format!("cn=r{round}-{i},dc=x")));
        }
        store.flush().unwrap();
    }
    let expected: Vec<EntryId> = (1..=12).collect();
    assert_eq!(all, expected);
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    assert_eq!(store.next_id(), 13);
    assert_eq!(store.hold_entries().unwrap(), 12);
    let held = store.held.read().unwrap();
    assert!(held.sparse.is_empty());
    assert_eq!(held.dense.len(), 13);
}

/// A store written before ids were dense (ids far apart) is still held whole: the far
/// ids go to the side map, and reads, batches and scans see every entry in id order.
#[test]
fn far_apart_ids_are_held_in_a_side_map() {
    let dir = tempfile::tempdir().unwrap();
    let far: [EntryId; 4] = [1, 2, 3_000_001, 7_000_002];
    {
        let store = Store::reopen_for_test(dir.path(), 8 << 20);
        for (n, id) in far.iter().enumerate() {
            store
                .apply(&[Write::Put {
                    id: *id,
                    entry: entry(&format!("cn=f{n},dc=x")),
                    previous: None,
                }])
                .unwrap();
        }
        store.flush().unwrap();
    }
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    assert_eq!(store.next_id(), 7_000_003);
    assert_eq!(store.hold_entries().unwrap(), 4);
    assert!(matches!(
        store.record(3_000_001).unwrap(),
        Some(Record::Held(_))
    ));
    assert!(store.record(3_000_002).unwrap().is_none());
    let scanned_ids: Vec<EntryId> = scanned(&store).into_iter().map(|(id, _)| id).collect();
    assert_eq!(scanned_ids, far.to_vec());
    let after: Vec<EntryId> = store.scan_records_from(2).map(|r| r.unwrap().0).collect();
    assert_eq!(after, vec![3_000_001, 7_000_002]);
    let mut out = Vec::new();
    store.records_into(&[7_000_002, 5, 1], &mut out).unwrap();
    let found: Vec<bool> = out.iter().map(|(_, r)| r.is_some()).collect();
    assert_eq!(found, vec![true, false, true]);
    // New entries continue densely after the highest id, and deletes leave the map.
    let next = put(&store, "cn=new,dc=x");
    assert_eq!(next, 7_000_003);
    store
        .apply(&[Write::Delete {
            id: 3_000_001,
            previous: Previous {
                ndn: "cn=f2,dc=x".into(),
            },
            keep: None,
        }])
        .unwrap();
    assert!(store.record(3_000_001).unwrap().is_none());
    assert_eq!(scanned(&store).len(), 4);
}

#[test]
fn writers_share_flushes_and_none_returns_before_its_batch_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::reopen_for_test(dir.path(), 8 << 20));
    let lock = std::sync::Arc::new(std::sync::Mutex::new(()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, lock) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&lock));
            std::thread::spawn(move || {
                for n in 0..20 {
                    // As the writer does: apply under the lock, wait for the disk without it.
                    let generation = {
                        let _held = lock.lock().unwrap();
                        let id = store.next_id();
                        store
                            .apply_unsynced(&[Write::Put {
                                id,
                                entry: entry(&format!("cn=w{t}-{n},dc=x")),
                                previous: None,
                            }])
                            .unwrap()
                    };
                    store.sync_through(generation).unwrap();
                    let durable = store.durable_generation();
                    assert!(durable >= generation, "{durable} < {generation}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = store.flushes();
    assert!(
        (1..=160).contains(&flushes),
        "{flushes} flushes for 160 writes"
    );
    // Everything is durable: waiting again flushes nothing; a new batch needs one flush.
    store.sync_through(store.generation()).unwrap();
    assert_eq!(store.flushes(), flushes);
    let id = store.next_id();
    let g = store
        .apply_unsynced(&[Write::Put {
            id,
            entry: entry("cn=last,dc=x"),
            previous: None,
        }])
        .unwrap();
    store.sync_through(g).unwrap();
    assert_eq!(store.flushes(), flushes + 1);
    assert_eq!(store.children("dc=x").unwrap().len(), 161);
}

/// A store whose last handle is still being dropped opens once the lock is free (sled reports
/// the busy lock as an `Other` error, which the retry has to recognize).
#[test]
fn opening_waits_for_a_handle_being_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), 8 << 20).unwrap();
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let second = Store::open(dir.path(), 8 << 20);
    dropper.join().unwrap();
    assert!(second.is_ok(), "{:?}", second.err());
}

#[test]
fn only_a_busy_lock_is_retried() {
    let busy = std::io::Error::other(
        "could not acquire lock on \"/x/db\": Os { code: 11, kind: WouldBlock, message: \"\" }",
    );
    assert!(is_lock_busy(&busy));
    assert!(is_lock_busy(&std::io::ErrorKind::WouldBlock.into()));
    assert!(!is_lock_busy(&std::io::Error::other("permission denied")));
}

/// The log kept for sorted lists: trims stop at the floor, the store remembers how far back
/// the log is complete (across a reopen), and a bulk load without the log leaves nothing to
/// bring forward from.
#[test]
fn the_log_is_kept_after_the_floor_and_known_complete_only_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, floor) = {
        let store = Store::reopen_for_test(dir.path(), 8 << 20);
        let a = put(&store, "cn=a,dc=x");
        let floor = store.generation();
        store.keep_log_after(Some(floor)).unwrap();
        let b = put(&store, "cn=b,dc=x");
        let c = put(&store, "cn=c,dc=x");
        // The index has everything: the trim stops at the floor.
        store.trim_log(store.generation()).unwrap();
        assert_eq!(store.log_complete_after(), floor);
        assert_eq!(store.log_len_after(floor, 10).unwrap(), 2);
        store.flush().unwrap();
        (a, b, c, floor)
    };
    // A new process: nothing in memory, the log on disk names what changed.
    let store = Store::reopen_for_test(dir.path(), 8 << 20);
    let now = store.generation();
    assert_eq!(store.log_floor(), Some(floor));
    assert_eq!(store.changed_between(floor, now), Some(vec![b, c]));
    assert_eq!(store.changed_between(floor, now - 1), Some(vec![b]));
    assert_eq!(
        store.changed_between(floor - 1, now),
        None,
        "trimmed: the change of {a} is gone"
    );
    // The floor let go: the next trim takes everything, and nothing before is known.
    store.keep_log_after(None).unwrap();
    store.trim_log(now).unwrap();
    assert_eq!(store.changed_between(floor, now), None);
    assert_eq!(store.changed_between(now, now), Some(vec![]));
    // A bulk load without the log: nothing before its end can be brought forward, even with
    // a floor.
    store.keep_log_after(Some(now)).unwrap();
    store.begin_unlogged().unwrap();
    put(&store, "cn=d,dc=x");
    store.end_unlogged().unwrap();
    let reopened = {
        drop(store);
        Store::reopen_for_test(dir.path(), 8 << 20)
    };
    assert_eq!(reopened.changed_between(now, reopened.generation()), None);
    assert_eq!(reopened.log_complete_after(), reopened.generation());
}
