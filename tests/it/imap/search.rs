//! SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` keeps a result that `$` names wherever a
//! sequence set goes (FETCH, STORE, COPY, MOVE, SEARCH keys, their UID forms, UID EXPUNGE);
//! MIN/MAX alone save only the messages they name; a failed SEARCH with SAVE empties it, as
//! SELECT and EXAMINE do; expunged messages leave it; an empty `$` acts on nothing. And ESORT
//! (RFC 5267): `SORT RETURN (…)` answered with ESEARCH. The Python imaplib exchange of
//! `tests/interop/imap_search_extensions.py` runs the same forms as a third-party client.

use std::process::Stdio;

use super::{deliver, logged_in, server};
use crate::harness::message;

#[tokio::test]
async fn saved_result_is_used_wherever_a_set_goes() {
    let (t, alice) = server().await;
    for i in 1..=6 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("s{i}"), "w", 200 + i * 100),
        )
        .await;
    }
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" SEARCHRES "), "{caps:?}");
    c.ok("SELECT INBOX").await;
    // Nothing saved yet: `$` is the empty set.
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    let (lines, r) = c.cmd("FETCH $ FLAGS").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG OK FETCH completed (no messages)");
    c.ok("STORE 2,4,6 +FLAGS.SILENT (\\Flagged)").await;
    // SAVE alone answers nothing but the tagged OK.
    assert!(c.ok("SEARCH RETURN (SAVE) FLAGGED").await.is_empty());
    assert_eq!(
        c.ok("FETCH $ (UID)").await,
        [
            "* 2 FETCH (UID 2)",
            "* 4 FETCH (UID 4)",
            "* 6 FETCH (UID 6)"
        ]
    );
    assert_eq!(
        c.ok("UID FETCH $ (FLAGS)").await,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
            "* 4 FETCH (UID 4 FLAGS (\\Flagged \\Recent))",
            "* 6 FETCH (UID 6 FLAGS (\\Flagged \\Recent))"
        ]
    );
    for (query, expect) in [
        ("SEARCH $", "* SEARCH 2 4 6"),
        ("SEARCH $ SUBJECT s4", "* SEARCH 4"),
        ("SEARCH OR $ 1", "* SEARCH 1 2 4 6"),
        ("SEARCH NOT $", "* SEARCH 1 3 5"),
        ("UID SEARCH UID $ NOT SUBJECT s2", "* SEARCH 4 6"),
        ("SEARCH (UID $) SUBJECT \"$\"", "* SEARCH"),
        ("UID SORT (REVERSE SIZE) UTF-8 $", "* SORT 6 4 2"),
    ] {
        assert_eq!(c.ok(query).await, [expect], "{query}");
    }
    // With MIN and MAX only, those are what is saved; with ALL or COUNT, every match.
    let tag = format!("a{}", c.n + 1);
    assert_eq!(
        c.ok("SEARCH RETURN (SAVE MIN MAX) FLAGGED").await,
        [format!("* ESEARCH (TAG \"{tag}\") MIN 2 MAX 6")]
    );
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 2 6"]);
    c.ok("SEARCH RETURN (MIN SAVE) FLAGGED").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 2"]);
    c.ok("SEARCH RETURN (SAVE COUNT MIN) FLAGGED").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 2 4 6"]);
    // A SEARCH that uses `$` and saves reads the result saved before it.
    c.ok("UID SEARCH RETURN (SAVE) $ SUBJECT s4").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 4"]);
    // STORE and COPY on `$`.
    c.ok("SEARCH RETURN (SAVE) FLAGGED").await;
    assert_eq!(
        c.ok("STORE $ +FLAGS (\\Seen)").await,
        [
            "* 2 FETCH (FLAGS (\\Seen \\Flagged \\Recent))",
            "* 4 FETCH (FLAGS (\\Seen \\Flagged \\Recent))",
            "* 6 FETCH (FLAGS (\\Seen \\Flagged \\Recent))"
        ]
    );
    c.ok("CREATE Saved").await;
    let (_, r) = c.cmd("UID COPY $ Saved").await;
    assert!(
        r.starts_with("TAG OK [COPYUID ") && r.contains(" 2,4,6 1:3]"),
        "{r}"
    );
    // An expunged message leaves the saved result.
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(c.ok("EXPUNGE").await, ["* 4 EXPUNGE"]);
    assert_eq!(
        c.ok("FETCH $ (UID)").await,
        ["* 2 FETCH (UID 2)", "* 5 FETCH (UID 6)"]
    );
    // UID EXPUNGE and MOVE.
    c.ok("STORE $ +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(c.ok("UID EXPUNGE $").await, ["* 5 EXPUNGE", "* 2 EXPUNGE"]);
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    let (lines, r) = c.cmd("UID MOVE $ Saved").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG OK MOVE completed (no messages)");
    c.ok("SEARCH RETURN (SAVE) SUBJECT s5").await;
    let (lines, r) = c.cmd("MOVE $ Saved").await;
    assert!(r.starts_with("TAG OK"), "{r}");
    assert!(lines.iter().any(|l| l == "* 3 EXPUNGE"), "{lines:?}");
    assert_eq!(c.ok("UID SEARCH ALL").await, ["* SEARCH 1 3"]);
}

#[tokio::test]
async fn saved_result_is_emptied_by_failures_and_selection() {
    let (t, alice) = server().await;
    for i in 1..=3 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("s{i}"), "w", 300),
        )
        .await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 1 2 3"]);
    // A SEARCH with SAVE that fails (NO, or BAD) leaves `$` empty.
    let (_, r) = c.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL").await;
    assert_eq!(
        r,
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset"
    );
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    let (_, r) = c.cmd("SEARCH RETURN (SAVE) FROBNICATE").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    // A failed SEARCH without SAVE keeps it.
    c.ok("SEARCH RETURN (SAVE) 2").await;
    let (_, r) = c.cmd("SEARCH CHARSET KOI8-R ALL").await;
    assert!(r.starts_with("TAG NO "), "{r}");
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 2"]);
    // SELECT and EXAMINE start with an empty result, even of the same mailbox.
    c.ok("SELECT INBOX").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    c.ok("EXAMINE INBOX").await;
    assert_eq!(c.ok("UID SEARCH UID $").await, ["* SEARCH"]);
    // Without a selected mailbox `$` means nothing.
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    c.ok("UNSELECT").await;
    let (_, r) = c.cmd("FETCH $ FLAGS").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
    c.ok("SELECT INBOX").await;
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH"]);
    // `$` is the whole set or nothing.
    let (_, r) = c.cmd("FETCH 1,$ FLAGS").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
}

#[tokio::test]
async fn sort_return_answers_with_esearch() {
    let (t, alice) = server().await;
    for i in 1..=6 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("s{i}"), "w", 200 + i * 100),
        )
        .await;
    }
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" ESORT "), "{caps:?}");
    c.ok("SELECT INBOX").await;
    c.ok("STORE 3 +FLAGS.SILENT (\\Flagged)").await;
    for (query, expect) in [
        (
            "SORT RETURN (MIN MAX COUNT ALL) (REVERSE SIZE) UTF-8 ALL",
            " MIN 6 MAX 1 COUNT 6 ALL 6,5,4,3,2,1",
        ),
        ("UID SORT RETURN (ALL) (SIZE) UTF-8 ALL", " UID ALL 1:6"),
        ("UID SORT RETURN () (SIZE) UTF-8 2:4", " UID ALL 2:4"),
        (
            "SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 OR 1:2 5:6",
            " ALL 6,5,2,1",
        ),
        ("SORT RETURN (MAX) (SIZE) UTF-8 NOT 6", " MAX 5"),
        ("SORT RETURN (ALL MIN) (SUBJECT) UTF-8 SUBJECT nothing", ""),
        (
            "SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT nothing",
            " COUNT 0",
        ),
        (
            "UID SORT RETURN (COUNT MAX) (ARRIVAL) CHARSET-IS-NOT-HERE",
            "BAD",
        ),
    ] {
        let tag = format!("a{}", c.n + 1);
        let (lines, r) = c.cmd(query).await;
        if expect == "BAD" {
            assert!(r.starts_with("TAG BAD "), "{query}: {r}");
            continue;
        }
        assert_eq!(r, "TAG OK SORT completed", "{query}");
        assert_eq!(
            lines,
            [format!("* ESEARCH (TAG \"{tag}\"){expect}")],
            "{query}"
        );
    }
    // SAVE works with SORT too: MIN alone saves the first in sort order.
    let tag = format!("a{}", c.n + 1);
    assert_eq!(
        c.ok("SORT RETURN (SAVE MIN) (REVERSE SIZE) UTF-8 ALL")
            .await,
        [format!("* ESEARCH (TAG \"{tag}\") MIN 6")]
    );
    assert_eq!(c.ok("SEARCH $").await, ["* SEARCH 6"]);
    assert!(
        c.ok("SORT RETURN (SAVE) (SIZE) UTF-8 FLAGGED")
            .await
            .is_empty()
    );
    assert_eq!(c.ok("FETCH $ (UID)").await, ["* 3 FETCH (UID 3)"]);
    let (_, r) = c.cmd("SORT RETURN (RELEVANCY) (SIZE) UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD unknown SORT return option RELEVANCY");
    // Without RETURN, SORT answers as before.
    assert_eq!(
        c.ok("SORT (REVERSE SIZE) UTF-8 1:3").await,
        ["* SORT 3 2 1"]
    );
}

/// Runs `tests/interop/<script>` (as `interop.rs` does) and panics with its output unless
/// it exits 0.
async fn run_script(t: &crate::harness::TestServer, script: &str) {
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

#[tokio::test]
async fn imaplib_substring_search_searchres_and_esort() {
    let (t, alice) = server().await;
    for i in 1..=5 {
        let raw = format!(
            "From: Sender {i} <s{i}@example.net>\r\nTo: alice@localhost\r\n\
             Subject: report {i}\r\nX-Ticket: QZ-{i}0{i}\r\n\r\nline asdfghjkl{i} end\r\n{}",
            "x".repeat(i * 100)
        );
        deliver(&t.running.store, &alice, raw.as_bytes()).await;
    }
    run_script(&t, "imap_search_extensions.py").await;
}

/// An empty `$` acts on no message but is refused as the command would be with messages: a
/// COPY or MOVE to a mailbox that does not exist gets `NO [TRYCREATE]`, and STORE, MOVE and
/// UID EXPUNGE in an EXAMINEd mailbox `NO [READ-ONLY]` (before, all answered OK).
#[tokio::test]
async fn an_empty_saved_result_is_refused_where_messages_would_be() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("one", "w", 300)).await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    assert!(
        c.ok("SEARCH RETURN (SAVE) SUBJECT nowhere")
            .await
            .is_empty()
    );
    for command in [
        "COPY $ Nope",
        "MOVE $ Nope",
        "UID COPY $ Nope",
        "UID MOVE $ Nope",
    ] {
        let (lines, r) = c.cmd(command).await;
        assert!(lines.is_empty(), "{command}: {lines:?}");
        assert_eq!(r, "TAG NO [TRYCREATE] no such mailbox", "{command}");
    }
    let (_, r) = c.cmd("COPY $ Drafts").await;
    assert_eq!(r, "TAG OK COPY completed (no messages)");
    let (_, r) = c.cmd("COPY $ (Drafts").await;
    assert!(r.starts_with("TAG BAD "), "{r}");

    c.ok("EXAMINE INBOX").await;
    assert!(
        c.ok("SEARCH RETURN (SAVE) SUBJECT nowhere")
            .await
            .is_empty()
    );
    for command in [
        "STORE $ +FLAGS (\\Seen)",
        "UID STORE $ +FLAGS (\\Seen)",
        "MOVE $ Drafts",
        "UID EXPUNGE $",
    ] {
        let (lines, r) = c.cmd(command).await;
        assert!(lines.is_empty(), "{command}: {lines:?}");
        assert_eq!(
            r, "TAG NO [READ-ONLY] the mailbox is read-only",
            "{command}"
        );
    }
    let (_, r) = c.cmd("FETCH $ FLAGS").await;
    assert_eq!(r, "TAG OK FETCH completed (no messages)");
    let (_, r) = c.cmd("COPY $ Drafts").await;
    assert_eq!(r, "TAG OK COPY completed (no messages)");
}

/// What one command can make the server do is bounded: at most 8 `$` (each stands for the
/// whole saved set) and at most 32 different BODY/TEXT strings (each is a pass over the
/// index, a short one over every text); above that the command is refused with a NO.
#[tokio::test]
async fn one_search_is_bounded() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("one", "w", 300)).await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    assert_eq!(
        c.ok(&format!("SEARCH{}", " $".repeat(8))).await,
        ["* SEARCH 1"]
    );
    let (lines, r) = c.cmd(&format!("SEARCH{}", " $".repeat(9))).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG NO [LIMIT] at most 8 $ in one command");
    let keys = |n: usize| (0..n).map(|i| format!(" TEXT k{i}")).collect::<String>();
    assert_eq!(c.ok(&format!("SEARCH{}", keys(32))).await, ["* SEARCH"]);
    let (_, r) = c.cmd(&format!("SEARCH{}", keys(33))).await;
    assert!(r.starts_with("TAG NO "), "{r}");
    assert!(r.contains("at most 32"), "{r}");
}
