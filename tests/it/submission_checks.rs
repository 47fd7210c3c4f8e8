//! Who a submitted message says it is from (issue 16, item 5): over SMTP submission, a user
//! must not get a colleague's address DKIM-signed or shown as the sender by writing a header
//! that the ownership check reads one way and IMAP, the webmail or the receiving server
//! another. a@localhost is the user, b@localhost the colleague.

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::harness::{self, TestServer, account, inbox_texts, tls_client};
use crate::smtp::Client;

async fn server() -> TestServer {
    let server = harness::start().await;
    let store = &server.running.store;
    account(store, "a@localhost", 0).await;
    account(store, "b@localhost", 0).await;
    store
        .add_alias("sales@localhost", &["a@localhost".into()])
        .await
        .unwrap();
    server
}

/// Signed in as a@localhost on the implicit-TLS submission port.
async fn signed_in(server: &TestServer) -> Client<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(server.running.addr("submissions").unwrap())
        .await
        .unwrap();
    let mut c = Client::new(tls_client(server.dir.path(), tcp).await);
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO laptop", 250, "AUTH").await;
    // "\0a@localhost\0secret"
    c.expect("AUTH PLAIN AGFAbG9jYWxob3N0AHNlY3JldA==", 235, "")
        .await;
    c
}

/// Submits `header` (lines ending in CRLF) with a short body from a@localhost to
/// b@localhost; returns the reply to the final dot.
async fn submit(c: &mut Client<TlsStream<TcpStream>>, header: &[u8]) -> (u16, String) {
    c.expect("MAIL FROM:<a@localhost>", 250, "").await;
    c.expect("RCPT TO:<b@localhost>", 250, "").await;
    c.expect("DATA", 354, "").await;
    let mut data = header.to_vec();
    data.extend_from_slice(b"Subject: test\r\n\r\nHello.\r\n.\r\n");
    c.send(&data).await;
    c.reply().await
}

/// Asserts that every header is refused with `code` and `enhanced`, and that nothing reached
/// b@localhost.
async fn refused(server: &TestServer, cases: &[&[u8]], code: u16, enhanced: &str) {
    let mut c = signed_in(server).await;
    for header in cases {
        let (got, text) = submit(&mut c, header).await;
        let shown = String::from_utf8_lossy(header);
        assert_eq!(got, code, "{shown:?} -> {got} {text}");
        assert!(text.starts_with(enhanced), "{shown:?} -> {text}");
    }
    assert!(
        inbox_texts(&server.running.store, "b@localhost")
            .await
            .is_empty(),
        "something was delivered"
    );
    assert!(server.running.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn two_from_fields_are_refused() {
    let server = server().await;
    refused(
        &server,
        &[
            // mail-parser (the old check) reads the last, ENVELOPE and the webmail list the
            // first.
            b"From: b@localhost\r\nFrom: a@localhost\r\n",
            b"From: a@localhost\r\nfrom : b@localhost\r\n",
            // A line that is not a field ends the header for ENVELOPE, not for mail-parser.
            b"From: b@localhost\r\nnot a field\r\nFrom: a@localhost\r\n",
        ],
        554,
        "5.6.0",
    )
    .await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn every_author_mailbox_must_be_ours() {
    let server = server().await;
    // Several mailboxes in From need a Sender (RFC 5322 §3.6.2).
    refused(
        &server,
        &[b"From: a@localhost, b@localhost\r\n"],
        554,
        "5.6.0",
    )
    .await;
    refused(
        &server,
        &[
            b"From: a@localhost, b@localhost\r\nSender: a@localhost\r\n",
            b"From: a@localhost\r\nSender: b@localhost\r\n",
            b"From: Alice <a@localhost>, Bob <B@LOCALHOST>\r\nSender: a@localhost\r\n",
        ],
        550,
        "5.7.1",
    )
    .await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn control_and_invisible_characters_are_refused() {
    let server = server().await;
    refused(
        &server,
        &[
            b"From: b@localhost\0\r\n",
            b"From: a@localhost\r\nX-Note: \0\r\n",
            b"From: b@local\x01host\r\n",
            b"From: b@localhost\x0b\r\n",
            b"From: a@localhost\rFrom: b@localhost\r\n",
            b"From: a@localhost\r\nX-Tag: one\x7ftwo\r\n",
            // A trailing zero-width space: shown as b@localhost, not a domain of ours.
            "From: b@localhost\u{200B}\r\n".as_bytes(),
            "From: Bob <b@localhost\u{200B}>\r\n".as_bytes(),
            "From: b@localhost\u{00A0}\r\n".as_bytes(),
        ],
        554,
        "5.6.0",
    )
    .await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn own_addresses_still_go_out_signed() {
    let server = server().await;
    let mut c = signed_in(&server).await;
    for header in [
        &b"From: Alice <a@localhost>\r\n"[..],
        b"From: \"a@localhost\" <a@localhost> (me)\r\n",
        // The address as its own unquoted name, as scripts and some phones write it.
        b"From: a@localhost <a@localhost>\r\n",
        b"From: A <a@localhost>, Sales <sales@localhost>\r\nSender: a@localhost\r\n",
        b"From: sales@localhost\r\nSender: a@localhost\r\n",
        // Not one of our domains: not signed, and left to that domain's DMARC.
        b"From: a.person@remote.example\r\n",
    ] {
        let (code, text) = submit(&mut c, header).await;
        assert_eq!(code, 250, "{:?} -> {text}", String::from_utf8_lossy(header));
    }
    let got = inbox_texts(&server.running.store, "b@localhost").await;
    assert_eq!(got.len(), 6);
    for m in &got[..5] {
        assert!(m.contains("DKIM-Signature: v=1; a=rsa-sha256"), "{m}");
        assert!(m.contains("d=localhost"), "{m}");
    }
    assert!(!got[5].contains("DKIM-Signature"), "{}", got[5]);
    server.running.shutdown().await;
}
