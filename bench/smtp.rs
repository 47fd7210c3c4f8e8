//! `cargo bench --bench smtp`: SMTP ingest into the mailbox, end to end.
//!
//! Starts the release build of the whole server in-process (temporary data directory, port 0),
//! then `SMTP_CLIENTS` concurrent clients (default 20) each open one connection to the inbound
//! port and send 4 KB messages to local users (`SMTP_USERS`, default 10) the way an MTA with
//! PIPELINING does: `MAIL`/`RCPT`/`DATA` in one write, then the body. A message counts when its
//! `250` arrives, which the server sends only after the durable commit. At the end it checks the
//! mailboxes hold every message. Prints messages/s and per-transaction p50/p99 latency.
//!
//! Inbound checks run as in production: the senders' domain publishes SPF, DMARC and a DKIM
//! key in a DNS server on loopback (standing in for a warm resolver cache), and every message
//! carries an RSA-2048 DKIM signature (made before the clock starts, as the sender's own
//! work), so each one costs the server an SPF check, a DKIM verification and DMARC, recorded in
//! its Authentication-Results. `SMTP_CHECKS=0` turns the checks off (`[inbound] verify =
//! false`), for the figure without them.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

#[allow(dead_code)] // the test DNS server offers more record types than this bench needs
#[path = "../tests/it/dns_server.rs"]
mod dns_server;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The body every message shares (built once, so the clients spend their CPU on the protocol,
/// not on formatting): ~4 KB of text after a per-message header.
fn body() -> String {
    let mut m = String::new();
    let mut n = 0;
    while m.len() < 4096 - 300 {
        m.push_str(&format!(
            "Line {n} of the message: lorem ipsum dolor sit amet, consectetur.\r\n"
        ));
        n += 1;
    }
    m.push_str(".\r\n");
    m
}

fn message(body: &str, client: usize, i: usize) -> String {
    format!(
        "From: Sender {client} <s{client}@remote.example>\r\nTo: user@example.org\r\n\
         Subject: bench message {client}-{i}\r\nMessage-ID: <{client}.{i}@remote.example>\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n{body}"
    )
}

/// The sender's DKIM key (remote.example, selector `bench`): the signer, and the TXT record
/// that publishes it.
fn sender_key() -> (
    mail_auth::dkim::DkimSigner<
        mail_auth::common::crypto::RsaKey<mail_auth::common::crypto::Sha256>,
        mail_auth::dkim::Done,
    >,
    String,
) {
    use base64::Engine;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let der = key.to_pkcs8_der().expect("PKCS#8");
    let public = key.to_public_key().to_public_key_der().expect("SPKI");
    let signing = mail_auth::common::crypto::RsaKey::from_key_der(
        rustls_pki_types::PrivateKeyDer::Pkcs8(der.as_bytes().to_vec().into()),
    )
    .expect("mail-auth takes the key");
    let signer = mail_auth::dkim::DkimSigner::from_key(signing)
        .domain("remote.example")
        .selector("bench")
        .headers(["From", "To", "Subject", "Message-ID", "Date"])
        .header_canonicalization(mail_auth::dkim::Canonicalization::Relaxed)
        .body_canonicalization(mail_auth::dkim::Canonicalization::Relaxed);
    let txt = format!(
        "v=DKIM1; k=rsa; p={}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    );
    (signer, txt)
}

/// Every message a client sends, signed (`signer`) or not.
fn messages(
    id: usize,
    count: usize,
    signer: Option<
        &mail_auth::dkim::DkimSigner<
            mail_auth::common::crypto::RsaKey<mail_auth::common::crypto::Sha256>,
            mail_auth::dkim::Done,
        >,
    >,
) -> Vec<String> {
    use mail_auth::common::headers::HeaderWriter;
    let body = body();
    (0..count)
        .map(|i| {
            let m = message(&body, id, i);
            match signer {
                // The body ends with the DATA terminator, which is not the message's.
                Some(s) => {
                    let content = m.strip_suffix(".\r\n").unwrap_or(&m);
                    let signature = s.sign(content.as_bytes()).expect("DKIM signature");
                    format!("{}{m}", signature.to_header())
                }
                None => m,
            }
        })
        .collect()
}

async fn reply(r: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            panic!("connection closed");
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
}

async fn client(
    addr: std::net::SocketAddr,
    id: usize,
    messages: Vec<String>,
    users: usize,
) -> Vec<Duration> {
    let count = messages.len();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut r = BufReader::new(tcp);
    assert_eq!(reply(&mut r).await, 220);
    r.get_mut()
        .write_all(b"EHLO bench.example\r\n")
        .await
        .unwrap();
    assert_eq!(reply(&mut r).await, 250);
    let mut lat = Vec::with_capacity(count);
    for (i, message) in messages.iter().enumerate() {
        let t = Instant::now();
        let user = (id + i) % users;
        let head = format!(
            "MAIL FROM:<s{id}@remote.example> SIZE=4096\r\nRCPT TO:<user{user}@example.org>\r\nDATA\r\n"
        );
        r.get_mut().write_all(head.as_bytes()).await.unwrap();
        assert_eq!(reply(&mut r).await, 250);
        assert_eq!(reply(&mut r).await, 250);
        assert_eq!(reply(&mut r).await, 354);
        r.get_mut().write_all(message.as_bytes()).await.unwrap();
        assert_eq!(reply(&mut r).await, 250, "message stored");
        lat.push(t.elapsed());
    }
    r.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    lat
}

fn main() {
    let clients = env("SMTP_CLIENTS", 20);
    let total = env("SMTP_MESSAGES", 10_000);
    let users = env("SMTP_USERS", 10);
    let checks = env("SMTP_CHECKS", 1) != 0;
    let per_client = total / clients;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let zone = dns_server::Zone::default();
        zone.txt("remote.example", "v=spf1 ip4:127.0.0.1 -all");
        zone.txt("_dmarc.remote.example", "v=DMARC1; p=none");
        let (signer, record) = sender_key();
        zone.txt("bench._domainkey.remote.example", &record);
        let mut config = mailroom::config::Config::embedded();
        config.data_dir = dir.path().to_path_buf();
        config.dns.nameservers = vec![dns_server::start(zone).await];
        config.domain = "example.org".into();
        config.listen = mailroom::config::Listen::default();
        config.listen.smtp = vec!["127.0.0.1:0".parse().unwrap()];
        config.limits.max_connections_per_ip = clients + 10;
        config.inbound.verify = checks;
        let running = mailroom::app::start(config).await.expect("server");
        let hash = mailroom::auth::password::hash("bench").await.unwrap();
        for u in 0..users {
            running
                .store
                .create_account(mailroom::store::NewAccount {
                    address: &format!("user{u}@example.org"),
                    password_hash: &hash,
                    quota_bytes: 0,
                    is_admin: false,
                })
                .await
                .expect("account");
        }
        let addr = running.addr("smtp").expect("smtp listener");
        println!(
            "SMTP ingest: {clients} clients, {} messages of 4 KB to {users} local users, durable, {}",
            per_client * clients,
            if checks {
                "DKIM-signed, SPF/DKIM/DMARC checked"
            } else {
                "no checks (SMTP_CHECKS=0)"
            }
        );
        // Signing is the sender's work: done before the clock starts.
        let all: Vec<Vec<String>> = (0..clients)
            .map(|id| messages(id, per_client, checks.then_some(&signer)))
            .collect();
        let started = Instant::now();
        let tasks: Vec<_> = all
            .into_iter()
            .enumerate()
            .map(|(id, messages)| tokio::spawn(client(addr, id, messages, users)))
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.expect("client"));
        }
        let took = started.elapsed();
        let mut stored = 0;
        for u in 0..users {
            let a = running
                .store
                .account_by_address(&format!("user{u}@example.org"))
                .await
                .unwrap()
                .unwrap();
            stored += a.message_count;
        }
        assert_eq!(
            stored as usize,
            per_client * clients,
            "every acknowledged message is in a mailbox"
        );
        if checks {
            // The checks ran and the signature verified (one message is enough to know).
            let a = running
                .store
                .account_by_address("user0@example.org")
                .await
                .unwrap()
                .unwrap();
            let inbox = running.store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
            let first = running.store.message_body(&inbox, 1).await.unwrap();
            let text = String::from_utf8_lossy(&first);
            assert!(
                text.contains("dkim=pass") && text.contains("spf=pass"),
                "the first stored message's results: {}",
                text.get(..1500).unwrap_or(&text)
            );
        }
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{:>12} {:>10} {:>10} {:>10}",
            "messages", "msg/s", "p50 ms", "p99 ms"
        );
        println!(
            "{:>12} {:>10.0} {:>10.2} {:>10.2}",
            lat.len(),
            lat.len() as f64 / took.as_secs_f64(),
            pct(0.5),
            pct(0.99)
        );
        running.shutdown().await;
    });
}
