//! Session rules of issue 18: `\Recent` in exactly one session (RFC 3501 §2.3.2), keywords
//! announced with `* FLAGS` before they are shown (RFC 3501 §7.2.6), NO rather than BAD for
//! mailbox names and patterns that are valid syntax but not modified UTF-7 (RFC 3501 §5.1.3,
//! §6.3.8), and IMAP4rev2 (RFC 9051) next to IMAP4rev1.

use super::{Client, deliver, logged_in, server};
use crate::harness::message;

const FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The RECENT count a SELECT or EXAMINE reported.
fn recent(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" RECENT")?.parse().ok())
        .unwrap_or_else(|| panic!("no RECENT in {lines:?}"))
}

#[tokio::test]
async fn recent_belongs_to_exactly_one_session() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("m1", "w", 300)).await;
    deliver(store, &alice, &message("m2", "w", 300)).await;
    // Before anyone looked: both are recent, and STATUS says so.
    let mut a = logged_in(&t).await;
    assert_eq!(
        a.ok("STATUS INBOX (RECENT)").await,
        ["* STATUS \"INBOX\" (RECENT 2)"]
    );
    // EXAMINE shows them without taking them.
    assert_eq!(recent(&a.ok("EXAMINE INBOX").await), 2);
    assert_eq!(
        a.ok("FETCH 1:* FLAGS").await,
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))"
        ]
    );
    // SELECT takes them: A is the first session told of them.
    assert_eq!(recent(&a.ok("SELECT INBOX").await), 2);
    assert_eq!(a.ok("SEARCH RECENT").await, ["* SEARCH 1 2"]);
    a.ok("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(a.ok("SEARCH NEW").await, ["* SEARCH 2"]);
    assert_eq!(a.ok("SEARCH OLD").await, ["* SEARCH"]);
    assert_eq!(
        a.ok("STATUS INBOX (RECENT)").await,
        ["* STATUS \"INBOX\" (RECENT 2)"]
    );
    // B comes second: nothing is recent to it, by any measure.
    let mut b = logged_in(&t).await;
    assert_eq!(
        b.ok("STATUS INBOX (RECENT)").await,
        ["* STATUS \"INBOX\" (RECENT 0)"]
    );
    assert_eq!(recent(&b.ok("SELECT INBOX").await), 0);
    assert_eq!(
        b.ok("FETCH 1:* FLAGS").await,
        ["* 1 FETCH (FLAGS (\\Seen))", "* 2 FETCH (FLAGS ())"]
    );
    assert_eq!(b.ok("SEARCH RECENT").await, ["* SEARCH"]);
    assert_eq!(b.ok("SEARCH NEW").await, ["* SEARCH"]);
    assert_eq!(b.ok("SEARCH OLD").await, ["* SEARCH 1 2"]);
    // A message arriving while both have the mailbox selected is recent to the first told.
    deliver(store, &alice, &message("m3", "w", 300)).await;
    assert_eq!(b.ok("NOOP").await, ["* 3 EXISTS", "* 1 RECENT"]);
    assert_eq!(a.ok("NOOP").await, ["* 3 EXISTS", "* 2 RECENT"]);
    assert_eq!(
        b.ok("FETCH 3 FLAGS").await,
        ["* 3 FETCH (FLAGS (\\Recent))"]
    );
    assert_eq!(a.ok("FETCH 3 FLAGS").await, ["* 3 FETCH (FLAGS ())"]);
    assert_eq!(a.ok("SEARCH RECENT").await, ["* SEARCH 1 2"]);
    assert_eq!(b.ok("SEARCH RECENT").await, ["* SEARCH 3"]);
    // The claims outlive the sessions.
    a.ok("LOGOUT").await;
    b.ok("LOGOUT").await;
    let mut c = logged_in(&t).await;
    assert_eq!(
        c.ok("STATUS INBOX (RECENT MESSAGES)").await,
        ["* STATUS \"INBOX\" (RECENT 0 MESSAGES 3)"]
    );
    assert_eq!(recent(&c.ok("SELECT INBOX").await), 0);
}

#[tokio::test]
async fn sessions_selecting_at_once_share_no_recent_message() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    let mut sessions: Vec<Client<_>> = Vec::new();
    for _ in 0..3 {
        sessions.push(logged_in(&t).await);
    }
    for round in 1..=5u32 {
        deliver(store, &alice, &message(&format!("m{round}"), "w", 300)).await;
        // Every session sends its SELECT before any reads an answer.
        for (i, s) in sessions.iter_mut().enumerate() {
            s.send(format!("s{i} SELECT INBOX\r\n").as_bytes()).await;
        }
        let mut counts = Vec::new();
        for (i, s) in sessions.iter_mut().enumerate() {
            let (lines, tagged) = s.until(&format!("s{i}")).await;
            assert!(tagged.starts_with("TAG OK"), "{tagged}");
            counts.push(recent(&lines));
        }
        assert_eq!(counts.iter().sum::<u32>(), 1, "round {round}: {counts:?}");
    }
}

#[tokio::test]
async fn a_new_keyword_is_announced_before_it_is_shown() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("m1", "w", 300)).await;
    let mut a = logged_in(&t).await;
    let mut b = logged_in(&t).await;
    let mut r = logged_in(&t).await;
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    r.ok("EXAMINE INBOX").await;
    // STORE: the acting session first, then the others at their next command.
    assert_eq!(
        a.ok("STORE 1 +FLAGS ($Important)").await,
        [
            format!("* FLAGS ({FLAGS} $Important)"),
            format!("* OK [PERMANENTFLAGS ({FLAGS} $Important \\*)] flags permitted"),
            "* 1 FETCH (FLAGS ($Important \\Recent))".to_string(),
        ]
    );
    assert_eq!(
        b.ok("NOOP").await,
        [
            format!("* FLAGS ({FLAGS} $Important)"),
            format!("* OK [PERMANENTFLAGS ({FLAGS} $Important \\*)] flags permitted"),
            "* 1 FETCH (UID 1 FLAGS ($Important))".to_string(),
        ]
    );
    // A FETCH that shows it before the session caught up announces it first too.
    assert_eq!(
        r.ok("FETCH 1 FLAGS").await[..3],
        [
            format!("* FLAGS ({FLAGS} $Important)"),
            "* OK [PERMANENTFLAGS ()] read-only mailbox".to_string(),
            "* 1 FETCH (FLAGS ($Important))".to_string(),
        ]
    );
    // Known keywords (in any case) are not announced again; .SILENT still announces a new one.
    let lines = a.ok("STORE 1 +FLAGS.SILENT ($important)").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(
        a.ok("STORE 1 +FLAGS.SILENT (Later)").await,
        [
            format!("* FLAGS ({FLAGS} $Important Later)"),
            format!("* OK [PERMANENTFLAGS ({FLAGS} $Important Later \\*)] flags permitted"),
        ]
    );
    assert_eq!(
        b.ok("NOOP").await,
        [
            format!("* FLAGS ({FLAGS} $Important Later)"),
            format!("* OK [PERMANENTFLAGS ({FLAGS} $Important Later \\*)] flags permitted"),
            "* 1 FETCH (UID 1 FLAGS ($Important Later))".to_string(),
        ]
    );
    // APPEND into the selected mailbox: announced before the EXISTS, to every session.
    let (lines, tagged) = a.cmd("APPEND INBOX ($Appended) {5+}\r\nHello").await;
    assert!(tagged.starts_with("TAG OK [APPENDUID"), "{tagged}");
    assert_eq!(
        lines,
        [
            format!("* FLAGS ({FLAGS} $Important Later $Appended)"),
            format!(
                "* OK [PERMANENTFLAGS ({FLAGS} $Important Later $Appended \\*)] flags permitted"
            ),
            "* 2 EXISTS".to_string(),
            "* 2 RECENT".to_string(),
        ]
    );
    assert_eq!(
        b.ok("NOOP").await,
        [
            format!("* FLAGS ({FLAGS} $Important Later $Appended)"),
            format!(
                "* OK [PERMANENTFLAGS ({FLAGS} $Important Later $Appended \\*)] flags permitted"
            ),
            "* 2 EXISTS".to_string(),
            "* 0 RECENT".to_string(),
        ]
    );
    // COPY and MOVE from another mailbox.
    a.ok("CREATE Other").await;
    a.ok("APPEND Other ($Copied) {5+}\r\nHello").await;
    a.ok("APPEND Other ($Moved) {5+}\r\nHello").await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT Other").await;
    c.ok("COPY 1 INBOX").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        lines[..2],
        [
            format!("* FLAGS ({FLAGS} $Important Later $Appended $Copied)"),
            format!(
                "* OK [PERMANENTFLAGS ({FLAGS} $Important Later $Appended $Copied \\*)] flags permitted"
            ),
        ]
    );
    assert_eq!(lines[2], "* 3 EXISTS");
    c.ok("MOVE 2 INBOX").await;
    let lines = a.ok("NOOP").await;
    assert_eq!(
        lines[0],
        format!("* FLAGS ({FLAGS} $Important Later $Appended $Copied $Moved)")
    );
    assert_eq!(lines[2], "* 4 EXISTS");
    // A new SELECT lists every keyword in use.
    let lines = b.ok("SELECT INBOX").await;
    assert_eq!(
        lines[1],
        format!("* FLAGS ({FLAGS} $Important Later $Appended $Copied $Moved)")
    );
}

/// Valid astrings that are not modified UTF-7 (an unterminated `&`, an encoded run of
/// printable ASCII, a `&` before a space, a lone `&` in a literal).
const NOT_UTF7: [&str; 4] = ["&Jjo", "&AGE-", "\"Tom & Jerry\"", "{1+}\r\n&"];

#[tokio::test]
async fn names_that_are_not_modified_utf7_get_no_not_bad() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for name in NOT_UTF7 {
        for command in [
            format!("CREATE {name}"),
            format!("DELETE {name}"),
            format!("RENAME {name} Elsewhere"),
            format!("RENAME Archive {name}"),
            format!("STATUS {name} (MESSAGES)"),
            format!("APPEND {name} {{5+}}\r\nHello"),
            format!("COPY 1 {name}"),
            format!("MOVE 1 {name}"),
            format!("UID COPY 1 {name}"),
            format!("SUBSCRIBE {name}"),
            format!("UNSUBSCRIBE {name}"),
            format!("GETQUOTAROOT {name}"),
            format!("EXAMINE {name}"),
            format!("SELECT {name}"),
        ] {
            let (lines, tagged) = c.cmd(&command).await;
            assert!(
                tagged.starts_with("TAG NO "),
                "{command:?}: {tagged} {lines:?}"
            );
            // SELECT/EXAMINE deselect even when they fail; select again for the next ones.
            c.ok("SELECT INBOX").await;
        }
    }
    // Patterns: OK, with the names that match the pattern as it was sent.
    c.ok("CREATE \"Tom &- Jerry\"").await;
    c.ok("SUBSCRIBE \"Tom &- Jerry\"").await;
    for pattern in NOT_UTF7 {
        for command in [
            format!("LIST \"\" {pattern}"),
            format!("LSUB \"\" {pattern}"),
            format!("LIST {pattern} *"),
            format!("LIST (SUBSCRIBED) \"\" {pattern}"),
            format!("LIST \"\" ({pattern} INBOX) RETURN (CHILDREN)"),
        ] {
            let (lines, tagged) = c.cmd(&command).await;
            assert!(tagged.starts_with("TAG OK "), "{command:?}: {tagged}");
            assert!(
                lines.iter().all(|l| l.contains("INBOX")),
                "{command:?}: {lines:?}"
            );
        }
    }
    assert_eq!(
        c.ok("LIST \"\" \"Tom &*\"").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Tom &- Jerry\""]
    );
    assert_eq!(
        c.ok("LSUB \"\" \"Tom &*\"").await,
        ["* LSUB (\\HasNoChildren) \"/\" \"Tom &- Jerry\""]
    );
}

#[tokio::test]
async fn imap4rev2_after_enable() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("apple", "w", 300)).await;
    deliver(store, &alice, &message("pear", "w", 300)).await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].starts_with("* CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{caps:?}"
    );
    assert_eq!(c.ok("ENABLE IMAP4rev2").await, ["* ENABLED IMAP4rev2"]);
    // Enabled once.
    assert_eq!(c.ok("ENABLE IMAP4rev2").await, ["* ENABLED"]);
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    // SELECT: no RECENT, no UNSEEN code, the mailbox's LIST line (RFC 9051 §6.3.2).
    assert_eq!(
        c.ok("SELECT INBOX").await,
        [
            format!("* FLAGS ({FLAGS})"),
            format!("* OK [PERMANENTFLAGS ({FLAGS} \\*)] flags permitted"),
            "* 2 EXISTS".to_string(),
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string(),
            format!("* OK [UIDVALIDITY {}] UIDs valid", inbox.uidvalidity),
            "* OK [UIDNEXT 3] predicted next UID".to_string(),
            "* OK [HIGHESTMODSEQ 3] highest".to_string(),
        ]
    );
    // No \Recent anywhere, and this session took none from rev1 sessions.
    assert_eq!(
        c.ok("FETCH 1:* FLAGS").await,
        ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]
    );
    deliver(store, &alice, &message("plum", "w", 300)).await;
    assert_eq!(c.ok("NOOP").await, ["* 3 EXISTS"]);
    let mut rev1 = logged_in(&t).await;
    assert_eq!(recent(&rev1.ok("SELECT INBOX").await), 3);
    for command in [
        "SEARCH RECENT",
        "SEARCH NOT NEW",
        "UID SEARCH OR OLD SEEN",
        "SORT (DATE) UTF-8 RECENT",
        "STATUS INBOX (MESSAGES RECENT)",
        "LIST \"\" INBOX RETURN (STATUS (RECENT))",
    ] {
        let (_, r) = c.cmd(command).await;
        assert_eq!(r, "TAG BAD RECENT is not part of IMAP4rev2", "{command}");
    }
    // SEARCH is answered with ESEARCH, RETURN (ALL) unless the client asks otherwise.
    for (command, expect) in [
        ("SEARCH ALL", "* ESEARCH (TAG \"s1\") ALL 1:3"),
        (
            "UID SEARCH OR SUBJECT pear SUBJECT plum",
            "* ESEARCH (TAG \"s1\") UID ALL 2:3",
        ),
        ("SEARCH SUBJECT banana", "* ESEARCH (TAG \"s1\")"),
        (
            "SEARCH RETURN (COUNT MIN) ALL",
            "* ESEARCH (TAG \"s1\") MIN 1 COUNT 3",
        ),
    ] {
        c.send(format!("s1 {command}\r\n").as_bytes()).await;
        let (lines, r) = c.until("s1").await;
        assert_eq!(r, "TAG OK SEARCH completed", "{command}");
        assert_eq!(lines, [expect], "{command}");
    }
    assert_eq!(rev1.ok("SEARCH SUBJECT pear").await, ["* SEARCH 2"]);
    // Mailbox names are UTF-8 as they are; rev1 sessions see them in modified UTF-7.
    c.ok("CREATE \"Entwürfe\"").await;
    c.ok("CREATE \"Tom & Jerry\"").await;
    assert_eq!(
        c.ok("LIST \"\" \"Entw*\"").await,
        ["* LIST (\\HasNoChildren) \"/\" {9}\r\nEntwürfe"]
    );
    assert_eq!(
        c.ok("STATUS \"Tom & Jerry\" (MESSAGES)").await,
        ["* STATUS \"Tom & Jerry\" (MESSAGES 0)"]
    );
    assert_eq!(
        rev1.ok("LIST \"\" \"Entw*\"").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\""]
    );
    assert_eq!(
        rev1.ok("LIST \"\" \"Tom*\"").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Tom &- Jerry\""]
    );
    // In rev2 a modified UTF-7 form is just another name.
    let (_, r) = c.cmd("SELECT Entw&APw-rfe").await;
    assert_eq!(r, "TAG NO [NONEXISTENT] no such mailbox");
    let (_, r) = c.cmd("SELECT {4+}\r\n\u{7f}\u{7f}\u{7f}\u{7f}").await;
    assert!(r.starts_with("TAG NO "), "{r}");
    // ENABLE while a mailbox is selected: its \Recent messages are gone with rev1.
    assert_eq!(
        rev1.ok("FETCH 3 FLAGS").await,
        ["* 3 FETCH (FLAGS (\\Recent))"]
    );
    assert_eq!(rev1.ok("ENABLE IMAP4rev2").await, ["* ENABLED IMAP4rev2"]);
    assert_eq!(rev1.ok("FETCH 3 FLAGS").await, ["* 3 FETCH (FLAGS ())"]);
}

/// After ENABLE IMAP4rev2 THREAD refuses RECENT as SEARCH and SORT do, and a refused
/// `SEARCH RETURN (SAVE)` empties the saved result (RFC 5182 §2.1). Both failed before: the
/// check was made on SEARCH and SORT only, and returned before the saved result was touched.
#[tokio::test]
async fn rev2_refuses_recent_in_every_search_and_empties_a_refused_save() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("apple", "w", 300)).await;
    let mut c = logged_in(&t).await;
    assert_eq!(c.ok("ENABLE IMAP4rev2").await, ["* ENABLED IMAP4rev2"]);
    c.ok("SELECT INBOX").await;
    let (_, r) = c.cmd("THREAD REFERENCES UTF-8 RECENT").await;
    assert_eq!(r, "TAG BAD RECENT is not part of IMAP4rev2");
    assert!(c.ok("SEARCH RETURN (SAVE) ALL").await.is_empty());
    assert_eq!(c.ok("FETCH $ (UID)").await, ["* 1 FETCH (UID 1)"]);
    let (_, r) = c.cmd("SEARCH RETURN (SAVE) RECENT").await;
    assert_eq!(r, "TAG BAD RECENT is not part of IMAP4rev2");
    let (lines, r) = c.cmd("FETCH $ (UID)").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG OK FETCH completed (no messages)");
}

#[tokio::test]
async fn imap4rev2_with_python_imaplib() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("apple", "w", 300)).await;
    super::interop::run_script(&t, "imap_rev2_imaplib.py", "alice@localhost", &[]).await;
}

#[tokio::test]
async fn unauthenticate_resets_the_session() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut c = super::connect(&t).await;
    let (_, r) = c.cmd("UNAUTHENTICATE").await;
    assert_eq!(r, "TAG BAD UNAUTHENTICATE is only valid after login");
    let (_, r) = c.cmd("LOGIN alice@localhost secret").await;
    assert!(r.contains(" UNAUTHENTICATE"), "{r}");
    c.ok("ENABLE IMAP4rev2 CONDSTORE").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    // Back to the not authenticated state, the selected mailbox closed without expunging.
    assert_eq!(c.ok("uNaUtHeNtIcAtE").await, Vec::<String>::new());
    let (_, r) = c.cmd("SELECT INBOX").await;
    assert_eq!(r, "TAG BAD SELECT is only valid after login");
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].ends_with(" AUTH=PLAIN")
            && !caps[0].contains("NAMESPACE")
            && !caps[0].contains("UNAUTHENTICATE"),
        "{caps:?}"
    );
    // Literals are limited as before login again.
    c.send(b"x LOGIN {100000}\r\n").await;
    assert_eq!(
        c.line().await,
        "x NO [TOOBIG] literal of 100000 octets is larger than the limit of 65536"
    );
    let (_, r) = c.cmd("UNAUTHENTICATE").await;
    assert_eq!(r, "TAG BAD UNAUTHENTICATE is only valid after login");
    // A new login starts from nothing enabled: rev1 SELECT, no MODSEQ, the message kept.
    c.ok("LOGIN alice@localhost secret").await;
    let lines = c.ok("SELECT INBOX").await;
    assert!(lines.contains(&"* 1 RECENT".to_string()), "{lines:?}");
    assert_eq!(
        c.ok("FETCH 1 FLAGS").await,
        ["* 1 FETCH (FLAGS (\\Deleted \\Recent))"]
    );
    // While a change is pending for the selected mailbox, nothing of it follows the OK.
    deliver(&t.running.store, &alice, &message("m2", "w", 300)).await;
    c.ok("UNAUTHENTICATE").await;
    c.ok("LOGIN alice@localhost secret").await;
    let (lines, r) = c.cmd("NOOP").await;
    assert_eq!((lines.len(), r.as_str()), (0, "TAG OK NOOP completed"));
}

#[tokio::test]
async fn unauthenticate_with_python_imaplib() {
    let (t, _alice) = server().await;
    super::interop::run_script(&t, "imap_unauthenticate_imaplib.py", "alice@localhost", &[]).await;
}

#[tokio::test]
async fn utf8_accept() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" UTF8=ACCEPT"), "{caps:?}");
    // The UTF8 data item only after ENABLE.
    let (_, r) = c.cmd("APPEND INBOX UTF8 (~{5+}\r\nHello)").await;
    assert_eq!(
        r,
        "TAG BAD the UTF8 data item of APPEND needs ENABLE UTF8=ACCEPT"
    );
    assert_eq!(c.ok("ENABLE UTF8=ACCEPT").await, ["* ENABLED UTF8=ACCEPT"]);
    // Mailbox names in UTF-8 both ways, quoted or literal.
    c.ok("CREATE \"Größe\"").await;
    assert_eq!(
        c.ok("LIST \"\" \"Gr*\"").await,
        ["* LIST (\\HasNoChildren) \"/\" {7}\r\nGröße"]
    );
    let mut rev1 = logged_in(&t).await;
    assert_eq!(
        rev1.ok("LIST \"\" \"Gr*\"").await,
        [format!(
            "* LIST (\\HasNoChildren) \"/\" \"{}\"",
            mailroom::imap::utf7::encode("Größe")
        )]
    );
    // APPEND with UTF-8 in the header, as a literal8 inside UTF8 (…), non-synchronizing and
    // synchronizing.
    let msg = "Subject: Grüße aus Köln\r\nFrom: Jörg <jörg@example.de>\r\n\r\nHallo\r\n";
    let (_, r) = c
        .cmd(&format!(
            "APPEND \"Größe\" (\\Seen) UTF8 (~{{{}+}}\r\n{msg})",
            msg.len()
        ))
        .await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
    c.send(format!("s2 APPEND {{7+}}\r\nGröße uTf8 (~{{{}}}\r\n", msg.len()).as_bytes())
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(format!("{msg})\r\n").as_bytes()).await;
    let (_, r) = c.until("s2").await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
    // A literal that does not end where the data item does is not the data item.
    let (_, r) = c.cmd("APPEND \"Größe\" UTF8 (~{3+}\r\nHello)").await;
    assert!(r.starts_with("TAG BAD "), "{r}");
    assert_eq!(
        c.ok("STATUS \"Größe\" (MESSAGES)").await,
        ["* STATUS {7}\r\nGröße (MESSAGES 2)"]
    );
    c.ok("SELECT \"Größe\"").await;
    assert_eq!(
        c.ok("FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await,
        [
            "* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[HEADER.FIELDS (SUBJECT)] {30}\r\nSubject: Grüße aus Köln\r\n\r\n)",
            "* 2 FETCH (FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {30}\r\nSubject: Grüße aus Köln\r\n\r\n)",
        ]
    );
    // SEARCH: UTF-8 strings; no CHARSET (RFC 6855 §3).
    c.ok("STORE 2 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(c.ok("SEARCH SUBJECT \"grüße\"").await, ["* SEARCH 1 2"]);
    assert_eq!(c.ok("SEARCH FROM \"jörg\"").await, ["* SEARCH 1 2"]);
    let (_, r) = c.cmd("SEARCH CHARSET UTF-8 ALL").await;
    assert_eq!(r, "TAG BAD no CHARSET in SEARCH after ENABLE UTF8=ACCEPT");
}

#[tokio::test]
async fn utf8_accept_with_python_imaplib() {
    let (t, _alice) = server().await;
    super::interop::run_script(&t, "imap_utf8_imaplib.py", "alice@localhost", &[]).await;
}
