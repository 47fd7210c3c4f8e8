//! The webmail's lists (issue 24): Sent and Drafts show recipients, Empty Trash / Empty Junk,
//! Undo after delete and move, conversations (threads) and the conversation page.

use axum::http::StatusCode;
use mailroom::store::{Delivery, FlagOp, Flags, Mailbox, Store, Target};

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, field};

async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "carol@localhost", 0).await;
    server
}

async fn signed_in(server: &TestServer, who: &str) -> (Browser, String) {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", who, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    (b, csrf)
}

async fn folder(store: &Store, who: &str, name: &str) -> Mailbox {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    store.mailbox(a.id, name).await.unwrap().unwrap()
}

async fn put(store: &Store, into: &Mailbox, raw: &[u8]) -> u32 {
    store
        .deliver(
            Delivery {
                raw,
                internal_date: None,
            },
            &[Target::mailbox(into)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid
}

async fn used(store: &Store, who: &str) -> (i64, i64) {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    (a.used_bytes, a.message_count)
}

#[tokio::test]
async fn sent_and_drafts_list_the_recipients() {
    let server = server().await;
    let store = server.running.store.clone();
    let sent = folder(&store, "bob@localhost", "Sent").await;
    let drafts = folder(&store, "bob@localhost", "Drafts").await;
    let inbox = folder(&store, "bob@localhost", "INBOX").await;
    let raw = "From: Bob <bob@localhost>\r\nTo: Dora Recipient <dora@example.net>\r\n\
               Subject: Plans\r\nMessage-ID: <plans@localhost>\r\n\r\nSee you.\r\n";
    put(&store, &sent, raw.as_bytes()).await;
    put(&store, &drafts, raw.as_bytes()).await;
    put(&store, &inbox, raw.as_bytes()).await;
    let (mut bob, _) = signed_in(&server, "bob@localhost").await;
    for m in [&sent, &drafts] {
        let page = bob.get(&format!("/mail/box/{}", m.id())).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("To: Dora Recipient"),
            "{}: {}",
            m.name,
            page.body
        );
    }
    // INBOX still names the sender.
    let page = bob.get(&format!("/mail/box/{}", inbox.id())).await;
    assert!(!page.body.contains("To: Dora"), "{}", page.body);
    assert!(
        page.body.contains("class=\"from\"><bdi>Bob"),
        "{}",
        page.body
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn empty_trash_and_junk_expunge_everything_and_release_quota() {
    let server = server().await;
    let store = server.running.store.clone();
    let trash = folder(&store, "bob@localhost", "Trash").await;
    let inbox = folder(&store, "bob@localhost", "INBOX").await;
    put(&store, &inbox, &harness::message("keep", "w", 800)).await;
    let (before, _) = used(&store, "bob@localhost").await;
    for i in 0..3 {
        put(
            &store,
            &trash,
            &harness::message(&format!("t{i}"), "w", 2000),
        )
        .await;
    }
    let (full, count) = used(&store, "bob@localhost").await;
    assert_eq!(count, 4);
    assert!(full > before);
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let page = bob.get(&format!("/mail/box/{}", trash.id())).await;
    assert!(page.body.contains("id=\"empty-folder\""), "{}", page.body);
    assert!(page.body.contains("Empty Trash"));
    // Not offered, and refused, on another folder.
    let page = bob.get(&format!("/mail/box/{}", inbox.id())).await;
    assert!(!page.body.contains("id=\"empty-folder\""));
    let page = bob
        .post(
            &format!("/mail/box/{}/empty", inbox.id()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Without the token: refused, nothing gone.
    let page = bob
        .post(&format!("/mail/box/{}/empty", trash.id()), &[("csrf", "x")])
        .await;
    assert_ne!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.messages(&trash).await.unwrap().len(), 3);
    // Carol cannot empty Bob's Trash.
    let (mut carol, carol_csrf) = signed_in(&server, "carol@localhost").await;
    let page = carol
        .post(
            &format!("/mail/box/{}/empty", trash.id()),
            &[("csrf", &carol_csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(store.messages(&trash).await.unwrap().len(), 3);

    let page = bob
        .post(
            &format!("/mail/box/{}/empty", trash.id()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location,
        format!("/mail/box/{}?done=emptied", trash.id())
    );
    assert!(store.messages(&trash).await.unwrap().is_empty());
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 1);
    assert_eq!(used(&store, "bob@localhost").await, (before, 1));
    let page = bob.get(&page.location).await;
    assert!(page.body.contains("The folder was emptied."));

    // Junk too (the webmail makes it when "Spam" is first used; here it exists already).
    let junk = folder(&store, "bob@localhost", "Junk").await;
    put(&store, &junk, &harness::message("j", "w", 500)).await;
    let page = bob.get(&format!("/mail/box/{}", junk.id())).await;
    assert!(page.body.contains("Empty Junk"));
    let page = bob
        .post(
            &format!("/mail/box/{}/empty", junk.id()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(store.messages(&junk).await.unwrap().is_empty());
    server.running.shutdown().await;
}

/// The token of the Undo button in a redirect's address.
fn undo_token(location: &str) -> String {
    location
        .split_once("undo=")
        .map(|(_, t)| t.split('&').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn delete_and_move_can_be_undone() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = folder(&store, "bob@localhost", "INBOX").await;
    let trash = folder(&store, "bob@localhost", "Trash").await;
    let archive = folder(&store, "bob@localhost", "Archive").await;
    let a = put(&store, &inbox, &harness::message("undo-a", "w", 500)).await;
    let b = put(&store, &inbox, &harness::message("undo-b", "w", 500)).await;
    store
        .set_flags(&inbox, &[a], FlagOp::Add, Flags::FLAGGED, &[], None)
        .await
        .unwrap();
    store
        .set_flags(&inbox, &[a], FlagOp::Add, Flags::SEEN, &[], None)
        .await
        .unwrap();
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let act = format!("/mail/box/{}/act", inbox.id());
    let page = bob
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("uid", &a.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let token = undo_token(&page.location);
    assert!(!token.is_empty(), "{}", page.location);
    // The list shows the notice with its Undo button.
    let list = bob.get(&page.location).await;
    assert!(list.body.contains("id=\"undo\""), "{}", list.body);
    assert_eq!(field(&list.body, "token"), token);
    assert!(
        store
            .messages(&inbox)
            .await
            .unwrap()
            .iter()
            .all(|m| m.uid != a)
    );
    assert_eq!(store.messages(&trash).await.unwrap().len(), 1);

    // Carol cannot use Bob's token, nor can a token be used without the form's CSRF token.
    let (mut carol, carol_csrf) = signed_in(&server, "carol@localhost").await;
    let page = carol
        .post("/mail/undo", &[("csrf", &carol_csrf), ("token", &token)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = bob
        .post("/mail/undo", &[("csrf", "x"), ("token", &token)])
        .await;
    assert_ne!(page.status, StatusCode::SEE_OTHER);
    // A token edited by hand is refused.
    let mut edited = token.clone();
    edited.insert(3, 'A');
    let page = bob
        .post("/mail/undo", &[("csrf", &csrf), ("token", &edited)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(store.messages(&trash).await.unwrap().len(), 1);

    let page = bob
        .post("/mail/undo", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location,
        format!("/mail/box/{}?done=undone", inbox.id())
    );
    assert!(store.messages(&trash).await.unwrap().is_empty());
    let back = store.messages(&inbox).await.unwrap();
    assert_eq!(back.len(), 2);
    let restored = back.iter().find(|m| m.uid != b).unwrap();
    assert!(restored.flags.contains(Flags::FLAGGED));
    assert!(restored.flags.contains(Flags::SEEN));
    // Undone once: the same token finds nothing left to move.
    let page = bob
        .post("/mail/undo", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 2);

    // A move is undone the same way.
    let page = bob
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "move"),
                ("target", &archive.id().to_string()),
                ("uid", &b.to_string()),
            ],
        )
        .await;
    let token = undo_token(&page.location);
    assert_eq!(store.messages(&archive).await.unwrap().len(), 1);
    let page = bob
        .post("/mail/undo", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(store.messages(&archive).await.unwrap().is_empty());
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 2);
    // Marking read offers no undo.
    let page = bob
        .post(
            &act,
            &[("csrf", &csrf), ("action", "read"), ("uid", &b.to_string())],
        )
        .await;
    assert!(!page.location.contains("undo="), "{}", page.location);
    server.running.shutdown().await;
}

#[tokio::test]
async fn conversations_group_replies_and_show_them_on_one_page() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = folder(&store, "bob@localhost", "INBOX").await;
    let msg = |from: &str, id: &str, refs: &str, subject: &str, body: &str| {
        format!(
            "From: {from}\r\nTo: bob@localhost\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{refs}\
             Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
        )
    };
    let first = put(
        &store,
        &inbox,
        msg(
            "Ann <ann@x.org>",
            "lunch@x.org",
            "",
            "Lunch?",
            "Noon at the usual place?",
        )
        .as_bytes(),
    )
    .await;
    put(
        &store,
        &inbox,
        msg("Zed <zed@y.org>", "other@y.org", "", "Invoice", "Attached.").as_bytes(),
    )
    .await;
    put(
        &store,
        &inbox,
        msg(
            "Cy <cy@x.org>",
            "r1@x.org",
            "In-Reply-To: <lunch@x.org>\r\n",
            "Re: Lunch?",
            "Yes, count me in.",
        )
        .as_bytes(),
    )
    .await;
    let last = put(
        &store,
        &inbox,
        msg(
            "Ann <ann@x.org>",
            "r2@x.org",
            "References: <lunch@x.org> <r1@x.org>\r\n",
            "Re: Lunch?",
            "Great, see you there.",
        )
        .as_bytes(),
    )
    .await;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    // One by one by default.
    let page = bob.get(&format!("/mail/box/{}", inbox.id())).await;
    assert!(page.body.contains("4 messages"), "{}", page.body);
    // The toggle groups, and is remembered.
    let page = bob
        .get(&format!("/mail/box/{}?view=threads", inbox.id()))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = page
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("mailroom_view=threads"), "{cookie}");
    assert!(page.body.contains("2 conversations"), "{}", page.body);
    assert!(page.body.contains("Ann, Cy"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("/mail/box/{}/thread/{last}", inbox.id()))
    );
    // The newest conversation (the lunch thread, latest arrival) comes first.
    let lunch = page.body.find("Lunch?").unwrap();
    let invoice = page.body.find("Invoice").unwrap();
    assert!(lunch < invoice);
    // The conversation page: all three, oldest first, the newest open, text shown.
    let page = bob
        .get(&format!("/mail/box/{}/thread/{first}", inbox.id()))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let a = page.body.find("Noon at the usual place?").unwrap();
    let b = page.body.find("Yes, count me in.").unwrap();
    let c = page.body.find("Great, see you there.").unwrap();
    assert!(a < b && b < c);
    assert!(!page.body.contains("Attached."));
    assert_eq!(page.body.matches("<details class=\"conv-msg").count(), 3);
    assert_eq!(page.body.matches(" open id=\"m").count(), 1);
    // Read now.
    assert!(
        store
            .messages(&inbox)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.uid != 2)
            .all(|m| m.flags.contains(Flags::SEEN))
    );
    // Carol cannot see it.
    let (mut carol, _) = signed_in(&server, "carol@localhost").await;
    let page = carol
        .get(&format!("/mail/box/{}/thread/{first}", inbox.id()))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);

    // Selecting a conversation's line acts on all its messages.
    let page = bob
        .post(
            &format!("/mail/box/{}/act", inbox.id()),
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("conv", &format!("{}:{first},3,{last}", inbox.id())),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 1);
    // Back to one by one.
    let page = bob
        .get(&format!("/mail/box/{}?view=messages", inbox.id()))
        .await;
    assert!(page.body.contains("1 message<"), "{}", page.body);
    server.running.shutdown().await;
}

/// The conversation view of a 10,000-message INBOX (threads of 1 to 5 messages): prints how
/// long the list and a conversation page take. Ignored by default (it fills a mailbox for a
/// while); `cargo test --release --test it conversations_of_ten_thousand -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn conversations_of_ten_thousand() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = folder(&store, "bob@localhost", "INBOX").await;
    let raws: Vec<Vec<u8>> = (0..10_000)
        .map(|i| {
            let root = i - i % 5;
            let refs = if i == root {
                String::new()
            } else {
                format!("References: <m{root}@x.org>\r\n")
            };
            format!(
                "From: Sender {s} <s{s}@x.org>\r\nTo: bob@localhost\r\nSubject: Topic {root}\r\n\
                 Message-ID: <m{i}@x.org>\r\n{refs}Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n\
                 Body of message {i}.\r\n",
                s = i % 37
            )
            .into_bytes()
        })
        .collect();
    for chunk in raws.chunks(500) {
        let batch: Vec<(Delivery<'_>, Vec<Target>)> = chunk
            .iter()
            .map(|raw| {
                (
                    Delivery {
                        raw,
                        internal_date: None,
                    },
                    vec![Target::mailbox(&inbox)],
                )
            })
            .collect();
        store.deliver_all(&batch).await.unwrap();
    }
    let (mut bob, _) = signed_in(&server, "bob@localhost").await;
    let list = format!("/mail/box/{}?view=threads", inbox.id());
    let thread = format!("/mail/box/{}/thread/9999", inbox.id());
    for (what, path) in [("list", &list), ("conversation", &thread)] {
        let mut times = Vec::new();
        for _ in 0..10 {
            let t = std::time::Instant::now();
            let page = bob.get(path).await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(page.status, StatusCode::OK);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{what}: p50 {:.1} ms, max {:.1} ms (10,000 messages, 2,000 threads)",
            times[5], times[9]
        );
    }
    let page = bob.get(&list).await;
    assert!(
        page.body.contains("2000 conversations"),
        "{}",
        &page.body[..500]
    );
    server.running.shutdown().await;
}
