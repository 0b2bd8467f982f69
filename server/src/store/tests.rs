//! The writer's group commit when the disk fills in the middle of a group.

use std::collections::BTreeSet;

use tokio::task::JoinSet;

use super::*;

/// Rows of a few kilobytes that do not compress away, written by many
/// callers at once (so their jobs share group transactions) into a database
/// with little room: every write the store acknowledged is stored, and every
/// write it refused left nothing behind. When SQLite rolls a whole group
/// back on its own (a full disk may), the jobs after the failing one must
/// not commit outside the group while being told they failed: a relay that
/// believed such a write lost would write the same change number again and
/// leave a document that no longer loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_by_a_full_disk_leaves_nothing_and_an_acknowledged_one_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("propsync.sqlite3");
    let db = Db::open(&path).expect("open");
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE filler (n INTEGER PRIMARY KEY, body BLOB NOT NULL)")?;
        Ok(())
    })
    .await
    .expect("table");
    let pages: u32 = db
        .read(|c| Ok(c.pragma_query_value(None, "page_count", |r| r.get(0))?))
        .await
        .expect("pages");
    drop(db);
    let db = Db::open_with_limit(&path, Some(pages + 60)).expect("reopen");

    let mut writers = JoinSet::new();
    for n in 0..600_i64 {
        let db = db.clone();
        writers.spawn(async move {
            let result = db
                .write(move |tx| {
                    tx.execute(
                        "INSERT INTO filler (n, body) VALUES (?1, randomblob(3000))",
                        [n],
                    )?;
                    Ok(())
                })
                .await;
            (n, result)
        });
    }
    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    while let Some(joined) = writers.join_next().await {
        match joined.expect("writer task") {
            (n, Ok(())) => {
                acknowledged.insert(n);
            }
            (_, Err(StoreError::Full)) => refused += 1,
            (n, Err(e)) => panic!("write {n}: unexpected {e}"),
        }
    }
    assert!(!acknowledged.is_empty(), "some writes fit");
    assert!(refused > 0, "the page limit was reached");
    let stored: BTreeSet<i64> = db
        .read(|c| {
            let mut s = c.prepare("SELECT n FROM filler")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .expect("read back");
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    let ghosts: Vec<_> = stored.difference(&acknowledged).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(
        ghosts.is_empty(),
        "refused but stored anyway: {ghosts:?} ({} acknowledged, {refused} refused)",
        acknowledged.len()
    );
}
