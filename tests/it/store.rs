//! The store: the one delivery path, dedup, UID/MODSEQ order, quota, concurrency, restart.

use mailroom::store::{Change, Delivery, Flags, Store, StoreError, Target};

use crate::harness::{account, message, store};

fn delivery(raw: &[u8]) -> Delivery<'_> {
    Delivery {
        raw,
        internal_date: Some(1_790_000_000),
    }
}

#[tokio::test]
async fn new_accounts_get_the_special_use_mailboxes() {
    let (store, _dir) = store().await;
    let a = account(&store, "bob@example.org", 0).await;
    let boxes = store.mailboxes(a.id).await.unwrap();
    let names: Vec<(&str, Option<&str>)> = boxes
        .iter()
        .map(|m| (m.name.as_str(), m.special_use.as_deref()))
        .collect();
    assert_eq!(names[0], ("INBOX", None));
    for expected in [
        ("Drafts", Some("\\Drafts")),
        ("Sent", Some("\\Sent")),
        ("Junk", Some("\\Junk")),
        ("Trash", Some("\\Trash")),
        ("Archive", Some("\\Archive")),
    ] {
        assert!(names.contains(&expected), "{expected:?} in {names:?}");
    }
    assert_eq!(boxes.len(), 6);
    let mut validities: Vec<u32> = boxes.iter().map(|m| m.uidvalidity).collect();
    validities.sort_unstable();
    validities.dedup();
    assert_eq!(validities.len(), 6, "UIDVALIDITY values are unique");
    assert!(
        store.mailbox(a.id, "inbox").await.unwrap().is_some(),
        "INBOX is case-insensitive"
    );
    assert!(
        store.mailbox(a.id, "sent").await.unwrap().is_none(),
        "other names are not"
    );
}

#[tokio::test]
async fn delivery_stores_message_parsed_and_counted() {
    let (store, _dir) = store().await;
    let a = account(&store, "bob@example.org", 0).await;
    let mut changes = store.changes().subscribe();
    let raw = message("Quarterly", "pineapple", 4096);
    let report = store
        .deliver(delivery(&raw), &[Target::inbox(a.id)])
        .await
        .unwrap();
    assert!(report.refused.is_empty());
    let d = report.delivered[0];
    assert_eq!(d.uid, 1);
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(d.mailbox_id, inbox.id());
    assert_eq!(inbox.uidnext, 2);
    assert_eq!(inbox.highestmodseq as u64, d.modseq);
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::Appended {
            account_id: a.id,
            mailbox_id: inbox.id(),
            uid: 1,
            modseq: d.modseq
        }
    );

    let msgs = store.messages(&inbox).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].size, raw.len() as u64);
    assert_eq!(msgs[0].internal_date, 1_790_000_000);
    assert_eq!(
        store.message_body(&inbox, msgs[0].uid).await.unwrap(),
        raw,
        "stored byte for byte"
    );
    let account = store.account(a.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, raw.len() as i64);
    assert_eq!(account.message_count, 1);
    // Parsed at delivery into the full-text index.
    assert_eq!(
        store.search_text(&inbox, "PINEAPPLE").await.unwrap(),
        vec![1]
    );
    assert_eq!(
        store
            .search_text(&inbox, "quarterly pineapple")
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(store.search_text(&inbox, "alice").await.unwrap(), vec![1]);
    assert!(store.search_text(&inbox, "mango").await.unwrap().is_empty());
    assert!(
        store
            .search_text(&inbox, "\" OR *")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn identical_bodies_are_stored_once_and_freed_with_the_last_copy() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let b = account(&store, "b@example.org", 0).await;
    let raw = message("Shared", "kiwi", 4096);
    store
        .deliver(delivery(&raw), &[Target::inbox(a.id), Target::inbox(b.id)])
        .await
        .unwrap();
    store
        .deliver(delivery(&raw), &[Target::inbox(a.id)])
        .await
        .unwrap();
    assert_eq!(store.blob_stats().await.unwrap(), (1, raw.len() as i64));

    let a_inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let b_inbox = store.mailbox(b.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store.expunge(&a_inbox, &[1, 2, 99]).await.unwrap(),
        vec![1, 2]
    );
    assert_eq!(store.blob_stats().await.unwrap().0, 1, "b still holds it");
    assert_eq!(store.account(a.id).await.unwrap().unwrap().used_bytes, 0);
    assert_eq!(store.search_text(&b_inbox, "kiwi").await.unwrap(), vec![1]);
    assert_eq!(store.expunge(&b_inbox, &[1]).await.unwrap(), vec![1]);
    assert_eq!(store.blob_stats().await.unwrap(), (0, 0));
    assert!(
        store
            .search_text(&b_inbox, "kiwi")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn uids_and_modseqs_only_grow() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let mut last = (0u32, 0u64);
    for i in 0..10 {
        let raw = message(&format!("n{i}"), "x", 600);
        let d = store
            .deliver(delivery(&raw), &[Target::inbox(a.id)])
            .await
            .unwrap()
            .delivered[0];
        assert_eq!(d.uid, last.0 + 1);
        assert!(d.modseq > last.1);
        last = (d.uid, d.modseq);
    }
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let before = inbox.highestmodseq as u64;
    store.expunge(&inbox, &[10]).await.unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    assert!(
        inbox.highestmodseq as u64 > before,
        "expunge raises HIGHESTMODSEQ"
    );
    // A UID is never reused, even after the highest one was expunged.
    let raw = message("after", "x", 600);
    let d = store
        .deliver(delivery(&raw), &[Target::inbox(a.id)])
        .await
        .unwrap()
        .delivered[0];
    assert_eq!(d.uid, 11);
}

#[tokio::test]
async fn delivery_into_a_named_mailbox_with_flags() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let sent = store.mailbox(a.id, "Sent").await.unwrap().unwrap();
    let raw = message("mine", "x", 600);
    let target = Target::mailbox(&sent).with_flags(Flags::SEEN, vec!["$Forwarded".into()]);
    store.deliver(delivery(&raw), &[target]).await.unwrap();
    let msgs = store.messages(&sent).await.unwrap();
    assert_eq!(msgs[0].flags, Flags::SEEN);
    assert_eq!(msgs[0].keywords, vec!["$Forwarded".to_string()]);
    // Another account's mailbox cannot be named (`Target` takes a handle, whose owner it
    // copies); a mailbox deleted since its handle was taken is not a valid target.
    let gone = store.create_mailbox(a.id, "Gone").await.unwrap();
    store.delete_mailbox(a.id, "Gone").await.unwrap();
    let wrong = Target::mailbox(&gone);
    assert!(matches!(
        store.deliver(delivery(&raw), &[wrong]).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store.messages(&sent).await.unwrap().len() == 1,
        "nothing half-written"
    );
}

#[tokio::test]
async fn quota_refuses_only_the_full_mailbox() {
    let (store, _dir) = store().await;
    let small = account(&store, "small@example.org", 10_000).await;
    let big = account(&store, "big@example.org", 0).await;
    let raw = message("q", "x", 4096);
    for _ in 0..2 {
        let r = store
            .deliver(delivery(&raw), &[Target::inbox(small.id)])
            .await
            .unwrap();
        assert_eq!(r.delivered.len(), 1);
    }
    let r = store
        .deliver(
            delivery(&raw),
            &[Target::inbox(small.id), Target::inbox(big.id)],
        )
        .await
        .unwrap();
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(r.delivered[0].account_id, big.id);
    assert_eq!(r.refused.len(), 1);
    let (target, err) = &r.refused[0];
    assert_eq!(target.account_id(), small.id);
    assert!(
        matches!(err, StoreError::QuotaExceeded { quota: 10_000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("small@example.org"));
    let small_now = store.account(small.id).await.unwrap().unwrap();
    assert_eq!(small_now.message_count, 2);
    assert_eq!(small_now.used_bytes, 2 * raw.len() as i64);
    // Two copies in one delivery count against the quota together.
    let tiny = account(&store, "tiny@example.org", 6000).await;
    let r = store
        .deliver(
            delivery(&raw),
            &[Target::inbox(tiny.id), Target::inbox(tiny.id)],
        )
        .await
        .unwrap();
    assert_eq!((r.delivered.len(), r.refused.len()), (1, 1));
}

#[tokio::test]
async fn concurrent_deliveries_get_distinct_consecutive_uids() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let raw = message(&format!("t{t}m{i}"), "x", 1000);
                store
                    .deliver(delivery(&raw), &[Target::inbox(a.id)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let msgs = store.messages(&inbox).await.unwrap();
    let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=200).collect::<Vec<u32>>());
    let mut modseqs: Vec<u64> = msgs.iter().map(|m| m.modseq).collect();
    modseqs.sort_unstable();
    modseqs.dedup();
    assert_eq!(modseqs.len(), 200);
    let total: u64 = msgs.iter().map(|m| m.size).sum();
    let acct = store.account(a.id).await.unwrap().unwrap();
    assert_eq!(acct.used_bytes as u64, total);
    assert_eq!(acct.message_count, 200);
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailroom.db");
    let raw = message("persist", "durian", 2048);
    let account_id = {
        let store = Store::open(&path).await.unwrap();
        store.add_domain("example.org").await.unwrap();
        let a = account(&store, "a@example.org", 0).await;
        store
            .deliver(delivery(&raw), &[Target::inbox(a.id)])
            .await
            .unwrap();
        store
            .add_alias("info@example.org", &["a@example.org".into()])
            .await
            .unwrap();
        store.close().await;
        a.id
    };
    let store = Store::open(&path).await.unwrap();
    let a = store
        .account_by_address("A@Example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, account_id);
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let msgs = store.messages(&inbox).await.unwrap();
    assert_eq!(store.message_body(&inbox, msgs[0].uid).await.unwrap(), raw);
    assert_eq!(store.search_text(&inbox, "durian").await.unwrap(), vec![1]);
    assert_eq!(
        store
            .alias("info@example.org")
            .await
            .unwrap()
            .unwrap()
            .targets,
        vec!["a@example.org"]
    );
    let d = store
        .deliver(delivery(&raw), &[Target::inbox(a.id)])
        .await
        .unwrap()
        .delivered[0];
    assert_eq!(d.uid, 2);
}

#[tokio::test]
async fn accounts_domains_and_aliases_keep_their_rules() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    assert!(matches!(
        store.add_domain("EXAMPLE.org").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_domain("bad domain").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.remove_domain("example.org").await,
        Err(StoreError::Conflict(m)) if m.contains("1 account")
    ));
    assert!(matches!(
        store.remove_domain("nowhere.org").await,
        Err(StoreError::NotFound(_))
    ));

    // Aliases: to local and remote targets, catch-all, chains, loops.
    store
        .add_alias(
            "info@example.org",
            &["a@example.org".into(), "x@remote.net".into()],
        )
        .await
        .unwrap();
    store
        .add_alias(
            "team@example.org",
            &["info@example.org".into(), "team2@example.org".into()],
        )
        .await
        .unwrap();
    store
        .add_alias("team2@example.org", &["team@example.org".into()])
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_alias("a@example.org", &["x@remote.net".into()])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .add_alias("x@other.org", &["a@example.org".into()])
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .add_alias("y@example.org", &["not an address".into()])
            .await,
        Err(StoreError::Invalid(_))
    ));

    let e = store
        .expand_recipient("TEAM@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.local.iter().map(|a| a.id).collect::<Vec<_>>(), vec![a.id]);
    assert_eq!(e.remote, vec!["x@remote.net".to_string()]);
    assert!(
        store
            .expand_recipient("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .expand_recipient("a@elsewhere.net")
            .await
            .unwrap()
            .is_none()
    );
    store
        .add_alias("@example.org", &["a@example.org".into()])
        .await
        .unwrap();
    let e = store
        .expand_recipient("anything@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.local[0].id, a.id);

    // Removing the account removes alias targets that pointed at it.
    store.remove_account("a@example.org").await.unwrap();
    assert_eq!(
        store
            .alias("info@example.org")
            .await
            .unwrap()
            .unwrap()
            .targets,
        vec!["x@remote.net"]
    );
    assert!(store.alias("@example.org").await.unwrap().is_none());
    assert!(matches!(
        store.remove_account("a@example.org").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .remove_alias("team@example.org", Some("info@example.org"))
        .await
        .unwrap();
    store.remove_alias("team@example.org", None).await.unwrap();
    assert!(matches!(
        store.remove_alias("team@example.org", None).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn removing_an_account_frees_its_mail() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let raw = message("bye", "x", 3000);
    store
        .deliver(delivery(&raw), &[Target::inbox(a.id)])
        .await
        .unwrap();
    assert_eq!(store.blob_stats().await.unwrap().0, 1);
    store.remove_account("a@example.org").await.unwrap();
    assert_eq!(store.blob_stats().await.unwrap(), (0, 0));
    assert!(store.mailboxes(a.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_mime_fixture_is_delivered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime-corpus");
    // In the repository (tests/mime-corpus/README.md says where it comes from): the test
    // always runs, it cannot pass by not finding its messages.
    let entries = std::fs::read_dir(&dir).expect("tests/mime-corpus is in the repository");
    let (store, _tmp) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let r = store
            .deliver(delivery(&raw), &[Target::inbox(a.id)])
            .await
            .unwrap();
        assert_eq!(r.delivered.len(), 1, "{}", path.display());
        n += 1;
    }
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(store.messages(&inbox).await.unwrap().len(), n);
}

#[tokio::test]
async fn atomic_delivery_stores_for_all_or_none() {
    let (store, _dir) = store().await;
    let small = account(&store, "small@example.org", 5000).await;
    let big = account(&store, "big@example.org", 0).await;
    let raw = message("atomic", "x", 4096);
    let both = [Target::inbox(big.id), Target::inbox(small.id)];
    assert_eq!(
        store
            .deliver_atomic(delivery(&raw), &both)
            .await
            .unwrap()
            .len(),
        2
    );
    let err = store
        .deliver_atomic(delivery(&raw), &both)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::QuotaExceeded { ref address, .. } if address == "small@example.org"),
        "{err}"
    );
    let big_inbox = store.mailbox(big.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store.messages(&big_inbox).await.unwrap().len(),
        1,
        "nothing stored for anyone"
    );
    assert_eq!(
        store.account(big.id).await.unwrap().unwrap().used_bytes,
        raw.len() as i64
    );
}

/// Deliveries that share a group commit: one failing (a mailbox deleted since) must not spoil
/// the others, and every success is durable and announced.
#[tokio::test]
async fn a_failing_delivery_does_not_spoil_its_batch() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let gone = store.create_mailbox(a.id, "Gone").await.unwrap();
    store.delete_mailbox(a.id, "Gone").await.unwrap();
    let mut changes = store.changes().subscribe();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let gone = gone.clone();
        tasks.push(tokio::spawn(async move {
            let raw = message(&format!("batch{i}"), "x", 800);
            let target = if i % 10 == 3 {
                Target::mailbox(&gone)
            } else {
                Target::inbox(a.id)
            };
            store.deliver(delivery(&raw), &[target]).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 36);
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let uids: Vec<u32> = store
        .messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, (1..=36).collect::<Vec<u32>>());
    assert!(store.messages(&gone).await.unwrap().is_empty());
    for _ in 0..36 {
        assert!(matches!(
            changes.recv().await.unwrap(),
            Change::Appended { .. }
        ));
    }
    assert_eq!(
        store.account(a.id).await.unwrap().unwrap().message_count,
        36
    );
}

/// A handle kept after its mailbox is deleted (an IMAP session that has it selected) reaches
/// nothing, not the next mailbox created: SQLite would give that one the same id, even for
/// another account.
#[tokio::test]
async fn mailbox_ids_are_never_reused() {
    let (store, _dir) = store().await;
    let a = account(&store, "a@example.org", 0).await;
    let b = account(&store, "b@example.org", 0).await;
    let kept = store.create_mailbox(a.id, "Newest").await.unwrap();
    store.delete_mailbox(a.id, "Newest").await.unwrap();
    let other = store.create_mailbox(b.id, "Private").await.unwrap();
    assert_ne!(other.id(), kept.id());
    let raw = message("private", "for b only", 800);
    store
        .deliver(delivery(&raw), &[Target::mailbox(&other)])
        .await
        .unwrap();
    assert!(store.messages(&kept).await.unwrap().is_empty());
    assert_eq!(store.changes_since(&kept, 0).await.unwrap(), None);
    // Ids keep growing after the newest mailbox goes: the highest id given is remembered,
    // not read from the rows left.
    store.delete_mailbox(b.id, "Private").await.unwrap();
    let again = store.create_mailbox(a.id, "Again").await.unwrap();
    assert!(again.id() > other.id());
}
