//! ARC (RFC 8617): mail we forward carries our seal, and a receiver verifies the chain into
//! its `Authentication-Results`.

use std::net::IpAddr;

use crate::dns_server::{self, Zone};
use crate::harness::{account, inbox_texts, start_with};
use crate::outbound::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_mail_is_sealed_and_the_next_receiver_verifies_the_seal() {
    // One DNS for both servers: remote.test receives what example.org's alias forwards.
    let zone = Zone::default();
    let dns = dns_server::start(zone.clone()).await;
    let receiver = start_with(|c| {
        c.domain = "remote.test".into();
        c.hostname = "mx.remote.test".into();
        c.dns.nameservers = vec![dns];
    })
    .await;
    account(&receiver.running.store, "friend@remote.test", 0).await;
    zone.mx("remote.test", 10, "mx.remote.test");
    zone.ip("mx.remote.test", IpAddr::from([127, 0, 0, 1]));
    let port = receiver.running.addr("smtp").unwrap().port();
    let forwarder = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        c.queue.smtp_port = port;
        c.queue.retry_first_secs = 1;
        c.queue.retry_max_secs = 1;
        c.queue.timeout_secs = 10;
    })
    .await;
    // The forwarder's DKIM keys published as `domain dns` prints them (ARC uses the RSA one).
    let keys = forwarder
        .running
        .store
        .dkim_keys("example.org")
        .await
        .unwrap();
    for record in
        mailroom::records::domain_records("mail.example.org", "example.org", keys.as_ref()).unwrap()
    {
        if record.kind == mailroom::records::RecordKind::Txt {
            zone.txt(record.name.trim_end_matches('.'), &record.value);
        }
    }
    forwarder
        .running
        .store
        .add_alias("fwd@example.org", &["friend@remote.test".into()])
        .await
        .unwrap();

    // Alice's domain publishes SPF for 127.0.0.1, which forwarding breaks at remote.test
    // (the forwarder's address is not alice's): the seal carries the pass we saw.
    zone.txt("origin.test", "v=spf1 ip4:127.0.0.1 -all");
    let mut c = crate::smtp::connect(&forwarder, "smtp").await;
    c.expect("EHLO origin.test", 250, "").await;
    c.expect("MAIL FROM:<alice@origin.test>", 250, "").await;
    c.expect("RCPT TO:<fwd@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(
        b"From: alice@origin.test\r\nTo: fwd@example.org\r\nSubject: sealed\r\n\
Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <arc-1@origin.test>\r\n\r\nHello.\r\n",
    )
    .await;
    c.expect(".", 250, "").await;

    eventually("the forwarded copy at remote.test", || async {
        inbox_texts(&receiver.running.store, "friend@remote.test")
            .await
            .len()
            == 1
    })
    .await;
    let text = inbox_texts(&receiver.running.store, "friend@remote.test")
        .await
        .remove(0);
    // Our seal: the first instance, no chain before it, over our own results.
    let seal = field(&text, "ARC-Seal");
    assert!(seal.contains("i=1"), "{seal}");
    assert!(seal.contains("cv=none"), "{seal}");
    assert!(seal.contains("d=example.org"), "{seal}");
    let sealed_results = field(&text, "ARC-Authentication-Results");
    assert!(
        sealed_results.contains("mail.example.org") && sealed_results.contains("spf=pass"),
        "{sealed_results}"
    );
    assert!(field(&text, "ARC-Message-Signature").contains("d=example.org"));
    // The receiver verified the chain.
    let results = field(&text, "Authentication-Results");
    assert!(results.starts_with("mx.remote.test"), "{results}");
    assert!(results.contains("arc=pass"), "{text}");

    // Mail that arrives without any ARC set says so.
    let mut c = crate::smtp::connect(&receiver, "smtp").await;
    c.expect("EHLO origin.test", 250, "").await;
    c.expect("MAIL FROM:<alice@origin.test>", 250, "").await;
    c.expect("RCPT TO:<friend@remote.test>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(b"From: alice@origin.test\r\nSubject: plain\r\n\r\nHi.\r\n")
        .await;
    c.expect(".", 250, "").await;
    let plain = inbox_texts(&receiver.running.store, "friend@remote.test")
        .await
        .into_iter()
        .find(|t| t.contains("Subject: plain"))
        .unwrap();
    assert!(
        field(&plain, "Authentication-Results").contains("arc=none"),
        "{plain}"
    );
}

/// The unfolded value of the first `name:` field of `text`'s header section.
fn field(text: &str, name: &str) -> String {
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut value: Option<String> = None;
    for line in header.split("\r\n") {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((n, rest)) = line.split_once(':')
                    && n.eq_ignore_ascii_case(name)
                {
                    value = Some(rest.trim().to_string());
                }
            }
        }
    }
    value.unwrap_or_default()
}
