//! QRESYNC (RFC 7162 §3.2): ENABLE, SELECT/EXAMINE (QRESYNC …) with VANISHED (EARLIER) and the
//! changed flags, UID FETCH (CHANGEDSINCE … VANISHED), VANISHED instead of EXPUNGE once
//! enabled (EXPUNGE, UID EXPUNGE, MOVE, other sessions' expunges, in IDLE too), and the CLOSED
//! response code.

use super::{deliver, logged_in, server};
use crate::harness::message;

#[tokio::test]
async fn qresync_needs_enable() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" CONDSTORE QRESYNC "), "{caps:?}");
    let (lines, r) = c.cmd("SELECT INBOX (QRESYNC (1 1))").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG BAD QRESYNC parameters need ENABLE QRESYNC first");
    c.ok("SELECT INBOX").await;
    let (_, r) = c
        .cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert_eq!(r, "TAG BAD VANISHED needs ENABLE QRESYNC first");
    // CONDSTORE alone does not enable QRESYNC. Enabled in the selected state, it reports
    // the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1).
    assert_eq!(
        c.ok("ENABLE CONDSTORE").await,
        [
            "* ENABLED CONDSTORE",
            "* OK [HIGHESTMODSEQ 2] CONDSTORE enabled"
        ]
    );
    let (_, r) = c
        .cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert_eq!(r, "TAG BAD VANISHED needs ENABLE QRESYNC first");
    assert_eq!(c.ok("ENABLE QRESYNC").await, ["* ENABLED QRESYNC"]);
    assert_eq!(c.ok("ENABLE QRESYNC").await, ["* ENABLED"]);
    let (_, r) = c.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)").await;
    assert_eq!(r, "TAG BAD VANISHED is only allowed with UID FETCH");
    let (_, r) = c.cmd("UID FETCH 1 (FLAGS) (VANISHED)").await;
    assert_eq!(r, "TAG BAD VANISHED is only allowed with CHANGEDSINCE");
}

#[tokio::test]
async fn closed_marks_the_end_of_the_previous_mailbox() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let lines = c.ok("SELECT INBOX").await;
    assert!(!lines.iter().any(|l| l.contains("CLOSED")), "{lines:?}");
    // Sent whether or not CONDSTORE/QRESYNC were enabled, first of the new mailbox's lines.
    let lines = c.ok("EXAMINE Sent").await;
    assert_eq!(lines[0], "* OK [CLOSED] previous mailbox closed");
    // A SELECT that fails closes the mailbox too.
    let (lines, r) = c.cmd("SELECT Nope").await;
    assert_eq!(lines, ["* OK [CLOSED] previous mailbox closed"]);
    assert_eq!(r, "TAG NO [NONEXISTENT] no such mailbox");
    let lines = c.ok("SELECT INBOX").await;
    assert!(!lines.iter().any(|l| l.contains("CLOSED")), "{lines:?}");
    // Not after CLOSE or UNSELECT.
    assert!(c.ok("UNSELECT").await.is_empty());
}

#[tokio::test]
async fn resync_after_changes_elsewhere() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    // UIDs 1..6; message n has MODSEQ n + 1 and the mailbox HIGHESTMODSEQ 7.
    for i in 1..=6 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let uidvalidity = store
        .mailbox(alice.id, "INBOX")
        .await
        .expect("store")
        .expect("INBOX")
        .uidvalidity;
    let mut a = logged_in(&t).await;
    assert_eq!(a.ok("ENABLE QRESYNC").await, ["* ENABLED QRESYNC"]);
    let lines = a.ok("SELECT INBOX").await;
    assert!(
        lines.contains(&"* OK [HIGHESTMODSEQ 7] highest".to_string()),
        "{lines:?}"
    );
    // Another client (without QRESYNC) changes the mailbox.
    let mut b = logged_in(&t).await;
    b.ok("SELECT INBOX").await;
    b.ok("STORE 2 +FLAGS.SILENT (\\Seen)").await; // MODSEQ 8
    b.ok("STORE 3,5 +FLAGS.SILENT (\\Deleted)").await; // 9
    assert_eq!(b.ok("EXPUNGE").await, ["* 5 EXPUNGE", "* 3 EXPUNGE"]); // 10
    deliver(store, &alice, &message("m7", "w", 300)).await; // UID 7, MODSEQ 11
    // The QRESYNC session hears of the expunges as VANISHED, with UIDs.
    assert_eq!(
        a.ok("NOOP").await,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (8))",
            "* VANISHED 3,5",
            "* 5 EXISTS",
            "* 5 RECENT",
        ]
    );

    // A client that last saw MODSEQ 7 catches up in its SELECT.
    let mut c = logged_in(&t).await;
    c.ok("ENABLE QRESYNC").await;
    let lines = c
        .ok(&format!("SELECT INBOX (QRESYNC ({uidvalidity} 7))"))
        .await;
    assert_eq!(
        lines,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_string(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted".into(),
            "* 5 EXISTS".into(),
            "* 0 RECENT".into(),
            "* OK [UNSEEN 1] first unseen".into(),
            format!("* OK [UIDVALIDITY {uidvalidity}] UIDs valid"),
            "* OK [UIDNEXT 8] predicted next UID".into(),
            "* OK [HIGHESTMODSEQ 11] highest".into(),
            "* VANISHED (EARLIER) 3,5".into(),
            "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (8))".into(),
            "* 5 FETCH (UID 7 FLAGS () MODSEQ (11))".into(),
        ]
    );
    // Known UIDs limit both reports; EXAMINE takes the parameter too.
    let lines = c
        .ok(&format!("EXAMINE INBOX (QRESYNC ({uidvalidity} 7 1:4))"))
        .await;
    assert_eq!(lines[0], "* OK [CLOSED] previous mailbox closed");
    assert_eq!(
        lines[9..],
        [
            "* VANISHED (EARLIER) 3",
            "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (8))"
        ]
    );
    // Another UIDVALIDITY: the client's cache is stale and nothing is reported.
    let lines = c
        .ok(&format!(
            "SELECT INBOX (QRESYNC ({} 7))",
            uidvalidity.wrapping_add(1).max(1)
        ))
        .await;
    assert_eq!(lines.len(), 9, "{lines:?}");
    assert_eq!(lines[8], "* OK [HIGHESTMODSEQ 11] highest");
    // Nothing changed since 11.
    let lines = c
        .ok(&format!("SELECT INBOX (QRESYNC ({uidvalidity} 11))"))
        .await;
    assert_eq!(lines.len(), 9, "{lines:?}");

    // UID FETCH (CHANGEDSINCE … VANISHED): expunged UIDs of the set first, then the changes.
    assert_eq!(
        c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)")
            .await,
        [
            "* VANISHED (EARLIER) 3,5",
            "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (8))",
            "* 5 FETCH (UID 7 FLAGS () MODSEQ (11))",
        ]
    );
    assert_eq!(
        c.ok("UID FETCH 4:6 (FLAGS) (CHANGEDSINCE 7 VANISHED)")
            .await,
        ["* VANISHED (EARLIER) 5"]
    );
    assert!(
        c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 11 VANISHED)")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn vanished_replaces_expunge_once_enabled() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=6 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("ENABLE QRESYNC").await;
    c.ok("SELECT INBOX").await;
    // With QRESYNC every FETCH response carries the UID, and (CONDSTORE) the MODSEQ.
    assert_eq!(
        c.ok("STORE 1,2,4 +FLAGS (\\Deleted)").await,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent) MODSEQ (8))",
            "* 2 FETCH (UID 2 FLAGS (\\Deleted \\Recent) MODSEQ (8))",
            "* 4 FETCH (UID 4 FLAGS (\\Deleted \\Recent) MODSEQ (8))",
        ]
    );
    assert_eq!(
        c.ok("FETCH 3 (FLAGS)").await,
        ["* 3 FETCH (UID 3 FLAGS (\\Recent) MODSEQ (4))"]
    );
    // UID EXPUNGE of some, then EXPUNGE of the rest: one VANISHED each, and the tagged OK
    // says the new HIGHESTMODSEQ.
    let (lines, r) = c.cmd("UID EXPUNGE 2:3").await;
    assert_eq!(lines, ["* VANISHED 2"]);
    assert_eq!(r, "TAG OK [HIGHESTMODSEQ 9] EXPUNGE completed");
    let (lines, r) = c.cmd("EXPUNGE").await;
    assert_eq!(lines, ["* VANISHED 1,4"]);
    assert_eq!(r, "TAG OK [HIGHESTMODSEQ 10] EXPUNGE completed");
    // Nothing to expunge: no code.
    let (lines, r) = c.cmd("EXPUNGE").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG OK EXPUNGE completed");
    // MOVE reports the moved messages as VANISHED too.
    let lines = c.ok("UID MOVE 5 Trash").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("* OK [COPYUID "), "{lines:?}");
    assert_eq!(lines[1], "* VANISHED 5");
    // Expunges by another session: VANISHED at the next command that may report them, after
    // the FETCH that must not. Meanwhile the client is told the MODSEQ it may resume from
    // (the expunge's is higher): 11, what it had caught up to before the expunge (MODSEQ 13).
    let mut other = logged_in(&t).await;
    other.ok("SELECT INBOX").await;
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)").await; // 14, above the expunge's
    assert_eq!(
        c.ok("FETCH 1 (UID)").await,
        [
            "* 1 FETCH (UID 3 MODSEQ (14))",
            "* 1 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (14))",
            "* OK [HIGHESTMODSEQ 11] some expunges are not reported yet",
        ]
    );
    assert_eq!(c.ok("NOOP").await, ["* VANISHED 6"]);
    assert_eq!(
        c.ok("UID FETCH 1:* (FLAGS)").await,
        ["* 1 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (14))"]
    );
}

#[tokio::test]
async fn idle_reports_vanished() {
    let (t, alice) = server().await;
    for i in 1..=3 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("m{i}"), "w", 300),
        )
        .await;
    }
    let mut c = logged_in(&t).await;
    c.ok("ENABLE QRESYNC").await;
    c.ok("SELECT INBOX").await;
    c.send(b"i1 IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    let mut other = logged_in(&t).await;
    other.ok("SELECT INBOX").await;
    other.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)").await; // MODSEQ 5
    assert_eq!(
        c.line().await,
        "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent) MODSEQ (5))"
    );
    assert_eq!(
        c.line().await,
        "* 3 FETCH (UID 3 FLAGS (\\Deleted \\Recent) MODSEQ (5))"
    );
    other.ok("EXPUNGE").await;
    assert_eq!(c.line().await, "* VANISHED 1,3");
    c.send(b"DONE\r\n").await;
    assert_eq!(c.line().await, "i1 OK IDLE terminated");
    assert_eq!(
        c.ok("FETCH 1:* (FLAGS)").await,
        ["* 1 FETCH (UID 2 FLAGS (\\Recent) MODSEQ (3))"]
    );
}
