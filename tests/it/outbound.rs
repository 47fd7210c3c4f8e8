//! The outbound queue end to end: a user submits over 587, the queue looks the destination up
//! in a DNS server on loopback and delivers to a peer on loopback: a second Mailroom, or a
//! scripted sink that answers what each test needs (451 then 250, 550, ...).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, inbox_texts, start_with, tls_client};
use crate::smtp::Client;

/// What the sink received: envelope and content.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    rcpts: Vec<String>,
    data: String,
}

/// How the sink answers RCPT: (recipient, how many RCPTs it has seen for it before) -> reply.
type Script = Arc<dyn Fn(&str, usize) -> &'static str + Send + Sync>;

#[derive(Clone)]
struct Sink {
    received: Arc<Mutex<Vec<Received>>>,
    rcpt_counts: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    /// A scripted SMTP server on `ip:port` (port 0: any).
    async fn start(ip: &str, port: u16, script: Script) -> (Sink, u16) {
        let listener = TcpListener::bind((ip, port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            received: Default::default(),
            rcpt_counts: Default::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(s.clone().session(tcp, script.clone()));
            }
        });
        (sink, port)
    }

    async fn session(self, tcp: TcpStream, script: Script) {
        let (r, mut w) = tcp.into_split();
        let mut r = BufReader::new(r);
        let _ = w.write_all(b"220 sink.test ESMTP\r\n").await;
        let mut from = String::new();
        let mut rcpts = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = between(&line, '<', '>');
                rcpts.clear();
                "250 2.1.0 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = between(&line, '<', '>');
                let seen = {
                    let mut counts = self.rcpt_counts.lock().unwrap();
                    let n = counts.iter().filter(|c| **c == rcpt).count();
                    counts.push(rcpt.clone());
                    n
                };
                let reply = script(&rcpt, seen);
                if reply.starts_with('2') {
                    rcpts.push(rcpt);
                }
                format!("{reply}\r\n")
            } else if upper.starts_with("DATA") {
                let _ = w.write_all(b"354 go on\r\n").await;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.received.lock().unwrap().push(Received {
                    from: from.clone(),
                    rcpts: rcpts.clone(),
                    data,
                });
                "250 2.0.0 queued\r\n".into()
            } else if upper.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n").await;
                return;
            } else {
                "250 ok\r\n".into()
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn between(line: &str, open: char, close: char) -> String {
    line.split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map(|(inside, _)| inside.to_string())
        .unwrap_or_default()
}

fn accept_all() -> Script {
    Arc::new(|_, _| "250 2.1.5 ok")
}

/// Refuses recipients starting with `prefix` with `reply`, accepts the rest.
fn refusing(prefix: &'static str, reply: &'static str) -> Script {
    Arc::new(move |rcpt, _| {
        if rcpt.starts_with(prefix) {
            reply
        } else {
            "250 2.1.5 ok"
        }
    })
}

/// The sending server: example.org, DNS from `dns`, peers on `port`, retries after a second.
async fn sender(dns: SocketAddr, port: u16) -> TestServer {
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        c.queue.smtp_port = port;
        c.queue.retry_first_secs = 1;
        c.queue.retry_max_secs = 1;
        c.queue.timeout_secs = 10;
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    server
}

/// Sends `body` from bob@example.org to `rcpts` over submission (STARTTLS + AUTH).
async fn submit(server: &TestServer, rcpts: &[&str], body: &str) {
    let tcp = TcpStream::connect(server.running.addr("submission").unwrap())
        .await
        .unwrap();
    let mut c = Client::new(tcp);
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO laptop", 250, "STARTTLS").await;
    c.expect("STARTTLS", 220, "").await;
    let mut c = Client::new(tls_client(server.dir.path(), c.into_inner()).await);
    c.expect("EHLO laptop", 250, "AUTH").await;
    c.expect("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=", 235, "")
        .await;
    c.expect("MAIL FROM:<bob@example.org>", 250, "").await;
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250, "").await;
    }
    c.expect("DATA", 354, "").await;
    c.send(body.as_bytes()).await;
    c.expect(".", 250, "").await;
    c.expect("QUIT", 221, "").await;
}

const BODY: &str = "From: bob@example.org\r\nTo: someone@remote.test\r\nSubject: hello remote\r\n\r\nHi there.\r\n..leading dot\r\n";

pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn queue_empty(server: &TestServer) -> bool {
    server.running.store.queue_list().await.unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_to_another_mailroom_by_mx_with_starttls() {
    // One DNS for both: the receiver (remote.test) checks the sender's published records.
    let zone = Zone::default();
    let dns = dns_server::start(zone.clone()).await;
    let receiver = start_with(|c| {
        c.domain = "remote.test".into();
        c.hostname = "mx.remote.test".into();
        c.dns.nameservers = vec![dns];
    })
    .await;
    account(&receiver.running.store, "someone@remote.test", 0).await;
    let port = receiver.running.addr("smtp").unwrap().port();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    let sender = sender(dns, port).await;
    // Publish exactly what `mailroom domain dns example.org` prints, as a user would.
    let keys = sender.running.store.dkim_keys("example.org").await.unwrap();
    for record in
        mailroom::records::domain_records("mail.example.org", "example.org", keys.as_ref()).unwrap()
    {
        let name = record.name.trim_end_matches('.');
        match record.kind {
            mailroom::records::RecordKind::Txt => zone.txt(name, &record.value),
            mailroom::records::RecordKind::Mx => zone.mx(name, 10, "mail.example.org"),
            _ => {}
        }
    }
    zone.ip("mail.example.org", IpAddr::from([127, 0, 0, 1]));

    submit(&sender, &["someone@remote.test", "bob@example.org"], BODY).await;

    eventually("delivery to the other server", || async {
        inbox_texts(&receiver.running.store, "someone@remote.test")
            .await
            .len()
            == 1
    })
    .await;
    let text = inbox_texts(&receiver.running.store, "someone@remote.test")
        .await
        .remove(0);
    assert!(
        text.starts_with("Return-Path: <bob@example.org>\r\nReceived: from mail.example.org"),
        "{text}"
    );
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(
        text.contains("with ESMTPS (TLS"),
        "STARTTLS was used: {text}"
    );
    // Our own submission trace travels, but not our Return-Path.
    assert_eq!(text.matches("Return-Path:").count(), 1, "{text}");
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(text.ends_with("Hi there.\r\n.leading dot\r\n"), "{text:?}");
    // Signed with both keys, and the receiver could verify everything from the records.
    let results = text
        .split("Authentication-Results: mx.remote.test;")
        .nth(1)
        .and_then(|r| r.split("\r\nDKIM-Signature:").next())
        .unwrap_or_default();
    assert_eq!(results.matches("dkim=pass").count(), 2, "{text}");
    assert!(results.contains("spf=pass"), "{results}");
    assert!(results.contains("dmarc=pass"), "{results}");
    // The local recipient got it at once, and the queue is empty afterwards.
    assert_eq!(
        inbox_texts(&sender.running.store, "bob@example.org")
            .await
            .len(),
        1
    );
    eventually("an empty queue", || queue_empty(&sender)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_mx_hosts_in_preference_order_and_falls_back_when_one_refuses() {
    let (best, port) = Sink::start("127.0.0.1", 0, accept_all()).await;
    let (worse, _) = Sink::start("127.0.0.2", port, accept_all()).await;
    let zone = Zone::default();
    // Preference 5 refuses connections (nothing listens on 127.0.0.3), 10 works, 20 is unused.
    zone.mx("remote.test", 20, "mx20.remote.test");
    zone.mx("remote.test", 5, "mx5.remote.test");
    zone.mx("remote.test", 10, "mx10.remote.test");
    zone.ip("mx5.remote.test", IpAddr::from([127, 0, 0, 3]));
    zone.ip("mx10.remote.test", IpAddr::from([127, 0, 0, 1]));
    zone.ip("mx20.remote.test", IpAddr::from([127, 0, 0, 2]));
    let sender = sender(dns_server::start(zone).await, port).await;

    submit(&sender, &["a@remote.test", "b@remote.test"], BODY).await;
    eventually("delivery", || async { !best.received().is_empty() }).await;
    let got = best.received();
    assert_eq!(got.len(), 1, "one transaction for both recipients");
    assert_eq!(got[0].from, "bob@example.org");
    assert_eq!(got[0].rcpts, ["a@remote.test", "b@remote.test"]);
    assert!(got[0].data.contains("Subject: hello remote"));
    assert!(worse.received().is_empty());
    eventually("an empty queue", || queue_empty(&sender)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_failure_is_retried() {
    let (sink, port) = Sink::start(
        "127.0.0.1",
        0,
        Arc::new(|_, seen| {
            if seen == 0 {
                "451 4.3.0 try again later"
            } else {
                "250 2.1.5 ok"
            }
        }),
    )
    .await;
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    let sender = sender(dns_server::start(zone).await, port).await;

    submit(&sender, &["later@remote.test"], BODY).await;
    eventually("the deferral", || async {
        let q = sender.running.store.queue_list().await.unwrap();
        q.first()
            .and_then(|m| m.recipients.first())
            .is_some_and(|r| {
                r.attempts == 1 && r.last_error.as_deref().is_some_and(|e| e.contains("451"))
            })
    })
    .await;
    eventually("the retry", || async { sink.received().len() == 1 }).await;
    eventually("an empty queue", || queue_empty(&sender)).await;
    assert!(
        inbox_texts(&sender.running.store, "bob@example.org")
            .await
            .is_empty(),
        "no bounce"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_bounces_once_to_the_sender() {
    let (sink, port) = Sink::start(
        "127.0.0.1",
        0,
        refusing("nobody", "550 5.1.1 no such user here"),
    )
    .await;
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    let sender = sender(dns_server::start(zone).await, port).await;

    submit(&sender, &["nobody@remote.test", "friend@remote.test"], BODY).await;
    eventually("the bounce", || async {
        !inbox_texts(&sender.running.store, "bob@example.org")
            .await
            .is_empty()
    })
    .await;
    eventually("an empty queue", || queue_empty(&sender)).await;
    // The good recipient got the message; the bad one a single DSN.
    assert_eq!(sink.received().len(), 1);
    assert_eq!(sink.received()[0].rcpts, ["friend@remote.test"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let inbox = inbox_texts(&sender.running.store, "bob@example.org").await;
    assert_eq!(inbox.len(), 1, "exactly one DSN");
    let dsn = &inbox[0];
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"),
        "{dsn}"
    );
    assert!(!dsn.contains("friend@remote.test\r\nAction"), "{dsn}");
    assert!(
        dsn.contains("Subject: hello remote"),
        "original headers: {dsn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_mx_bounces_at_once() {
    let zone = Zone::default();
    zone.null_mx("nomail.test");
    let sender = sender(dns_server::start(zone).await, 9).await;
    submit(&sender, &["x@nomail.test"], BODY).await;
    eventually("the bounce", || async {
        !inbox_texts(&sender.running.store, "bob@example.org")
            .await
            .is_empty()
    })
    .await;
    let dsn = inbox_texts(&sender.running.store, "bob@example.org")
        .await
        .remove(0);
    assert!(dsn.contains("null MX"), "{dsn}");
    assert!(dsn.contains("Status: 5."), "{dsn}");
    eventually("an empty queue", || queue_empty(&sender)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_queue_and_delivers_what_is_due() {
    // First run: the peer is down, so the message waits in the queue.
    let port = crate::harness::free_port();
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    let dns = dns_server::start(zone).await;
    let first = sender(dns, port).await;
    submit(&first, &["later@remote.test"], BODY).await;
    eventually("a failed attempt", || async {
        let q = first.running.store.queue_list().await.unwrap();
        q.first()
            .and_then(|m| m.recipients.first())
            .is_some_and(|r| r.attempts >= 1)
    })
    .await;
    let dir = first.dir;
    first.running.shutdown().await;

    // Second run on the same data, the peer now up.
    let (sink, _) = Sink::start("127.0.0.1", port, accept_all()).await;
    let mut config = crate::harness::config(dir.path());
    config.dns.nameservers = vec![dns];
    config.queue.smtp_port = port;
    config.queue.retry_first_secs = 1;
    config.queue.retry_max_secs = 1;
    let second = mailroom::app::start(config).await.unwrap();
    eventually("delivery after the restart", || async {
        sink.received().len() == 1
    })
    .await;
    assert_eq!(sink.received()[0].rcpts, ["later@remote.test"]);
    assert!(sink.received()[0].data.contains("Subject: hello remote"));
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_can_be_listed_retried_and_dropped() {
    // A destination that refuses connections: the message stays queued.
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 3]));
    let sender = sender(dns_server::start(zone).await, 9).await;
    // The store functions the CLI and the admin panel call.
    let store = &sender.running.store;
    let id = store
        .queue_add(
            "bob@example.org",
            &["x@remote.test".into()],
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .unwrap();
    let list = store.queue_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].sender, "bob@example.org");
    assert_eq!(list[0].recipients[0].address, "x@remote.test");
    let stats = store.queue_stats().await.unwrap();
    assert_eq!((stats.messages, stats.recipients), (1, 1));
    assert!(stats.oldest_created_at.is_some());
    eventually("a failed attempt", || async {
        store.queue_list().await.unwrap()[0].recipients[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("127.0.0.3"))
    })
    .await;
    assert!(store.queue_retry(id).await.unwrap());
    assert!(!store.queue_retry(id + 100).await.unwrap());
    assert!(store.queue_drop(id).await.unwrap());
    assert!(!store.queue_drop(id).await.unwrap());
    assert!(store.queue_list().await.unwrap().is_empty());
    assert_eq!(store.queue_stats().await.unwrap().messages, 0);
}

#[tokio::test]
async fn dns_lookups_follow_the_rules_for_mail() {
    use mailroom::dns::{Dns, DnsError};
    let zone = Zone::default();
    let long = "v=DKIM1; k=rsa; p=".to_string() + &"A".repeat(300);
    zone.txt("sel._domainkey.example.test", &long);
    zone.ip("a-only.test", IpAddr::from([127, 0, 0, 5]));
    zone.mx("pref.test", 20, "b.pref.test");
    zone.mx("pref.test", 10, "a.pref.test");
    zone.null_mx("null.test");
    let config = mailroom::config::DnsConfig {
        nameservers: vec![dns_server::start(zone).await],
    };
    let dns = Dns::new(&config).unwrap();
    assert_eq!(
        dns.txt("sel._domainkey.example.test").await.unwrap(),
        [long]
    );
    assert!(dns.txt("nothing.example.test").await.unwrap().is_empty());
    let hosts: Vec<String> = dns
        .mx("pref.test")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.host)
        .collect();
    assert_eq!(hosts, ["a.pref.test", "b.pref.test"]);
    // No MX: the domain itself is the mail exchanger (RFC 5321 §5.1).
    let implicit = dns.mx("a-only.test").await.unwrap();
    assert_eq!(implicit[0].host, "a-only.test");
    assert_eq!(
        dns.addresses("a-only.test").await.unwrap(),
        [IpAddr::from([127, 0, 0, 5])]
    );
    assert_eq!(
        dns.mx("null.test").await,
        Err(DnsError::NullMx("null.test".into()))
    );
    assert!(matches!(
        dns.mx("missing.test").await,
        Err(DnsError::NoSuchDomain(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_forward_with_srs_and_bounces_come_back_to_the_original_sender() {
    let (sink, port) = Sink::start("127.0.0.1", 0, refusing("gone", "550 5.1.1 gone")).await;
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    zone.mx("origin.test", 10, "mx.remote.test");
    let server = sender(dns_server::start(zone).await, port).await;
    let store = &server.running.store;
    store
        .add_alias(
            "fwd@example.org",
            &["friend@remote.test".into(), "bob@example.org".into()],
        )
        .await
        .unwrap();

    // Mail from outside to the alias: bob gets a copy, friend@remote.test gets it through the
    // queue from an SRS address of example.org.
    let mut c = crate::smtp::connect(&server, "smtp").await;
    c.expect("EHLO origin.test", 250, "").await;
    c.expect("MAIL FROM:<alice@origin.test>", 250, "").await;
    c.expect("RCPT TO:<fwd@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"From: alice@origin.test\r\nSubject: pass it on\r\n\r\nHello.\r\n")
        .await;
    c.expect(".", 250, "forwarded").await;
    eventually("the forwarded copy", || async {
        sink.received().len() == 1
    })
    .await;
    let got = sink.received().remove(0);
    assert!(got.from.starts_with("SRS0="), "{}", got.from);
    assert!(
        got.from.ends_with("=origin.test=alice@example.org"),
        "{}",
        got.from
    );
    assert_eq!(got.rcpts, ["friend@remote.test"]);
    assert!(got.data.contains("Subject: pass it on"));
    assert!(!got.data.contains("Return-Path:"), "{}", got.data);
    // Our ARC set on top (tests/it/arc.rs), then our trace.
    assert!(got.data.starts_with("ARC-Seal: i=1;"), "{}", got.data);
    assert!(
        got.data.contains("\r\nReceived: from origin.test"),
        "{}",
        got.data
    );
    assert_eq!(
        inbox_texts(&server.running.store, "bob@example.org")
            .await
            .len(),
        1
    );

    // The destination bounces to the SRS address: the bounce goes on to alice, from <>.
    c.expect("MAIL FROM:<>", 250, "").await;
    c.expect(&format!("RCPT TO:<{}>", got.from), 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"From: MAILER-DAEMON@remote.test\r\nSubject: Undelivered\r\n\r\nSorry.\r\n")
        .await;
    c.expect(".", 250, "").await;
    eventually("the bounce passed on", || async {
        sink.received().len() == 2
    })
    .await;
    let bounce = sink.received().remove(1);
    assert_eq!(bounce.from, "");
    assert_eq!(bounce.rcpts, ["alice@origin.test"]);
    // The same valid address from a real sender is nobody: it would relay anyone's mail to
    // alice for three weeks.
    c.expect("MAIL FROM:<spammer@outside.example>", 250, "")
        .await;
    c.expect(&format!("RCPT TO:<{}>", got.from), 550, "5.1.1")
        .await;
    c.expect("RSET", 250, "").await;

    // A message that has been round too many servers is refused.
    let mut looping = String::new();
    for i in 0..30 {
        looping.push_str(&format!(
            "Received: from hop{i}.test by hop{}.test; Thu, 26 Nov 2026 10:00:00 +0000\r\n",
            i + 1
        ));
    }
    looping.push_str("From: alice@origin.test\r\nSubject: loop\r\n\r\nround and round\r\n");
    c.expect("MAIL FROM:<alice@origin.test>", 250, "").await;
    c.expect("RCPT TO:<fwd@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(looping.as_bytes()).await;
    c.expect(".", 554, "5.4.6").await;
    assert_eq!(sink.received().len(), 2);

    // Forwarding that fails for good bounces to the original sender, not to our SRS address.
    store
        .add_alias("old@example.org", &["gone@remote.test".into()])
        .await
        .unwrap();
    c.expect("MAIL FROM:<alice@origin.test>", 250, "").await;
    c.expect("RCPT TO:<old@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"From: alice@origin.test\r\nSubject: for old\r\n\r\nHi.\r\n")
        .await;
    c.expect(".", 250, "").await;
    eventually("the DSN to alice", || async { sink.received().len() == 3 }).await;
    let dsn = sink.received().remove(2);
    assert_eq!(dsn.from, "");
    assert_eq!(dsn.rcpts, ["alice@origin.test"]);
    assert!(
        dsn.data
            .contains("Final-Recipient: rfc822; gone@remote.test"),
        "{}",
        dsn.data
    );
    eventually("an empty queue", || queue_empty(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_a_worker_waiting_for_a_delivery_slot() {
    // One slot, held by a delivery to a peer that accepts and never says a word; the worker
    // waits for the slot to deliver to the second domain. Shutdown must still end it within
    // the grace (2 s in tests), not when the held delivery times out.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(tcp);
        }
    });
    let zone = Zone::default();
    for domain in ["a.test", "b.test"] {
        zone.mx(domain, 10, &format!("mx.{domain}"));
        zone.ip(&format!("mx.{domain}"), IpAddr::from([127, 0, 0, 1]));
    }
    let dns = dns_server::start(zone).await;
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        c.queue.smtp_port = port;
        c.queue.concurrency = 1;
        c.queue.timeout_secs = 120;
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    submit(&server, &["one@a.test", "two@b.test"], BODY).await;
    eventually("a delivery holding the one slot", || async {
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    // Give the worker time to reach the wait for the slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    server.running.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "shutdown took {took:?}: the worker did not see it while waiting for a slot"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
