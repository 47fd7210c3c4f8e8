//! CREATE-SPECIAL-USE (RFC 6154 §3) over TCP: `CREATE name (USE (\Junk))` creates a mailbox
//! that LIST shows with its special use; an attribute that is unknown, virtual (`\All`,
//! `\Flagged`), another mailbox's, or a second one is `NO [USEATTR]` and creates nothing; an
//! unknown parameter is BAD. Python's imaplib in `tests/interop/imap_special_use.py`.

use super::{logged_in, server};

#[tokio::test]
async fn advertised() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps[0].contains(" SPECIAL-USE CREATE-SPECIAL-USE "),
        "{caps:?}"
    );
}

#[tokio::test]
async fn create_with_a_special_use() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("DELETE Junk").await;
    c.ok("CREATE Spam (USE (\\junk))").await;
    assert_eq!(
        c.ok("LIST \"\" Spam").await,
        ["* LIST (\\HasNoChildren \\Junk) \"/\" \"Spam\""]
    );
    assert_eq!(
        c.ok("LIST (SPECIAL-USE) \"\" *").await,
        [
            "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Junk) \"/\" \"Spam\"",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
        ]
    );
    // It keeps its special use through a RENAME, and gives it up with DELETE.
    c.ok("RENAME Spam Unwanted").await;
    assert_eq!(
        c.ok("LIST \"\" Unwanted").await,
        ["* LIST (\\HasNoChildren \\Junk) \"/\" \"Unwanted\""]
    );
    c.ok("DELETE Unwanted").await;
    // With parents to make, and a trailing separator.
    c.ok("DELETE Archive").await;
    c.ok("CREATE Old/Archive/ (USE (\\Archive))").await;
    assert_eq!(
        c.ok("LIST \"\" Old*").await,
        [
            "* LIST (\\HasChildren) \"/\" \"Old\"",
            "* LIST (\\HasNoChildren \\Archive) \"/\" \"Old/Archive\"",
        ]
    );
    // An empty USE list is a plain CREATE.
    c.ok("CREATE Plain (USE ())").await;
    assert_eq!(
        c.ok("LIST \"\" Plain").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Plain\""]
    );
}

#[tokio::test]
async fn refused_attributes_create_nothing() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    for (command, reply) in [
        (
            "CREATE MySent (USE (\\Sent))",
            "TAG NO [USEATTR] \\Sent is already the special use of mailbox Sent",
        ),
        (
            "CREATE Everything (USE (\\All))",
            "TAG NO [USEATTR] mailboxes can be created with \\Archive \\Drafts \\Junk \\Sent \\Trash only",
        ),
        (
            "CREATE Starred (USE (\\Flagged))",
            "TAG NO [USEATTR] mailboxes can be created with \\Archive \\Drafts \\Junk \\Sent \\Trash only",
        ),
        (
            "CREATE Mine (USE (\\Important))",
            "TAG NO [USEATTR] mailboxes can be created with \\Archive \\Drafts \\Junk \\Sent \\Trash only",
        ),
        (
            "CREATE Both (USE (\\Junk \\Trash))",
            "TAG NO [USEATTR] a mailbox can have only one special use here",
        ),
        (
            "CREATE Drafts (USE (\\Drafts))",
            "TAG NO [ALREADYEXISTS] mailbox Drafts already exists",
        ),
        (
            "CREATE New/Child (USE (\\Sent))",
            "TAG NO [USEATTR] \\Sent is already the special use of mailbox Sent",
        ),
    ] {
        let (_, r) = c.cmd(command).await;
        assert_eq!(r, reply, "{command}");
    }
    // None of them was made, not even a parent.
    for name in ["MySent", "Everything", "Starred", "Mine", "Both", "New"] {
        assert!(
            c.ok(&format!("LIST \"\" {name}")).await.is_empty(),
            "{name}"
        );
    }
    for bad in [
        "CREATE X (FOO)",
        "CREATE X (USE \\Sent)",
        "CREATE X (USE (Sent))",
        "CREATE X (USE (\\Sent)",
    ] {
        let (_, r) = c.cmd(bad).await;
        assert!(r.starts_with("TAG BAD "), "{bad}: {r}");
    }
    assert!(c.ok("LIST \"\" X").await.is_empty());
}

/// Python's imaplib: CREATE with the USE parameter, then LIST.
#[tokio::test]
async fn imaplib_create_special_use() {
    let (t, _alice) = server().await;
    super::metadata::run_python(&t, "imap_special_use.py").await;
}

/// RFC 6154 §4: with METADATA, a mailbox's `/private/specialuse` is its special use; setting
/// it follows the rules of CREATE (USE), all or nothing with the other entries of the command.
#[tokio::test]
async fn the_specialuse_metadata_entry() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    assert_eq!(
        c.ok("GETMETADATA Sent /private/specialuse").await,
        ["* METADATA \"Sent\" (/private/specialuse \"\\\\Sent\")"]
    );
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/specialuse").await,
        ["* METADATA \"INBOX\" (/private/specialuse NIL)"]
    );
    c.ok("SETMETADATA Sent (/private/comment \"mine\")").await;
    assert_eq!(
        c.ok("GETMETADATA (DEPTH 1) Sent /private").await,
        [
            "* METADATA \"Sent\" (/private NIL /private/comment \"mine\" /private/specialuse \"\\\\Sent\")"
        ]
    );
    // Moved to another mailbox: taken from Sent first, then given.
    c.ok("CREATE Outbox").await;
    let (_, r) = c
        .cmd("SETMETADATA Outbox (/private/specialuse \"\\\\Sent\")")
        .await;
    assert_eq!(
        r,
        "TAG NO [USEATTR] \\Sent is already the special use of mailbox Sent"
    );
    c.ok("SETMETADATA Sent (/private/specialuse NIL)").await;
    c.ok("SETMETADATA Outbox (/private/specialuse \"\\\\sent\")")
        .await;
    assert_eq!(
        c.ok("LIST \"\" (Outbox Sent)").await,
        [
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Outbox\"",
            "* LIST (\\HasNoChildren) \"/\" \"Sent\"",
        ]
    );
    // A refused special use takes the command's other entries with it.
    let (_, r) = c
        .cmd("SETMETADATA Drafts (/private/comment \"x\" /private/specialuse \"\\\\Important\")")
        .await;
    assert_eq!(
        r,
        "TAG NO [USEATTR] mailboxes can have \\Archive \\Drafts \\Junk \\Sent \\Trash only"
    );
    assert_eq!(
        c.ok("GETMETADATA Drafts (/private/comment /private/specialuse)")
            .await,
        ["* METADATA \"Drafts\" (/private/comment NIL /private/specialuse \"\\\\Drafts\")"]
    );
}
