//! Username-less passkey sign-ins under way ("Sign in with a passkey"): the challenge given to
//! a browser, until it answers or [`CEREMONY_SECS`] pass. Anyone may start one, so they live in
//! memory, bounded ([`MAX_CEREMONIES`]), instead of costing a database write each: a flood of
//! them is refused (503) past the bound and never holds up the writer that mail delivery uses.
//! One address (an IPv6 /64) holds at most [`MAX_PER_ORIGIN`] of them, so one client cannot
//! take every slot and lock everyone else out of passkey sign-in.
//! A restart forgets them (a browser asks for a new challenge).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::throttle::Origin;

/// How long a browser has to answer a challenge.
pub const CEREMONY_SECS: u64 = 5 * 60;
/// Ceremonies under way at once; about 1.3 KiB each at most (`next` is at most 1 KiB).
pub const MAX_CEREMONIES: usize = 10_000;
/// Ceremonies under way from one address (an IPv4 address or an IPv6 /64) at once.
pub const MAX_PER_ORIGIN: usize = 8;

/// One ceremony: its challenge, and where the sign-in leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub challenge: Vec<u8>,
    /// `admin` or `mail`.
    pub area: &'static str,
    pub next: String,
    started: Instant,
    origin: Origin,
}

#[derive(Debug)]
pub struct Ceremonies {
    cap: usize,
    ttl: Duration,
    live: Mutex<HashMap<String, Ceremony>>,
}

impl Default for Ceremonies {
    fn default() -> Ceremonies {
        Ceremonies::new(MAX_CEREMONIES, Duration::from_secs(CEREMONY_SECS))
    }
}

impl Ceremonies {
    pub fn new(cap: usize, ttl: Duration) -> Ceremonies {
        Ceremonies {
            cap,
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a ceremony under `token` for a browser at `ip`; false when too many are under
    /// way, in all or from that address.
    pub fn start(
        &self,
        token: String,
        ip: IpAddr,
        challenge: Vec<u8>,
        area: &'static str,
        next: String,
    ) -> bool {
        let Ok(mut live) = self.live.lock() else {
            return false;
        };
        let origin = Origin::from(ip);
        let ttl = self.ttl;
        let mine =
            |live: &HashMap<String, Ceremony>| live.values().filter(|c| c.origin == origin).count();
        // Expired ones are dropped only when a bound is reached: the scan is then paid once
        // per refusal or per slot freed, not per start.
        if live.len() >= self.cap || mine(&live) >= MAX_PER_ORIGIN {
            live.retain(|_, c| c.started.elapsed() < ttl);
            if live.len() >= self.cap || mine(&live) >= MAX_PER_ORIGIN {
                return false;
            }
        }
        live.insert(
            token,
            Ceremony {
                challenge,
                area,
                next,
                started: Instant::now(),
                origin,
            },
        );
        true
    }

    /// Ends the ceremony of `token` and returns it if it was live: one answer per challenge.
    pub fn take(&self, token: &str) -> Option<Ceremony> {
        let mut live = self.live.lock().ok()?;
        live.remove(token)
            .filter(|c| c.started.elapsed() < self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn one_address_cannot_take_every_slot() {
        let c = Ceremonies::new(100, Duration::from_secs(60));
        for i in 0..MAX_PER_ORIGIN {
            assert!(c.start(format!("t{i}"), IP, vec![1], "mail", "/mail".into()));
        }
        assert!(!c.start("one more".into(), IP, vec![1], "mail", "/mail".into()));
        // The same /64 counts as one address; another address still gets in.
        let v6 =
            |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
        for i in 0..MAX_PER_ORIGIN as u16 {
            assert!(c.start(format!("v{i}"), v6(i), vec![1], "mail", "/mail".into()));
        }
        assert!(!c.start("v6 more".into(), v6(999), vec![1], "mail", "/mail".into()));
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
        assert!(c.start("other".into(), other, vec![1], "mail", "/mail".into()));
    }

    #[test]
    fn bounded_single_use_and_expiring() {
        let c = Ceremonies::new(2, Duration::from_secs(60));
        assert!(c.start("a".into(), IP, vec![1], "mail", "/mail".into()));
        assert!(c.start("b".into(), IP, vec![2], "mail", "/mail".into()));
        assert!(
            !c.start("c".into(), IP, vec![3], "mail", "/mail".into()),
            "full"
        );
        assert_eq!(c.take("a").unwrap().challenge, vec![1]);
        assert!(c.take("a").is_none(), "once");
        assert!(
            c.start("c".into(), IP, vec![3], "mail", "/mail".into()),
            "room again"
        );

        let quick = Ceremonies::new(1, Duration::from_millis(1));
        assert!(quick.start("a".into(), IP, vec![1], "mail", "/mail".into()));
        std::thread::sleep(Duration::from_millis(5));
        assert!(quick.take("a").is_none(), "expired");
        assert!(quick.start("b".into(), IP, vec![1], "mail", "/mail".into()));
        std::thread::sleep(Duration::from_millis(5));
        // Full of expired ones: they make room.
        assert!(quick.start("c".into(), IP, vec![1], "mail", "/mail".into()));
    }
}
