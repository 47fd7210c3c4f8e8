//! DKIM against an independent implementation, dkimpy (Debian's python3-dkim, run with
//! /usr/bin/python3; `.ci/run` installs it): what we sign verifies there from the records
//! `mailroom domain dns` prints, and what it signs verifies here (tampering fails).

use std::collections::BTreeMap;
use std::path::Path;

use mailroom::dkim::Signer;
use mailroom::records::{RecordKind, domain_records};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;

use crate::dns_server::Zone;
use crate::smtp::connect;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/dkim_dkimpy.py");

fn dkimpy(args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("/usr/bin/python3 runs (CI installs python3-dkim: .ci/run)");
    assert!(
        out.status.success(),
        "dkimpy {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn our_signatures_verify_with_dkimpy_from_the_published_records() {
    let (store, dir) = crate::harness::store().await;
    let message = b"From: Bob <bob@example.org>\r\nTo: someone@remote.test\r\n\
Subject: signed here\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,  world \r\n\r\n\r\n";
    let signed = Signer::new(store.clone()).sign(message).await.unwrap();
    let keys = store.dkim_keys("example.org").await.unwrap();
    let records: BTreeMap<String, String> =
        domain_records("mail.example.org", "example.org", keys.as_ref())
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == RecordKind::Txt && r.name.contains("._domainkey."))
            .map(|r| (r.name, r.value))
            .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let records_file = dir.path().join("records.json");
    std::fs::write(&records_file, serde_json::to_vec(&records).unwrap()).unwrap();
    let signed_file = dir.path().join("signed.eml");
    std::fs::write(&signed_file, &signed).unwrap();
    let verdicts = dkimpy(&["verify", path(&signed_file), path(&records_file)]);
    assert!(
        verdicts.contains("rsa-sha256 example.org pass"),
        "{verdicts}"
    );
    assert!(
        verdicts.contains("ed25519-sha256 example.org pass"),
        "{verdicts}"
    );

    // A changed body no longer verifies.
    let tampered = String::from_utf8(signed).unwrap().replace("Hello", "Jello");
    std::fs::write(&signed_file, tampered).unwrap();
    let verdicts = dkimpy(&["verify", path(&signed_file), path(&records_file)]);
    assert!(!verdicts.contains("pass"), "{verdicts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkimpy_signatures_verify_here_and_tampering_fails() {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public = key.to_public_key().to_public_key_der().unwrap();
    let zone = Zone::default();
    use base64::Engine;
    zone.txt(
        "s1._domainkey.signer.test",
        &format!(
            "v=DKIM1; k=rsa; p={}",
            base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
        ),
    );
    let server = crate::mail_auth::receiver(zone).await;
    let dir = server.dir.path();
    let key_file = dir.join("key.pem");
    std::fs::write(
        &key_file,
        key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    let message = dir.join("message.eml");
    std::fs::write(
        &message,
        "From: alice@signer.test\r\nTo: bob@example.org\r\nSubject: signed by dkimpy\r\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <d@signer.test>\r\n\r\nHello Bob.\r\n",
    )
    .unwrap();
    let signed_file = dir.join("signed.eml");
    dkimpy(&[
        "sign",
        path(&key_file),
        "signer.test",
        "s1",
        path(&message),
        path(&signed_file),
    ]);
    let signed = std::fs::read_to_string(&signed_file).unwrap();
    let tampered = signed.replace("Hello Bob.", "Hello Bob, send money.");

    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO signer.test", 250, "").await;
    for body in [&signed, &tampered] {
        c.expect("MAIL FROM:<alice@signer.test>", 250, "").await;
        c.expect("RCPT TO:<bob@example.org>", 250, "").await;
        c.expect("DATA", 354, "").await;
        c.send(body.as_bytes()).await;
        c.expect(".", 250, "").await;
    }
    let stored = crate::harness::inbox_texts(&server.running.store, "bob@example.org").await;
    assert_eq!(stored.len(), 2);
    let results = |m: &str| {
        m.split("Authentication-Results: mx.example.org;")
            .nth(1)
            .and_then(|r| r.split("\r\nDKIM-Signature:").next())
            .unwrap_or_default()
            .to_string()
    };
    let good = stored.iter().find(|m| !m.contains("send money")).unwrap();
    let bad = stored.iter().find(|m| m.contains("send money")).unwrap();
    assert!(results(good).contains("dkim=pass"), "{good}");
    assert!(results(good).contains("header.i=@signer.test"), "{good}");
    assert!(results(bad).contains("dkim=fail"), "{bad}");
}
