//! A small POP3 client for the tests, plain or TLS, and store helpers.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mailroom::store::{Account, Delivery, Store, Target};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer};

pub const WAIT: Duration = Duration::from_secs(20);

/// A line-oriented POP3 client over any stream.
pub struct Pop<S> {
    s: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop<S> {
    pub fn new(s: S) -> Pop<S> {
        Pop {
            s: BufReader::new(s),
        }
    }

    /// The stream, for a TLS upgrade; nothing may be left unread.
    pub fn into_inner(self) -> S {
        assert!(
            self.s.buffer().is_empty(),
            "unread input before the upgrade"
        );
        self.s.into_inner()
    }

    /// One reply line without its CRLF; "" at end of stream.
    pub async fn line(&mut self) -> String {
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, self.s.read_until(b'\n', &mut raw))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(
            raw.is_empty() || raw.ends_with(b"\r\n"),
            "not CRLF: {raw:?}"
        );
        String::from_utf8_lossy(&raw).trim_end().to_string()
    }

    pub async fn send(&mut self, data: &str) {
        self.s
            .get_mut()
            .write_all(data.as_bytes())
            .await
            .expect("write");
    }

    /// Sends a command, returns its status line.
    pub async fn cmd(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n")).await;
        self.line().await
    }

    /// Reads a multi-line body up to its "." line, un-stuffed, lines joined with CRLF.
    pub async fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut raw = Vec::new();
            tokio::time::timeout(WAIT, self.s.read_until(b'\n', &mut raw))
                .await
                .expect("body in time")
                .expect("read");
            assert!(raw.ends_with(b"\r\n"), "unterminated body line {raw:?}");
            if raw == b".\r\n" {
                return out;
            }
            out.extend_from_slice(raw.strip_prefix(b".").unwrap_or(&raw));
        }
    }

    /// A command with a multi-line answer: (status, lines).
    pub async fn multi(&mut self, command: &str) -> (String, Vec<String>) {
        let status = self.cmd(command).await;
        assert!(status.starts_with("+OK"), "{command}: {status}");
        let body = String::from_utf8(self.body().await).expect("utf-8 listing");
        (status, body.lines().map(str::to_string).collect())
    }

    /// True when the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(WAIT, self.s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub async fn login(&mut self, user: &str) -> String {
        let r = self.cmd(&format!("USER {user}")).await;
        assert!(r.starts_with("+OK"), "USER: {r}");
        self.cmd("PASS secret").await
    }
}

pub async fn plain(addr: SocketAddr) -> Pop<TcpStream> {
    let mut p = Pop::new(TcpStream::connect(addr).await.expect("connect"));
    let greeting = p.line().await;
    assert!(greeting.starts_with("+OK "), "{greeting}");
    p
}

pub type TlsPop = Pop<tokio_rustls::client::TlsStream<TcpStream>>;

pub async fn implicit(t: &TestServer) -> TlsPop {
    let tcp = TcpStream::connect(t.running.addr("pop3s").expect("pop3s"))
        .await
        .expect("connect");
    let mut p = Pop::new(harness::tls_client(t.dir.path(), tcp).await);
    let greeting = p.line().await;
    assert!(greeting.starts_with("+OK "), "{greeting}");
    p
}

impl Pop<TcpStream> {
    /// STLS, then the handshake.
    pub async fn stls(mut self, data_dir: &Path) -> TlsPop {
        let r = self.cmd("STLS").await;
        assert!(r.starts_with("+OK"), "STLS: {r}");
        Pop::new(harness::tls_client(data_dir, self.into_inner()).await)
    }
}

pub async fn deliver(store: &Store, to: &Account, raw: &[u8]) -> u32 {
    let report = store
        .deliver(
            Delivery {
                raw,
                internal_date: None,
            },
            &[Target::inbox(to.id)],
        )
        .await
        .expect("deliver");
    report.delivered.first().expect("delivered").uid
}

pub async fn inbox_uids(store: &Store, account: &Account) -> Vec<u32> {
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .expect("INBOX");
    store
        .messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect()
}
