//! Inbound authentication on port 25: SPF, DKIM and DMARC verdicts from records published in a
//! loopback DNS server, recorded in Authentication-Results; DMARC p=reject refused; forged
//! results for our name removed.

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, inbox_texts, start_with};
use crate::smtp::{Client, connect};
use tokio::net::TcpStream;

/// mx.example.org serving example.org with bob, resolving through `zone`.
pub async fn receiver(zone: Zone) -> TestServer {
    let dns = dns_server::start(zone).await;
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mx.example.org".into();
        c.dns.nameservers = vec![dns];
    })
    .await;
    account(&server.running.store, "bob@example.org", 0).await;
    server
}

/// Sends `body` over port 25 from `from`; returns the final reply code and text.
async fn send(c: &mut Client<TcpStream>, from: &str, body: &str) -> (u16, String) {
    c.expect(&format!("MAIL FROM:<{from}>"), 250, "").await;
    c.expect("RCPT TO:<bob@example.org>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(body.as_bytes()).await;
    c.cmd(".").await
}

async fn last_stored(server: &TestServer) -> String {
    inbox_texts(&server.running.store, "bob@example.org")
        .await
        .pop()
        .unwrap()
}

fn message(from: &str, subject: &str) -> String {
    format!("From: {from}\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\nHello.\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_results_are_recorded_per_published_policy() {
    let zone = Zone::default();
    zone.txt("good.test", "v=spf1 ip4:127.0.0.1 -all");
    zone.txt("bad.test", "v=spf1 ip4:192.0.2.1 -all");
    zone.txt("soft.test", "v=spf1 ~all");
    let server = receiver(zone).await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;
    for (domain, verdict) in [
        ("good", "spf=pass"),
        ("bad", "spf=fail"),
        ("soft", "spf=softfail"),
        ("none", "spf=none"),
    ] {
        let from = format!("alice@{domain}.test");
        let (code, text) = send(&mut c, &from, &message(&from, domain)).await;
        assert_eq!(code, 250, "{text}");
        let stored = last_stored(&server).await;
        let results = stored
            .split("Authentication-Results: ")
            .nth(1)
            .and_then(|r| r.split("\r\nFrom:").next())
            .unwrap_or_default();
        assert!(results.starts_with("mx.example.org;"), "{stored}");
        assert!(results.contains(verdict), "{domain}: {results}");
        assert!(
            results.contains(&format!("smtp.mailfrom={from}")),
            "{results}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_reject_is_refused_and_quarantine_is_recorded() {
    let zone = Zone::default();
    zone.txt("strict.test", "v=spf1 ip4:192.0.2.1 -all");
    zone.txt("_dmarc.strict.test", "v=DMARC1; p=reject");
    zone.txt("lenient.test", "v=spf1 ip4:192.0.2.1 -all");
    zone.txt("_dmarc.lenient.test", "v=DMARC1; p=quarantine");
    zone.txt("aligned.test", "v=spf1 ip4:127.0.0.1 -all");
    zone.txt("_dmarc.aligned.test", "v=DMARC1; p=reject");
    let server = receiver(zone).await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;

    let (code, text) = send(&mut c, "x@strict.test", &message("x@strict.test", "spoof")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1") && text.contains("DMARC"), "{text}");

    let (code, _) = send(&mut c, "x@lenient.test", &message("x@lenient.test", "q")).await;
    assert_eq!(code, 250);
    let stored = last_stored(&server).await;
    assert!(stored.contains("dmarc=fail"), "{stored}");
    assert!(stored.contains("policy.dmarc=quarantine"), "{stored}");

    let (code, _) = send(&mut c, "x@aligned.test", &message("x@aligned.test", "ok")).await;
    assert_eq!(code, 250);
    let stored = last_stored(&server).await;
    assert!(
        stored.contains("spf=pass") && stored.contains("dmarc=pass"),
        "{stored}"
    );
    assert!(stored.contains("Subject: ok"), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_results_claiming_our_name_are_removed() {
    let server = receiver(Zone::default()).await;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.test", 250, "").await;
    let body = "Authentication-Results: mx.example.org; dkim=pass header.d=bank.test\r\n\
                Authentication-Results: elsewhere.test; spf=pass\r\n\
                From: ceo@bank.test\r\nSubject: forged\r\n\r\nPay now.\r\n";
    let (code, _) = send(&mut c, "ceo@bank.test", body).await;
    assert_eq!(code, 250);
    let stored = last_stored(&server).await;
    assert_eq!(
        stored
            .matches("Authentication-Results: mx.example.org")
            .count(),
        1,
        "{stored}"
    );
    assert!(!stored.contains("header.d=bank.test"), "{stored}");
    assert!(
        stored.contains("Authentication-Results: elsewhere.test; spf=pass"),
        "{stored}"
    );
}
