//! Mode `acme`: rustls-acme's `AcmeState` with a `DirCache` in `<data_dir>/acme` (created 0700:
//! rustls-acme writes the account and certificate keys with default permissions). With
//! `acme_ca_file` the ACME *client* trusts only that CA (`new_with_client_config`), as needed
//! for pebble. The state stream does the ordering and renewal; it is polled only by [`poll`]
//! (started by [`spawn_background`](super::spawn_background)), so [`Tls::load`] never touches
//! the network. Until rustls-acme has deployed a certificate, handshakes get the cached ACME
//! certificate read at start (so a restart serves at once), or else the self-signed one,
//! rather than failing: a mail peer doing opportunistic STARTTLS is better served by an
//! untrusted certificate than none. A TLS-ALPN-01 validation never gets the fallback.
//!
//! The ACME certificate's expiry is read from rustls-acme's cache file, whose name
//! (`cached_cert_` + base64url(SHA-256 of the domains and directory URL)) is recomputed here and
//! checked by a test against `DirCache`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, AcmeState, EventOk, ResolvesServerCertAcme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{
    Backend, CertStatus, Loaded, Tls, TlsError, cert_not_after, format_time, invalid, provider,
    read_certs, write,
};
use crate::config::TlsConfig;
use crate::shutdown::Shutdown;

impl Tls {
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

/// Polls the rustls-acme state stream until shutdown.
pub(super) async fn poll(tls: Tls, state: AcmeState<std::io::Error>, shutdown: Shutdown) {
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

/// `extra` names (the `mta-sts.<domain>` names of domains publishing MTA-STS) are added to the
/// configured ones. The state is built once, here: a change of the names takes effect at the
/// next start, which orders a certificate for the new set. Until it arrives, the certificate of
/// the configured names alone is served if it is cached, so a name whose DNS is not ready yet
/// never costs the others their certificate.
pub(super) fn load(
    config: &TlsConfig,
    hostname: &str,
    data_dir: &Path,
    extra: &[String],
) -> Result<Tls, TlsError> {
    let mut domains: Vec<String> = if config.acme_domains.is_empty() {
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
    let configured_cache = acme_cache_file(&cache_dir, &domains, directory);
    for name in extra {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if !name.is_empty() && !domains.contains(&name) {
            domains.push(name);
        }
    }
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
    let cached = load_acme_cache(&cache_file).or_else(|| load_acme_cache(&configured_cache));
    let (fallback, not_after) = match cached {
        Some(loaded) => (loaded.key, loaded.not_after),
        None => (super::self_signed::load(hostname, data_dir)?.key, None),
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

#[cfg(test)]
mod tests {
    use super::super::ACME_TLS_ALPN;
    use super::super::testing::{handshake, write_pair};
    use super::*;
    use crate::config::TlsMode;
    use crate::tls::spawn_background;

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

        // MTA-STS names join the configured ones; until the certificate for the new set is
        // ordered, the cached one of the configured names is still served.
        let extra = vec!["mta-sts.example.test".to_string()];
        let tls = Tls::load_with_names(&config, "ignored", dir.path(), &extra)
            .await
            .unwrap();
        assert_eq!(
            tls.status().names,
            ["mail.example.test", "example.test", "mta-sts.example.test"]
        );
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
    async fn the_acme_task_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load(&acme_config(&[]), "mail.example.test", dir.path())
            .await
            .unwrap();
        let (tx, rx) = crate::shutdown::channel();
        spawn_background(&tls, rx);
        // Only one task ever polls the state.
        let (_tx2, rx2) = crate::shutdown::channel();
        spawn_background(&tls, rx2);
        tx.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), tx.closed())
            .await
            .unwrap();
    }
}
