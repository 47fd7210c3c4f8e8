//! ESEARCH (RFC 4731), LIST-EXTENDED (RFC 5258) with the SPECIAL-USE options (RFC 6154) and
//! LIST-STATUS (RFC 5819): the forms imap-codec cannot parse, which `src/imap/extended.rs`
//! recognises first. Exact responses, with tags chosen by the test so ESEARCH's `(TAG "…")`
//! can be checked.

use tokio::net::TcpStream;

use super::{Client, deliver, logged_in, server};
use crate::harness::message;

/// Sends `tag command` and returns the untagged lines and the tagged line (tag kept).
async fn tagged(c: &mut Client<TcpStream>, tag: &str, command: &str) -> (Vec<String>, String) {
    c.send(format!("{tag} {command}\r\n").as_bytes()).await;
    let (lines, last) = c.until(tag).await;
    (lines, last.replacen("TAG", tag, 1))
}

#[tokio::test]
async fn esearch_return_options() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for (subject, word) in [
        ("gone", "x"),
        ("apple pie", "cinnamon"),
        ("banana split", "vanilla"),
        ("apple crumble", "cinnamon"),
        ("cherry", "vanilla"),
    ] {
        deliver(store, &alice, &message(subject, word, 400)).await;
    }
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].contains(" CONDSTORE QRESYNC SORT ESEARCH LIST-EXTENDED LIST-STATUS"),
        "{caps:?}"
    );
    c.ok("SELECT INBOX").await;
    // UID n is sequence number n - 1 from here on.
    c.ok("STORE 1 +FLAGS (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    for (tag, command, expect) in [
        (
            "e1",
            "SEARCH RETURN (MIN MAX COUNT ALL) ALL",
            "* ESEARCH (TAG \"e1\") MIN 1 MAX 4 COUNT 4 ALL 1:4",
        ),
        (
            "e2",
            "UID SEARCH RETURN (MIN MAX COUNT ALL) ALL",
            "* ESEARCH (TAG \"e2\") UID MIN 2 MAX 5 COUNT 4 ALL 2:5",
        ),
        // An empty list means ALL.
        (
            "e3",
            "UID SEARCH RETURN () UNFLAGGED",
            "* ESEARCH (TAG \"e3\") UID ALL 2,4:5",
        ),
        (
            "e4",
            "SEARCH RETURN (count) FLAGGED",
            "* ESEARCH (TAG \"e4\") COUNT 1",
        ),
        // No match: MIN, MAX and ALL are left out, COUNT is 0.
        (
            "e5",
            "SEARCH RETURN (MIN MAX ALL COUNT) BODY nothere",
            "* ESEARCH (TAG \"e5\") COUNT 0",
        ),
        (
            "e6",
            "SEARCH RETURN (MIN MAX) BODY nothere",
            "* ESEARCH (TAG \"e6\")",
        ),
        (
            "e7",
            "UID SEARCH RETURN (MAX) CHARSET UTF-8 SUBJECT apple",
            "* ESEARCH (TAG \"e7\") UID MAX 4",
        ),
        (
            "e8",
            "SEARCH RETURN (ALL) OR BODY cinnamon SUBJECT cherry",
            "* ESEARCH (TAG \"e8\") ALL 1,3:4",
        ),
        // Return options may come with a literal in the criteria (LITERAL+ here).
        (
            "e9",
            "SEARCH RETURN (ALL) SUBJECT {6+}\r\nbanana",
            "* ESEARCH (TAG \"e9\") ALL 2",
        ),
    ] {
        let (lines, r) = tagged(&mut c, tag, command).await;
        assert_eq!(r, format!("{tag} OK SEARCH completed"), "{command}");
        assert_eq!(lines, [expect], "{command}");
    }
    // Without RETURN the answer stays a SEARCH response.
    assert_eq!(c.ok("SEARCH FLAGGED").await, ["* SEARCH 2"]);
    // CONDSTORE: MODSEQ is that of the messages returned (RFC 7162 §3.1.5).
    let fetched = c.ok("FETCH 1,4 (MODSEQ)").await;
    let modseq = |line: &str| -> u64 {
        line.rsplit_once("MODSEQ (")
            .and_then(|(_, m)| m.trim_end_matches("))").parse().ok())
            .expect("modseq")
    };
    let (m1, m4) = (modseq(&fetched[0]), modseq(&fetched[1]));
    let (lines, _) = tagged(&mut c, "m1", "SEARCH RETURN (MIN) MODSEQ 1").await;
    assert_eq!(lines, [format!("* ESEARCH (TAG \"m1\") MIN 1 MODSEQ {m1}")]);
    let (lines, _) = tagged(&mut c, "m2", "SEARCH RETURN (MAX) MODSEQ 1").await;
    assert_eq!(lines, [format!("* ESEARCH (TAG \"m2\") MAX 4 MODSEQ {m4}")]);
    // Refusals: unknown options, bad criteria (SAVE is SEARCHRES: `imap::search`).
    for (command, expect) in [
        (
            "SEARCH RETURN (RELEVANCY) ALL",
            "x BAD unknown SEARCH return option RELEVANCY",
        ),
        (
            "SEARCH RETURN (MIN)",
            "x BAD SEARCH RETURN (...) must be followed by search criteria",
        ),
        (
            "SEARCH RETURN (MIN) NOSUCHKEY",
            "x BAD syntax error in the arguments of SEARCH",
        ),
    ] {
        let (lines, r) = tagged(&mut c, "x", command).await;
        assert_eq!(
            (lines.as_slice(), r.as_str()),
            (&[][..], expect),
            "{command}"
        );
    }
    // Not before a mailbox is selected.
    c.ok("UNSELECT").await;
    let (_, r) = tagged(&mut c, "u1", "SEARCH RETURN () ALL").await;
    assert_eq!(r, "u1 BAD SEARCH needs a selected mailbox");
}

#[tokio::test]
async fn list_extended_and_list_status() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("one", "x", 300)).await;
    deliver(&t.running.store, &alice, &message("two", "y", 300)).await;
    let mut c = logged_in(&t).await;
    c.ok("CREATE Work/2026").await;
    // CREATE subscribes nothing: Work/2026 is subscribed, its parent Work is not.
    c.ok("SUBSCRIBE Work/2026").await;
    c.ok("UNSUBSCRIBE Drafts").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS (\\Seen)").await;
    let cases: &[(&str, &[&str])] = &[
        // No options: the same as the basic LIST.
        (
            "LIST () \"\" \"%\" RETURN ()",
            &[
                "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
                "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
                "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
                "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
                "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
                "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
                "* LIST (\\HasChildren) \"/\" \"Work\"",
            ],
        ),
        (
            "LIST (SUBSCRIBED) \"\" \"*\"",
            &[
                "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"",
                "* LIST (\\HasNoChildren \\Subscribed \\Archive) \"/\" \"Archive\"",
                "* LIST (\\HasNoChildren \\Subscribed \\Junk) \"/\" \"Junk\"",
                "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"",
                "* LIST (\\HasNoChildren \\Subscribed \\Trash) \"/\" \"Trash\"",
                "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Work/2026\"",
            ],
        ),
        // RECURSIVEMATCH: Work is not subscribed but has a subscribed child.
        (
            "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"W%\"",
            &["* LIST (\\HasChildren) \"/\" \"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"],
        ),
        (
            "LIST (REMOTE) \"\" (\"Drafts\" Work/% \"Nope\") RETURN (SUBSCRIBED CHILDREN)",
            &[
                "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
                "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Work/2026\"",
            ],
        ),
        (
            "LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)",
            &[
                "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
                "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
                "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
                "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
                "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
            ],
        ),
        // LIST-STATUS: each STATUS right after its LIST line.
        (
            "LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))",
            &[
                "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
                "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1 UIDNEXT 3)",
                "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
                "* STATUS \"Sent\" (MESSAGES 0 UNSEEN 0 UIDNEXT 1)",
            ],
        ),
        // A reference as a literal, a pattern list, and both return options together.
        (
            "LIST () {4+}\r\nWork (\"/%\") RETURN (STATUS (MESSAGES) SUBSCRIBED)",
            &[
                "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Work/2026\"",
                "* STATUS \"Work/2026\" (MESSAGES 0)",
            ],
        ),
        // The empty pattern keeps its meaning without selection options.
        (
            "LIST \"\" \"\" RETURN (CHILDREN)",
            &["* LIST (\\Noselect) \"/\" \"\""],
        ),
    ];
    for (command, expect) in cases {
        assert_eq!(c.ok(command).await, *expect, "{command}");
    }
    // The basic forms are untouched.
    assert_eq!(
        c.ok("LIST \"\" Work").await,
        ["* LIST (\\HasChildren) \"/\" \"Work\""]
    );
    for (command, expect) in [
        (
            "LIST (FOO) \"\" *",
            "TAG BAD unknown LIST selection option FOO",
        ),
        (
            "LIST (RECURSIVEMATCH) \"\" *",
            "TAG BAD RECURSIVEMATCH needs the SUBSCRIBED selection option",
        ),
        (
            "LIST \"\" * RETURN (MYRIGHTS)",
            "TAG BAD LIST return options: unknown option MYRIGHTS",
        ),
        (
            "LIST \"\" * RETURN (STATUS (BOGUS))",
            "TAG BAD LIST return options: unknown STATUS item BOGUS",
        ),
        ("LIST \"\" (a b", "TAG BAD LIST: pattern list not closed"),
    ] {
        let (lines, r) = c.cmd(command).await;
        assert_eq!((lines.len(), r.as_str()), (0, expect), "{command}");
    }
    // Before login the extended form is refused like the basic one.
    let mut anon = super::connect(&t).await;
    let (_, r) = anon.cmd("LIST () \"\" *").await;
    assert_eq!(r, "TAG BAD LIST is only valid after login");
}
