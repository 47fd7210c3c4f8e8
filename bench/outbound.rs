//! `cargo bench --bench outbound`: how fast the queue hands mail to other servers.
//!
//! Starts the release build of the whole server in-process with a DNS server on loopback that
//! publishes MX records for 20 invented domains, all pointing at a sink on loopback that
//! accepts everything (PIPELINING, like a real MX). `OUT_MESSAGES` messages of ~4 KB (default
//! 5,000), each to one recipient in one of the 20 domains, go through the one submission path
//! (DKIM signing included) from 20 concurrent submitters; the clock stops when the sink has
//! received the last one. Prints messages/s and how long submission alone took.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // the test DNS server offers more record types than this bench needs
#[path = "../tests/it/dns_server.rs"]
mod dns_server;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailroom::submission::{Recipient, Submission};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const DOMAINS: usize = 20;
const SUBMITTERS: usize = 20;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A sink MX: answers everything with 250 and counts completed DATA.
async fn sink(listener: TcpListener, delivered: Arc<AtomicUsize>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let (r, mut w) = tcp.into_split();
            let mut r = BufReader::new(r);
            if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                return;
            }
            let mut line = Vec::new();
            let mut in_data = false;
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let reply: &[u8] = if in_data {
                    if line != b".\r\n" {
                        continue;
                    }
                    in_data = false;
                    delivered.fetch_add(1, Ordering::Relaxed);
                    b"250 2.0.0 ok\r\n"
                } else if line.starts_with(b"EHLO") {
                    b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
                } else if line.starts_with(b"DATA") {
                    in_data = true;
                    b"354 go on\r\n"
                } else if line.starts_with(b"QUIT") {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 ok\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn message(i: usize, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <bench@example.org>\r\nTo: {to}\r\nSubject: outbound bench {i}\r\n\
         Message-ID: <{i}.bench@example.org>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
    );
    let mut n = 0;
    while m.len() < 4096 {
        m.push_str(&format!(
            "Line {n} of message {i}: lorem ipsum dolor sit amet.\r\n"
        ));
        n += 1;
    }
    m.into_bytes()
}

fn main() {
    let total = env("OUT_MESSAGES", 5_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink");
        let port = listener.local_addr().expect("port").port();
        let delivered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(sink(listener, delivered.clone()));
        let zone = dns_server::Zone::default();
        for d in 0..DOMAINS {
            zone.mx(&format!("d{d}.test"), 10, "mx.sink.test");
        }
        zone.ip("mx.sink.test", IpAddr::from([127, 0, 0, 1]));
        let dns = dns_server::start(zone).await;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = mailroom::config::Config::embedded();
        config.data_dir = dir.path().to_path_buf();
        config.domain = "example.org".into();
        config.hostname = "mail.example.org".into();
        config.listen = mailroom::config::Listen::default();
        config.dns.nameservers = vec![dns];
        config.queue.smtp_port = port;
        let running = mailroom::app::start(config).await.expect("server");
        let hash = mailroom::auth::password::hash("bench").await.unwrap();
        let account = running
            .store
            .create_account(mailroom::store::NewAccount {
                address: "bench@example.org",
                password_hash: &hash,
                quota_bytes: 0,
                is_admin: false,
            })
            .await
            .expect("account");
        let submission = Submission::new(running.store.clone(), "mail.example.org".into());
        println!(
            "Outbound: {total} messages of 4 KB through submission (DKIM signed) to {DOMAINS} \
             domains, MX on loopback, 20 submitters"
        );

        let start = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..SUBMITTERS {
            let submission = submission.clone();
            let account = account.clone();
            tasks.push(tokio::spawn(async move {
                for i in (s..total).step_by(SUBMITTERS) {
                    let to = format!("user{i}@d{}.test", i % DOMAINS);
                    submission
                        .submit(
                            &account,
                            "bench@example.org",
                            &[Recipient::Remote(to.clone())],
                            b"",
                            &message(i, &to),
                        )
                        .await
                        .expect("submitted");
                }
            }));
        }
        for t in tasks {
            t.await.expect("submitter");
        }
        let submitted = start.elapsed();
        while delivered.load(Ordering::Relaxed) < total {
            if start.elapsed() > Duration::from_secs(600) {
                panic!(
                    "only {} of {total} delivered",
                    delivered.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = start.elapsed();
        println!(
            "  submitted (queued, durable) in {:.2} s: {:.0} msg/s",
            submitted.as_secs_f64(),
            total as f64 / submitted.as_secs_f64()
        );
        println!(
            "  delivered to the sink in {:.2} s: {:.0} msg/s",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
        let stats = running.store.queue_stats().await.expect("stats");
        println!("  left in the queue: {} messages", stats.messages);
        running.shutdown().await;
    });
}
