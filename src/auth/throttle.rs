//! The failed-login throttle, shared by every protocol and the web logins.
//!
//! Failures are counted per client IP and per account name over a sliding window
//! (`[auth] window_secs`). From `slow_after` failures on, each attempt waits one more second
//! before it is answered (up to 10 s), which makes guessing slow without hurting a user who
//! mistyped once; from `lock_after` failures on, attempts are refused outright for `lock_secs`.
//! Counting per account as well as per IP stops a botnet spreading guesses over many IPs.
//!
//! Every failure and lock is logged at WARN in one fixed format that fail2ban can match:
//! `authentication failed: protocol=imap ip=203.0.113.7 account=alice@example.org`.
//!
//! The tables live in memory: a restart forgets them, which is acceptable (an attacker gains
//! one window) and keeps a login from needing a database write. They are pruned as they grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting this long.
    Allow(Duration),
    /// Refuse without checking the password; try again after this long.
    Locked(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

const MAX_DELAY: Duration = Duration::from_secs(10);
const PRUNE_AT: usize = 50_000;

pub struct Throttle {
    config: AuthConfig,
    by_ip: Mutex<HashMap<IpAddr, Record>>,
    by_account: Mutex<HashMap<String, Record>>,
}

impl Throttle {
    pub fn new(config: AuthConfig) -> Throttle {
        Throttle {
            config,
            by_ip: Mutex::new(HashMap::new()),
            by_account: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_secs)
    }

    /// What to do with an attempt from `ip` for `account`, before checking its password.
    pub fn check(&self, ip: IpAddr, account: &str) -> Verdict {
        let now = Instant::now();
        let ip_rec = lookup(&self.by_ip, &ip, now, self.window());
        let acct_rec = lookup(&self.by_account, &normalize(account), now, self.window());
        let mut lock = Duration::ZERO;
        let mut failures = 0;
        for rec in [ip_rec, acct_rec].into_iter().flatten() {
            if let Some(until) = rec.locked_until.filter(|u| *u > now) {
                lock = lock.max(until - now);
            }
            failures = failures.max(rec.failures);
        }
        if lock > Duration::ZERO {
            return Verdict::Locked(lock);
        }
        let over = failures.saturating_sub(self.config.slow_after.saturating_sub(1));
        Verdict::Allow(Duration::from_secs(u64::from(over)).min(MAX_DELAY))
    }

    /// Records a failed attempt and logs it for fail2ban.
    pub fn failed(&self, protocol: &str, ip: IpAddr, account: &str) {
        let account = normalize(account);
        tracing::warn!(
            target: "mailroom::auth",
            "authentication failed: protocol={protocol} ip={ip} account={}",
            printable(&account)
        );
        let now = Instant::now();
        let ip_locked = self.bump(&self.by_ip, ip, now);
        let acct_locked = self.bump(&self.by_account, account.clone(), now);
        if ip_locked || acct_locked {
            tracing::warn!(
                target: "mailroom::auth",
                "authentication locked: protocol={protocol} ip={ip} account={} seconds={}",
                printable(&account),
                self.config.lock_secs
            );
        }
    }

    /// A successful login clears the account's failures (the IP's decay with the window, so a
    /// guesser cannot reset its count by logging into an account of its own).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut map) = self.by_account.lock() {
            map.remove(&normalize(account));
        }
    }

    /// Counts one failure; true when it starts a lock.
    fn bump<K: Hash + Eq>(&self, map: &Mutex<HashMap<K, Record>>, key: K, now: Instant) -> bool {
        let Ok(mut map) = map.lock() else {
            return false;
        };
        if map.len() >= PRUNE_AT {
            let window = self.window();
            map.retain(|_, r| !expired(r, now, window));
        }
        let rec = map.entry(key).or_insert(Record {
            failures: 0,
            first: now,
            locked_until: None,
        });
        if expired(rec, now, self.window()) {
            *rec = Record {
                failures: 0,
                first: now,
                locked_until: None,
            };
        }
        rec.failures = rec.failures.saturating_add(1);
        if rec.failures >= self.config.lock_after && rec.locked_until.is_none_or(|u| u <= now) {
            rec.locked_until = Some(now + Duration::from_secs(self.config.lock_secs));
            // A lock outlives the window it was earned in.
            rec.first = now;
            return true;
        }
        false
    }
}

fn lookup<K: Hash + Eq>(
    map: &Mutex<HashMap<K, Record>>,
    key: &K,
    now: Instant,
    window: Duration,
) -> Option<Record> {
    let map = map.lock().ok()?;
    map.get(key).copied().filter(|r| !expired(r, now, window))
}

fn expired(r: &Record, now: Instant, window: Duration) -> bool {
    let locked = r.locked_until.is_some_and(|u| u > now);
    !locked && now.duration_since(r.first) > window
}

fn normalize(account: &str) -> String {
    account.trim().to_lowercase()
}

/// An account name as it may appear in a log line: no spaces or control characters that could
/// forge a second log entry or confuse a fail2ban pattern.
fn printable(account: &str) -> String {
    let s: String = account
        .chars()
        .take(128)
        .map(|c| {
            if c.is_control() || c.is_whitespace() {
                '?'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            allow_plaintext: false,
            slow_after: 2,
            lock_after: 4,
            lock_secs: 60,
            window_secs: 600,
        }
    }

    #[test]
    fn slows_then_locks() {
        let t = Throttle::new(config());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.check(ip, "a@x"), Verdict::Allow(Duration::ZERO));
        t.failed("imap", ip, "a@x");
        assert_eq!(t.check(ip, "a@x"), Verdict::Allow(Duration::ZERO));
        t.failed("imap", ip, "a@x");
        assert_eq!(t.check(ip, "a@x"), Verdict::Allow(Duration::from_secs(1)));
        t.failed("imap", ip, "a@x");
        assert_eq!(t.check(ip, "a@x"), Verdict::Allow(Duration::from_secs(2)));
        t.failed("imap", ip, "a@x");
        assert!(matches!(t.check(ip, "a@x"), Verdict::Locked(d) if d > Duration::from_secs(50)));
        // The lock holds for the account from another IP, and for the IP on another account.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(matches!(t.check(other, "A@X"), Verdict::Locked(_)));
        assert!(matches!(t.check(ip, "b@x"), Verdict::Locked(_)));
        assert_eq!(t.check(other, "b@x"), Verdict::Allow(Duration::ZERO));
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let t = Throttle::new(config());
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..3 {
            t.failed("pop3", ip, "a@x");
        }
        t.succeeded("a@x");
        let other: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(t.check(other, "a@x"), Verdict::Allow(Duration::ZERO));
        assert_eq!(t.check(ip, "c@x"), Verdict::Allow(Duration::from_secs(2)));
    }

    #[test]
    fn log_names_are_sanitised() {
        assert_eq!(printable("a b\r\nip=1.2.3.4"), "a?b??ip=1.2.3.4");
        assert_eq!(printable(""), "-");
    }
}
