//! The webmail through its router (`oneshot`): sign-in, isolation between accounts, CSRF,
//! reading (sanitized HTML, attachments), actions, compose/reply/forward/drafts, search,
//! folders, settings and live events.

use axum::http::StatusCode;
use mailroom::store::{Delivery, Flags, Mailbox, Store, Target};

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, field};

/// bob@localhost and carol@localhost, password "secret".
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

async fn mailbox(store: &Store, who: &str, name: &str) -> i64 {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    store.mailbox(a.id, name).await.unwrap().unwrap().id()
}

/// The store's handle of mailbox `id`, whoever owns it (tests check mail by mailbox id).
async fn handle(store: &Store, id: i64) -> Mailbox {
    for a in store.accounts(None).await.unwrap() {
        if let Some(m) = store.mailbox_by_id(a.id, id).await.unwrap() {
            return m;
        }
    }
    panic!("no mailbox {id}")
}

async fn deliver(store: &Store, who: &str, raw: &[u8]) -> u32 {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    store
        .deliver(
            Delivery {
                raw,
                internal_date: None,
            },
            &[Target::inbox(a.id)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid
}

/// A message with a text part, an HTML part (hostile bits included) and an HTML attachment.
const RICH: &str = "From: Alice <alice@example.net>\r\nTo: bob@localhost\r\nSubject: Quarterly report\r\n\
Message-ID: <report-1@example.net>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are up.\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>numbers</b> are up.</p>\
<script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\"><img src=\"https://tracker.example/p.gif\">\
<a href=\"javascript:window.pwned=1\">click</a>\r\n--alt--\r\n\
--outer\r\nContent-Type: text/html; name=\"evil.html\"\r\nContent-Disposition: attachment; filename=\"evil.html\"\r\n\r\n\
<script>alert(1)</script>\r\n--outer--\r\n";

#[tokio::test]
async fn pages_need_a_session_and_never_show_another_accounts_mail() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let uid = deliver(&store, "bob@localhost", RICH.as_bytes()).await;
    let mut anonymous = Browser::new(&server);
    for path in [
        "/mail".to_string(),
        format!("/mail/box/{inbox}"),
        format!("/mail/box/{inbox}/{uid}"),
        format!("/mail/box/{inbox}/{uid}/body"),
        format!("/mail/box/{inbox}/{uid}/part/2"),
        format!("/mail/box/{inbox}/{uid}/raw"),
        "/mail/search?q=report".into(),
        "/mail/compose".into(),
        "/mail/folders".into(),
        "/mail/settings".into(),
        "/mail/events".into(),
    ] {
        let page = anonymous.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location.starts_with("/mail/login?next=%2Fmail"),
            "{path}: {}",
            page.location
        );
    }
    for path in [
        format!("/mail/box/{inbox}/act"),
        "/mail/send".into(),
        "/mail/folders".into(),
        format!("/mail/folders/{inbox}/rename"),
        format!("/mail/folders/{inbox}/delete"),
        "/mail/settings/profile".into(),
        "/mail/settings/password".into(),
    ] {
        let page = anonymous.post(&path, &[("csrf", "x")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
    }

    // Carol, signed in, tries Bob's mailbox and message: 404 every time, and no content.
    let (mut carol, csrf) = signed_in(&server, "carol@localhost").await;
    for path in [
        format!("/mail/box/{inbox}"),
        format!("/mail/box/{inbox}/{uid}"),
        format!("/mail/box/{inbox}/{uid}/body"),
        format!("/mail/box/{inbox}/{uid}/part/2"),
        format!("/mail/box/{inbox}/{uid}/raw"),
        format!("/mail/compose?reply={inbox}:{uid}"),
        format!("/mail/compose?forward={inbox}:{uid}"),
        format!("/mail/search?q=numbers&folder={inbox}"),
    ] {
        let page = carol.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.body.contains("Quarterly"), "{path}");
        assert!(!page.body.contains("numbers"), "{path}");
    }
    let page = carol.get("/mail/search?q=numbers").await;
    assert!(page.body.contains("Nothing found"), "{}", page.body);
    let trash = mailbox(&store, "carol@localhost", "Trash").await;
    let uid_s = uid.to_string();
    let page = carol
        .post(
            &format!("/mail/box/{inbox}/act"),
            &[("csrf", &csrf), ("action", "delete"), ("uid", &uid_s)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = carol
        .post(
            &format!("/mail/box/{trash}/act"),
            &[
                ("csrf", &csrf),
                ("action", "move"),
                ("target", &inbox.to_string()),
                ("uid", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        store
            .messages(&handle(&store, inbox).await)
            .await
            .unwrap()
            .len(),
        1
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn forged_posts_are_refused() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let uid = deliver(&store, "bob@localhost", RICH.as_bytes()).await;
    let (mut bob, _) = signed_in(&server, "bob@localhost").await;
    let page = bob
        .post(
            &format!("/mail/box/{inbox}/act"),
            &[
                ("csrf", "forged"),
                ("action", "delete"),
                ("uid", &uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("to", "carol@localhost"),
                ("subject", "forged"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = bob
        .post("/mail/folders", &[("csrf", "nope"), ("name", "X")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        store
            .messages(&handle(&store, inbox).await)
            .await
            .unwrap()
            .len(),
        1
    );
    let carol_inbox = mailbox(&store, "carol@localhost", "INBOX").await;
    assert!(
        store
            .messages(&handle(&store, carol_inbox).await)
            .await
            .unwrap()
            .is_empty()
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn reading_sanitizes_html_blocks_remote_images_and_downloads_attachments() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let uid = deliver(&store, "bob@localhost", RICH.as_bytes()).await;
    let (mut bob, _) = signed_in(&server, "bob@localhost").await;

    let list = bob.get(&format!("/mail/box/{inbox}")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Quarterly report"));
    assert!(list.body.contains("msg unread"), "{}", list.body);
    assert!(list.body.contains("Has attachments"));

    let page = bob.get(&format!("/mail/box/{inbox}/{uid}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Alice &#60;alice@example.net&#62;"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("sandbox=\"allow-popups allow-popups-to-escape-sandbox\"")
    );
    assert!(page.body.contains("id=\"images-blocked\""));
    assert!(page.body.contains("evil.html"));
    assert!(!page.body.contains("<script>window.pwned"));
    // Opening marked it read.
    let m = &store.messages(&handle(&store, inbox).await).await.unwrap()[0];
    assert!(m.flags.contains(Flags::SEEN));

    let body = bob.get(&format!("/mail/box/{inbox}/{uid}/body")).await;
    assert_eq!(body.status, StatusCode::OK);
    let csp = body.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"));
    assert!(!csp.contains("https:"), "{csp}");
    assert!(body.body.contains("<b>numbers</b>"));
    for bad in ["<script", "onerror", "javascript:", "tracker.example"] {
        assert!(!body.body.contains(bad), "{bad} in {}", body.body);
    }
    let allowed = bob
        .get(&format!("/mail/box/{inbox}/{uid}/body?images=1"))
        .await;
    assert!(allowed.body.contains("https://tracker.example/p.gif"));
    assert!(
        allowed.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("img-src data: https: http:")
    );

    let file = bob.get(&format!("/mail/box/{inbox}/{uid}/part/2")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["content-type"], "application/octet-stream");
    let disposition = file.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"evil.html\""),
        "{disposition}"
    );
    assert_eq!(file.headers["x-content-type-options"], "nosniff");
    assert!(file.body.contains("<script>alert(1)</script>"));
    assert_eq!(
        bob.get(&format!("/mail/box/{inbox}/{uid}/part/5"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let raw = bob.get(&format!("/mail/box/{inbox}/{uid}/raw")).await;
    assert!(raw.body.contains("Message-ID: <report-1@example.net>"));
    server.running.shutdown().await;
}

#[tokio::test]
async fn actions_mark_flag_move_and_delete() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let trash = mailbox(&store, "bob@localhost", "Trash").await;
    let archive = mailbox(&store, "bob@localhost", "Archive").await;
    let mut uids = Vec::new();
    for i in 0..3 {
        uids.push(
            deliver(
                &store,
                "bob@localhost",
                &harness::message(&format!("m{i}"), "w", 500),
            )
            .await,
        );
    }
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let act = format!("/mail/box/{inbox}/act");
    let (a, b) = (uids[0].to_string(), uids[1].to_string());
    let page = bob
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "read"),
                ("uid", &a),
                ("uid", &b),
            ],
        )
        .await;
    assert_eq!(page.location, format!("/mail/box/{inbox}?done=updated"));
    let flags: Vec<bool> = store
        .messages(&handle(&store, inbox).await)
        .await
        .unwrap()
        .iter()
        .map(|m| m.flags.contains(Flags::SEEN))
        .collect();
    assert_eq!(flags, vec![true, true, false]);
    bob.post(&act, &[("csrf", &csrf), ("action", "flag"), ("uid", &a)])
        .await;
    assert!(
        store.messages(&handle(&store, inbox).await).await.unwrap()[0]
            .flags
            .contains(Flags::FLAGGED)
    );
    let page = bob
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "move"),
                ("target", &archive.to_string()),
                ("uid", &a),
            ],
        )
        .await;
    // The notice offers Undo (tests/it/webmail_lists.rs).
    assert!(
        page.location
            .starts_with(&format!("/mail/box/{inbox}?done=moved&undo=")),
        "{}",
        page.location
    );
    assert_eq!(
        store
            .messages(&handle(&store, archive).await)
            .await
            .unwrap()
            .len(),
        1
    );
    let page = bob
        .post(&act, &[("csrf", &csrf), ("action", "delete"), ("uid", &b)])
        .await;
    assert!(
        page.location
            .starts_with(&format!("/mail/box/{inbox}?done=deleted&undo=")),
        "{}",
        page.location
    );
    assert_eq!(
        store
            .messages(&handle(&store, inbox).await)
            .await
            .unwrap()
            .len(),
        1
    );
    let in_trash = store.messages(&handle(&store, trash).await).await.unwrap();
    assert_eq!(in_trash.len(), 1);
    // From Trash, delete is final.
    let page = bob
        .post(
            &format!("/mail/box/{trash}/act"),
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("uid", &in_trash[0].uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.location, format!("/mail/box/{trash}?done=purged"));
    assert!(
        store
            .messages(&handle(&store, trash).await)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting from a message page returns to its folder.
    let c = uids[2].to_string();
    let page = bob
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("uid", &c),
                ("back", &format!("/mail/box/{inbox}/{c}")),
            ],
        )
        .await;
    assert!(
        page.location
            .starts_with(&format!("/mail/box/{inbox}?done=deleted&undo=")),
        "{}",
        page.location
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn send_reply_forward_and_drafts_go_through_submission() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let uid = deliver(&store, "bob@localhost", RICH.as_bytes()).await;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;

    // Validation next to the field; nothing sent.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "not an address"),
                ("subject", "x"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"to-error\""), "{}", page.body);
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "nobody@localhost"),
                ("subject", "x"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("no such mailbox"), "{}", page.body);

    // Reply, prefilled from the original.
    let form = bob.get(&format!("/mail/compose?reply={inbox}:{uid}")).await;
    assert!(
        form.body.contains("value=\"alice@example.net\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("value=\"Re: Quarterly report\""));
    assert!(form.body.contains("&#62; The numbers are up."));
    let in_reply_to = field(&form.body, "in_reply_to");
    assert_eq!(in_reply_to, "report-1@example.net");

    // Send to a local user with an attachment: carol gets it, Sent keeps a copy, the original
    // is marked answered.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "Carol <carol@localhost>"),
                ("cc", ""),
                ("bcc", ""),
                ("subject", "Re: Quarterly report"),
                ("body", "Looks good.\n\n> The numbers are up."),
                ("in_reply_to", &in_reply_to),
                ("references", "report-1@example.net"),
                ("reply_of", &format!("{inbox}:{uid}")),
                ("action", "send"),
            ],
            &[("attachment", "notes.txt", "text/plain", b"attached notes\n")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let sent = mailbox(&store, "bob@localhost", "Sent").await;
    assert_eq!(page.location, format!("/mail/box/{sent}?done=sent"));
    let carol = harness::inbox_texts(&store, "carol@localhost").await;
    assert_eq!(carol.len(), 1);
    let m = &carol[0];
    assert!(m.contains("In-Reply-To: <report-1@example.net>"), "{m}");
    assert!(m.contains("Subject: Re: Quarterly report"));
    assert!(m.contains("notes.txt"), "{m}");
    assert!(m.contains("DKIM-Signature:"), "signed on the way: {m}");
    assert!(!m.to_ascii_lowercase().contains("\r\nbcc:"));
    let sent_copy = store.messages(&handle(&store, sent).await).await.unwrap();
    assert_eq!(sent_copy.len(), 1);
    assert!(sent_copy[0].flags.contains(Flags::SEEN));
    assert!(
        store.messages(&handle(&store, inbox).await).await.unwrap()[0]
            .flags
            .contains(Flags::ANSWERED)
    );

    // Forward: the original goes along as an attachment.
    let form = bob
        .get(&format!("/mail/compose?forward={inbox}:{uid}"))
        .await;
    assert!(form.body.contains("Fwd: Quarterly report"));
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost"),
                ("subject", "Fwd: Quarterly report"),
                ("body", "FYI"),
                ("forward_of", &format!("{inbox}:{uid}")),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let carol = harness::inbox_texts(&store, "carol@localhost").await;
    assert!(carol[1].contains("message/rfc822"), "{}", carol[1]);
    assert!(carol[1].contains("Message-ID: <report-1@example.net>"));

    // A draft goes to Drafts, flagged as a draft; no recipient needed.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", ""),
                ("subject", "Unfinished"),
                ("body", "tbc"),
                ("action", "draft"),
            ],
            &[],
        )
        .await;
    let drafts = mailbox(&store, "bob@localhost", "Drafts").await;
    assert_eq!(page.location, format!("/mail/box/{drafts}?done=draft"));
    let d = store.messages(&handle(&store, drafts).await).await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(d[0].flags.contains(Flags::DRAFT));
    server.running.shutdown().await;
}

#[tokio::test]
async fn uploads_over_the_limit_get_a_clear_error() {
    let server = harness::start_with(|c| c.limits.max_message_size = 64 * 1024).await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    // Over the request limit (the message limit plus 1 MB for form overhead).
    let big = vec![b'x'; 1200 * 1024];
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "bob@localhost"),
                ("subject", "big"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[("attachment", "big.bin", "application/octet-stream", &big)],
        )
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    assert!(page.body.contains("larger than"), "{}", page.body);
    // Under the request limit but over the message limit once encoded: the form says so.
    let medium = vec![b'y'; 60 * 1024];
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "bob@localhost"),
                ("subject", "medium"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[(
                "attachment",
                "medium.bin",
                "application/octet-stream",
                &medium,
            )],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"attach-error\""));
    server.running.shutdown().await;
}

#[tokio::test]
async fn search_folders_and_settings() {
    let server = server().await;
    let store = server.running.store.clone();
    deliver(&store, "bob@localhost", RICH.as_bytes()).await;
    for i in 0..5 {
        deliver(
            &store,
            "bob@localhost",
            &harness::message(&format!("plain{i}"), "giraffe", 800),
        )
        .await;
    }
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let count = |html: &str| html.matches("data-uid=").count();
    assert_eq!(count(&bob.get("/mail/search?q=giraffe").await.body), 5);
    assert_eq!(count(&bob.get("/mail/search?q=numbers").await.body), 1);
    assert_eq!(
        count(
            &bob.get("/mail/search?from=alice&subject=quarterly")
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(&bob.get("/mail/search?q=&attachment=1").await.body),
        1
    );
    assert_eq!(
        count(
            &bob.get("/mail/search?since=2000-01-01&q=giraffe")
                .await
                .body
        ),
        5
    );
    assert_eq!(
        count(
            &bob.get("/mail/search?before=2000-01-01&q=giraffe")
                .await
                .body
        ),
        0
    );
    assert_eq!(
        bob.get("/mail/search?since=yesterday").await.status,
        StatusCode::BAD_REQUEST
    );

    // Folders: create (with a parent), rename, delete; standard ones stay.
    let page = bob
        .post(
            "/mail/folders",
            &[("csrf", &csrf), ("name", "Projects/Zoo")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let bob_id = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap()
        .id;
    let zoo = store
        .mailbox(bob_id, "Projects/Zoo")
        .await
        .unwrap()
        .unwrap();
    assert!(store.mailbox(bob_id, "Projects").await.unwrap().is_some());
    // The webmail subscribes the folders it makes (IMAP CREATE would not), so clients that
    // show only subscribed folders show them.
    let subscribed = |names: &[&str]| {
        let mut all: Vec<String> = mailroom::store::DEFAULT_MAILBOXES
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(names.iter().map(|n| n.to_string()))
            .collect();
        all.sort_by(|a, b| (a != "INBOX", a).cmp(&(b != "INBOX", b)));
        all
    };
    assert_eq!(
        store.subscriptions(bob_id).await.unwrap(),
        subscribed(&["Projects", "Projects/Zoo"])
    );
    let page = bob
        .post(
            "/mail/folders",
            &[("csrf", &csrf), ("name", "Projects/Zoo")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"name-error\""));
    let page = bob
        .post(
            &format!("/mail/folders/{}/rename", zoo.id()),
            &[("csrf", &csrf), ("name", "Projects/Safari")],
        )
        .await;
    assert_eq!(page.location, "/mail/folders?done=folder-renamed");
    assert!(
        store
            .mailbox(bob_id, "Projects/Safari")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.subscriptions(bob_id).await.unwrap(),
        subscribed(&["Projects", "Projects/Safari"])
    );
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let page = bob
        .post(
            &format!("/mail/folders/{inbox}/rename"),
            &[("csrf", &csrf), ("name", "Elsewhere")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bob.post(&format!("/mail/folders/{inbox}/delete"), &[("csrf", &csrf)])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let page = bob
        .post(
            &format!("/mail/folders/{}/delete", zoo.id()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.location, "/mail/folders?done=folder-deleted");
    assert!(
        store
            .mailbox(bob_id, "Projects/Safari")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.subscriptions(bob_id).await.unwrap(),
        subscribed(&["Projects"])
    );

    // Settings: name and signature; the signature starts new messages.
    let page = bob
        .post(
            "/mail/settings/profile",
            &[
                ("csrf", &csrf),
                ("display_name", "Bob Builder"),
                ("signature", "Bob\nbuilder.example"),
            ],
        )
        .await;
    assert_eq!(page.location, "/mail/settings?done=profile");
    let form = bob.get("/mail/compose").await;
    assert!(
        form.body.contains("-- \nBob\nbuilder.example"),
        "{}",
        form.body
    );
    let page = bob
        .post(
            "/mail/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "a new long password"),
                ("repeat", "a new long password"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"current-error\""));
    let page = bob
        .post(
            "/mail/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "secret"),
                ("new", "a new long password"),
                ("repeat", "another one entirely"),
            ],
        )
        .await;
    assert!(page.body.contains("id=\"new-error\""));
    let page = bob
        .post(
            "/mail/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "secret"),
                ("new", "a new long password"),
                ("repeat", "a new long password"),
            ],
        )
        .await;
    assert_eq!(page.location, "/mail/settings?done=password");
    let bob_account = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_account.display_name, "Bob Builder");
    assert!(
        mailroom::auth::password::verify("a new long password", &bob_account.password_hash).await
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn live_events_announce_new_mail() {
    use futures::StreamExt;
    use tower::ServiceExt;
    let server = server().await;
    let store = server.running.store.clone();
    let (bob, _) = signed_in(&server, "bob@localhost").await;
    let cookies: Vec<String> = bob
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut req = axum::http::Request::get("/mail/events")
        .header("cookie", cookies.join("; "))
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut().insert(bob.client);
    let res = bob.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body().into_data_stream();
    // Carol's mail is not Bob's business; Bob's is.
    deliver(&store, "carol@localhost", b"Subject: c\r\n\r\nc\r\n").await;
    deliver(&store, "bob@localhost", b"Subject: b\r\n\r\nb\r\n").await;
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(chunk.to_vec()).unwrap();
    assert_eq!(text, format!("event: changed\ndata: {inbox}\n\n"));
    // The page goes away: its subscription ends with it, without waiting for another change.
    let listening = store.changes().listeners();
    drop(body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.changes().listeners() >= listening {
        assert!(
            std::time::Instant::now() < deadline,
            "the event stream outlived its page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn search_results_act_on_the_right_folder() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let archive = mailbox(&store, "bob@localhost", "Archive").await;
    let trash = mailbox(&store, "bob@localhost", "Trash").await;
    let first = deliver(
        &store,
        "bob@localhost",
        &harness::message("kiwi-one", "kiwi", 500),
    )
    .await;
    deliver(
        &store,
        "bob@localhost",
        &harness::message("kiwi-two", "kiwi", 500),
    )
    .await;
    store
        .move_messages(
            &handle(&store, inbox).await,
            &[first],
            &handle(&store, archive).await,
        )
        .await
        .unwrap();
    // Archive's message now has UID 1, like INBOX's first message had: same number, other folder.
    let archived = store
        .messages(&handle(&store, archive).await)
        .await
        .unwrap()[0]
        .uid;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let results = bob.get("/mail/search?q=kiwi").await;
    let pair = format!("{archive}:{archived}");
    assert!(
        results.body.contains(&format!("value=\"{pair}\"")),
        "{}",
        results.body
    );
    assert!(
        results.body.contains("/mail/search?q=kiwi"),
        "actions come back to the results"
    );
    let page = bob
        .post(
            &format!("/mail/box/{inbox}/act"),
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("msg", &pair),
                ("back", "/mail/search?q=kiwi"),
            ],
        )
        .await;
    assert_eq!(page.location, "/mail/search?q=kiwi&done=deleted");
    assert!(
        store
            .messages(&handle(&store, archive).await)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .messages(&handle(&store, inbox).await)
            .await
            .unwrap()
            .len(),
        1,
        "INBOX untouched"
    );
    assert_eq!(
        store
            .messages(&handle(&store, trash).await)
            .await
            .unwrap()
            .len(),
        1
    );
    // Another account's folder named in a pair: 404, nothing changes.
    let carol_inbox = mailbox(&store, "carol@localhost", "INBOX").await;
    deliver(&store, "carol@localhost", &harness::message("c", "c", 300)).await;
    let page = bob
        .post(
            &format!("/mail/box/{inbox}/act"),
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("msg", &format!("{carol_inbox}:1")),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        store
            .messages(&handle(&store, carol_inbox).await)
            .await
            .unwrap()
            .len(),
        1
    );
    server.running.shutdown().await;
}

/// Every URL-encoded webmail form goes through `session::Posted`, which checks the token and
/// the Origin before the handler runs: a forged, missing or cross-site post changes nothing.
/// (Compose, the one multipart form, checks by hand; `send_reply_forward_and_drafts…` and the
/// ownership tables cover it.)
#[tokio::test]
async fn every_webmail_form_checks_token_and_origin() {
    use axum::body::Body;
    use axum::http::{Request, header};
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let archive = mailbox(&store, "bob@localhost", "Archive").await;
    let uid = deliver(&store, "bob@localhost", b"Subject: keep\r\n\r\nkeep\r\n").await;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let uid = uid.to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/mail/folders".into(), vec![("name", "Forged")]),
        (
            format!("/mail/folders/{archive}/rename"),
            vec![("name", "Renamed")],
        ),
        (format!("/mail/folders/{archive}/delete"), vec![]),
        (
            "/mail/settings/profile".into(),
            vec![("display_name", "Mallory"), ("signature", "x")],
        ),
        (
            "/mail/settings/password".into(),
            vec![
                ("current", "secret"),
                ("new", "a forged new password"),
                ("repeat", "a forged new password"),
            ],
        ),
        (
            format!("/mail/box/{inbox}/act"),
            vec![("action", "delete"), ("uid", &uid)],
        ),
    ];
    for (path, fields) in &posts {
        for token in [None, Some("forged")] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let page = bob.post(path, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {token:?}");
        }
        let mut body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", mailroom::web::admin::url_encode(v)))
            .collect();
        body.push(format!("csrf={csrf}"));
        let req = Request::post(path.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::from(body.join("&")))
            .unwrap();
        assert_eq!(
            bob.send(req).await.status,
            StatusCode::FORBIDDEN,
            "{path} cross-site"
        );
    }
    let bob_account = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    assert!(mailroom::auth::password::verify("secret", &bob_account.password_hash).await);
    assert_ne!(bob_account.display_name, "Mallory");
    let names: Vec<String> = store
        .mailboxes(bob_account.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.contains(&"Archive".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "Forged" || n == "Renamed"),
        "{names:?}"
    );
    let inbox = store
        .mailbox(bob_account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 1);
    server.running.shutdown().await;
}
