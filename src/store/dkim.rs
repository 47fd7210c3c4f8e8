//! DKIM keys of local domains.
//!
//! Each domain has two keys: RSA-2048, which every verifier understands, and Ed25519
//! (RFC 8463), which is small and fast and ignored by verifiers that do not know it. Both are
//! stored as PKCS#8 PEM in the domain's row. The stored selector is a base such as `mr202611`
//! (`mr` and the year and month the keys were made); the RSA key is published under `<base>r`
//! and the Ed25519 key under `<base>e`, so both TXT records exist side by side and a later
//! rotation can publish a new base before the old one is withdrawn.
//!
//! Keys are made when a domain is added, in the same transaction as the row. Databases from
//! before that, and the first-start domain, get theirs from [`Store::ensure_dkim_keys`], which
//! the server calls at start. Generating an RSA key takes a noticeable fraction of a second of
//! CPU, so it runs on a blocking thread and never inside a write transaction (that would hold
//! the one writer while it computes).

use rsa::pkcs8::der::pem::{self, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use sqlx::Row;

use super::{Result, Store, StoreError, now};

/// Bits of the RSA key: 2048 is what RFC 8301 asks signers for and fits a TXT record.
const RSA_BITS: usize = 2048;
/// The PEM label of a PKCS#8 private key.
const PKCS8_LABEL: &str = "PRIVATE KEY";

/// The DKIM material of one domain. Its `Debug` does not show the private keys, so it may be
/// logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKeys {
    /// The domain, as stored (lower case); the `d=` of signatures.
    pub domain: String,
    /// The selector base; see [`DkimKeys::rsa_selector`] and [`DkimKeys::ed25519_selector`].
    pub selector: String,
    /// The RSA private key, PKCS#8 PEM.
    pub rsa_pkcs8_pem: String,
    /// The Ed25519 private key, PKCS#8 PEM.
    pub ed25519_pkcs8_pem: String,
}

impl std::fmt::Debug for DkimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeys")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl DkimKeys {
    /// The selector the RSA key is published under: `<base>r`.
    pub fn rsa_selector(&self) -> String {
        format!("{}r", self.selector)
    }

    /// The selector the Ed25519 key is published under: `<base>e`.
    pub fn ed25519_selector(&self) -> String {
        format!("{}e", self.selector)
    }

    /// The RSA private key as PKCS#8 DER.
    pub fn rsa_pkcs8_der(&self) -> Result<Vec<u8>> {
        pem_to_der(&self.rsa_pkcs8_pem, &self.domain, "RSA")
    }

    /// The Ed25519 private key as PKCS#8 DER.
    pub fn ed25519_pkcs8_der(&self) -> Result<Vec<u8>> {
        pem_to_der(&self.ed25519_pkcs8_pem, &self.domain, "Ed25519")
    }

    /// The RSA public key as SubjectPublicKeyInfo DER: the `p=` of a `k=rsa` record
    /// (RFC 6376 §3.6.1).
    pub fn rsa_public_key_der(&self) -> Result<Vec<u8>> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&self.rsa_pkcs8_pem)
            .map_err(|e| corrupt(&self.domain, "RSA", e))?;
        let public = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| corrupt(&self.domain, "RSA", e))?;
        Ok(public.as_bytes().to_vec())
    }

    /// The raw 32-byte Ed25519 public key: the `p=` of a `k=ed25519` record (RFC 8463 §4.2).
    pub fn ed25519_public_key(&self) -> Result<Vec<u8>> {
        let der = self.ed25519_pkcs8_der()?;
        let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_der(&der)
            .map_err(|e| corrupt(&self.domain, "Ed25519", e))?;
        Ok(key.public_key())
    }
}

fn corrupt(domain: &str, which: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("the {which} DKIM key of {domain}: {e}"))
}

fn pem_to_der(text: &str, domain: &str, which: &str) -> Result<Vec<u8>> {
    let (label, der) = pem::decode_vec(text.as_bytes()).map_err(|e| corrupt(domain, which, e))?;
    if label != PKCS8_LABEL {
        return Err(corrupt(domain, which, format!("PEM label {label:?}")));
    }
    Ok(der)
}

/// Freshly generated keys, not yet stored.
pub(super) struct NewKeys {
    pub selector: String,
    pub rsa_pem: String,
    pub ed25519_pem: String,
}

/// The selector base for keys made at `unix_time`: `mr` and the year and month (UTC).
fn selector_base(unix_time: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(unix_time)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("mr{:04}{:02}", date.year(), u8::from(date.month()))
}

/// Generates both keys on a blocking thread (RSA generation is CPU-heavy).
pub(super) async fn generate(unix_time: i64) -> Result<NewKeys> {
    let selector = selector_base(unix_time);
    let (rsa_pem, ed25519_pem) = tokio::task::spawn_blocking(generate_blocking)
        .await
        .map_err(|e| StoreError::Invalid(format!("DKIM key generation did not finish: {e}")))??;
    Ok(NewKeys {
        selector,
        rsa_pem,
        ed25519_pem,
    })
}

fn generate_blocking() -> Result<(String, String)> {
    let failed =
        |e: &dyn std::fmt::Display| StoreError::Invalid(format!("cannot generate a DKIM key: {e}"));
    let rsa =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(|e| failed(&e))?;
    let rsa_pem = rsa
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(&e))?
        .to_string();
    let ed25519_der =
        mail_auth::common::crypto::Ed25519Key::generate_pkcs8().map_err(|e| failed(&e))?;
    let ed25519_pem =
        pem::encode_string(PKCS8_LABEL, LineEnding::LF, &ed25519_der).map_err(|e| failed(&e))?;
    Ok((rsa_pem, ed25519_pem))
}

impl Store {
    /// The DKIM material of a local domain (case-insensitive), or `None` when the domain is not
    /// ours or has no keys yet.
    pub async fn dkim_keys(&self, domain: &str) -> Result<Option<DkimKeys>> {
        let domain = domain.trim().trim_end_matches('.');
        let row = sqlx::query(
            "SELECT name, dkim_selector, dkim_rsa_key, dkim_ed25519_key FROM domains
             WHERE name = ? AND dkim_selector IS NOT NULL AND dkim_rsa_key IS NOT NULL
               AND dkim_ed25519_key IS NOT NULL",
        )
        .bind(domain)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(DkimKeys {
                domain: r.try_get("name")?,
                selector: r.try_get("dkim_selector")?,
                rsa_pkcs8_pem: r.try_get("dkim_rsa_key")?,
                ed25519_pkcs8_pem: r.try_get("dkim_ed25519_key")?,
            })
        })
        .transpose()
    }

    /// Gives keys to every domain that lacks them; returns how many domains got new keys.
    /// Safe to run beside another process doing the same: a domain that got keys meanwhile
    /// keeps them.
    pub async fn ensure_dkim_keys(&self) -> Result<usize> {
        let missing: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM domains WHERE dkim_selector IS NULL OR dkim_rsa_key IS NULL
               OR dkim_ed25519_key IS NULL ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut done = 0;
        for id in missing {
            let keys = generate(now()).await?;
            let updated = sqlx::query(
                "UPDATE domains SET dkim_selector = ?, dkim_rsa_key = ?, dkim_ed25519_key = ?
                 WHERE id = ? AND (dkim_selector IS NULL OR dkim_rsa_key IS NULL
                   OR dkim_ed25519_key IS NULL)",
            )
            .bind(&keys.selector)
            .bind(&keys.rsa_pem)
            .bind(&keys.ed25519_pem)
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected();
            done += updated as usize;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_mr_year_month() {
        // 2026-11-27T00:00:00Z
        assert_eq!(selector_base(1_795_737_600), "mr202611");
        assert_eq!(selector_base(0), "mr197001");
    }

    #[tokio::test]
    async fn add_domain_makes_keys_and_ensure_fills_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        store.add_domain("Example.org").await.unwrap();
        let keys = store
            .dkim_keys("EXAMPLE.org.")
            .await
            .unwrap()
            .expect("keys");
        assert_eq!(keys.domain, "example.org");
        assert_eq!(keys.selector, selector_base(now()));
        assert_eq!(keys.rsa_selector(), format!("{}r", keys.selector));
        assert_eq!(keys.ed25519_selector(), format!("{}e", keys.selector));
        assert!(
            keys.rsa_pkcs8_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(
            keys.ed25519_pkcs8_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert_eq!(keys.ed25519_public_key().unwrap().len(), 32);
        // SubjectPublicKeyInfo of a 2048-bit key: 294 bytes.
        assert_eq!(keys.rsa_public_key_der().unwrap().len(), 294);
        assert!(!format!("{keys:?}").contains("PRIVATE"));
        assert_eq!(store.dkim_keys("example.net").await.unwrap(), None);
        assert_eq!(store.ensure_dkim_keys().await.unwrap(), 0);

        // A row from before keys were made (an older database, the first-start domain).
        sqlx::query("INSERT INTO domains (name, created_at) VALUES ('old.example', 0)")
            .execute(&store.writer)
            .await
            .unwrap();
        assert_eq!(store.dkim_keys("old.example").await.unwrap(), None);
        assert_eq!(store.ensure_dkim_keys().await.unwrap(), 1);
        let old = store.dkim_keys("old.example").await.unwrap().expect("keys");
        assert_eq!(store.ensure_dkim_keys().await.unwrap(), 0);
        // Existing keys are kept.
        assert_eq!(
            store.dkim_keys("example.org").await.unwrap(),
            Some(keys.clone())
        );
        assert_ne!(old.rsa_pkcs8_pem, keys.rsa_pkcs8_pem);
    }
}
