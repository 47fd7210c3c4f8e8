//! MULTIAPPEND (RFC 3502) over TCP: several messages in one APPEND, stored all or none with
//! `[APPENDUID uidvalidity uid-set]`; the quota counted across them; a literal refused (too
//! large, or the command too large in all) before it is sent, and then nothing stored; a bad
//! second message, an empty one, a missing mailbox: nothing stored. And Python's imaplib
//! sending one (`tests/interop/imap_multiappend.py`).

use crate::harness::{self, account};

use super::{logged_in, server};

const DATE: &str = "\"26-Nov-2026 10:00:00 +0000\"";

fn msg(subject: &str) -> String {
    format!("From: a@example.net\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n")
}

#[tokio::test]
async fn advertised() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" MULTIAPPEND "), "{caps:?}");
}

#[tokio::test]
async fn several_messages_in_one_append() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    let mut watcher = logged_in(&t).await;
    watcher.ok("SELECT Drafts").await;
    let drafts = t
        .running
        .store
        .mailbox(alice.id, "Drafts")
        .await
        .unwrap()
        .unwrap();
    let (a, b, d) = (msg("one"), msg("two"), msg("three"));
    // Non-synchronizing literals, with and without flags and dates.
    let (_, r) = c
        .cmd(&format!(
            "APPEND Drafts (\\Seen) {{{}+}}\r\n{a} {DATE} {{{}+}}\r\n{b} (\\Draft $Todo) {DATE} {{{}+}}\r\n{d}",
            a.len(),
            b.len(),
            d.len()
        ))
        .await;
    assert_eq!(
        r,
        format!(
            "TAG OK [APPENDUID {} 1:3] APPEND completed",
            drafts.uidvalidity
        )
    );
    // The session with the mailbox selected learns of all three (and, first, of the new
    // keyword one of them carries).
    let seen = watcher.ok("NOOP").await;
    assert!(seen.iter().any(|l| l == "* 3 EXISTS"), "{seen:?}");
    assert!(
        seen.first().is_some_and(|l| l.starts_with("* FLAGS (")),
        "{seen:?}"
    );
    c.ok("SELECT Drafts").await;
    assert_eq!(
        c.ok("FETCH 1:3 (UID FLAGS)").await,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen))",
            "* 2 FETCH (UID 2 FLAGS ())",
            "* 3 FETCH (UID 3 FLAGS (\\Draft $Todo))",
        ]
    );
    assert_eq!(
        c.ok("FETCH 2:3 INTERNALDATE").await,
        [
            "* 2 FETCH (INTERNALDATE \"26-Nov-2026 10:00:00 +0000\")",
            "* 3 FETCH (INTERNALDATE \"26-Nov-2026 10:00:00 +0000\")",
        ]
    );
    let bodies = c.ok("FETCH 1:3 BODY.PEEK[TEXT]").await;
    assert_eq!(
        bodies,
        [
            "* 1 FETCH (BODY[TEXT] {13}\r\nbody of one\r\n)",
            "* 2 FETCH (BODY[TEXT] {13}\r\nbody of two\r\n)",
            "* 3 FETCH (BODY[TEXT] {15}\r\nbody of three\r\n)",
        ]
    );
}

#[tokio::test]
async fn synchronizing_literals_each_get_a_continuation() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    let inbox = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let (a, b) = (msg("one"), msg("two"));
    c.send(format!("s1 APPEND INBOX {{{}}}\r\n", a.len()).as_bytes())
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(format!("{a} (\\Flagged) {{{}}}\r\n", b.len()).as_bytes())
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(format!("{b}\r\n").as_bytes()).await;
    assert_eq!(
        c.line().await,
        format!(
            "s1 OK [APPENDUID {} 1:2] APPEND completed",
            inbox.uidvalidity
        )
    );
    // A plain APPEND of one message is as before.
    let (_, r) = c
        .cmd(&format!("APPEND INBOX {{{}+}}\r\n{a}", a.len()))
        .await;
    assert_eq!(
        r,
        format!(
            "TAG OK [APPENDUID {} 3] APPEND completed",
            inbox.uidvalidity
        )
    );
}

#[tokio::test]
async fn over_quota_stores_nothing() {
    let t = harness::start_with(|c| c.auth.allow_plaintext = true).await;
    let a = msg("one");
    // Room for two of the three messages.
    let quota = (a.len() * 2 + 10) as u64;
    let alice = account(&t.running.store, "alice@localhost", quota).await;
    let mut c = logged_in(&t).await;
    let inbox = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let n = a.len();
    let (_, r) = c
        .cmd(&format!(
            "APPEND INBOX {{{n}+}}\r\n{a} {{{n}+}}\r\n{a} {{{n}+}}\r\n{a}"
        ))
        .await;
    assert_eq!(r, "TAG NO [OVERQUOTA] the mailbox is full (quota exceeded)");
    assert_eq!(
        c.ok("STATUS INBOX (MESSAGES UIDNEXT)").await,
        ["* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1)"]
    );
    // Two fit, together.
    let (_, r) = c
        .cmd(&format!("APPEND INBOX {{{n}+}}\r\n{a} {{{n}+}}\r\n{a}"))
        .await;
    assert_eq!(
        r,
        format!(
            "TAG OK [APPENDUID {} 1:2] APPEND completed",
            inbox.uidvalidity
        )
    );
    let used = t
        .running
        .store
        .account(alice.id)
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, (n * 2) as i64);
}

#[tokio::test]
async fn a_refused_literal_ends_the_command_and_stores_nothing() {
    let t = harness::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.limits.max_message_size = 10_000;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut c = logged_in(&t).await;
    let a = msg("one");
    // A message over the limit, announced after a first one.
    c.send(format!("s1 APPEND INBOX {{{}+}}\r\n{a} {{20000}}\r\n", a.len()).as_bytes())
        .await;
    assert_eq!(
        c.line().await,
        "s1 NO [TOOBIG] literal of 20000 octets is larger than the limit of 10000"
    );
    // Each under the limit, but the command over it in all (the limit and a line): the
    // eighth is refused before it is sent.
    let big = "x".repeat(9500);
    let mut command = "s2 APPEND INBOX".to_string();
    for _ in 0..7 {
        command.push_str(&format!(" {{9500+}}\r\n{big}"));
    }
    command.push_str(" {9500}\r\n");
    c.send(command.as_bytes()).await;
    assert_eq!(
        c.line().await,
        format!(
            "s2 NO [TOOBIG] the literals of one command are limited to {} octets in all",
            10_000 + 64 * 1024
        )
    );
    assert_eq!(
        c.ok("STATUS INBOX (MESSAGES)").await,
        ["* STATUS \"INBOX\" (MESSAGES 0)"]
    );
}

#[tokio::test]
async fn a_bad_message_stores_none() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let a = msg("one");
    let n = a.len();
    // A syntax error in the second message's options.
    let (_, r) = c
        .cmd(&format!(
            "APPEND INBOX {{{n}+}}\r\n{a} (\\Seen {{{n}+}}\r\n{a}"
        ))
        .await;
    assert_eq!(r, "TAG BAD syntax error in the arguments of APPEND");
    let (_, r) = c
        .cmd(&format!(
            "APPEND INBOX {{{n}+}}\r\n{a} \"yesterday\" {{{n}+}}\r\n{a}"
        ))
        .await;
    assert_eq!(r, "TAG BAD syntax error in the arguments of APPEND");
    // An empty second message.
    let (_, r) = c
        .cmd(&format!("APPEND INBOX {{{n}+}}\r\n{a} {{0+}}\r\n"))
        .await;
    assert_eq!(
        r,
        "TAG NO [CANNOT] an empty message cannot be stored; nothing was stored"
    );
    // No such mailbox.
    let (_, r) = c
        .cmd(&format!("APPEND Nope {{{n}+}}\r\n{a} {{{n}+}}\r\n{a}"))
        .await;
    assert_eq!(r, "TAG NO [TRYCREATE] no such mailbox");
    assert_eq!(
        c.ok("STATUS INBOX (MESSAGES)").await,
        ["* STATUS \"INBOX\" (MESSAGES 0)"]
    );
}

#[tokio::test]
async fn needs_login() {
    let (t, _alice) = server().await;
    let mut c = super::connect(&t).await;
    let (_, r) = c.cmd("APPEND INBOX {1+}\r\na {1+}\r\nb").await;
    assert_eq!(r, "TAG BAD APPEND is only valid after login");
}

/// Python's imaplib sending a MULTIAPPEND (non-synchronizing literals in the arguments).
#[tokio::test]
async fn imaplib_multiappend() {
    let (t, _alice) = server().await;
    super::metadata::run_python(&t, "imap_multiappend.py").await;
}
