//! Attacks from the hardening issue, each reproduced as an attacker would run it (loopback
//! only, bounded): relaying through a guessed SRS address, memory held by messages and commands
//! in flight before login, an overflowing SIZE, NUL bytes reaching IMAP clients.
//!
//! The memory tests run the real binary as its own process, so its resident size is the
//! server's alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{account, start_with};
use crate::smtp::{Client, connect};

/// The server binary running on its own, with its bound addresses.
struct Process {
    child: Child,
    addrs: HashMap<String, SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `mailroom serve` with the embedded default changed by `extra` TOML sections
    /// (SMTP and IMAP on port 0, nothing else).
    fn start(limits: &str) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailroom.toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"localhost\"\ndomain = \"localhost\"\ndata_dir = \"{}\"\n\
                 [listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = []\nsubmissions = []\n\
                 imap = [\"127.0.0.1:0\"]\nimaps = []\npop3 = []\npop3s = []\nmanagesieve = []\nhttp = []\nhttps = []\n\
                 [inbound]\nverify = false\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n\
                 [limits]\n{limits}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = crate::harness::stderr_lines(&mut child);
        let mut addrs = HashMap::new();
        while addrs.len() < 2 {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server logs its addresses");
            if let Some(rest) = line.split("listening: ").nth(1)
                && let Some((kind, addr)) = rest.split_once(" on ")
            {
                addrs.insert(kind.to_string(), addr.trim().parse().unwrap());
            }
        }
        Process {
            child,
            addrs,
            _dir: dir,
        }
    }

    /// Resident memory in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Growth the memory attacks may cause, whatever the attacker sends.
const BOUND_MIB: f64 = 64.0;

/// Twenty unauthenticated MX sessions each part-way through an 8 MiB DATA (160 MiB in all)
/// hold no more than the budget for mail in flight; the messages past it are refused with
/// `452 4.3.1` at their end, the others stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_data_in_flight_is_bounded_by_the_memory_budget() {
    let server = Process::start("max_message_memory = \"16M\"");
    let smtp = server.addrs["smtp"];
    let open = |smtp| async move {
        let mut c = Client::new(TcpStream::connect(smtp).await.unwrap());
        c.reply().await;
        c.expect("EHLO attacker.test", 250, "").await;
        c.expect("MAIL FROM:<x@attacker.test>", 250, "").await;
        c.expect("RCPT TO:<admin@localhost>", 250, "").await;
        c.expect("DATA", 354, "").await;
        c
    };
    // Warm up: one whole small message, so the baseline includes what any delivery allocates.
    let mut warm = open(smtp).await;
    warm.send(b"Subject: warm\r\n\r\nhello\r\n").await;
    warm.expect(".", 250, "").await;
    let before = server.rss_mib();

    let line = format!("{}\r\n", "x".repeat(998));
    let chunk = line.repeat(1024); // 1 MiB
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let mut c = open(smtp).await;
        for _ in 0..8 {
            c.send(chunk.as_bytes()).await;
        }
        sessions.push(c);
    }
    // Everything sent has been read by the server once a NOOP-like round trip would pass; the
    // data is not finished, so a short wait lets the last bytes land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = server.rss_mib();
    let mut codes = Vec::new();
    for mut c in sessions {
        c.send(b"\r\n").await;
        let (code, text) = c.cmd(".").await;
        if code == 452 {
            assert!(text.contains("4.3.1"), "{text}");
        }
        codes.push(code);
    }
    println!(
        "SMTP 20 x 8 MiB DATA in flight: RSS {before:.0} -> {during:.0} MiB; replies {codes:?}"
    );
    assert!(
        during - before < BOUND_MIB,
        "RSS grew from {before:.0} to {during:.0} MiB"
    );
    assert!(codes.iter().all(|c| *c == 250 || *c == 452), "{codes:?}");
    assert!(codes.contains(&452), "some refused for want of memory");
    assert!(codes.contains(&250), "some stored");
}

/// Before login, one IMAP command of many non-synchronizing literals (each within LITERAL-'s
/// 4096 octets) on ten connections: each connection is cut off once its command passes 128 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_commands_before_login_are_bounded_as_a_whole() {
    let server = Process::start("");
    let imap = server.addrs["imap"];
    let warm = TcpStream::connect(imap).await.unwrap();
    drop(warm);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_mib();
    let literal = vec![b'a'; 4_000];
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let literal = literal.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(imap).await.unwrap();
            let mut greeting = [0u8; 512];
            let _ = s.read(&mut greeting).await;
            let _ = s.write_all(b"a1 LOGIN {4000+}\r\n").await;
            // 2,600 literals: 10 MiB in one command, if the server would take it.
            for _ in 0..2600 {
                if s.write_all(&literal).await.is_err()
                    || s.write_all(b" {4000+}\r\n").await.is_err()
                {
                    break;
                }
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
            String::from_utf8_lossy(&answer).to_string()
        }));
    }
    // Sampled while the attack runs, not after the connections have closed.
    let mut peak = before;
    while !tasks.iter().all(|t| t.is_finished()) {
        peak = peak.max(server.rss_mib());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    println!("IMAP 10 connections x 10 MiB pre-login command: RSS {before:.0} -> {peak:.0} MiB");
    for a in &answers {
        assert!(a.contains("BYE [TOOBIG]"), "{a}");
    }
    assert!(
        peak - before < BOUND_MIB,
        "RSS grew from {before:.0} to {peak:.0} MiB"
    );
}

/// The same limits seen by a client speaking by the rules: synchronizing literals refused
/// with a tagged `NO`, the session going on, and APPEND after login bounded by the budget.
#[tokio::test]
async fn imap_literals_are_refused_past_the_command_limit_and_the_budget() {
    let t = start_with(|c| {
        c.auth.allow_plaintext = true;
        c.limits.max_message_memory = 1 << 20;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut c = crate::imap::connect(&t).await;
    // Before login: two literals of 64 KiB (each within the literal limit) pass the 128 KiB
    // command limit.
    c.send(b"a1 LOGIN {65536}\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(&vec![b'u'; 65536]).await;
    c.send(b" {65536}\r\n").await;
    let refused = c.line().await;
    assert!(
        refused.starts_with("a1 NO [TOOBIG]") && refused.contains("before login"),
        "{refused}"
    );
    c.ok("LOGIN alice@localhost secret").await;

    // After login: an APPEND larger than the budget (1 MiB beyond 64 KiB) is refused for now,
    // one within it is taken, and the claim is given back for the next.
    let big = 2 << 20;
    c.send(format!("a2 APPEND INBOX {{{big}}}\r\n").as_bytes())
        .await;
    let busy = c.line().await;
    assert!(busy.starts_with("a2 NO [UNAVAILABLE]"), "{busy}");
    for n in 3..5 {
        let message = crate::harness::message("fits", "budget", 900 << 10);
        c.send(format!("a{n} APPEND INBOX {{{}}}\r\n", message.len()).as_bytes())
            .await;
        assert!(c.line().await.starts_with('+'));
        c.send(&message).await;
        c.send(b"\r\n").await;
        let (_, tagged) = c.until(&format!("a{n}")).await;
        assert!(tagged.starts_with("TAG OK"), "{tagged}");
    }
}

/// The same budget on SMTP, for DATA and for BDAT: a message beyond it gets `452 4.3.1` at its
/// end, and the session goes on to deliver a small one.
#[tokio::test]
async fn smtp_messages_beyond_the_budget_get_a_temporary_error() {
    let t = start_with(|c| c.limits.max_message_memory = 1 << 20).await;
    let mut c = connect(&t, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;
    let big = crate::harness::message("big", "budget", 2 << 20);
    c.expect("MAIL FROM:<a@client.test>", 250, "").await;
    c.expect("RCPT TO:<admin@localhost>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(&big).await;
    c.expect(".", 452, "4.3.1").await;

    c.expect("MAIL FROM:<a@client.test>", 250, "").await;
    c.expect("RCPT TO:<admin@localhost>", 250, "").await;
    let half = big.len() / 2;
    c.send(format!("BDAT {half}\r\n").as_bytes()).await;
    c.send(&big[..half]).await;
    c.reply().await;
    c.send(format!("BDAT {} LAST\r\n", big.len() - half).as_bytes())
        .await;
    c.send(&big[half..]).await;
    let (code, text) = c.reply().await;
    assert_eq!((code, text.contains("4.3.1")), (452, true), "{text}");

    c.expect("MAIL FROM:<a@client.test>", 250, "").await;
    c.expect("RCPT TO:<admin@localhost>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"Subject: small\r\n\r\nstill flows\r\n").await;
    c.expect(".", 250, "").await;
}

/// A SIZE too large for any integer is refused, not read as a small number.
#[tokio::test]
async fn an_overflowing_size_is_refused() {
    let t = start_with(|_| {}).await;
    let mut c = connect(&t, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;
    c.expect(
        "MAIL FROM:<a@client.test> SIZE=99999999999999999999999",
        552,
        "5.3.4",
    )
    .await;
    c.expect("MAIL FROM:<a@client.test> SIZE=1000", 250, "")
        .await;
}

/// A client that guesses SRS addresses from a real sender gets `550` for each (only bounces
/// may use them), and after the limit of refusals, `450` for everything from its address, on
/// every new connection, while another address is still served.
#[tokio::test]
async fn guessing_recipients_is_limited_per_client_across_connections() {
    let t = start_with(|c| {
        c.domain = "example.org".into();
        c.inbound.refused_rcpt_limit = 6;
    })
    .await;
    let mut guesses = 0;
    for _ in 0..3 {
        let mut c = connect(&t, "smtp").await;
        c.expect("EHLO spammer.test", 250, "").await;
        c.expect("MAIL FROM:<spammer@outside.example>", 250, "")
            .await;
        for _ in 0..2 {
            guesses += 1;
            c.expect(
                &format!("RCPT TO:<SRS0=AAAA{guesses:06}=AA=remote.example=victim@example.org>"),
                550,
                "5.1.1",
            )
            .await;
        }
        c.expect("QUIT", 221, "").await;
    }
    let mut c = connect(&t, "smtp").await;
    c.expect("EHLO spammer.test", 250, "").await;
    c.expect("MAIL FROM:<spammer@outside.example>", 250, "")
        .await;
    c.expect("RCPT TO:<admin@example.org>", 450, "4.7.1").await;

    // Another client address (all of 127/8 is loopback) is not affected.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = socket
        .connect(t.running.addr("smtp").unwrap())
        .await
        .unwrap();
    let mut other = Client::new(tcp);
    other.reply().await;
    other.expect("EHLO friend.test", 250, "").await;
    other
        .expect("MAIL FROM:<friend@outside.example>", 250, "")
        .await;
    other.expect("RCPT TO:<admin@example.org>", 250, "").await;
}

/// NUL bytes in a stored message never reach an IMAP client raw (RFC 3501 §4.3).
#[tokio::test]
async fn nul_bytes_are_not_sent_in_imap_literals() {
    let (t, alice) = crate::imap::server().await;
    crate::imap::deliver(
        &t.running.store,
        &alice,
        b"From: a@b.test\r\nSubject: nul\0here\r\n\r\nbody with \0 a nul\r\n",
    )
    .await;
    let mut c = crate::imap::logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    let lines = c.ok("FETCH 1 (ENVELOPE BODY[])").await;
    let text = lines.join("\n");
    assert!(text.contains("body with \u{FFFD} a nul"), "{text}");
    assert!(!text.contains('\0'), "{text:?}");
}

/// An anonymous POST may not make the server hold more than a form's worth: a 1 MiB sign-in
/// is refused (413) before anything reads it whole.
#[tokio::test]
async fn anonymous_form_bodies_are_small() {
    let t = start_with(|_| {}).await;
    let mut s = TcpStream::connect(t.running.addr("http").unwrap())
        .await
        .unwrap();
    let body = format!(
        "username=admin%40localhost&password={}",
        "x".repeat(1 << 20)
    );
    let head = format!(
        "POST /mail/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// A request head past 64 KiB is refused (hyper would hold ~400 KiB per connection).
#[tokio::test]
async fn request_heads_are_small() {
    let t = start_with(|_| {}).await;
    let mut s = TcpStream::connect(t.running.addr("http").unwrap())
        .await
        .unwrap();
    let head = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "x".repeat(100 * 1024)
    );
    let _ = s.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
