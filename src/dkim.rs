//! DKIM signing of outgoing mail.
//!
//! A message whose RFC 5322 From: is at a local domain with keys gets two `DKIM-Signature:`
//! fields on top: `rsa-sha256` (understood everywhere) and `ed25519-sha256` (RFC 8463; ignored
//! by verifiers that do not know it). Both use relaxed/relaxed canonicalization, which survives
//! the re-folding and whitespace changes relays make, and neither carries `l=` (a length limit
//! would let anyone append to the body).
//!
//! Signed header fields: [`SIGNED_HEADERS`]. mail-auth signs every instance of a listed field
//! that is present and then lists once more each entry it did not consume, which is the usual
//! "oversigning": a listed field absent from the message (say Reply-To), or a second From:
//! (From is listed twice), cannot be added later without breaking the signature.
//!
//! A message from a domain that is not ours, or without a usable From:, is returned unchanged:
//! signing is for our own domains only, and the submission path has already checked the sender.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::store::{DkimKeys, Store, StoreError};

/// The header fields signed, From twice to oversign it (see the module doc).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key that the crypto library refuses.
    #[error("the {which} DKIM key of {domain} is unusable: {reason}")]
    Key {
        domain: String,
        which: &'static str,
        reason: String,
    },
    #[error("DKIM signing failed for {domain}: {reason}")]
    Sign { domain: String, reason: String },
}

/// Keys parsed for signing, with the stored material they came from (to notice a rotation).
struct Loaded {
    source: DkimKeys,
    rsa: DkimSigner<RsaKey<Sha256>, Done>,
    ed25519: DkimSigner<Ed25519Key, Done>,
    /// ARC sealing (RFC 8617) of mail we forward, with the domain's RSA key: ARC has no
    /// Ed25519 and receivers check only one seal.
    arc: ArcSealer<RsaKey<Sha256>, Done>,
}

/// Signs outgoing messages with the keys in the store. Parsed keys are cached per domain and
/// reused while the stored keys stay the same (ring checks an RSA key thoroughly when it is
/// loaded, which costs more than signing with it). Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Signer {
    store: Store,
    cache: Arc<Mutex<HashMap<String, Arc<Loaded>>>>,
}

impl Signer {
    pub fn new(store: Store) -> Signer {
        Signer {
            store,
            cache: Arc::default(),
        }
    }

    /// The message with DKIM signatures prepended when its From: domain is local and has keys;
    /// otherwise the message unchanged.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        match author(message).as_deref().and_then(domain_of) {
            Some(domain) => self.sign_as(&domain, message).await,
            None => Ok(message.to_vec()),
        }
    }

    /// [`Signer::sign`] for a caller that already knows the From: domain.
    pub async fn sign_as(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let Some(keys) = self.store.dkim_keys(domain).await? else {
            return Ok(message.to_vec());
        };
        let loaded = self.load(keys)?;
        sign_with(&loaded, message)
    }

    /// The domain's ARC sealing key, if it has DKIM keys (see [`ArcKey`]).
    pub async fn arc_key(&self, domain: &str) -> Result<Option<ArcKey>, DkimError> {
        let Some(keys) = self.store.dkim_keys(domain).await? else {
            return Ok(None);
        };
        Ok(Some(ArcKey(self.load(keys)?)))
    }

    fn load(&self, keys: DkimKeys) -> Result<Arc<Loaded>, DkimError> {
        let name = keys.domain.to_ascii_lowercase();
        // A poisoned lock only means another signer panicked; the map itself is still sound.
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned();
        if let Some(loaded) = cached.filter(|l| l.source == keys) {
            return Ok(loaded);
        }
        let loaded = Arc::new(parse_keys(keys)?);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, loaded.clone());
        Ok(loaded)
    }
}

/// The fields an ARC-Message-Signature covers: what DKIM signs (each listed once: a forwarder
/// does not oversign, a later hop may add its own), plus the author's DKIM signatures, which a
/// forwarder vouches for.
fn arc_headers() -> impl Iterator<Item = &'static str> {
    let mut seen = Vec::new();
    SIGNED_HEADERS
        .iter()
        .copied()
        .filter(move |h| {
            let first = !seen.contains(h);
            seen.push(*h);
            first
        })
        .chain(["DKIM-Signature"])
}

/// A domain's key for sealing forwarded mail with an ARC set (RFC 8617): the forwarder's
/// statement of what it verified, which lets the final receiver trust a DKIM or SPF result
/// that forwarding broke.
pub struct ArcKey(Arc<Loaded>);

impl ArcKey {
    /// The three ARC fields (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results),
    /// CRLF-terminated, to prepend to `message`; `results` are our checks of it and `arc` the
    /// chain it arrived with. A chain that already failed cannot be sealed (§5.1.2).
    pub fn seal(
        &self,
        message: &AuthenticatedMessage<'_>,
        results: &AuthenticationResults<'_>,
        arc: &ArcOutput<'_>,
    ) -> Result<String, DkimError> {
        self.0
            .arc
            .seal(message, results, arc)
            .map(|set| set.to_header())
            .map_err(|e| DkimError::Sign {
                domain: self.0.source.domain.clone(),
                reason: format!("ARC: {e}"),
            })
    }
}

/// The address of the message's From: field (the first, if several).
pub fn author(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    parsed.from()?.first()?.address().map(str::to_string)
}

/// The domain of `address`, lower case, without a trailing dot.
pub fn domain_of(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

fn parse_keys(keys: DkimKeys) -> Result<Loaded, DkimError> {
    let bad = |which: &'static str, reason: String| DkimError::Key {
        domain: keys.domain.clone(),
        which,
        reason,
    };
    let rsa_der = keys.rsa_pkcs8_der()?;
    let rsa = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        rsa_der.as_slice(),
    )))
    .map_err(|e| bad("RSA", e.to_string()))?;
    let ed25519 = Ed25519Key::from_pkcs8_der(&keys.ed25519_pkcs8_der()?)
        .map_err(|e| bad("Ed25519", e.to_string()))?;
    // ring's key pair cannot be cloned: the sealer gets its own copy of the key.
    let arc = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        rsa_der.as_slice(),
    )))
    .map_err(|e| bad("RSA", e.to_string()))?;
    Ok(Loaded {
        arc: ArcSealer::from_key(arc)
            .domain(keys.domain.as_str())
            .selector(keys.rsa_selector())
            .headers(arc_headers())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed),
        rsa: DkimSigner::from_key(rsa)
            .domain(keys.domain.as_str())
            .selector(keys.rsa_selector())
            .headers(SIGNED_HEADERS.iter().copied())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed),
        ed25519: DkimSigner::from_key(ed25519)
            .domain(keys.domain.as_str())
            .selector(keys.ed25519_selector())
            .headers(SIGNED_HEADERS.iter().copied())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed),
        source: keys,
    })
}

fn sign_with(loaded: &Loaded, message: &[u8]) -> Result<Vec<u8>, DkimError> {
    let failed = |e: mail_auth::Error| DkimError::Sign {
        domain: loaded.source.domain.clone(),
        reason: e.to_string(),
    };
    let rsa = loaded.rsa.sign(message).map_err(failed)?;
    let ed25519 = loaded.ed25519.sign(message).map_err(failed)?;
    let mut out = Vec::with_capacity(message.len() + 1024);
    out.extend_from_slice(rsa.to_header().as_bytes());
    out.extend_from_slice(ed25519.to_header().as_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::borrow::Borrow;
    use std::hash::Hash;

    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
    use mail_auth::{
        AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
    };

    use super::*;
    use crate::records::{RecordKind, domain_records};

    /// Answers TXT lookups from the records we would publish; nothing goes to the network.
    struct Zone(HashMap<Box<str>, Txt>);

    impl ResolverCache<Box<str>, Txt> for Zone {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.get(name).cloned()
        }
        fn remove<Q>(&self, _: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }
        fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
    }

    async fn zone(store: &Store, domain: &str) -> Zone {
        let keys = store.dkim_keys(domain).await.unwrap().expect("keys");
        let records = domain_records("mail.example.org", domain, Some(&keys)).unwrap();
        let mut map = HashMap::new();
        for r in records
            .iter()
            .filter(|r| r.kind == RecordKind::Txt && r.name.contains("._domainkey."))
        {
            let key = DomainKey::parse(r.value.as_bytes()).expect("our record parses");
            map.insert(
                r.name.clone().into_boxed_str(),
                Txt::DomainKey(Arc::new(key)),
            );
        }
        assert_eq!(map.len(), 2);
        Zone(map)
    }

    async fn verify(zone: &Zone, message: &[u8]) -> Vec<DkimResult> {
        let resolver =
            MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default())
                .expect("resolver");
        let parsed = AuthenticatedMessage::parse(message).expect("parses");
        resolver
            .verify_dkim(Parameters::new(&parsed).with_txt_cache(zone))
            .await
            .into_iter()
            .map(|o| o.result().clone())
            .collect()
    }

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        store.add_domain("example.org").await.unwrap();
        (store, dir)
    }

    const MESSAGE: &[u8] = b"From: Alice <alice@Example.ORG>\r\nTo: bob@example.net\r\n\
        Subject: Hello\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
        Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\n\r\nsee you.\r\n";

    #[tokio::test]
    async fn signatures_verify_with_mail_auth() {
        let (store, _dir) = store().await;
        let signer = Signer::new(store.clone());
        let signed = signer.sign(MESSAGE).await.unwrap();
        assert!(signed.ends_with(MESSAGE));
        let head = String::from_utf8_lossy(&signed[..signed.len() - MESSAGE.len()]).to_string();
        assert_eq!(head.matches("DKIM-Signature:").count(), 2, "{head}");
        assert!(head.contains("a=rsa-sha256"), "{head}");
        assert!(head.contains("a=ed25519-sha256"), "{head}");
        assert!(head.contains("c=relaxed/relaxed"), "{head}");
        assert!(head.contains("d=example.org"), "{head}");
        // From is oversigned: listed once more than it occurs.
        let unfolded: String = head.split_whitespace().collect();
        let h = unfolded
            .split(";h=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(h.split(':').filter(|f| *f == "from").count(), 2, "{h}");
        for field in ["to", "subject", "date", "message-id", "reply-to", "cc"] {
            assert!(h.split(':').any(|f| f == field), "{field} not in {h}");
        }

        let zone = zone(&store, "example.org").await;
        assert_eq!(
            verify(&zone, &signed).await,
            [DkimResult::Pass, DkimResult::Pass]
        );

        // The cached signer gives the same result a second time.
        let again = signer.sign(MESSAGE).await.unwrap();
        assert_eq!(
            verify(&zone, &again).await,
            [DkimResult::Pass, DkimResult::Pass]
        );

        // A changed body or an added From: breaks both signatures.
        let mut tampered = signed.clone();
        let at = tampered.len() - 5;
        tampered[at] = b'X';
        let results = verify(&zone, &tampered).await;
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|r| *r != DkimResult::Pass),
            "{results:?}"
        );
        // Put it after the signatures so it is in the signed header block.
        let pos = signed.len() - MESSAGE.len();
        let mut injected = signed[..pos].to_vec();
        injected.extend_from_slice(b"From: mallory@example.org\r\n");
        injected.extend_from_slice(MESSAGE);
        let results = verify(&zone, &injected).await;
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|r| *r != DkimResult::Pass),
            "{results:?}"
        );
    }

    #[tokio::test]
    async fn foreign_or_missing_from_is_left_alone() {
        let (store, _dir) = store().await;
        for message in [
            &b"From: someone@example.net\r\nSubject: x\r\n\r\nbody\r\n"[..],
            b"Subject: no from\r\n\r\nbody\r\n",
            b"From: not an address\r\n\r\nbody\r\n",
            b"",
        ] {
            assert_eq!(
                Signer::new(store.clone()).sign(message).await.unwrap(),
                message
            );
        }
    }
}
