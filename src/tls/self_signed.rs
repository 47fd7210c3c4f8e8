//! Mode `self-signed` (and the ACME fallback): generated once with rcgen (ECDSA P-256, about
//! ten years, names: the hostname and `localhost`) into `<data_dir>/tls/self-signed.{crt,key}`
//! (key mode 0600, written to a temporary file and renamed). Later starts reuse the pair; it is
//! regenerated when missing, unreadable, not naming the hostname (the hostname changed) or
//! within 30 days of expiry.

use std::fs;
use std::io::Write;
use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;

use super::files::load_pair;
use super::{Loaded, TlsError};

/// Lifetime of a generated self-signed certificate.
const SELF_SIGNED_DAYS: i64 = 3650;
/// A saved self-signed certificate this close to expiry is replaced at start.
const SELF_SIGNED_RENEW_DAYS: i64 = 30;

/// The saved self-signed pair, or a new one when it is missing, unreadable, for another
/// hostname or about to expire.
pub(super) fn load(hostname: &str, data_dir: &Path) -> Result<Loaded, TlsError> {
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

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::super::Tls;
    use super::super::testing::handshake;
    use super::*;
    use crate::config::TlsConfig;

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
}
