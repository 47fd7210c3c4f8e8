//! Compose (issue 24) through the router: drafts that reopen with everything (Bcc and
//! attachments included), are replaced when saved again and leave Drafts when sent; autosave;
//! attachments kept across a form error; rich text sent as multipart/alternative and
//! sanitized; the address book (collected on send, suggestions, vCard import and export,
//! another account's contacts out of reach).

use axum::http::StatusCode;
use mailroom::store::{Delivery, Flags, Store, Target};

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, field};

async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "carol@localhost", 0).await;
    harness::account(&server.running.store, "dave@localhost", 0).await;
    server
}

async fn signed_in(server: &TestServer, who: &str) -> (Browser, String) {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", who, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    (b, csrf)
}

/// (mailbox id, UIDs) of an account's folder.
async fn uids(store: &Store, who: &str, name: &str) -> (i64, Vec<u32>) {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    let m = store.mailbox(a.id, name).await.unwrap().unwrap();
    let uids = store
        .messages(&m)
        .await
        .unwrap()
        .iter()
        .map(|x| x.uid)
        .collect();
    (m.id(), uids)
}

async fn body_of(store: &Store, who: &str, name: &str, uid: u32) -> String {
    let a = store.account_by_address(who).await.unwrap().unwrap();
    let m = store.mailbox(a.id, name).await.unwrap().unwrap();
    String::from_utf8_lossy(&store.message_body(&m, uid).await.unwrap()).into_owned()
}

const ORIGINAL: &str = "From: Alice <alice@example.net>\r\nTo: bob@localhost\r\nSubject: Plans\r\n\
Message-ID: <plans-1@example.net>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nShall we meet?\r\n";

#[tokio::test]
async fn drafts_reopen_are_replaced_and_leave_drafts_when_sent() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob_id = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap()
        .id;
    let inbox = store.mailbox(bob_id, "INBOX").await.unwrap().unwrap();
    let orig = store
        .deliver(
            Delivery {
                raw: ORIGINAL.as_bytes(),
                internal_date: None,
            },
            &[Target::inbox(bob_id)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid;
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let reply_of = format!("{}:{orig}", inbox.id());
    // The rich editor's version of a reply quotes with <blockquote>.
    let reply = bob.get(&format!("/mail/compose?reply={reply_of}")).await;
    assert!(
        reply
            .body
            .contains("&#60;blockquote&#62;&#60;div&#62;Shall we meet?"),
        "{}",
        reply.body
    );

    // A reply saved as a draft, with Bcc and an attachment.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "Carol <carol@localhost>"),
                ("cc", "dave@example.org"),
                ("bcc", "erin@example.org"),
                ("subject", "Re: Plans"),
                ("body", "Tuesday?\n\n> Shall we meet?"),
                ("in_reply_to", "plans-1@example.net"),
                ("references", "plans-1@example.net"),
                ("reply_of", &reply_of),
                ("action", "draft"),
            ],
            &[("attachment", "agenda.txt", "text/plain", b"1. lunch\n")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (drafts, d) = uids(&store, "bob@localhost", "Drafts").await;
    assert_eq!(d.len(), 1);

    // The Drafts list and the reading page open it in the editor.
    let list = bob.get(&format!("/mail/box/{drafts}")).await;
    let reference = format!("{drafts}:{}", d[0]);
    assert!(
        list.body
            .contains(&format!("/mail/compose?draft={reference}")),
        "{}",
        list.body
    );
    let read = bob.get(&format!("/mail/box/{drafts}/{}", d[0])).await;
    assert!(read.body.contains("id=\"edit-draft\""), "{}", read.body);

    let form = bob.get(&format!("/mail/compose?draft={reference}")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(
        form.body
            .contains("value=\"Carol &#60;carol@localhost&#62;\"")
            || form
                .body
                .contains("value=\"Carol &lt;carol@localhost&gt;\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("value=\"dave@example.org\""));
    assert!(form.body.contains("value=\"erin@example.org\""), "Bcc kept");
    assert!(form.body.contains("value=\"Re: Plans\""));
    assert!(form.body.contains("Tuesday?"));
    assert_eq!(field(&form.body, "draft"), reference);
    assert_eq!(field(&form.body, "reply_of"), reply_of);
    assert_eq!(field(&form.body, "in_reply_to"), "plans-1@example.net");
    assert!(
        form.body.contains("name=\"keep\" value=\"0\" checked"),
        "{}",
        form.body
    );
    assert!(form.body.contains("agenda.txt"));

    // Saved again: one draft, the new one, with the attachment still there.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost"),
                ("bcc", "erin@example.org"),
                ("subject", "Re: Plans (v2)"),
                ("body", "Tuesday at noon?"),
                ("in_reply_to", "plans-1@example.net"),
                ("reply_of", &reply_of),
                ("draft", &reference),
                ("keep", "0"),
                ("action", "draft"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (_, d2) = uids(&store, "bob@localhost", "Drafts").await;
    assert_eq!(d2.len(), 1);
    assert_ne!(d2[0], d[0]);
    let raw = body_of(&store, "bob@localhost", "Drafts", d2[0]).await;
    assert!(raw.contains("Subject: Re: Plans (v2)"), "{raw}");
    assert!(raw.contains("agenda.txt") && raw.contains("Bcc: "), "{raw}");

    // Autosave answers the new reference; still one draft.
    let reference = format!("{drafts}:{}", d2[0]);
    let saved = bob
        .post_multipart(
            "/mail/compose/autosave",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost, half-typed"),
                ("subject", "Re: Plans (v3)"),
                ("body", "Tuesday at one?"),
                ("reply_of", &reply_of),
                ("draft", &reference),
                ("keep", "0"),
            ],
            &[("attachment", "map.txt", "text/plain", b"here\n")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let json: serde_json::Value = serde_json::from_str(&saved.body).unwrap();
    let (_, d3) = uids(&store, "bob@localhost", "Drafts").await;
    assert_eq!(d3.len(), 1);
    let reference = json["draft"].as_str().unwrap().to_string();
    assert_eq!(reference, format!("{drafts}:{}", d3[0]));
    let names: Vec<&str> = json["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agenda.txt", "map.txt"]);
    assert!(json["saved"].as_i64().unwrap() > 0);
    // Without the token: refused, nothing saved.
    let forged = bob
        .post_multipart(
            "/mail/compose/autosave",
            &[("csrf", "forged"), ("subject", "x"), ("draft", &reference)],
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(uids(&store, "bob@localhost", "Drafts").await.1, d3);

    // Sent: the draft leaves Drafts, Carol gets both files, the original is answered, and the
    // people written to are collected as contacts.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "Carol Example <carol@localhost>"),
                ("bcc", "dave@localhost"),
                ("subject", "Re: Plans"),
                ("body", "Tuesday at one."),
                ("in_reply_to", "plans-1@example.net"),
                ("references", "plans-1@example.net"),
                ("reply_of", &reply_of),
                ("draft", &reference),
                ("keep", "0"),
                ("keep", "1"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(uids(&store, "bob@localhost", "Drafts").await.1.is_empty());
    let carol = harness::inbox_texts(&store, "carol@localhost").await;
    assert_eq!(carol.len(), 1);
    assert!(
        carol[0].contains("agenda.txt") && carol[0].contains("map.txt"),
        "{}",
        carol[0]
    );
    assert!(!carol[0].contains(drafts_header()), "{}", carol[0]);
    assert!(!carol[0].to_ascii_lowercase().contains("\r\nbcc:"));
    let flags = store.messages(&inbox).await.unwrap()[0].flags;
    assert!(flags.contains(Flags::ANSWERED));
    let contacts = store.all_contacts(bob_id).await.unwrap();
    let emails: Vec<&str> = contacts
        .iter()
        .map(|c| c.fields.emails[0].as_str())
        .collect();
    assert_eq!(emails, ["carol@localhost", "dave@localhost"]);
    assert!(contacts.iter().all(|c| c.collected));
    assert_eq!(contacts[0].fields.name, "Carol Example");
    server.running.shutdown().await;
}

fn drafts_header() -> &'static str {
    "X-Mailroom-Reply-Of"
}

#[tokio::test]
async fn attachments_are_kept_when_the_form_has_an_error() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@@localhost"),
                ("subject", "The report"),
                ("body", "Attached."),
                ("action", "send"),
            ],
            &[(
                "attachment",
                "report.pdf",
                "application/pdf",
                b"%PDF-1.4 fake\n",
            )],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"to-error\""));
    assert!(page.body.contains("report.pdf"), "{}", page.body);
    assert!(page.body.contains("name=\"keep\" value=\"0\" checked"));
    assert!(!page.body.contains("choose them again"));
    let reference = field(&page.body, "draft");
    assert!(!reference.is_empty());
    // Fixed and sent: Carol has the file; the holding draft is gone.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost"),
                ("subject", "The report"),
                ("body", "Attached."),
                ("draft", &reference),
                ("keep", "0"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let carol = harness::inbox_texts(&store, "carol@localhost").await;
    assert_eq!(carol.len(), 1);
    assert!(carol[0].contains("report.pdf"), "{}", carol[0]);
    assert!(
        carol[0].contains("JVBERi0xLjQgZmFrZQo="),
        "the file's bytes: {}",
        carol[0]
    );
    assert!(uids(&store, "bob@localhost", "Drafts").await.1.is_empty());
    // A recipient the server refuses (no such local mailbox) keeps the files too.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "nobody@localhost"),
                ("subject", "x"),
                ("body", "x"),
                ("action", "send"),
            ],
            &[("attachment", "notes.txt", "text/plain", b"notes\n")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("notes.txt"), "{}", page.body);
    assert_eq!(uids(&store, "bob@localhost", "Drafts").await.1.len(), 1);
    server.running.shutdown().await;
}

#[tokio::test]
async fn rich_text_is_sanitized_and_sent_with_a_text_part() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;
    let html = "<div>Hello <b>world</b></div><ul><li>one</li><li>two</li></ul>\
                <img src=x onerror=\"alert(1)\"><script>alert(2)</script>\
                <blockquote>quoted</blockquote><a href=\"https://example.org/\" onclick=\"x()\">site</a>";
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("to", "carol@localhost"),
                ("subject", "Rich"),
                ("body", "ignored: the text part is written from the HTML"),
                ("body_html", html),
                ("mode", "rich"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let m = &harness::inbox_texts(&store, "carol@localhost").await[0];
    assert!(m.contains("multipart/alternative"), "{m}");
    let parsed = mail_parser::MessageParser::default()
        .parse(m.as_bytes())
        .unwrap();
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert_eq!(
        text.trim_end(),
        "Hello world\n- one\n- two\n> quoted\nsite <https://example.org/>"
    );
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("<b>world</b>") && html.contains("<ul>"),
        "{html}"
    );
    assert!(html.contains("<blockquote>"), "{html}");
    for bad in ["onerror", "script", "onclick", "alert"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    // A rich draft reopens in the rich editor with its HTML.
    let page = bob
        .post_multipart(
            "/mail/send",
            &[
                ("csrf", &csrf),
                ("subject", "Rich draft"),
                ("body_html", "<p><i>draft</i></p>"),
                ("mode", "rich"),
                ("action", "draft"),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (drafts, d) = uids(&store, "bob@localhost", "Drafts").await;
    let form = bob
        .get(&format!("/mail/compose?draft={drafts}:{}", d[0]))
        .await;
    assert_eq!(field(&form.body, "mode"), "rich");
    assert!(
        form.body.contains("&#60;i&#62;draft&#60;/i&#62;")
            || form.body.contains("&lt;i&gt;draft&lt;/i&gt;"),
        "{}",
        form.body
    );
    server.running.shutdown().await;
}

const VCF: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\nEMAIL;TYPE=INTERNET:ann@example.org\r\n\
EMAIL:ann.lee@work.exa\r\n mple\r\nTEL:+1 555 0100\r\nORG:Acme\\, Inc\r\nNOTE:met at the fair\\nlikes tea\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:4.0\r\nFN:No Address\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bad Address\r\nEMAIL:not-an-address\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Annabel Smith\r\nEMAIL:bel@example.net\r\nEND:VCARD\r\n";

#[tokio::test]
async fn contacts_suggest_import_export_and_stay_private() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut bob, csrf) = signed_in(&server, "bob@localhost").await;

    let page = bob
        .post_multipart(
            "/mail/contacts/import",
            &[("csrf", &csrf)],
            &[("file", "contacts.vcf", "text/vcard", VCF.as_bytes())],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("2 added, 0 updated, 2 not imported"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Card 2 (No Address): it has no e-mail address.")
    );
    assert!(page.body.contains("Card 3 (Bad Address):"), "{}", page.body);

    // Typed by hand, then edited.
    let page = bob
        .post(
            "/mail/contacts",
            &[
                ("csrf", &csrf),
                ("name", "Zed"),
                ("emails", "zed@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let refused = bob
        .post(
            "/mail/contacts",
            &[("csrf", &csrf), ("name", "Nobody"), ("emails", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("needs an e-mail address"));

    let suggest = |q: &str| format!("/mail/contacts/suggest?q={q}");
    let found: serde_json::Value =
        serde_json::from_str(&bob.get(&suggest("ann")).await.body).unwrap();
    let values: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "Ann Lee <ann@example.org>",
            "Ann Lee <ann.lee@work.example>",
            "Annabel Smith <bel@example.net>"
        ]
    );
    // A word of the name, an address prefix, never a substring in the middle.
    let by_word: serde_json::Value =
        serde_json::from_str(&bob.get(&suggest("smi")).await.body).unwrap();
    assert_eq!(by_word[0]["email"], "bel@example.net");
    let by_address: serde_json::Value =
        serde_json::from_str(&bob.get(&suggest("ZED%40")).await.body).unwrap();
    assert_eq!(by_address[0]["email"], "zed@example.com");
    let middle: serde_json::Value =
        serde_json::from_str(&bob.get(&suggest("nabel")).await.body).unwrap();
    assert_eq!(middle, serde_json::json!([]));
    let wildcard: serde_json::Value =
        serde_json::from_str(&bob.get(&suggest("%25")).await.body).unwrap();
    assert_eq!(wildcard, serde_json::json!([]));

    // Export, then import into Carol's book: the same contacts.
    let export = bob.get("/mail/contacts/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/vcard")
    );
    assert!(export.body.contains("ORG:Acme\\, Inc"), "{}", export.body);
    assert!(export.body.contains("NOTE:met at the fair\\nlikes tea"));
    let (mut carol, carol_csrf) = signed_in(&server, "carol@localhost").await;
    // Carol sees none of Bob's.
    let empty: serde_json::Value =
        serde_json::from_str(&carol.get(&suggest("ann")).await.body).unwrap();
    assert_eq!(empty, serde_json::json!([]));
    let list = carol.get("/mail/contacts").await;
    assert!(!list.body.contains("ann@example.org"));
    let bob_id = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap()
        .id;
    let bobs = store.all_contacts(bob_id).await.unwrap();
    let ann = bobs.iter().find(|c| c.fields.name == "Ann Lee").unwrap();
    assert_eq!(
        carol
            .get(&format!("/mail/contacts/{}", ann.id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let page = carol
        .post(
            &format!("/mail/contacts/{}/delete", ann.id),
            &[("csrf", &carol_csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);

    let page = carol
        .post_multipart(
            "/mail/contacts/import",
            &[("csrf", &carol_csrf)],
            &[("file", "bob.vcf", "text/vcard", export.body.as_bytes())],
        )
        .await;
    assert!(
        page.body.contains("3 added, 0 updated, 0 not imported"),
        "{}",
        page.body
    );
    let carol_id = store
        .account_by_address("carol@localhost")
        .await
        .unwrap()
        .unwrap()
        .id;
    let carols = store.all_contacts(carol_id).await.unwrap();
    let strip = |v: &[mailroom::store::Contact]| -> Vec<mailroom::store::ContactFields> {
        v.iter().map(|c| c.fields.clone()).collect()
    };
    assert_eq!(strip(&carols), strip(&bobs));
    // Importing again updates rather than duplicates.
    let page = carol
        .post_multipart(
            "/mail/contacts/import",
            &[("csrf", &carol_csrf)],
            &[("file", "bob.vcf", "text/vcard", export.body.as_bytes())],
        )
        .await;
    assert!(page.body.contains("0 added, 3 updated"), "{}", page.body);

    // Edit and delete one's own.
    let edit = bob.get(&format!("/mail/contacts/{}", ann.id)).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("value=\"Ann Lee\"") && edit.body.contains("ann.lee@work.example"));
    let page = bob
        .post(
            &format!("/mail/contacts/{}", ann.id),
            &[
                ("csrf", &csrf),
                ("name", "Ann Lee-Park"),
                ("emails", "ann@example.org"),
                ("phones", "+1 555 0199"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let edited = store.contact(bob_id, ann.id).await.unwrap().unwrap();
    assert_eq!(edited.fields.name, "Ann Lee-Park");
    assert_eq!(edited.fields.phones, ["+1 555 0199"]);
    let page = bob
        .post(
            &format!("/mail/contacts/{}/delete", ann.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(store.contact(bob_id, ann.id).await.unwrap().is_none());
    // Forged: refused.
    let page = bob
        .post(
            "/mail/contacts",
            &[("csrf", "forged"), ("emails", "x@example.org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // Deleting the account deletes its contacts.
    store.remove_account("carol@localhost").await.unwrap();
    assert!(store.all_contacts(carol_id).await.unwrap().is_empty());
    server.running.shutdown().await;
}

#[tokio::test]
async fn contacts_go_with_an_account_export_and_come_back_with_its_import() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    let carol = store
        .account_by_address("carol@localhost")
        .await
        .unwrap()
        .unwrap();
    store
        .add_contact(
            bob.id,
            &mailroom::store::ContactFields {
                name: "Ann; Lee".into(),
                emails: vec!["ann@example.org".into(), "ann2@example.org".into()],
                phones: vec!["+1 555 0100".into()],
                org: "Acme".into(),
                note: "two\nlines".into(),
            },
        )
        .await
        .unwrap();
    store
        .collect_contacts(bob.id, &[(String::new(), "zed@example.com".into())])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bob");
    let summary = mailroom::mailbox_files::export(&store, "bob@localhost", &out)
        .await
        .unwrap();
    assert_eq!(summary.contacts, 2);
    let vcf = std::fs::read_to_string(out.join("contacts.vcf")).unwrap();
    assert!(
        vcf.contains("FN:Ann\\; Lee") && vcf.contains("NOTE:two\\nlines"),
        "{vcf}"
    );
    let summary =
        mailroom::mailbox_files::import(&store, "carol@localhost", &out, None, &mut |_| {})
            .await
            .unwrap();
    assert_eq!(summary.contacts, 2, "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    let fields = |v: Vec<mailroom::store::Contact>| -> Vec<mailroom::store::ContactFields> {
        v.into_iter().map(|c| c.fields).collect()
    };
    assert_eq!(
        fields(store.all_contacts(carol.id).await.unwrap()),
        fields(store.all_contacts(bob.id).await.unwrap())
    );
    // A backup holds them: it is a copy of the one database.
    let backup = dir.path().join("backup.db");
    mailroom::backup::backup(&store, &backup).await.unwrap();
    let copy = mailroom::store::Store::open(&backup).await.unwrap();
    assert_eq!(copy.contact_count(bob.id).await.unwrap(), 2);
    copy.close().await;
    server.running.shutdown().await;
}
