//! Greylisting (off by default; on when meta [`ON_KEY`] is `1`): the first attempt of a
//! (client network, sender, recipient) triplet gets `451 4.7.1`; real mail servers retry, and a
//! retry at least [`DELAY_KEY`] seconds later (default [`DEFAULT_DELAY_SECS`]) and within 4
//! hours is accepted. Many spam senders never retry.
//!
//! Never greylisted: authenticated sessions; clients whose network (/24, IPv6 /64) passed any
//! triplet in the last 36 days (each new day of mail from it renews that); senders with a good
//! reputation with one of the recipient's accounts (more ham than spam for `ip:<ip>/32` (IPv6
//! `/128`), `from:<sender>` or `sent:<sender>`). Bounces (the null sender) are greylisted like
//! any mail, as postgrey does: the servers sending them retry too.
//!
//! Greylisting must never lose or block mail on its own failure: a store error lets the
//! recipient through.

use std::net::IpAddr;

use crate::store::{GREYLIST_KEEP_SECS, Store, StoreError, Triplet, now};

/// Meta key: `1` turns greylisting on.
pub const ON_KEY: &str = "spam_greylisting";
/// Meta key: the seconds a client must wait before its retry is accepted.
pub const DELAY_KEY: &str = "spam_greylist_delay";
pub const DEFAULT_DELAY_SECS: i64 = 300;
/// The longest delay honoured (a longer one would outlast many senders' retry schedules).
pub const MAX_DELAY_SECS: i64 = 3600;
/// A network's exemption is renewed at most this often (one write a day per network).
const RENEW_AFTER_SECS: i64 = 86_400;
/// The reply text of a deferred recipient (`451 4.7.1`).
pub const REPLY_TEXT: &str = "Greylisted, please try again later";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Answer `451 4.7.1` ([`REPLY_TEXT`]).
    Defer,
}

/// One RCPT on port 25.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub ip: IpAddr,
    /// The envelope sender (empty for the null sender).
    pub sender: &'a str,
    /// The recipient as given in RCPT.
    pub recipient: &'a str,
    /// The local accounts the recipient reaches (for their reputation).
    pub accounts: &'a [i64],
    pub authenticated: bool,
}

/// Whether to accept the recipient now. Counts `spam_greylisted` for each deferral.
pub async fn check(store: &Store, attempt: &Attempt<'_>) -> Verdict {
    match decide(store, attempt).await {
        Ok(verdict) => verdict,
        Err(e) => {
            tracing::warn!("greylist: {e}; letting the recipient through");
            Verdict::Pass
        }
    }
}

async fn decide(store: &Store, attempt: &Attempt<'_>) -> Result<Verdict, StoreError> {
    if attempt.authenticated || !enabled(store).await? {
        return Ok(Verdict::Pass);
    }
    let at = now();
    let network = network(attempt.ip);
    if let Some(last) = store
        .greylist_network_passed(&network, at - GREYLIST_KEEP_SECS)
        .await?
    {
        if at - last >= RENEW_AFTER_SECS {
            store.greylist_renew_network(&network, last, at).await?;
        }
        return Ok(Verdict::Pass);
    }
    if good_reputation(store, attempt).await? {
        return Ok(Verdict::Pass);
    }
    let delay = store
        .meta(DELAY_KEY)
        .await?
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_DELAY_SECS)
        .clamp(0, MAX_DELAY_SECS);
    let triplet = store
        .greylist_attempt(
            &network,
            &attempt.sender.to_ascii_lowercase(),
            &attempt.recipient.to_ascii_lowercase(),
            delay,
            at,
        )
        .await?;
    Ok(match triplet {
        Triplet::Passed => Verdict::Pass,
        Triplet::New | Triplet::TooEarly => {
            store.count_event("spam_greylisted");
            Verdict::Defer
        }
    })
}

async fn enabled(store: &Store) -> Result<bool, StoreError> {
    Ok(store.meta(ON_KEY).await?.as_deref().map(str::trim) == Some("1"))
}

/// More ham than spam with any of the accounts for any of the sender's keys.
async fn good_reputation(store: &Store, attempt: &Attempt<'_>) -> Result<bool, StoreError> {
    let keys = reputation_keys(attempt.ip);
    for account in attempt.accounts {
        let found = store.reputation(*account, &keys).await?;
        if found.iter().any(|(_, counts)| counts.ham > counts.spam) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The reputation key that exempts a sender: the client's own `ip:` key (its address, or
/// its IPv6 /64; see `reputation::networks`). Not the envelope sender, which anyone can
/// forge: a spammer would only have to use a name the account knows.
pub fn reputation_keys(ip: IpAddr) -> Vec<String> {
    super::reputation::networks(ip)
        .into_iter()
        .take(1)
        .collect()
}

/// The client network of a triplet: the /24 of an IPv4 address, the /64 of an IPv6 one.
pub fn network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", std::net::Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{network, reputation_keys};

    #[test]
    fn networks() {
        assert_eq!(network("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network("::ffff:10.9.8.7".parse().unwrap()), "10.9.8.0/24");
        assert_eq!(
            network("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(network("::1".parse().unwrap()), "::/64");
    }

    #[test]
    fn keys() {
        assert_eq!(
            reputation_keys("192.0.2.1".parse().unwrap()),
            ["ip:192.0.2.1"]
        );
        assert_eq!(
            reputation_keys("2001:db8::1".parse().unwrap()),
            ["ip:2001:db8::/64"]
        );
    }
}
