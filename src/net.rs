//! The one accept loop every protocol uses.
//!
//! A [`Listener`] binds an address and hands each accepted connection, as a [`Connection`], to
//! its protocol's [`Handler`] in a task of its own, inside a tracing span naming the protocol and
//! the peer (protocols add the account once known). Around that it enforces:
//!
//! - a global and a per-IP limit on open connections (over the limit, a plain connection is
//!   told so in its protocol's words and closed at once: a mail peer retries later);
//! - implicit TLS (465, 993, 995, 443), with a handshake deadline, or plain with a later
//!   [`Connection::starttls`];
//! - an idle timeout on the stream itself: a read or a write that makes no progress for the
//!   protocol's idle time fails with `TimedOut`, so idle and slow peers both end;
//! - graceful shutdown: when the shutdown signal turns true the loop stops accepting, sessions
//!   see the signal (IMAP says BYE, SMTP 421) and get `grace` to finish, and are then dropped.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

/// How long a peer gets to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The idle timeout until the protocol sets its own.
const DEFAULT_IDLE: Duration = Duration::from_secs(300);

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// What a protocol does with a connection.
pub type Handler = Arc<dyn Fn(Connection) -> BoxFuture + Send + Sync>;

/// Resolves once the shutdown signal is true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it before anything else is awaited.
    let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
}

/// What a plain listener says to a connection over the limits before closing it.
fn refusal(protocol: &str) -> Option<&'static [u8]> {
    Some(match protocol {
        "smtp" | "submission" => b"421 4.7.0 Too many connections; try again later\r\n",
        "imap" => b"* BYE [UNAVAILABLE] Too many connections; try again later\r\n",
        "pop3" => b"-ERR [SYS/TEMP] Too many connections; try again later\r\n",
        "http" => {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Type: text/plain\r\n\
              Content-Length: 40\r\nConnection: close\r\n\r\nToo many connections; try again later.\r\n"
        }
        _ => return None,
    })
}

/// Connection limits shared by every listener.
pub struct Limits {
    global: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

impl Limits {
    pub fn new(max: usize, max_per_ip: usize) -> Arc<Limits> {
        Arc::new(Limits {
            global: Arc::new(Semaphore::new(max)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
        })
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let permit = self.global.clone().try_acquire_owned().ok()?;
        let mut map = self.per_ip.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(Admission {
            limits: self.clone(),
            ip,
            _permit: permit,
        })
    }
}

/// A connection's place under the limits, given back when dropped.
struct Admission {
    limits: Arc<Limits>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limits.per_ip.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// How a listener speaks TLS.
#[derive(Clone)]
pub enum Security {
    /// Plain text; the acceptor, when present, is offered for STARTTLS / STLS.
    Plain(Option<TlsAcceptor>),
    /// TLS from the first byte.
    Implicit(TlsAcceptor),
}

/// A bound listener, ready to run.
pub struct Listener {
    pub protocol: &'static str,
    pub local: SocketAddr,
    listener: TcpListener,
    security: Security,
    handler: Handler,
}

impl Listener {
    pub async fn bind(
        protocol: &'static str,
        addr: SocketAddr,
        security: Security,
        handler: Handler,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for {protocol} on {addr}: {e}"),
            )
        })?;
        let local = listener.local_addr()?;
        Ok(Listener {
            protocol,
            local,
            listener,
            security,
            handler,
        })
    }

    /// Accepts until `shutdown` turns true, then gives open sessions `grace` to end.
    pub async fn run(self, limits: Arc<Limits>, shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut sessions = JoinSet::new();
        let mut stop = shutdown.clone();
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(protocol = self.protocol, "accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Some(admission) = limits.admit(peer.ip()) else {
                        crate::metrics::METRICS.connection_refused(self.protocol);
                        tracing::warn!(protocol = self.protocol, %peer, "connection refused: too many connections");
                        // Say why on plain listeners (a TLS handshake is exactly the work a
                        // flood should not get); one small write to a fresh socket, never
                        // waiting on the peer.
                        if matches!(self.security, Security::Plain(_))
                            && let Some(reply) = refusal(self.protocol)
                        {
                            let _ = tcp.try_write(reply);
                        }
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let span = tracing::info_span!("conn", proto = self.protocol, peer = %peer, account = tracing::field::Empty);
                    let conn = Pending {
                        tcp,
                        peer,
                        local: self.local,
                        protocol: self.protocol,
                        security: self.security.clone(),
                        shutdown: shutdown.clone(),
                    };
                    let handler = self.handler.clone();
                    let counted = crate::metrics::METRICS.connection_opened(self.protocol);
                    sessions.spawn(
                        async move {
                            let _admission = admission;
                            let _counted = counted;
                            tracing::debug!("connected");
                            match conn.establish().await {
                                Ok(Some(conn)) => handler(conn).await,
                                Ok(None) => {}
                                Err(e) => tracing::debug!("connection setup failed: {e}"),
                            }
                            tracing::debug!("closed");
                        }
                        .instrument(span),
                    );
                }
            }
        }
        drop(self.listener);
        if !sessions.is_empty() {
            tracing::info!(
                protocol = self.protocol,
                open = sessions.len(),
                "waiting for sessions to finish"
            );
            let drained = tokio::time::timeout(grace, async {
                while sessions.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::info!(
                    protocol = self.protocol,
                    open = sessions.len(),
                    "closing sessions still open"
                );
                sessions.shutdown().await;
            }
        }
    }
}

/// An accepted connection before its TLS handshake.
struct Pending {
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    protocol: &'static str,
    security: Security,
    shutdown: watch::Receiver<bool>,
}

impl Pending {
    /// Runs the implicit TLS handshake if needed. `None` for an ACME validation connection,
    /// which ends once its handshake has proved the challenge.
    async fn establish(self) -> io::Result<Option<Connection>> {
        let (stream, starttls) = match self.security {
            Security::Plain(acceptor) => (Inner::Plain(self.tcp), acceptor),
            Security::Implicit(acceptor) => {
                let tls = handshake(&acceptor, self.tcp).await?;
                if crate::tls::is_acme_challenge(tls.get_ref().1) {
                    tracing::info!("answered an ACME TLS-ALPN-01 challenge");
                    return Ok(None);
                }
                (Inner::Tls(Box::new(tls)), None)
            }
        };
        Ok(Some(Connection {
            stream: Stream::new(stream),
            peer: self.peer,
            local: self.local,
            protocol: self.protocol,
            starttls,
            shutdown: self.shutdown,
        }))
    }
}

async fn handshake(acceptor: &TlsAcceptor, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// One client connection, as a protocol sees it.
pub struct Connection {
    pub stream: Stream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub protocol: &'static str,
    starttls: Option<TlsAcceptor>,
    /// Turns true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
}

/// The negotiated TLS parameters, for Received: headers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

impl Connection {
    /// True when STARTTLS can be offered: a plain connection with a certificate available.
    pub fn can_starttls(&self) -> bool {
        self.starttls.is_some() && !self.is_tls()
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream.inner, Inner::Tls(_))
    }

    /// Upgrades a plain connection to TLS in place (after the protocol's "go ahead" reply).
    /// Protocols must discard anything they buffered before calling this (RFC 3207 §4.2).
    pub async fn starttls(&mut self) -> io::Result<()> {
        let acceptor = self
            .starttls
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "TLS is not available"))?;
        let inner = std::mem::replace(&mut self.stream.inner, Inner::Closed);
        let Inner::Plain(tcp) = inner else {
            self.stream.inner = inner;
            return Err(io::Error::new(io::ErrorKind::Unsupported, "already TLS"));
        };
        let tls = handshake(&acceptor, tcp).await?;
        self.stream.inner = Inner::Tls(Box::new(tls));
        self.stream.touch();
        Ok(())
    }

    pub fn tls_info(&self) -> Option<TlsInfo> {
        let Inner::Tls(tls) = &self.stream.inner else {
            return None;
        };
        let conn = tls.get_ref().1;
        Some(TlsInfo {
            version: conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .replace('v', " ")
                .replace('_', "."),
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
        })
    }

    /// True once the server has begun shutting down.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// What a protocol session needs from its connection, so a session can be driven by a
/// [`Connection`] in the server and by an in-memory stream in unit tests.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// True when a STARTTLS-style upgrade can be offered now.
    fn can_starttls(&self) -> bool;
    fn is_tls(&self) -> bool;
    fn tls_info(&self) -> Option<TlsInfo>;
    /// Upgrades in place; see [`Connection::starttls`].
    fn starttls(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    fn set_idle_timeout(&mut self, idle: Duration);
}

impl Transport for Connection {
    fn can_starttls(&self) -> bool {
        Connection::can_starttls(self)
    }
    fn is_tls(&self) -> bool {
        Connection::is_tls(self)
    }
    fn tls_info(&self) -> Option<TlsInfo> {
        Connection::tls_info(self)
    }
    fn starttls(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        Connection::starttls(self)
    }
    fn set_idle_timeout(&mut self, idle: Duration) {
        self.stream.set_idle_timeout(idle);
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only seen for the instant of a STARTTLS upgrade, or after a failed one.
    Closed,
}

/// A TCP or TLS stream whose reads and writes fail with `TimedOut` after `idle` without
/// progress.
pub struct Stream {
    inner: Inner,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Stream {
    fn new(inner: Inner) -> Stream {
        Stream {
            inner,
            idle: DEFAULT_IDLE,
            timer: Box::pin(tokio::time::sleep(DEFAULT_IDLE)),
        }
    }

    /// Sets the idle timeout (SMTP 5 min, POP3 10 min, IMAP 30 min, …) and restarts it.
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle = idle;
        self.touch();
    }

    fn touch(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.idle);
    }

    /// Maps a pending operation to `TimedOut` once the idle time has passed.
    fn pending_or_timeout<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Inner::Closed => return Poll::Ready(Err(closed())),
        };
        match polled {
            Poll::Ready(r) => {
                this.touch();
                Poll::Ready(r)
            }
            Poll::Pending => this.pending_or_timeout(cx),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, data),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Inner::Closed => return Poll::Ready(Err(closed())),
        };
        match polled {
            Poll::Ready(r) => {
                this.touch();
                Poll::Ready(r)
            }
            Poll::Pending => this.pending_or_timeout(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Inner::Closed => return Poll::Ready(Ok(())),
        };
        match polled {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.pending_or_timeout(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Inner::Closed => Poll::Ready(Ok(())),
        }
    }
}
