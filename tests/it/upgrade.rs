//! Upgrades: a database made by the first released schema (migration 0001 alone) opens with
//! the current code, is migrated forward, keeps its data, and a copy of it as it was is left
//! next to it. Envelopes stored as JSON by the old schema are converted to the packed form, and
//! the mailboxes' subscribed flags to the list of subscribed names. The bodies stored before
//! the trigram index (migration 0007) are indexed again, every header field included. Open web
//! sessions get a public id each (migration 0013).

use mailroom::store::{Delivery, Store, Target, TextField, ViewParts};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

#[tokio::test]
async fn the_first_schema_upgrades_with_a_backup_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mailroom.db");
    // The first release: only migrations/0001_init.sql, applied by sqlx as the server did.
    let first = dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql"),
        first.join("0001_init.sql"),
    )
    .unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&db)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO domains (name, created_at) VALUES ('old.example', 1)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO accounts (address, domain_id, password_hash, created_at)
         VALUES ('kept@old.example', 1, 'x', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let account: i64 = sqlx::query_scalar("SELECT id FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, created_at) VALUES (?, 'INBOX', 1, 1)",
    )
    .bind(account)
    .execute(&pool)
    .await
    .unwrap();
    // Subscriptions were a column of the mailboxes: INBOX subscribed (the default), Quiet not.
    sqlx::query(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, subscribed, created_at)
         VALUES (?, 'Quiet', 2, 0, 1)",
    )
    .bind(account)
    .execute(&pool)
    .await
    .unwrap();
    // A message as the first release stored it: envelope and body structure as JSON.
    let raw = b"From: Old Friend <old@friend.example>\r\nTo: kept@old.example\r\n\
                Subject: from the first release\r\nMessage-ID: <old@friend.example>\r\n\r\nhi\r\n";
    let analysis = mailroom::mime::analyze(raw);
    sqlx::query(
        "INSERT INTO blobs (hash, refcount, size, data, envelope, body_structure, subject,
                            from_display, to_display, cc_display, has_attachment, snippet)
         VALUES ('old', 1, ?, ?, ?, ?, 'from the first release', '', '', '', 0, 'hi')",
    )
    .bind(raw.len() as i64)
    .bind(&raw[..])
    .bind(serde_json::to_string(&analysis.envelope).unwrap())
    .bind(serde_json::to_string(&analysis.body).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    // And one whose JSON is unreadable: the upgrade must not stop on it.
    sqlx::query(
        "INSERT INTO blobs (hash, refcount, size, data, envelope, body_structure, subject,
                            from_display, to_display, cc_display, has_attachment, snippet)
         VALUES ('broken', 1, 2, x'6869', '{not json', ?, '', '', '', '', 0, '')",
    )
    .bind(serde_json::to_string(&analysis.body).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_id)
         VALUES (1, 1, 1, 1, ?, 1), (1, 2, 1, 1, 2, 2)",
    )
    .bind(raw.len() as i64)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE mailboxes SET uidnext = 3")
        .execute(&pool)
        .await
        .unwrap();
    // Two web sessions open across the upgrade: each gets its own public id (migration 0013).
    let now = mailroom::store::now();
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at, last_seen)
         VALUES ('h1', ?1, 'c1', ?2, ?2), ('h2', ?1, 'c2', ?2, ?2)",
    )
    .bind(account)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&db)
        .await
        .expect("the old database opens and upgrades");
    let backup = dir.path().join("mailroom.db.before-migration-1");
    assert!(
        backup.exists(),
        "a copy of the version-1 database was written first"
    );
    let old = store
        .account_by_address("kept@old.example")
        .await
        .unwrap()
        .expect("the account survived");
    assert_eq!(old.signature, "", "columns added later have their defaults");
    // The subscribed flags became the list of subscribed names.
    assert_eq!(store.subscriptions(old.id).await.unwrap(), ["INBOX"]);
    assert!(store.mailbox(old.id, "Quiet").await.unwrap().is_some());
    let sessions = store.sessions_of(old.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.id.len() == 32 && s.ip.is_empty()));
    assert_ne!(sessions[0].id, sessions[1].id);
    // The old message's envelope was converted and reads back as it was parsed.
    let inbox = store.mailbox(old.id, "INBOX").await.unwrap().unwrap();
    let views = store
        .message_views(
            &inbox,
            &[1, 2],
            ViewParts {
                envelope: true,
                ..ViewParts::default()
            },
        )
        .await
        .unwrap();
    let envelope = views[0].envelope.as_ref().expect("envelope").get();
    assert_eq!(envelope.to_envelope(), analysis.envelope);
    let broken = views[1].envelope.as_ref().expect("envelope").get();
    assert_eq!(broken.to_envelope(), mailroom::mime::Envelope::default());
    // The old bodies are in the substring index again, with header fields the old index
    // never had (Message-ID) and needles inside words.
    for (field, needle, uids) in [
        (TextField::All, "d@friend.exam", vec![1]),
        (TextField::All, "RST RELEASE", vec![1]),
        (TextField::All, "essage-i", vec![1]),
        (TextField::Body, "hi", vec![1, 2]),
        (TextField::Body, "essage-i", vec![]),
    ] {
        assert_eq!(
            store
                .search_text_substring(&inbox, field, needle)
                .await
                .unwrap(),
            uids,
            "{needle}"
        );
    }
    // The upgraded database works: a delivery, and the keys made for old domains.
    store
        .deliver(
            Delivery {
                raw: b"Subject: after the upgrade\r\n\r\nhello\r\n",
                internal_date: None,
            },
            &[Target::inbox(old.id)],
        )
        .await
        .unwrap();
    assert_eq!(store.ensure_dkim_keys().await.unwrap(), 1);
    store.close().await;
    // The copy is the old schema, untouched.
    let copy = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&backup)
                .read_only(true),
        )
        .await
        .unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&copy)
        .await
        .unwrap();
    assert_eq!(versions, vec![1]);
    copy.close().await;

    // Opening again: nothing pending, no second copy.
    let store = Store::open(&db).await.unwrap();
    store.close().await;
    let copies = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("before-migration")
        })
        .count();
    assert_eq!(copies, 1);
}
