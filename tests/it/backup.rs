//! Backups: taken while SMTP clients keep sending, restored into a fresh data directory, they
//! hold every message acknowledged before the backup began. Restore refuses a live server.

use std::sync::{Arc, Mutex};

use mailroom::store::Store;
use tokio::net::TcpStream;

use crate::harness::{account, start_with};
use crate::smtp::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_smtp_load_restores_every_acknowledged_message() {
    let server = start_with(|c| c.domain = "example.org".into()).await;
    account(&server.running.store, "bob@example.org", 0).await;
    let addr = server.running.addr("smtp").unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for client in 0..4 {
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            let mut c = Client::new(TcpStream::connect(addr).await.unwrap());
            assert_eq!(c.reply().await.0, 220);
            c.expect("EHLO load.test", 250, "").await;
            for i in 0..40 {
                let id = format!("{client}.{i}@load.test");
                c.expect("MAIL FROM:<load@load.test>", 250, "").await;
                c.expect("RCPT TO:<bob@example.org>", 250, "").await;
                c.expect("DATA", 354, "").await;
                c.send(
                    format!("Message-ID: <{id}>\r\nSubject: load {id}\r\n\r\nbody {id}\r\n")
                        .as_bytes(),
                )
                .await;
                c.expect(".", 250, "").await;
                acked.lock().unwrap().push(id);
            }
        }));
    }
    while acked.lock().unwrap().len() < 30 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let dest = server.dir.path().join("backups/first.db");
    let summary = mailroom::backup::backup(&server.running.store, &dest)
        .await
        .unwrap();
    assert!(summary.messages as usize >= before.len(), "{summary:?}");
    assert!(
        mailroom::backup::backup(&server.running.store, &dest)
            .await
            .is_err(),
        "never over an existing file"
    );
    for s in senders {
        s.await.unwrap();
    }
    let last = server
        .running
        .store
        .meta("last_backup")
        .await
        .unwrap()
        .unwrap();
    assert!(last.ends_with("first.db"), "{last}");

    // A live server's data directory cannot be restored over.
    let live = crate::harness::config(server.dir.path());
    let err = mailroom::backup::restore(&live, &dest, |_| Ok(true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");

    let fresh = tempfile::tempdir().unwrap();
    let config = crate::harness::config(fresh.path());
    let restored = mailroom::backup::restore(&config, &dest, |_| Ok(true))
        .await
        .unwrap();
    assert_eq!(restored.messages, summary.messages);
    let store = Store::open(&config.database_path()).await.unwrap();
    let texts = crate::harness::inbox_texts(&store, "bob@example.org")
        .await
        .concat();
    for id in &before {
        assert!(texts.contains(&format!("Message-ID: <{id}>")), "{id} lost");
    }
    store.close().await;

    // A file that is not a database is refused, and nothing is replaced.
    let junk = fresh.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(
        mailroom::backup::restore(&config, &junk, |_| Ok(true))
            .await
            .is_err()
    );
    assert_eq!(
        mailroom::backup::check(&config.database_path())
            .await
            .unwrap()
            .messages,
        summary.messages
    );
}
