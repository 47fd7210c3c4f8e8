//! RFC 7162 beyond the CONDSTORE commands tested in imap.rs: the CLOSED response code.

use super::logged_in;
use super::server;

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
