//! `cargo bench --bench deliver`: store delivery throughput through the one delivery path.
//!
//! 4 KB messages into one account's INBOX, every commit durable (`synchronous=FULL`, WAL), with
//! 1 and then 8 concurrent deliverers. Each message is distinct (no dedup shortcut). Prints
//! messages per second and the median / p99 latency of one delivery.
//!
//! Environment: `DELIVER_N` messages per run (default 2000); `DELIVER_DIR` where to put the
//! database (default: a temporary directory; put it on the disk you want to measure).

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/corpus.rs"]
mod corpus;

use corpus::plain;
use std::time::{Duration, Instant};

use mailroom::store::{Delivery, NewAccount, Store, Target};

async fn run(
    store: &Store,
    account: i64,
    n: usize,
    workers: usize,
    offset: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..n).step_by(workers) {
                let raw = plain(offset + i, "user@example.org");
                let t = Instant::now();
                let report = store
                    .deliver(
                        Delivery {
                            raw: &raw,
                            internal_date: None,
                        },
                        &[Target::inbox(account)],
                    )
                    .await
                    .expect("delivery");
                assert_eq!(report.delivered.len(), 1);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("worker"));
    }
    (started.elapsed(), lat)
}

fn pct(lat: &mut [Duration], p: f64) -> f64 {
    lat.sort_unstable();
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::var("DELIVER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("DELIVER_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let path = dir.join(format!("deliver-bench-{}.db", std::process::id()));
        let store = Store::open(&path).await.expect("store");
        store.add_domain("example.org").await.expect("domain");
        let hash = mailroom::auth::password::hash("bench").await.expect("hash");
        let account = store
            .create_account(NewAccount {
                address: "user@example.org",
                password_hash: &hash,
                quota_bytes: 0,
                is_admin: false,
            })
            .await
            .expect("account");
        println!("store delivery, 4 KB messages, durable commits, {n} messages per run");
        println!(
            "{:>12} {:>12} {:>10} {:>10}",
            "deliverers", "msg/s", "p50 ms", "p99 ms"
        );
        let mut offset = 0;
        for workers in [1, 8] {
            let (took, mut lat) = run(&store, account.id, n, workers, offset).await;
            offset += n;
            println!(
                "{:>12} {:>12.0} {:>10.2} {:>10.2}",
                workers,
                n as f64 / took.as_secs_f64(),
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.99)
            );
        }
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    });
}
