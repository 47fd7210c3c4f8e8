//! A sink MX on loopback for the outbound benches (bench/outbound.rs, and the outbound rows of
//! bench/compare): answers everything with 250 and offers PIPELINING, like a real MX, counts
//! completed DATA, and reads each message's header on the way to check that it arrived
//! DKIM-signed with both an `rsa-sha256` and an `ed25519-sha256` signature (what Mailroom adds,
//! and what the compare bench asks OpenDKIM for).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
struct Counts {
    delivered: AtomicUsize,
    /// Messages with (at least) one rsa-sha256 and one ed25519-sha256 DKIM-Signature.
    signed: AtomicUsize,
    /// The DKIM-Signature fields of the first message since the last reset.
    sample: Mutex<Option<String>>,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
}

impl Sink {
    /// Listens on a free loopback port until the runtime ends.
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink");
        let addr = listener.local_addr().expect("sink address");
        let counts = Arc::new(Counts::default());
        tokio::spawn(accept(listener, counts.clone()));
        Sink { addr, counts }
    }

    /// Messages completed (final `250` sent) since the last reset.
    pub fn delivered(&self) -> usize {
        self.counts.delivered.load(Ordering::Relaxed)
    }

    /// Of those, the messages that carried an RSA and an Ed25519 DKIM signature.
    pub fn signed(&self) -> usize {
        self.counts.signed.load(Ordering::Relaxed)
    }

    /// The DKIM-Signature fields of one received message, to show.
    pub fn sample(&self) -> Option<String> {
        self.counts.sample.lock().unwrap().clone()
    }

    /// Starts counting afresh (for the next server or round).
    pub fn reset(&self) {
        self.counts.delivered.store(0, Ordering::Relaxed);
        self.counts.signed.store(0, Ordering::Relaxed);
        *self.counts.sample.lock().unwrap() = None;
    }
}

async fn accept(listener: TcpListener, counts: Arc<Counts>) {
    while let Ok((tcp, _)) = listener.accept().await {
        tokio::spawn(session(tcp, counts.clone()));
    }
}

/// What the header of one message said about its DKIM signatures.
#[derive(Default)]
struct Header {
    /// Still in the header (before the empty line).
    open: bool,
    /// The current line continues a DKIM-Signature field.
    in_dkim: bool,
    rsa: bool,
    ed25519: bool,
    fields: String,
}

impl Header {
    fn line(&mut self, line: &[u8]) {
        if !self.open {
            return;
        }
        if line == b"\r\n" || line == b"\n" {
            self.open = false;
            return;
        }
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            self.in_dkim = line
                .get(..15)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"DKIM-Signature:"));
        }
        if self.in_dkim {
            let text = String::from_utf8_lossy(line);
            self.rsa |= text.contains("a=rsa-sha256");
            self.ed25519 |= text.contains("a=ed25519-sha256");
            self.fields.push_str(&text);
        }
    }
}

async fn session(tcp: tokio::net::TcpStream, counts: Arc<Counts>) {
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = Vec::new();
    let mut in_data = false;
    let mut header = Header::default();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = if in_data {
            if line != b".\r\n" {
                header.line(&line);
                continue;
            }
            in_data = false;
            if header.rsa && header.ed25519 {
                counts.signed.fetch_add(1, Ordering::Relaxed);
            }
            let mut sample = counts.sample.lock().unwrap();
            if sample.is_none() {
                *sample = Some(std::mem::take(&mut header.fields));
            }
            drop(sample);
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            b"250 2.0.0 ok\r\n"
        } else if line.starts_with(b"EHLO") {
            b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
        } else if line.starts_with(b"DATA") {
            in_data = true;
            header = Header {
                open: true,
                ..Header::default()
            };
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
}

/// The domains the outbound benches send to: d0.test, d1.test, ...
pub fn domain(d: usize) -> String {
    format!("d{d}.test")
}

/// Starts a DNS server on loopback (tests/it/dns_server.rs, which the bench includes as
/// `dns_server`) publishing MX records for the first `domains` [`domain`]s, all naming one MX
/// host at 127.0.0.1; the server under test resolves through it (`[dns] nameservers`) and
/// connects to the sink's port (`[queue] smtp_port`).
pub async fn dns(domains: usize) -> SocketAddr {
    let zone = crate::dns_server::Zone::default();
    for d in 0..domains {
        zone.mx(&domain(d), 10, "mx.sink.test");
    }
    zone.ip("mx.sink.test", std::net::IpAddr::from([127, 0, 0, 1]));
    crate::dns_server::start(zone).await
}

/// Outbound message `i` from `from` to `to`: ~4 KB of text (bench/outbound.rs's message).
pub fn message(i: usize, from: &str, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <{from}>\r\nTo: {to}\r\nSubject: outbound bench {i}\r\n\
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
