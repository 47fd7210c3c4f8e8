//! `cargo bench --bench pop3`: one POP3 client downloading a big maildrop.
//!
//! Starts the whole server in-process (`app::start`, release build, a temporary data dir, only
//! the pop3 listener, passwords allowed without TLS so the figures are about POP3 and the
//! store rather than the cipher), fills one INBOX with `POP3_N` distinct ~4 KB messages
//! (default 10,000) through the delivery path, then times, over loopback TCP, what a client
//! does: STAT (the first one computes every message's size), LIST, UIDL, RETR of every message
//! one after the other, and DELE of every message followed by QUIT (the expunge). Prints
//! milliseconds per step.

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
use std::time::Instant;

use mailroom::config::{Config, Listen};
use mailroom::store::{Delivery, NewAccount, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Client {
    s: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Client {
    async fn status(&mut self) -> String {
        self.line.clear();
        self.s
            .read_until(b'\n', &mut self.line)
            .await
            .expect("read");
        let line = String::from_utf8_lossy(&self.line).trim_end().to_string();
        assert!(line.starts_with("+OK"), "unexpected reply: {line}");
        line
    }

    async fn cmd(&mut self, command: &str) -> String {
        self.s
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("write");
        self.status().await
    }

    /// Reads a multi-line body; returns its octets on the wire.
    async fn body(&mut self) -> usize {
        let mut total = 0;
        loop {
            self.line.clear();
            let n = self
                .s
                .read_until(b'\n', &mut self.line)
                .await
                .expect("read");
            assert!(n > 0, "connection closed in a body");
            if self.line == b".\r\n" {
                return total;
            }
            total += n;
        }
    }
}

fn main() {
    let n: usize = std::env::var("POP3_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = Config::embedded();
    config.data_dir = tmp.path().to_path_buf();
    config.listen = Listen {
        pop3: vec!["127.0.0.1:0".parse().expect("addr")],
        ..Listen::default()
    };
    config.auth.allow_plaintext = true;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let running = mailroom::app::start(config).await.expect("server starts");
        let store = running.store.clone();
        let hash = mailroom::auth::password::hash("bench").await.expect("hash");
        let account = store
            .create_account(NewAccount {
                address: "user@localhost",
                password_hash: &hash,
                quota_bytes: 0,
                is_admin: false,
            })
            .await
            .expect("account");

        let filling = Instant::now();
        let workers = 8;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w..n).step_by(workers) {
                    let raw = plain(i, "user@localhost");
                    let delivery = Delivery {
                        raw: &raw,
                        internal_date: None,
                    };
                    store
                        .deliver(delivery, &[Target::inbox(account.id)])
                        .await
                        .expect("delivery");
                }
            }));
        }
        for t in tasks {
            t.await.expect("filler");
        }
        println!(
            "pop3 bench: {n} messages of ~4 KB delivered in {:.1} s",
            filling.elapsed().as_secs_f64()
        );

        let addr = running.addr("pop3").expect("pop3 listener");
        let mut c = Client {
            s: BufReader::new(TcpStream::connect(addr).await.expect("connect")),
            line: Vec::new(),
        };
        c.status().await;
        c.cmd("USER user@localhost").await;
        let login = Instant::now();
        c.cmd("PASS bench").await;
        let login_ms = ms(login);

        let t = Instant::now();
        let stat = c.cmd("STAT").await;
        let stat_ms = ms(t);
        let t = Instant::now();
        c.cmd("STAT").await;
        let stat_again_ms = ms(t);
        let t = Instant::now();
        c.cmd("LIST").await;
        c.body().await;
        let list_ms = ms(t);
        let t = Instant::now();
        c.cmd("UIDL").await;
        c.body().await;
        let uidl_ms = ms(t);
        let t = Instant::now();
        let mut octets = 0;
        for i in 1..=n {
            c.cmd(&format!("RETR {i}")).await;
            octets += c.body().await;
        }
        let retr_ms = ms(t);
        // A second session, as a client polling a kept maildrop would: sizes are cached.
        c.cmd("QUIT").await;
        let mut c = Client {
            s: BufReader::new(TcpStream::connect(addr).await.expect("connect")),
            line: Vec::new(),
        };
        c.status().await;
        c.cmd("USER user@localhost").await;
        c.cmd("PASS bench").await;
        let t = Instant::now();
        c.cmd("STAT").await;
        let stat_cached_ms = ms(t);

        let t = Instant::now();
        for i in 1..=n {
            c.cmd(&format!("DELE {i}")).await;
        }
        let dele_ms = ms(t);
        let t = Instant::now();
        let quit = c.cmd("QUIT").await;
        let quit_ms = ms(t);
        assert!(quit.contains(&format!("({n} messages deleted)")), "{quit}");
        let inbox = store
            .mailbox(account.id, "INBOX")
            .await
            .expect("mailbox")
            .expect("INBOX");
        assert!(store.messages(&inbox).await.expect("list").is_empty());

        println!("{stat}");
        println!("{:<34} {:>10}", "step", "ms");
        println!("{:<34} {login_ms:>10.1}", "PASS (argon2id + snapshot)");
        println!("{:<34} {stat_ms:>10.1}", "STAT (computes every size)");
        println!("{:<34} {stat_again_ms:>10.1}", "STAT again");
        println!("{:<34} {stat_cached_ms:>10.1}", "STAT, next session");
        println!("{:<34} {list_ms:>10.1}", "LIST");
        println!("{:<34} {uidl_ms:>10.1}", "UIDL");
        println!(
            "{:<34} {retr_ms:>10.1}",
            format!("RETR x {n} ({:.0} MB)", octets as f64 / 1e6)
        );
        println!("{:<34} {:>10.3}", "  per RETR", retr_ms / n as f64);
        println!("{:<34} {dele_ms:>10.1}", format!("DELE x {n}"));
        println!("{:<34} {quit_ms:>10.1}", "QUIT (the expunge)");
        println!("{:<34} {:>10.1}", "DELE all + QUIT", dele_ms + quit_ms);
        running.shutdown().await;
    });
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
