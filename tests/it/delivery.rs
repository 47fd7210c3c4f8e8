//! Delivery rules across paths (issue 17): one quota rule for RCPT, delivery and copy; local
//! copies and the outbound queue committed in one transaction; the store opens without the
//! partial index of migration 0005.

use std::net::IpAddr;

use mailroom::store::Store;
use mailroom::submission::{Recipient, Submission, SubmitError};
use sqlx::Connection;

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, start_with};
use crate::smtp::{Client, connect};

const BODY: &str =
    "From: alice@remote.test\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nHi Bob.\r\n";

/// A server for example.org whose DNS sends mail for remote.test to an address that refuses
/// connections: what is queued for it stays queued (deferred, never bounced).
async fn server() -> TestServer {
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 3]));
    let dns = dns_server::start(zone).await;
    let server = start_with(move |c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    server
}

async fn used(store: &Store, address: &str) -> (i64, i64) {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    (a.used_bytes, a.quota_bytes)
}

async fn inbox_len(store: &Store, address: &str) -> usize {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    store.messages(&inbox).await.unwrap().len()
}

/// MAIL FROM (with `size` as SIZE= when given), RCPT TO `rcpt`, and the RCPT reply code.
async fn envelope(c: &mut Client<tokio::net::TcpStream>, size: Option<i64>, rcpt: &str) -> u16 {
    c.expect("RSET", 250, "").await;
    let mail = match size {
        Some(n) => format!("MAIL FROM:<a@remote.test> SIZE={n}"),
        None => "MAIL FROM:<a@remote.test>".to_string(),
    };
    c.expect(&mail, 250, "").await;
    c.cmd(&format!("RCPT TO:<{rcpt}>")).await.0
}

/// DATA with [`BODY`]; the final reply.
async fn data(c: &mut Client<tokio::net::TcpStream>) -> (u16, String) {
    c.expect("DATA", 354, "").await;
    c.send(format!("{BODY}.\r\n").as_bytes()).await;
    c.reply().await
}

#[tokio::test]
async fn a_message_that_fits_the_quota_exactly_is_taken_one_byte_more_is_not() {
    let server = server().await;
    let store = &server.running.store;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.remote.test", 250, "").await;
    // The stored size of BODY with its trace fields (of fixed length) as this session adds them.
    assert_eq!(envelope(&mut c, None, "bob@example.org").await, 250);
    assert_eq!(data(&mut c).await.0, 250);
    let (size, _) = used(store, "bob@example.org").await;

    // Room for exactly one more: declared and actual size both fit exactly.
    store
        .set_quota("bob@example.org", 2 * size as u64)
        .await
        .unwrap();
    assert_eq!(
        envelope(&mut c, Some(size), "bob@example.org").await,
        250,
        "SIZE= equal to the room left is accepted at RCPT"
    );
    let (code, text) = data(&mut c).await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(used(store, "bob@example.org").await, (2 * size, 2 * size));
    // Now full: nothing more, declared or not.
    assert_eq!(envelope(&mut c, Some(1), "bob@example.org").await, 452);
    assert_eq!(envelope(&mut c, None, "bob@example.org").await, 452);

    // One byte short of room: refused at RCPT when declared, after DATA when not.
    account(store, "carol@example.org", (size - 1) as u64).await;
    assert_eq!(envelope(&mut c, Some(size), "carol@example.org").await, 452);
    assert_eq!(
        envelope(&mut c, Some(size - 1), "carol@example.org").await,
        250
    );
    assert_eq!(envelope(&mut c, None, "carol@example.org").await, 250);
    let (code, text) = data(&mut c).await;
    assert_eq!(code, 552, "{text}");
    assert!(text.contains("5.2.2"), "{text}");
    assert_eq!(used(store, "carol@example.org").await.0, 0);
}

/// Makes every insert into the outbound queue fail, from another connection to the database
/// (as a full disk or a broken queue table would), until [`allow_queue`].
async fn refuse_queue(db: &std::path::Path) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_queue BEFORE INSERT ON queue_messages
         BEGIN SELECT RAISE(ABORT, 'queue refused by the test'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}

async fn allow_queue(mut conn: sqlx::SqliteConnection) {
    sqlx::query("DROP TRIGGER refuse_queue")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_inbound_forward_that_cannot_be_queued_stores_no_local_copy() {
    let server = server().await;
    let store = &server.running.store;
    store
        .add_alias(
            "team@example.org",
            &["bob@example.org".into(), "friend@remote.test".into()],
        )
        .await
        .unwrap();
    let blocked = refuse_queue(&server.dir.path().join("mailroom.db")).await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.remote.test", 250, "").await;
    assert_eq!(envelope(&mut c, None, "team@example.org").await, 250);
    let (code, text) = data(&mut c).await;
    assert_eq!(code, 451, "{text}");
    assert_eq!(
        inbox_len(store, "bob@example.org").await,
        0,
        "the 451 stored nothing, so the client's retry cannot make a second copy"
    );
    assert!(store.queue_list().await.unwrap().is_empty());

    allow_queue(blocked).await;
    assert_eq!(envelope(&mut c, None, "team@example.org").await, 250);
    let (code, text) = data(&mut c).await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("forwarded as queue item"), "{text}");
    assert_eq!(inbox_len(store, "bob@example.org").await, 1);
    let queue = store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].recipients[0].address, "friend@remote.test");
}

#[tokio::test]
async fn a_submission_that_cannot_be_queued_stores_no_local_copy() {
    let server = server().await;
    let store = &server.running.store;
    let bob = store
        .account_by_address("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    let submission = Submission::new(store.clone(), "mail.example.org".into());
    // Bob writes as someone of another domain: nothing to sign, the rest of the path as usual.
    let message =
        b"From: Bob <bob@elsewhere.test>\r\nTo: x@remote.test\r\nSubject: s\r\n\r\nhi\r\n";
    let recipients = [
        Recipient::Local(vec![bob.id], vec![]),
        Recipient::Remote("x@remote.test".into()),
    ];
    let blocked = refuse_queue(&server.dir.path().join("mailroom.db")).await;
    let err = submission
        .submit_keeping(&bob, "bob@example.org", &recipients, b"", message, None)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::Store(_)), "{err}");
    assert_eq!(inbox_len(store, "bob@example.org").await, 0);
    assert!(store.queue_list().await.unwrap().is_empty());

    allow_queue(blocked).await;
    let delivered = submission
        .submit(&bob, "bob@example.org", &recipients, b"", message)
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(inbox_len(store, "bob@example.org").await, 1);
    assert_eq!(store.queue_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_store_opens_without_the_json_envelope_index() {
    let (store, dir) = crate::harness::store().await;
    drop(store);
    let db = dir.path().join("mailroom.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    // As a later migration may: the index only served the conversion of migration 0005.
    sqlx::query("DROP INDEX blobs_json_envelope")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = Store::open(&db).await.expect("opens without the index");
    let a = account(&store, "bob@example.org", 0).await;
    store
        .deliver(
            mailroom::store::Delivery {
                raw: BODY.as_bytes(),
                internal_date: None,
            },
            &[mailroom::store::Target::inbox(a.id)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn imap_copy_and_append_take_an_exact_fit_and_refuse_one_byte_more() {
    let (t, alice) = crate::imap::server().await;
    let store = &t.running.store;
    let raw = b"Subject: c\r\n\r\ncopy me\r\n";
    crate::imap::deliver(store, &alice, raw).await;
    let size = raw.len() as u64;
    let mut c = crate::imap::logged_in(&t).await;
    c.ok("SELECT INBOX").await;

    store
        .set_quota("alice@localhost", 2 * size - 1)
        .await
        .unwrap();
    let (_, r) = c.cmd("COPY 1 Archive").await;
    assert_eq!(r, "TAG NO [OVERQUOTA] the mailbox is full (quota exceeded)");
    store.set_quota("alice@localhost", 2 * size).await.unwrap();
    c.ok("COPY 1 Archive").await;
    assert_eq!(
        used(store, "alice@localhost").await,
        (2 * size as i64, 2 * size as i64)
    );

    let append = format!(
        "APPEND INBOX {{{}+}}\r\n{}",
        raw.len(),
        String::from_utf8_lossy(raw)
    );
    store
        .set_quota("alice@localhost", 3 * size - 1)
        .await
        .unwrap();
    let (_, r) = c.cmd(&append).await;
    assert_eq!(r, "TAG NO [OVERQUOTA] the mailbox is full (quota exceeded)");
    store.set_quota("alice@localhost", 3 * size).await.unwrap();
    c.ok(&append).await;
    assert_eq!(used(store, "alice@localhost").await.0, 3 * size as i64);
}
