//! SMTP through the whole server: inbound MX policy (no open relay), submission, limits, bad
//! input, pipelining, BDAT, STARTTLS.

use std::time::Duration;

use mailroom::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{TestServer, account, start_with, tls_client};

/// A line-oriented SMTP client over any stream.
pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            io: BufReader::new(stream),
        }
    }

    /// Reads one (possibly multi-line) reply: its code and its lines' text.
    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "connection closed; so far: {text:?}");
            assert!(line.ends_with("\r\n"), "CRLF: {line:?}");
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).expect("code");
            text.push_str(line.get(4..).unwrap_or("").trim_end());
            text.push('\n');
            if line.as_bytes().get(3) == Some(&b' ') {
                return (code, text.trim_end().to_string());
            }
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.expect("write");
    }

    /// Sends a command line and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a command and asserts on the reply code and that its text contains `part`.
    pub async fn expect(&mut self, line: &str, code: u16, part: &str) -> String {
        let (c, text) = self.cmd(line).await;
        assert_eq!(c, code, "{line} -> {c} {text}");
        assert!(text.contains(part), "{line} -> {c} {text:?} lacks {part:?}");
        text
    }

    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }

    /// True when the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

pub async fn connect(server: &TestServer, kind: &str) -> Client<TcpStream> {
    let tcp = TcpStream::connect(server.running.addr(kind).unwrap())
        .await
        .unwrap();
    let mut c = Client::new(tcp);
    let (code, text) = c.reply().await;
    assert_eq!(code, 220, "{text}");
    c
}

async fn server() -> TestServer {
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.limits.max_message_size = 64 * 1024;
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    server
}

/// Messages in the INBOX of `address`, raw.
async fn inbox(store: &Store, address: &str) -> Vec<Vec<u8>> {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in store.messages(&inbox).await.unwrap() {
        out.push(store.message_body(&inbox, m.uid).await.unwrap());
    }
    out
}

const BODY: &str = "From: alice@remote.net\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nHi Bob.\r\n..dot line\r\n";

#[tokio::test]
async fn inbound_delivery_adds_trace_headers_and_stores_byte_for_byte() {
    let server = server().await;
    let mut c = connect(&server, "smtp").await;
    let ehlo = c
        .expect("EHLO client.remote.net", 250, "mail.example.org")
        .await;
    for cap in [
        "PIPELINING",
        "SIZE 65536",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(cap), "{cap} in {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "no AUTH on the MX port: {ehlo}");
    c.expect("MAIL FROM:<alice@remote.net> SIZE=200", 250, "2.1.0")
        .await;
    c.expect("RCPT TO:<Bob@Example.org>", 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(BODY.as_bytes()).await;
    c.expect(".", 250, "2.0.0").await;
    c.expect("QUIT", 221, "").await;

    let stored = inbox(&server.running.store, "bob@example.org").await;
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8(stored[0].clone()).unwrap();
    assert!(text.starts_with("Return-Path: <alice@remote.net>\r\nReceived: from client.remote.net ([127.0.0.1])\r\n\tby mail.example.org (Mailroom) with ESMTP\r\n"), "{text}");
    assert!(text.contains("\tfor <Bob@Example.org>;"), "{text}");
    let body = BODY.replace("\r\n..dot", "\r\n.dot");
    assert!(
        text.ends_with(&body),
        "message kept byte for byte after the trace headers: {text:?}"
    );
}

#[tokio::test]
async fn the_mx_refuses_to_relay_and_unknown_users() {
    let server = server().await;
    let store = &server.running.store;
    store
        .add_alias("fwd@example.org", &["someone@remote.net".into()])
        .await
        .unwrap();
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO relay.test", 250, "").await;
    c.expect("MAIL FROM:<spammer@remote.net>", 250, "").await;
    c.expect("RCPT TO:<nobody@example.org>", 550, "5.1.1").await;
    for rcpt in [
        "<user@remote.net>",
        "<@example.org:user@remote.net>",
        "<user@remote.net@example.org>",
        "<user%remote.net@example.org>",
        "<\"user@remote.net\"@example.org>",
        "<user@example.org.remote.net>",
    ] {
        let (code, text) = c.cmd(&format!("RCPT TO:{rcpt}")).await;
        assert!(code >= 500, "{rcpt} must be refused: {code} {text}");
    }
    c.expect(
        "RCPT TO:<user@remote.net>",
        554,
        "5.7.1 Relay access denied",
    )
    .await;
    // Forwarding to another server is accepted (and queued, see outbound.rs); an SRS address
    // we did not make is nobody.
    c.expect("RCPT TO:<fwd@example.org>", 250, "").await;
    c.expect(
        "RCPT TO:<SRS0=ABCD=AA=remote.net=user@example.org>",
        550,
        "5.1.1",
    )
    .await;
    // Each refusal counted as an error: a fresh session for the rest.
    c.expect("QUIT", 221, "").await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO relay.test", 250, "").await;
    c.expect("MAIL FROM:<spammer@remote.net>", 250, "").await;
    c.expect("DATA", 554, "No valid recipients").await;
    c.expect("RSET", 250, "").await;
    c.expect("MAIL FROM:<>", 250, "").await;
    c.expect("RCPT TO:<user@remote.net>", 554, "5.7.1").await;
    // Mixed: the local recipient is accepted, the remote one refused, only bob gets it.
    c.expect("RSET", 250, "").await;
    c.expect("MAIL FROM:<x@remote.net>", 250, "").await;
    c.expect("RCPT TO:<other@remote.net>", 554, "5.7.1").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(BODY.as_bytes()).await;
    c.expect(".", 250, "").await;
    assert_eq!(inbox(store, "bob@example.org").await.len(), 1);
    let (blobs, _) = store.blob_stats().await.unwrap();
    assert_eq!(blobs, 1, "nothing else stored anywhere");
}

#[tokio::test]
async fn aliases_and_catch_alls_deliver_to_their_accounts() {
    let server = server().await;
    let store = &server.running.store;
    // The spam filter off: its field differs per account (tests/it/spam_verdict.rs), and this
    // test is about one body for every route.
    store
        .set_domain_spam_policy(&mailroom::store::DomainSpamPolicy {
            domain: "example.org".into(),
            enabled: false,
            junk: None,
            reject: None,
        })
        .await
        .unwrap();
    account(store, "carol@example.org", 0).await;
    store
        .add_alias(
            "team@example.org",
            &["bob@example.org".into(), "carol@example.org".into()],
        )
        .await
        .unwrap();
    store
        .add_alias("@example.org", &["carol@example.org".into()])
        .await
        .unwrap();
    let mut c = connect(&server, "smtp").await;
    c.expect("HELO old.client", 250, "").await;
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    c.expect("RCPT TO:<team@example.org>", 250, "").await;
    c.expect("RCPT TO:<whatever@example.org>", 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(BODY.as_bytes()).await;
    c.expect(".", 250, "").await;
    assert_eq!(
        inbox(store, "bob@example.org").await.len(),
        1,
        "one copy however many routes"
    );
    assert_eq!(inbox(store, "carol@example.org").await.len(), 1);
    let text = String::from_utf8(inbox(store, "carol@example.org").await.remove(0)).unwrap();
    assert!(text.contains("with SMTP\r\n"), "HELO gives SMTP: {text}");
    assert!(!text.contains("\tfor <"), "no single recipient: {text}");
    assert_eq!(
        store.blob_stats().await.unwrap().0,
        1,
        "the body is stored once"
    );
}

#[tokio::test]
async fn limits_recipients_size_and_quota() {
    let server = server().await;
    let store = &server.running.store;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO x", 250, "").await;
    c.expect("MAIL FROM:<a@remote.net> SIZE=999999", 552, "5.3.4")
        .await;
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    for _ in 0..100 {
        c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    }
    c.expect("RCPT TO:<bob@example.org>", 452, "4.5.3").await;
    c.expect("DATA", 354, "").await;
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(70 * 1024));
    c.send(big.as_bytes()).await;
    let (code, text) = c.reply().await;
    assert_eq!((code, text.contains("5.3.4")), (552, true), "{text}");
    assert!(inbox(store, "bob@example.org").await.is_empty());

    // Quota: refused at RCPT once full, or at the end of DATA when this message overflows it.
    account(store, "full@example.org", 3000).await;
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    c.expect("RCPT TO:<full@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(format!("Subject: q\r\n\r\n{}\r\n.\r\n", "y".repeat(4000)).as_bytes())
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(
        text.contains("5.2.2") && text.contains("full@example.org"),
        "{text}"
    );
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    c.expect("RCPT TO:<full@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    // 2,000 bytes and the trace and spam fields fit in the 3,000 left.
    c.send(format!("Subject: q\r\n\r\n{}\r\n.\r\n", "y".repeat(2000)).as_bytes())
        .await;
    assert_eq!(c.reply().await.0, 250);
    c.expect("MAIL FROM:<a@remote.net> SIZE=1000", 250, "")
        .await;
    c.expect("RCPT TO:<full@example.org>", 452, "4.2.2").await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = server().await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO pipe", 250, "PIPELINING").await;
    c.send(b"MAIL FROM:<a@remote.net>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 550);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 354);
    c.send(
        format!("{BODY}.\r\nMAIL FROM:<b@remote.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 354);
    c.send(b"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 221);
    assert_eq!(
        inbox(&server.running.store, "bob@example.org").await.len(),
        2
    );
}

#[tokio::test]
async fn bdat_chunks_are_stored_as_sent() {
    let server = server().await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO chunky", 250, "CHUNKING").await;
    c.expect("MAIL FROM:<a@remote.net> BODY=8BITMIME", 250, "")
        .await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    let part1 = "Subject: bdat\r\n\r\nline one\r\n.not stuffed\r\n";
    let part2 = "line two\r\n";
    c.send(format!("BDAT {}\r\n{part1}", part1.len()).as_bytes())
        .await;
    assert_eq!(c.reply().await.0, 250);
    c.send(format!("BDAT {} LAST\r\n{part2}", part2.len()).as_bytes())
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    let stored = String::from_utf8(
        inbox(&server.running.store, "bob@example.org")
            .await
            .remove(0),
    )
    .unwrap();
    assert!(stored.ends_with(&format!("{part1}{part2}")), "{stored}");
    // BDAT without a transaction: the chunk is still consumed and the session goes on.
    c.send(b"BDAT 5 LAST\r\nabcde").await;
    assert_eq!(c.reply().await.0, 503);
    c.expect("NOOP", 250, "").await;
}

#[tokio::test]
async fn starttls_on_the_mx_is_recorded_in_received() {
    let server = server().await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO tls.client", 250, "STARTTLS").await;
    c.expect("STARTTLS", 220, "").await;
    let tls = tls_client(server.dir.path(), c.into_inner()).await;
    let mut c = Client::new(tls);
    c.expect("MAIL FROM:<a@remote.net>", 503, "EHLO").await;
    let ehlo = c.expect("EHLO tls.client", 250, "").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.expect("STARTTLS", 503, "already").await;
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(BODY.as_bytes()).await;
    c.expect(".", 250, "").await;
    let text = String::from_utf8(
        inbox(&server.running.store, "bob@example.org")
            .await
            .remove(0),
    )
    .unwrap();
    assert!(text.contains("with ESMTPS (TLS 1.3 TLS13_"), "{text}");
}

#[tokio::test]
async fn submission_requires_tls_auth_and_an_owned_sender() {
    // The queue must not finish with the remote copy before the test reads it: with the test
    // DNS server's quick NXDOMAIN it bounced at once under load; the discard port answers
    // nothing, so the copy stays queued (a temporary failure at worst).
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.limits.max_message_size = 64 * 1024;
        c.dns.nameservers = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    let store = &server.running.store;
    account(store, "carol@example.org", 0).await;
    store
        .add_alias("sales@example.org", &["bob@example.org".into()])
        .await
        .unwrap();

    let mut c = connect(&server, "submission").await;
    let ehlo = c.expect("EHLO laptop", 250, "STARTTLS").await;
    assert!(!ehlo.contains("AUTH"), "no AUTH before TLS: {ehlo}");
    c.expect("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=", 530, "5.7.0")
        .await;
    c.expect("MAIL FROM:<bob@example.org>", 530, "5.7.0").await;
    c.expect("STARTTLS", 220, "").await;
    let mut c = Client::new(tls_client(server.dir.path(), c.into_inner()).await);
    c.expect("EHLO laptop", 250, "AUTH PLAIN LOGIN").await;
    c.expect(
        "MAIL FROM:<bob@example.org>",
        530,
        "Authentication required",
    )
    .await;
    // "\0bob@example.org\0wrong"
    c.expect("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==", 535, "5.7.8")
        .await;
    c.expect("AUTH PLAIN", 334, "").await;
    c.expect("AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=", 235, "2.7.0")
        .await;
    c.expect(
        "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=",
        503,
        "Already",
    )
    .await;
    c.expect("MAIL FROM:<carol@example.org>", 550, "5.7.1")
        .await;
    c.expect("MAIL FROM:<>", 550, "5.7.1").await;
    c.expect("MAIL FROM:<sales@example.org>", 250, "").await;
    c.expect("RCPT TO:<someone@remote.net>", 250, "").await;
    c.expect("RCPT TO:<carol@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"From: sales@example.org\r\nSubject: offer\r\n\r\nBuy now.\r\n")
        .await;
    c.expect(".", 250, "").await;
    let text = String::from_utf8(inbox(store, "carol@example.org").await.remove(0)).unwrap();
    assert!(
        text.starts_with("Return-Path: <sales@example.org>\r\nReceived: "),
        "{text}"
    );
    assert!(text.contains("\r\nDate: "), "Date added: {text}");
    assert!(
        text.contains("\r\nMessage-ID: <") && text.contains("@mail.example.org>\r\n"),
        "{text}"
    );
    assert!(text.contains("with ESMTPSA"), "{text}");
    // The remote recipient's copy is in the queue, committed before the 250, without our
    // Return-Path (the receiving server adds its own).
    let queued = store.queue_list().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].sender, "sales@example.org");
    assert_eq!(queued[0].recipients[0].address, "someone@remote.net");
    let (_, raw, _, _) = store.queued_message(queued[0].id).await.unwrap().unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.starts_with("Received: from laptop"), "{raw}");
    assert!(raw.ends_with("Buy now.\r\n"), "{raw}");
}

#[tokio::test]
async fn submissions_port_is_implicit_tls_with_auth_login() {
    let server = server().await;
    let tcp = TcpStream::connect(server.running.addr("submissions").unwrap())
        .await
        .unwrap();
    let mut c = Client::new(tls_client(server.dir.path(), tcp).await);
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO phone", 250, "AUTH PLAIN LOGIN").await;
    c.expect("AUTH LOGIN", 334, "VXNlcm5hbWU6").await;
    c.expect("Ym9iQGV4YW1wbGUub3Jn", 334, "UGFzc3dvcmQ6").await;
    c.expect("c2VjcmV0", 235, "").await;
    c.expect("MAIL FROM:<bob@example.org>", 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: note to self\r\n\r\nx\r\n").await;
    c.expect(".", 250, "").await;
    assert_eq!(
        inbox(&server.running.store, "bob@example.org").await.len(),
        1
    );
    c.expect("AUTH LOGIN", 503, "").await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_session_goes_on() {
    let server = server().await;
    let mut c = connect(&server, "smtp").await;
    c.expect("MAIL FROM:<a@remote.net>", 503, "5.5.1").await;
    c.expect("EHLO x", 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 503, "5.5.1").await;
    c.expect("DATA", 503, "5.5.1").await;
    c.expect("FROB", 500, "5.5.2").await;
    c.expect(&format!("NOOP {}", "a".repeat(1200)), 500, "5.5.2")
        .await;
    c.send(b"NO\0OP\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    c.expect("MAIL FROM:bad", 501, "").await;
    c.expect("VRFY bob", 252, "2.5.0").await;
    c.expect("HELP", 214, "").await;
    c.expect("NOOP", 250, "").await;
    // Bare LF lines are taken as CRLF lines; only CRLF.CRLF ends the data.
    c.expect("MAIL FROM:<a@remote.net>", 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: lf\n\nline\n.\nstill data\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let text = String::from_utf8(
        inbox(&server.running.store, "bob@example.org")
            .await
            .remove(0),
    )
    .unwrap();
    assert!(
        text.ends_with("Subject: lf\r\n\r\nline\r\n.\r\nstill data\r\n"),
        "{text:?}"
    );
    // Too many errors (20) end the session.
    for _ in 0..12 {
        c.expect("FROB", 500, "").await;
    }
    c.send(
        b"FROB
",
    )
    .await;
    assert_eq!(c.reply().await.0, 500);
    assert_eq!(c.reply().await.0, 421);
    assert!(c.closed().await);
}
