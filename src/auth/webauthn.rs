//! The WebAuthn relying party's checks (W3C Web Authentication level 2, §7.1 registration and
//! §7.2 authentication), for passkeys on the web sign-in.
//!
//! Written here on `ring` (signatures) and `ciborium` (CBOR) rather than taken from a crate:
//! `webauthn-rs` needs OpenSSL, and `webauthn_rp` (the maintained pure-Rust one) brings its
//! own RustCrypto stack (p256, p384, ed25519-dalek, rsa) beside the `ring` the server already
//! uses for TLS and DKIM. What is checked:
//!
//! - clientDataJSON: `type` (`webauthn.create` / `webauthn.get`), the `challenge` we issued
//!   (one per ceremony, kept server-side), the `origin` of our own page, not cross-origin;
//! - authenticatorData: the rpIdHash (SHA-256 of our RP ID), flag UP always, UV when the
//!   passkey replaces the password, the signature counter (its monotony is checked by
//!   `Store::use_passkey`);
//! - registration: attestation is not verified (we ask for `"none"`; whatever format comes,
//!   its statement is ignored: no decision here rests on the authenticator's make);
//! - assertion: the signature over `authenticatorData ‖ SHA-256(clientDataJSON)` with the
//!   stored COSE key: ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA PKCS#1 v1.5, 2048+ bits).
//!
//! Everything here parses what a browser sent: lengths are checked, nothing indexes blindly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;
use ring::signature;
use sha2::{Digest, Sha256};

/// COSE algorithm numbers offered, in order of preference (ES256, EdDSA, RS256).
pub const ALGORITHMS: [i64; 3] = [-7, -8, -257];

/// Flags of authenticatorData.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// The largest authenticatorData / attestationObject / clientDataJSON taken (bytes).
pub const MAX_INPUT: usize = 16 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("{0} does not match")]
    Mismatch(&'static str),
    #[error("the authenticator did not {0}")]
    Flag(&'static str),
    #[error("unsupported key: {0}")]
    Unsupported(&'static str),
    #[error("bad signature")]
    Signature,
}

/// Who we are, as the browser saw it: the RP ID (the host name) and the page's origin.
#[derive(Debug, Clone, Copy)]
pub struct RelyingParty<'a> {
    pub id: &'a str,
    pub origin: &'a str,
}

/// A new credential, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub credential_id: Vec<u8>,
    /// The COSE_Key as the authenticator sent it (checked to be one we can verify with).
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub user_verified: bool,
}

/// A sign-in with a credential, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    pub sign_count: u32,
    pub user_verified: bool,
}

/// A new random challenge (256 bits).
pub fn new_challenge() -> Vec<u8> {
    let bytes: [u8; 32] = rand::random();
    bytes.to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Base64url as browsers send it (padding tolerated).
pub fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, WebauthnError> {
    if text.len() > MAX_INPUT * 2 {
        return Err(WebauthnError::Malformed(what));
    }
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| WebauthnError::Malformed(what))
}

#[derive(serde::Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: bool,
}

fn check_client_data(
    rp: RelyingParty<'_>,
    json: &[u8],
    kind: &str,
    challenge: &[u8],
) -> Result<(), WebauthnError> {
    if json.len() > MAX_INPUT {
        return Err(WebauthnError::Malformed("clientDataJSON"));
    }
    let c: ClientData =
        serde_json::from_slice(json).map_err(|_| WebauthnError::Malformed("clientDataJSON"))?;
    if c.kind != kind {
        return Err(WebauthnError::Mismatch("the ceremony type"));
    }
    if challenge.is_empty() || unb64(&c.challenge, "challenge")? != challenge {
        return Err(WebauthnError::Mismatch("the challenge"));
    }
    if c.origin != rp.origin || c.cross_origin {
        return Err(WebauthnError::Mismatch("the origin"));
    }
    Ok(())
}

/// authenticatorData's fixed part: rpIdHash, flags, signCount; and what follows.
struct AuthData<'a> {
    flags: u8,
    sign_count: u32,
    rest: &'a [u8],
}

fn parse_auth_data<'a>(
    rp: RelyingParty<'_>,
    data: &'a [u8],
) -> Result<AuthData<'a>, WebauthnError> {
    let bad = WebauthnError::Malformed("authenticatorData");
    let (rp_hash, rest) = data.split_at_checked(32).ok_or(bad.clone())?;
    let (&flags, rest) = rest.split_first().ok_or(bad.clone())?;
    let (count, rest) = rest.split_first_chunk::<4>().ok_or(bad)?;
    if rp_hash != &Sha256::digest(rp.id.as_bytes())[..] {
        return Err(WebauthnError::Mismatch("the RP ID"));
    }
    if flags & UP == 0 {
        return Err(WebauthnError::Flag("see the user present"));
    }
    Ok(AuthData {
        flags,
        sign_count: u32::from_be_bytes(*count),
        rest,
    })
}

fn text_key(map: &[(Value, Value)], key: &str) -> Option<Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v.clone())
}

/// Checks a `navigator.credentials.create()` answer for `challenge`.
pub fn verify_registration(
    rp: RelyingParty<'_>,
    challenge: &[u8],
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Registered, WebauthnError> {
    check_client_data(rp, client_data_json, "webauthn.create", challenge)?;
    if attestation_object.len() > MAX_INPUT {
        return Err(WebauthnError::Malformed("attestationObject"));
    }
    let object: Value = ciborium::from_reader(attestation_object)
        .map_err(|_| WebauthnError::Malformed("attestationObject"))?;
    let map = object
        .as_map()
        .ok_or(WebauthnError::Malformed("attestationObject"))?;
    let auth_data = text_key(map, "authData")
        .and_then(|v| v.into_bytes().ok())
        .ok_or(WebauthnError::Malformed("attestationObject"))?;
    let parsed = parse_auth_data(rp, &auth_data)?;
    if parsed.flags & AT == 0 {
        return Err(WebauthnError::Malformed(
            "authenticatorData (no credential)",
        ));
    }
    let bad = WebauthnError::Malformed("attested credential data");
    let (_aaguid, rest) = parsed.rest.split_at_checked(16).ok_or(bad.clone())?;
    let (len, rest) = rest.split_first_chunk::<2>().ok_or(bad.clone())?;
    let (credential_id, rest) = rest
        .split_at_checked(usize::from(u16::from_be_bytes(*len)))
        .ok_or(bad.clone())?;
    if credential_id.is_empty() || credential_id.len() > 1023 {
        return Err(bad);
    }
    // The COSE key is the next CBOR item; extensions may follow it.
    let mut reader = rest;
    let _: Value = ciborium::from_reader(&mut reader)
        .map_err(|_| WebauthnError::Malformed("credential public key"))?;
    let key_bytes = rest
        .get(..rest.len() - reader.len())
        .ok_or(WebauthnError::Malformed("credential public key"))?;
    // Refuse now a key we could not check signatures with later.
    CoseKey::parse(key_bytes)?;
    Ok(Registered {
        credential_id: credential_id.to_vec(),
        public_key: key_bytes.to_vec(),
        sign_count: parsed.sign_count,
        user_verified: parsed.flags & UV != 0,
    })
}

/// Checks a `navigator.credentials.get()` answer for `challenge` against the stored
/// `public_key`. `require_uv`: the passkey replaces the password, so the authenticator must
/// have verified the user (PIN, biometrics), not only seen a touch.
pub fn verify_assertion(
    rp: RelyingParty<'_>,
    challenge: &[u8],
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
    public_key: &[u8],
    require_uv: bool,
) -> Result<Asserted, WebauthnError> {
    check_client_data(rp, client_data_json, "webauthn.get", challenge)?;
    if authenticator_data.len() > MAX_INPUT || signature.len() > MAX_INPUT {
        return Err(WebauthnError::Malformed("authenticatorData"));
    }
    let parsed = parse_auth_data(rp, authenticator_data)?;
    if require_uv && parsed.flags & UV == 0 {
        return Err(WebauthnError::Flag("verify the user"));
    }
    let mut signed = authenticator_data.to_vec();
    signed.extend_from_slice(&Sha256::digest(client_data_json));
    CoseKey::parse(public_key)?.verify(&signed, signature)?;
    Ok(Asserted {
        sign_count: parsed.sign_count,
        user_verified: parsed.flags & UV != 0,
    })
}

/// A public key we can verify with.
enum CoseKey {
    /// Uncompressed SEC1 point.
    Es256(Vec<u8>),
    Ed25519(Vec<u8>),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl CoseKey {
    fn parse(bytes: &[u8]) -> Result<CoseKey, WebauthnError> {
        let bad = WebauthnError::Malformed("COSE key");
        let value: Value = ciborium::from_reader(bytes).map_err(|_| bad.clone())?;
        let map = value.as_map().ok_or(bad.clone())?;
        let get = |label: i64| {
            map.iter()
                .find(|(k, _)| {
                    k.as_integer()
                        .is_some_and(|i| i128::from(i) == i128::from(label))
                })
                .map(|(_, v)| v)
        };
        let int = |label: i64| {
            get(label)
                .and_then(Value::as_integer)
                .and_then(|i| i64::try_from(i128::from(i)).ok())
        };
        let bytes = |label: i64| get(label).and_then(Value::as_bytes).cloned();
        match (int(1), int(3)) {
            // kty EC2, alg ES256, crv P-256.
            (Some(2), Some(-7)) => {
                let (Some(1), Some(x), Some(y)) = (int(-1), bytes(-2), bytes(-3)) else {
                    return Err(WebauthnError::Unsupported("EC2 key not on P-256"));
                };
                if x.len() != 32 || y.len() != 32 {
                    return Err(bad);
                }
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(CoseKey::Es256(point))
            }
            // kty OKP, alg EdDSA, crv Ed25519.
            (Some(1), Some(-8)) => match (int(-1), bytes(-2)) {
                (Some(6), Some(x)) if x.len() == 32 => Ok(CoseKey::Ed25519(x)),
                _ => Err(WebauthnError::Unsupported("OKP key not Ed25519")),
            },
            // kty RSA, alg RS256.
            (Some(3), Some(-257)) => match (bytes(-1), bytes(-2)) {
                (Some(n), Some(e)) if !n.is_empty() && !e.is_empty() => Ok(CoseKey::Rs256 { n, e }),
                _ => Err(bad),
            },
            _ => Err(WebauthnError::Unsupported("algorithm")),
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), WebauthnError> {
        let ok = match self {
            CoseKey::Es256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, sig)
            }
            CoseKey::Ed25519(key) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, key).verify(message, sig)
            }
            CoseKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                sig,
            ),
        };
        ok.map_err(|_| WebauthnError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    const RP: RelyingParty<'static> = RelyingParty {
        id: "localhost",
        origin: "http://localhost:8080",
    };

    fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
            b64(challenge)
        )
        .into_bytes()
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

    /// A software authenticator: a key pair and what it would send.
    struct Authenticator {
        cose: Vec<u8>,
        sign: Signer,
    }

    fn es256() -> Authenticator {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let cose = cbor(&Value::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(public[1..33].to_vec())),
            (int(-3), Value::Bytes(public[33..65].to_vec())),
        ]));
        Authenticator {
            cose,
            sign: Box::new(move |m| {
                pair.sign(&SystemRandom::new(), m)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }),
        }
    }

    fn ed25519() -> Authenticator {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let cose = cbor(&Value::Map(vec![
            (int(1), int(1)),
            (int(3), int(-8)),
            (int(-1), int(6)),
            (int(-2), Value::Bytes(pair.public_key().as_ref().to_vec())),
        ]));
        Authenticator {
            cose,
            sign: Box::new(move |m| pair.sign(m).as_ref().to_vec()),
        }
    }

    fn auth_data(
        rp_id: &str,
        flags: u8,
        count: u32,
        credential: Option<(&[u8], &[u8])>,
    ) -> Vec<u8> {
        let mut d = Sha256::digest(rp_id.as_bytes()).to_vec();
        d.push(flags);
        d.extend_from_slice(&count.to_be_bytes());
        if let Some((id, key)) = credential {
            d.extend_from_slice(&[0u8; 16]);
            d.extend_from_slice(&(id.len() as u16).to_be_bytes());
            d.extend_from_slice(id);
            d.extend_from_slice(key);
        }
        d
    }

    fn attestation(auth: Vec<u8>) -> Vec<u8> {
        cbor(&Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth)),
        ]))
    }

    #[test]
    fn registers_and_signs_in_with_es256_and_ed25519() {
        for a in [es256(), ed25519()] {
            let challenge = new_challenge();
            let id = b"credential-1";
            let reg = verify_registration(
                RP,
                &challenge,
                &client_data("webauthn.create", &challenge, RP.origin),
                &attestation(auth_data("localhost", UP | UV | AT, 0, Some((id, &a.cose)))),
            )
            .unwrap();
            assert_eq!(reg.credential_id, id);
            assert_eq!(reg.public_key, a.cose);
            assert!(reg.user_verified);

            let challenge = new_challenge();
            let cd = client_data("webauthn.get", &challenge, RP.origin);
            let ad = auth_data("localhost", UP | UV, 7, None);
            let mut signed = ad.clone();
            signed.extend_from_slice(&Sha256::digest(&cd));
            let sig = (a.sign)(&signed);
            let ok = verify_assertion(RP, &challenge, &cd, &ad, &sig, &reg.public_key, true);
            assert_eq!(
                ok,
                Ok(Asserted {
                    sign_count: 7,
                    user_verified: true
                })
            );

            // Each check refuses what it must.
            let other = new_challenge();
            assert_eq!(
                verify_assertion(RP, &other, &cd, &ad, &sig, &reg.public_key, true),
                Err(WebauthnError::Mismatch("the challenge"))
            );
            let evil = client_data("webauthn.get", &challenge, "http://evil.example");
            assert_eq!(
                verify_assertion(RP, &challenge, &evil, &ad, &sig, &reg.public_key, true),
                Err(WebauthnError::Mismatch("the origin"))
            );
            let create = client_data("webauthn.create", &challenge, RP.origin);
            assert_eq!(
                verify_assertion(RP, &challenge, &create, &ad, &sig, &reg.public_key, true),
                Err(WebauthnError::Mismatch("the ceremony type"))
            );
            let mut tampered = sig.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert_eq!(
                verify_assertion(RP, &challenge, &cd, &ad, &tampered, &reg.public_key, true),
                Err(WebauthnError::Signature)
            );
            let elsewhere = auth_data("evil.example", UP | UV, 7, None);
            assert_eq!(
                verify_assertion(RP, &challenge, &cd, &elsewhere, &sig, &reg.public_key, true),
                Err(WebauthnError::Mismatch("the RP ID"))
            );
            // Without UV: fine as a second factor, not instead of the password.
            let no_uv = auth_data("localhost", UP, 8, None);
            let mut signed = no_uv.clone();
            signed.extend_from_slice(&Sha256::digest(&cd));
            let sig = (a.sign)(&signed);
            assert!(
                verify_assertion(RP, &challenge, &cd, &no_uv, &sig, &reg.public_key, false).is_ok()
            );
            assert_eq!(
                verify_assertion(RP, &challenge, &cd, &no_uv, &sig, &reg.public_key, true),
                Err(WebauthnError::Flag("verify the user"))
            );
            // No user presence: refused.
            let absent = auth_data("localhost", 0, 9, None);
            assert_eq!(
                verify_assertion(RP, &challenge, &cd, &absent, &sig, &reg.public_key, false),
                Err(WebauthnError::Flag("see the user present"))
            );
        }
    }

    #[test]
    fn refuses_garbage_and_unknown_keys() {
        let challenge = new_challenge();
        let cd = client_data("webauthn.create", &challenge, RP.origin);
        assert!(verify_registration(RP, &challenge, &cd, b"").is_err());
        assert!(verify_registration(RP, &challenge, &cd, &[0xa1, 0x01]).is_err());
        // Truncated attested credential data.
        let short = auth_data("localhost", UP | AT, 0, None);
        assert!(verify_registration(RP, &challenge, &cd, &attestation(short)).is_err());
        // An algorithm we do not verify (ES384).
        let key = cbor(&Value::Map(vec![(int(1), int(2)), (int(3), int(-35))]));
        let ad = auth_data("localhost", UP | AT, 0, Some((b"id", &key)));
        assert_eq!(
            verify_registration(RP, &challenge, &cd, &attestation(ad)),
            Err(WebauthnError::Unsupported("algorithm"))
        );
        assert!(unb64("%%%", "x").is_err());
    }
}
