//! The spam filter's decision at the end of DATA (issue 21), through the whole server: the
//! explanation field (forged ones removed), Junk for a near-duplicate of what the user junked
//! (Bayes) and for a sender the user junked (reputation), the allow and block lists, the
//! reject threshold's `550`, recipients with different verdicts, DNS lists, and the filter off.

use std::time::Duration;

use mailroom::spam::verdict;
use mailroom::store::{DomainSpamPolicy, SpamHam, Store};

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, start_with};
use crate::imap::Client as ImapClient;
use crate::smtp::connect;

/// The whole server for example.org with `zone` as its DNS (so SPF, DKIM and DMARC are
/// checked against it), plain-text IMAP logins allowed, and alice and bob.
async fn server(zone: Zone) -> TestServer {
    let addr = dns_server::start(zone).await;
    let t = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![addr];
        c.auth.allow_plaintext = true;
    })
    .await;
    account(&t.running.store, "alice@example.org", 0).await;
    account(&t.running.store, "bob@example.org", 0).await;
    t
}

fn mail(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{}@test>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
}

/// Sends `raw` over port 25 from `from` to `rcpts`; the reply to the end of DATA.
async fn send(t: &TestServer, from: &str, rcpts: &[&str], raw: &str) -> (u16, String) {
    let mut c = connect(t, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250, "").await;
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250, "").await;
    }
    c.expect("DATA", 354, "").await;
    c.send(format!("{raw}.\r\n").as_bytes()).await;
    c.reply().await
}

/// The messages of `address`'s mailbox `name`, raw, oldest first.
async fn folder(store: &Store, address: &str, name: &str) -> Vec<String> {
    let a = store.account_by_address(address).await.unwrap().unwrap();
    let mailbox = store.mailbox(a.id, name).await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in store.messages(&mailbox).await.unwrap() {
        let raw = store.message_body(&mailbox, m.uid).await.unwrap();
        out.push(String::from_utf8_lossy(&raw).into_owned());
    }
    out
}

/// The values of the `X-Mailroom-Spam:` fields of a stored message.
fn spam_fields(raw: &str) -> Vec<String> {
    let header = raw.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for line in header.split("\r\n") {
        if let Some(value) = line.strip_prefix("X-Mailroom-Spam:") {
            out.push(value.to_string());
        } else if line.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut()
        {
            last.push_str(line);
        }
    }
    out
}

async fn imap(t: &TestServer, who: &str) -> ImapClient<tokio::net::TcpStream> {
    let mut c = crate::imap::connect(t).await;
    c.ok(&format!("LOGIN {who} secret")).await;
    c
}

async fn reputation_becomes(store: &Store, account: i64, key: &str, spam: u64) {
    for _ in 0..100 {
        let found = store.reputation(account, &[key.to_string()]).await.unwrap();
        if found.first().is_some_and(|(_, c)| c.spam >= spam) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{key} never reached {spam} spam");
}

async fn totals_become(store: &Store, account: i64, want: SpamHam) {
    for _ in 0..200 {
        if store.spam_counts(account, &[]).await.unwrap().0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("totals never reached {want:?}");
}

#[tokio::test]
async fn a_sender_the_user_junked_is_junked_next_time_and_every_copy_explains_itself() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    // A forged explanation from outside is removed; ours is the only one.
    let first = mail(
        "Deals <deals@promo.test>",
        "alice@example.org",
        "Great deals",
        "Buy now",
    );
    let forged = format!("X-Mailroom-Spam: score=-50.0; junk=5.0; verdict=inbox\r\n{first}");
    let (code, text) = send(&t, "deals@promo.test", &["alice@example.org"], &forged).await;
    assert_eq!(code, 250, "{text}");
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let fields = spam_fields(&inbox[0]);
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert!(fields[0].contains("verdict=inbox"), "{fields:?}");
    assert!(!fields[0].contains("-50"), "{fields:?}");
    assert!(
        fields[0].contains("keys=~from:deals@promo.test"),
        "{fields:?}"
    );
    let why = verdict::explain(&fields[0]).unwrap();
    assert!(why.starts_with("Not junk: score "), "{why}");

    // The user junks it: the sender's keys count against it at once.
    let mut c = imap(&t, "alice@example.org").await;
    c.ok("SELECT INBOX").await;
    c.ok("UID MOVE 1 Junk").await;
    reputation_becomes(store, alice.id, "~from:deals@promo.test", 3).await;

    // The next message from that sender goes to Junk, and says why.
    let second = mail(
        "Deals <deals@promo.test>",
        "alice@example.org",
        "More deals",
        "Different words entirely",
    );
    let (code, text) = send(&t, "deals@promo.test", &["alice@example.org"], &second).await;
    assert_eq!(code, 250, "{text}");
    let junk = folder(store, "alice@example.org", "Junk").await;
    assert_eq!(junk.len(), 2, "{junk:?}");
    let fields = spam_fields(&junk[1]);
    assert!(fields[0].contains("verdict=junk"), "{fields:?}");
    assert!(
        fields[0].contains("reputation=+6.0 (~from:deals@promo.test)"),
        "{fields:?}"
    );
    let why = verdict::explain(&fields[0]).unwrap();
    assert!(
        why.starts_with("Junked: ") && why.contains("sender history (~from:deals@promo.test) +6.0"),
        "{why}"
    );
    assert!(folder(store, "alice@example.org", "INBOX").await.is_empty());
    // Moving it back out is the user's word the other way: the sender is no longer junked.
    c.ok("SELECT Junk").await;
    c.ok("UID MOVE 1:* INBOX").await;
    for _ in 0..100 {
        let r = store
            .reputation(alice.id, &["~from:deals@promo.test".into()])
            .await
            .unwrap();
        if r.first().is_some_and(|(_, n)| n.ham >= n.spam) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = mail(
        "Deals <deals@promo.test>",
        "alice@example.org",
        "Third",
        "Hello",
    );
    send(&t, "deals@promo.test", &["alice@example.org"], &third).await;
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    assert!(
        inbox.iter().any(|m| m.contains("Subject: Third")),
        "{inbox:?}"
    );
}

#[tokio::test]
async fn a_near_duplicate_of_what_the_user_junked_lands_in_junk() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let spam_words = [
        "casino",
        "jackpot",
        "winner",
        "bonus",
        "viagra",
        "pills",
        "cheap",
        "offer",
        "unsubscribe",
        "click",
        "bitcoin",
        "lottery",
    ];
    let ham_words = [
        "meeting",
        "agenda",
        "project",
        "report",
        "quarterly",
        "budget",
        "review",
        "minutes",
        "schedule",
        "team",
        "draft",
        "thanks",
    ];
    let text = |words: &[&str], i: usize| {
        (0..30)
            .map(|k| words[(i * 7 + k * 5) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Twenty of each in the INBOX, each from its own sender (so reputation says nothing).
    for i in 0..20 {
        let spam = mail(
            &format!("s{i}@spam{i}.test"),
            "alice@example.org",
            &format!("You are a winner {i}"),
            &text(&spam_words, i),
        );
        send(
            &t,
            &format!("s{i}@spam{i}.test"),
            &["alice@example.org"],
            &spam,
        )
        .await;
        let ham = mail(
            &format!("h{i}@work{i}.test"),
            "alice@example.org",
            &format!("Project meeting {i}"),
            &text(&ham_words, i),
        );
        send(
            &t,
            &format!("h{i}@work{i}.test"),
            &["alice@example.org"],
            &ham,
        )
        .await;
    }
    // The user junks the spam and marks the rest not junk ($NotJunk, as Thunderbird does).
    let mut c = imap(&t, "alice@example.org").await;
    c.ok("SELECT INBOX").await;
    let uids = |first: u32| {
        (0..20)
            .map(|i| (first + 2 * i).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    c.ok(&format!("UID STORE {} +FLAGS ($NotJunk)", uids(2)))
        .await;
    c.ok(&format!("UID MOVE {} Junk", uids(1))).await;
    totals_become(store, alice.id, SpamHam { spam: 20, ham: 20 }).await;

    // A near-duplicate from a new sender goes to Junk on Bayes; a work message does not.
    let spam = mail(
        "new@fresh.test",
        "alice@example.org",
        "You are a winner again",
        &text(&spam_words, 3),
    );
    send(&t, "new@fresh.test", &["alice@example.org"], &spam).await;
    let ham = mail(
        "colleague@fresh2.test",
        "alice@example.org",
        "Project meeting moved",
        &text(&ham_words, 4),
    );
    send(&t, "colleague@fresh2.test", &["alice@example.org"], &ham).await;
    let junk = folder(store, "alice@example.org", "Junk").await;
    let caught = junk
        .iter()
        .find(|m| m.contains("Subject: You are a winner again"))
        .expect("the near-duplicate is in Junk");
    let field = &spam_fields(caught)[0];
    assert!(field.contains("verdict=junk"), "{field}");
    assert!(bayes(field) > 0.9, "{field}");
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let kept = inbox
        .iter()
        .find(|m| m.contains("Subject: Project meeting moved"))
        .expect("the work message is in the INBOX");
    let field = &spam_fields(kept)[0];
    assert!(
        field.contains("verdict=inbox") && bayes(field) < 0.1,
        "{field}"
    );
}

/// The Bayes probability an `X-Mailroom-Spam:` value records.
fn bayes(field: &str) -> f64 {
    let at = field.find("bayes=").expect("a Bayes verdict") + "bayes=".len();
    field[at..]
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a probability")
}

#[tokio::test]
async fn lists_thresholds_the_550_and_recipients_who_disagree() {
    let zone = Zone::default();
    // friend.example authenticates: SPF allows the client, DMARC is published.
    zone.txt("friend.example", "v=spf1 ip4:127.0.0.1 -all");
    zone.txt("_dmarc.friend.example", "v=DMARC1; p=none");
    let t = server(zone).await;
    let store = &t.running.store;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let bob = store
        .account_by_address("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    // Alice junks everything that scores at all; she allows friend.example and blocks
    // pest.example. Unverified, an allowed name would be worth nothing: forgers use them.
    store
        .set_account_junk_threshold(alice.id, Some(0.1))
        .await
        .unwrap();
    store
        .set_spam_list_entry(alice.id, "friend.example", true)
        .await
        .unwrap();
    store
        .set_spam_list_entry(alice.id, "forged.example", true)
        .await
        .unwrap();
    store
        .set_spam_list_entry(alice.id, "pest.example", false)
        .await
        .unwrap();
    let to_alice = ["alice@example.org"];
    for (from, subject) in [
        ("pal@friend.example", "from a friend"),
        ("someone@other.example", "from someone"),
        ("x@pest.example", "from a pest"),
        ("x@forged.example", "from a forger"),
    ] {
        let raw = mail(from, "alice@example.org", subject, "hello");
        let (code, text) = send(&t, from, &to_alice, &raw).await;
        assert_eq!(code, 250, "{text}");
    }
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let junk = folder(store, "alice@example.org", "Junk").await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("from a friend"), "{inbox:?}");
    assert!(spam_fields(&inbox[0])[0].contains("list=allow friend.example"));
    assert_eq!(junk.len(), 3, "{junk:?}");
    let pest = junk.iter().find(|m| m.contains("from a pest")).unwrap();
    assert!(spam_fields(pest)[0].contains("list=block pest.example"));
    let why = verdict::explain(&spam_fields(pest)[0]).unwrap();
    assert!(why.contains("pest.example is on your block list"), "{why}");

    // The domain refuses what scores 1 or more: a 550 that says why, and nothing stored.
    store
        .set_domain_spam_policy(&DomainSpamPolicy {
            domain: "example.org".into(),
            enabled: true,
            junk: Some(0.5),
            reject: Some(1.0),
        })
        .await
        .unwrap();
    let raw = mail("a@other.example", "alice@example.org", "refused", "hello");
    let (code, text) = send(&t, "a@other.example", &to_alice, &raw).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1") && text.contains("spam"), "{text}");
    assert_eq!(folder(store, "alice@example.org", "Junk").await.len(), 3);
    let rejected = store.event_totals(0).await.unwrap();
    assert!(
        rejected
            .iter()
            .any(|(k, n)| k == "rejected:spam" && *n == 1),
        "{rejected:?}"
    );

    // Two recipients who disagree: bob allows the sender, so the message is taken, and
    // alice, whose filter would refuse it, gets it in Junk. Each copy explains itself.
    store
        .set_spam_list_entry(bob.id, "other.example", true)
        .await
        .unwrap();
    store
        .set_domain_spam_policy(&DomainSpamPolicy {
            domain: "example.org".into(),
            enabled: true,
            junk: Some(0.5),
            reject: Some(1.0),
        })
        .await
        .unwrap();
    let raw = mail(
        "b@other.example",
        "alice@example.org, bob@example.org",
        "both",
        "hi",
    );
    let (code, text) = send(
        &t,
        "b@other.example",
        &["alice@example.org", "bob@example.org"],
        &raw,
    )
    .await;
    // bob's allow entry is unverified mail (no SPF for other.example): it does not count,
    // so both refuse.
    assert_eq!(code, 550, "{text}");
    // Now bob allows a verified sender, and alice's domain refuses anything at all: bob
    // takes it, alice gets it in Junk.
    store
        .set_spam_list_entry(bob.id, "friend.example", true)
        .await
        .unwrap();
    store
        .set_account_junk_threshold(alice.id, None)
        .await
        .unwrap();
    store
        .set_domain_spam_policy(&DomainSpamPolicy {
            domain: "example.org".into(),
            enabled: true,
            junk: Some(-6.0),
            reject: Some(-5.0),
        })
        .await
        .unwrap();
    let raw = mail(
        "pal@friend.example",
        "alice@example.org, bob@example.org",
        "both",
        "hi",
    );
    store
        .remove_spam_list_entry(alice.id, "friend.example")
        .await
        .unwrap();
    let (code, text) = send(
        &t,
        "pal@friend.example",
        &["alice@example.org", "bob@example.org"],
        &raw,
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let bob_inbox = folder(store, "bob@example.org", "INBOX").await;
    assert!(spam_fields(&bob_inbox[0])[0].contains("verdict=inbox"));
    let alice_junk = folder(store, "alice@example.org", "Junk").await;
    let copy = alice_junk
        .iter()
        .find(|m| m.contains("Subject: both"))
        .unwrap();
    assert!(spam_fields(copy)[0].contains("verdict=reject"), "{copy}");

    // Off for the domain: no verdict, no field, INBOX.
    store
        .set_domain_spam_policy(&DomainSpamPolicy {
            domain: "example.org".into(),
            enabled: false,
            junk: None,
            reject: None,
        })
        .await
        .unwrap();
    let raw = mail("x@pest.example", "alice@example.org", "filter off", "hi");
    assert_eq!(send(&t, "x@pest.example", &to_alice, &raw).await.0, 250);
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let off = inbox.iter().find(|m| m.contains("filter off")).unwrap();
    assert!(spam_fields(off).is_empty(), "{off}");
}

#[tokio::test]
async fn a_dns_list_that_lists_the_client_adds_its_weight() {
    let zone = Zone::default();
    zone.ip("1.0.0.127.bl.test", "127.0.0.2".parse().unwrap());
    let t = server(zone).await;
    let store = &t.running.store;
    store.set_spam_zone("bl.test", 4.5).await.unwrap();
    let raw = mail("a@listed.test", "alice@example.org", "listed", "hello");
    assert_eq!(
        send(&t, "a@listed.test", &["alice@example.org"], &raw)
            .await
            .0,
        250
    );
    let junk = folder(store, "alice@example.org", "Junk").await;
    assert_eq!(junk.len(), 1, "4.5 and the rest pass 5");
    let field = &spam_fields(&junk[0])[0];
    assert!(field.contains("dnsbl=+4.5 (bl.test)"), "{field}");
}

#[tokio::test]
async fn people_the_user_wrote_to_count_as_known_good() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    // Bob writes to pal@faraway.test through submission.
    let mut c = connect(&t, "submission").await;
    c.expect("EHLO laptop", 250, "").await;
    // "\0bob@example.org\0secret"
    c.expect("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=", 235, "")
        .await;
    c.expect("MAIL FROM:<bob@example.org>", 250, "").await;
    c.expect("RCPT TO:<pal@faraway.test>", 250, "").await;
    c.expect("DATA", 354, "").await;
    let raw = mail("bob@example.org", "pal@faraway.test", "hello pal", "hi");
    c.send(format!("{raw}.\r\n").as_bytes()).await;
    assert_eq!(c.reply().await.0, 250);
    // Counted in memory, written with the event counts.
    store.flush_events().await.unwrap();
    let reply = mail(
        "pal@faraway.test",
        "bob@example.org",
        "re: hello pal",
        "hi back",
    );
    let (code, text) = send(&t, "pal@faraway.test", &["bob@example.org"], &reply).await;
    assert_eq!(code, 250, "{text}");
    // (The queue bounces bob's message meanwhile: faraway.test does not exist.)
    let inbox = folder(store, "bob@example.org", "INBOX").await;
    let answer = inbox
        .iter()
        .find(|m| m.contains("Subject: re: hello pal"))
        .expect("the answer is in the INBOX");
    let field = &spam_fields(answer)[0];
    assert!(
        field.contains("reputation=-1.5 (sent:pal@faraway.test)"),
        "{field}"
    );
}

#[tokio::test]
async fn forged_fields_never_reach_a_mailbox() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    // A message that starts with a folded line: joined after our fields, it would continue
    // them. It is dropped, and with it what it tried to say.
    let raw = format!(
        "\t; verdict=inbox; list=allow bank.example; keys=dkim:victim.example\r\n\
         x-mailroom-spam : score=-9\r\n{}",
        mail("a@b.test", "alice@example.org", "folded", "hi")
    );
    assert_eq!(
        send(&t, "a@b.test", &["alice@example.org"], &raw).await.0,
        250
    );
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let fields = spam_fields(&inbox[0]);
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert!(
        !inbox[0].contains("victim") && !inbox[0].contains("-9"),
        "{}",
        inbox[0]
    );
    assert!(!inbox[0].contains("bank.example"), "{}", inbox[0]);

    // A user's submission to a colleague cannot plant one either.
    let mut c = connect(&t, "submission").await;
    c.expect("EHLO laptop", 250, "").await;
    // "\0bob@example.org\0secret"
    c.expect("AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=", 235, "")
        .await;
    c.expect("MAIL FROM:<bob@example.org>", 250, "").await;
    c.expect("RCPT TO:<alice@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    let planted = format!(
        "X-Mailroom-Spam: score=9.0; junk=5.0; verdict=junk;\r\n\tkeys=dkim:victim.example\r\n{}",
        mail("bob@example.org", "alice@example.org", "planted", "hi")
    );
    c.send(format!("{planted}.\r\n").as_bytes()).await;
    assert_eq!(c.reply().await.0, 250);
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let copy = inbox
        .iter()
        .find(|m| m.contains("Subject: planted"))
        .unwrap();
    assert!(spam_fields(copy).is_empty(), "{copy}");
}

#[tokio::test]
async fn an_allowed_envelope_sender_counts_only_when_spf_verified_it() {
    let zone = Zone::default();
    zone.txt("friend.example", "v=spf1 ip4:127.0.0.1 -all");
    let t = server(zone).await;
    let store = &t.running.store;
    let alice = store
        .account_by_address("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    store
        .set_account_junk_threshold(alice.id, Some(0.1))
        .await
        .unwrap();
    store
        .set_spam_list_entry(alice.id, "friend.example", true)
        .await
        .unwrap();
    store
        .set_spam_list_entry(alice.id, "unchecked.example", true)
        .await
        .unwrap();
    // SPF passes for friend.example: its allow entry counts, whatever the From says.
    let raw = mail(
        "x@elsewhere.test",
        "alice@example.org",
        "spf verified",
        "hi",
    );
    send(&t, "news@friend.example", &["alice@example.org"], &raw).await;
    // unchecked.example publishes no SPF: anyone can use the name.
    let raw = mail(
        "x@elsewhere.test",
        "alice@example.org",
        "forged envelope",
        "hi",
    );
    send(&t, "news@unchecked.example", &["alice@example.org"], &raw).await;
    let inbox = folder(store, "alice@example.org", "INBOX").await;
    let junk = folder(store, "alice@example.org", "Junk").await;
    assert!(
        inbox.iter().any(|m| m.contains("spf verified")),
        "{inbox:?}"
    );
    assert!(
        junk.iter().any(|m| m.contains("forged envelope")),
        "{junk:?}"
    );
}

#[tokio::test]
async fn many_recipients_share_a_bounded_number_of_copies() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    // Ten accounts, each with its own threshold: ten different explanations.
    let mut rcpts = Vec::new();
    for i in 0..10 {
        let address = format!("u{i}@example.org");
        let a = account(store, &address, 0).await;
        store
            .set_account_junk_threshold(a.id, Some(10.0 + f64::from(i)))
            .await
            .unwrap();
        rcpts.push(address);
    }
    let to: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let raw = mail("a@b.test", "list@example.org", "to many", "hi");
    assert_eq!(send(&t, "a@b.test", &to, &raw).await.0, 250);
    let mut full = 0;
    let mut brief = 0;
    for address in &rcpts {
        let inbox = folder(store, address, "INBOX").await;
        let field = &spam_fields(&inbox[0])[0];
        if field.contains("details=not kept") {
            brief += 1;
            let why = verdict::explain(field).unwrap();
            assert!(
                why.starts_with("Not junk (the message went to many"),
                "{why}"
            );
        } else {
            assert!(field.contains("score="), "{field}");
            full += 1;
        }
    }
    // Eight explained copies, the other two share one brief copy.
    assert_eq!((full, brief), (8, 2));
}

#[tokio::test]
async fn not_addressed_to_me_is_judged_per_account() {
    let t = server(Zone::default()).await;
    let store = &t.running.store;
    store
        .add_alias("team@example.org", &["bob@example.org".into()])
        .await
        .unwrap();
    // To: alice and the team alias (bob's way in); carol is a Bcc.
    account(store, "carol@example.org", 0).await;
    let raw = mail(
        "a@b.test",
        "Alice <ALICE@example.org>, team@example.org",
        "who is it for",
        "hi",
    );
    let rcpts = ["alice@example.org", "team@example.org", "carol@example.org"];
    assert_eq!(send(&t, "a@b.test", &rcpts, &raw).await.0, 250);
    for (who, addressed) in [
        ("alice@example.org", true),
        ("bob@example.org", true),
        ("carol@example.org", false),
    ] {
        let inbox = folder(store, who, "INBOX").await;
        let field = &spam_fields(&inbox[0])[0];
        assert_eq!(
            !field.contains("not addressed to me"),
            addressed,
            "{who}: {field}"
        );
    }
}
