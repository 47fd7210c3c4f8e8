//! Third-party SMTP clients against the server: Python's `smtplib` (plain, STARTTLS, SMTP_SSL,
//! AUTH, SMTPUTF8) and `swaks` to ports 25, 587 and 465. What they sent is then read back from
//! the store and compared byte for byte after the trace headers the server adds.

use std::path::Path;
use std::process::Stdio;

use crate::harness::{self, TestServer, account};

/// Every stored message of `address`'s INBOX, raw.
async fn inbox(t: &TestServer, address: &str) -> Vec<Vec<u8>> {
    let store = &t.running.store;
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in store.messages(&inbox).await.unwrap() {
        out.push(store.message_body(&inbox, m.uid).await.unwrap());
    }
    out
}

/// The message after the fields the server put on top: `Return-Path:`, `Received:`,
/// `Authentication-Results:` (inbound) and `DKIM-Signature:` (submitted from our domains).
fn without_trace(raw: &[u8]) -> &[u8] {
    let text = raw;
    let mut rest = text;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |p| p + 2);
        let (line, after) = rest.split_at(line_end);
        let trace = line.starts_with(b"Return-Path:")
            || line.starts_with(b"Received:")
            || line.starts_with(b"Authentication-Results:")
            || line.starts_with(b"DKIM-Signature:")
            || line.starts_with(b"X-Mailroom-Spam:")
            || line.starts_with(b"\t")
            || line.starts_with(b" ");
        if !trace {
            return rest;
        }
        rest = after;
    }
}

fn port(t: &TestServer, kind: &str) -> String {
    t.running.addr(kind).expect(kind).port().to_string()
}

fn assert_stored(stored: &[Vec<u8>], sent: &[u8], what: &str) {
    assert!(
        stored.iter().any(|m| without_trace(m) == sent),
        "{what}: not stored byte for byte; sent {:?}, stored {:?}",
        String::from_utf8_lossy(sent),
        stored
            .iter()
            .map(|m| String::from_utf8_lossy(m))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn smtplib_plain_starttls_ssl_auth_and_smtputf8() {
    let t = harness::start().await;
    account(&t.running.store, "bob@localhost", 0).await;
    let work = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/smtp_smtplib.py"))
        .env("SMTP_PORT", port(&t, "smtp"))
        .env("SUBMISSION_PORT", port(&t, "submission"))
        .env("SUBMISSIONS_PORT", port(&t, "submissions"))
        .env("SMTP_USER", "bob@localhost")
        .env("SMTP_PASSWORD", "secret")
        .env("SMTP_CAFILE", t.dir.path().join("tls/self-signed.crt"))
        .env("WORKDIR", work.path())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 runs (CI installs it: .ci/run)");
    assert!(
        out.status.success(),
        "smtp_smtplib.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = inbox(&t, "bob@localhost").await;
    assert_eq!(
        stored.len(),
        4,
        "four messages, nothing from the refused attempts"
    );
    for name in ["mx-plain", "mx-tls", "submission", "submissions-utf8"] {
        let sent = std::fs::read(work.path().join(format!("{name}.eml"))).unwrap();
        // smtplib dot-stuffs on the wire; the server must have undone it.
        assert_stored(&stored, &sent, name);
    }
    let utf8 = stored
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains("Grüße"))
        .unwrap();
    assert!(String::from_utf8_lossy(utf8).contains("with ESMTPSA (TLS 1.3"));
    // What bob submitted (From: bob@localhost) left signed for localhost, twice.
    let submitted = stored
        .iter()
        .map(|m| String::from_utf8_lossy(m))
        .find(|m| m.contains("Subject: submission\r\n"))
        .unwrap();
    assert!(
        submitted.contains("DKIM-Signature: v=1; a=rsa-sha256"),
        "{submitted}"
    );
    assert!(submitted.contains("a=ed25519-sha256"), "{submitted}");
    t.running.shutdown().await;
}

fn swaks(args: &[&str]) -> std::process::Output {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v swaks"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "swaks is not installed: CI installs it (.ci/run); locally `apt-get install swaks`"
    );
    std::process::Command::new("swaks")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs")
}

// swaks runs as a blocking child process: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_to_25_587_and_465() {
    let t = harness::start().await;
    account(&t.running.store, "bob@localhost", 0).await;
    let work = tempfile::tempdir().unwrap();
    let data = |name: &str| -> (std::path::PathBuf, Vec<u8>) {
        let body = format!(
            "From: swaks@example.net\r\nTo: bob@localhost\r\nSubject: {name}\r\n\
             Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{name}@swaks.test>\r\n\r\n\
             Sent by swaks to {name}.\r\n"
        );
        // swaks ends the data with its own CRLF before the dot: the file has no final line end,
        // what is stored does.
        let path = work.path().join(format!("{name}.eml"));
        std::fs::write(&path, body.trim_end_matches("\r\n")).unwrap();
        (path, body.into_bytes())
    };
    let server = |kind: &str| format!("127.0.0.1:{}", port(&t, kind));
    let at = |p: &Path| format!("@{}", p.display());

    let (mx, mx_body) = data("port25");
    let out = swaks(&[
        "--server",
        &server("smtp"),
        "--from",
        "swaks@example.net",
        "--to",
        "bob@localhost",
        "--data",
        &at(&mx),
        "--tls-optional",
    ]);
    assert!(
        out.status.success(),
        "swaks to 25: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let (sub, sub_body) = data("port587");
    let out = swaks(&[
        "--server",
        &server("submission"),
        "--from",
        "bob@localhost",
        "--to",
        "bob@localhost",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "bob@localhost",
        "--auth-password",
        "secret",
        "--data",
        &at(&sub),
    ]);
    assert!(
        out.status.success(),
        "swaks to 587: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let (ssl, ssl_body) = data("port465");
    let out = swaks(&[
        "--server",
        &server("submissions"),
        "--from",
        "bob@localhost",
        "--to",
        "bob@localhost",
        "--tlsc",
        "--auth",
        "LOGIN",
        "--auth-user",
        "bob@localhost",
        "--auth-password",
        "secret",
        "--data",
        &at(&ssl),
    ]);
    assert!(
        out.status.success(),
        "swaks to 465: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Refusals swaks reports as failures: relaying, and AUTH before TLS.
    let out = swaks(&[
        "--server",
        &server("smtp"),
        "--from",
        "x@example.net",
        "--to",
        "someone@elsewhere.example",
        "--quit-after",
        "RCPT",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("554 5.7.1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = swaks(&[
        "--server",
        &server("submission"),
        "--from",
        "bob@localhost",
        "--to",
        "bob@localhost",
        "--auth",
        "PLAIN",
        "--auth-user",
        "bob@localhost",
        "--auth-password",
        "secret",
    ]);
    assert!(!out.status.success(), "AUTH without TLS must fail");

    let stored = inbox(&t, "bob@localhost").await;
    assert_eq!(stored.len(), 3);
    assert_stored(&stored, &mx_body, "port 25");
    assert_stored(&stored, &sub_body, "port 587");
    assert_stored(&stored, &ssl_body, "port 465");
    t.running.shutdown().await;
}
