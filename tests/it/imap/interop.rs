//! Third-party IMAP clients against the server: Python's `imaplib` (every command group,
//! plain + STARTTLS and IMAP4_SSL) and `mbsync` (isync: a two-way Maildir sync of 500
//! messages, driven by a Python script). The scripts live in `tests/interop/`.

use std::path::Path;
use std::process::Stdio;

use mailroom::store::{Delivery, Flags, Target};

use crate::harness::{self, TestServer, account};

/// Runs `tests/interop/<script>` with the server's coordinates; panics with its output unless
/// it exits 0.
pub(super) async fn run_script(t: &TestServer, script: &str, user: &str, env: &[(&str, &Path)]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = |kind: &str| t.running.addr(kind).expect(kind).port().to_string();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .envs(env.iter().copied())
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
    run_script(&t, "imap_imaplib.py", "alice@localhost", &[]).await;
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
            .messages(&inbox)
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

/// Message `n` of the mbsync test: its Message-ID is what the script identifies it by.
fn numbered(n: u32) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.net>\r\nTo: alice@localhost\r\nSubject: message {n}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{n:03}@mbsync.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         This is message {n}.\r\n{}",
        "Some more text to give the message a body of a realistic size.\r\n".repeat(20)
    )
    .into_bytes()
}

/// The flags message `n` is delivered with: a mix of every system flag.
fn initial_flags(n: u32) -> Flags {
    let mut flags = Flags::default();
    for (every, flag) in [
        (2, Flags::SEEN),
        (7, Flags::FLAGGED),
        (11, Flags::ANSWERED),
        (13, Flags::DRAFT),
    ] {
        if n.is_multiple_of(every) {
            flags = flags.union(flag);
        }
    }
    flags
}

#[tokio::test]
async fn mbsync_two_way_sync() {
    match std::process::Command::new("mbsync")
        .arg("--version")
        .output()
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // CI must run it: a skipped test there would pass without testing anything.
            assert!(
                std::env::var("MAILROOM_INTEROP").as_deref() != Ok("required"),
                "mbsync is not installed and MAILROOM_INTEROP=required (apt-get install isync)"
            );
            println!(
                "SKIPPED mbsync_two_way_sync: mbsync is not installed (Debian: apt-get install isync; .ci/run installs it)"
            );
            return;
        }
        Err(e) => panic!("running mbsync --version: {e}"),
    }
    let t = harness::start().await;
    let store = &t.running.store;
    let alice = account(store, "alice@localhost", 0).await;
    // Through the one delivery path, as SMTP would, with flags as an earlier client left them.
    for n in 1..=500u32 {
        // mbsync keeps this one keyword (as the Maildir flag P).
        let keywords = if n.is_multiple_of(17) {
            vec!["$Forwarded".to_string()]
        } else {
            Vec::new()
        };
        let target = Target::inbox(alice.id).with_flags(initial_flags(n), keywords);
        store
            .deliver(
                Delivery {
                    raw: &numbered(n),
                    internal_date: Some(1_795_687_200 + i64::from(n)),
                },
                &[target],
            )
            .await
            .expect("deliver");
    }
    // A second mailbox with mail of its own, which mbsync must create locally.
    let lists = store
        .create_mailbox(alice.id, "Lists")
        .await
        .expect("create Lists");
    for n in 501..=505 {
        let target = Target::mailbox(&lists);
        let raw = numbered(n);
        store
            .deliver(
                Delivery {
                    raw: &raw,
                    internal_date: None,
                },
                &[target],
            )
            .await
            .expect("deliver to Lists");
    }
    let work = tempfile::tempdir().expect("tempdir");
    run_script(
        &t,
        "imap_mbsync.py",
        "alice@localhost",
        &[("MBSYNC_DIR", work.path())],
    )
    .await;
    // The script compared both sides over IMAP; the store agrees: 500, less 30 removed and 5
    // moved, plus 6 new; Lists got the 5 moved.
    let count = |name: &'static str| {
        let store = store.clone();
        async move {
            let mailbox = store
                .mailbox(alice.id, name)
                .await
                .expect("store")
                .unwrap_or_else(|| panic!("{name} exists"));
            store.messages(&mailbox).await.expect("messages")
        }
    };
    let inbox = count("INBOX").await;
    assert_eq!(inbox.len(), 471);
    assert!(
        inbox.iter().all(|m| !m.flags.contains(Flags::DELETED)),
        "Expunge Both left no \\Deleted message"
    );
    assert_eq!(count("Lists").await.len(), 10);
    // Created by mbsync from the local folders.
    assert_eq!(count("Projects").await.len(), 1);
    assert_eq!(count("Projects/2026").await.len(), 1);
}
