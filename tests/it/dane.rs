//! DANE (RFC 7672) end to end: a DNSSEC-signed root zone, signed with ldns-signzone and served
//! by Debian's knotd on loopback, with our own trust anchor (`[dns] trust_anchor`, the zone's
//! key-signing key); a second Mailroom as the MX, whose self-signed certificate the TLSA records
//! name or do not; the sender's queue delivering to it.
//!
//! The zone (`.`), one destination per case:
//! - `ok.test`: TLSA `3 1 1` of the MX's key → delivered, a `tlsa` success recorded;
//! - `bad.test`: TLSA of another key → deferred ("DANE"), nothing delivered, `tlsa-invalid`;
//! - `bogus.test`: signed with a TLSA of another key, then the record changed to the MX's own
//!   key: the signature no longer validates → deferred, `dnssec-invalid` (had validation been
//!   skipped, the altered record would have matched and the mail gone out);
//! - `notlsa.test`: signed, without TLSA records (a proven "none") → the normal path;
//! - `plain.test`: delegated without DS to an unsigned zone (insecure) with a mismatching TLSA
//!   record, which must be ignored → delivered as before.
//!
//! `.ci/run` installs knot and ldnsutils and sets `MAILROOM_DANE_TESTS=required`; elsewhere the
//! tests are skipped with a message when the tools are missing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mailroom::store::{TlsPolicyType, TlsResultRow, utc_day};
use ring::digest;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::harness::{TestServer, account, inbox_texts, start_with};
use crate::outbound::eventually;

const BODY: &str =
    "From: bob@example.org\r\nTo: someone@remote\r\nSubject: dane\r\n\r\nHello over DANE.\r\n";

/// True when the tools are here; false (skip) or a panic under `MAILROOM_DANE_TESTS=required`.
fn tools_present() -> bool {
    let missing: Vec<&str> = [
        "/usr/sbin/knotd",
        "/usr/bin/ldns-signzone",
        "/usr/bin/ldns-keygen",
    ]
    .into_iter()
    .filter(|tool| !Path::new(tool).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("MAILROOM_DANE_TESTS").as_deref() == Ok("required") {
        panic!(
            "MAILROOM_DANE_TESTS=required but missing: {missing:?} (apt install knot ldnsutils)"
        );
    }
    eprintln!("skipped: missing {missing:?} (apt install knot ldnsutils)");
    false
}

/// The signed zone served by knotd; stopped when dropped.
struct SignedDns {
    addr: SocketAddr,
    trust_anchor: PathBuf,
    _knotd: Child,
    _dir: TempDir,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the SubjectPublicKeyInfo of the certificate in `pem_file` (a `3 1 1` record).
fn spki_sha256(pem_file: &Path) -> String {
    let cert = CertificateDer::from_pem_file(pem_file).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    hex(digest::digest(&digest::SHA256, parsed.tbs_certificate.subject_pki.raw).as_ref())
}

/// Signs the zones for an MX on `mx_port` whose key hashes to `good` and serves them.
async fn signed_dns(mx_port: u16, good: &str) -> SignedDns {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let zsk = run(path, "ldns-keygen", &["-a", "ECDSAP256SHA256", "."]);
    let ksk = run(path, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", "."]);
    // Any key hashes to this: a record that matches nothing.
    let bad = "00".repeat(32);
    let tlsa = |host: &str, hash: &str| format!("_{mx_port}._tcp.{host}. IN TLSA 3 1 1 {hash}\n");
    let mut root = String::from(
        "$TTL 300\n\
         . IN SOA ns.root.test. admin.root.test. 1 3600 600 86400 300\n\
         . IN NS ns.root.test.\n\
         ns.root.test. IN A 127.0.0.1\n\
         plain.test. IN NS ns.plain.test.\n\
         ns.plain.test. IN A 127.0.0.1\n",
    );
    for case in ["ok", "bad", "bogus", "notlsa"] {
        root.push_str(&format!(
            "{case}.test. IN MX 10 mx.{case}.test.\nmx.{case}.test. IN A 127.0.0.1\n"
        ));
    }
    root.push_str(&tlsa("mx.ok.test", good));
    root.push_str(&tlsa("mx.bad.test", &bad));
    root.push_str(&tlsa("mx.bogus.test", &bad));
    std::fs::write(path.join("root.zone"), root).unwrap();
    run(
        path,
        "ldns-signzone",
        &["-f", "root.signed", "root.zone", &zsk, &ksk],
    );
    // The attacker's change: the record now names the MX's real key, its signature stays.
    let signed = std::fs::read_to_string(path.join("root.signed")).unwrap();
    let name = format!("_{mx_port}._tcp.mx.bogus.test.");
    let tampered: String = signed
        .lines()
        .map(|line| {
            if line.starts_with(&name) && line.contains("\tTLSA\t") {
                line.replace(&bad, good)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(tampered.trim(), signed.trim(), "the TLSA record was found");
    std::fs::write(path.join("root.signed"), tampered + "\n").unwrap();
    std::fs::write(
        path.join("plain.zone"),
        format!(
            "$TTL 300\n\
             plain.test. IN SOA ns.plain.test. admin.plain.test. 1 3600 600 86400 300\n\
             plain.test. IN NS ns.plain.test.\n\
             ns.plain.test. IN A 127.0.0.1\n\
             plain.test. IN MX 10 mx.plain.test.\n\
             mx.plain.test. IN A 127.0.0.1\n{}",
            tlsa("mx.plain.test", &bad)
        ),
    )
    .unwrap();

    // A free port for knotd (UDP and TCP).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = path.display();
    std::fs::create_dir_all(path.join("run")).unwrap();
    std::fs::create_dir_all(path.join("db")).unwrap();
    std::fs::write(
        path.join("knot.conf"),
        format!(
            "server:\n    rundir: \"{p}/run\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{p}/db\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             zone:\n\
             \x20 - domain: .\n    file: \"{p}/root.signed\"\n    journal-content: none\n    zonefile-sync: -1\n\
             \x20 - domain: plain.test.\n    file: \"{p}/plain.zone\"\n    journal-content: none\n    zonefile-sync: -1\n"
        ),
    )
    .unwrap();
    let knotd = Command::new("/usr/sbin/knotd")
        .arg("-c")
        .arg(path.join("knot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eventually("knotd listening", || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    SignedDns {
        addr,
        trust_anchor: path.join(format!("{ksk}.key")),
        _knotd: knotd,
        _dir: dir,
    }
}

/// One case: the MX (a Mailroom for `domain`), the signed DNS, and the sender using both.
struct Case {
    receiver: TestServer,
    sender: TestServer,
    _dns: SignedDns,
}

async fn case(domain: &str) -> Case {
    let receiver = start_with(|c| {
        c.domain = domain.into();
        c.hostname = format!("mx.{domain}");
    })
    .await;
    account(&receiver.running.store, &format!("someone@{domain}"), 0).await;
    let mx_port = receiver.running.addr("smtp").unwrap().port();
    let good = spki_sha256(&receiver.dir.path().join("tls/self-signed.crt"));
    let dns = signed_dns(mx_port, &good).await;
    let (addr, anchor) = (dns.addr, dns.trust_anchor.clone());
    let sender = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![addr];
        c.dns.trust_anchor = Some(anchor);
        c.queue.smtp_port = mx_port;
        c.queue.retry_first_secs = 1;
        c.queue.retry_max_secs = 1;
        c.queue.timeout_secs = 10;
    })
    .await;
    sender
        .running
        .store
        .queue_add(
            "bob@example.org",
            &[format!("someone@{domain}")],
            BODY.as_bytes(),
        )
        .await
        .unwrap();
    Case {
        receiver,
        sender,
        _dns: dns,
    }
}

async fn delivered(case: &Case, domain: &str) -> usize {
    inbox_texts(&case.receiver.running.store, &format!("someone@{domain}"))
        .await
        .len()
}

/// The queue's last error for the one recipient, once it has been tried.
async fn deferral(case: &Case) -> String {
    let last_error = || async {
        let queue = case.sender.running.store.queue_list().await.unwrap();
        queue
            .first()
            .and_then(|m| m.recipients.first())
            .and_then(|r| r.last_error.clone())
            .unwrap_or_default()
    };
    eventually("a deferral", || async { !last_error().await.is_empty() }).await;
    last_error().await
}

async fn tls_results(case: &Case) -> Vec<TlsResultRow> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    case.sender
        .running
        .store
        .tls_results_of_day(utc_day(now))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_tlsa_record_delivers_over_authenticated_tls() {
    if !tools_present() {
        return;
    }
    let case = case("ok.test").await;
    eventually("delivery", || async {
        delivered(&case, "ok.test").await == 1
    })
    .await;
    let text = inbox_texts(&case.receiver.running.store, "someone@ok.test")
        .await
        .remove(0);
    assert!(text.contains("with ESMTPS (TLS"), "{text}");
    let rows = tls_results(&case).await;
    assert!(
        rows.iter().any(|r| r.policy_type == TlsPolicyType::Tlsa
            && r.mx_host == "mx.ok.test"
            && r.result_type.is_none()
            && r.policy_strings.iter().any(|s| s.starts_with("3 1 1 "))),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatching_tlsa_record_defers_and_delivers_nothing() {
    if !tools_present() {
        return;
    }
    let case = case("bad.test").await;
    let why = deferral(&case).await;
    assert!(why.contains("DANE"), "{why}");
    assert!(why.contains("mx.bad.test"), "{why}");
    // Retried every second: still nothing there after a few attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(delivered(&case, "bad.test").await, 0);
    let rows = tls_results(&case).await;
    assert!(
        rows.iter().any(|r| r.policy_type == TlsPolicyType::Tlsa
            && r.mx_host == "mx.bad.test"
            && r.result_type.as_deref() == Some("tlsa-invalid")),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.result_type.is_some()), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_tlsa_record_defers_even_when_it_would_match() {
    if !tools_present() {
        return;
    }
    let case = case("bogus.test").await;
    let why = deferral(&case).await;
    assert!(why.contains("DANE"), "{why}");
    assert!(why.contains("bogus"), "{why}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(delivered(&case, "bogus.test").await, 0);
    let rows = tls_results(&case).await;
    assert!(
        rows.iter().any(|r| r.policy_type == TlsPolicyType::Tlsa
            && r.mx_host == "mx.bogus.test"
            && r.result_type.as_deref() == Some("dnssec-invalid")),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_destination_ignores_its_tlsa_records_and_delivers() {
    if !tools_present() {
        return;
    }
    let case = case("plain.test").await;
    eventually("delivery", || async {
        delivered(&case, "plain.test").await == 1
    })
    .await;
    let rows = tls_results(&case).await;
    assert!(
        rows.iter().all(|r| r.policy_type != TlsPolicyType::Tlsa),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_destination_without_tlsa_records_delivers_as_before() {
    if !tools_present() {
        return;
    }
    let case = case("notlsa.test").await;
    eventually("delivery", || async {
        delivered(&case, "notlsa.test").await == 1
    })
    .await;
    let rows = tls_results(&case).await;
    assert!(
        rows.iter().all(|r| r.policy_type != TlsPolicyType::Tlsa),
        "{rows:?}"
    );
}
