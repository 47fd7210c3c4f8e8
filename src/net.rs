//! The one accept loop every protocol uses.
//!
//! A [`Listener`] binds an address and hands each accepted connection, as a [`Connection`], to
//! its protocol's [`Handler`] in a task of its own, inside a tracing span naming the protocol and
//! the peer (protocols add the account once known). Around that it enforces:
//!
//! - a global and a per-IP limit on open connections (over the per-IP limit, a plain connection
//!   is told so in its protocol's words and closed at once: a mail peer retries later);
//! - slots reserved per listener kind (the MX most), so a flood on one protocol cannot lock the
//!   others out; when a listener has no slot left, a new connection evicts the oldest connection
//!   that has not logged in, from the IP holding the most connections, instead of being
//!   refused ([`Limits`]);
//! - a login deadline: a connection to a listener with a login (IMAP, POP3, submission,
//!   ManageSieve) that has not called [`Transport::authenticated`] within `login_timeout`
//!   fails its next read;
//! - implicit TLS (465, 993, 995, 443), with a handshake deadline, or plain with a later
//!   [`Connection::starttls`];
//! - an idle timeout on the stream itself: a read or a write that makes no progress for the
//!   protocol's idle time fails with `TimedOut`, so idle and slow peers both end;
//! - graceful shutdown: when the shutdown signal turns true the loop stops accepting, sessions
//!   see the signal (IMAP says BYE, SMTP 421) and get `grace` to finish, and are then dropped.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

use crate::shutdown::Shutdown;

/// How long a peer gets to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The idle timeout until the protocol sets its own.
const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// The login deadline of [`Limits::new`] (Dovecot's: 3 minutes); `[limits] login_timeout_secs`.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long an evicted session may take to notice (its next read fails at once; one busy in
/// the store finishes first) before its task is dropped, so an eviction frees the slot soon.
const EVICTION_GRACE: Duration = Duration::from_secs(5);

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// What a protocol does with a connection.
pub type Handler = Arc<dyn Fn(Connection) -> BoxFuture + Send + Sync>;

/// What a plain listener says to a connection over the limits before closing it.
fn refusal(protocol: &str) -> Option<&'static [u8]> {
    Some(match protocol {
        "smtp" | "submission" => b"421 4.7.0 Too many connections; try again later\r\n",
        "imap" => b"* BYE [UNAVAILABLE] Too many connections; try again later\r\n",
        "pop3" => b"-ERR [SYS/TEMP] Too many connections; try again later\r\n",
        "managesieve" => b"BYE (TRYLATER) \"Too many connections; try again later\"\r\n",
        "http" => {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Type: text/plain\r\n\
              Content-Length: 40\r\nConnection: close\r\n\r\nToo many connections; try again later.\r\n"
        }
        _ => return None,
    })
}

/// Listener kinds whose protocol has a login, and so a login deadline. The MX has none (a mail
/// server never logs in; RFC 5321's 5-minute command timeout and eviction bound it) and HTTP
/// has its own header deadline (`web::handler`).
fn has_login(protocol: &str) -> bool {
    matches!(
        protocol,
        "imap" | "imaps" | "pop3" | "pop3s" | "submission" | "submissions" | "managesieve"
    )
}

/// The slots a listener kind keeps for itself out of `max`: a tenth for the MX (mail from the
/// world must keep arriving whatever else is flooded), a fortieth for each other kind. With
/// every listener on that is 30% reserved and 70% shared, first come first served.
fn reserve(protocol: &str, max: usize) -> usize {
    if protocol == "smtp" {
        max / 10
    } else {
        max / 40
    }
}

/// Connection limits shared by every listener.
///
/// Each listener kind has a few reserved slots; the rest of `max` is a pool shared by all. A new
/// connection takes a reserved slot of its kind if one is free, else a shared one. When neither
/// is free it evicts a connection that has not logged in and whose slot it can use (one of its
/// own kind, or one of a kind that is over its reserve, i.e. in the shared pool): the one whose
/// IP holds the most connections, the oldest among those. So a flood evicts itself first, and a
/// clean client gets in while the flood lasts. Only when no such connection exists (everything
/// logged in) is the new connection refused. Connections that logged in are never evicted.
///
/// An evicted connection leaves the count at once (the new one takes its slot) and fails its next
/// read; its task is dropped after [`EVICTION_GRACE`] at the latest, so the open sockets exceed
/// `max` only by evictions under way.
pub struct Limits {
    max: usize,
    max_per_ip: usize,
    login_timeout: Duration,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Connections counted against `max` (evicted ones are not, even before they close).
    open: usize,
    /// Every open connection per IP, evicted or not: they all hold a socket.
    per_ip: HashMap<IpAddr, usize>,
    kinds: HashMap<&'static str, Usage>,
    /// Connections that have not logged in, by id: oldest first.
    evictable: BTreeMap<u64, Candidate>,
}

#[derive(Clone, Copy)]
struct Usage {
    reserved: usize,
    open: usize,
}

struct Candidate {
    ip: IpAddr,
    protocol: &'static str,
    eviction: Arc<Eviction>,
}

impl Table {
    fn usage(&mut self, protocol: &'static str, max: usize) -> &mut Usage {
        self.kinds.entry(protocol).or_insert(Usage {
            reserved: reserve(protocol, max),
            open: 0,
        })
    }

    /// True when a connection of `protocol` can have a slot without evicting anyone.
    fn fits(&self, protocol: &str, max: usize) -> bool {
        let reserved: usize = self.kinds.values().map(|u| u.reserved).sum();
        let shared_used: usize = self
            .kinds
            .values()
            .map(|u| u.open.saturating_sub(u.reserved))
            .sum();
        let own = self.kinds.get(protocol).copied().unwrap_or(Usage {
            reserved: 0,
            open: 0,
        });
        self.open < max && (own.open < own.reserved || shared_used < max.saturating_sub(reserved))
    }

    /// The connection to evict to make room for one of `protocol`, if any can be.
    fn victim(&self, protocol: &str) -> Option<u64> {
        self.evictable
            .iter()
            .filter(|(_, c)| {
                c.protocol == protocol
                    || self
                        .kinds
                        .get(c.protocol)
                        .is_some_and(|u| u.open > u.reserved)
            })
            .max_by_key(|(id, c)| (self.per_ip.get(&c.ip).copied().unwrap_or(0), Reverse(**id)))
            .map(|(id, _)| *id)
    }
}

impl Limits {
    /// Limits with the default login deadline.
    pub fn new(max: usize, max_per_ip: usize) -> Arc<Limits> {
        Limits::with_login_timeout(max, max_per_ip, DEFAULT_LOGIN_TIMEOUT)
    }

    pub fn with_login_timeout(
        max: usize,
        max_per_ip: usize,
        login_timeout: Duration,
    ) -> Arc<Limits> {
        Arc::new(Limits {
            max,
            max_per_ip,
            login_timeout,
            table: Mutex::new(Table::default()),
        })
    }

    /// The table; a panic elsewhere while it was held leaves counts that are still usable.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a listener kind's reserve count before its first connection.
    fn register(&self, protocol: &'static str) {
        self.table().usage(protocol, self.max);
    }

    /// A slot for a new connection, evicting one that has not logged in if needed; `None` when
    /// the IP is at its limit or every connection that could make room has logged in.
    fn admit(self: &Arc<Self>, ip: IpAddr, protocol: &'static str) -> Option<Admission> {
        let mut table = self.table();
        if table.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return None;
        }
        table.usage(protocol, self.max);
        if !table.fits(protocol, self.max) {
            let id = table.victim(protocol)?;
            let victim = table.evictable.remove(&id)?;
            victim.eviction.evict();
            table.open = table.open.saturating_sub(1);
            let usage = table.usage(victim.protocol, self.max);
            usage.open = usage.open.saturating_sub(1);
            tracing::debug!(
                evicted = %victim.ip, protocol = victim.protocol, for_protocol = protocol, %ip,
                "closing the oldest connection not logged in to make room"
            );
        }
        table.open += 1;
        table.usage(protocol, self.max).open += 1;
        *table.per_ip.entry(ip).or_insert(0) += 1;
        let id = table.next_id;
        table.next_id += 1;
        let eviction = Arc::new(Eviction::default());
        table.evictable.insert(
            id,
            Candidate {
                ip,
                protocol,
                eviction: eviction.clone(),
            },
        );
        Some(Admission {
            limits: self.clone(),
            id,
            ip,
            protocol,
            eviction,
        })
    }

    /// The connection logged in: it is never evicted from now on.
    fn authenticated(&self, id: u64) {
        self.table().evictable.remove(&id);
    }
}

/// Tells an evicted connection to end: its stream's reads fail, and waiters wake.
#[derive(Default)]
struct Eviction {
    evicted: AtomicBool,
    /// The stream's task, blocked in a read or write.
    waker: AtomicWaker,
    notify: Notify,
}

impl Eviction {
    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.waker.wake();
        self.notify.notify_waiters();
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so an eviction in between is not missed.
            notified.as_mut().enable();
            if self.is_evicted() {
                return;
            }
            notified.await;
        }
    }
}

/// Resolves when the connection is evicted (see [`Connection::eviction_notice`]).
pub struct EvictionNotice(Option<Arc<Eviction>>);

impl EvictionNotice {
    pub async fn wait(&self) {
        match &self.0 {
            Some(e) => e.wait().await,
            None => std::future::pending().await,
        }
    }
}

/// A connection's place under the limits, given back when dropped.
struct Admission {
    limits: Arc<Limits>,
    id: u64,
    ip: IpAddr,
    protocol: &'static str,
    eviction: Arc<Eviction>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut table = self.limits.table();
        if let Some(n) = table.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                table.per_ip.remove(&self.ip);
            }
        }
        table.evictable.remove(&self.id);
        // An evicted connection gave its slot away when it was evicted (under this same lock).
        if !self.eviction.is_evicted() {
            table.open = table.open.saturating_sub(1);
            let usage = table.usage(self.protocol, self.limits.max);
            usage.open = usage.open.saturating_sub(1);
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
    pub async fn run(self, limits: Arc<Limits>, shutdown: Shutdown, grace: Duration) {
        limits.register(self.protocol);
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
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
                    let Some(admission) = limits.admit(peer.ip(), self.protocol) else {
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
                        login_deadline: has_login(self.protocol)
                            .then(|| Instant::now() + limits.login_timeout),
                        slot: Slot {
                            limits: limits.clone(),
                            id: admission.id,
                            eviction: admission.eviction.clone(),
                        },
                    };
                    let handler = self.handler.clone();
                    let counted = crate::metrics::METRICS.connection_opened(self.protocol);
                    sessions.spawn(
                        async move {
                            let eviction = admission.eviction.clone();
                            let _admission = admission;
                            let _counted = counted;
                            tracing::debug!("connected");
                            // A TLS handshake does not read through `Stream`: an eviction
                            // ends it here, at once.
                            // Boxed, the handshake's state is freed once it is done, and the
                            // grace timer exists only after an eviction: what stays for a
                            // session's whole life here is small (a thousand idle IMAP
                            // sessions each hold it).
                            let established = tokio::select! {
                                r = Box::pin(conn.establish()) => r,
                                () = eviction.wait() => Ok(None),
                            };
                            match established {
                                Ok(Some(conn)) => {
                                    let mut session = handler(conn);
                                    tokio::select! {
                                        () = &mut session => {}
                                        () = eviction.wait() => {
                                            let grace = tokio::time::timeout(EVICTION_GRACE, session);
                                            if Box::pin(grace).await.is_err() {
                                                tracing::debug!("evicted session did not end in time");
                                            }
                                        }
                                    }
                                }
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
    shutdown: Shutdown,
    /// When a listener with a login gives up on a connection that has not logged in.
    login_deadline: Option<Instant>,
    slot: Slot,
}

/// What a connection needs to tell the limits about itself.
struct Slot {
    limits: Arc<Limits>,
    id: u64,
    eviction: Arc<Eviction>,
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
        let mut stream = Stream::new(stream);
        stream.deadline = self
            .login_deadline
            .map(|at| Box::pin(tokio::time::sleep_until(at)));
        stream.eviction = Some(self.slot.eviction.clone());
        Ok(Some(Connection {
            stream,
            peer: self.peer,
            local: self.local,
            protocol: self.protocol,
            starttls,
            shutdown: self.shutdown,
            slot: self.slot,
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
    pub shutdown: Shutdown,
    slot: Slot,
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
        self.shutdown.is_set()
    }

    /// The peer logged in: the login deadline is lifted and the connection is never evicted.
    pub fn authenticated(&mut self) {
        self.stream.deadline = None;
        self.slot.limits.authenticated(self.slot.id);
    }

    /// For a protocol that ends an evicted connection itself (HTTP finishes the request under
    /// way): its stream no longer fails when evicted, and the notice resolves instead.
    pub fn eviction_notice(&mut self) -> EvictionNotice {
        EvictionNotice(self.stream.eviction.take())
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
    /// The peer logged in: lifts the login deadline and keeps the connection from being evicted
    /// to make room for others. In-memory transports have nothing to lift.
    fn authenticated(&mut self) {}
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
    fn authenticated(&mut self) {
        Connection::authenticated(self);
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
/// progress, and whose reads fail at the login deadline or once the connection is evicted.
pub struct Stream {
    inner: Inner,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// The login deadline, until the peer logs in.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Watched here unless the protocol took the notice ([`Connection::eviction_notice`]).
    eviction: Option<Arc<Eviction>>,
}

impl Stream {
    fn new(inner: Inner) -> Stream {
        Stream {
            inner,
            idle: DEFAULT_IDLE,
            timer: Box::pin(tokio::time::sleep(DEFAULT_IDLE)),
            deadline: None,
            eviction: None,
        }
    }

    /// Why the connection must end now whatever the peer does: evicted, or not logged in by
    /// the deadline. Registers the task to be woken for either.
    fn ended(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if let Some(eviction) = &self.eviction {
            eviction.waker.register(cx.waker());
            if eviction.is_evicted() {
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "closed to make room for other clients",
                ));
            }
        }
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Some(io::Error::new(io::ErrorKind::TimedOut, "no login in time"));
        }
        None
    }

    /// Sets the idle timeout (SMTP 5 min, POP3 10 min, IMAP 30 min, …) and restarts it.
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle = idle;
        self.touch();
    }

    fn touch(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.idle);
    }

    /// Maps a pending operation to `TimedOut` once the idle time has passed (or the
    /// connection has ended: a write blocked on a peer that reads nothing ends too).
    fn pending_or_timeout<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if let Some(e) = self.ended(cx) {
            return Poll::Ready(Err(e));
        }
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
        // Checked before reading, so a peer that keeps sending cannot outrun the deadline;
        // writes are not stopped, so the session can still say goodbye.
        if let Some(e) = this.ended(cx) {
            return Poll::Ready(Err(e));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    /// 40 slots: smtp keeps 4, imap and pop3 one each, 34 shared.
    fn limits() -> Arc<Limits> {
        let limits = Limits::new(40, 100);
        for kind in ["smtp", "imap", "pop3"] {
            limits.register(kind);
        }
        limits
    }

    #[test]
    fn a_flood_takes_its_reserve_and_the_shared_pool_but_not_other_reserves() {
        let limits = limits();
        let flood: Vec<_> = (0..35)
            .map(|i| limits.admit(ip(1 + i % 5), "imap").expect("room"))
            .collect();
        assert!(flood.iter().all(|a| !a.eviction.is_evicted()));
        // The 36th IMAP connection makes room by evicting; POP3 and SMTP use their reserves.
        let pop = limits.admit(ip(99), "pop3").expect("pop3 reserve");
        assert!(flood.iter().all(|a| !a.eviction.is_evicted()));
        let smtp: Vec<_> = (0..4)
            .map(|_| limits.admit(ip(99), "smtp").expect("smtp reserve"))
            .collect();
        assert!(flood.iter().all(|a| !a.eviction.is_evicted()));
        assert_eq!(limits.table().open, 40);
        let extra = limits.admit(ip(1), "imap").expect("evicts");
        assert_eq!(flood.iter().filter(|a| a.eviction.is_evicted()).count(), 1);
        // The victim is the oldest connection of the IP holding the most (ip 1: 7 + 1).
        assert!(flood[0].eviction.is_evicted());
        assert_eq!(limits.table().open, 40);
        drop((pop, smtp, extra));
        drop(flood);
        let table = limits.table();
        assert_eq!(table.open, 0);
        assert!(table.per_ip.is_empty());
        assert!(table.evictable.is_empty());
        assert!(table.kinds.values().all(|u| u.open == 0));
    }

    #[test]
    fn the_ip_with_most_connections_is_evicted_first_and_logged_in_never() {
        let limits = Limits::new(10, 100);
        limits.register("imap");
        let clean = limits.admit(ip(1), "imap").expect("room");
        let flood: Vec<_> = (0..9)
            .map(|_| limits.admit(ip(2), "imap").expect("room"))
            .collect();
        // Full: a newcomer evicts the flooder's oldest, not the older clean connection.
        let newcomer = limits.admit(ip(3), "imap").expect("evicts");
        assert!(!clean.eviction.is_evicted());
        assert!(flood[0].eviction.is_evicted());
        // Once everyone has logged in, nobody can be evicted and the newcomer is refused.
        for a in flood.iter().skip(1).chain([&clean, &newcomer]) {
            limits.authenticated(a.id);
        }
        assert!(limits.admit(ip(4), "imap").is_none());
        // The evicted connection closing does not free a slot twice.
        drop(flood);
        assert_eq!(limits.table().open, 2);
    }

    #[test]
    fn the_per_ip_limit_counts_evicted_connections_until_they_close() {
        let limits = Limits::new(2, 2);
        limits.register("imap");
        let a = limits.admit(ip(1), "imap").expect("room");
        let _b = limits.admit(ip(2), "imap").expect("room");
        let _c = limits.admit(ip(2), "imap").expect("evicts");
        assert!(a.eviction.is_evicted());
        assert!(
            limits.admit(ip(2), "imap").is_none(),
            "ip 2 is at its limit"
        );
    }

    #[tokio::test]
    async fn eviction_wakes_waiters() {
        let eviction = Arc::new(Eviction::default());
        let waiter = tokio::spawn({
            let e = eviction.clone();
            async move { e.wait().await }
        });
        tokio::task::yield_now().await;
        eviction.evict();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        // Waiting after the fact returns at once.
        eviction.wait().await;
    }
}
