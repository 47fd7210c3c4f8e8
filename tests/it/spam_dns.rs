//! What DNS says about a client, for the spam filter (issue 21), against the loopback DNS
//! server: DNS block and allow lists (listed, unlisted, a resolver the list refuses, a failing
//! list), forward-confirmed reverse DNS; and greylisting at RCPT through the whole server.

use std::net::IpAddr;
use std::time::Duration;

use mailroom::config::DnsConfig;
use mailroom::dns::Dns;
use mailroom::spam::dnsbl::{self, Listing, REFUSED_KEY};
use mailroom::spam::rdns::{Rdns, fcrdns};
use mailroom::store::Store;

use crate::dns_server::{self, Zone};
use crate::harness::{TestServer, account, start_with};
use crate::smtp::connect;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The whole server with `zone` as its DNS, and a resolver of its own on the same server.
async fn server(zone: Zone) -> (TestServer, Dns) {
    let addr = dns_server::start(zone).await;
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![addr];
    })
    .await;
    let dns = Dns::new(&DnsConfig {
        nameservers: vec![addr],
        ..Default::default()
    })
    .unwrap();
    (server, dns)
}

/// A zone's listing of `address` with answer `code`.
fn list(zone: &Zone, list: &str, address: &str, code: &str) {
    let name = dnsbl::query_name(ip(address), list).unwrap();
    zone.ip(&name, ip(code));
}

fn counter(store: &Store, kind: &str) -> i64 {
    store
        .event_counters()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| n)
}

#[tokio::test]
async fn dns_lists_score_listed_addresses_by_their_zones_weight() {
    let zone = Zone::default();
    list(&zone, "bl.test", "45.1.2.3", "127.0.0.2");
    list(&zone, "bl.test", "45.1.2.6", "127.0.0.4");
    list(&zone, "wl.test", "45.1.2.5", "127.0.10.2");
    list(&zone, "wl.test", "45.1.2.6", "127.0.10.3");
    // A private address is never asked about, whatever the list holds.
    zone.ip("1.0.0.10.bl.test", ip("127.0.0.2"));
    // RFC 5782's test entry, on loopback, and an IPv6 listing (nibbles).
    list(&zone, "bl.test", "127.0.0.2", "127.0.0.2");
    list(&zone, "bl.test", "2a01:4f8::25", "127.0.0.3");
    // An answer outside 127/8 (a resolver rewriting NXDOMAIN) is no listing.
    list(&zone, "bl.test", "45.1.2.9", "93.184.216.34");
    let (server, dns) = server(zone).await;
    let store = &server.running.store;
    store.set_spam_zone("bl.test", 3.0).await.unwrap();
    store.set_spam_zone("wl.test", -2.0).await.unwrap();
    let zones = store.spam_zones().await.unwrap();

    let check = |address: &'static str| {
        let (dns, store, zones) = (dns.clone(), store.clone(), zones.clone());
        async move { dnsbl::check(&dns, &store, ip(address), &zones).await }
    };
    let listed = |points: f64, listed: &[&str]| Listing {
        points,
        listed: listed.iter().map(|s| s.to_string()).collect(),
        refused: Vec::new(),
    };
    assert_eq!(check("45.1.2.3").await, listed(3.0, &["bl.test"]));
    assert_eq!(check("45.1.2.4").await, Listing::default(), "unlisted");
    assert_eq!(check("45.1.2.5").await, listed(-2.0, &["wl.test"]));
    assert_eq!(
        check("45.1.2.6").await,
        listed(1.0, &["bl.test", "wl.test"])
    );
    assert_eq!(check("10.0.0.1").await, Listing::default(), "private");
    assert_eq!(check("127.0.0.2").await, listed(3.0, &["bl.test"]));
    assert_eq!(check("127.0.0.1").await, Listing::default());
    assert_eq!(check("2a01:4f8::25").await, listed(3.0, &["bl.test"]));
    assert_eq!(check("45.1.2.9").await, Listing::default());
    // No zones, nothing asked.
    assert_eq!(
        dnsbl::check(&dns, store, ip("45.1.2.3"), &[]).await,
        Listing::default()
    );
    assert_eq!(counter(store, "spam_dnsbl_listed"), 4);
    assert_eq!(counter(store, "spam_dnswl_listed"), 2);
    assert_eq!(counter(store, "spam_dnsbl_refused"), 0);
    assert_eq!(dnsbl::refused_warning(store).await, None);
}

#[tokio::test]
async fn a_refused_resolver_scores_nothing_and_warns_the_admin() {
    let zone = Zone::default();
    list(&zone, "refusing.test", "45.1.2.3", "127.255.255.254");
    list(&zone, "refusing.test", "45.1.2.4", "127.255.255.252");
    list(&zone, "bl.test", "45.1.2.3", "127.0.0.2");
    // A list that fails (SERVFAIL) answers nothing.
    zone.servfail(&dnsbl::query_name(ip("45.1.2.3"), "failing.test").unwrap());
    let (server, dns) = server(zone).await;
    let store = &server.running.store;
    store.set_spam_zone("refusing.test", 4.0).await.unwrap();
    store.set_spam_zone("bl.test", 3.0).await.unwrap();
    store.set_spam_zone("failing.test", 5.0).await.unwrap();
    let zones = store.spam_zones().await.unwrap();

    let before = mailroom::store::now();
    let listing = dnsbl::check(&dns, store, ip("45.1.2.3"), &zones).await;
    assert_eq!(
        listing,
        Listing {
            points: 3.0,
            listed: vec!["bl.test".into()],
            refused: vec!["refusing.test".into()],
        }
    );
    let (warned, at) = dnsbl::refused_warning(store).await.expect("a warning");
    assert_eq!(warned, "refusing.test");
    assert!(at >= before && at <= mailroom::store::now(), "{at}");
    assert_eq!(counter(store, "spam_dnsbl_refused"), 1);

    // Within a minute the same zone's warning is not written again...
    let recent = format!("refusing.test {}", mailroom::store::now() - 30);
    store.set_meta(REFUSED_KEY, &recent).await.unwrap();
    let only_refused = dnsbl::check(&dns, store, ip("45.1.2.4"), &zones).await;
    assert_eq!(only_refused.points, 0.0);
    assert_eq!(only_refused.refused, ["refusing.test"]);
    assert_eq!(store.meta(REFUSED_KEY).await.unwrap(), Some(recent));
    // ...after it, it is.
    let old = format!("refusing.test {}", mailroom::store::now() - 120);
    store.set_meta(REFUSED_KEY, &old).await.unwrap();
    dnsbl::check(&dns, store, ip("45.1.2.4"), &zones).await;
    let (_, at) = dnsbl::refused_warning(store).await.unwrap();
    assert!(at >= mailroom::store::now() - 5, "rewritten: {at}");
    assert_eq!(counter(store, "spam_dnsbl_refused"), 3);

    // A day-old refusal is no longer shown.
    let stale = format!("refusing.test {}", mailroom::store::now() - 90_000);
    store.set_meta(REFUSED_KEY, &stale).await.unwrap();
    assert_eq!(dnsbl::refused_warning(store).await, None);
}

#[tokio::test]
async fn reverse_dns_is_confirmed_forward() {
    let zone = Zone::default();
    zone.ptr(ip("45.1.2.3"), "mail.sender.test");
    zone.ip("mail.sender.test", ip("45.1.2.3"));
    zone.ptr(ip("45.1.2.4"), "other.sender.test");
    zone.ip("other.sender.test", ip("45.9.9.9"));
    // Two names, the second one confirms.
    zone.ptr(ip("45.1.2.6"), "first.sender.test");
    zone.ptr(ip("45.1.2.6"), "second.sender.test");
    zone.ip("second.sender.test", ip("45.1.2.6"));
    zone.ptr(ip("2a01:4f8::25"), "v6.sender.test");
    zone.ip("v6.sender.test", ip("2a01:4f8::25"));
    // A PTR spelled as the address itself confirms nothing.
    zone.ptr(ip("45.1.2.7"), "45.1.2.7");
    zone.servfail(&mailroom::dns::reverse_name(ip("45.1.2.8")));
    zone.ptr(ip("45.1.2.9"), "broken.sender.test");
    zone.servfail("broken.sender.test");
    let (_server, dns) = server(zone).await;

    assert_eq!(
        fcrdns(&dns, ip("45.1.2.3")).await,
        Rdns::Verified("mail.sender.test".into())
    );
    assert_eq!(
        fcrdns(&dns, ip("::ffff:45.1.2.3")).await,
        Rdns::Verified("mail.sender.test".into())
    );
    assert_eq!(fcrdns(&dns, ip("45.1.2.4")).await, Rdns::Mismatch);
    assert_eq!(fcrdns(&dns, ip("45.1.2.5")).await, Rdns::Missing);
    assert_eq!(
        fcrdns(&dns, ip("45.1.2.6")).await,
        Rdns::Verified("second.sender.test".into())
    );
    assert_eq!(
        fcrdns(&dns, ip("2a01:4f8::25")).await,
        Rdns::Verified("v6.sender.test".into())
    );
    assert_eq!(fcrdns(&dns, ip("45.1.2.7")).await, Rdns::Mismatch);
    assert_eq!(fcrdns(&dns, ip("45.1.2.8")).await, Rdns::Unknown);
    assert_eq!(fcrdns(&dns, ip("45.1.2.9")).await, Rdns::Unknown);
}

#[tokio::test]
async fn lists_and_reverse_dns_that_do_not_answer_in_time_count_for_nothing() {
    let zone = Zone::default();
    list(&zone, "bl.test", "45.1.2.3", "127.0.0.2");
    zone.silent(&dnsbl::query_name(ip("45.1.2.3"), "slow.test").unwrap());
    zone.silent(&mailroom::dns::reverse_name(ip("45.1.2.3")));
    let (server, dns) = server(zone).await;
    let store = &server.running.store;
    store.set_spam_zone("bl.test", 3.0).await.unwrap();
    store.set_spam_zone("slow.test", 9.0).await.unwrap();
    let zones = store.spam_zones().await.unwrap();

    let started = std::time::Instant::now();
    let (listing, rdns) = tokio::join!(
        dnsbl::check(&dns, store, ip("45.1.2.3"), &zones),
        fcrdns(&dns, ip("45.1.2.3")),
    );
    let took = started.elapsed();
    // The answer that came counts; the silent zone does not hold it up past the deadline.
    assert_eq!(listing.points, 3.0);
    assert_eq!(listing.listed, ["bl.test"]);
    assert!(listing.refused.is_empty());
    assert_eq!(rdns, Rdns::Unknown);
    assert!(
        took >= dnsbl::DEADLINE && took < mailroom::spam::rdns::DEADLINE + Duration::from_secs(1),
        "{took:?}"
    );
}

const BODY: &str = "From: a@remote.test\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";

/// A server with greylisting on (delay 2 s) and the account alice@example.org. Times are kept
/// in whole seconds, so a 1 s delay could pass between two commands a millisecond apart.
async fn greylisting_server() -> (TestServer, i64) {
    let (server, _dns) = server(Zone::default()).await;
    let store = &server.running.store;
    store.set_meta("spam_greylisting", "1").await.unwrap();
    store.set_meta("spam_greylist_delay", "2").await.unwrap();
    let alice = account(store, "alice@example.org", 0).await;
    (server, alice.id)
}

#[tokio::test]
async fn greylisting_defers_the_first_attempt_and_exempts_the_network_after_a_retry() {
    let (server, _) = greylisting_server().await;
    let store = &server.running.store;
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.remote.test", 250, "").await;
    c.expect("MAIL FROM:<A@Remote.test>", 250, "2.1.0").await;
    c.expect("RCPT TO:<alice@example.org>", 451, "4.7.1 Greylisted")
        .await;
    // Unknown users are still refused outright, never greylisted.
    c.expect("RCPT TO:<nobody@example.org>", 550, "5.1.1").await;
    // Too early: deferred again.
    c.expect("RCPT TO:<alice@example.org>", 451, "Greylisted")
        .await;
    c.expect("RSET", 250, "").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;

    // The retry after the delay passes (the triplet is case-blind).
    c.expect("MAIL FROM:<a@remote.test>", 250, "").await;
    c.expect("RCPT TO:<Alice@Example.org>", 250, "2.1.5").await;
    c.expect("DATA", 354, "").await;
    c.send(format!("{BODY}.\r\n").as_bytes()).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");

    // The network has passed: another sender from it is not greylisted.
    c.expect("MAIL FROM:<someone.else@elsewhere.test>", 250, "")
        .await;
    c.expect("RCPT TO:<alice@example.org>", 250, "2.1.5").await;
    c.expect("RSET", 250, "").await;
    // Nor the null sender.
    c.expect("MAIL FROM:<>", 250, "").await;
    c.expect("RCPT TO:<alice@example.org>", 250, "2.1.5").await;
    c.expect("QUIT", 221, "").await;
    assert_eq!(counter(store, "spam_greylisted"), 2);
}

#[tokio::test]
async fn greylisting_spares_senders_the_account_knows_and_is_off_by_default() {
    let (server, alice) = greylisting_server().await;
    let store = &server.running.store;
    // Alice has written to friend@remote.test; but MAIL FROM is anyone's to forge, so that
    // name alone spares nobody.
    store
        .count_reputation(alice, &["sent:friend@remote.test".to_string()], 0, 1)
        .await
        .unwrap();
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.remote.test", 250, "").await;
    c.expect("MAIL FROM:<Friend@remote.test>", 250, "").await;
    c.expect("RCPT TO:<alice@example.org>", 451, "4.7.1").await;
    c.expect("RSET", 250, "").await;
    // The client's own address with a good history (it cannot be forged) is spared.
    store
        .count_reputation(alice, &["ip:127.0.0.1".to_string()], 0, 3)
        .await
        .unwrap();
    c.expect("MAIL FROM:<someone@remote.test>", 250, "").await;
    c.expect("RCPT TO:<alice@example.org>", 250, "2.1.5").await;
    c.expect("RSET", 250, "").await;

    // Switched off, nobody is greylisted.
    store.set_meta("spam_greylisting", "0").await.unwrap();
    c.expect("MAIL FROM:<stranger@remote.test>", 250, "").await;
    c.expect("RCPT TO:<alice@example.org>", 250, "2.1.5").await;
    c.expect("QUIT", 221, "").await;
    assert_eq!(counter(store, "spam_greylisted"), 1);
}
