//! The in-process test harness: the whole server on ephemeral ports of 127.0.0.1 with a
//! temporary data directory, plus small helpers to create accounts and messages.

use std::path::Path;

use mailroom::app::{self, Running};
use mailroom::auth::password;
use mailroom::config::{Config, Listen};
use mailroom::store::{Account, NewAccount, Store};
use tempfile::TempDir;

pub struct TestServer {
    pub running: Running,
    pub dir: TempDir,
}

/// A config for tests: the embedded default with a temporary data directory, every listener
/// on port 0, and a throttle quick enough for tests.
pub fn config(dir: &Path) -> Config {
    let mut config = Config::embedded();
    config.data_dir = dir.to_path_buf();
    config.listen = Listen::ephemeral();
    config.limits.shutdown_grace_secs = 2;
    // Never the real DNS or port 25 from a test: mail for other domains stays queued (the
    // discard port answers no DNS), unless a test points these at its own peers.
    config.dns.nameservers = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    config.queue.smtp_port = 9;
    config
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    // A DNS server of our own that knows no names: SPF/DKIM/DMARC checks of inbound mail get
    // quick NXDOMAINs instead of timeouts (tests about them publish records with their own).
    config.dns.nameservers =
        vec![crate::dns_server::start(crate::dns_server::Zone::default()).await];
    change(&mut config);
    let running = app::start(config).await.expect("server starts");
    TestServer { running, dir }
}

/// A store alone in a temporary directory, with the domain example.org.
pub async fn store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("mailroom.db"))
        .await
        .expect("store opens");
    store.add_domain("example.org").await.expect("domain");
    (store, dir)
}

/// Creates an account with password "secret" (hashed once per process: argon2 is slow on
/// purpose) and the given quota.
pub async fn account(store: &Store, address: &str, quota: u64) -> Account {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = HASH
        .get_or_init(|| async { password::hash("secret").await.expect("hash") })
        .await;
    store
        .create_account(NewAccount {
            address,
            password_hash: hash,
            quota_bytes: quota,
            is_admin: false,
        })
        .await
        .expect("account")
}

/// The messages in the INBOX of `address`, oldest first, as text.
pub async fn inbox_texts(store: &Store, address: &str) -> Vec<String> {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in store.messages(&inbox).await.unwrap() {
        out.push(
            String::from_utf8_lossy(&store.message_body(&inbox, m.uid).await.unwrap()).to_string(),
        );
    }
    out
}

/// A well-formed message of about `size` bytes whose body mentions `word`.
pub fn message(subject: &str, word: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Alice Example <alice@example.net>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}.{word}@example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is about {word}.\r\n"
    );
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    while m.len() + line.len() <= size {
        m.push_str(line);
    }
    m.into_bytes()
}

/// A TLS client over `tcp` that trusts the self-signed certificate in `data_dir`.
pub async fn tls_client(
    data_dir: &Path,
    tcp: tokio::net::TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = CertificateDer::from_pem_file(data_dir.join("tls/self-signed.crt"))
        .expect("self-signed cert");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// A minimal HTTP/1.1 GET over any stream: (status, headers lower-cased, body).
pub async fn http_get<S>(stream: &mut S, path: &str) -> (u16, String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

/// A port that is free now and stays free until the test listens on it (for a port a test
/// must name before it listens: pebble's idea of our HTTPS port, a peer that is down at
/// first). It is chosen below the kernel's ephemeral range, where the ports other tests bind
/// to (port 0) never land; one from that range was once taken by another test in between
/// (`Address already in use`).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(12_000, 65_000);
    let span = low - 10_000;
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 10_000 + seed.wrapping_add(n.wrapping_mul(131)) % span;
        let port = u16::try_from(port).expect("port");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// The lines a spawned `mailroom serve` logs on stderr, read on a thread of their own (so the
/// pipe never fills): a test waits on them for the `listening:` lines.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}
