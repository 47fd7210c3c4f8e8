//! Username-less passkey sign-ins under way ("Sign in with a passkey"): the challenge given to
//! a browser, until it answers or [`CEREMONY_SECS`] pass. Anyone may start one, so they live in
//! memory, bounded ([`MAX_CEREMONIES`]), instead of costing a database write each: a flood of
//! them is refused (503) past the bound and never holds up the writer that mail delivery uses.
//! A restart forgets them (a browser asks for a new challenge).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a browser has to answer a challenge.
pub const CEREMONY_SECS: u64 = 5 * 60;
/// Ceremonies under way at once; about 200 bytes each.
pub const MAX_CEREMONIES: usize = 10_000;

/// One ceremony: its challenge, and where the sign-in leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub challenge: Vec<u8>,
    /// `admin` or `mail`.
    pub area: &'static str,
    pub next: String,
    started: Instant,
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

    /// Starts a ceremony under `token`; false when too many are under way.
    pub fn start(
        &self,
        token: String,
        challenge: Vec<u8>,
        area: &'static str,
        next: String,
    ) -> bool {
        let Ok(mut live) = self.live.lock() else {
            return false;
        };
        if live.len() >= self.cap {
            let ttl = self.ttl;
            live.retain(|_, c| c.started.elapsed() < ttl);
            if live.len() >= self.cap {
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

    #[test]
    fn bounded_single_use_and_expiring() {
        let c = Ceremonies::new(2, Duration::from_secs(60));
        assert!(c.start("a".into(), vec![1], "mail", "/mail".into()));
        assert!(c.start("b".into(), vec![2], "mail", "/mail".into()));
        assert!(
            !c.start("c".into(), vec![3], "mail", "/mail".into()),
            "full"
        );
        assert_eq!(c.take("a").unwrap().challenge, vec![1]);
        assert!(c.take("a").is_none(), "once");
        assert!(
            c.start("c".into(), vec![3], "mail", "/mail".into()),
            "room again"
        );

        let quick = Ceremonies::new(1, Duration::from_millis(1));
        assert!(quick.start("a".into(), vec![1], "mail", "/mail".into()));
        std::thread::sleep(Duration::from_millis(5));
        assert!(quick.take("a").is_none(), "expired");
        assert!(quick.start("b".into(), vec![1], "mail", "/mail".into()));
        std::thread::sleep(Duration::from_millis(5));
        // Full of expired ones: they make room.
        assert!(quick.start("c".into(), vec![1], "mail", "/mail".into()));
    }
}
