//! `cargo bench --bench imap`: IMAP command latency on a large mailbox, and the memory of
//! many idle sessions.
//!
//! Starts the whole server in this process (`mailroom::app::start`, a temporary data
//! directory, plain IMAP on 127.0.0.1 with `allow_plaintext`), fills one INBOX with
//! `IMAP_N` (default 10,000) distinct ~4 KB messages through the one delivery path, 1% of
//! them mentioning a rare word, and times over one plain TCP connection:
//!
//! - SELECT INBOX
//! - UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)
//! - FETCH 1:1000 BODY.PEEK[] (1000 full bodies)
//! - UID SEARCH SUBJECT / BODY / TEXT for the rare word
//! - STORE 1:* +FLAGS (\Flagged) (every message, untagged FETCH responses included)
//!
//! Then it opens `IMAP_IDLE` (default 1000) connections that log in, select INBOX and IDLE,
//! and reports the process's RSS (VmRSS from /proc/self/status) before and after. The server
//! runs in this process, so that RSS is the server's plus the small client side (a bare
//! socket per connection); the difference is what the idle sessions cost.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

#[path = "common/corpus.rs"]
mod corpus;

use corpus::{RARE, literal_len, report};
use mailroom::config::{Config, Listen};
use mailroom::store::{Delivery, NewAccount, Target};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

struct Client {
    s: BufReader<TcpStream>,
    n: u32,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            s: BufReader::new(tcp),
            n: 0,
        };
        let mut greeting = String::new();
        c.s.read_line(&mut greeting).await.expect("greeting");
        c
    }

    /// Sends a command and reads to its tagged reply (literals skipped by length); returns
    /// the number of response bytes.
    async fn cmd(&mut self, command: &str) -> usize {
        self.n += 1;
        let tag = format!("b{}", self.n);
        self.s
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .expect("write");
        let mut total = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self.s.read_until(b'\n', &mut line).await.expect("read");
            assert!(n > 0, "connection closed during {command}");
            total += n;
            if let Some(len) = literal_len(&line) {
                let mut skip = vec![0u8; len];
                self.s.read_exact(&mut skip).await.expect("literal");
                total += len;
                continue;
            }
            if line.starts_with(tag.as_bytes()) {
                let text = String::from_utf8_lossy(&line);
                assert!(text.starts_with(&format!("{tag} OK")), "{command}: {text}");
                return total;
            }
        }
    }
}

async fn timed(c: &mut Client, label: &str, command: &str) {
    let t = Instant::now();
    let bytes = c.cmd(command).await;
    println!(
        "{label:<48} {:>8.1} ms  ({} KiB of response)",
        t.elapsed().as_secs_f64() * 1000.0,
        bytes / 1024
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("IMAP_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let idle: usize = std::env::var("IMAP_IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("tempdir");
    // IMAP_KEEP=1 keeps the data directory (to look at the database afterwards).
    let dir_path = if std::env::var("IMAP_KEEP").is_ok() {
        let kept = dir.keep();
        println!("data directory kept: {}", kept.display());
        kept
    } else {
        dir.path().to_path_buf()
    };
    let mut config = Config::embedded();
    config.data_dir = dir_path.clone();
    config.listen = Listen {
        imap: vec!["127.0.0.1:0".parse().expect("addr")],
        ..Listen::default()
    };
    config.auth.allow_plaintext = true;
    config.limits.max_connections = idle + 100;
    config.limits.max_connections_per_ip = idle + 100;
    let running = mailroom::app::start(config).await.expect("server starts");
    let store = running.store.clone();
    let hash = mailroom::auth::password::hash("secret")
        .await
        .expect("hash");
    let account = store
        .create_account(NewAccount {
            address: "user@localhost",
            password_hash: &hash,
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .expect("account");

    let fill = Instant::now();
    let workers = 16;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                let raw = report(i, "user@localhost");
                store
                    .deliver(
                        Delivery {
                            raw: &raw,
                            internal_date: None,
                        },
                        &[Target::inbox(account.id)],
                    )
                    .await
                    .expect("delivery");
            }
        }));
    }
    for t in tasks {
        t.await.expect("filler");
    }
    println!(
        "filled INBOX with {n} messages of ~4 KiB in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    let addr = running.addr("imap").expect("imap listener");
    for pass in ["first pass (cold caches)", "second pass"] {
        println!("\nIMAP over plain TCP on 127.0.0.1, release build, server in-process, {pass}:");
        steps(addr, n).await;
    }

    // Idle sessions: log in (argon2 for each, a few at a time), select, IDLE. As many logins
    // first run without staying: argon2 takes 19 MiB per hash and glibc keeps that in its
    // arenas (measured: the RSS grows by ~500 MiB over the first few hundred logins whatever
    // the sessions hold), so the baseline includes it and the difference is the sessions'.
    let mut warm = Vec::new();
    for _ in 0..idle {
        warm.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.cmd("LOGIN user@localhost secret").await;
            c.cmd("LOGOUT").await;
        }));
        if warm.len() == 8 {
            for w in warm.drain(..) {
                w.await.expect("warm-up");
            }
        }
    }
    idle_sessions(addr, idle).await;
    running.shutdown().await;
}

/// The timed commands, over one new connection.
async fn steps(addr: std::net::SocketAddr, n: usize) {
    let mut c = Client::connect(addr).await;
    c.cmd("LOGIN user@localhost secret").await;
    timed(&mut c, "SELECT INBOX", "SELECT INBOX").await;
    timed(
        &mut c,
        "UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)",
        "UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)",
    )
    .await;
    let last = 1000.min(n);
    timed(
        &mut c,
        &format!("FETCH 1:{last} BODY.PEEK[] ({last} full bodies)"),
        &format!("FETCH 1:{last} BODY.PEEK[]"),
    )
    .await;
    for key in ["SUBJECT", "BODY", "TEXT"] {
        timed(
            &mut c,
            &format!("UID SEARCH {key} {RARE} (1% match)"),
            &format!("UID SEARCH {key} {RARE}"),
        )
        .await;
    }
    timed(
        &mut c,
        "STORE 1:* +FLAGS (\\Flagged) (all)",
        "STORE 1:* +FLAGS (\\Flagged)",
    )
    .await;
    c.cmd("LOGOUT").await;
}

async fn idle_sessions(addr: std::net::SocketAddr, idle: usize) {
    let before = rss_kib();
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(idle);
    let mut pending = Vec::new();
    for i in 0..idle {
        pending.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.cmd("LOGIN user@localhost secret").await;
            c.cmd("SELECT INBOX").await;
            c.s.get_mut().write_all(b"i IDLE\r\n").await.expect("idle");
            let mut line = String::new();
            c.s.read_line(&mut line).await.expect("idling");
            assert!(line.starts_with('+'), "{line}");
            c.s.into_inner()
        }));
        if pending.len() == 8 || i + 1 == idle {
            for p in pending.drain(..) {
                sessions.push(p.await.expect("session"));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    println!(
        "{idle} connections logged in, INBOX selected, in IDLE (opened in {:.1} s):",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  process RSS {:.1} MiB (server and client sides in one process), {:.1} MiB before \
         opening them: {:.1} KiB per idle session",
        after as f64 / 1024.0,
        before as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / idle.max(1) as f64
    );
    drop(sessions);
}
