//! Helpers for the tests of the TLS files: certificates from rcgen, real handshakes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{Backend, Tls, is_acme_challenge, provider};
use crate::config::{TlsConfig, TlsMode};

pub(super) fn files_config(cert: &Path, key: &Path) -> TlsConfig {
    TlsConfig {
        mode: TlsMode::Files,
        cert: Some(cert.to_owned()),
        key: Some(key.to_owned()),
        ..TlsConfig::default()
    }
}

/// A self-signed pair from rcgen, written as PEM; returns the certificate's DER.
pub(super) fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.der().clone())
}

pub(super) fn served(tls: &Tls) -> CertificateDer<'static> {
    match &tls.inner.backend {
        Backend::Files { current, .. } => current.get().cert[0].clone(),
        _ => panic!("not files mode"),
    }
}

/// A real handshake over an in-memory pipe, the client trusting only `trust`.
pub(super) async fn handshake(
    server: Arc<ServerConfig>,
    trust: &CertificateDer<'static>,
    name: &str,
    alpn: &[&[u8]],
) -> Result<Handshake, String> {
    let mut roots = RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from(name.to_string()).unwrap();
    let (client, server) = tokio::join!(
        TlsConnector::from(Arc::new(client)).connect(name, a),
        TlsAcceptor::from(server).accept(b)
    );
    let client = client.map_err(|e| format!("client: {e}"))?;
    let server = server.map_err(|e| format!("server: {e}"))?;
    let (_, conn) = client.get_ref();
    Ok(Handshake {
        peer: conn.peer_certificates().unwrap_or_default().to_vec(),
        alpn: conn.alpn_protocol().map(|p| p.to_vec()),
        challenge: is_acme_challenge(server.get_ref().1),
    })
}

pub(super) fn rcgen_cert(not_after: time::OffsetDateTime, names: &[&str]) -> rcgen::Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.not_before = time::macros::datetime!(1990-01-01 0:00 UTC);
    params.not_after = not_after;
    params.self_signed(&key).unwrap()
}

pub(super) struct Handshake {
    pub peer: Vec<CertificateDer<'static>>,
    pub alpn: Option<Vec<u8>>,
    pub challenge: bool,
}
