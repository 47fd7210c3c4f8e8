//! Subscriptions are a list of names apart from the mailboxes (RFC 3501 §6.3.6–7 and §6.3.9,
//! RFC 9051 §6.3.7, RFC 5258 §3): CREATE subscribes nothing, DELETE and RENAME leave the list
//! alone, names that do not exist can be subscribed and unsubscribed, LSUB shows them and an
//! unsubscribed parent its `%` cannot reach as `\Noselect`, and LIST (SUBSCRIBED) shows a
//! subscribed name without a mailbox as `\NonExistent`.

use super::{logged_in, server};

#[tokio::test]
async fn create_subscribes_nothing() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    // The default folders of a new account start subscribed.
    assert_eq!(
        c.ok("LSUB \"\" *").await,
        [
            "* LSUB (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LSUB (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
            "* LSUB (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LSUB (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
            "* LSUB (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LSUB (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
        ]
    );
    // CREATE does not subscribe.
    c.ok("CREATE Fresh").await;
    assert!(c.ok("LSUB \"\" Fresh").await.is_empty());
    assert!(c.ok("LIST (SUBSCRIBED) \"\" Fresh").await.is_empty());
    assert_eq!(
        c.ok("LIST \"\" Fresh RETURN (SUBSCRIBED)").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Fresh\""]
    );
}

#[tokio::test]
async fn delete_and_rename_keep_the_subscriptions() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("CREATE Fresh").await;
    // DELETE keeps the subscription: the name is listed without its mailbox.
    c.ok("SUBSCRIBE Fresh").await;
    c.ok("DELETE Fresh").await;
    assert_eq!(
        c.ok("LSUB \"\" Fresh").await,
        ["* LSUB (\\Noselect) \"/\" \"Fresh\""]
    );
    assert_eq!(
        c.ok("LIST (SUBSCRIBED) \"\" Fresh").await,
        ["* LIST (\\NonExistent \\Subscribed) \"/\" \"Fresh\""]
    );
    // A plain LIST shows only mailboxes.
    assert!(c.ok("LIST \"\" Fresh").await.is_empty());
    // Unsubscribing the name that no longer exists works.
    c.ok("UNSUBSCRIBE Fresh").await;
    assert!(c.ok("LSUB \"\" Fresh").await.is_empty());
    assert!(c.ok("LIST (SUBSCRIBED) \"\" Fresh").await.is_empty());
    // RENAME moves the mailbox, not the subscription.
    c.ok("CREATE Old").await;
    c.ok("SUBSCRIBE Old").await;
    c.ok("RENAME Old New").await;
    assert_eq!(
        c.ok("LSUB \"\" Old").await,
        ["* LSUB (\\Noselect) \"/\" \"Old\""]
    );
    assert!(c.ok("LSUB \"\" New").await.is_empty());
    assert_eq!(
        c.ok("LIST \"\" (New Old) RETURN (SUBSCRIBED)").await,
        ["* LIST (\\HasNoChildren) \"/\" \"New\""]
    );
    assert_eq!(
        c.ok("LIST (SUBSCRIBED) \"\" (New Old)").await,
        ["* LIST (\\NonExistent \\Subscribed) \"/\" \"Old\""]
    );
    // Renaming INBOX leaves INBOX subscribed and subscribes nothing new.
    c.ok("RENAME INBOX Saved").await;
    assert_eq!(
        c.ok("LIST \"\" (INBOX Saved) RETURN (SUBSCRIBED)").await,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren) \"/\" \"Saved\"",
        ]
    );
}

#[tokio::test]
async fn names_that_do_not_exist_can_be_subscribed() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("SUBSCRIBE Nope").await;
    // Twice is no error, and INBOX is one name whatever its case.
    c.ok("SUBSCRIBE Nope").await;
    c.ok("UNSUBSCRIBE inbox").await;
    assert!(c.ok("LSUB \"\" INBOX").await.is_empty());
    c.ok("SUBSCRIBE iNbOx").await;
    assert_eq!(
        c.ok("LSUB \"\" INBOX").await,
        ["* LSUB (\\HasNoChildren) \"/\" \"INBOX\""]
    );
    assert_eq!(
        c.ok("LSUB \"\" Nope").await,
        ["* LSUB (\\Noselect) \"/\" \"Nope\""]
    );
    assert_eq!(
        c.ok("LIST (SUBSCRIBED) \"\" \"*\"").await,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Drafts) \"/\" \"Drafts\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Junk) \"/\" \"Junk\"",
            "* LIST (\\NonExistent \\Subscribed) \"/\" \"Nope\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Trash) \"/\" \"Trash\"",
        ]
    );
    // The return option marks mailboxes; it lists no name that is not one.
    assert_eq!(
        c.ok("LIST \"\" \"N*\" RETURN (SUBSCRIBED)").await,
        Vec::<String>::new()
    );
    // No STATUS for a name that is not a mailbox (RFC 5819 §2).
    assert_eq!(
        c.ok("LIST (SUBSCRIBED) \"\" (INBOX Nope) RETURN (STATUS (MESSAGES))")
            .await,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"",
            "* STATUS \"INBOX\" (MESSAGES 0)",
            "* LIST (\\NonExistent \\Subscribed) \"/\" \"Nope\"",
        ]
    );
    // Made later, the mailbox is subscribed already.
    c.ok("CREATE Nope").await;
    assert_eq!(
        c.ok("LIST \"\" Nope RETURN (SUBSCRIBED)").await,
        ["* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Nope\""]
    );
    // A name no mailbox could have is refused.
    let (_, r) = c.cmd("SUBSCRIBE \"a//b\"").await;
    assert!(r.starts_with("TAG NO "), "{r}");
}

#[tokio::test]
async fn lsub_percent_shows_an_unsubscribed_parent_as_noselect() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("CREATE foo/bar").await;
    c.ok("SUBSCRIBE foo/bar").await;
    // Whatever CREATE did to foo, it is not subscribed now.
    c.ok("UNSUBSCRIBE foo").await;
    // RFC 3501 §6.3.9: `%` returns foo, flagged \Noselect, not foo/bar.
    assert_eq!(
        c.ok("LSUB \"\" f%").await,
        ["* LSUB (\\Noselect) \"/\" \"foo\""]
    );
    assert_eq!(
        c.ok("LSUB \"\" f*").await,
        ["* LSUB (\\HasNoChildren) \"/\" \"foo/bar\""]
    );
    assert_eq!(
        c.ok("LSUB foo/ %").await,
        ["* LSUB (\\HasNoChildren) \"/\" \"foo/bar\""]
    );
    // Subscribed itself, foo is listed as it is.
    c.ok("SUBSCRIBE foo").await;
    assert_eq!(
        c.ok("LSUB \"\" f%").await,
        ["* LSUB (\\HasChildren) \"/\" \"foo\""]
    );
    // The same for a subscribed name whose parent does not exist either.
    c.ok("SUBSCRIBE x/y").await;
    assert_eq!(
        c.ok("LSUB \"\" x%").await,
        ["* LSUB (\\Noselect) \"/\" \"x\""]
    );
    assert_eq!(
        c.ok("LSUB \"\" x*").await,
        ["* LSUB (\\Noselect) \"/\" \"x/y\""]
    );
    // RECURSIVEMATCH reaches the missing parent of a subscribed name too.
    assert_eq!(
        c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" x%").await,
        ["* LIST (\\NonExistent) \"/\" \"x\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"]
    );
    assert!(c.ok("LIST \"\" x*").await.is_empty());
}
