//! Sender reputation per account, pure: the keys a message's sender is known by (From address
//! and domain, DKIM- and SPF-verified domains, the client's address and two networks around
//! it), and the points an account's history of those keys gives.
//!
//! Forging is the threat that shapes it. A good history helps only through keys a forger
//! cannot use: verified domains, a From that DMARC verified, the client address (TCP cannot
//! be forged). A bad history counts through any key, since forging it only hurts the forger.
//! What the filter decided at delivery counts once; what the user did (moving a message into
//! or out of Junk) counts [`USER_WEIGHT`] times, and only the user can give an unverified key
//! a good name.

use std::net::IpAddr;

use crate::store::SpamHam;

/// What one move by the user counts, against one classification at delivery.
pub const USER_WEIGHT: i64 = 3;
/// Points are at most this good (a known sender still needs the other checks to be quiet).
const BEST: f64 = -3.0;
/// Points are at most this bad: a sender the user junked once is junked next time.
const WORST: f64 = 6.0;
/// A sender the user wrote to and whose mail is verified.
const CORRESPONDENT: f64 = -4.0;
/// A sender the user wrote to, unverified (a forger could use the name).
const CORRESPONDENT_UNVERIFIED: f64 = -1.5;

/// One key a sender is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `from:a@b`, `domain:b`, `dkim:b`, `spf:b`, `ip:<address>` or `ip:<network>/<prefix>`.
    pub key: String,
    /// Cannot be forged: may earn a good name.
    pub verified: bool,
}

/// What is known of the sender of one message.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    /// The `From:` address, lower case.
    pub from: Option<String>,
    /// DMARC passed for the `From:` domain.
    pub from_verified: bool,
    /// Domains whose DKIM signature verified.
    pub dkim: Vec<String>,
    /// The envelope sender's domain, when SPF passed.
    pub spf: Option<String>,
    pub ip: Option<IpAddr>,
}

impl Sender {
    /// The keys, most specific first (the order [`points`] looks in). An unverified key is
    /// written with a leading `~` (`~from:a@b`): it is another key than the verified one, so
    /// forged mail in someone's name never touches the history their real mail is judged by.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        let mut push = |key: String, verified: bool| {
            let key = if verified { key } else { format!("~{key}") };
            if !keys.iter().any(|k: &Key| k.key == key) {
                keys.push(Key { key, verified });
            }
        };
        if let Some(from) = &self.from {
            push(format!("from:{from}"), self.from_verified);
        }
        for d in self.dkim.iter().take(3) {
            push(format!("dkim:{}", d.to_ascii_lowercase()), true);
        }
        if let Some(d) = &self.spf {
            push(format!("spf:{}", d.to_ascii_lowercase()), true);
        }
        if let Some((_, domain)) = self.from.as_deref().and_then(|f| f.rsplit_once('@')) {
            push(format!("domain:{domain}"), self.from_verified);
        }
        if let Some(ip) = self.ip {
            for key in networks(ip) {
                push(key, true);
            }
        }
        keys
    }

    /// The key that says the user wrote to this sender.
    pub fn correspondent(&self) -> Option<String> {
        self.from.as_ref().map(|f| correspondent_key(f))
    }
}

/// The key recorded for an address the user sent mail to.
pub fn correspondent_key(address: &str) -> String {
    format!("sent:{}", address.to_ascii_lowercase())
}

/// `ip:` keys of the client address and two networks around it: IPv4 /32, /26, /21 and IPv6
/// /64, /56, /48 (one host often has a whole /64).
pub fn networks(ip: IpAddr) -> Vec<String> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let net = |prefix: u32| {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                format!("ip:{}/{prefix}", std::net::Ipv4Addr::from(n & mask))
            };
            vec![format!("ip:{v4}"), net(26), net(21)]
        }
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            let net = |prefix: u32| {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                format!("ip:{}/{prefix}", std::net::Ipv6Addr::from(n & mask))
            };
            vec![net(64), net(56), net(48)]
        }
    }
}

/// The reputation points of a sender for one account, from the account's counts of the
/// sender's keys (`found`, any order) and whether the user wrote to the sender; with the key
/// that decided. `None` when the account knows nothing of the sender.
pub fn points(
    keys: &[Key],
    found: &[(String, SpamHam)],
    wrote_to: bool,
    from_verified: bool,
) -> Option<(f64, String)> {
    let counts = |key: &str| found.iter().find(|(k, _)| k == key).map(|(_, c)| *c);
    // The first key whose history can decide: a verified one either way, an unverified one
    // only against the sender (a good name under a forgeable key must not hide a bad
    // address or domain further down).
    let mut decided = None;
    for key in keys {
        let Some(c) = counts(&key.key) else {
            continue;
        };
        let n = (c.spam + c.ham) as f64;
        if n == 0.0 {
            continue;
        }
        let r = (c.spam as f64 - c.ham as f64) / (n + 1.0);
        let p = (8.0 * r).clamp(BEST, WORST);
        if key.verified || p > 0.0 {
            decided = Some(((p * 10.0).round() / 10.0, key.key.clone()));
            break;
        }
    }
    // A bad history outweighs having written to them; otherwise writing to them wins.
    match decided {
        Some((p, key)) if p > 0.0 || !wrote_to => Some((p, key)),
        _ if wrote_to => {
            let p = if from_verified {
                CORRESPONDENT
            } else {
                CORRESPONDENT_UNVERIFIED
            };
            let key = keys
                .iter()
                .find_map(|k| k.key.trim_start_matches('~').strip_prefix("from:"))
                .map_or_else(String::new, correspondent_key);
            Some((p, key))
        }
        other => other,
    }
}

/// What one classification at delivery adds to the sender's keys: `(spam, ham)`. Junked mail
/// counts against every key; mail kept in the INBOX counts for the verified ones only, and
/// not for the networks around the client (neighbours on a shared network send both, and a
/// spammer's first messages that slip through must not buy the whole network a good name).
pub fn classified(key: &Key, junked: bool) -> Option<(i64, i64)> {
    let network = key.key.starts_with("ip:") && key.key.contains('/');
    match (junked, key.verified && !network) {
        (true, _) => Some((1, 0)),
        (false, true) => Some((0, 1)),
        (false, false) => None,
    }
}

/// The keys of a message the user moved, from the `keys=` our field recorded (each with
/// whether it is verified): the user's word counts for all of them.
pub fn recorded(keys: &[String]) -> Vec<Key> {
    keys.iter()
        .filter(|k| {
            ["from:", "domain:", "dkim:", "spf:", "ip:"]
                .iter()
                .any(|p| k.trim_start_matches('~').starts_with(p))
        })
        .take(16)
        .map(|k| Key {
            key: k.clone(),
            verified: !k.starts_with('~'),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender {
            from: Some("a@news.example".into()),
            from_verified: false,
            dkim: vec!["News.Example".into()],
            spf: None,
            ip: "192.0.2.77".parse().ok(),
        }
    }

    #[test]
    fn keys_most_specific_first() {
        let keys: Vec<String> = sender().keys().into_iter().map(|k| k.key).collect();
        assert_eq!(
            keys,
            [
                "~from:a@news.example",
                "dkim:news.example",
                "~domain:news.example",
                "ip:192.0.2.77",
                "ip:192.0.2.64/26",
                "ip:192.0.0.0/21"
            ]
        );
        let v6 = networks(
            "2001:db8:1:2:3::4"
                .parse()
                .unwrap_or(IpAddr::from([0u8; 16])),
        );
        assert_eq!(
            v6,
            [
                "ip:2001:db8:1:2::/64",
                "ip:2001:db8:1::/56",
                "ip:2001:db8:1::/48"
            ]
        );
    }

    #[test]
    fn one_junking_by_the_user_junks_the_next() {
        let keys = sender().keys();
        let found = [(
            "~from:a@news.example".to_string(),
            SpamHam {
                spam: USER_WEIGHT as u64,
                ham: 0,
            },
        )];
        let (p, key) = points(&keys, &found, false, false).unwrap_or_default();
        assert!(p >= crate::spam::verdict::DEFAULT_JUNK, "{p}");
        assert_eq!(key, "~from:a@news.example");
    }

    #[test]
    fn a_good_name_only_through_verified_keys() {
        let keys = sender().keys();
        let good = SpamHam { spam: 0, ham: 20 };
        // The unverified From says nothing good; the DKIM domain does.
        let from_only = [("~from:a@news.example".to_string(), good)];
        assert_eq!(points(&keys, &from_only, false, false), None);
        // ... nor hides a bad address further down.
        let hiding = [
            ("~from:a@news.example".to_string(), good),
            ("ip:192.0.2.77".to_string(), SpamHam { spam: 9, ham: 0 }),
        ];
        assert!(
            points(&keys, &hiding, false, false)
                .is_some_and(|(p, k)| p > 0.0 && k == "ip:192.0.2.77")
        );
        let dkim = [("dkim:news.example".to_string(), good)];
        assert_eq!(
            points(&keys, &dkim, false, false),
            Some((-3.0, "dkim:news.example".into()))
        );
        // Writing to them counts, less when unverified; a bad history still wins.
        assert_eq!(
            points(&keys, &[], true, false),
            Some((-1.5, "sent:a@news.example".into()))
        );
        assert_eq!(
            points(&keys, &[], true, true),
            Some((-4.0, "sent:a@news.example".into()))
        );
        let bad = [("ip:192.0.2.77".to_string(), SpamHam { spam: 9, ham: 0 })];
        assert!(points(&keys, &bad, true, true).is_some_and(|(p, _)| p > 0.0));
        assert_eq!(points(&keys, &[], false, false), None);
    }
}
