//! The spam filter learns from what users do (issue 21): a message moved or copied into Junk
//! over IMAP is trained as spam; moved back out (not to Trash) it is trained as ham, which
//! takes back what moving it in taught; the `$Junk` and `$NotJunk` keywords teach the same.
//! Learning happens off the request path, so the tests wait for it.

use std::time::Duration;

use mailroom::store::SpamHam as Totals;
use mailroom::store::Store;

use crate::harness::message;
use crate::imap::{deliver, logged_in, server};

/// Lessons the sessions have handed to the learner so far (each one it will act on).
fn lessons(store: &Store) -> i64 {
    store
        .event_counters()
        .into_iter()
        .find(|(k, _)| *k == "spam_lessons")
        .map_or(0, |(_, n)| n)
}

/// Waits (up to 5 s) until the account's totals are `want`.
async fn totals_become(store: &Store, account: i64, want: Totals) {
    let mut last = Totals::default();
    for _ in 0..100 {
        last = store.spam_counts(account, &[]).await.unwrap().0;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("totals {last:?}, wanted {want:?}");
}

#[tokio::test]
async fn moving_into_and_out_of_junk_trains_and_untrains() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    let raws: Vec<Vec<u8>> = (1..=3)
        .map(|i| message(&format!("cheap pills offer {i}"), "viagra", 400))
        .collect();
    for raw in &raws {
        deliver(store, &alice, raw).await;
    }
    let tokens = mailroom::spam::tokens::hashed(&raws[0]);
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;

    // Moved into Junk: spam.
    c.ok("UID MOVE 1 Junk").await;
    totals_become(store, alice.id, Totals { spam: 1, ham: 0 }).await;
    let (_, counts) = store.spam_counts(alice.id, &tokens).await.unwrap();
    assert!(
        counts.iter().all(|c| c.spam == 1 && c.ham == 0),
        "{counts:?}"
    );
    // Copied into Junk: spam too.
    c.ok("UID COPY 2 Junk").await;
    totals_become(store, alice.id, Totals { spam: 2, ham: 0 }).await;
    // Moved within INBOX's neighbours (not Junk): nothing learned.
    let before = lessons(store);
    c.ok("UID MOVE 3 Archive").await;
    assert_eq!(lessons(store), before, "a move to Archive teaches nothing");

    // Message 1 moved back out of Junk: untrained as spam, trained as ham.
    c.ok("SELECT Junk").await;
    let (lines, _) = c.cmd("UID SEARCH SUBJECT \"offer 1\"").await;
    let uid = lines[0].trim_start_matches("* SEARCH ").to_string();
    c.ok(&format!("UID MOVE {uid} INBOX")).await;
    totals_become(store, alice.id, Totals { spam: 1, ham: 1 }).await;
    let (_, counts) = store.spam_counts(alice.id, &tokens).await.unwrap();
    assert!(counts.iter().all(|c| c.ham == 1), "{counts:?}");
    assert!(
        counts.iter().any(|c| c.spam == 1),
        "message 2 shares tokens: {counts:?}"
    );

    // Junk to Trash teaches nothing; the same message taught twice counts once.
    let before = lessons(store);
    c.ok("UID MOVE 1:* Trash").await;
    assert_eq!(lessons(store), before, "Junk to Trash teaches nothing");
    c.ok("SELECT INBOX").await;
    c.ok("UID MOVE 1:* Junk").await;
    c.ok("SELECT Junk").await;
    c.ok("UID COPY 1:* Junk").await;
    // Message 1 (trained ham) is now spam again: a reversal, not a third spam.
    totals_become(store, alice.id, Totals { spam: 2, ham: 0 }).await;
}

#[tokio::test]
async fn the_junk_keywords_teach_too() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=2 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.ok("UID STORE 1 +FLAGS ($Junk)").await;
    totals_become(store, alice.id, Totals { spam: 1, ham: 0 }).await;
    // Taking the keyword off teaches nothing; `$NotJunk` reverses the lesson.
    let before = lessons(store);
    c.ok("UID STORE 1 -FLAGS ($Junk)").await;
    assert_eq!(lessons(store), before, "taking $Junk off teaches nothing");
    c.ok("UID STORE 1 +FLAGS ($NotJunk)").await;
    c.ok("UID STORE 2 FLAGS (\\Seen $NotJunk)").await;
    totals_become(store, alice.id, Totals { spam: 0, ham: 2 }).await;
}

#[tokio::test]
async fn the_upkeep_teaches_kept_mail_as_ham_and_prunes_tokens() {
    use mailroom::store::{Delivery, Flags, Target};
    let (t, alice) = server().await;
    let store = &t.running.store;
    // Alice uses Junk (the upkeep looks only at accounts that do).
    let spam = message("buy now", "pills", 300);
    store
        .train_spam(
            alice.id,
            "spam-one",
            &mailroom::spam::tokens::hashed(&spam),
            true,
        )
        .await
        .unwrap();
    let now = mailroom::store::now();
    let put = |subject: &'static str, days: i64, flags: Flags, keywords: &[&str]| {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        let raw = message(subject, subject, 400);
        async move {
            store
                .deliver(
                    Delivery {
                        raw: &raw,
                        internal_date: Some(now - days * 86_400),
                    },
                    &[Target::inbox(alice.id).with_flags(flags, keywords)],
                )
                .await
                .unwrap();
        }
    };
    put("read and kept", 5, Flags::SEEN, &[]).await;
    put("never read", 5, Flags::default(), &[]).await;
    put("read but junk", 5, Flags::SEEN, &["$Junk"]).await;
    put("read yesterday", 1, Flags::SEEN, &[]).await;
    put("read long ago", 60, Flags::SEEN, &[]).await;
    mailroom::spam::learn::upkeep(store).await;
    totals_become(store, alice.id, Totals { spam: 1, ham: 1 }).await;
    // Once only.
    mailroom::spam::learn::upkeep(store).await;
    totals_become(store, alice.id, Totals { spam: 1, ham: 1 }).await;

    // Pruning keeps the table under its bound: down to nine tenths of it.
    assert!(store.prune_spam_tokens(alice.id, 10).await.unwrap() > 0);
    assert_eq!(store.prune_spam_tokens(alice.id, 9).await.unwrap(), 0);
}
