//! DNS block and allow lists (DNSBL/DNSWL, RFC 5782), asked at SMTP time about the client's
//! address. A zone that lists it adds its weight (positive for a blocklist such as Spamhaus
//! ZEN, negative for an allowlist such as `list.dnswl.org`) to the score: never on its own a
//! reason to refuse mail.
//!
//! Blocklists refuse queries that come through large public resolvers and answer them with
//! `127.255.255.x` (Spamhaus: 252 a typing error, 254 a public resolver, 255 too many queries).
//! Such an answer is not a listing: it scores nothing, and the admin panel shows a warning
//! ([`refused_warning`]) instead of every sender looking listed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::dns::Dns;
use crate::store::{MAX_ZONES, Store, Zone, now};

/// All zones are asked at once; what has not answered by then counts as not listed.
pub const DEADLINE: Duration = Duration::from_secs(3);
/// The meta key of the last refused answer: `"<zone> <unix time>"`.
pub const REFUSED_KEY: &str = "spam_dnsbl_refused";
/// The warning is written at most this often for the same zone.
const REFUSED_EVERY_SECS: i64 = 60;
/// [`refused_warning`] shows a refusal this long (a day after the resolver was fixed, it goes).
pub const REFUSED_SHOWN_SECS: i64 = 86_400;

/// What the DNS lists said about one address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The sum of the weights of the zones that list the address.
    pub points: f64,
    /// The zones that list the address.
    pub listed: Vec<String>,
    /// The zones that refused to answer our resolver (`127.255.255.x`).
    pub refused: Vec<String>,
}

/// What one zone's A records for the query name mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// No answer in `127.0.0.0/8` (NXDOMAIN, or a resolver that rewrites NXDOMAIN to an
    /// address of its own).
    NotListed,
    Listed,
    /// The list refuses our queries.
    Refused,
}

/// The meaning of a zone's answer: `127.255.255.x` (Spamhaus's error codes) and `127.0.0.255`
/// (DNSWL's "too many queries") are refusals, whatever else is there; any other address in
/// `127.0.0.0/8` is a listing; anything else is ignored.
pub fn answer(addresses: &[Ipv4Addr]) -> Answer {
    let refused = addresses.iter().any(|a| {
        let [a, b, c, d] = a.octets();
        (a, b, c) == (127, 255, 255) || (a, b, c, d) == (127, 0, 0, 255)
    });
    if refused {
        Answer::Refused
    } else if addresses.iter().any(|a| a.octets().first() == Some(&127)) {
        Answer::Listed
    } else {
        Answer::NotListed
    }
}

/// The name to ask `zone` about `ip` (`4.3.2.1.zone.`, or 32 nibbles for IPv6), or `None`
/// for an address no list can know: private (RFC 1918, unique local), link-local, shared
/// (100.64/10), documentation, benchmarking, unspecified, multicast, broadcast and reserved
/// addresses. Loopback is asked: RFC 5782 §5 has every list leave `127.0.0.1` (and `::1`)
/// unlisted and list `127.0.0.2` as its test entry, so asking about loopback is how an admin
/// (or a test) sees a list work, and costs one query for local clients.
pub fn query_name(ip: IpAddr, zone: &str) -> Option<String> {
    let ip = ip.to_canonical();
    let zone = zone.trim().trim_matches('.');
    if zone.is_empty() || !listable(ip) {
        return None;
    }
    Some(format!("{}.{zone}.", crate::dns::reversed(ip)))
}

fn listable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => listable_v4(v4),
        IpAddr::V6(v6) => listable_v6(v6),
    }
}

fn listable_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240 // reserved
        || a == 0)
}

fn listable_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    !(ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (first == 0x2001 && second == 0x0db8)) // documentation, RFC 3849
}

/// Asks every zone (at most [`MAX_ZONES`]) about `ip` at once, within [`DEADLINE`]. A zone
/// that times out or fails answers nothing. Refusals are recorded for the admin
/// ([`REFUSED_KEY`], at most once a minute per zone) and score nothing. Counts the events
/// `spam_dnsbl_listed` (positive weight), `spam_dnswl_listed` (negative) and
/// `spam_dnsbl_refused`.
pub async fn check(dns: &Dns, store: &Store, ip: IpAddr, zones: &[Zone]) -> Listing {
    let asked = zones
        .iter()
        .take(MAX_ZONES)
        .filter_map(|zone| query_name(ip, &zone.zone).map(|name| (zone, name)));
    let answers = futures::future::join_all(asked.map(|(zone, name)| async move {
        let found = tokio::time::timeout(DEADLINE, dns.ipv4(&name)).await;
        (zone, name, found)
    }))
    .await;
    let mut listing = Listing::default();
    for (zone, name, found) in answers {
        let addresses = match found {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(e)) => {
                tracing::debug!("dnsbl: {e}");
                continue;
            }
            Err(_) => {
                tracing::debug!("dnsbl: no answer for {name} within {DEADLINE:?}");
                continue;
            }
        };
        match answer(&addresses) {
            Answer::NotListed => {}
            Answer::Listed => {
                listing.points += zone.weight;
                listing.listed.push(zone.zone.clone());
                store.count_event(if zone.weight < 0.0 {
                    "spam_dnswl_listed"
                } else {
                    "spam_dnsbl_listed"
                });
            }
            Answer::Refused => {
                listing.refused.push(zone.zone.clone());
                store.count_event("spam_dnsbl_refused");
                record_refusal(store, &zone.zone).await;
            }
        }
    }
    listing
}

/// Writes the refusal warning unless one (of any zone: two refusing zones must not make
/// every message a write) was written less than a minute ago.
async fn record_refusal(store: &Store, zone: &str) {
    let at = now();
    if let Ok(Some(value)) = store.meta(REFUSED_KEY).await
        && let Some((_, last)) = parse_refusal(&value)
        && (0..REFUSED_EVERY_SECS).contains(&(at - last))
    {
        return;
    }
    tracing::warn!(
        "dnsbl: {zone} refuses queries from our resolver (a 127.255.255.x answer), so its \
         listings are not counted; use a resolver of your own (not a public one) in [dns] nameservers"
    );
    if let Err(e) = store.set_meta(REFUSED_KEY, &format!("{zone} {at}")).await {
        tracing::warn!("dnsbl: recording the refusal of {zone}: {e}");
    }
}

/// `"<zone> <unix time>"` as written by [`check`].
pub fn parse_refusal(value: &str) -> Option<(String, i64)> {
    let (zone, at) = value.trim().rsplit_once(' ')?;
    let at = at.parse().ok()?;
    let zone = zone.trim();
    (!zone.is_empty()).then(|| (zone.to_string(), at))
}

/// For the admin panel: the zone that last refused our resolver and when (unix time), if it
/// did within the last [`REFUSED_SHOWN_SECS`].
pub async fn refused_warning(store: &Store) -> Option<(String, i64)> {
    let value = store.meta(REFUSED_KEY).await.ok()??;
    let (zone, at) = parse_refusal(&value)?;
    (now() - at < REFUSED_SHOWN_SECS).then_some((zone, at))
}

#[cfg(test)]
mod tests {
    use super::{Answer, answer, parse_refusal, query_name};

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn query_names() {
        assert_eq!(
            query_name(ip("203.0.114.7"), "zen.spamhaus.org").as_deref(),
            Some("7.114.0.203.zen.spamhaus.org.")
        );
        // Dots around the zone and v4-mapped addresses are taken in their stride.
        assert_eq!(
            query_name(ip("::ffff:8.8.4.4"), ".list.dnswl.org.").as_deref(),
            Some("4.4.8.8.list.dnswl.org.")
        );
        assert_eq!(
            query_name(ip("2a01:4f8:1:2::abcd"), "zone.test").as_deref(),
            Some("d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.f.4.0.1.0.a.2.zone.test.")
        );
        // Loopback is asked (RFC 5782's test entries).
        assert_eq!(
            query_name(ip("127.0.0.2"), "zone.test").as_deref(),
            Some("2.0.0.127.zone.test.")
        );
        assert!(query_name(ip("::1"), "zone.test").is_some());
        for never in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "240.0.0.1",
            "224.0.0.1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:192.168.0.1",
        ] {
            assert_eq!(query_name(ip(never), "zone.test"), None, "{never}");
        }
        assert_eq!(query_name(ip("8.8.8.8"), " . "), None);
    }

    #[test]
    fn answers() {
        let a = |s: &[&str]| answer(&s.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>());
        assert_eq!(a(&[]), Answer::NotListed);
        assert_eq!(a(&["127.0.0.2"]), Answer::Listed);
        assert_eq!(a(&["127.0.0.4", "127.0.0.11"]), Answer::Listed);
        assert_eq!(a(&["127.0.10.3"]), Answer::Listed);
        for refused in ["127.255.255.252", "127.255.255.254", "127.255.255.255"] {
            assert_eq!(a(&[refused]), Answer::Refused, "{refused}");
            assert_eq!(a(&["127.0.0.2", refused]), Answer::Refused, "{refused}");
        }
        assert_eq!(a(&["127.0.0.255"]), Answer::Refused);
        // An NXDOMAIN-rewriting resolver's advertising address is no listing.
        assert_eq!(a(&["93.184.216.34"]), Answer::NotListed);
    }

    #[test]
    fn refusal_values() {
        assert_eq!(
            parse_refusal("zen.spamhaus.org 1700000000"),
            Some(("zen.spamhaus.org".into(), 1_700_000_000))
        );
        assert_eq!(parse_refusal("zen.spamhaus.org"), None);
        assert_eq!(parse_refusal(" 17"), None);
        assert_eq!(parse_refusal("zone x"), None);
    }
}
