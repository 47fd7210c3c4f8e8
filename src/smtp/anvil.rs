//! Refused recipients per client address, across connections (as Postfix's anvil counts them).
//!
//! A session closes after [`MAX_ERRORS`](super::session) errors, but a client that reconnects
//! can go on guessing: addresses to harvest, or the hash of an SRS address. So port 25 counts
//! refused RCPTs per client network (an IPv4 address, an IPv6 /64) in a fixed window; past the
//! limit every RCPT from there gets `450 4.7.1` without a lookup until the window ends. Real
//! senders refused once or twice an hour never come near it.
//!
//! The map is bounded: ended windows are swept once per window, and when it is still full a new
//! network pushes out an arbitrary entry (an attacker with more networks than [`MAX_CLIENTS`]
//! makes the count less exact, never the server slower: no step scans the map per RCPT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::throttle::Origin;

/// Client networks tracked at once (about 50 bytes each).
const MAX_CLIENTS: usize = 100_000;

pub struct Anvil {
    limit: u32,
    window: Duration,
    clients: Mutex<Clients>,
}

struct Clients {
    counts: HashMap<Origin, Count>,
    swept: Instant,
}

#[derive(Clone, Copy)]
struct Count {
    since: Instant,
    refused: u32,
}

impl Anvil {
    /// `limit` refused recipients per client network within `window`; 0 turns it off.
    pub fn new(limit: u32, window: Duration) -> Anvil {
        Anvil {
            limit,
            window,
            clients: Mutex::new(Clients {
                counts: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// True when `ip` has used up its refusals for now.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        self.blocked_at(ip, Instant::now())
    }

    /// Counts one refused recipient from `ip`.
    pub fn refused(&self, ip: IpAddr) {
        self.refused_at(ip, Instant::now());
    }

    fn blocked_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Ok(clients) = self.clients.lock() else {
            return false;
        };
        clients
            .counts
            .get(&Origin::from(ip))
            .is_some_and(|c| now.duration_since(c.since) < self.window && c.refused >= self.limit)
    }

    fn refused_at(&self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        let window = self.window;
        if now.duration_since(clients.swept) >= window {
            clients
                .counts
                .retain(|_, c| now.duration_since(c.since) < window);
            clients.swept = now;
        }
        let key = Origin::from(ip);
        if clients.counts.len() >= MAX_CLIENTS
            && !clients.counts.contains_key(&key)
            && let Some(any) = clients.counts.keys().next().copied()
        {
            clients.counts.remove(&any);
        }
        let count = clients.counts.entry(key).or_insert(Count {
            since: now,
            refused: 0,
        });
        if now.duration_since(count.since) >= self.window {
            *count = Count {
                since: now,
                refused: 0,
            };
        }
        count.refused = count.refused.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_past_the_limit_until_the_window_ends() {
        let anvil = Anvil::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t = Instant::now();
        for _ in 0..2 {
            anvil.refused_at(ip, t);
        }
        assert!(!anvil.blocked_at(ip, t));
        anvil.refused_at(ip, t);
        assert!(anvil.blocked_at(ip, t + Duration::from_secs(59)));
        assert!(!anvil.blocked_at(other, t), "per client");
        assert!(
            !anvil.blocked_at(ip, t + Duration::from_secs(60)),
            "window over"
        );
        anvil.refused_at(ip, t + Duration::from_secs(61));
        assert!(
            !anvil.blocked_at(ip, t + Duration::from_secs(61)),
            "counting anew"
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let anvil = Anvil::new(2, Duration::from_secs(60));
        let t = Instant::now();
        anvil.refused_at("2001:db8:1:2::1".parse().unwrap(), t);
        anvil.refused_at("2001:db8:1:2:ffff::9".parse().unwrap(), t);
        assert!(anvil.blocked_at("2001:db8:1:2::77".parse().unwrap(), t));
        assert!(!anvil.blocked_at("2001:db8:1:3::1".parse().unwrap(), t));
        anvil.refused_at("::ffff:192.0.2.1".parse().unwrap(), t);
        anvil.refused_at("192.0.2.1".parse().unwrap(), t);
        assert!(
            anvil.blocked_at("192.0.2.1".parse().unwrap(), t),
            "v4-mapped is v4"
        );
    }

    #[test]
    fn off_when_the_limit_is_zero() {
        let anvil = Anvil::new(0, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..100 {
            anvil.refused(ip);
        }
        assert!(!anvil.blocked(ip));
    }
}
