//! Sieve at delivery (issue 22), through the whole server: fileinto (and `:create`),
//! redirect through the queue with an SRS sender (and `:copy`), vacation's suppression rules
//! and its once-per-period rule, reject's `550` and its report when another recipient took
//! the message, a broken script keeping the message in the INBOX with the error recorded, and
//! the same rules on the submission path.

use std::net::IpAddr;
use std::time::Duration;

use mailroom::store::{QueuedMessage, Store};

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, start_with};
use crate::smtp::connect;

/// example.org with alice and bob; remote.test's MX is a closed port on loopback, so queued
/// mail stays queued (deferred) for the test to read.
async fn server() -> TestServer {
    let zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 3]));
    let dns = dns_server::start(zone).await;
    let t = start_with(move |c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
    })
    .await;
    account(&t.running.store, "alice@example.org", 0).await;
    account(&t.running.store, "bob@example.org", 0).await;
    t
}

/// Makes `source` alice's active script.
async fn rules(store: &Store, address: &str, source: &str) -> i64 {
    let id = store.account_by_address(address).await.unwrap().unwrap().id;
    let compiled = mailroom::sieve::compile(source)
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
        .to_stored();
    store
        .put_sieve(id, "test", source, &compiled)
        .await
        .unwrap()
        .unwrap();
    store
        .set_active_sieve(id, Some("test"))
        .await
        .unwrap()
        .unwrap();
    id
}

fn mail(from: &str, to: &str, subject: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{}@remote.test>\r\n\r\nHello.\r\n",
        subject.replace(' ', ".")
    )
}

/// Sends `raw` over port 25; the reply to the end of DATA.
async fn send(t: &TestServer, from: &str, rcpts: &[&str], raw: &str) -> (u16, String) {
    let mut c = connect(t, "smtp").await;
    c.expect("EHLO client.remote.test", 250, "").await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250, "").await;
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250, "").await;
    }
    c.expect("DATA", 354, "").await;
    c.send(format!("{raw}.\r\n").as_bytes()).await;
    c.reply().await
}

/// The subjects in `address`'s folder `name` (None: no such folder).
async fn subjects(store: &Store, address: &str, name: &str) -> Option<Vec<String>> {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let mailbox = store.mailbox(a.id, name).await.unwrap()?;
    let mut out = Vec::new();
    for m in store.messages(&mailbox).await.unwrap() {
        let raw = store.message_body(&mailbox, m.uid).await.unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let subject = raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        out.push(subject);
    }
    Some(out)
}

/// The queue, waiting up to 5 s for it to hold `n` messages (replies go out after the 250).
async fn queue_of(store: &Store, n: usize) -> Vec<QueuedMessage> {
    for _ in 0..100 {
        let q = store.queue_list().await.unwrap();
        if q.len() >= n {
            return q;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.queue_list().await.unwrap()
}

async fn queued_raw(store: &Store, id: i64) -> String {
    let (_, raw, _, _) = store.queued_message(id).await.unwrap().unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn fileinto_files_and_a_missing_folder_keeps_the_message_in_the_inbox() {
    let t = server().await;
    let store = &t.running.store;
    let alice = rules(
        store,
        "alice@example.org",
        r#"require ["fileinto", "mailbox", "imap4flags"];
           if header :contains "subject" "invoice" { fileinto :create :flags "\\Seen" "Invoices"; stop; }
           if header :contains "subject" "school" { fileinto "School"; }"#,
    )
    .await;
    let (code, text) = send(
        &t,
        "billing@remote.test",
        &["alice@example.org"],
        &mail(
            "billing@remote.test",
            "alice@example.org",
            "Your invoice 42",
            "",
        ),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(
        subjects(store, "alice@example.org", "Invoices").await,
        Some(vec!["Your invoice 42".to_string()])
    );
    let invoices = store.mailbox(alice, "Invoices").await.unwrap().unwrap();
    let meta = store.messages(&invoices).await.unwrap();
    assert!(meta[0].flags.contains(mailroom::store::Flags::SEEN));
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec![])
    );

    // No folder School and no :create: the script fails, the message is kept, the error is
    // recorded for the rules page.
    let (code, _) = send(
        &t,
        "teacher@remote.test",
        &["alice@example.org"],
        &mail(
            "teacher@remote.test",
            "alice@example.org",
            "school trip",
            "",
        ),
    )
    .await;
    assert_eq!(code, 250);
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["school trip".to_string()])
    );
    let error = store
        .sieve_error(alice)
        .await
        .unwrap()
        .expect("an error recorded");
    assert!(error.message.contains("School"), "{error:?}");
    // Bob has no script: his INBOX as ever.
    let (code, _) = send(
        &t,
        "billing@remote.test",
        &["bob@example.org"],
        &mail(
            "billing@remote.test",
            "bob@example.org",
            "Your invoice 43",
            "",
        ),
    )
    .await;
    assert_eq!(code, 250);
    assert_eq!(
        subjects(store, "bob@example.org", "INBOX").await,
        Some(vec!["Your invoice 43".to_string()])
    );
}

#[tokio::test]
async fn redirect_goes_through_the_queue_with_an_srs_sender() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"require ["copy"];
           if header :contains "subject" "keep" { redirect :copy "carol@remote.test"; }
           else { redirect "carol@remote.test"; }"#,
    )
    .await;
    let (code, text) = send(
        &t,
        "sender@remote.test",
        &["alice@example.org"],
        &mail("sender@remote.test", "alice@example.org", "gone", ""),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let q = queue_of(store, 1).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients[0].address, "carol@remote.test");
    assert!(q[0].sender.starts_with("SRS0="), "{}", q[0].sender);
    assert!(q[0].sender.ends_with("@example.org"), "{}", q[0].sender);
    // Redirected without :copy: no copy kept.
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec![])
    );
    let raw = queued_raw(store, q[0].id).await;
    assert!(!raw.contains("X-Mailroom-Spam"), "{raw}");

    let (code, _) = send(
        &t,
        "sender@remote.test",
        &["alice@example.org"],
        &mail("sender@remote.test", "alice@example.org", "keep this", ""),
    )
    .await;
    assert_eq!(code, 250);
    assert_eq!(queue_of(store, 2).await.len(), 2);
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["keep this".to_string()])
    );
}

#[tokio::test]
async fn redirect_outside_obeys_the_domain_and_inside_delivers_directly() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"if header :contains "subject" "inside" { redirect "bob@example.org"; }
           else { redirect "carol@remote.test"; }"#,
    )
    .await;
    // A local address: straight into bob's INBOX, nothing queued.
    let (code, _) = send(
        &t,
        "sender@remote.test",
        &["alice@example.org"],
        &mail("sender@remote.test", "alice@example.org", "inside", ""),
    )
    .await;
    assert_eq!(code, 250);
    assert_eq!(
        subjects(store, "bob@example.org", "INBOX").await,
        Some(vec!["inside".to_string()])
    );
    assert!(store.queue_list().await.unwrap().is_empty());

    // The domain forbids forwarding outside: the message is kept, the error recorded.
    store
        .set_domain_allows_external_forward("example.org", false)
        .await
        .unwrap();
    let (code, _) = send(
        &t,
        "sender@remote.test",
        &["alice@example.org"],
        &mail("sender@remote.test", "alice@example.org", "outside", ""),
    )
    .await;
    assert_eq!(code, 250);
    assert!(store.queue_list().await.unwrap().is_empty());
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["outside".to_string()])
    );
}

#[tokio::test]
async fn vacation_replies_once_per_period_and_never_to_lists_or_bulk() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"require ["vacation"];
           vacation :days 7 :subject "Away" "I am away until Monday.";"#,
    )
    .await;
    let first = mail("friend@remote.test", "alice@example.org", "hello one", "");
    assert_eq!(
        send(&t, "friend@remote.test", &["alice@example.org"], &first)
            .await
            .0,
        250
    );
    let q = queue_of(store, 1).await;
    assert_eq!(q.len(), 1, "one reply");
    assert_eq!(q[0].sender, "", "a reply goes out with the null sender");
    assert_eq!(q[0].recipients[0].address, "friend@remote.test");
    let reply = queued_raw(store, q[0].id).await;
    for want in [
        "Auto-Submitted: auto-replied",
        "Subject: Away",
        "In-Reply-To: <hello.one@remote.test>",
        "I am away until Monday.",
        "DKIM-Signature:",
    ] {
        assert!(reply.contains(want), "{want} in {reply}");
    }
    // The same sender again within the period: no second reply.
    let second = mail("friend@remote.test", "alice@example.org", "hello two", "");
    assert_eq!(
        send(&t, "friend@remote.test", &["alice@example.org"], &second)
            .await
            .0,
        250
    );
    // Lists, bulk, automatic mail, the null sender, and mail not addressed to alice: none.
    let silent = [
        (
            "news@remote.test",
            mail(
                "news@remote.test",
                "alice@example.org",
                "l",
                "List-Id: <news.remote.test>\r\n",
            ),
        ),
        (
            "bulk@remote.test",
            mail(
                "bulk@remote.test",
                "alice@example.org",
                "b",
                "Precedence: bulk\r\n",
            ),
        ),
        (
            "robot@remote.test",
            mail(
                "robot@remote.test",
                "alice@example.org",
                "a",
                "Auto-Submitted: auto-generated\r\n",
            ),
        ),
        (
            "",
            mail("mailer-daemon@remote.test", "alice@example.org", "n", ""),
        ),
        (
            "owner-list@remote.test",
            mail("owner-list@remote.test", "alice@example.org", "o", ""),
        ),
        (
            "cc@remote.test",
            mail("cc@remote.test", "someone@remote.test", "bcc", ""),
        ),
    ];
    for (from, raw) in &silent {
        assert_eq!(send(&t, from, &["alice@example.org"], raw).await.0, 250);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let q = store.queue_list().await.unwrap();
    assert_eq!(
        q.len(),
        1,
        "still one reply: {:?}",
        q.iter()
            .map(|m| &m.recipients[0].address)
            .collect::<Vec<_>>()
    );
    // Every message is in the INBOX all the same.
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX")
            .await
            .unwrap()
            .len(),
        2 + silent.len()
    );
}

#[tokio::test]
async fn reject_refuses_in_smtp_or_reports_when_another_recipient_took_it() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"require ["reject"];
           if address :is "from" "offers@remote.test" { reject "No offers, please."; }"#,
    )
    .await;
    let raw = mail("offers@remote.test", "alice@example.org", "offer", "");
    let (code, text) = send(&t, "offers@remote.test", &["alice@example.org"], &raw).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("5.7.1") && text.contains("No offers, please."),
        "{text}"
    );
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec![])
    );

    // Bob takes it: the 250 stands and alice's refusal goes to the sender as a report.
    let raw = mail("offers@remote.test", "alice@example.org", "offer two", "");
    let (code, text) = send(
        &t,
        "offers@remote.test",
        &["alice@example.org", "bob@example.org"],
        &raw,
    )
    .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(
        subjects(store, "bob@example.org", "INBOX").await,
        Some(vec!["offer two".to_string()])
    );
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec![])
    );
    let q = queue_of(store, 1).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients[0].address, "offers@remote.test");
    assert_eq!(q[0].sender, "", "a report goes out with the null sender");
    let report = queued_raw(store, q[0].id).await;
    assert!(report.contains("disposition-notification"), "{report}");
    assert!(report.contains("No offers, please."), "{report}");
}

#[tokio::test]
async fn a_script_that_does_not_compile_keeps_mail_in_the_inbox() {
    let t = server().await;
    let store = &t.running.store;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    // What another version stored and this one cannot read, with a source that does not
    // compile either.
    store
        .put_sieve(alice, "old", "if header :bogus { stop", "{\"version\":0}")
        .await
        .unwrap()
        .unwrap();
    store
        .set_active_sieve(alice, Some("old"))
        .await
        .unwrap()
        .unwrap();
    let (code, _) = send(
        &t,
        "sender@remote.test",
        &["alice@example.org"],
        &mail("sender@remote.test", "alice@example.org", "still here", ""),
    )
    .await;
    assert_eq!(code, 250);
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["still here".to_string()])
    );
    let error = store.sieve_error(alice).await.unwrap().expect("recorded");
    assert!(error.message.contains("does not compile"), "{error:?}");
}

#[tokio::test]
async fn rules_run_for_mail_from_local_users_too() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"require ["fileinto", "mailbox"];
           if address :is "from" "bob@example.org" { fileinto :create "From Bob"; }"#,
    )
    .await;
    let bob = store
        .account_by_address("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    let submission =
        mailroom::submission::Submission::new(store.clone(), "mail.example.org".into());
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let message =
        b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: lunch\r\n\r\nhi\r\n";
    submission
        .submit(
            &bob,
            "bob@example.org",
            &[mailroom::submission::Recipient::Local(
                vec![alice.id],
                vec![],
            )],
            b"",
            message,
        )
        .await
        .unwrap();
    assert_eq!(
        subjects(store, "alice@example.org", "From Bob").await,
        Some(vec!["lunch".to_string()])
    );
}

#[tokio::test]
async fn a_changed_script_applies_to_the_next_message() {
    let t = server().await;
    let store = &t.running.store;
    // No script yet: INBOX (and the account's "no script" is remembered).
    let send_one = |subject: &'static str| {
        let raw = mail("sender@remote.test", "alice@example.org", subject, "");
        let t = &t;
        async move {
            let (code, text) = send(t, "sender@remote.test", &["alice@example.org"], &raw).await;
            assert_eq!(code, 250, "{text}");
        }
    };
    send_one("first").await;
    rules(
        store,
        "alice@example.org",
        r#"require ["fileinto", "mailbox"]; fileinto :create "A";"#,
    )
    .await;
    send_one("second").await;
    rules(
        store,
        "alice@example.org",
        r#"require ["fileinto", "mailbox"]; fileinto :create "B";"#,
    )
    .await;
    send_one("third").await;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    store.set_active_sieve(alice, None).await.unwrap().unwrap();
    send_one("fourth").await;
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["first".to_string(), "fourth".to_string()])
    );
    assert_eq!(
        subjects(store, "alice@example.org", "A").await,
        Some(vec!["second".to_string()])
    );
    assert_eq!(
        subjects(store, "alice@example.org", "B").await,
        Some(vec!["third".to_string()])
    );
}

#[tokio::test]
async fn a_redirect_that_comes_back_is_kept_not_sent_again() {
    let t = server().await;
    let store = &t.running.store;
    rules(
        store,
        "alice@example.org",
        r#"redirect "carol@remote.test";"#,
    )
    .await;
    // Carol's server sent it back: it carries our mark for alice.
    let raw = mail(
        "carol@remote.test",
        "alice@example.org",
        "round trip",
        "X-Mailroom-Redirected-By: alice@example.org\r\n",
    );
    let (code, text) = send(&t, "carol@remote.test", &["alice@example.org"], &raw).await;
    assert_eq!(code, 250, "{text}");
    assert!(store.queue_list().await.unwrap().is_empty());
    assert_eq!(
        subjects(store, "alice@example.org", "INBOX").await,
        Some(vec!["round trip".to_string()])
    );
    // A first redirect leaves with the mark.
    let raw = mail("sender@remote.test", "alice@example.org", "first time", "");
    assert_eq!(
        send(&t, "sender@remote.test", &["alice@example.org"], &raw)
            .await
            .0,
        250
    );
    let q = queue_of(store, 1).await;
    assert_eq!(q.len(), 1);
    let sent = queued_raw(store, q[0].id).await;
    assert!(
        sent.contains("X-Mailroom-Redirected-By: alice@example.org\r\n"),
        "{sent}"
    );
}
