//! Certificates for every TLS listener: one resolver shared by SMTP (STARTTLS and 465), IMAPS,
//! POP3S and HTTPS, fed by one of three sources chosen by `[tls] mode`.
//!
//! Decisions:
//! - **One resolver, many configs.** [`Tls`] owns a `rustls` certificate resolver; every
//!   listener gets its own [`ServerConfig`] (differing only in ALPN) from
//!   [`Tls::server_config`], and all of them share the resolver and the session cache, so a new
//!   certificate reaches every port at once.
//! - **Ring only, independent of the process default.** Configs are built with
//!   `builder_with_provider(ring)`, so nothing depends on `install_default` having been called.
//! - **self-signed**: generated once with rcgen (ECDSA P-256, about ten years, names: the hostname
//!   and `localhost`) into `<data_dir>/tls/self-signed.{crt,key}` (key mode 0600, written to a
//!   temporary file and renamed). Later starts reuse the pair; it is regenerated when missing,
//!   unreadable, not naming the hostname (the hostname changed) or within 30 days of expiry.
//! - **files**: a PEM chain and a PEM key (PKCS#8, PKCS#1 or SEC1, may be the same file). The key
//!   must match the certificate. [`Tls::reload`] (SIGHUP) swaps the new pair in atomically
//!   behind a `RwLock<Arc<CertifiedKey>>`; any error keeps the old pair in use. Errors name the
//!   file.
//! - **acme**: rustls-acme's `AcmeState` with a `DirCache` in `<data_dir>/acme` (created 0700:
//!   rustls-acme writes the account and certificate keys with default permissions). With
//!   `acme_ca_file` the ACME *client* trusts only that CA (`new_with_client_config`), as needed
//!   for pebble. The state stream does the ordering and renewal; it is polled only by
//!   [`spawn_background`], so [`Tls::load`] never touches the network. Until rustls-acme has
//!   deployed a certificate, handshakes get the cached ACME certificate read at start (so a
//!   restart serves at once), or else the self-signed one, rather than failing: a mail peer
//!   doing opportunistic STARTTLS is better served by an untrusted certificate than none. A
//!   TLS-ALPN-01 validation never gets the fallback.
//! - **ALPN in ACME mode.** Every config also offers `acme-tls/1` (last, so it is chosen only
//!   when it is all the client offers), so the CA may validate on any TLS port. Because rustls
//!   refuses a client whose ALPN list shares nothing with a non-empty server list, a mail config
//!   (empty ALPN) in ACME mode also lists the mail protocol ids `imap`, `pop3` and `smtp`: mail
//!   clients that send ALPN send these, and the protocol code ignores the negotiated value. After
//!   the handshake, [`is_acme_challenge`] tells the listener to close the connection.
//! - **Expiry without an X.509 crate.** [`CertStatus::not_after`] and the names come from a small,
//!   bounded DER walk over `tbsCertificate` (validity and the subjectAltName extension). It
//!   returns `None` on anything unexpected and never indexes unchecked. The ACME certificate is
//!   read from rustls-acme's cache file, whose name (`cached_cert_` + base64url(SHA-256 of the
//!   domains and directory URL)) is recomputed here and checked by a test against `DirCache`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, AcmeState, EventOk, ResolvesServerCertAcme};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::shutdown::Shutdown;

use crate::config::{TlsConfig, TlsMode};

/// The ALPN protocol id of ACME TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Offered by mail configs in ACME mode so mail clients that send ALPN are not refused.
const MAIL_ALPN: [&[u8]; 3] = [b"imap", b"pop3", b"smtp"];
/// Lifetime of a generated self-signed certificate.
const SELF_SIGNED_DAYS: i64 = 3650;
/// A saved self-signed certificate this close to expiry is replaced at start.
const SELF_SIGNED_RENEW_DAYS: i64 = 30;
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
        match config.mode {
            TlsMode::SelfSigned => {
                let loaded = self_signed(hostname, data_dir)?;
                let resolver = Arc::new(SwapResolver::new(loaded.key.clone()));
                Tls::build(resolver, loaded.status("self-signed"), Backend::SelfSigned)
            }
            TlsMode::Files => {
                let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
                    return Err(TlsError::Config(
                        "mode = \"files\" needs both `cert` and `key`".into(),
                    ));
                };
                let loaded = load_pair(cert, key)?;
                let current = Arc::new(SwapResolver::new(loaded.key.clone()));
                let backend = Backend::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                    current: current.clone(),
                };
                Tls::build(current, loaded.status("files"), backend)
            }
            TlsMode::Acme => load_acme(config, hostname, data_dir),
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

    /// Re-reads the files (mode `files`); a no-op otherwise. On error the old certificate stays
    /// in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let Backend::Files { cert, key, current } = &self.inner.backend else {
            return Ok(());
        };
        let loaded = load_pair(cert, key)?;
        current.set(loaded.key.clone());
        *write(&self.inner.status) = loaded.status("files");
        Ok(())
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

    /// Logs one event of the ACME state stream and updates the status.
    fn acme_event(&self, event: rustls_acme::Event<std::io::Error, std::io::Error>) {
        let Backend::Acme { cache_file, .. } = &self.inner.backend else {
            return;
        };
        match event {
            Ok(deployed @ (EventOk::DeployedCachedCert | EventOk::CertCacheStore)) => {
                let not_after = fs::read(cache_file).ok().and_then(|pem| {
                    let cert = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
                    cert_not_after(&cert)
                });
                let names = {
                    let mut status = write(&self.inner.status);
                    status.not_after = not_after;
                    status.names.clone()
                };
                let what = match deployed {
                    EventOk::DeployedCachedCert => "serving the cached certificate from",
                    _ => "new certificate saved in",
                };
                tracing::info!(
                    ?names,
                    not_after = %format_time(not_after),
                    "ACME: {what} {}",
                    cache_file.display()
                );
            }
            Ok(EventOk::DeployedNewCert) => {
                let names = {
                    let mut status = write(&self.inner.status);
                    status.error = None;
                    status.names.clone()
                };
                tracing::info!(?names, "ACME: obtained and deployed a new certificate");
            }
            Ok(EventOk::AccountCacheStore) => {
                let dir = cache_file.parent().unwrap_or(cache_file);
                tracing::info!("ACME: account key saved in {}", dir.display());
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(
                    error = %message,
                    "ACME: {message}; keeping the current certificate and retrying later"
                );
                write(&self.inner.status).error = Some(message);
            }
        }
    }
}

/// True when a finished handshake was an ACME TLS-ALPN-01 validation (ALPN `acme-tls/1`): the
/// caller closes the connection without speaking its protocol.
pub fn is_acme_challenge(conn: &rustls::ServerConnection) -> bool {
    conn.alpn_protocol() == Some(ACME_TLS_ALPN)
}

/// Spawns the background tasks: SIGHUP calls [`Tls::reload`] (files mode; logged in every
/// mode, so a SIGHUP never terminates the server), and in ACME mode the task that polls the
/// rustls-acme state stream (orders, renewals, retries with backoff while the CA is down, all
/// logged). Both stop when `shutdown` turns true or its sender is dropped. Must be called
/// inside a tokio runtime, once (a second call does not start a second ACME task).
pub fn spawn_background(tls: &Tls, shutdown: Shutdown) {
    #[cfg(unix)]
    tokio::spawn(sighup_loop(tls.clone(), shutdown.clone()));
    if let Backend::Acme { state, .. } = &tls.inner.backend {
        let taken = state.lock().unwrap_or_else(PoisonError::into_inner).take();
        match taken {
            Some(state) => {
                tokio::spawn(acme_loop(tls.clone(), state, shutdown));
            }
            None => tracing::warn!("ACME task already running; not starting a second one"),
        }
    }
}

#[cfg(unix)]
async fn sighup_loop(tls: Tls, shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, certificate reload disabled: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            received = hangup.recv() => {
                if received.is_none() {
                    break;
                }
                let source = tls.status().source;
                if !matches!(tls.inner.backend, Backend::Files { .. }) {
                    tracing::info!("SIGHUP: TLS mode {source} has no files to reload");
                    continue;
                }
                let t = tls.clone();
                match tokio::task::spawn_blocking(move || t.reload()).await {
                    Ok(Ok(())) => {
                        let status = tls.status();
                        tracing::info!(
                            names = ?status.names,
                            not_after = %format_time(status.not_after),
                            "SIGHUP: TLS certificate reloaded"
                        );
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("SIGHUP: TLS reload failed, keeping the old certificate: {e}");
                    }
                    Err(e) => tracing::warn!("SIGHUP: TLS reload task failed: {e}"),
                }
            }
        }
    }
}

async fn acme_loop(tls: Tls, state: AcmeState<std::io::Error>, shutdown: Shutdown) {
    use futures::StreamExt;
    let mut state = Box::pin(state);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            event = state.next() => match event {
                Some(event) => tls.acme_event(event),
                None => break,
            },
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

/// rustls-acme's resolver, with a fallback until it has a certificate (never for challenges).
#[derive(Debug)]
struct AcmeResolver {
    acme: Arc<ResolvesServerCertAcme>,
    fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let challenge = rustls_acme::is_tls_alpn_challenge(&hello);
        match self.acme.resolve(hello) {
            Some(key) => Some(key),
            None if challenge => None,
            None => Some(self.fallback.clone()),
        }
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

/// Loads a PEM chain and key, checking that they belong together.
fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let chain = read_certs(cert_path)?;
    let key_pem = read_file(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            key_path,
            "no private key found (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        ),
        e => invalid(key_path, format!("bad PEM: {e}")),
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(key_path, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        Err(e) => return Err(invalid(cert_path, format!("bad certificate: {e}"))),
    }
    Ok(Loaded::from_key(certified))
}

/// The saved self-signed pair, or a new one when it is missing, unreadable, for another
/// hostname or about to expire.
fn self_signed(hostname: &str, data_dir: &Path) -> Result<Loaded, TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("self-signed.crt");
    let key_path = dir.join("self-signed.key");
    let hostname = hostname.trim().to_ascii_lowercase();
    if cert_path.exists() || key_path.exists() {
        match load_pair(&cert_path, &key_path) {
            Ok(loaded) => {
                let soon = time::OffsetDateTime::now_utc().unix_timestamp()
                    + SELF_SIGNED_RENEW_DAYS * 86_400;
                if !loaded.names.contains(&hostname) {
                    tracing::info!(
                        "{} does not name {hostname}; generating a new one",
                        cert_path.display()
                    );
                } else if loaded.not_after.is_some_and(|t| t < soon) {
                    tracing::info!("{} expires soon; generating a new one", cert_path.display());
                } else {
                    return Ok(loaded);
                }
            }
            Err(e) => {
                tracing::warn!("self-signed certificate unusable ({e}); generating a new one")
            }
        }
    }

    let mut names = vec![hostname.clone()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let generate_error = |e: rcgen::Error| TlsError::Generate {
        names: names.clone(),
        message: e.to_string(),
    };
    let signing_key = rcgen::KeyPair::generate().map_err(generate_error)?;
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(generate_error)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, hostname.as_str());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now.saturating_sub(time::Duration::days(1));
    params.not_after = now.saturating_add(time::Duration::days(SELF_SIGNED_DAYS));
    let cert = params.self_signed(&signing_key).map_err(generate_error)?;

    fs::create_dir_all(&dir).map_err(|source| TlsError::Write {
        path: dir.clone(),
        source,
    })?;
    write_file(&key_path, signing_key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    tracing::info!(
        ?names,
        "generated a self-signed certificate in {}",
        cert_path.display()
    );

    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsError::Generate {
            names: names.clone(),
            message: e.to_string(),
        })?;
    Ok(Loaded::from_key(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// Writes `data` to a temporary file (mode 0600 when `private`) and renames it into place.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), TlsError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let fail = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    // A leftover from a crash may have other permissions; the mode applies only on creation.
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(fail)?;
    file.write_all(data).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    fs::rename(&tmp, path).map_err(fail)
}

fn load_acme(config: &TlsConfig, hostname: &str, data_dir: &Path) -> Result<Tls, TlsError> {
    let domains: Vec<String> = if config.acme_domains.is_empty() {
        vec![hostname.trim().to_ascii_lowercase()]
    } else {
        config
            .acme_domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .collect()
    };
    if domains.iter().any(|d| d.is_empty()) {
        return Err(TlsError::Config("acme_domains has an empty name".into()));
    }
    let directory = config.acme_directory.trim();
    if directory.is_empty() {
        return Err(TlsError::Config("acme_directory is empty".into()));
    }

    let cache_dir = data_dir.join("acme");
    create_private_dir(&cache_dir)?;
    let cache_file = acme_cache_file(&cache_dir, &domains, directory);

    let acme = match &config.acme_ca_file {
        Some(ca) => AcmeConfig::new_with_client_config(&domains, acme_client_config(ca)?),
        None => AcmeConfig::new(&domains),
    };
    let mut acme = acme.directory(directory);
    if let Some(contact) = config.acme_contact.as_deref().map(str::trim)
        && !contact.is_empty()
    {
        acme = if contact.contains(':') {
            acme.contact_push(contact)
        } else {
            acme.contact_push(format!("mailto:{contact}"))
        };
    }
    let state = acme.cache(DirCache::new(cache_dir)).state();

    // Serve at once after a restart: the cached ACME certificate, else the self-signed one.
    let (fallback, not_after) = match load_acme_cache(&cache_file) {
        Some(loaded) => (loaded.key, loaded.not_after),
        None => (self_signed(hostname, data_dir)?.key, None),
    };
    let resolver = Arc::new(AcmeResolver {
        acme: state.resolver(),
        fallback,
    });
    let status = CertStatus {
        source: "acme",
        names: domains,
        not_after,
        error: None,
    };
    let backend = Backend::Acme {
        state: Mutex::new(Some(state)),
        cache_file,
    };
    Tls::build(resolver, status, backend)
}

/// A client config for talking to the ACME directory that trusts only the CAs in `path`.
fn acme_client_config(path: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| invalid(path, format!("not a usable CA certificate: {e}")))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(format!("rustls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// The file in which rustls-acme 0.15's `DirCache` keeps the certificate for these domains.
fn acme_cache_file(dir: &Path, domains: &[String], directory: &str) -> PathBuf {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for domain in domains {
        hash.update(domain.as_bytes());
        hash.update([0u8]);
    }
    hash.update(directory.as_bytes());
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.finalize());
    dir.join(format!("cached_cert_{name}"))
}

/// The cached ACME certificate (a PKCS#8 key then the chain, all PEM), if present and valid.
fn load_acme_cache(path: &Path) -> Option<Loaded> {
    let pem = fs::read(path).ok()?;
    let key = PrivateKeyDer::from_pem_slice(&pem).ok()?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    if chain.is_empty() {
        return None;
    }
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).ok()?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().ok()?;
    Some(Loaded::from_key(certified))
}

// --- A minimal DER walk: just enough of X.509 for notAfter and subjectAltName. ---

const DER_SEQUENCE: u8 = 0x30;
/// subjectAltName, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// One DER element: (tag, contents, what follows). `None` on truncation, indefinite or huge
/// lengths, and multi-byte tags (none occur in the parts read here).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = rest.get(..count)?;
        let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        (usize::try_from(len).ok()?, rest.get(count..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The contents of an element with this tag, and what follows it.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = der_element(input)?;
    (found == tag).then_some((contents, rest))
}

/// tbsCertificate's validity contents and the fields after it (subject onwards).
fn der_validity(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (cert, _) = der_expect(cert, DER_SEQUENCE)?;
    let (tbs, _) = der_expect(cert, DER_SEQUENCE)?;
    // version [0] EXPLICIT, absent in v1 certificates.
    let rest = der_expect(tbs, 0xa0).map_or(tbs, |(_, rest)| rest);
    let (_serial, rest) = der_expect(rest, 0x02)?;
    let (_signature, rest) = der_expect(rest, DER_SEQUENCE)?;
    let (_issuer, rest) = der_expect(rest, DER_SEQUENCE)?;
    der_expect(rest, DER_SEQUENCE)
}

/// notAfter in unix seconds.
fn cert_not_after(cert: &[u8]) -> Option<i64> {
    let (validity, _) = der_validity(cert)?;
    let (_, _not_before, rest) = der_element(validity)?;
    let (tag, not_after, _) = der_element(rest)?;
    der_time(tag, not_after)
}

/// UTCTime (0x17, YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ).
fn der_time(tag: u8, contents: &[u8]) -> Option<i64> {
    let digits = contents.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        digits.get(range)?.iter().try_fold(0u32, |n, &d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    let (year, at) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = number(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (number(0..4)?, 4),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { u8::try_from(number(at + i..at + i + 2)?).ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, field(2)?).ok()?;
    let moment = date.with_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(moment.assume_utc().unix_timestamp())
}

/// The DNS names (lowercased) and IP addresses of the subjectAltName extension.
fn cert_names(cert: &[u8]) -> Vec<String> {
    der_san(cert).unwrap_or_default()
}

fn der_san(cert: &[u8]) -> Option<Vec<String>> {
    let (_, rest) = der_validity(cert)?;
    let (_subject, rest) = der_expect(rest, DER_SEQUENCE)?;
    let (_public_key, mut rest) = der_expect(rest, DER_SEQUENCE)?;
    // Optional issuerUniqueID [1], subjectUniqueID [2], then extensions [3].
    let mut extensions = None;
    while let Some((tag, contents, next)) = der_element(rest) {
        rest = next;
        if tag == 0xa3 {
            extensions = Some(contents);
        }
    }
    let (mut list, _) = der_expect(extensions?, DER_SEQUENCE)?;
    while let Some((extension, next)) = der_expect(list, DER_SEQUENCE) {
        list = next;
        let (oid, body) = der_expect(extension, 0x06)?;
        if oid != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let body = der_expect(body, 0x01).map_or(body, |(_, rest)| rest); // critical
        let (value, _) = der_expect(body, 0x04)?;
        let (mut general_names, _) = der_expect(value, DER_SEQUENCE)?;
        let mut names = Vec::new();
        while let Some((tag, contents, next)) = der_element(general_names) {
            general_names = next;
            match tag {
                // dNSName [2] IA5String
                0x82 => {
                    if let Ok(name) = std::str::from_utf8(contents) {
                        names.push(name.to_ascii_lowercase());
                    }
                }
                // iPAddress [7] OCTET STRING
                0x87 => {
                    let ip = match contents.len() {
                        4 => <[u8; 4]>::try_from(contents).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(contents).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
        return Some(names);
    }
    Some(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn files_config(cert: &Path, key: &Path) -> TlsConfig {
        TlsConfig {
            mode: TlsMode::Files,
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
            ..TlsConfig::default()
        }
    }

    /// A self-signed pair from rcgen, written as PEM; returns the certificate's DER.
    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        fs::write(&cert_path, cert.pem()).unwrap();
        fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        (cert_path, key_path, cert.der().clone())
    }

    fn served(tls: &Tls) -> CertificateDer<'static> {
        match &tls.inner.backend {
            Backend::Files { current, .. } => current.get().cert[0].clone(),
            _ => panic!("not files mode"),
        }
    }

    struct Handshake {
        peer: Vec<CertificateDer<'static>>,
        alpn: Option<Vec<u8>>,
        challenge: bool,
    }

    /// A real handshake over an in-memory pipe, the client trusting only `trust`.
    async fn handshake(
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

    #[tokio::test]
    async fn self_signed_is_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = TlsConfig::default();
        let tls = Tls::load(&config, "mail.example.test", dir.path())
            .await
            .unwrap();
        let cert_path = dir.path().join("tls/self-signed.crt");
        let key_path = dir.path().join("tls/self-signed.key");
        let first = fs::read(&cert_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let status = tls.status();
        assert_eq!(status.source, "self-signed");
        assert_eq!(status.names, ["mail.example.test", "localhost"]);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let not_after = status.not_after.unwrap();
        assert!((not_after - now - SELF_SIGNED_DAYS * 86_400).abs() < 60);

        let again = Tls::load(&config, "mail.example.test", dir.path())
            .await
            .unwrap();
        assert_eq!(fs::read(&cert_path).unwrap(), first);
        let trust = CertificateDer::from_pem_slice(&first).unwrap();
        for tls in [&tls, &again] {
            let done = handshake(tls.server_config(&[]), &trust, "localhost", &[])
                .await
                .unwrap();
            assert_eq!(done.peer[0], trust);
            assert!(!done.challenge);
        }

        // Unreadable: regenerated. Another hostname: regenerated with that name.
        fs::write(&cert_path, "garbage").unwrap();
        Tls::load(&config, "mail.example.test", dir.path())
            .await
            .unwrap();
        let third = fs::read(&cert_path).unwrap();
        assert_ne!(third, first);
        let other = Tls::load(&config, "other.example.test", dir.path())
            .await
            .unwrap();
        assert_ne!(fs::read(&cert_path).unwrap(), third);
        assert_eq!(other.status().names, ["other.example.test", "localhost"]);
    }

    #[tokio::test]
    async fn files_mode_serves_the_pair_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, der) = write_pair(dir.path(), "mail.example.test");
        let tls = Tls::load(&files_config(&cert, &key), "ignored", dir.path())
            .await
            .unwrap();
        let status = tls.status();
        assert_eq!(status.source, "files");
        assert_eq!(status.names, ["mail.example.test"]);
        let done = handshake(
            tls.server_config(&[b"h2", b"http/1.1"]),
            &der,
            "mail.example.test",
            &[b"http/1.1"],
        )
        .await
        .unwrap();
        assert_eq!(done.peer, std::slice::from_ref(&der));
        assert_eq!(done.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert!(!done.challenge);

        // New files, reload: the new certificate is served, even by configs made before.
        let config = tls.server_config(&[]);
        let (_, _, new_der) = write_pair(dir.path(), "new.example.test");
        tls.reload().unwrap();
        assert_eq!(tls.status().names, ["new.example.test"]);
        let done = handshake(config, &new_der, "new.example.test", &[])
            .await
            .unwrap();
        assert_eq!(done.peer, std::slice::from_ref(&new_der));

        // A broken certificate file: error names it, the current certificate stays.
        fs::write(&cert, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
        let err = tls.reload().unwrap_err().to_string();
        assert!(err.contains(cert.to_str().unwrap()), "{err}");
        assert_eq!(served(&tls), new_der);

        // A file without a key, and a key of another certificate.
        let (_, _, _) = write_pair(dir.path(), "third.example.test");
        fs::write(&key, "no pem here\n").unwrap();
        let err = tls.reload().unwrap_err().to_string();
        assert!(
            err.contains(key.to_str().unwrap()) && err.contains("no private key"),
            "{err}"
        );
        let other = tempfile::tempdir().unwrap();
        let (_, other_key, _) = write_pair(other.path(), "x.example.test");
        fs::copy(&other_key, &key).unwrap();
        let err = tls.reload().unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert_eq!(served(&tls), new_der);
        assert_eq!(tls.status().names, ["new.example.test"]);
    }

    #[tokio::test]
    async fn files_mode_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _key, _) = write_pair(dir.path(), "mail.example.test");
        let missing = dir.path().join("nope.key");
        let err = Tls::load(&files_config(&cert, &missing), "h", dir.path())
            .await
            .unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
        let missing = dir.path().join("nope.crt");
        let err = Tls::load(&files_config(&missing, &cert), "h", dir.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
    }

    #[tokio::test]
    async fn files_mode_accepts_a_combined_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, der) = write_pair(dir.path(), "mail.example.test");
        let both = dir.path().join("both.pem");
        let text = fs::read_to_string(&key).unwrap() + &fs::read_to_string(&cert).unwrap();
        fs::write(&both, text).unwrap();
        let tls = Tls::load(&files_config(&both, &both), "h", dir.path())
            .await
            .unwrap();
        assert_eq!(served(&tls), der);
    }

    fn rcgen_cert(not_after: time::OffsetDateTime, names: &[&str]) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = time::macros::datetime!(2020-01-01 0:00 UTC);
        params.not_after = not_after;
        params.self_signed(&key).unwrap()
    }

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
        assert_eq!(der_time(0x17, b"991231235959Z"), Some(946_684_799));
        assert_eq!(der_time(0x17, b"991231235959"), None);
        assert_eq!(der_time(0x17, b"991331235959Z"), None);
        assert_eq!(der_time(0x18, b"2024022912000 Z"), None);
    }

    #[test]
    fn der_walk_never_panics_on_bad_input() {
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
            assert_eq!(der_element(input), None);
            assert_eq!(cert_not_after(input), None);
            assert!(cert_names(input).is_empty());
        }
    }

    fn acme_config(domains: &[&str]) -> TlsConfig {
        TlsConfig {
            mode: TlsMode::Acme,
            // Never contacted: nothing polls the state in these tests.
            acme_directory: "https://127.0.0.1:9/dir".into(),
            acme_contact: Some("admin@example.test".into()),
            acme_domains: domains.iter().map(|d| d.to_string()).collect(),
            ..TlsConfig::default()
        }
    }

    #[tokio::test]
    async fn acme_loads_offline_and_offers_acme_tls_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load(&acme_config(&[]), "mail.example.test", dir.path())
            .await
            .unwrap();
        let status = tls.status();
        assert_eq!(status.source, "acme");
        assert_eq!(status.names, ["mail.example.test"]);
        assert_eq!(status.not_after, None);
        assert!(dir.path().join("acme").is_dir());

        let mail = tls.server_config(&[]);
        assert_eq!(mail.alpn_protocols.last().unwrap(), ACME_TLS_ALPN);
        let web = tls.server_config(&[b"h2", b"http/1.1"]);
        assert_eq!(
            web.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()]
        );
        assert_eq!(
            tls.acceptor(&[]).config().alpn_protocols,
            mail.alpn_protocols
        );
        tls.reload().unwrap();

        // No certificate from the CA yet: the self-signed fallback is served, to mail clients
        // with or without ALPN, and to web clients.
        let trust = CertificateDer::from_pem_file(dir.path().join("tls/self-signed.crt")).unwrap();
        let done = handshake(mail.clone(), &trust, "mail.example.test", &[])
            .await
            .unwrap();
        assert_eq!(done.peer[0], trust);
        assert!(!done.challenge);
        let done = handshake(mail, &trust, "mail.example.test", &[b"imap"])
            .await
            .unwrap();
        assert_eq!(done.alpn.as_deref(), Some(&b"imap"[..]));
        let done = handshake(web.clone(), &trust, "mail.example.test", &[b"h2"])
            .await
            .unwrap();
        assert_eq!(done.alpn.as_deref(), Some(&b"h2"[..]));
        // A validation attempt without challenge data gets nothing, never the fallback.
        assert!(
            handshake(web, &trust, "mail.example.test", &[ACME_TLS_ALPN])
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn acme_serves_and_reports_the_cached_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let config = acme_config(&["mail.example.test", "Example.test"]);
        let domains = vec!["mail.example.test".to_string(), "example.test".to_string()];
        let cache = acme_cache_file(&dir.path().join("acme"), &domains, &config.acme_directory);

        // Our file name is the one rustls-acme's DirCache uses.
        use rustls_acme::CertCache;
        DirCache::new(dir.path().join("acme"))
            .store_cert(&domains, &config.acme_directory, b"probe")
            .await
            .unwrap();
        assert_eq!(fs::read(&cache).unwrap(), b"probe");

        let when = time::macros::datetime!(2031-05-17 0:00 UTC);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(domains.clone()).unwrap();
        params.not_after = when;
        let cert = params.self_signed(&key).unwrap();
        fs::write(&cache, key.serialize_pem() + "\n" + &cert.pem()).unwrap();

        let tls = Tls::load(&config, "ignored", dir.path()).await.unwrap();
        let status = tls.status();
        assert_eq!(status.names, domains);
        assert_eq!(status.not_after, Some(when.unix_timestamp()));
        assert!(!dir.path().join("tls").exists());
        let done = handshake(tls.server_config(&[]), cert.der(), "example.test", &[])
            .await
            .unwrap();
        assert_eq!(&done.peer[0], cert.der());
    }

    #[tokio::test]
    async fn acme_ca_file_is_required_to_be_readable_and_pem() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = acme_config(&["mail.example.test"]);
        let missing = dir.path().join("pebble.minica.pem");
        config.acme_ca_file = Some(missing.clone());
        let err = Tls::load(&config, "h", dir.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(missing.to_str().unwrap()), "{err}");

        let (ca, _, _) = write_pair(dir.path(), "minica.example.test");
        config.acme_ca_file = Some(ca);
        let tls = Tls::load(&config, "h", dir.path()).await.unwrap();
        assert_eq!(tls.status().source, "acme");
    }

    #[tokio::test]
    async fn background_tasks_stop_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load(&TlsConfig::default(), "localhost", dir.path())
            .await
            .unwrap();
        let (tx, rx) = crate::shutdown::channel();
        spawn_background(&tls, rx);
        tx.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), tx.closed())
            .await
            .unwrap();
    }
}
