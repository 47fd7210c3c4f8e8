//! A damaged database is refused at start (issue 16, low items): a zero-length file must not
//! become a fresh installation (a new admin, new DKIM keys), and a page overwritten in the
//! middle must be found by `PRAGMA quick_check` before the server runs on it, not later by a
//! FETCH answering `NO [SERVERBUG]`.

use mailroom::app;
use mailroom::store::Store;

use crate::harness::{account, config, message, start_with};

/// The whole error chain, as `mailroom serve` prints it.
async fn start_error(data: &std::path::Path) -> String {
    match app::start(config(data)).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("the server started on a damaged database");
        }
        Err(e) => {
            eprintln!("refused: {e:#}");
            format!("{e:#}")
        }
    }
}

#[tokio::test]
async fn a_zero_length_database_is_refused_not_reinstalled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mailroom.db");
    std::fs::write(&db, b"").unwrap();
    // What a truncation leaves behind: the WAL with the latest commits.
    std::fs::write(dir.path().join("mailroom.db-wal"), vec![7u8; 4096]).unwrap();

    let error = start_error(dir.path()).await;
    assert!(error.contains("is empty (0 bytes)"), "{error}");
    assert!(error.contains("new admin password"), "says why: {error}");
    assert!(
        error.contains("mailroom.db-wal (4096 bytes)"),
        "names the WAL beside it: {error}"
    );
    assert!(
        error.contains("mailroom restore"),
        "says what to do: {error}"
    );
    // Nothing was written: no schema, no admin, no keys.
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

    // The admin commands open the store the same way and refuse too (a `user list` on the
    // empty file would otherwise create the schema, and the next start a new admin).
    let refused = Store::open(&db).await.err().expect("Store::open refuses");
    assert!(refused.to_string().contains("is empty"), "{refused}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

    // A missing file is still a first start.
    std::fs::remove_file(&db).unwrap();
    std::fs::remove_file(dir.path().join("mailroom.db-wal")).unwrap();
    let running = app::start(config(dir.path())).await.expect("first start");
    assert!(running.first_login.is_some());
    running.shutdown().await;
}

#[tokio::test]
async fn a_page_overwritten_in_the_middle_is_found_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = start_with({
        let data = data.clone();
        move |c| c.data_dir = data
    })
    .await;
    let bob = account(&server.running.store, "bob@localhost", 0).await;
    for n in 0..40 {
        let raw = message(&format!("m{n}"), &format!("word{n}"), 6000);
        server
            .running
            .store
            .deliver(
                mailroom::store::Delivery {
                    raw: &raw,
                    internal_date: None,
                },
                &[mailroom::store::Target::inbox(bob.id)],
            )
            .await
            .unwrap();
    }
    server.running.shutdown().await;

    // A clean database passes the check (and the start reports its time in the log).
    let running = app::start(config(&data)).await.expect("clean start");
    running.shutdown().await;

    let db = data.join("mailroom.db");
    let (page_size, pages, free_pages) = {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let mut get = async |pragma: &str| -> u64 {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                .fetch_one(&mut conn)
                .await
                .unwrap() as u64
        };
        let sizes = (
            get("page_size").await,
            get("page_count").await,
            get("freelist_count").await,
        );
        conn.close().await.unwrap();
        sizes
    };
    assert!(pages > 40, "a database of some size: {pages} pages");
    assert_eq!(free_pages, 0, "the page chosen below is in use");
    assert_eq!(
        std::fs::metadata(data.join("mailroom.db-wal")).map_or(0, |m| m.len()),
        0,
        "everything is in the main file"
    );
    // The clean stop recorded the file's size and modification time, so the next start would
    // skip the check if nothing changed it (store::clean_stop). The damage below changes the
    // modification time, which the kernel keeps to the tick of its clock: let one pass.
    std::thread::sleep(std::time::Duration::from_millis(20));
    // One page in the middle overwritten, as a bad disk block or a stray write would.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(pages / 2 * page_size)).unwrap();
        f.write_all(&vec![0xA5u8; page_size as usize]).unwrap();
        f.sync_all().unwrap();
    }

    let error = start_error(&data).await;
    assert!(error.contains("is damaged"), "{error}");
    assert!(error.contains("quick_check"), "says what found it: {error}");
    assert!(
        error.contains("mailroom restore"),
        "says what to do: {error}"
    );

    // A header overwritten too: SQLite no longer takes the file for a database at all.
    std::fs::write(&db, vec![0xA5u8; (pages * page_size) as usize]).unwrap();
    let error = start_error(&data).await;
    assert!(error.contains("is damaged"), "{error}");
}
