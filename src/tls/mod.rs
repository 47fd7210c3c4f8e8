//! Certificates for every TLS listener: one resolver shared by SMTP (STARTTLS and 465), IMAPS,
//! POP3S and HTTPS, fed by one of three sources chosen by `[tls] mode`.
//!
//! - `mod.rs` (here): [`Tls`], the configs every listener gets, the status the admin panel
//!   shows, and the one resolver of modes self-signed and files ([`SwapResolver`]);
//! - `self_signed.rs`: the generated certificate in `<data_dir>/tls/`;
//! - `files.rs`: a PEM pair named by the config, and its reload ([`Tls::reload`], which the
//!   `serve` command calls on SIGHUP);
//! - `acme.rs`: rustls-acme (TLS-ALPN-01), its resolver and the task that polls it.
//!
//! Decisions:
//! - **One resolver, many configs.** [`Tls`] owns a `rustls` certificate resolver; every
//!   listener gets its own [`ServerConfig`] (differing only in ALPN) from
//!   [`Tls::server_config`], and all of them share the resolver and the session cache, so a new
//!   certificate reaches every port at once.
//! - **Ring only, independent of the process default.** Configs are built with
//!   `builder_with_provider(ring)`, so nothing depends on `install_default` having been called.
//! - **ALPN in ACME mode.** Every config also offers `acme-tls/1` (last, so it is chosen only
//!   when it is all the client offers), so the CA may validate on any TLS port. Because rustls
//!   refuses a client whose ALPN list shares nothing with a non-empty server list, a mail config
//!   (empty ALPN) in ACME mode also lists the mail protocol ids `imap`, `pop3` and `smtp`: mail
//!   clients that send ALPN send these, and the protocol code ignores the negotiated value. After
//!   the handshake, [`is_acme_challenge`] tells the listener to close the connection.
//! - **Expiry and names** ([`CertStatus`]) come from x509-parser (already in the build through
//!   rustls-acme); anything it cannot parse gives no date and no names, never an error.
//! - **Signals are not handled here.** SIGHUP is handled beside SIGTERM in the `serve` command,
//!   which calls [`Tls::reload_logged`]; this module only runs the ACME task
//!   ([`spawn_background`]).

mod acme;
mod files;
mod self_signed;
#[cfg(test)]
mod testing;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls_acme::AcmeState;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{TlsConfig, TlsMode};
use crate::shutdown::Shutdown;

/// The ALPN protocol id of ACME TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Offered by mail configs in ACME mode so mail clients that send ALPN are not refused.
const MAIL_ALPN: [&[u8]; 3] = [b"imap", b"pop3", b"smtp"];
/// TLS sessions remembered for resumption, shared by every listener.
const SESSION_CACHE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the private key in {} does not match the certificate in {}",
        .key.display(),
        .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot generate a self-signed certificate for {names:?}: {message}")]
    Generate { names: Vec<String>, message: String },
    #[error("[tls] {0}")]
    Config(String),
}

/// What the admin panel and `/metrics` show about the certificate in use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertStatus {
    /// "self-signed", "files" or "acme".
    pub source: &'static str,
    pub names: Vec<String>,
    /// The certificate's notAfter in unix seconds, when known.
    pub not_after: Option<i64>,
    /// The last ACME error, cleared when a new certificate is obtained.
    pub error: Option<String>,
}

/// The certificate source shared by every TLS listener. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    /// The config every listener's config is cloned from; ALPN empty.
    base: ServerConfig,
    status: RwLock<CertStatus>,
    backend: Backend,
}

enum Backend {
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
        current: Arc<SwapResolver>,
    },
    Acme {
        /// Taken by [`spawn_background`], which polls it.
        state: Mutex<Option<AcmeState<std::io::Error>>>,
        cache_file: PathBuf,
    },
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Build from config. `hostname` is the certificate name for self-signed (and the ACME
    /// domain when `acme_domains` is empty); `data_dir` holds `tls/` and `acme/`.
    pub async fn load(
        config: &TlsConfig,
        hostname: &str,
        data_dir: &Path,
    ) -> Result<Tls, TlsError> {
        Tls::load_with_names(config, hostname, data_dir, &[]).await
    }

    /// [`Tls::load`] with names added to the ACME certificate's (`mta-sts.<domain>` of the
    /// domains that publish MTA-STS; see `acme::load`); the other modes ignore them.
    pub async fn load_with_names(
        config: &TlsConfig,
        hostname: &str,
        data_dir: &Path,
        extra_acme_names: &[String],
    ) -> Result<Tls, TlsError> {
        match config.mode {
            TlsMode::SelfSigned => {
                let loaded = self_signed::load(hostname, data_dir)?;
                let resolver = Arc::new(SwapResolver::new(loaded.key.clone()));
                Tls::build(resolver, loaded.status("self-signed"), Backend::SelfSigned)
            }
            TlsMode::Files => {
                let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
                    return Err(TlsError::Config(
                        "mode = \"files\" needs both `cert` and `key`".into(),
                    ));
                };
                let loaded = files::load_pair(cert, key)?;
                let current = Arc::new(SwapResolver::new(loaded.key.clone()));
                let backend = Backend::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                    current: current.clone(),
                };
                Tls::build(current, loaded.status("files"), backend)
            }
            TlsMode::Acme => acme::load(config, hostname, data_dir, extra_acme_names),
        }
    }

    fn build(
        resolver: Arc<dyn ResolvesServerCert>,
        status: CertStatus,
        backend: Backend,
    ) -> Result<Tls, TlsError> {
        let mut base = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(format!("rustls: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        base.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        Ok(Tls {
            inner: Arc::new(Inner {
                base,
                status: RwLock::new(status),
                backend,
            }),
        })
    }

    /// A rustls config using the shared resolver, with these ALPN protocols (most preferred
    /// first; empty for mail). In ACME mode it also accepts `acme-tls/1` (see the module doc).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = self.inner.base.clone();
        config.alpn_protocols = alpn_list(alpn, self.is_acme());
        Arc::new(config)
    }

    pub fn acceptor(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config(alpn))
    }

    pub fn status(&self) -> CertStatus {
        self.inner
            .status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_acme(&self) -> bool {
        matches!(self.inner.backend, Backend::Acme { .. })
    }
}

/// True when a finished handshake was an ACME TLS-ALPN-01 validation (ALPN `acme-tls/1`): the
/// caller closes the connection without speaking its protocol.
pub fn is_acme_challenge(conn: &rustls::ServerConnection) -> bool {
    conn.alpn_protocol() == Some(ACME_TLS_ALPN)
}

/// In ACME mode, spawns the task that polls the rustls-acme state stream (orders, renewals,
/// retries with backoff while the CA is down, all logged) until `shutdown`; nothing in the
/// other modes. Must be called inside a tokio runtime, once (a second call does not start a
/// second ACME task).
pub fn spawn_background(tls: &Tls, shutdown: Shutdown) {
    if let Backend::Acme { state, .. } = &tls.inner.backend {
        let taken = state.lock().unwrap_or_else(PoisonError::into_inner).take();
        match taken {
            Some(state) => {
                tokio::spawn(acme::poll(tls.clone(), state, shutdown));
            }
            None => tracing::warn!("ACME task already running; not starting a second one"),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn alpn_list(alpn: &[&[u8]], acme: bool) -> Vec<Vec<u8>> {
    let mut list: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
    if acme {
        if list.is_empty() {
            list.extend(MAIL_ALPN.iter().map(|p| p.to_vec()));
        }
        if !list.iter().any(|p| p == ACME_TLS_ALPN) {
            list.push(ACME_TLS_ALPN.to_vec());
        }
    }
    list
}

fn format_time(unix: Option<i64>) -> String {
    unix.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The certificate currently served in modes self-signed and files.
#[derive(Debug)]
struct SwapResolver(RwLock<Arc<CertifiedKey>>);

impl SwapResolver {
    fn new(key: Arc<CertifiedKey>) -> SwapResolver {
        SwapResolver(RwLock::new(key))
    }
    fn get(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, key: Arc<CertifiedKey>) {
        *write(&self.0) = key;
    }
}

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// A certificate ready to serve, with what the status shows about it.
struct Loaded {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
    not_after: Option<i64>,
}

impl Loaded {
    fn from_key(key: CertifiedKey) -> Loaded {
        let leaf = key.cert.first().map(|c| c.as_ref()).unwrap_or_default();
        Loaded {
            names: cert_names(leaf),
            not_after: cert_not_after(leaf),
            key: Arc::new(key),
        }
    }

    fn status(&self, source: &'static str) -> CertStatus {
        CertStatus {
            source,
            names: self.names.clone(),
            not_after: self.not_after,
            error: None,
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// notAfter in unix seconds; `None` when the certificate cannot be parsed.
fn cert_not_after(cert: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The DNS names (lowercased) and IP addresses of the subjectAltName extension; empty when
/// there is none or the certificate cannot be parsed.
fn cert_names(cert: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(dns) => names.push(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes)
                        .ok()
                        .map(std::net::IpAddr::from),
                    _ => None,
                };
                names.extend(ip.map(|ip| ip.to_string()));
            }
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::testing::rcgen_cert;
    use super::*;

    #[test]
    fn not_after_and_names_are_parsed() {
        // UTCTime (before 2050) and GeneralizedTime (from 2050 on).
        for when in [
            time::macros::datetime!(2031-05-17 13:45:07 UTC),
            time::macros::datetime!(2049-12-31 23:59:59 UTC),
            time::macros::datetime!(2061-02-03 04:05:06 UTC),
        ] {
            let cert = rcgen_cert(when, &["Mail.Example.test", "127.0.0.1", "::1"]);
            assert_eq!(cert_not_after(cert.der()), Some(when.unix_timestamp()));
            assert_eq!(
                cert_names(cert.der()),
                ["mail.example.test", "127.0.0.1", "::1"]
            );
        }
        // The last second of the 1900s in a UTCTime (two-digit year 99).
        let cert = rcgen_cert(
            time::macros::datetime!(1999-12-31 23:59:59 UTC),
            &["old.example.test"],
        );
        assert_eq!(cert_not_after(cert.der()), Some(946_684_799));
        assert_eq!(cert_names(cert.der()), ["old.example.test"]);
    }

    #[test]
    fn parsing_never_panics_on_bad_input() {
        let cert = rcgen_cert(
            time::macros::datetime!(2031-05-17 0:00 UTC),
            &["a.example.test"],
        );
        let der = cert.der().as_ref().to_vec();
        // Every truncation.
        for end in 0..der.len() {
            let _ = cert_not_after(&der[..end]);
            let _ = cert_names(&der[..end]);
        }
        assert_eq!(cert_not_after(&der[..der.len() - 1]), None);
        // Every single-byte change to a few values, and pseudo-random garbage.
        for i in 0..der.len() {
            for value in [0x00, 0x1f, 0x30, 0x80, 0x84, 0xff] {
                let mut bad = der.clone();
                bad[i] = value;
                let _ = cert_not_after(&bad);
                let _ = cert_names(&bad);
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let _ = cert_not_after(&garbage);
            let _ = cert_names(&garbage);
        }
        // Hostile lengths.
        for input in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x88, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0x30, 0x82, 0x01],
            &[0x1f, 0x01, 0x00],
            &[],
        ] {
            assert_eq!(cert_not_after(input), None);
            assert!(cert_names(input).is_empty());
        }
    }
}
