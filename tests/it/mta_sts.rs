//! MTA-STS enforcement in the outbound queue (RFC 8461), end to end: a test CA (rcgen) whose
//! certificate the sender trusts through `[queue] ca_file`, a loopback HTTPS server serving the
//! policy (`[queue] mta_sts_port`), the loopback DNS server giving `_mta-sts` TXT, MX and
//! addresses, and a scripted MX on loopback that offers STARTTLS with a chosen certificate.
//! What each session did is read back from the TLS results (`Store::tls_results_of_day`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom::store::{CachedStsPolicy, TlsPolicyType, TlsResultRow, now, utc_day};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, start_with};

/// A CA of our own, and certificates it issues.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Mailroom test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A TLS server configuration with a certificate for `name`, issued by this CA.
    fn server(&self, name: &str) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
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
        Arc::new(config)
    }
}

/// The policy host: answers every request with the policy (or stops answering at all).
struct PolicyHost {
    port: u16,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PolicyHost {
    async fn start(tls: Arc<ServerConfig>, policy: &str) -> PolicyHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let policy = policy.to_string();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, policy, counter) = (
                    TlsAcceptor::from(tls.clone()),
                    policy.clone(),
                    counter.clone(),
                );
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    assert!(
                        head.starts_with(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
                        "{}",
                        String::from_utf8_lossy(&head)
                    );
                    counter.fetch_add(1, Ordering::SeqCst);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{policy}",
                        policy.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        PolicyHost {
            port,
            requests,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// An MX that offers STARTTLS with `tls` (or no STARTTLS) and accepts everything; records the
/// recipients of each message it took.
#[derive(Clone)]
struct Mx {
    received: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Mx {
    async fn start(ip: &str, port: u16, tls: Option<Arc<ServerConfig>>) -> (Mx, u16) {
        let listener = TcpListener::bind((ip, port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mx = Mx {
            received: Arc::default(),
        };
        let this = mx.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(this.clone().session(tcp, tls.clone()));
            }
        });
        (mx, port)
    }

    async fn session(self, mut tcp: TcpStream, tls: Option<Arc<ServerConfig>>) {
        let _ = tcp.write_all(b"220 mx.test ESMTP\r\n").await;
        let mut tcp = BufReader::new(tcp);
        if let Some(tls) = tls {
            // Plain text up to STARTTLS, then the rest of the session inside TLS.
            let mut line = String::new();
            loop {
                line.clear();
                if tcp.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") {
                    b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                } else if upper.starts_with("STARTTLS") {
                    let _ = tcp.write_all(b"220 2.0.0 go ahead\r\n").await;
                    let Ok(stream) = TlsAcceptor::from(tls).accept(tcp.into_inner()).await else {
                        return;
                    };
                    self.smtp(BufReader::new(stream)).await;
                    return;
                } else if upper.starts_with("QUIT") {
                    let _ = tcp.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"503 5.5.1 STARTTLS first\r\n"
                };
                if tcp.write_all(reply).await.is_err() {
                    return;
                }
            }
        } else {
            self.smtp(tcp).await;
        }
    }

    /// The rest of a session: EHLO (without STARTTLS), one transaction after another.
    async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(self, mut s: BufReader<S>) {
        let mut rcpts = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-mx.test\r\n250 PIPELINING\r\n"
            } else if upper.starts_with("RCPT TO:") {
                rcpts.push(
                    line.trim()
                        .trim_start_matches(|c| c != '<')
                        .trim_matches(['<', '>'])
                        .to_string(),
                );
                b"250 2.1.5 ok\r\n"
            } else if upper.starts_with("DATA") {
                let _ = s.write_all(b"354 go on\r\n").await;
                loop {
                    line.clear();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                self.received
                    .lock()
                    .unwrap()
                    .push(std::mem::take(&mut rcpts));
                b"250 2.0.0 queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = s.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            if s.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    fn received(&self) -> Vec<Vec<String>> {
        self.received.lock().unwrap().clone()
    }
}

/// The sending server, trusting the test CA.
struct World {
    sender: TestServer,
}

/// The sending server: DNS from `zone`, MX on `smtp_port`, policy hosts on `https_port`,
/// retries after a second.
async fn world(ca: &Ca, zone: Zone, smtp_port: u16, https_port: u16) -> World {
    let dns = dns_server::start(zone.clone()).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let sender = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        c.queue.smtp_port = smtp_port;
        c.queue.mta_sts_port = https_port;
        c.queue.ca_file = Some(ca_file.clone());
        c.queue.retry_first_secs = 1;
        c.queue.retry_max_secs = 1;
        c.queue.timeout_secs = 10;
    })
    .await;
    World { sender }
}

fn policy(mode: &str, mx: &str) -> String {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
}

/// DNS for remote.test: MX mx.remote.test at 127.0.0.1, the policy host at 127.0.0.1, the
/// `_mta-sts` record with `id`.
fn remote_zone(id: &str) -> Zone {
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    zone.ip("mta-sts.remote.test", IpAddr::from([127, 0, 0, 1]));
    zone.txt("_mta-sts.remote.test", &format!("v=STSv1; id={id}"));
    zone
}

async fn queue_mail(server: &TestServer, rcpt: &str) {
    let raw = format!(
        "From: bob@example.org\r\nTo: {rcpt}\r\nSubject: sts\r\nMessage-ID: <{}@example.org>\r\n\r\nHello.\r\n",
        now()
    );
    server
        .running
        .store
        .queue_add("bob@example.org", &[rcpt.to_string()], raw.as_bytes())
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

/// The TLS results of today and yesterday (a test running across midnight UTC).
async fn tls_rows(server: &TestServer) -> Vec<TlsResultRow> {
    let today = utc_day(now());
    let store = &server.running.store;
    let mut rows = store.tls_results_of_day(today - 86_400).await.unwrap();
    rows.extend(store.tls_results_of_day(today).await.unwrap());
    rows
}

/// The last error of the one queued recipient, once it has been tried.
async fn deferral(server: &TestServer) -> String {
    for _ in 0..300 {
        let queue = server.running.store.queue_list().await.unwrap();
        if let Some(why) = queue
            .first()
            .and_then(|m| m.recipients.first())
            .and_then(|r| r.last_error.clone())
        {
            return why;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for a deferral");
}

async fn queue_empty(server: &TestServer) -> bool {
    server.running.store.queue_list().await.unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_with_a_certificate_for_another_name_delivers_nothing() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, Some(ca.server("wrong.test"))).await;
    let host = PolicyHost::start(
        ca.server("mta-sts.remote.test"),
        &policy("enforce", "mx.remote.test"),
    )
    .await;
    let w = world(&ca, remote_zone("1"), port, host.port).await;

    queue_mail(&w.sender, "a@remote.test").await;
    let why = deferral(&w.sender).await;
    assert!(why.contains("MTA-STS"), "{why}");
    assert!(why.contains("enforce"), "{why}");
    assert!(mx.received().is_empty());
    assert_eq!(host.requests(), 1);
    let rows = tls_rows(&w.sender).await;
    let failure = rows
        .iter()
        .find(|r| r.result_type.as_deref() == Some("certificate-host-mismatch"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(failure.policy_domain, "remote.test");
    assert_eq!(failure.policy_type, TlsPolicyType::Sts);
    assert_eq!(failure.mx_host, "mx.remote.test");
    assert_eq!(failure.receiving_ip.as_deref(), Some("127.0.0.1"));
    assert!(
        failure
            .policy_strings
            .contains(&"mode: enforce".to_string()),
        "{failure:?}"
    );
    assert!(!rows.iter().any(|r| r.result_type.is_none()), "{rows:?}");
    // Retried (a second later), still refused, and the policy came from the cache.
    eventually("a second attempt", || async {
        tls_rows(&w.sender)
            .await
            .iter()
            .map(|r| r.count)
            .sum::<i64>()
            >= 2
    })
    .await;
    assert!(mx.received().is_empty());
    assert_eq!(host.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_with_a_valid_certificate_delivers() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, Some(ca.server("mx.remote.test"))).await;
    let host = PolicyHost::start(
        ca.server("mta-sts.remote.test"),
        &policy("enforce", "*.remote.test"),
    )
    .await;
    let w = world(&ca, remote_zone("1"), port, host.port).await;

    queue_mail(&w.sender, "a@remote.test").await;
    eventually("delivery", || async { mx.received().len() == 1 }).await;
    assert_eq!(mx.received()[0], ["a@remote.test"]);
    eventually("an empty queue", || queue_empty(&w.sender)).await;
    let rows = tls_rows(&w.sender).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].policy_type, TlsPolicyType::Sts);
    assert_eq!(rows[0].result_type, None);
    assert_eq!(rows[0].count, 1);
    // The policy is in the store, until its max_age.
    let cached = w
        .sender
        .running
        .store
        .mta_sts_policy("remote.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.id, "1");
    assert_eq!(cached.expires_at - cached.fetched_at, 86_400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_the_policy_does_not_list_is_not_used() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, Some(ca.server("mx.remote.test"))).await;
    let host = PolicyHost::start(
        ca.server("mta-sts.remote.test"),
        &policy("enforce", "mx.elsewhere.test"),
    )
    .await;
    let w = world(&ca, remote_zone("1"), port, host.port).await;

    queue_mail(&w.sender, "a@remote.test").await;
    let why = deferral(&w.sender).await;
    assert!(why.contains("MTA-STS"), "{why}");
    assert!(why.contains("not listed"), "{why}");
    assert!(mx.received().is_empty());
    let rows = tls_rows(&w.sender).await;
    assert!(
        rows.iter()
            .any(|r| r.result_type.as_deref() == Some("validation-failure")
                && r.mx_host == "mx.remote.test"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_mode_delivers_and_counts_the_failure() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, Some(ca.server("wrong.test"))).await;
    let host = PolicyHost::start(
        ca.server("mta-sts.remote.test"),
        &policy("testing", "mx.remote.test"),
    )
    .await;
    let w = world(&ca, remote_zone("1"), port, host.port).await;

    queue_mail(&w.sender, "a@remote.test").await;
    eventually("delivery", || async { mx.received().len() == 1 }).await;
    eventually("an empty queue", || queue_empty(&w.sender)).await;
    let rows = tls_rows(&w.sender).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].policy_type, TlsPolicyType::Sts);
    assert_eq!(
        rows[0].result_type.as_deref(),
        Some("certificate-host-mismatch")
    );
    assert!(
        rows[0]
            .policy_strings
            .contains(&"mode: testing".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_policy_holds_while_the_policy_host_is_down() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, Some(ca.server("wrong.test"))).await;
    // The policy host is gone: nothing listens on its port.
    let host = PolicyHost::start(ca.server("mta-sts.remote.test"), "").await;
    let https_port = host.port;
    host.task.abort();
    let _ = host.task.await;
    // The TXT id changed since the enforce policy was cached: the new one cannot be fetched.
    let w = world(&ca, remote_zone("2"), port, https_port).await;
    let at = now();
    w.sender
        .running
        .store
        .put_mta_sts_policy(
            "remote.test",
            &CachedStsPolicy {
                id: "1".into(),
                policy: policy("enforce", "mx.remote.test"),
                fetched_at: at,
                expires_at: at + 86_400,
            },
        )
        .await
        .unwrap();

    queue_mail(&w.sender, "a@remote.test").await;
    let why = deferral(&w.sender).await;
    // Without the cached policy the mail would have gone out (no usable policy: delivered as
    // without one).
    assert!(why.contains("MTA-STS"), "{why}");
    assert!(mx.received().is_empty());
    let rows = tls_rows(&w.sender).await;
    assert!(
        rows.iter()
            .any(|r| r.result_type.as_deref() == Some("certificate-host-mismatch")),
        "{rows:?}"
    );
    // The failed fetch kept the old entry.
    let cached = w
        .sender
        .running
        .store
        .mta_sts_policy("remote.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.id, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_host_and_cache_mail_goes_out_and_the_fetch_error_is_counted() {
    let ca = Ca::new();
    let (mx, port) = Mx::start("127.0.0.1", 0, None).await;
    let w = world(&ca, remote_zone("1"), port, crate::harness::free_port()).await;

    queue_mail(&w.sender, "a@remote.test").await;
    eventually("delivery", || async { mx.received().len() == 1 }).await;
    let rows = tls_rows(&w.sender).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].result_type.as_deref(),
        Some("sts-policy-fetch-error")
    );
    assert_eq!(rows[0].policy_type, TlsPolicyType::Sts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_policy_is_counted_per_session() {
    let ca = Ca::new();
    let (plain, port) = Mx::start("127.0.0.1", 0, None).await;
    let (tls, _) = Mx::start("127.0.0.2", port, Some(ca.server("anything.test"))).await;
    let zone = Zone::default();
    zone.mx("plain.test", 10, "mx.plain.test");
    zone.ip("mx.plain.test", IpAddr::from([127, 0, 0, 1]));
    zone.mx("tls.test", 10, "mx.tls.test");
    zone.ip("mx.tls.test", IpAddr::from([127, 0, 0, 2]));
    let w = world(&ca, zone, port, crate::harness::free_port()).await;

    queue_mail(&w.sender, "a@plain.test").await;
    queue_mail(&w.sender, "b@tls.test").await;
    eventually("delivery", || async {
        plain.received().len() == 1 && tls.received().len() == 1
    })
    .await;
    let rows = tls_rows(&w.sender).await;
    let of = |domain: &str| {
        rows.iter()
            .find(|r| r.policy_domain == domain)
            .unwrap_or_else(|| panic!("{rows:?}"))
            .clone()
    };
    let plain_row = of("plain.test");
    assert_eq!(plain_row.policy_type, TlsPolicyType::NoPolicyFound);
    assert_eq!(
        plain_row.result_type.as_deref(),
        Some("starttls-not-supported")
    );
    let tls_row = of("tls.test");
    assert_eq!(tls_row.policy_type, TlsPolicyType::NoPolicyFound);
    assert_eq!(tls_row.result_type, None);
    assert_eq!(tls_row.receiving_ip.as_deref(), Some("127.0.0.2"));
}
