//! Third-party POP3 clients against the server: Python's `poplib` (plain + STLS, POP3_SSL) and
//! Debian's `fetchmail` (a 200-message maildrop into an mbox, with and without `keep`, run
//! twice each). The scripts live in `tests/interop/`; these tests start the server, fill the
//! maildrop through the store, run them, and check the store afterwards.

use std::process::Stdio;

use super::client::{deliver, inbox_uids};
use crate::harness::{self, TestServer, account, message};

/// Runs `tests/interop/<script>` with the server's coordinates; panics with its output unless
/// it exits 0.
async fn run_script(t: &TestServer, script: &str, user: &str, count: usize) {
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().expect("workdir");
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .env("POP3_HOST", "localhost")
        .env(
            "POP3_PORT",
            t.running.addr("pop3").expect("pop3").port().to_string(),
        )
        .env(
            "POP3S_PORT",
            t.running.addr("pop3s").expect("pop3s").port().to_string(),
        )
        .env("POP3_USER", user)
        .env("POP3_PASSWORD", "secret")
        .env("POP3_CAFILE", t.dir.path().join("tls/self-signed.crt"))
        .env("POP3_COUNT", count.to_string())
        .env("WORKDIR", work.path())
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
async fn poplib_plain_stls_and_pop3_ssl() {
    let t = harness::start().await;
    let store = &t.running.store;
    let alice = account(store, "alice@localhost", 0).await;
    for i in 0..4 {
        deliver(store, &alice, &message(&format!("py{i}"), "poplib", 1500)).await;
    }
    deliver(
        store,
        &alice,
        b"Subject: tricky\n\n.starts with a dot\n..two dots\n.\nend",
    )
    .await;
    run_script(&t, "pop3_poplib.py", "alice@localhost", 5).await;
    // The script deleted messages 1 and 2 with QUIT, after an RSET that kept them once.
    assert_eq!(inbox_uids(store, &alice).await, [3, 4, 5]);
}

#[tokio::test]
async fn fetchmail_keep_and_nokeep_never_fetch_twice() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v fetchmail"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "fetchmail is not installed: CI installs it (.ci/run); locally `apt-get install fetchmail`"
    );
    let t = harness::start().await;
    let store = &t.running.store;
    let alice = account(store, "alice@localhost", 0).await;
    const COUNT: usize = 200;
    for i in 0..COUNT {
        let mut raw = message(&format!("fm{i}"), "fetchmail", 1200);
        // A sequence header to count deliveries, and a line that needs byte-stuffing.
        raw.splice(0..0, format!("X-Interop-Seq: {i}\r\n").into_bytes());
        raw.extend_from_slice(b".leading dot\r\n");
        deliver(store, &alice, &raw).await;
    }
    run_script(&t, "pop3_fetchmail.py", "alice@localhost", COUNT).await;
    assert!(inbox_uids(store, &alice).await.is_empty());
}
