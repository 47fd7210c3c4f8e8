//! Delivery through a smarthost (issue 23): a relay on loopback with TLS from the first byte
//! and a certificate from a test CA (trusted through `[queue] ca_file`), requiring AUTH. The
//! right credentials deliver through it (no MX exists for the recipient's domain); wrong ones
//! defer with the reason and bounce nothing.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use mailroom::store::{RelayTls, Smarthost};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, inbox_texts, start_with};

/// A CA's PEM and a server configuration for `name` it signed.
fn ca_and_server(name: &str) -> (String, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Mailroom relay test CA");
    let ca_pem = params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    (ca_pem, Arc::new(config))
}

#[derive(Default)]
struct Seen {
    auth: Vec<String>,
    /// (recipients, message) of each accepted message.
    messages: Vec<(Vec<String>, String)>,
}

/// The relay: implicit TLS, AUTH PLAIN required with `user`/`pass`.
async fn relay(tls: Arc<ServerConfig>, user: &str, pass: &str) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = TlsAcceptor::from(tls.clone());
            let seen = record.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut s = BufReader::new(stream);
                let _ = s.write_all(b"220 relay.test ESMTP\r\n").await;
                let (mut authed, mut rcpts) = (false, Vec::new());
                let mut line = String::new();
                loop {
                    line.clear();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if let Some(token) = cmd.strip_prefix("AUTH PLAIN ") {
                        seen.lock().unwrap().auth.push(token.to_string());
                        authed = token == expected;
                        if authed {
                            b"235 2.7.0 ok\r\n"
                        } else {
                            b"535 5.7.8 bad credentials\r\n"
                        }
                    } else if upper.starts_with("MAIL") && !authed {
                        b"530 5.7.0 authentication required\r\n"
                    } else if upper.starts_with("MAIL") {
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT") {
                        rcpts.push(cmd.clone());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = s.write_all(b"354 go\r\n").await;
                        let mut message = String::new();
                        loop {
                            let mut l = String::new();
                            if s.read_line(&mut l).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if l == ".\r\n" {
                                break;
                            }
                            message.push_str(&l);
                        }
                        seen.lock()
                            .unwrap()
                            .messages
                            .push((std::mem::take(&mut rcpts), message));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = s.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = s.write_all(reply).await;
                }
            });
        }
    });
    (port, seen)
}

async fn sender(ca_pem: &str) -> (TestServer, tempfile::TempDir) {
    let zone = Zone::default();
    zone.ip("relay.test", IpAddr::from([127, 0, 0, 1]));
    let dns = dns_server::start(zone).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        c.queue.ca_file = Some(ca_file.clone());
        c.queue.retry_first_secs = 1;
        c.queue.retry_max_secs = 1;
        c.queue.timeout_secs = 10;
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    (server, ca_dir)
}

async fn queue_mail(server: &TestServer) {
    let raw = "From: bob@example.org\r\nTo: someone@remote.test\r\nSubject: relayed\r\n\
               Message-ID: <relayed@example.org>\r\n\r\nThrough the smarthost.\r\n";
    server
        .running
        .store
        .queue_add(
            "bob@example.org",
            &["someone@remote.test".into()],
            raw.as_bytes(),
        )
        .await
        .unwrap();
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn relay_settings(port: u16, password: &str) -> Smarthost {
    Smarthost {
        domain: None,
        host: "relay.test".into(),
        port,
        tls: RelayTls::Implicit,
        username: "mailer".into(),
        password: password.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_the_smarthost_with_its_credentials() {
    let (ca_pem, tls) = ca_and_server("relay.test");
    let (port, seen) = relay(tls, "mailer", "relay-secret").await;
    let (server, _ca) = sender(&ca_pem).await;
    let store = &server.running.store;
    store
        .set_smarthost(&relay_settings(port, "relay-secret"))
        .await
        .unwrap();
    queue_mail(&server).await;
    eventually("the relay to get the message", || async {
        !seen.lock().unwrap().messages.is_empty()
    })
    .await;
    eventually("the queue to empty", || async {
        store.queue_list().await.unwrap().is_empty()
    })
    .await;
    let seen = seen.lock().unwrap();
    let (rcpts, message) = &seen.messages[0];
    assert_eq!(rcpts, &["RCPT TO:<someone@remote.test>"]);
    assert!(message.contains("Through the smarthost."), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_defer_and_say_why() {
    let (ca_pem, tls) = ca_and_server("relay.test");
    let (port, seen) = relay(tls, "mailer", "relay-secret").await;
    let (server, _ca) = sender(&ca_pem).await;
    let store = &server.running.store;
    store
        .set_smarthost(&relay_settings(port, "wrong"))
        .await
        .unwrap();
    queue_mail(&server).await;
    eventually("a deferral with the reason", || async {
        store.queue_list().await.unwrap().iter().any(|m| {
            m.recipients.iter().any(|r| {
                r.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("refused our credentials"))
            })
        })
    })
    .await;
    assert!(!seen.lock().unwrap().auth.is_empty());
    assert!(seen.lock().unwrap().messages.is_empty());
    // Our configuration's fault: still queued, no bounce to the sender.
    assert_eq!(store.queue_list().await.unwrap().len(), 1);
    assert!(inbox_texts(store, "bob@example.org").await.is_empty());
}
