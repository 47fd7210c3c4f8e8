//! ACME for real: the `acme` TLS mode against Debian's `pebble` (a test ACME CA) on loopback.
//! Pebble validates TLS-ALPN-01 by connecting to the hostname, resolved through our test DNS
//! server to 127.0.0.1, on the port its config names, where our HTTPS listener is; then an
//! IMAPS and an SMTPS client that trust only pebble's root see the certificate it issued.
//!
//! `.ci/run` installs pebble and sets `MAILROOM_PEBBLE=required`; elsewhere the test is
//! skipped with a message when `/usr/bin/pebble` is missing.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::config::TlsMode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

use crate::dns_server::{self, Zone};
use crate::harness;

const HOST: &str = "mail.pebble.test";

/// A CA, and a certificate it signed for pebble's own HTTPS (127.0.0.1 and localhost).
fn pebble_tls(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "mailroom test CA for pebble");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
}

async fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "pebble did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TLS client for `HOST` at `addr` that trusts only `root`; returns the first line.
async fn greeting(addr: SocketAddr, root: &CertificateDer<'static>) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .expect("the certificate verifies against pebble's root");
    let mut line = String::new();
    BufReader::new(tls).read_line(&mut line).await.unwrap();
    line
}

#[tokio::test]
async fn acme_certificate_from_pebble_on_every_tls_listener() {
    if !Path::new("/usr/bin/pebble").exists() {
        assert_ne!(
            std::env::var("MAILROOM_PEBBLE").as_deref(),
            Ok("required"),
            "pebble is required here but /usr/bin/pebble is missing"
        );
        eprintln!("SKIPPED: no /usr/bin/pebble (apt install pebble)");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    pebble_tls(dir.path());
    let zone = Zone::default();
    zone.ip(HOST, [127, 0, 0, 1].into());
    let dns = dns_server::start(zone).await;
    let (acme_port, mgmt_port, tls_port, http_port) = (
        harness::free_port(),
        harness::free_port(),
        harness::free_port(),
        harness::free_port(),
    );
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("pebble.pem"),
            "privateKey": dir.path().join("pebble.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let _pebble = tokio::process::Command::new("/usr/bin/pebble")
        .arg("-config")
        .arg(&config_path)
        .arg("-dnsserver")
        .arg(dns.to_string())
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pebble starts");
    wait_port(acme_port).await;

    let ca_file = dir.path().join("ca.pem");
    let server = harness::start_with(|c| {
        c.hostname = HOST.into();
        c.tls.mode = TlsMode::Acme;
        c.tls.acme_directory = format!("https://127.0.0.1:{acme_port}/dir");
        c.tls.acme_ca_file = Some(ca_file.clone());
        c.listen.https = vec![SocketAddr::from(([127, 0, 0, 1], tls_port))];
        c.dns.nameservers = vec![dns];
    })
    .await;

    // Until issued, the listeners serve a fallback; wait for the ACME certificate.
    let t = Instant::now();
    loop {
        let status = server.running.tls.status();
        if status.not_after.is_some() {
            assert_eq!(status.source, "acme");
            assert_eq!(status.names, vec![HOST.to_string()]);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "no certificate from pebble in 90 s: {:?}",
            status.error
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Pebble's root (random per run), from its management API.
    let out = tokio::process::Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&ca_file)
        .arg(format!("https://127.0.0.1:{mgmt_port}/roots/0"))
        .output()
        .await
        .expect("curl runs");
    assert!(out.status.success(), "fetching pebble's root failed");
    let root = CertificateDer::from_pem_slice(&out.stdout).expect("a PEM root");

    let imaps = greeting(server.running.addr("imaps").unwrap(), &root).await;
    assert!(imaps.starts_with("* OK"), "{imaps}");
    let smtps = greeting(server.running.addr("submissions").unwrap(), &root).await;
    assert!(smtps.starts_with("220 "), "{smtps}");
    server.running.shutdown().await;
}
