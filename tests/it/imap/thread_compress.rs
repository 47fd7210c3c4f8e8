//! THREAD (RFC 5256: REFERENCES, ORDEREDSUBJECT), COMPRESS=DEFLATE (RFC 4978) and BINARY
//! (RFC 3516) over TCP, and the Python exchange in `tests/interop/imap_thread_compress.py`.

use std::path::Path;
use std::process::Stdio;

use super::{deliver, logged_in, server};
use crate::harness::TestServer;

/// A message with these header fields (`None` leaves the field out).
fn mail(id: &str, subject: &str, date: Option<&str>, extra: &str) -> Vec<u8> {
    let date = date.map(|d| format!("Date: {d}\r\n")).unwrap_or_default();
    format!(
        "From: a@example.net\r\nTo: b@example.org\r\nSubject: {subject}\r\n{date}\
         Message-ID: {id}\r\n{extra}\r\nbody of {id}\r\n"
    )
    .into_bytes()
}

/// Runs `tests/interop/<script>` with the server's coordinates; panics with its output unless
/// it exits 0.
async fn run_script(t: &TestServer, script: &str, env: &[(&str, &Path)]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = |kind: &str| t.running.addr(kind).expect(kind).port().to_string();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .envs(env.iter().copied())
        .env("IMAP_HOST", "localhost")
        .env("IMAP_PORT", port("imap"))
        .env("IMAPS_PORT", port("imaps"))
        .env("IMAP_USER", "alice@localhost")
        .env("IMAP_PASSWORD", "secret")
        .env("IMAP_CAFILE", t.dir.path().join("tls/self-signed.crt"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 runs (CI installs it: .ci/run)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The thread fixture: a thread with a folded References field and an In-Reply-To-only
/// reply, two replies to a message that is not there (a dummy parent), a subject-only
/// reply, and a message without a Date (its internal date, 26 Nov 2026, is its sent date).
/// UIDs 2..=9 (UID 1 is expunged first), so sequence numbers are one less than UIDs.
async fn thread_fixture(t: &TestServer, alice: &mailroom::store::Account) {
    let store = &t.running.store;
    let d = |h: u32, m: u32| format!("Thu, 1 Jan 2026 {h:02}:{m:02}:00 +0000");
    let msgs = [
        mail("<0@t>", "filler", Some(&d(7, 0)), ""),
        mail("<1@t>", "topic", Some(&d(10, 0)), ""),
        mail(
            "<2@t>",
            "Re: topic",
            Some(&d(11, 0)),
            "References: <1@t>\r\nIn-Reply-To: <1@t>\r\n",
        ),
        // References wins over In-Reply-To, and is folded; the zone moves it to 12:00 UTC.
        mail(
            "<3@t>",
            "Re: topic",
            Some("Thu, 1 Jan 2026 13:00:00 +0100"),
            "References: <1@t>\r\n\t<2@t>\r\nIn-Reply-To: <elsewhere@t>\r\n",
        ),
        mail(
            "<4@t>",
            "RE: Topic",
            Some(&d(10, 30)),
            "In-Reply-To: <1@t>\r\n",
        ),
        mail(
            "<5@t>",
            "lost parent",
            Some(&d(9, 0)),
            "References: <missing@t>\r\n",
        ),
        mail(
            "<6@t>",
            "other",
            Some(&d(9, 30)),
            "References: <missing@t>\r\n",
        ),
        mail("<7@t>", "Re: unrelated", None, ""),
        mail("<8@t>", "unrelated", Some(&d(8, 0)), ""),
    ];
    for m in &msgs {
        deliver(store, alice, m).await;
    }
}

#[tokio::test]
async fn thread_references_and_orderedsubject() {
    let (t, alice) = server().await;
    thread_fixture(&t, &alice).await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].contains(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES "),
        "{caps:?}"
    );
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await;

    // (8 7): a reply by subject only joins the thread of the same base subject; the dummy
    // <missing@t> keeps its two children at the top; 1's replies by sent date.
    assert_eq!(
        c.ok("THREAD REFERENCES UTF-8 ALL").await,
        ["* THREAD (8 7)((5)(6))(1 (4)(2 3))"]
    );
    // UID THREAD names UIDs.
    assert_eq!(
        c.ok("UID THREAD REFERENCES UTF-8 ALL").await,
        ["* THREAD (9 8)((6)(7))(2 (5)(3 4))"]
    );
    // Grouped by base subject only, each thread's first message heading the others.
    assert_eq!(
        c.ok("THREAD ORDEREDSUBJECT US-ASCII ALL").await,
        ["* THREAD (8 7)(5)(6)(1 (4)(2)(3))"]
    );
    // Search criteria: only the thread about "topic" (and charset as the client likes).
    assert_eq!(
        c.ok("THREAD REFERENCES us-ascii SUBJECT topic").await,
        ["* THREAD (1 (4)(2 3))"]
    );
    // One child of a dummy alone is promoted to the top.
    assert_eq!(
        c.ok("UID THREAD REFERENCES UTF-8 SUBJECT lost").await,
        ["* THREAD (6)"]
    );
    assert_eq!(
        c.ok("THREAD REFERENCES UTF-8 SUBJECT nothing-like-this")
            .await,
        ["* THREAD"]
    );
    let (_, r) = c.cmd("THREAD REFERENCES KOI8-R ALL").await;
    assert_eq!(
        r,
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset"
    );
    let (_, r) = c.cmd("THREAD SHUFFLE UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD unsupported threading algorithm SHUFFLE");
    c.ok("CLOSE").await;
    let (_, r) = c.cmd("THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD THREAD needs a selected mailbox");
}

#[tokio::test]
async fn imaplib_thread_compress_binary() {
    let (t, _alice) = server().await;
    run_script(&t, "imap_thread_compress.py", &[]).await;
}
