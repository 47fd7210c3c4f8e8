//! Issue 23: the required addresses (postmaster@, abuse@, the bare postmaster), MTA-STS
//! publishing, the TLS-RPT record, the smarthost and the self-check.

use crate::harness::{TestServer, account, inbox_texts, start_with};
use crate::smtp::connect;

async fn server() -> TestServer {
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
    })
    .await;
    let store = &server.running.store;
    store.add_domain("example.net").await.unwrap();
    account(store, "bob@example.org", 0).await;
    server
}

fn body(subject: &str) -> String {
    format!(
        "From: someone@remote.test\r\nTo: postmaster\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@remote.test>\r\n\r\nHello postmaster.\r\n"
    )
}

async fn send(server: &TestServer, rcpts: &[&str], subject: &str) -> Vec<(u16, String)> {
    let mut c = connect(server, "smtp").await;
    c.expect("EHLO remote.test", 250, "").await;
    c.expect("MAIL FROM:<someone@remote.test>", 250, "").await;
    let mut replies = Vec::new();
    for rcpt in rcpts {
        replies.push(c.cmd(&format!("RCPT TO:<{rcpt}>")).await);
    }
    if replies.iter().any(|(code, _)| *code == 250) {
        c.expect("DATA", 354, "").await;
        c.send(body(subject).as_bytes()).await;
        c.expect(".", 250, "").await;
    }
    c.expect("QUIT", 221, "").await;
    replies
}

fn subjects(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

#[tokio::test]
async fn postmaster_and_abuse_are_accepted_and_reach_the_first_admin() {
    let server = server().await;
    let store = &server.running.store;
    for (rcpt, subject) in [
        ("postmaster@example.org", "p-org"),
        ("PostMaster@Example.NET", "p-net"),
        ("abuse@example.net", "a-net"),
        ("postmaster", "bare"),
        ("POSTMASTER", "bare-upper"),
    ] {
        let replies = send(&server, &[rcpt], subject).await;
        assert_eq!(replies[0].0, 250, "{rcpt}: {:?}", replies[0]);
    }
    // Other names are still unknown, and other domains still not ours.
    let replies = send(
        &server,
        &["hostmaster@example.org", "postmaster@remote.test"],
        "x",
    )
    .await;
    assert_eq!(replies[0].0, 550, "{replies:?}");
    assert_eq!(replies[1].0, 554, "{replies:?}");
    let got = subjects(&inbox_texts(store, "admin@example.org").await);
    assert_eq!(got, ["p-org", "p-net", "a-net", "bare", "bare-upper"]);
    assert!(inbox_texts(store, "bob@example.org").await.is_empty());
}

#[tokio::test]
async fn required_addresses_follow_routes_and_explicit_names_win() {
    let server = server().await;
    let store = &server.running.store;
    // Globally to bob, for example.net's abuse to a remote address (forwarded), and an alias
    // named postmaster@example.net beats both.
    store
        .set_required_route(None, "postmaster", Some("bob@example.org"))
        .await
        .unwrap();
    store
        .set_required_route(None, "abuse", Some("bob@example.org"))
        .await
        .unwrap();
    store
        .set_required_route(Some("example.net"), "abuse", Some("abuse-desk@remote.test"))
        .await
        .unwrap();
    account(store, "carol@example.net", 0).await;
    store
        .add_alias("postmaster@example.net", &["carol@example.net".into()])
        .await
        .unwrap();
    // A catch-all does not take the required addresses from their route.
    store
        .add_alias("@example.org", &["carol@example.net".into()])
        .await
        .unwrap();
    for (rcpt, subject) in [
        ("postmaster@example.org", "to-bob-1"),
        ("abuse@example.org", "to-bob-2"),
        ("postmaster@example.net", "to-carol"),
        ("abuse@example.net", "to-remote"),
    ] {
        let replies = send(&server, &[rcpt], subject).await;
        assert_eq!(replies[0].0, 250, "{rcpt}: {replies:?}");
    }
    assert_eq!(
        subjects(&inbox_texts(store, "bob@example.org").await),
        ["to-bob-1", "to-bob-2"]
    );
    assert_eq!(
        subjects(&inbox_texts(store, "carol@example.net").await),
        ["to-carol"]
    );
    assert!(inbox_texts(store, "admin@example.org").await.is_empty());
    // The remote route is forwarded (the message itself may already have bounced: the test DNS
    // knows no remote.test).
    let expansion = store
        .expand_recipient("abuse@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expansion.remote, ["abuse-desk@remote.test"]);
    assert!(expansion.local.is_empty());
    // Back to the default: the first admin.
    store
        .set_required_route(None, "postmaster", None)
        .await
        .unwrap();
    send(&server, &["postmaster@example.org"], "to-admin").await;
    assert_eq!(
        subjects(&inbox_texts(store, "admin@example.org").await),
        ["to-admin"]
    );
    // Routes only for our domains and to real addresses.
    assert!(
        store
            .set_required_route(Some("remote.test"), "abuse", Some("a@b.test"))
            .await
            .is_err()
    );
    assert!(
        store
            .set_required_route(None, "abuse", Some("not an address"))
            .await
            .is_err()
    );
    assert!(
        store
            .set_required_route(None, "hostmaster", Some("a@b.test"))
            .await
            .is_err()
    );
}
