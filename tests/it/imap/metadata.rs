//! METADATA and METADATA-SERVER (RFC 5464) over TCP: private and shared entries on mailboxes
//! and on the server, GETMETADATA with MAXSIZE and DEPTH, SETMETADATA setting and removing,
//! the METADATA response codes, entry name checks, the limits, who may write shared server
//! entries, and entries following RENAME and going with DELETE. Python's imaplib runs the
//! exchange Delta Chat does (`/private/devicetoken`) in `tests/interop/imap_metadata.py`.

use std::process::Stdio;

use mailroom::auth::password;
use mailroom::store::{MAX_METADATA_ENTRIES, MAX_METADATA_VALUE, NewAccount};

use super::{connect, logged_in, server};
use crate::harness::TestServer;

#[tokio::test]
async fn advertised_after_login() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" METADATA METADATA-SERVER "), "{caps:?}");
}

#[tokio::test]
async fn mailbox_entries_private_and_shared() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    // Nothing yet: a named entry that does not exist is NIL.
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/comment").await,
        ["* METADATA \"INBOX\" (/private/comment NIL)"]
    );
    c.ok("SETMETADATA INBOX (/private/comment \"My own note\" /shared/comment \"For all\")")
        .await;
    // Names are case-insensitive and shown in lower case.
    assert_eq!(
        c.ok("GETMETADATA INBOX (/PRIVATE/Comment /shared/comment)")
            .await,
        ["* METADATA \"INBOX\" (/private/comment \"My own note\" /shared/comment \"For all\")"]
    );
    // NIL removes.
    c.ok("SETMETADATA INBOX (/private/comment NIL)").await;
    assert_eq!(
        c.ok("GETMETADATA INBOX (/private/comment /shared/comment)")
            .await,
        ["* METADATA \"INBOX\" (/private/comment NIL /shared/comment \"For all\")"]
    );
    // Removing what does not exist is no error.
    c.ok("SETMETADATA INBOX (/private/nothing NIL)").await;
    // A literal value, with CR LF in it, comes back as a literal; one with NUL as literal8.
    c.ok("SETMETADATA Sent (/private/vendor/x/multi {9+}\r\nline1\r\nl2)")
        .await;
    c.ok("SETMETADATA Sent (/private/vendor/x/bin ~{3+}\r\na\0b)")
        .await;
    assert_eq!(
        c.ok("GETMETADATA Sent (/private/vendor/x/multi /private/vendor/x/bin)")
            .await,
        [
            "* METADATA \"Sent\" (/private/vendor/x/multi {9}\r\nline1\r\nl2 /private/vendor/x/bin ~{3}\r\na\0b)"
        ]
    );
    // Another mailbox's entries are its own.
    assert_eq!(
        c.ok("GETMETADATA Drafts /shared/comment").await,
        ["* METADATA \"Drafts\" (/shared/comment NIL)"]
    );
    let (_, r) = c.cmd("GETMETADATA Nope /shared/comment").await;
    assert_eq!(r, "TAG NO [NONEXISTENT] no such mailbox");
    let (_, r) = c.cmd("SETMETADATA Nope (/shared/comment \"x\")").await;
    assert_eq!(r, "TAG NO [NONEXISTENT] no such mailbox");
    // Valid in the selected state too.
    c.ok("SELECT INBOX").await;
    assert_eq!(
        c.ok("GETMETADATA INBOX /shared/comment").await,
        ["* METADATA \"INBOX\" (/shared/comment \"For all\")"]
    );
}

#[tokio::test]
async fn delta_chat_devicetoken_on_the_server() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    // As Delta Chat does it: the token as a server entry of the account.
    c.ok("SETMETADATA \"\" (/private/devicetoken \"fcm-token:abc123\")")
        .await;
    assert_eq!(
        c.ok("GETMETADATA \"\" /private/devicetoken").await,
        ["* METADATA \"\" (/private/devicetoken \"fcm-token:abc123\")"]
    );
    // It is alice's own: bob sees nothing of it.
    crate::harness::account(&t.running.store, "bob@localhost", 0).await;
    let mut b = connect(&t).await;
    b.ok("LOGIN bob@localhost secret").await;
    assert_eq!(
        b.ok("GETMETADATA \"\" /private/devicetoken").await,
        ["* METADATA \"\" (/private/devicetoken NIL)"]
    );
    // Replacing keeps one entry.
    c.ok("SETMETADATA \"\" (/private/devicetoken \"fcm-token:def456\")")
        .await;
    assert_eq!(
        c.ok("GETMETADATA (DEPTH infinity) \"\" /private").await,
        ["* METADATA \"\" (/private NIL /private/devicetoken \"fcm-token:def456\")"]
    );
    let _ = alice;
}

#[tokio::test]
async fn depth_and_maxsize() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok(
        "SETMETADATA INBOX (/private/filters/values/small \"SMALLER 5000\" \
          /private/filters/values/boss \"FROM boss\" /private/filters/values/boss/deep \"x\" \
          /private/filtersx \"not below\")",
    )
    .await;
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/filters/values").await,
        ["* METADATA \"INBOX\" (/private/filters/values NIL)"]
    );
    assert_eq!(
        c.ok("GETMETADATA (DEPTH 0) INBOX /private/filters/values")
            .await,
        ["* METADATA \"INBOX\" (/private/filters/values NIL)"]
    );
    assert_eq!(
        c.ok("GETMETADATA (DEPTH 1) INBOX /private/filters/values")
            .await,
        ["* METADATA \"INBOX\" (/private/filters/values NIL \
          /private/filters/values/boss \"FROM boss\" /private/filters/values/small \"SMALLER 5000\")"]
    );
    assert_eq!(
        c.ok("GETMETADATA (DEPTH infinity) INBOX /private/filters")
            .await,
        ["* METADATA \"INBOX\" (/private/filters NIL \
          /private/filters/values/boss \"FROM boss\" /private/filters/values/boss/deep \"x\" \
          /private/filters/values/small \"SMALLER 5000\")"]
    );
    // MAXSIZE leaves out larger values and says how large the largest was.
    let (lines, r) = c
        .cmd("GETMETADATA (MAXSIZE 9 DEPTH 1) INBOX /private/filters/values")
        .await;
    assert_eq!(
        lines,
        [
            "* METADATA \"INBOX\" (/private/filters/values NIL /private/filters/values/boss \"FROM boss\")"
        ]
    );
    assert_eq!(r, "TAG OK [METADATA LONGENTRIES 12] GETMETADATA completed");
    let (lines, r) = c
        .cmd("GETMETADATA (MAXSIZE 1) INBOX /private/filters/values/small")
        .await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG OK [METADATA LONGENTRIES 12] GETMETADATA completed");
    let (_, r) = c.cmd("GETMETADATA (DEPTH 2) INBOX /private/filters").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
}

#[tokio::test]
async fn entry_names_are_checked() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    for bad in [
        "/private/a*",
        "/private/a%b",
        "/private//a",
        "/private/a/",
        "/other/a",
        "private/a",
    ] {
        let (_, r) = c.cmd(&format!("SETMETADATA INBOX ({bad} \"v\")")).await;
        assert!(r.starts_with("TAG BAD "), "{bad}: {r}");
        let (_, r) = c.cmd(&format!("GETMETADATA INBOX {bad}")).await;
        assert!(r.starts_with("TAG BAD "), "{bad}: {r}");
        // Ten BADs in a row would end the session.
        c.ok("NOOP").await;
    }
    // The roots hold no value of their own.
    let (_, r) = c.cmd("SETMETADATA INBOX (/shared \"v\")").await;
    assert_eq!(r, "TAG BAD entry names start with /private/ or /shared/");
    // A command with a bad name changes nothing, even the good names before it.
    let (_, r) = c
        .cmd("SETMETADATA INBOX (/private/good \"v\" /private/bad/ \"w\")")
        .await;
    assert!(r.starts_with("TAG BAD "), "{r}");
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/good").await,
        ["* METADATA \"INBOX\" (/private/good NIL)"]
    );
}

#[tokio::test]
async fn value_size_and_entry_count_limits() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    let max = MAX_METADATA_VALUE;
    // Exactly the limit is taken, as a non-synchronizing literal.
    let value = "v".repeat(max);
    c.ok(&format!(
        "SETMETADATA INBOX (/private/big {{{max}+}}\r\n{value})"
    ))
    .await;
    // One more as a synchronizing literal is refused before it is sent.
    c.send(format!("s1 SETMETADATA INBOX (/private/big2 {{{}}}\r\n", max + 1).as_bytes())
        .await;
    assert_eq!(
        c.line().await,
        format!("s1 NO [METADATA MAXSIZE {max}] a value may have at most {max} octets")
    );
    // As a non-synchronizing literal it is read, then refused, and the session goes on.
    let (_, r) = c
        .cmd(&format!(
            "SETMETADATA INBOX (/private/big2 {{{}+}}\r\n{}x)",
            max + 1,
            value
        ))
        .await;
    assert_eq!(
        r,
        format!("TAG NO [METADATA MAXSIZE {max}] a value may have at most {max} octets")
    );
    assert_eq!(
        c.ok("GETMETADATA (MAXSIZE 10) INBOX (/private/big2 /private/big)")
            .await,
        ["* METADATA \"INBOX\" (/private/big2 NIL)"]
    );
    // The entry count per account: mailbox and server entries together.
    let mut have = 1;
    let mut n = 0;
    while have < MAX_METADATA_ENTRIES {
        let batch: String = (0..50.min(MAX_METADATA_ENTRIES - have))
            .map(|_| {
                n += 1;
                format!(" /shared/e{n} \"{n}\"")
            })
            .collect();
        c.ok(&format!("SETMETADATA Sent ({})", batch.trim_start()))
            .await;
        have += 50.min(MAX_METADATA_ENTRIES - have);
    }
    let (_, r) = c.cmd("SETMETADATA \"\" (/private/one-more \"x\")").await;
    assert_eq!(
        r,
        "TAG NO [METADATA TOOMANY] too many entries; remove some first"
    );
    // Replacing an entry and removing one still work; then there is room again.
    c.ok("SETMETADATA Sent (/shared/e1 \"new\")").await;
    c.ok("SETMETADATA Sent (/shared/e1 NIL)").await;
    c.ok("SETMETADATA \"\" (/private/one-more \"x\")").await;
    // Deleting a mailbox frees its entries' room.
    c.ok("CREATE Full").await;
    let (_, r) = c.cmd("SETMETADATA Full (/private/a \"1\")").await;
    assert!(r.contains("[METADATA TOOMANY]"), "{r}");
    c.ok("DELETE Sent").await;
    c.ok("SETMETADATA Full (/private/a \"1\")").await;
    let _ = alice;
}

#[tokio::test]
async fn entries_follow_rename_and_go_with_delete() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("CREATE Work/Sub").await;
    c.ok("SETMETADATA Work (/shared/comment \"parent\")").await;
    c.ok("SETMETADATA Work/Sub (/private/comment \"child\")")
        .await;
    c.ok("RENAME Work Projects").await;
    assert_eq!(
        c.ok("GETMETADATA Projects /shared/comment").await,
        ["* METADATA \"Projects\" (/shared/comment \"parent\")"]
    );
    assert_eq!(
        c.ok("GETMETADATA Projects/Sub /private/comment").await,
        ["* METADATA \"Projects/Sub\" (/private/comment \"child\")"]
    );
    // A new mailbox of the old name starts without entries.
    c.ok("CREATE Work").await;
    assert_eq!(
        c.ok("GETMETADATA Work /shared/comment").await,
        ["* METADATA \"Work\" (/shared/comment NIL)"]
    );
    // DELETE takes the entries along: a new mailbox of that name has none.
    c.ok("DELETE Projects/Sub").await;
    c.ok("CREATE Projects/Sub").await;
    assert_eq!(
        c.ok("GETMETADATA Projects/Sub /private/comment").await,
        ["* METADATA \"Projects/Sub\" (/private/comment NIL)"]
    );
}

#[tokio::test]
async fn shared_server_entries_are_written_by_administrators() {
    let (t, _alice) = server().await;
    let store = &t.running.store;
    let hash = password::hash("secret").await.unwrap();
    store
        .create_account(NewAccount {
            address: "boss@localhost",
            password_hash: &hash,
            quota_bytes: 0,
            is_admin: true,
        })
        .await
        .unwrap();
    let mut alice = logged_in(&t).await;
    let (_, r) = alice
        .cmd("SETMETADATA \"\" (/shared/admin \"mailto:alice@localhost\")")
        .await;
    assert_eq!(
        r,
        "TAG NO [NOPERM] only administrators may set shared server entries"
    );
    let mut admin = connect(&t).await;
    admin.ok("LOGIN boss@localhost secret").await;
    admin
        .ok("SETMETADATA \"\" (/shared/admin \"mailto:boss@localhost\" /shared/comment \"Welcome\")")
        .await;
    // Every account reads them, beside its own private ones.
    alice
        .ok("SETMETADATA \"\" (/private/comment \"mine\")")
        .await;
    assert_eq!(
        alice
            .ok("GETMETADATA (DEPTH 1) \"\" (/shared /private)")
            .await,
        [
            "* METADATA \"\" (/shared NIL /shared/admin \"mailto:boss@localhost\" \
          /shared/comment \"Welcome\" /private NIL /private/comment \"mine\")"
        ]
    );
    // Alice cannot remove them either.
    let (_, r) = alice.cmd("SETMETADATA \"\" (/shared/comment NIL)").await;
    assert!(r.starts_with("TAG NO [NOPERM]"), "{r}");
    admin.ok("SETMETADATA \"\" (/shared/comment NIL)").await;
    assert_eq!(
        alice.ok("GETMETADATA \"\" /shared/comment").await,
        ["* METADATA \"\" (/shared/comment NIL)"]
    );
}

#[tokio::test]
async fn needs_login() {
    let (t, _alice) = server().await;
    let mut c = connect(&t).await;
    let (_, r) = c.cmd("GETMETADATA \"\" /private/devicetoken").await;
    assert_eq!(r, "TAG BAD GETMETADATA is only valid after login");
}

/// Python's imaplib: the raw GETMETADATA/SETMETADATA forms, as Delta Chat sends them.
#[tokio::test]
async fn imaplib_metadata() {
    let (t, _alice) = server().await;
    run_python(&t, "imap_metadata.py").await;
}

pub(super) async fn run_python(t: &TestServer, script: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = t.running.addr("imap").expect("imap").port().to_string();
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/{script}"))
        .env("IMAP_HOST", "127.0.0.1")
        .env("IMAP_PORT", port)
        .env("IMAP_USER", "alice@localhost")
        .env("IMAP_PASSWORD", "secret")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 runs");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names that repeat or lie below each other are answered once each: a command of many
/// overlapping names reads and writes what the account holds, not that times the names.
#[tokio::test]
async fn overlapping_names_are_answered_once() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("SETMETADATA INBOX (/private/a \"1\" /private/a/b \"2\")")
        .await;
    assert_eq!(
        c.ok("GETMETADATA INBOX (/private/a /private/a /PRIVATE/A)")
            .await,
        ["* METADATA \"INBOX\" (/private/a \"1\")"]
    );
    assert_eq!(
        c.ok("GETMETADATA (DEPTH infinity) INBOX (/private/a /private/a/b /private/a)")
            .await,
        ["* METADATA \"INBOX\" (/private/a \"1\" /private/a/b \"2\")"]
    );
}
