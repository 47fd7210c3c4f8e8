//! `cargo bench --bench load`: 2,000 abusive connections while a normal client works.
//!
//! Runs the release `mailroom` binary as a separate process (so its memory can be read from
//! /proc) on loopback with a limit of half the flood (1,000 connections, per IP and over
//! all). A normal IMAP client (NOOP, then UID
//! FETCH of the newest message's flags) and a normal SMTP client (one message per transaction)
//! work throughout. Then 2,000 connections arrive, spread over SMTP, IMAP, POP3 and HTTP: a
//! third stay idle, a third are slow-loris (one byte a second of a line that never ends), a
//! third send garbage. 100 more connections beyond the limit (per flood) must each get an
//! answer: served, by evicting the oldest connection not logged in, or a clear refusal; the
//! run fails when one gets neither (silence or a reset). The abusers come from
//! 127.0.0.1 and the normal SMTP client from 127.0.0.2: as an MX client it never logs in, and
//! on the flood's own IP it would be the oldest connection there (eviction picks the IP with
//! the most connections first); the normal IMAP client logs in, so it is never evicted.
//! The normal clients' latencies are reported for the calm before and for the flood (p50, p99,
//! max); the server's RSS before, at the peak, and 10 s after each of two floods (what the
//! allocator keeps after the first must not grow with the second).
//! `LOAD_CONNECTIONS` and `LOAD_SECS` (default 20) change the flood.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/init.rs"]
mod init;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let _ = r.read_line(&mut line).await;
    line
}

/// The normal IMAP client: NOOP then a FETCH, timed together.
async fn imap_round(r: &mut BufReader<TcpStream>, n: &mut u32) -> Duration {
    let t = Instant::now();
    for cmd in ["NOOP", "UID FETCH * (FLAGS)"] {
        *n += 1;
        let tag = format!("n{n}");
        r.get_mut()
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await
            .expect("imap write");
        loop {
            let line = read_line(r).await;
            assert!(!line.is_empty(), "normal IMAP client cut off");
            if line.starts_with(&tag) {
                assert!(line.starts_with(&format!("{tag} OK")), "{line}");
                break;
            }
        }
    }
    t.elapsed()
}

async fn smtp_reply(r: &mut BufReader<TcpStream>) -> u16 {
    loop {
        let line = read_line(r).await;
        assert!(!line.is_empty(), "normal SMTP client cut off");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
}

/// The normal SMTP client: one whole transaction, timed.
async fn smtp_round(r: &mut BufReader<TcpStream>, i: usize) -> Duration {
    let t = Instant::now();
    let msg = "MAIL FROM:<a@example.net>\r\nRCPT TO:<user@localhost>\r\nDATA\r\n";
    r.get_mut()
        .write_all(msg.as_bytes())
        .await
        .expect("smtp write");
    for want in [250, 250, 354] {
        assert_eq!(smtp_reply(r).await, want);
    }
    r.get_mut()
        .write_all(format!("Subject: normal {i}\r\n\r\nstill working\r\n.\r\n").as_bytes())
        .await
        .expect("smtp write");
    assert_eq!(smtp_reply(r).await, 250);
    t.elapsed()
}

/// One abusive connection of `kind` (0 idle, 1 slow-loris, 2 garbage) until `until`.
async fn abuser(addr: SocketAddr, kind: usize, until: Instant) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    let mut buf = [0u8; 512];
    let mut n = 0u64;
    while Instant::now() < until {
        match kind {
            0 => {
                // Refused or closed: gone (a closed socket would read 0 at once, forever).
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
                {
                    return;
                }
            }
            1 => {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => {
                n += 1;
                let junk = format!("\x01\x7f{n} \u{fffd}%%%% {{{{}}}} ((( GARBAGE {n}\r\n");
                if s.write_all(junk.as_bytes()).await.is_err() {
                    return;
                }
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await
                {
                    return;
                }
            }
        }
    }
}

fn report(label: &str, mut t: Vec<Duration>) {
    if t.is_empty() {
        println!("{label:<44} no samples");
        return;
    }
    t.sort();
    let at = |q: f64| t[((t.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{label:<44} n={:<5} p50 {:>6.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        t.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let flood: usize = std::env::var("LOAD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let secs: u64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bin = env!("CARGO_BIN_EXE_mailroom");
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    // Below the flood, so abusers and the extra connections meet the limit (garbage ones are
    // soon closed by the server, freeing slots).
    let limit = flood / 2;
    let config = dir.path().join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"localhost\"\ndomain = \"localhost\"\ndata_dir = {:?}\n[listen]\n\
             smtp = [\"127.0.0.1:{}\"]\nsubmission = []\nsubmissions = []\nimap = [\"127.0.0.1:{}\"]\n\
             imaps = []\npop3 = [\"127.0.0.1:{}\"]\npop3s = []\nmanagesieve = []\nhttp = [\"127.0.0.1:{}\"]\nhttps = []\n\
             [auth]\nallow_plaintext = true\n[inbound]\nverify = false\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n\
             [limits]\nmax_connections = {limit}\nmax_connections_per_ip = {limit}\n",
            dir.path().join("data").display().to_string(),
            ports[0],
            ports[1],
            ports[2],
            ports[3]
        ),
    )
    .expect("config");
    let cli = |args: &[&str]| {
        let mut c = Command::new(bin)
            .args(["--config", &config.display().to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cli");
        use std::io::Write;
        c.stdin
            .take()
            .expect("stdin")
            .write_all(b"orbit-lantern-secret\n")
            .expect("password");
        assert!(c.wait().expect("cli").success(), "{args:?}");
    };
    init::make_database(bin, dir.path(), "localhost");
    cli(&["user", "add", "user@localhost", "--password-stdin"]);
    let mut server = Command::new(bin)
        .args(["--config", &config.display().to_string(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server");
    let addrs: Vec<SocketAddr> = ports.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect();
    let t = Instant::now();
    while TcpStream::connect(addrs[0]).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The normal clients.
    let mut imap = BufReader::new(TcpStream::connect(addrs[1]).await.expect("imap"));
    read_line(&mut imap).await;
    let mut n = 0;
    imap.get_mut()
        .write_all(b"l LOGIN user@localhost orbit-lantern-secret\r\ns SELECT INBOX\r\n")
        .await
        .expect("login");
    while !read_line(&mut imap).await.starts_with("s OK") {}
    let mut smtp = BufReader::new({
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 2], 0).into())
            .expect("bind 127.0.0.2");
        socket.connect(addrs[0]).await.expect("smtp")
    });
    assert_eq!(smtp_reply(&mut smtp).await, 220);
    smtp.get_mut()
        .write_all(b"EHLO normal.example\r\n")
        .await
        .expect("ehlo");
    assert_eq!(smtp_reply(&mut smtp).await, 250);
    for i in 0..20 {
        smtp_round(&mut smtp, i).await;
    }
    let pid = server.id();
    let (mut calm_imap, mut calm_smtp) = (Vec::new(), Vec::new());
    let calm_until = Instant::now() + Duration::from_secs(5);
    let mut i = 100;
    while Instant::now() < calm_until {
        calm_imap.push(imap_round(&mut imap, &mut n).await);
        calm_smtp.push(smtp_round(&mut smtp, i).await);
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = rss_kib(pid);

    let mut rss_after_rounds = Vec::new();
    let mut peak = rss_before;
    let (mut flood_imap, mut flood_smtp, mut after_imap) = (Vec::new(), Vec::new(), Vec::new());
    let (mut served, mut refused_clearly, mut unanswered) = (0, 0, Vec::new());
    // Two floods: memory kept after the first may be the allocator's; it must not grow again.
    for _round in 0..2 {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for c in 0..flood {
            tasks.push(tokio::spawn(abuser(addrs[c % 4], (c / 4) % 3, until)));
            if c % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Over the limit: every extra connection is served (evicting an idle one) or told why.
        let mut extra = Vec::new();
        for c in 0..100 {
            let mut s = match TcpStream::connect(addrs[c % 4]).await {
                Ok(s) => s,
                Err(e) => {
                    unanswered.push(format!("connection {c}: connect failed: {e}"));
                    continue;
                }
            };
            if c % 4 == 3 {
                let _ = s
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await;
            }
            let mut buf = [0u8; 256];
            let got = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
            let text = match got {
                Ok(Ok(k)) => String::from_utf8_lossy(&buf[..k]).to_string(),
                _ => String::new(),
            };
            if text.contains("Too many connections") {
                refused_clearly += 1;
            } else if !text.is_empty() {
                served += 1;
            } else {
                unanswered.push(format!("connection {c} ({}): no answer", addrs[c % 4]));
            }
            extra.push(s);
        }
        while Instant::now() < until {
            flood_imap.push(imap_round(&mut imap, &mut n).await);
            flood_smtp.push(smtp_round(&mut smtp, i).await);
            i += 1;
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(extra);
        for t in tasks {
            let _ = t.await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        for _ in 0..50 {
            after_imap.push(imap_round(&mut imap, &mut n).await);
        }
        rss_after_rounds.push(rss_kib(pid));
    }

    println!(
        "{flood} abusive connections for {secs} s, twice (idle, slow-loris, garbage over SMTP, IMAP, POP3, HTTP); limit {limit}"
    );
    report("normal IMAP NOOP + FETCH, before", calm_imap);
    report("normal IMAP NOOP + FETCH, during the floods", flood_imap);
    report("normal IMAP NOOP + FETCH, after", after_imap);
    report("normal SMTP transaction, before", calm_smtp);
    report("normal SMTP transaction, during the floods", flood_smtp);
    println!(
        "connections over the limit: of 200 extra ones, {served} served (evicting idle ones), {refused_clearly} refused with a clear reply"
    );
    println!(
        "server RSS: {} MiB before, {} MiB at the peak, {} MiB 10 s after the first flood, {} MiB 10 s after the second",
        rss_before / 1024,
        peak / 1024,
        rss_after_rounds.first().copied().unwrap_or(0) / 1024,
        rss_after_rounds.last().copied().unwrap_or(0) / 1024
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        unanswered.is_empty(),
        "{} connections over the limit got neither service nor a clear refusal: {:?}",
        unanswered.len(),
        unanswered
    );
}
