//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): results kept up to date with ADDTO and
//! REMOVEFROM as other sessions change flags, deliver and expunge; REMOVEFROM before the
//! EXPUNGE it concerns and ADDTO after the EXISTS; positions in sorted results; PARTIAL;
//! CANCELUPDATE; and the refusals (NOUPDATE for sequence-number criteria and past the limit,
//! BAD for a tag already kept).

use super::{Client, deliver, logged_in, server};
use crate::harness::message;
use tokio::net::TcpStream;

/// Sends `command` under `tag` and reads to its tagged reply (with `TAG` for the tag).
async fn tagged(c: &mut Client<TcpStream>, tag: &str, command: &str) -> (Vec<String>, String) {
    c.send(format!("{tag} {command}\r\n").as_bytes()).await;
    c.until(tag).await
}

fn esearch(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.starts_with("* ESEARCH"))
        .map(String::as_str)
        .collect()
}

fn position(lines: &[String], what: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("{what} not in {lines:?}"))
}

#[tokio::test]
async fn search_results_follow_flags_deliveries_and_expunges() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=4 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut a = logged_in(&t).await;
    let mut b = logged_in(&t).await;
    let caps = a.ok("CAPABILITY").await;
    assert!(
        caps[0].contains(" CONTEXT=SEARCH ") && caps[0].contains(" CONTEXT=SORT "),
        "{caps:?}"
    );
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    let (lines, r) = tagged(&mut a, "s1", "UID SEARCH RETURN (ALL UPDATE) UNSEEN").await;
    assert_eq!(r, "TAG OK SEARCH completed");
    assert_eq!(lines, ["* ESEARCH (TAG \"s1\") UID ALL 1:4"]);

    // Another session reads message 2: it leaves the result.
    b.ok("STORE 2 +FLAGS.SILENT (\\Seen)").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s1\") UID REMOVEFROM (0 2)"],
        "{lines:?}"
    );

    // A delivery joins it, after the EXISTS that numbers it.
    deliver(store, &alice, &message("m5", "w", 300)).await;
    let lines = a.ok("NOOP").await;
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"s1\") UID ADDTO (0 5)"]);
    assert!(
        position(&lines, "5 EXISTS") < position(&lines, "ADDTO"),
        "{lines:?}"
    );

    // An expunge leaves it, before the EXPUNGE response.
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s1\") UID REMOVEFROM (0 3)"]
    );
    assert!(
        position(&lines, "REMOVEFROM") < position(&lines, "3 EXPUNGE"),
        "{lines:?}"
    );

    // The session's own changes count too (its STORE makes message 1 seen).
    let lines = a.ok("STORE 1 +FLAGS (\\Seen)").await;
    let lines = [lines, a.ok("NOOP").await].concat();
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s1\") UID REMOVEFROM (0 1)"]
    );

    // CANCELUPDATE ends it; a second time the tag is unknown.
    let (_, r) = tagged(&mut a, "c1", "CANCELUPDATE \"s1\"").await;
    assert_eq!(r, "TAG OK CANCELUPDATE completed");
    deliver(store, &alice, &message("m6", "w", 300)).await;
    let lines = a.ok("NOOP").await;
    assert!(esearch(&lines).is_empty(), "{lines:?}");
    let (_, r) = tagged(&mut a, "c2", "CANCELUPDATE \"s1\"").await;
    assert!(r.starts_with("TAG NO "), "{r}");
}

#[tokio::test]
async fn sorted_results_carry_positions_and_partial_ranges() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for (i, size) in [(1, 400), (2, 900), (3, 600)] {
        deliver(store, &alice, &message(&format!("m{i}"), "w", size)).await;
    }
    let mut a = logged_in(&t).await;
    let mut b = logged_in(&t).await;
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    let (lines, _) = tagged(
        &mut a,
        "s2",
        "UID SORT RETURN (ALL UPDATE) (SIZE) UTF-8 ALL",
    )
    .await;
    assert_eq!(lines, ["* ESEARCH (TAG \"s2\") UID ALL 1,3,2"]);

    // A message sized between 3 and 2 goes to position 3.
    deliver(store, &alice, &message("m4", "w", 750)).await;
    let lines = a.ok("NOOP").await;
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"s2\") UID ADDTO (3 4)"]);

    // Message 3, at position 2, is expunged.
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s2\") UID REMOVEFROM (2 3)"]
    );
    assert!(
        position(&lines, "REMOVEFROM") < position(&lines, "3 EXPUNGE"),
        "{lines:?}"
    );

    // Two deliveries at once: ascending final positions, each right when applied in turn.
    deliver(store, &alice, &message("m5", "w", 200)).await;
    deliver(store, &alice, &message("m6", "w", 1200)).await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s2\") UID ADDTO (1 5 5 6)"]
    );

    // PARTIAL (RFC 5267 §4.4): positions in result order, NIL past the end.
    let (lines, _) = tagged(
        &mut a,
        "p1",
        "UID SORT RETURN (PARTIAL 2:3) (SIZE) UTF-8 ALL",
    )
    .await;
    assert_eq!(lines, ["* ESEARCH (TAG \"p1\") UID PARTIAL (2:3 1,4)"]);
    let (lines, _) = tagged(&mut a, "p2", "SEARCH RETURN (PARTIAL 3:2 COUNT) ALL").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"p2\") COUNT 5 PARTIAL (2:3 2:3)"]);
    let (lines, _) = tagged(&mut a, "p3", "SEARCH RETURN (PARTIAL 9:20) ALL").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"p3\") PARTIAL (9:20 NIL)"]);
    let (_, r) = tagged(&mut a, "p4", "SEARCH RETURN (PARTIAL 1:2 ALL) ALL").await;
    assert!(r.starts_with("TAG BAD "), "{r}");

    // Without UID, updates name sequence numbers: message 6 is number 5.
    let (lines, _) = tagged(&mut a, "s3", "SEARCH RETURN (UPDATE) FLAGGED").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"s3\")"]);
    b.ok("NOOP").await;
    b.ok("UID STORE 6 +FLAGS.SILENT (\\Flagged)").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"s3\") ADDTO (0 5)"],
        "{lines:?}"
    );
}

#[tokio::test]
async fn updates_reach_idle_and_end_with_the_selection() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("m1", "w", 300)).await;
    let mut a = logged_in(&t).await;
    a.ok("SELECT INBOX").await;
    tagged(&mut a, "s1", "UID SEARCH RETURN (UPDATE) SUBJECT news").await;
    a.send(b"i1 IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    deliver(store, &alice, &message("news", "w", 300)).await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("ESEARCH")) {
        lines.push(a.line().await);
    }
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"s1\") UID ADDTO (0 2)"]);
    a.send(b"DONE\r\n").await;
    a.until("i1").await;
    // A new selection has no kept results.
    a.ok("SELECT INBOX").await;
    deliver(store, &alice, &message("news", "x", 300)).await;
    let lines = a.ok("NOOP").await;
    assert!(esearch(&lines).is_empty(), "{lines:?}");
    let (_, r) = tagged(&mut a, "c1", "CANCELUPDATE \"s1\"").await;
    assert!(r.starts_with("TAG NO "), "{r}");
    a.ok("UNSELECT").await;
    let (_, r) = tagged(&mut a, "c2", "CANCELUPDATE \"s1\"").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
}

#[tokio::test]
async fn refusals_and_the_bound() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut a = logged_in(&t).await;
    a.ok("SELECT INBOX").await;
    // Sequence numbers renumber as messages go: answered, not kept.
    let (lines, r) = tagged(&mut a, "q1", "SEARCH RETURN (ALL UPDATE) 1:5").await;
    assert_eq!(r, "TAG OK SEARCH completed");
    assert_eq!(lines[0], "* ESEARCH (TAG \"q1\") ALL 1");
    assert!(lines[1].starts_with("* NO [NOUPDATE \"q1\"] "), "{lines:?}");
    // BODY, TEXT and HEADER are looked up over the whole mailbox: answered, not kept.
    let (lines, _) = tagged(&mut a, "q2", "UID SEARCH RETURN (UPDATE) BODY w").await;
    assert!(lines[1].starts_with("* NO [NOUPDATE \"q2\"] "), "{lines:?}");
    // At most eight kept results; a tag already kept is refused.
    for i in 0..8 {
        let (lines, _) = tagged(&mut a, &format!("k{i}"), "UID SEARCH RETURN (UPDATE) ALL").await;
        assert_eq!(lines.len(), 1, "{lines:?}");
    }
    let (lines, _) = tagged(&mut a, "k8", "UID SEARCH RETURN (UPDATE) ALL").await;
    assert!(lines[1].starts_with("* NO [NOUPDATE \"k8\"] "), "{lines:?}");
    let (_, r) = tagged(&mut a, "k3", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
    let (_, r) = tagged(&mut a, "c1", "CANCELUPDATE \"k1\" \"k2\"").await;
    assert_eq!(r, "TAG OK CANCELUPDATE completed");
    let (lines, _) = tagged(&mut a, "k9", "UID SEARCH RETURN (UPDATE) ALL").await;
    assert_eq!(lines, ["* ESEARCH (TAG \"k9\") UID"]);
}
