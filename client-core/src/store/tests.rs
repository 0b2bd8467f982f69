//! Store tests: migrations, documents as snapshot plus chunks (and
//! compaction), pending and quarantine rows, a damaged chunk reported rather
//! than a crash, a full disk refusing a write without losing earlier ones.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT, ReadDoc};

use super::*;

fn actor() -> ActorId {
    ActorId::from(b"device-actor-001".to_vec())
}

/// Makes `n` changes on `doc`, keeping each as a chunk and a pending row.
fn write_changes(store: &mut Store, id: DocId, doc: &mut Automerge, n: usize) -> Vec<ChangeHash> {
    let mut hashes = Vec::new();
    for i in 0..n {
        let mut tx = doc.transaction();
        tx.put(
            ROOT,
            format!("k{i}-{}", rand::random::<u32>()),
            "x".repeat(200),
        )
        .unwrap();
        tx.commit();
        let change = doc.get_last_local_change().unwrap();
        hashes.push(change.hash());
        store
            .write(|tx| {
                doc_ensure(tx, id, Listing::Listed)?;
                chunk_append(tx, id, change.raw_bytes())?;
                pending_add(
                    tx,
                    &change.hash().to_string(),
                    id,
                    "note",
                    "note",
                    &change,
                    "t",
                )?;
                Ok(())
            })
            .unwrap();
    }
    hashes
}

#[test]
fn migrations_run_once_and_a_newer_store_is_refused() {
    let dir = std::env::temp_dir().join(format!("propsync-store-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("device.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    let mode: String = store
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    store
        .conn()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    drop(store);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::TooNew {
            found: 99,
            known: 2
        })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_document_round_trips_through_chunks_and_compaction() {
    let mut store = Store::open_in_memory().unwrap();
    let id = DocId::random();
    let mut doc = Automerge::new().with_actor(actor());
    write_changes(&mut store, id, &mut doc, 5);
    let (loaded, report) = load_doc(store.conn(), id, &actor()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(loaded.get_heads(), doc.get_heads());
    // Enough chunks to outgrow the (absent) snapshot and the floor: compacted.
    write_changes(&mut store, id, &mut doc, 30);
    let compacted = store.write(|tx| compact_if_needed(tx, id, &doc)).unwrap();
    assert!(compacted);
    let kinds: Vec<String> = store
        .conn()
        .prepare("SELECT kind FROM chunks WHERE doc_id = ?1")
        .unwrap()
        .query_map([id.to_string()], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["snapshot"]);
    let (loaded, report) = load_doc(store.conn(), id, &actor()).unwrap();
    assert!(report.is_clean());
    assert_eq!(loaded.get_heads(), doc.get_heads());
    assert_eq!(loaded.get_changes(&[]).len(), 35);
    assert!(
        !store.write(|tx| compact_if_needed(tx, id, &doc)).unwrap(),
        "nothing to compact"
    );
}

#[test]
fn a_damaged_chunk_is_reported_and_the_pending_copy_recovers_the_action() {
    let mut store = Store::open_in_memory().unwrap();
    let id = DocId::random();
    let mut doc = Automerge::new().with_actor(actor());
    let hashes = write_changes(&mut store, id, &mut doc, 3);
    // Flip bytes in the second chunk (the checksum no longer matches), and
    // write garbage with a matching checksum into a third.
    let ids: Vec<i64> = store
        .conn()
        .prepare("SELECT id FROM chunks ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    store
        .conn()
        .execute(
            "UPDATE chunks SET bytes = zeroblob(length(bytes)) WHERE id = ?1",
            [ids[1]],
        )
        .unwrap();
    let junk = b"not an automerge chunk".to_vec();
    store
        .conn()
        .execute(
            "UPDATE chunks SET bytes = ?2, sha256 = ?3 WHERE id = ?1",
            params![ids[2], junk, Sha256::digest(&junk).as_slice()],
        )
        .unwrap();
    let (loaded, report) = load_doc(store.conn(), id, &actor()).unwrap();
    // The damaged chunk is reported; automerge skips the junk one (it is
    // not a chunk at all) and both lost actions come back from `pending`.
    assert_eq!(report.problems[0].chunk, ids[1], "{report:?}");
    assert!(report.problems[0].problem.contains("checksum"));
    assert_eq!(report.recovered, 2);
    for h in &hashes {
        assert!(
            loaded.get_change_by_hash(h).is_some(),
            "every committed action is there"
        );
    }
}

#[test]
fn a_full_disk_refuses_the_write_and_keeps_what_was_committed() {
    let mut store = Store::open_in_memory().unwrap();
    let id = DocId::random();
    let mut doc = Automerge::new().with_actor(actor());
    let kept = write_changes(&mut store, id, &mut doc, 2);
    let pages: i64 = store
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store.limit_pages(u64::try_from(pages).unwrap()).unwrap();
    let big = vec![7u8; 64 * 1024];
    let err = store
        .write(|tx| blob_put(tx, &"a".repeat(64), "image/jpeg", &big))
        .unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    let (loaded, report) = load_doc(store.conn(), id, &actor()).unwrap();
    assert!(report.is_clean());
    for h in &kept {
        assert!(loaded.get_change_by_hash(h).is_some());
    }
    assert!(blob(store.conn(), &"a".repeat(64)).unwrap().is_none());
}

#[test]
fn pending_rows_are_acked_and_quarantine_rows_kept_and_released() {
    let mut store = Store::open_in_memory().unwrap();
    let id = DocId::random();
    let mut doc = Automerge::new().with_actor(actor());
    let hashes = write_changes(&mut store, id, &mut doc, 2);
    assert_eq!(unacked(store.conn(), id).unwrap(), hashes);
    let n = store.write(|tx| pending_ack(tx, id, &hashes[..1])).unwrap();
    assert_eq!(n, 1);
    // Acknowledged notes need no verdict: they leave the pending list.
    assert_eq!(pending(store.conn()).unwrap().len(), 1);
    let change = doc.get_change_by_hash(&hashes[1]).unwrap().clone();
    store
        .write(|tx| {
            quarantine_add(
                tx,
                id,
                &change,
                "touches_server",
                "only the relay writes server",
                "t",
                "s",
            )?;
            pending_drop_changes(tx, id, &hashes[1..])
        })
        .unwrap();
    let q = quarantine(store.conn()).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].change_hex, hex::encode(change.raw_bytes()));
    assert!(pending(store.conn()).unwrap().is_empty());
    store
        .write(|tx| quarantine_release(tx, id, &hashes[1..]))
        .unwrap();
    assert!(quarantine(store.conn()).unwrap().is_empty());
}

#[test]
fn blobs_are_kept_by_hash_with_their_upload_progress() {
    let mut store = Store::open_in_memory().unwrap();
    let sha = "b".repeat(64);
    store
        .write(|tx| blob_put(tx, &sha, "image/png", b"12345"))
        .unwrap();
    store
        .write(|tx| blob_put(tx, &sha, "image/png", b"12345"))
        .unwrap();
    assert_eq!(blobs_to_upload(store.conn()).unwrap().len(), 1);
    store.write(|tx| blob_progress(tx, &sha, 3, false)).unwrap();
    assert_eq!(blob(store.conn(), &sha).unwrap().unwrap().uploaded, 3);
    store.write(|tx| blob_progress(tx, &sha, 5, true)).unwrap();
    assert!(blobs_to_upload(store.conn()).unwrap().is_empty());
    assert_eq!(blob_bytes(store.conn(), &sha).unwrap().unwrap(), b"12345");
}

#[test]
fn the_sync_log_keeps_what_each_sync_did_newest_first() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .write(|tx| {
            sync_log_add(
                tx,
                "2026-11-27T08:00:00Z",
                "2026-11-27T08:00:01Z",
                true,
                r#"{"verdicts": 3}"#,
                None,
            )?;
            sync_log_add(
                tx,
                "2026-11-27T09:00:00Z",
                "2026-11-27T09:00:30Z",
                false,
                "{}",
                Some("the relay could not be reached"),
            )
        })
        .unwrap();
    let log = sync_log(store.conn(), 10).unwrap();
    assert_eq!(log.len(), 2);
    assert!(!log[0].ok);
    assert_eq!(
        log[0].error.as_deref(),
        Some("the relay could not be reached")
    );
    assert_eq!(log[1].summary["verdicts"], 3);
}
