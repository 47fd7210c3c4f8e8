//! The accept loop: per-IP limits, idle timeouts, STARTTLS upgrade, graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::net::{Connection, Handler, Limits, Listener, Security};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

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
                    let _ = conn.shutdown.wait_for(|s| *s).await;
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
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let listener = Listener::bind("test", "127.0.0.1:0".parse().unwrap(), security, echo())
        .await
        .unwrap();
    let addr = listener.local;
    let (tx, rx) = watch::channel(false);
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
    tx.send(true).unwrap();
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
