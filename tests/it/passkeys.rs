//! Passkeys on the web (issue 19) through the router, with a software authenticator (a ring
//! key pair that answers as a browser would): registration from the settings page, a passkey
//! as the second step, and "Sign in with a passkey" instead of the password.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::harness;
use crate::web_client::{Browser, field};

const ORIGIN: &str = "http://localhost";

struct SoftKey {
    pair: EcdsaKeyPair,
    id: Vec<u8>,
    count: u32,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#
    )
    .into_bytes()
}

impl SoftKey {
    fn new() -> SoftKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        SoftKey {
            pair,
            id: rand::random::<[u8; 16]>().to_vec(),
            count: 0,
        }
    }

    fn auth_data(&self, flags: u8, attested: bool) -> Vec<u8> {
        let mut d = Sha256::digest(b"localhost").to_vec();
        d.push(flags);
        d.extend_from_slice(&self.count.to_be_bytes());
        if attested {
            let public = self.pair.public_key().as_ref();
            let key = cbor(&Value::Map(vec![
                (int(1), int(2)),
                (int(3), int(-7)),
                (int(-1), int(1)),
                (int(-2), Value::Bytes(public[1..33].to_vec())),
                (int(-3), Value::Bytes(public[33..65].to_vec())),
            ]));
            d.extend_from_slice(&[0u8; 16]);
            d.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
            d.extend_from_slice(&self.id);
            d.extend_from_slice(&key);
        }
        d
    }

    /// The fields `navigator.credentials.create()` would give for `challenge`.
    fn create(&self, challenge: &str) -> (String, String) {
        let object = cbor(&Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (
                Value::Text("authData".into()),
                Value::Bytes(self.auth_data(0x45, true)),
            ),
        ]));
        (
            b64(&client_data("webauthn.create", challenge)),
            b64(&object),
        )
    }

    /// The fields `navigator.credentials.get()` would give; `flags` 0x05 = UP|UV, 0x01 = UP.
    fn get(&mut self, challenge: &str, flags: u8) -> Vec<(&'static str, String)> {
        self.count += 1;
        let cd = client_data("webauthn.get", challenge);
        let ad = self.auth_data(flags, false);
        let mut signed = ad.clone();
        signed.extend_from_slice(&Sha256::digest(&cd));
        let sig = self.pair.sign(&SystemRandom::new(), &signed).unwrap();
        vec![
            ("id", b64(&self.id)),
            ("clientDataJSON", b64(&cd)),
            ("authenticatorData", b64(&ad)),
            ("signature", b64(sig.as_ref())),
        ]
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn post_fields(
    b: &mut Browser,
    path: &str,
    fields: &[(&str, String)],
) -> crate::web_client::Page {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(path, &pairs).await
}

#[tokio::test]
async fn register_a_passkey_then_use_it_as_second_step_and_instead_of_the_password() {
    let server = harness::start().await;
    let kim = harness::account(&server.running.store, "kim@localhost", 0).await;
    let mut b = Browser::new(&server);
    assert_eq!(
        b.sign_in_at("/mail", "kim@localhost", "secret")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let csrf = b.csrf_of("/mail/settings/two-factor").await;

    // Registration.
    let mut key = SoftKey::new();
    let page = b
        .post(
            "/mail/settings/two-factor/passkey/options",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let options = json(&page.body);
    assert_eq!(options["rpId"], "localhost");
    let challenge = options["challenge"].as_str().unwrap().to_string();
    let token = options["token"].as_str().unwrap().to_string();
    // An answer to another challenge is refused (and spends the token).
    let (cd, ao) = key.create(&b64(b"not the challenge"));
    let page = post_fields(
        &mut b,
        "/mail/settings/two-factor/passkey",
        &[
            ("csrf", csrf.clone()),
            ("token", token.clone()),
            ("name", "Laptop".into()),
            ("clientDataJSON", cd),
            ("attestationObject", ao),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    let (cd, ao) = key.create(&challenge);
    let page = post_fields(
        &mut b,
        "/mail/settings/two-factor/passkey",
        &[
            ("csrf", csrf.clone()),
            ("token", token.clone()),
            ("name", "Laptop".into()),
            ("clientDataJSON", cd.clone()),
            ("attestationObject", ao.clone()),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "a spent token: {}",
        page.body
    );
    let page = b
        .post(
            "/mail/settings/two-factor/passkey/options",
            &[("csrf", &csrf)],
        )
        .await;
    let options = json(&page.body);
    let (cd, ao) = key.create(options["challenge"].as_str().unwrap());
    let page = post_fields(
        &mut b,
        "/mail/settings/two-factor/passkey",
        &[
            ("csrf", csrf.clone()),
            ("token", options["token"].as_str().unwrap().into()),
            ("name", "Laptop".into()),
            ("clientDataJSON", cd),
            ("attestationObject", ao),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        json(&page.body)["next"],
        "/mail/settings/two-factor?done=passkey-added"
    );
    let store = &server.running.store;
    assert!(store.second_factor_on(kim.id).await.unwrap());
    let listed = b.get("/mail/settings/two-factor").await;
    assert!(listed.body.contains("Laptop"), "{}", listed.body);

    // As the second step.
    let mut b2 = Browser::new(&server);
    let page = b2.sign_in_at("/mail", "kim@localhost", "secret").await;
    assert_eq!(page.location, "/mail/login/second");
    let page = b2.post("/mail/login/second/passkey/options", &[]).await;
    let options = json(&page.body);
    assert_eq!(options["allow"][0].as_str().unwrap(), b64(&key.id));
    let answer = key.get(options["challenge"].as_str().unwrap(), 0x01);
    let page = post_fields(&mut b2, "/mail/login/second/passkey", &answer).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(json(&page.body)["next"], "/mail");
    assert_eq!(b2.get("/mail/settings").await.status, StatusCode::OK);

    // Instead of the password: username-less, and the user must have been verified (UV).
    let mut b3 = Browser::new(&server);
    let form = b3.get("/mail/login").await;
    assert!(form.body.contains("Sign in with a passkey"));
    let login_token = field(&form.body, "login_token");
    let page = b3
        .post(
            "/mail/login/passkey/options",
            &[("login_token", &login_token), ("next", "/mail/settings")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let options = json(&page.body);
    assert_eq!(options["userVerification"], "required");
    let challenge = options["challenge"].as_str().unwrap().to_string();
    let without_uv = key.get(&challenge, 0x01);
    let page = post_fields(&mut b3, "/mail/login/passkey", &without_uv).await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "UP alone is not enough: {}",
        page.body
    );
    // That challenge is spent; a new one, with UV.
    let page = b3
        .post(
            "/mail/login/passkey/options",
            &[("login_token", &login_token), ("next", "/mail/settings")],
        )
        .await;
    let challenge = json(&page.body)["challenge"].as_str().unwrap().to_string();
    let answer = key.get(&challenge, 0x05);
    let page = post_fields(&mut b3, "/mail/login/passkey", &answer).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(json(&page.body)["next"], "/mail/settings");
    assert_eq!(b3.get("/mail/settings").await.status, StatusCode::OK);
    // The same answer again: refused (its challenge is gone).
    let mut b4 = Browser::new(&server);
    let page = post_fields(&mut b4, "/mail/login/passkey", &answer).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // An authenticator whose counter went back (a clone): refused.
    let form = b4.get("/mail/login").await;
    let login_token = field(&form.body, "login_token");
    let page = b4
        .post(
            "/mail/login/passkey/options",
            &[("login_token", &login_token)],
        )
        .await;
    let challenge = json(&page.body)["challenge"].as_str().unwrap().to_string();
    key.count = 0;
    let cloned = key.get(&challenge, 0x05);
    let page = post_fields(&mut b4, "/mail/login/passkey", &cloned).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let history = store.recent_sign_ins(kim.id, 10).await.unwrap();
    assert!(history.iter().any(|s| s.method == "passkey" && s.success));

    // Removal needs the password.
    let id = store.passkeys(kim.id).await.unwrap()[0].id;
    let page = b
        .post(
            &format!("/mail/settings/two-factor/passkey/{id}/remove"),
            &[("csrf", &csrf), ("password", "nope")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = b
        .post(
            &format!("/mail/settings/two-factor/passkey/{id}/remove"),
            &[("csrf", &csrf), ("password", "secret")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!store.second_factor_on(kim.id).await.unwrap());
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_passkey_sign_in_needs_the_sign_in_forms_token() {
    let server = harness::start().await;
    let mut b = Browser::new(&server);
    let page = b
        .post("/mail/login/passkey/options", &[("login_token", "forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    server.running.shutdown().await;
}
