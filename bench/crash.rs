//! `cargo bench --bench crash`: kill -9 under load, restart, and check that nothing
//! acknowledged was lost.
//!
//! Runs the release `mailroom` binary as a separate process on loopback ports with a
//! temporary data directory. Each round (`CRASH_ROUNDS`, default 20) starts the server, has 20
//! SMTP clients send distinct messages to five accounts and one IMAP client APPEND to a sixth,
//! and kills the server with SIGKILL after a random 0.3–2.5 s. Then, with the server down, it
//! opens the database and checks:
//!
//! - every message that got a `250` after DATA, or `OK` after APPEND, is stored and
//!   byte-for-byte intact (found by its Message-ID);
//! - `PRAGMA integrity_check` says ok;
//! - UIDs never go backwards: each mailbox's UIDNEXT is above every UID it ever handed out,
//!   and above the UIDNEXT seen after the previous round;
//! - each account's quota counters (bytes and messages) match what is stored.
//!
//! Any loss fails the run (exit status 1). The next round restarts the server on the same
//! data, so every restart after a crash is exercised too.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/init.rs"]
mod init;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SMTP_CLIENTS: usize = 20;
const USERS: usize = 5;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The message with this id, always the same bytes (so "intact" can be checked).
fn message(id: &str, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Load <load@example.net>\r\nTo: {to}\r\nSubject: crash test {id}\r\n\
         Message-ID: <{id}@crash.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n"
    );
    for n in 0..40 {
        m.push_str(&format!(
            "{id} line {n}: the quick brown fox jumps over the lazy dog\r\n"
        ));
    }
    m.into_bytes()
}

/// Acknowledged messages: Message-ID → (account address, exact bytes sent).
type Acked = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn reply(r: &mut BufReader<TcpStream>) -> Option<u16> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3)?.parse().ok();
        }
    }
}

/// One SMTP client: sends until the connection dies, recording each message acknowledged.
async fn smtp_client(addr: SocketAddr, round: usize, client: usize, acked: Acked) {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return;
    };
    let mut r = BufReader::new(tcp);
    if reply(&mut r).await != Some(220) {
        return;
    }
    let _ = r.get_mut().write_all(b"EHLO load.example.net\r\n").await;
    if reply(&mut r).await != Some(250) {
        return;
    }
    for seq in 0.. {
        let id = format!("r{round}c{client}s{seq}");
        let to = format!("user{}@localhost", (client + seq) % USERS);
        let body = message(&id, &to);
        let mut data =
            format!("MAIL FROM:<load@example.net>\r\nRCPT TO:<{to}>\r\nDATA\r\n").into_bytes();
        if r.get_mut().write_all(&data).await.is_err() {
            return;
        }
        for want in [250, 250, 354] {
            if reply(&mut r).await != Some(want) {
                return;
            }
        }
        data = body.clone();
        data.extend_from_slice(b".\r\n");
        if r.get_mut().write_all(&data).await.is_err() {
            return;
        }
        match reply(&mut r).await {
            Some(250) => acked.lock().expect("lock").push((id, to, body)),
            _ => return,
        }
    }
}

/// One IMAP client appending to appender@localhost's INBOX.
async fn imap_client(addr: SocketAddr, round: usize, acked: Acked) {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return;
    };
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let _ = r
        .get_mut()
        .write_all(b"a LOGIN appender@localhost orbit-lantern-secret\r\n")
        .await;
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line.starts_with("a ") {
            break;
        }
    }
    for seq in 0.. {
        let id = format!("r{round}imap{seq}");
        let body = message(&id, "appender@localhost");
        let cmd = format!("b APPEND INBOX {{{}+}}\r\n", body.len());
        let mut data = cmd.into_bytes();
        data.extend_from_slice(&body);
        data.extend_from_slice(b"\r\n");
        if r.get_mut().write_all(&data).await.is_err() {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.starts_with("b ") {
                break;
            }
        }
        if line.starts_with("b OK") {
            acked
                .lock()
                .expect("lock")
                .push((id, "appender@localhost".into(), body));
        } else {
            return;
        }
    }
}

fn start(bin: &str, config: &Path) -> Child {
    Command::new(bin)
        .args(["--config", &config.display().to_string(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts")
}

async fn wait_listening(addr: SocketAddr) {
    let t = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The checks, on the database with the server down. Returns the problems found.
async fn verify(
    db: &Path,
    acked: &[(String, String, Vec<u8>)],
    uidnext: &mut HashMap<i64, u32>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match Store::check_file(db).await {
        Ok(_) => {}
        Err(e) => problems.push(format!("integrity: {e}")),
    }
    let store = Store::open(db).await.expect("database opens");
    // Everything stored, by Message-ID, per account.
    let mut stored: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let mut per_account: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for account in store.accounts(None).await.expect("accounts") {
        let (mut bytes, mut count) = (0i64, 0i64);
        for mailbox in store.mailboxes(account.id).await.expect("mailboxes") {
            let messages = store.messages(&mailbox).await.expect("messages");
            let max_uid = messages.iter().map(|m| m.uid).max().unwrap_or(0);
            if mailbox.uidnext <= max_uid {
                problems.push(format!(
                    "{}: UIDNEXT {} <= UID {max_uid}",
                    mailbox.name, mailbox.uidnext
                ));
            }
            let before = uidnext.insert(mailbox.id(), mailbox.uidnext).unwrap_or(0);
            if mailbox.uidnext < before {
                problems.push(format!(
                    "{} of {}: UIDNEXT went back from {before} to {}",
                    mailbox.name, account.address, mailbox.uidnext
                ));
            }
            for m in messages {
                bytes += m.size as i64;
                count += 1;
                let raw = store.message_body(&mailbox, m.uid).await.expect("body");
                let text = String::from_utf8_lossy(&raw);
                if let Some(id) = text
                    .split("Message-ID: <")
                    .nth(1)
                    .and_then(|r| r.split('@').next())
                {
                    stored.insert(id.to_string(), (account.address.clone(), raw.clone()));
                }
            }
        }
        if (bytes, count) != (account.used_bytes, account.message_count) {
            problems.push(format!(
                "{}: counters say {} bytes / {} messages, stored {bytes} / {count}",
                account.address, account.used_bytes, account.message_count
            ));
        }
        per_account.insert(account.address.clone(), (bytes, count));
    }
    for (id, to, body) in acked {
        match stored.get(id) {
            None => problems.push(format!("LOST: {id} for {to} was acknowledged")),
            // SMTP adds trace fields on top; the message itself must follow unchanged.
            Some((who, raw)) if who != to || !raw.ends_with(body) => {
                problems.push(format!("CHANGED: {id} for {to}"))
            }
            Some(_) => {}
        }
    }
    store.close().await;
    problems
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bin = env!("CARGO_BIN_EXE_mailroom");
    let dir = tempfile::tempdir().expect("tempdir");
    let (smtp_port, imap_port) = (free_port(), free_port());
    let config = dir.path().join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"localhost\"\ndomain = \"localhost\"\ndata_dir = {:?}\n[listen]\nsmtp = [\"127.0.0.1:{smtp_port}\"]\nsubmission = []\nsubmissions = []\n\
             imap = [\"127.0.0.1:{imap_port}\"]\nimaps = []\npop3 = []\npop3s = []\nmanagesieve = []\nhttp = []\nhttps = []\n\
             [auth]\nallow_plaintext = true\n[inbound]\nverify = false\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .expect("config");
    let cli = |args: &[&str], stdin: &str| {
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
            .write_all(stdin.as_bytes())
            .expect("password");
        assert!(c.wait().expect("cli").success(), "{args:?}");
    };
    init::make_database(bin, dir.path(), "localhost");
    for u in (0..USERS)
        .map(|i| format!("user{i}@localhost"))
        .chain(["appender@localhost".into()])
    {
        cli(
            &["user", "add", &u, "--password-stdin"],
            "orbit-lantern-secret\n",
        );
    }
    let smtp: SocketAddr = ([127, 0, 0, 1], smtp_port).into();
    let imap: SocketAddr = ([127, 0, 0, 1], imap_port).into();
    let db = dir.path().join("data/mailroom.db");
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let mut uidnext = HashMap::new();
    let mut failures = 0;
    for round in 0..rounds {
        let mut server = start(bin, &config);
        wait_listening(smtp).await;
        wait_listening(imap).await;
        let mut tasks = Vec::new();
        for c in 0..SMTP_CLIENTS {
            tasks.push(tokio::spawn(smtp_client(smtp, round, c, acked.clone())));
        }
        tasks.push(tokio::spawn(imap_client(imap, round, acked.clone())));
        let delay = Duration::from_millis(300 + rand::random::<u64>() % 2200);
        tokio::time::sleep(delay).await;
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        for t in tasks {
            let _ = t.await;
        }
        let snapshot = acked.lock().expect("lock").clone();
        let problems = verify(&db, &snapshot, &mut uidnext).await;
        println!(
            "round {round:>2}: killed after {:>4} ms, {:>6} acknowledged so far, {}",
            delay.as_millis(),
            snapshot.len(),
            if problems.is_empty() {
                "all present and intact".to_string()
            } else {
                format!("{} PROBLEMS", problems.len())
            }
        );
        for p in problems.iter().take(20) {
            println!("    {p}");
        }
        failures += problems.len();
    }
    let all = acked.lock().expect("lock").clone();
    let appended = all.iter().filter(|(id, _, _)| id.contains("imap")).count();
    println!(
        "{rounds} rounds, {} acknowledged messages ({} by SMTP 250, {appended} by IMAP APPEND OK), {failures} problems",
        all.len(),
        all.len() - appended
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
