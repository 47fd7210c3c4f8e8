//! Third-party IMAP clients against the server: Python's `imaplib` (every command group,
//! plain + STARTTLS and IMAP4_SSL). The script lives in `tests/interop/`.

use std::process::Stdio;

use crate::harness::{self, TestServer, account};

/// Runs `tests/interop/<script>` with the server's coordinates; panics with its output unless
/// it exits 0.
async fn run_script(t: &TestServer, script: &str, user: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = |kind: &str| t.running.addr(kind).expect(kind).port().to_string();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .env("IMAP_HOST", "localhost")
        .env("IMAP_PORT", port("imap"))
        .env("IMAPS_PORT", port("imaps"))
        .env("IMAP_USER", user)
        .env("IMAP_PASSWORD", "secret")
        .env("IMAP_CAFILE", t.dir.path().join("tls/self-signed.crt"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 runs (CI installs it: .ci/run)");
    // Shown with `--nocapture`.
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn imaplib_every_command_group() {
    let t = harness::start().await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    run_script(&t, "imap_imaplib.py", "alice@localhost").await;
    // The script deleted what it created and left one message (appended during IDLE).
    let inbox = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .expect("store")
        .expect("INBOX");
    assert_eq!(
        t.running
            .store
            .messages(inbox.id)
            .await
            .expect("messages")
            .len(),
        1
    );
    assert!(
        t.running
            .store
            .mailbox(alice.id, "Interop")
            .await
            .expect("store")
            .is_none()
    );
}
