//! Mode `files`: a PEM chain and a PEM key (PKCS#8, PKCS#1 or SEC1, may be the same file). The
//! key must match the certificate. [`Tls::reload`] swaps the new pair in atomically behind the
//! [`SwapResolver`](super::SwapResolver); any error keeps the old pair in use. Errors name the
//! file. The `serve` command calls [`Tls::reload_logged`] on SIGHUP.

use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject};

use super::{Backend, Loaded, Tls, TlsError, format_time, invalid, read_certs, read_file, write};

impl Tls {
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

    /// What SIGHUP does: in mode `files`, re-reads the pair (off the async threads) and logs the
    /// outcome; in the other modes logs that there is nothing to reload. Never fails: a bad file
    /// keeps the old certificate and is logged.
    pub async fn reload_logged(&self) {
        let source = self.status().source;
        if !matches!(self.inner.backend, Backend::Files { .. }) {
            tracing::info!("SIGHUP: TLS mode {source} has no files to reload");
            return;
        }
        let t = self.clone();
        match tokio::task::spawn_blocking(move || t.reload()).await {
            Ok(Ok(())) => {
                let status = self.status();
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

/// Loads a PEM chain and key, checking that they belong together.
pub(super) fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::testing::{files_config, handshake, served, write_pair};
    use super::*;

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
}
