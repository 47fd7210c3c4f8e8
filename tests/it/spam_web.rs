//! The spam filter in the web (issue 21): the webmail's "Spam" and "Not spam" buttons (moved,
//! and taught), the reading view's line saying why a message was junked, the Spam settings
//! page (threshold, always-allow and always-block lists), the admin's spam page (domains,
//! DNS list zones, greylisting, the resolver warning; each change audited), the dashboard's
//! and `/metrics`' counts, and the browser journey.

use std::time::Duration;

use axum::http::StatusCode;
use mailroom::store::{Delivery, Mailbox, Store, Target};
use sha2::{Digest, Sha256};

use crate::harness::{self, TestServer};
use crate::web_client::Browser;

/// bob@localhost and carol@localhost, password "secret".
async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "carol@localhost", 0).await;
    server
}

async fn signed_in(server: &TestServer, who: &str) -> (Browser, String) {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", who, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    (b, csrf)
}

async fn admin(server: &TestServer) -> (Browser, String) {
    let login = server.running.first_login.clone().expect("first login");
    let mut b = Browser::new(server);
    let page = b.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf().await;
    (b, csrf)
}

async fn account_id(store: &Store, who: &str) -> i64 {
    store.account_by_address(who).await.unwrap().unwrap().id
}

/// The account's mailbox named `name`.
async fn mailbox(store: &Store, who: &str, name: &str) -> Mailbox {
    let id = account_id(store, who).await;
    store.mailbox(id, name).await.unwrap().unwrap()
}

async fn deliver(store: &Store, who: &str, raw: &[u8]) -> u32 {
    let id = account_id(store, who).await;
    store
        .deliver(
            Delivery {
                raw,
                internal_date: None,
            },
            &[Target::inbox(id)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid
}

/// The subjects in a mailbox.
async fn subjects(store: &Store, mailbox: &Mailbox) -> Vec<String> {
    store
        .message_list(mailbox, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.subject)
        .collect()
}

fn lessons(store: &Store) -> i64 {
    store
        .event_counters()
        .into_iter()
        .find(|(k, _)| *k == "spam_lessons")
        .map_or(0, |(_, n)| n)
}

fn digest(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits (up to 5 s) until the learner has taught the message as `want`.
async fn trained_as(store: &Store, account: i64, raw: &[u8], want: Option<bool>) {
    let digest = digest(raw);
    let mut last = None;
    for _ in 0..100 {
        last = store.spam_trained_as(account, &digest).await.unwrap();
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trained as {last:?}, wanted {want:?}");
}

fn mail(subject: &str, from: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.net>\r\n\r\nCheap replica watches, limited offer: {subject}.\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

#[tokio::test]
async fn spam_and_not_spam_move_the_message_and_teach_the_filter() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let junk = mailbox(&store, "bob@localhost", "Junk").await;
    let offer = mail("Watches", "offers@shop.example");
    let other = mail("Pills", "offers@shop.example");
    let uid = deliver(&store, "bob@localhost", &offer).await;
    let other_uid = deliver(&store, "bob@localhost", &other).await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;

    // The list and the reading view offer "Spam" outside Junk.
    let list = b.get(&format!("/mail/box/{}", inbox.id())).await;
    assert!(list.body.contains("value=\"spam\""), "{}", list.body);
    assert!(!list.body.contains("value=\"notspam\""));
    let read = b.get(&format!("/mail/box/{}/{uid}", inbox.id())).await;
    assert!(read.body.contains("id=\"spam\""), "{}", read.body);
    assert!(!read.body.contains("id=\"not-spam\""));
    // Without the form's token: refused, nothing moved, nothing taught.
    let before = lessons(&store);
    let act = format!("/mail/box/{}/act", inbox.id());
    let page = b
        .post(
            &act,
            &[
                ("csrf", "forged"),
                ("action", "spam"),
                ("uid", &uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(subjects(&store, &inbox).await.len(), 2);
    assert_eq!(lessons(&store), before);

    // "Spam" from the reading view: into Junk, back to the folder, taught as spam.
    let page = b
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "spam"),
                ("uid", &uid.to_string()),
                ("back", &format!("/mail/box/{}/{uid}", inbox.id())),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location,
        format!("/mail/box/{}?done=junked", inbox.id())
    );
    assert_eq!(subjects(&store, &inbox).await, ["Pills"]);
    assert_eq!(subjects(&store, &junk).await, ["Watches"]);
    assert_eq!(lessons(&store), before + 1);
    trained_as(&store, bob, &offer, Some(true)).await;
    let notice = b.get(&page.location).await;
    assert!(notice.body.contains("Moved to Junk"), "{}", notice.body);

    // In Junk: "Not spam" instead, in the list and the reading view.
    let list = b.get(&format!("/mail/box/{}", junk.id())).await;
    assert!(list.body.contains("value=\"notspam\""), "{}", list.body);
    assert!(!list.body.contains("value=\"spam\""));
    let junk_uid = store.message_list(&junk, 0, 10).await.unwrap()[0].uid;
    let read = b.get(&format!("/mail/box/{}/{junk_uid}", junk.id())).await;
    assert!(read.body.contains("id=\"not-spam\""), "{}", read.body);
    assert!(!read.body.contains("id=\"spam\""));

    // "Spam" on a message already in Junk, and "Not spam" on one outside it, change nothing.
    let page = b
        .post(
            &format!("/mail/box/{}/act", junk.id()),
            &[
                ("csrf", &csrf),
                ("action", "spam"),
                ("uid", &junk_uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "notspam"),
                ("uid", &other_uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(subjects(&store, &junk).await, ["Watches"]);
    assert_eq!(subjects(&store, &inbox).await, ["Pills"]);
    assert_eq!(lessons(&store), before + 1);

    // "Not spam" from the Junk list (selected as `msg`): back in INBOX, taught as ham.
    let page = b
        .post(
            &format!("/mail/box/{}/act", junk.id()),
            &[
                ("csrf", &csrf),
                ("action", "notspam"),
                ("msg", &format!("{}:{junk_uid}", junk.id())),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location,
        format!("/mail/box/{}?done=unjunked", junk.id())
    );
    assert!(subjects(&store, &junk).await.is_empty());
    let mut back = subjects(&store, &inbox).await;
    back.sort();
    assert_eq!(back, ["Pills", "Watches"]);
    trained_as(&store, bob, &offer, Some(false)).await;

    // The plain Move into Junk teaches too, as an IMAP MOVE would; Junk to Trash does not.
    let page = b
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("action", "move"),
                ("target", &junk.id().to_string()),
                ("uid", &other_uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    trained_as(&store, bob, &other, Some(true)).await;
    let taught = lessons(&store);
    let junk_uid = store.message_list(&junk, 0, 10).await.unwrap()[0].uid;
    let page = b
        .post(
            &format!("/mail/box/{}/act", junk.id()),
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("uid", &junk_uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(lessons(&store), taught, "Junk to Trash teaches nothing");
    trained_as(&store, bob, &other, Some(true)).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn spam_makes_a_junk_folder_when_there_is_none() {
    let server = server().await;
    let store = server.running.store.clone();
    let carol = account_id(&store, "carol@localhost").await;
    store.delete_mailbox(carol, "Junk").await.unwrap();
    let raw = mail("Offer", "x@shop.example");
    let uid = deliver(&store, "carol@localhost", &raw).await;
    let inbox = mailbox(&store, "carol@localhost", "INBOX").await;
    let (mut b, csrf) = signed_in(&server, "carol@localhost").await;
    let page = b
        .post(
            &format!("/mail/box/{}/act", inbox.id()),
            &[
                ("csrf", &csrf),
                ("action", "spam"),
                ("uid", &uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let junk = mailbox(&store, "carol@localhost", "Junk").await;
    assert_eq!(junk.special_use.as_deref(), Some("\\Junk"));
    assert_eq!(subjects(&store, &junk).await, ["Offer"]);
    trained_as(&store, carol, &raw, Some(true)).await;

    // A plain folder called Junk (not the Junk folder): the new one is called Spam.
    store.delete_mailbox(carol, "Junk").await.unwrap();
    store.create_mailbox(carol, "Junk").await.unwrap();
    let uid = deliver(&store, "carol@localhost", &mail("Again", "x@shop.example")).await;
    let page = b
        .post(
            &format!("/mail/box/{}/act", inbox.id()),
            &[
                ("csrf", &csrf),
                ("action", "spam"),
                ("uid", &uid.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let spam = mailbox(&store, "carol@localhost", "Spam").await;
    assert_eq!(spam.special_use.as_deref(), Some("\\Junk"));
    assert_eq!(subjects(&store, &spam).await, ["Again"]);
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_reading_view_says_why_a_message_was_junked() {
    let server = server().await;
    let store = server.running.store.clone();
    let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
    let junked = "X-Mailroom-Spam: score=7.4; junk=5.0; verdict=junk; bayes=0.99 (+5.9); \
                  dnsbl=+2.0 (zen.spamhaus.org); list=block (<b>evil</b>.example)\r\n\
                  From: offers@shop.example\r\nTo: bob@localhost\r\nSubject: Junked\r\n\r\nBuy.\r\n";
    let plain = "From: alice@example.net\r\nTo: bob@localhost\r\nSubject: Hello\r\n\r\nHi.\r\n";
    let junked_uid = deliver(&store, "bob@localhost", junked.as_bytes()).await;
    let plain_uid = deliver(&store, "bob@localhost", plain.as_bytes()).await;
    let (mut b, _) = signed_in(&server, "bob@localhost").await;

    let page = b
        .get(&format!("/mail/box/{}/{junked_uid}", inbox.id()))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let line = page
        .body
        .split("id=\"spam-why\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no spam line in {}", page.body));
    assert!(line.contains("7.4"), "{line}");
    assert!(line.contains("5.0"), "{line}");
    assert!(line.contains("zen.spamhaus.org"), "{line}");
    // The header's text is escaped like any other.
    assert!(!page.body.contains("<b>evil</b>"), "{}", page.body);

    let page = b
        .get(&format!("/mail/box/{}/{plain_uid}", inbox.id()))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("spam-why"), "{}", page.body);
    server.running.shutdown().await;
}

#[tokio::test]
async fn spam_settings_change_the_threshold_and_the_lists() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;
    let settings = b.get("/mail/settings").await;
    assert!(settings.body.contains("href=\"/mail/settings/spam\""));
    let page = b.get("/mail/settings/spam").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("the server&#39;s default")
            || page.body.contains("the server's default"),
        "{}",
        page.body
    );

    // The threshold: a number in range, or back to the domain's.
    let page = b
        .post(
            "/mail/settings/spam/threshold",
            &[("csrf", &csrf), ("threshold", "7.5")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/mail/settings/spam?done=spam-settings");
    assert_eq!(
        store.spam_policy(bob).await.unwrap().account_junk,
        Some(7.5)
    );
    for bad in ["0.2", "51", "much", "NaN"] {
        let page = b
            .post(
                "/mail/settings/spam/threshold",
                &[("csrf", &csrf), ("threshold", bad)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            page.body.contains("id=\"threshold-error\""),
            "{}",
            page.body
        );
    }
    assert_eq!(
        store.spam_policy(bob).await.unwrap().account_junk,
        Some(7.5)
    );
    let page = b
        .post(
            "/mail/settings/spam/threshold",
            &[("csrf", &csrf), ("threshold", "7.5"), ("default", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.spam_policy(bob).await.unwrap().account_junk, None);

    // The lists: addresses and domains, lower case; bad entries refused with a reason.
    for (entry, list) in [
        ("Spammer@Shop.EXAMPLE", "block"),
        ("@Friends.Example", "allow"),
        ("news.example.org", "allow"),
    ] {
        let page = b
            .post(
                "/mail/settings/spam/list",
                &[("csrf", &csrf), ("entry", entry), ("list", list)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{entry}: {}", page.body);
    }
    let lists: Vec<(String, bool)> = store
        .spam_list(bob)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.entry, e.allow))
        .collect();
    assert_eq!(
        lists,
        [
            ("friends.example".to_string(), true),
            ("news.example.org".to_string(), true),
            ("spammer@shop.example".to_string(), false),
        ]
    );
    for bad in ["", "not a domain", "localhost", "a@b@c.example", "x@"] {
        let page = b
            .post(
                "/mail/settings/spam/list",
                &[("csrf", &csrf), ("entry", bad), ("list", "block")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert!(page.body.contains("id=\"list-error\""), "{}", page.body);
    }
    assert_eq!(store.spam_list(bob).await.unwrap().len(), 3);
    // Moving an entry to the other list.
    let page = b
        .post(
            "/mail/settings/spam/list",
            &[
                ("csrf", &csrf),
                ("entry", "news.example.org"),
                ("list", "block"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b.get("/mail/settings/spam").await;
    let blocked = page.body.split("id=\"blocked\"").nth(1).unwrap();
    assert!(blocked.contains("news.example.org"), "{}", page.body);
    assert!(blocked.contains("spammer@shop.example"));

    // Removing: gone; an entry not on the lists is an error.
    let page = b
        .post(
            "/mail/settings/spam/list/remove",
            &[("csrf", &csrf), ("entry", "spammer@shop.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b
        .post(
            "/mail/settings/spam/list/remove",
            &[("csrf", &csrf), ("entry", "spammer@shop.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(store.spam_list(bob).await.unwrap().len(), 2);

    // Without the token nothing changes; Carol sees none of Bob's entries.
    for (path, form) in [
        ("/mail/settings/spam/threshold", vec![("threshold", "9")]),
        (
            "/mail/settings/spam/list",
            vec![("entry", "x.example"), ("list", "block")],
        ),
        (
            "/mail/settings/spam/list/remove",
            vec![("entry", "friends.example")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", "forged"));
        let page = b.post(path, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(store.spam_list(bob).await.unwrap().len(), 2);
    assert_eq!(store.spam_policy(bob).await.unwrap().account_junk, None);
    let (mut carol, _) = signed_in(&server, "carol@localhost").await;
    let page = carol.get("/mail/settings/spam").await;
    assert!(!page.body.contains("friends.example"), "{}", page.body);
    server.running.shutdown().await;
}

/// The audit log's actions, oldest first.
async fn audited(store: &Store) -> Vec<(String, String, String)> {
    let mut log: Vec<(String, String, String)> = store
        .audit_entries("spam.", 0, 100)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.action, e.target, e.detail))
        .collect();
    log.reverse();
    log
}

#[tokio::test]
async fn the_admin_spam_page_changes_domains_zones_and_greylisting_audited() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut b, csrf) = admin(&server).await;
    let page = b.get("/admin/spam").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("href=\"/admin/spam\""), "in the menu");
    assert!(page.body.contains("zen.spamhaus.org") && page.body.contains("list.dnswl.org"));
    assert!(
        page.body.contains("id=\"no-zones\""),
        "no zone asked by default"
    );
    assert!(!page.body.contains("id=\"dnsbl-refused\""));

    // A domain: off, then on with thresholds.
    let domain = "/admin/spam/domains/localhost";
    let page = b
        .post(domain, &[("csrf", &csrf), ("junk", ""), ("reject", "")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/admin/spam?done=spam-updated");
    let bob = account_id(&store, "bob@localhost").await;
    assert!(!store.spam_policy(bob).await.unwrap().enabled);
    let page = b
        .post(
            domain,
            &[
                ("csrf", &csrf),
                ("enabled", "1"),
                ("junk", "6"),
                ("reject", "12.5"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let policy = store.spam_policy(bob).await.unwrap();
    assert!(policy.enabled);
    assert_eq!(
        (policy.domain_junk, policy.domain_reject),
        (Some(6.0), Some(12.5))
    );
    for (junk, reject) in [("8", "7"), ("0", ""), ("", "1000"), ("six", "")] {
        let page = b
            .post(
                domain,
                &[
                    ("csrf", &csrf),
                    ("enabled", "1"),
                    ("junk", junk),
                    ("reject", reject),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{junk} {reject}"
        );
        assert!(page.body.contains("field-error"), "{}", page.body);
    }
    let page = b
        .post(
            "/admin/spam/domains/nowhere.example",
            &[("csrf", &csrf), ("enabled", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let policy = store.spam_policy(bob).await.unwrap();
    assert_eq!(
        (policy.domain_junk, policy.domain_reject),
        (Some(6.0), Some(12.5))
    );

    // Zones: added, changed, refused when wrong, removed.
    let zones = "/admin/spam/zones";
    let page = b
        .post(
            zones,
            &[
                ("csrf", &csrf),
                ("zone", "Zen.Spamhaus.org"),
                ("weight", "4"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = b
        .post(
            zones,
            &[
                ("csrf", &csrf),
                ("zone", "list.dnswl.org"),
                ("weight", "-2"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = b
        .post(
            zones,
            &[
                ("csrf", &csrf),
                ("zone", "zen.spamhaus.org"),
                ("weight", "3.5"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    for (zone, weight) in [
        ("localhost", "4"),
        ("bad zone.org", "4"),
        ("x.example", "0"),
        ("x.example", "99"),
        ("x.example", "heavy"),
    ] {
        let page = b
            .post(
                zones,
                &[("csrf", &csrf), ("zone", zone), ("weight", weight)],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{zone} {weight}"
        );
        assert!(page.body.contains("id=\"zone-error\""), "{}", page.body);
    }
    let listed: Vec<(String, f64)> = store
        .spam_zones()
        .await
        .unwrap()
        .into_iter()
        .map(|z| (z.zone, z.weight))
        .collect();
    assert_eq!(
        listed,
        [
            ("list.dnswl.org".to_string(), -2.0),
            ("zen.spamhaus.org".to_string(), 3.5)
        ]
    );
    let page = b.get("/admin/spam").await;
    assert!(page.body.contains("id=\"spam-zones\""), "{}", page.body);
    let page = b
        .post(
            "/admin/spam/zones/remove",
            &[("csrf", &csrf), ("zone", "list.dnswl.org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b
        .post(
            "/admin/spam/zones/remove",
            &[("csrf", &csrf), ("zone", "list.dnswl.org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(store.spam_zones().await.unwrap().len(), 1);

    // Greylisting: on with a delay; a delay out of range is refused.
    let grey = "/admin/spam/greylisting";
    let page = b
        .post(grey, &[("csrf", &csrf), ("enabled", "1"), ("delay", "600")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        store.meta("spam_greylisting").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        store.meta("spam_greylist_delay").await.unwrap().as_deref(),
        Some("600")
    );
    for delay in ["5", "100000", "soon", ""] {
        let page = b.post(grey, &[("csrf", &csrf), ("delay", delay)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{delay}");
        assert!(page.body.contains("id=\"delay-error\""), "{}", page.body);
    }
    assert_eq!(
        store.meta("spam_greylisting").await.unwrap().as_deref(),
        Some("1")
    );
    let page = b.post(grey, &[("csrf", &csrf), ("delay", "300")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        store.meta("spam_greylisting").await.unwrap().as_deref(),
        Some("0")
    );

    // The resolver warning: a day-old refusal is no longer shown; a fresh one is, until
    // hidden on request.
    let now = mailroom::store::now();
    store
        .set_meta(
            "spam_dnsbl_refused",
            &format!("zen.spamhaus.org {}", now - 2 * 86_400),
        )
        .await
        .unwrap();
    let page = b.get("/admin/spam").await;
    assert!(
        !page.body.contains("id=\"dnsbl-refused\""),
        "a stale warning is not shown"
    );
    store
        .set_meta("spam_dnsbl_refused", &format!("zen.spamhaus.org {now}"))
        .await
        .unwrap();
    let page = b.get("/admin/spam").await;
    let warning = page
        .body
        .split("id=\"dnsbl-refused\"")
        .nth(1)
        .expect("the warning");
    assert!(
        warning.contains("zen.spamhaus.org") && warning.contains("DQS"),
        "{warning}"
    );
    let page = b
        .post("/admin/spam/refused/dismiss", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.meta("spam_dnsbl_refused").await.unwrap(), None);

    // Without the token: nothing changes, nothing is audited.
    let before = audited(&store).await.len();
    for (path, form) in [
        (domain, vec![("enabled", "1"), ("junk", "9")]),
        (zones, vec![("zone", "bl.example.org"), ("weight", "1")]),
        (
            "/admin/spam/zones/remove",
            vec![("zone", "zen.spamhaus.org")],
        ),
        (grey, vec![("enabled", "1"), ("delay", "60")]),
        ("/admin/spam/refused/dismiss", vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", "forged"));
        let page = b.post(path, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(audited(&store).await.len(), before);
    assert_eq!(store.spam_zones().await.unwrap().len(), 1);
    assert_eq!(
        store.meta("spam_greylisting").await.unwrap().as_deref(),
        Some("0")
    );

    // Every change audited, in order, with what it set.
    let log = audited(&store).await;
    let actions: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "spam.domain",
            "spam.domain",
            "spam.zone.add",
            "spam.zone.add",
            "spam.zone.change",
            "spam.zone.remove",
            "spam.greylisting",
            "spam.greylisting",
            "spam.warning.dismiss",
        ]
    );
    assert_eq!(
        log[1],
        (
            "spam.domain".to_string(),
            "localhost".to_string(),
            "on, junk 6, reject 12.5".to_string()
        )
    );
    assert_eq!(log[2].1, "zen.spamhaus.org");
    assert_eq!(log[4].2, "weight 3.5");
    assert_eq!(log[6].2, "on, delay 600 s");
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_and_metrics_count_spam() {
    let server = server().await;
    let store = server.running.store.clone();
    for _ in 0..3 {
        store.count_event("spam_junked");
    }
    store.count_event("rejected:spam");
    let (mut b, _) = admin(&server).await;
    let page = b.get("/admin").await;
    assert!(
        page.body.contains("id=\"stat-spam-junked\">3<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"stat-spam-rejected\">1<"),
        "{}",
        page.body
    );
    let metrics = b.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.body.contains("\nmailroom_spam_junked_total 3\n"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("\nmailroom_spam_rejected_total 1\n"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("mailroom_rejections_total{reason=\"spam\"} 1")
    );
    assert!(
        metrics.body.contains("\nmailroom_spam_lessons_total 0\n"),
        "{}",
        metrics.body
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn spam_journey_in_chromium() {
    let server = harness::start().await;
    let store = server.running.store.clone();
    harness::account(&store, "bob@localhost", 0).await;
    let smtp = server.running.addr("smtp").expect("smtp listener");
    crate::browser::journey(
        "spam.mjs",
        &server,
        &[("SMTP_PORT", smtp.port().to_string())],
    )
    .await;
    if crate::browser::missing().is_none() {
        // The first offer stayed in Junk, the second came back to INBOX with "Not spam".
        let junk = mailbox(&store, "bob@localhost", "Junk").await;
        let inbox = mailbox(&store, "bob@localhost", "INBOX").await;
        assert_eq!(subjects(&store, &junk).await, ["Replica watches, 90% off"]);
        assert_eq!(
            subjects(&store, &inbox).await,
            ["Replica watches, last chance"]
        );
        let bob = account_id(&store, "bob@localhost").await;
        let listed = store.spam_list(bob).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].entry.as_str(), listed[0].allow),
            ("watch-offers.example", false)
        );
    }
    server.running.shutdown().await;
}
