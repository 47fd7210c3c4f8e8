//! The accept loop: per-IP limits, idle timeouts, STARTTLS upgrade, graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::net::{Connection, Handler, Limits, Listener, Security};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Echoes lines; "IDLE <ms>" sets the idle timeout, "TLS" upgrades, "INFO" reports TLS.
fn echo() -> Handler {
    Arc::new(|mut conn: Connection| {
        Box::pin(async move {
            let mut buf = [0u8; 256];
            loop {
                let n = match conn.stream.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = conn
                            .stream
                            .write_all(format!("ERR {:?}\n", e.kind()).as_bytes())
                            .await;
                        return;
                    }
                };
                let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                if let Some(ms) = line.strip_prefix("IDLE ") {
                    conn.stream
                        .set_idle_timeout(Duration::from_millis(ms.parse().unwrap()));
                    let _ = conn.stream.write_all(b"OK\n").await;
                } else if line == "TLS" {
                    let _ = conn.stream.write_all(b"GO\n").await;
                    if conn.starttls().await.is_err() {
                        return;
                    }
                } else if line == "INFO" {
                    let info = format!("{:?}\n", conn.tls_info().map(|i| i.version));
                    let _ = conn.stream.write_all(info.as_bytes()).await;
                } else if line == "WAIT" {
                    conn.shutdown.wait().await;
                    let _ = conn.stream.write_all(b"BYE\n").await;
                    return;
                } else {
                    let _ = conn.stream.write_all(format!("{line}\n").as_bytes()).await;
                }
            }
        })
    })
}

async fn line(s: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("reply in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

async fn listen(
    security: Security,
    max_per_ip: usize,
) -> (
    std::net::SocketAddr,
    mailroom::shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<()>,
) {
    let listener = Listener::bind("test", "127.0.0.1:0".parse().unwrap(), security, echo())
        .await
        .unwrap();
    let addr = listener.local;
    let (tx, rx) = mailroom::shutdown::channel();
    let task = tokio::spawn(listener.run(Limits::new(100, max_per_ip), rx, Duration::from_secs(2)));
    (addr, tx, task)
}

#[tokio::test]
async fn per_ip_limit_closes_the_extra_connection() {
    let (addr, _tx, _task) = listen(Security::Plain(None), 2).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    a.write_all(b"one\n").await.unwrap();
    assert_eq!(line(&mut a).await, "one");
    b.write_all(b"two\n").await.unwrap();
    assert_eq!(line(&mut b).await, "two");
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(b"three\n").await;
    assert_eq!(
        line(&mut c).await,
        "",
        "third connection from one IP is closed"
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = TcpStream::connect(addr).await.unwrap();
    d.write_all(b"four\n").await.unwrap();
    assert_eq!(line(&mut d).await, "four", "a freed slot is reused");
}

#[tokio::test]
async fn idle_peers_time_out() {
    let (addr, _tx, _task) = listen(Security::Plain(None), 10).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"IDLE 300\n").await.unwrap();
    assert_eq!(line(&mut s).await, "OK");
    let started = Instant::now();
    assert_eq!(line(&mut s).await, "ERR TimedOut");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn shutdown_lets_sessions_say_goodbye_then_stops() {
    let (addr, tx, task) = listen(Security::Plain(None), 10).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"WAIT\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.trigger();
    assert_eq!(line(&mut s).await, "BYE");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn starttls_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = mailroom::tls::Tls::load(&Default::default(), "localhost", dir.path())
        .await
        .unwrap();
    let (addr, _tx, _task) = listen(Security::Plain(Some(tls.acceptor(&[]))), 10).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"INFO\n").await.unwrap();
    assert_eq!(line(&mut s).await, "None");
    s.write_all(b"TLS\n").await.unwrap();
    assert_eq!(line(&mut s).await, "GO");
    let mut t = crate::harness::tls_client(dir.path(), s).await;
    t.write_all(b"INFO\n").await.unwrap();
    let info = line(&mut t).await;
    assert!(info.starts_with("Some(\"TLS 1."), "{info}");
}

#[tokio::test]
async fn over_the_limit_each_protocol_says_why() {
    let server = crate::harness::start_with(|c| c.limits.max_connections_per_ip = 1).await;
    for (kind, first, refusal) in [
        ("smtp", "220 ", "421 4.7.0 Too many connections"),
        ("imap", "* OK", "* BYE [UNAVAILABLE] Too many connections"),
        ("pop3", "+OK", "-ERR [SYS/TEMP] Too many connections"),
        ("http", "", "HTTP/1.1 503 Service Unavailable"),
    ] {
        let addr = server.running.addr(kind).unwrap();
        let mut held = TcpStream::connect(addr).await.unwrap();
        if !first.is_empty() {
            assert!(line(&mut held).await.starts_with(first.trim()), "{kind}");
        } else {
            held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            assert!(line(&mut held).await.starts_with("HTTP/1.1 200"));
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let said = line(&mut extra).await;
        assert!(said.starts_with(refusal), "{kind}: {said:?}");
        drop(held);
        // The slot is released when the held connection's task sees the close.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.running.shutdown().await;
}

/// A connection from `ip` (any 127.x.y.z is loopback: a flood "from many IPs" on one host).
async fn connect_from(ip: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((ip, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads one line (up to 10 s); "" at EOF or on an error.
async fn read_line(s: &mut tokio::io::BufReader<TcpStream>) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_line(&mut line))
        .await
        .expect("a line or EOF in time");
    line.trim_end().to_string()
}

/// How long until the server closes `s`, reading whatever it says (up to `limit`).
async fn time_to_close(s: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> (Duration, String) {
    let started = Instant::now();
    let mut said = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let elapsed = if closed.is_ok() {
        started.elapsed()
    } else {
        Duration::MAX
    };
    (elapsed, String::from_utf8_lossy(&said).to_string())
}

/// What a clean client gets first from each protocol (for HTTP, the answer to GET /healthz).
async fn first_words(server: &crate::harness::TestServer, kind: &str) -> String {
    let addr = server.running.addr(kind).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    if kind == "http" {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
    }
    line(&mut s).await
}

/// Issue 16 (4): idle IMAP connections from a few IPs that never log in fill every slot; a
/// clean client must still get in on every protocol (IMAP by evicting the oldest idle one, the
/// others through their reserved slots), and a client that logged in is never evicted.
#[tokio::test]
async fn an_idle_flood_leaves_room_for_a_clean_client() {
    let server = crate::harness::start_with(|c| {
        c.limits.max_connections = 40;
        c.limits.max_connections_per_ip = 10;
        c.auth.allow_plaintext = true;
    })
    .await;
    crate::harness::account(&server.running.store, "alice@localhost", 0).await;
    let imap = server.running.addr("imap").unwrap();
    // 4 IPs x 10: every slot of the server, as many as the per-IP limit allows.
    let mut flood = Vec::new();
    for n in 0..40u8 {
        let mut s = tokio::io::BufReader::new(connect_from([127, 0, 0, 2 + n % 4], imap).await);
        let greeting = read_line(&mut s).await;
        assert!(greeting.starts_with("* OK"), "flood {n}: {greeting}");
        flood.push(s);
    }
    let mut clean = Vec::new();
    for kind in ["imap", "smtp", "submission", "pop3", "http"] {
        let said = first_words(&server, kind).await;
        let expected = match kind {
            "imap" => "* OK",
            "pop3" => "+OK",
            "http" => "HTTP/1.1 200",
            _ => "220 ",
        };
        assert!(
            said.starts_with(expected),
            "clean client on {kind}: {said:?}"
        );
        clean.push(kind);
    }
    // The flood lost connections to make room (its oldest); the server said why.
    let mut closed = 0;
    for s in &mut flood {
        let (t, said) = time_to_close(s, Duration::from_millis(50)).await;
        if t != Duration::MAX {
            assert!(said.is_empty() || said.starts_with("* BYE"), "{said:?}");
            closed += 1;
        }
    }
    assert!(closed >= 11, "only {closed} flood connections were closed");

    // A clean client logs in; a second flood evicts flood connections, never it.
    let mut alice = tokio::io::BufReader::new(TcpStream::connect(imap).await.unwrap());
    assert!(read_line(&mut alice).await.starts_with("* OK"));
    alice
        .get_mut()
        .write_all(b"a LOGIN alice@localhost secret\r\n")
        .await
        .unwrap();
    let reply = read_line(&mut alice).await;
    assert!(reply.starts_with("a OK"), "{reply}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = Vec::new();
    for n in 0..40u8 {
        let mut s = tokio::io::BufReader::new(connect_from([127, 0, 0, 6 + n % 4], imap).await);
        let greeting = read_line(&mut s).await;
        assert!(greeting.starts_with("* OK"), "second flood {n}: {greeting}");
        second.push(s);
    }
    alice.get_mut().write_all(b"b NOOP\r\n").await.unwrap();
    let reply = read_line(&mut alice).await;
    assert!(
        reply.starts_with("b OK"),
        "the logged-in client was closed: {reply:?}"
    );
    server.running.shutdown().await;
}

/// Issue 16 (4): a client that never logs in is disconnected at the login deadline (IMAP,
/// POP3, submission), one that logged in is not, and the MX (no login) is not either.
#[tokio::test]
async fn connections_that_do_not_log_in_end_at_the_login_deadline() {
    let server = crate::harness::start_with(|c| {
        c.limits.login_timeout_secs = 1;
        c.auth.allow_plaintext = true;
    })
    .await;
    crate::harness::account(&server.running.store, "alice@localhost", 0).await;
    let mut idle = Vec::new();
    for kind in ["imap", "pop3", "submission"] {
        let mut s = TcpStream::connect(server.running.addr(kind).unwrap())
            .await
            .unwrap();
        assert!(!line(&mut s).await.is_empty(), "{kind} greets");
        idle.push((kind, s));
    }
    // Busy but never logging in does not help.
    idle[0].1.write_all(b"a NOOP\r\n").await.unwrap();
    let mut mx = TcpStream::connect(server.running.addr("smtp").unwrap())
        .await
        .unwrap();
    assert!(line(&mut mx).await.starts_with("220 "));
    let mut alice = tokio::io::BufReader::new(
        TcpStream::connect(server.running.addr("imap").unwrap())
            .await
            .unwrap(),
    );
    assert!(read_line(&mut alice).await.starts_with("* OK"));
    alice
        .get_mut()
        .write_all(b"a LOGIN alice@localhost secret\r\n")
        .await
        .unwrap();
    assert!(read_line(&mut alice).await.starts_with("a OK"));

    let started = Instant::now();
    for (kind, s) in &mut idle {
        let (_, said) = time_to_close(s, Duration::from_secs(5)).await;
        let at = started.elapsed();
        assert!(
            at < Duration::from_millis(2500),
            "{kind} still open after {at:?}"
        );
        if *kind == "imap" {
            assert!(said.contains("* BYE"), "{said:?}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.get_mut().write_all(b"b NOOP\r\n").await.unwrap();
    let reply = read_line(&mut alice).await;
    assert!(
        reply.starts_with("b OK"),
        "logged in, yet closed: {reply:?}"
    );
    mx.write_all(b"NOOP\r\n").await.unwrap();
    assert!(
        line(&mut mx).await.starts_with("250"),
        "the MX has no login deadline"
    );
    server.running.shutdown().await;
}

/// Issue 16 (4): an HTTP client trickling its request header one byte at a time is cut off at
/// the header deadline, whether it claims HTTP/1.1 or the HTTP/2 preface.
#[tokio::test]
async fn http_headers_trickled_are_cut_off_at_the_deadline() {
    let server = crate::harness::start_with(|c| c.limits.http_header_timeout_secs = 1).await;
    let addr = server.running.addr("http").unwrap();
    assert!(
        first_words(&server, "http")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let slow: [&[u8]; 2] = [
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for request in slow {
        let (mut r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
        let trickle = tokio::spawn(async move {
            for b in request {
                if w.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            // Then nothing: hold the connection open.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let (t, _) = time_to_close(&mut r, Duration::from_secs(8)).await;
        trickle.abort();
        let shown = String::from_utf8_lossy(&request[..3]);
        assert!(
            t >= Duration::from_millis(900),
            "{shown}: closed after {t:?}"
        );
        assert!(
            t < Duration::from_millis(2500),
            "{shown}: still open after {t:?}"
        );
    }
    server.running.shutdown().await;
}

/// The same flood on an implicit-TLS listener, holding connections in the TLS handshake: a
/// clean client gets its greeting, and the connection evicted for it is closed at once rather
/// than at the end of the handshake timeout.
#[tokio::test]
async fn a_flood_stuck_in_tls_handshakes_is_evicted_at_once() {
    let server = crate::harness::start_with(|c| {
        c.limits.max_connections = 40;
        c.limits.max_connections_per_ip = 10;
    })
    .await;
    let imaps = server.running.addr("imaps").unwrap();
    let mut flood = Vec::new();
    for n in 0..29u8 {
        flood.push(connect_from([127, 0, 0, 2 + n % 3], imaps).await);
    }
    // Every slot IMAPS may take (its reserve and the shared pool) is held; let them register.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tcp = TcpStream::connect(imaps).await.unwrap();
    let mut tls =
        tokio::io::BufReader::new(crate::harness::tls_client(server.dir.path(), tcp).await);
    use tokio::io::AsyncBufReadExt;
    let mut greeting = String::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_line(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    // The oldest of the IP holding the most (127.0.0.2, 10 connections) made room.
    let (t, _) = time_to_close(&mut flood[0], Duration::from_secs(3)).await;
    assert!(
        t < Duration::from_secs(3),
        "the evicted handshake is still open"
    );
    server.running.shutdown().await;
}
