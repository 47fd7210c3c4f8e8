//! Issue 16, low items in the webmail: form values that end up in a header (a reply's
//! message identifiers, the page to go back to after signing in) cannot add lines of their
//! own; and the submission checks reach the webmail's Send too.

use axum::http::StatusCode;

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, field};

/// bob@localhost and carol@localhost, password "secret".
async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "carol@localhost", 0).await;
    server
}

async fn signed_in(server: &TestServer) -> (Browser, String) {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", "bob@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    (b, csrf)
}

/// A reply's In-Reply-To and References come back from hidden fields: a line break in them
/// once wrote `Bcc:` (or any field) into the sent message.
#[tokio::test]
async fn message_ids_from_the_form_cannot_inject_fields() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut bob, csrf) = signed_in(&server).await;
    let send = |in_reply_to: &'static str, references: &'static str| {
        [
            ("to", "carol@localhost"),
            ("subject", "Re: hello"),
            ("body", "hi"),
            ("in_reply_to", in_reply_to),
            ("references", references),
            ("action", "send"),
        ]
    };
    for (in_reply_to, references) in [
        ("x@y>\r\nBcc: evil@remote.example", ""),
        ("x@y\r\nX-Injected: 1", ""),
        ("<x@y>", "a@b>\r\nX-Injected: 1"),
        ("<x@y>", "a@b\r\nX-Injected:\r\n b@c"),
        ("x@y> <z@w", ""),
        ("no-at-sign", ""),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(send(in_reply_to, references));
        let page = bob.post_multipart("/mail/send", &form, &[]).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{in_reply_to:?} {references:?}: {}",
            page.body
        );
        assert!(
            page.body.contains("id=\"compose-error\"") && page.body.contains("message identifier"),
            "{}",
            page.body
        );
    }
    assert!(
        harness::inbox_texts(&store, "carol@localhost")
            .await
            .is_empty()
    );
    assert!(store.queue_list().await.unwrap().is_empty());

    // Well-formed identifiers, with or without brackets, go out as they should.
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(send("<x@y.example>", "root@y.example <x@y.example>"));
    let page = bob.post_multipart("/mail/send", &form, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let sent = harness::inbox_texts(&store, "carol@localhost").await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("In-Reply-To: <x@y.example>\r\n"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("References: <root@y.example> <x@y.example>\r\n"),
        "{}",
        sent[0]
    );
    server.running.shutdown().await;
}

/// A reply to a message whose identifiers are malformed is prefilled without them, so its
/// Send is not refused.
#[tokio::test]
async fn a_reply_to_malformed_identifiers_leaves_them_out() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob_account = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    let inbox = store
        .mailbox(bob_account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let uid = store
        .deliver(
            mailroom::store::Delivery {
                raw: b"From: carol@localhost\r\nTo: bob@localhost\r\nSubject: odd\r\n\
                       Message-ID: <no at sign>\r\nReferences: <ok@x.example> <bad id>\r\n\r\nhi\r\n",
                internal_date: None,
            },
            &[mailroom::store::Target::inbox(bob_account.id)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid;
    let (mut bob, _) = signed_in(&server).await;
    let form = bob
        .get(&format!("/mail/compose?reply={}:{uid}", inbox.id()))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(field(&form.body, "in_reply_to"), "");
    assert_eq!(field(&form.body, "references"), "");
    server.running.shutdown().await;
}

/// The webmail's Send goes through the same header checks as SMTP submission; what a user
/// can type (here control characters in the subject and the display name) is encoded by the
/// message builder, so the checks never refuse an honest Send.
#[tokio::test]
async fn send_with_control_characters_typed_still_goes() {
    let server = server().await;
    let (mut bob, csrf) = signed_in(&server).await;
    let page = bob
        .post(
            "/mail/settings/profile",
            &[
                ("csrf", &csrf),
                ("display_name", "Bob\u{1} \u{200B}Builder"),
                ("signature", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost"),
                ("subject", "bell \u{7} and null \u{0}"),
                ("body", "hi"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let got = harness::inbox_texts(&server.running.store, "carol@localhost").await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.contains("\r\nFrom: =?utf-8?"), "{m}");
    assert!(
        m.contains("\r\nSubject: =?us-ascii?Q?bell_=07_and_null_=00?="),
        "{m}"
    );
    assert!(m.contains("DKIM-Signature:"), "{m}");
    server.running.shutdown().await;
}

/// `next` after signing in becomes a Location header: a line break in it gave a 500.
#[tokio::test]
async fn login_next_is_a_local_path_or_ignored() {
    let server = server().await;
    for next in [
        "/mail/\r\nSet-Cookie: stolen=1",
        "/mail/\nX: y",
        "/mail/\u{7f}",
        "/mail/caf\u{e9}",
        "//evil.example/mail",
        "/mail//evil.example",
        "https://evil.example/mail",
        "/mail\\..\\x",
        "/admin",
    ] {
        // The form keeps only what it would go to.
        let mut b = Browser::new(&server);
        let encoded = mailroom::web::admin::url_encode(next);
        let form = b.get(&format!("/mail/login?next={encoded}")).await;
        assert_eq!(form.status, StatusCode::OK, "{next:?}: {}", form.body);
        assert_eq!(field(&form.body, "next"), "/mail", "{next:?}");
        // And a forged post of it is ignored too.
        let token = field(&form.body, "login_token");
        let page = b
            .post(
                "/mail/login",
                &[
                    ("address", "bob@localhost"),
                    ("password", "secret"),
                    ("login_token", &token),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{next:?}: {}",
            page.body
        );
        assert_eq!(page.location, "/mail", "{next:?}");
        assert!(
            page.headers
                .get_all(axum::http::header::SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap_or("").contains("stolen")),
            "{next:?}"
        );
        // Signed in, the form redirects at once, to the same safe place.
        let again = b.get(&format!("/mail/login?next={encoded}")).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(again.location, "/mail", "{next:?}");
    }
    // A page of ours is still where it goes back to.
    let mut b = Browser::new(&server);
    let form = b.get("/mail/login?next=/mail/box/1%3Fpage%3D2").await;
    assert_eq!(field(&form.body, "next"), "/mail/box/1?page=2");
    server.running.shutdown().await;
}
