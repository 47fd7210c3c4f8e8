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
#[allow(dead_code)] // reset and sample are for bench/compare
#[path = "common/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use mailroom::submission::{Recipient, Submission};
use sink::{Sink, message};

const DOMAINS: usize = 20;
const SUBMITTERS: usize = 20;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let total = env("OUT_MESSAGES", 5_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start().await;
        let port = sink.addr.port();
        let dns = sink::dns(DOMAINS).await;

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
                    let to = format!("user{i}@{}", sink::domain(i % DOMAINS));
                    submission
                        .submit(
                            &account,
                            "bench@example.org",
                            &[Recipient::Remote(to.clone())],
                            b"",
                            &message(i, "bench@example.org", &to),
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
        while sink.delivered() < total {
            if start.elapsed() > Duration::from_secs(600) {
                panic!("only {} of {total} delivered", sink.delivered());
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
        println!(
            "  DKIM-signed (RSA and Ed25519) at the sink: {} of {}",
            sink.signed(),
            sink.delivered()
        );
        let stats = running.store.queue_stats().await.expect("stats");
        println!("  left in the queue: {} messages", stats.messages);
        running.shutdown().await;
    });
}
