//! THREAD (RFC 5256: REFERENCES, ORDEREDSUBJECT), COMPRESS=DEFLATE (RFC 4978) and BINARY
//! (RFC 3516) over TCP, and the Python exchange in `tests/interop/imap_thread_compress.py`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{deliver, logged_in, server};
use crate::harness::{self, TestServer};

/// A message with these header fields (`None` leaves the field out).
fn mail(id: &str, subject: &str, date: Option<&str>, extra: &str) -> Vec<u8> {
    let date = date.map(|d| format!("Date: {d}\r\n")).unwrap_or_default();
    format!(
        "From: a@example.net\r\nTo: b@example.org\r\nSubject: {subject}\r\n{date}\
         Message-ID: {id}\r\n{extra}\r\nbody of {id}\r\n"
    )
    .into_bytes()
}

/// Runs `tests/interop/<script>` with the server's coordinates; panics with its output unless
/// it exits 0.
async fn run_script(t: &TestServer, script: &str, env: &[(&str, &Path)]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = |kind: &str| t.running.addr(kind).expect(kind).port().to_string();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .envs(env.iter().copied())
        .env("IMAP_HOST", "localhost")
        .env("IMAP_PORT", port("imap"))
        .env("IMAPS_PORT", port("imaps"))
        .env("IMAP_USER", "alice@localhost")
        .env("IMAP_PASSWORD", "secret")
        .env("IMAP_CAFILE", t.dir.path().join("tls/self-signed.crt"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 runs (CI installs it: .ci/run)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The thread fixture: a thread with a folded References field and an In-Reply-To-only
/// reply, two replies to a message that is not there (a dummy parent), a subject-only
/// reply, and a message without a Date (its internal date, 26 Nov 2026, is its sent date).
/// UIDs 2..=9 (UID 1 is expunged first), so sequence numbers are one less than UIDs.
async fn thread_fixture(t: &TestServer, alice: &mailroom::store::Account) {
    let store = &t.running.store;
    let d = |h: u32, m: u32| format!("Thu, 1 Jan 2026 {h:02}:{m:02}:00 +0000");
    let msgs = [
        mail("<0@t>", "filler", Some(&d(7, 0)), ""),
        mail("<1@t>", "topic", Some(&d(10, 0)), ""),
        mail(
            "<2@t>",
            "Re: topic",
            Some(&d(11, 0)),
            "References: <1@t>\r\nIn-Reply-To: <1@t>\r\n",
        ),
        // References wins over In-Reply-To, and is folded; the zone moves it to 12:00 UTC.
        mail(
            "<3@t>",
            "Re: topic",
            Some("Thu, 1 Jan 2026 13:00:00 +0100"),
            "References: <1@t>\r\n\t<2@t>\r\nIn-Reply-To: <elsewhere@t>\r\n",
        ),
        mail(
            "<4@t>",
            "RE: Topic",
            Some(&d(10, 30)),
            "In-Reply-To: <1@t>\r\n",
        ),
        mail(
            "<5@t>",
            "lost parent",
            Some(&d(9, 0)),
            "References: <missing@t>\r\n",
        ),
        mail(
            "<6@t>",
            "other",
            Some(&d(9, 30)),
            "References: <missing@t>\r\n",
        ),
        mail("<7@t>", "Re: unrelated", None, ""),
        mail("<8@t>", "unrelated", Some(&d(8, 0)), ""),
    ];
    for m in &msgs {
        deliver(store, alice, m).await;
    }
}

#[tokio::test]
async fn thread_references_and_orderedsubject() {
    let (t, alice) = server().await;
    thread_fixture(&t, &alice).await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].contains(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES "),
        "{caps:?}"
    );
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await;

    // (8 7): a reply by subject only joins the thread of the same base subject; the dummy
    // <missing@t> keeps its two children at the top; 1's replies by sent date.
    assert_eq!(
        c.ok("THREAD REFERENCES UTF-8 ALL").await,
        ["* THREAD (8 7)((5)(6))(1 (4)(2 3))"]
    );
    // UID THREAD names UIDs.
    assert_eq!(
        c.ok("UID THREAD REFERENCES UTF-8 ALL").await,
        ["* THREAD (9 8)((6)(7))(2 (5)(3 4))"]
    );
    // Grouped by base subject only, each thread's first message heading the others.
    assert_eq!(
        c.ok("THREAD ORDEREDSUBJECT US-ASCII ALL").await,
        ["* THREAD (8 7)(5)(6)(1 (4)(2)(3))"]
    );
    // Search criteria: only the thread about "topic" (and charset as the client likes).
    assert_eq!(
        c.ok("THREAD REFERENCES us-ascii SUBJECT topic").await,
        ["* THREAD (1 (4)(2 3))"]
    );
    // One child of a dummy alone is promoted to the top.
    assert_eq!(
        c.ok("UID THREAD REFERENCES UTF-8 SUBJECT lost").await,
        ["* THREAD (6)"]
    );
    assert_eq!(
        c.ok("THREAD REFERENCES UTF-8 SUBJECT nothing-like-this")
            .await,
        ["* THREAD"]
    );
    let (_, r) = c.cmd("THREAD REFERENCES KOI8-R ALL").await;
    assert_eq!(
        r,
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset"
    );
    let (_, r) = c.cmd("THREAD SHUFFLE UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD unsupported threading algorithm SHUFFLE");
    c.ok("CLOSE").await;
    let (_, r) = c.cmd("THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD THREAD needs a selected mailbox");
}

#[tokio::test]
async fn imaplib_thread_compress_binary() {
    let (t, _alice) = server().await;
    run_script(&t, "imap_thread_compress.py", &[]).await;
}

/// The client end of COMPRESS=DEFLATE: raw deflate both ways, a sync flush per command.
struct Deflated<S> {
    s: S,
    c: flate2::Compress,
    d: flate2::Decompress,
    /// Inflated bytes not yet returned as lines.
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Deflated<S> {
    fn new(s: S) -> Deflated<S> {
        Deflated {
            s,
            c: flate2::Compress::new(flate2::Compression::default(), false),
            d: flate2::Decompress::new(false),
            pending: Vec::new(),
        }
    }

    async fn send(&mut self, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 1024);
        let mut data = data;
        loop {
            let before = self.c.total_in();
            self.c
                .compress_vec(data, &mut out, flate2::FlushCompress::Sync)
                .unwrap();
            data = &data[(self.c.total_in() - before) as usize..];
            if data.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(64 * 1024);
        }
        self.s.write_all(&out).await.unwrap();
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            let mut raw = vec![0u8; 16 * 1024];
            let n = tokio::time::timeout(Duration::from_secs(20), self.s.read(&mut raw))
                .await
                .expect("response in time")
                .unwrap();
            assert!(
                n > 0,
                "closed; pending {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            let mut input = &raw[..n];
            while !input.is_empty() {
                let mut out = Vec::with_capacity(64 * 1024);
                let before = self.d.total_in();
                self.d
                    .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
                    .unwrap();
                input = &input[(self.d.total_in() - before) as usize..];
                self.pending.extend_from_slice(&out);
            }
        }
    }

    /// Sends a tagged command; the untagged lines and the tagged one (tag replaced by TAG).
    async fn cmd(&mut self, tag: &str, command: &str) -> (Vec<String>, String) {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (lines, format!("TAG {rest}"));
            }
            lines.push(line);
        }
    }
}

/// Logs in over `s` (greeting read), turns on COMPRESS and checks a session's worth of
/// commands through it.
async fn compressed_session<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> Deflated<S> {
    let mut c = super::Client::new(s);
    assert!(c.line().await.starts_with("* OK "));
    let (_, r) = c.cmd("COMPRESS DEFLATE").await;
    assert_eq!(r, "TAG BAD COMPRESS is only valid after login");
    let caps = c.ok("LOGIN alice@localhost secret").await;
    assert!(caps.is_empty());
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" COMPRESS=DEFLATE "), "{caps:?}");
    let (_, r) = c.cmd("COMPRESS DEFLATE").await;
    assert_eq!(r, "TAG OK DEFLATE active");
    let mut z = Deflated::new(c.s.into_inner());
    let (_, r) = z.cmd("b1", "NOOP").await;
    assert_eq!(r, "TAG OK NOOP completed");
    let (_, r) = z.cmd("b2", "COMPRESS DEFLATE").await;
    assert_eq!(r, "TAG NO [COMPRESSIONACTIVE] DEFLATE is already active");
    z
}

#[tokio::test]
async fn compress_deflate_plain_and_tls() {
    let (t, alice) = server().await;
    let body = "A line of text that compresses well.\r\n".repeat(20_000);
    let raw = format!("Subject: big\r\nMessage-ID: <big@t>\r\n\r\n{body}");
    deliver(&t.running.store, &alice, raw.as_bytes()).await;

    let tcp = TcpStream::connect(t.running.addr("imap").unwrap())
        .await
        .unwrap();
    let mut z = compressed_session(tcp).await;
    let (lines, r) = z.cmd("c1", "SELECT INBOX").await;
    assert!(r.starts_with("TAG OK [READ-WRITE]"), "{r}");
    assert!(lines.contains(&"* 1 EXISTS".to_string()), "{lines:?}");
    // A large FETCH (written in several chunks) arrives whole and decodes.
    z.send(b"c2 FETCH 1 BODY.PEEK[TEXT]\r\n").await;
    let first = z.line().await;
    assert_eq!(first, format!("* 1 FETCH (BODY[TEXT] {{{}}}", body.len()));
    let mut got = Vec::new();
    while got.len() < body.len() {
        let line = z.line().await;
        got.extend_from_slice(line.as_bytes());
        got.extend_from_slice(b"\r\n");
    }
    assert!(got == body.as_bytes(), "the literal arrives intact");
    assert_eq!(z.line().await, ")");
    assert_eq!(z.line().await, "c2 OK FETCH completed");
    // A decompression bomb: 1 MiB of one letter (about 1 KiB compressed) meets the line
    // limit on what it inflates to, and the session goes on.
    let mut bomb = b"c3 NOOP ".to_vec();
    bomb.extend(std::iter::repeat_n(b'x', 1 << 20));
    bomb.extend_from_slice(b"\r\n");
    z.send(&bomb).await;
    assert_eq!(
        z.line().await,
        "c3 BAD [TOOBIG] command line longer than 65536 octets"
    );
    // Each response comes from a new deflater (the server drops it after the sync flush):
    // the stream goes on seamlessly, pipelined commands included.
    z.send(b"c4a NOOP\r\nc4b NOOP\r\n").await;
    assert_eq!(z.line().await, "c4a OK NOOP completed");
    assert_eq!(z.line().await, "c4b OK NOOP completed");
    let (_, r) = z.cmd("c4", "NOOP").await;
    assert_eq!(r, "TAG OK NOOP completed");
    // IDLE: a delivery made meanwhile is pushed at once, flushed through the deflate stream.
    z.send(b"c6 IDLE\r\n").await;
    assert_eq!(z.line().await, "+ idling");
    deliver(
        &t.running.store,
        &alice,
        b"Subject: during idle\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(z.line().await, "* 2 EXISTS");
    z.send(b"DONE\r\n").await;
    let mut line = z.line().await;
    while line.starts_with("* ") {
        line = z.line().await;
    }
    assert_eq!(line, "c6 OK IDLE terminated");
    let (lines, r) = z.cmd("c5", "LOGOUT").await;
    assert_eq!(lines, ["* BYE logging out"]);
    assert_eq!(r, "TAG OK LOGOUT completed");

    // Over TLS (implicit, 993-style) the same.
    let tcp = TcpStream::connect(t.running.addr("imaps").unwrap())
        .await
        .unwrap();
    let tls = harness::tls_client(t.dir.path(), tcp).await;
    let mut z = compressed_session(tls).await;
    let (_, r) = z.cmd("d1", "EXAMINE INBOX").await;
    assert!(r.starts_with("TAG OK [READ-ONLY]"), "{r}");
    let (lines, _) = z.cmd("d2", "FETCH 1 RFC822.SIZE").await;
    assert_eq!(lines, [format!("* 1 FETCH (RFC822.SIZE {})", raw.len())]);
}

/// Proportional set size of this process (the server runs in it), in KiB.
fn pss_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Opens `n` idle sessions from a Python process (so that no client state is in this
/// process), compressed or not, logged in with INBOX selected; returns once they are.
async fn idle_sessions(port: u16, n: usize, compress: bool) -> tokio::process::Child {
    let script = r#"
import socket, sys, zlib
port, n, comp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
def talk(s, z, line):
    if z:
        s.sendall(z[0].compress(line) + z[0].flush(zlib.Z_SYNC_FLUSH))
    else:
        s.sendall(line)
    buf = b""
    while b"\r\nx OK" not in b"\r\n" + buf:
        raw = s.recv(65536)
        buf += z[1].decompress(raw) if z else raw
keep = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.recv(4096)
    talk(s, None, b"x LOGIN alice@localhost secret\r\n")
    z = None
    if comp:
        talk(s, None, b"x COMPRESS DEFLATE\r\n")
        z = (zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15))
    talk(s, z, b"x SELECT INBOX\r\n")
    keep.append((s, z))
print("ready", flush=True)
sys.stdin.readline()
"#;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), &n.to_string()])
        .arg(if compress { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
        .await
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

/// Memory per idle session with and without COMPRESS (a measurement, not a check; run alone:
/// `cargo test --test it imap::thread_compress::memory -- --ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn memory_per_idle_compressed_session() {
    const N: usize = 300;
    let t = harness::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.limits.max_connections_per_ip = 1000;
    })
    .await;
    harness::account(&t.running.store, "alice@localhost", 0).await;
    let port = t.running.addr("imap").unwrap().port();
    // Warm up (allocator arenas, the store's caches) with a few of each.
    let mut w1 = idle_sessions(port, 10, false).await;
    let mut w2 = idle_sessions(port, 10, true).await;
    w1.kill().await.unwrap();
    w2.kill().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = pss_kib();
    let mut plain = idle_sessions(port, N, false).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_plain = pss_kib();
    let mut compressed = idle_sessions(port, N, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_both = pss_kib();
    println!(
        "PSS KiB: start {base}, +{N} idle plain sessions {with_plain} ({} KiB each), \
         +{N} idle compressed sessions {with_both} ({} KiB each)",
        with_plain.saturating_sub(base) / N as u64,
        with_both.saturating_sub(with_plain) / N as u64
    );
    plain.kill().await.unwrap();
    compressed.kill().await.unwrap();
}

#[tokio::test]
async fn binary_fetch_and_append_literal8() {
    let (t, alice) = server().await;
    // Part 1 base64 with a NUL byte in it, part 2 quoted-printable, part 3 an encoding
    // nobody knows.
    let raw = "Subject: bin\r\nMessage-ID: <bin@t>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAECaGVsbG8A/w==\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        caf=C3=A9 soft=\r\nbreak\r\n\
        --b\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\
        begin 644 x\r\n\
        --b--\r\n";
    deliver(&t.running.store, &alice, raw.as_bytes()).await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" BINARY "), "{caps:?}");
    c.ok("SELECT INBOX").await;
    // Decoded, NUL included: a literal8.
    assert_eq!(
        c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])").await,
        ["* 1 FETCH (BINARY[1] ~{10}\r\n\x00\x01\x02hello\x00\u{fffd} BINARY.SIZE[1] 10)"]
    );
    assert_eq!(
        c.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])").await,
        ["* 1 FETCH (BINARY[2] {15}\r\ncafé softbreak BINARY.SIZE[2] 15)"]
    );
    // A partial range of the decoded content, and a part that does not exist.
    assert_eq!(
        c.ok("FETCH 1 (BINARY.PEEK[1]<3.5> BINARY.PEEK[9])").await,
        ["* 1 FETCH (BINARY[1]<3> {5}\r\nhello BINARY[9] NIL)"]
    );
    let (lines, r) = c.cmd("FETCH 1 (BINARY.PEEK[3])").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(
        r,
        "TAG NO [UNKNOWN-CTE] cannot decode the transfer encoding X-UUENCODE"
    );
    let (_, r) = c.cmd("FETCH 1 BINARY.SIZE[3]").await;
    assert!(r.starts_with("TAG NO [UNKNOWN-CTE]"), "{r}");
    // Without .PEEK the message becomes \Seen (a refused FETCH did not set it).
    // (\Recent: this session was the first to select the mailbox after the message came.)
    assert_eq!(
        c.ok("FETCH 1 FLAGS").await,
        ["* 1 FETCH (FLAGS (\\Recent))"]
    );
    assert_eq!(
        c.ok("FETCH 1 BINARY[2]").await,
        ["* 1 FETCH (BINARY[2] {15}\r\ncafé softbreak FLAGS (\\Seen \\Recent))"]
    );

    // APPEND with a literal8: NUL bytes allowed, stored as sent, and BINARY[] gives them back.
    let message = b"Subject: nul\r\n\r\nbefore\x00after\r\n";
    let tag = c.next_tag();
    c.send(format!("{tag} APPEND INBOX ~{{{}}}\r\n", message.len()).as_bytes())
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(message).await;
    c.send(b"\r\n").await;
    let (_, r) = c.until(&tag).await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
    c.ok("NOOP").await;
    let lines = c
        .ok("FETCH 2 (BINARY.PEEK[] BINARY.SIZE[] RFC822.SIZE)")
        .await;
    assert_eq!(
        lines,
        [format!(
            "* 2 FETCH (BINARY[] ~{{{n}}}\r\n{} BINARY.SIZE[] {n} RFC822.SIZE {n})",
            String::from_utf8_lossy(message),
            n = message.len()
        )]
    );
}

/// THREAD's cost next to SORT's on a mailbox of 3,000 threaded messages (a measurement, not
/// a check; debug build: `cargo test --test it imap::thread_compress::thread_timing --
/// --ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn thread_timing() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 0..3000u32 {
        let refs = if i % 10 == 0 {
            String::new()
        } else {
            format!("References: <{}@t> <{}@t>\r\n", i - i % 10, i - 1)
        };
        let subject = format!("topic {}", i / 10);
        let body = "Some text of a realistic length for a mail body.\r\n".repeat(40);
        let raw = format!(
            "From: a@example.net\r\nSubject: {subject}\r\nMessage-ID: <{i}@t>\r\n{refs}\
             Date: Thu, 1 Jan 2026 10:00:00 +0000\r\n\r\n{body}"
        );
        deliver(store, &alice, raw.as_bytes()).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for command in [
        "SORT (SUBJECT) UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
    ] {
        let start = std::time::Instant::now();
        let lines = c.ok(command).await;
        println!("{command}: {:?}, {} bytes", start.elapsed(), lines[0].len());
    }
}
