//! `cargo bench --bench sieve`: what a user's rules cost per message. The 20-rule script of
//! `bench/common/twenty.sieve` (lists and senders to folders, flags, subaddress, relational;
//! the kind people keep) is compiled once, then run on `SIEVE_N` (20,000) ~4 KB messages (the
//! mail every bench sends), each through `mailroom::sieve::run` as delivery calls it; prints
//! p50, p99 and the mean per message, and the compile time. `bench/compare` runs the same
//! script for every ingest account (its SMTP ingest row).

// Bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "common/corpus.rs"]
mod corpus;

use std::time::{Duration, Instant};

use mailroom::sieve::{Context, Limits, Message};

/// The script people keep: also what bench/compare installs.
const SCRIPT: &str = include_str!("common/twenty.sieve");

fn main() {
    let n: usize = std::env::var("SIEVE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let started = Instant::now();
    let script = mailroom::sieve::compile(SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    let compiled = started.elapsed();
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| corpus::report(i, "alice@example.org"))
        .collect();
    let limits = Limits::default();
    let own = vec!["alice@example.org".to_string()];
    let exists = |_: &str| true;
    let ctx = Context {
        now: time::OffsetDateTime::now_utc(),
        own_addresses: &own,
        mailbox_exists: &exists,
        limits: &limits,
    };
    let mut times = Vec::with_capacity(n);
    let mut kept = 0;
    for raw in &messages {
        let message = Message {
            raw,
            envelope_from: "sender@example.net",
            envelope_to: "alice+news@example.org",
            auth: None,
            spam_percent: Some(10),
        };
        let t = Instant::now();
        let outcome = mailroom::sieve::run(&script, &message, &ctx);
        times.push(t.elapsed());
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        kept += usize::from(
            outcome
                .actions
                .iter()
                .any(|a| matches!(a, mailroom::sieve::Action::Keep { .. })),
        );
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!("Sieve: the 20-rule script of bench/common/twenty.sieve on {n} messages of ~4 KB");
    println!("  compile once: {:.1} µs", compiled.as_secs_f64() * 1e6);
    println!(
        "  run per message: p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs ({kept} of {n} kept)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}
