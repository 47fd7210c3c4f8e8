//! The failed-login throttle, shared by every protocol and the web logins.
//!
//! What it must not do is let an attacker lock the real user out: a lock on the account itself
//! (ten wrong passwords from anywhere) would be exactly that, renewable forever. So failures
//! are counted under three keys, each with its own consequence:
//!
//! - **per (address, account) pair**: from `slow_after` failures each answer to that address
//!   for that account waits one more second (up to `max_delay_secs`); from `lock_after` that
//!   address is refused for that account for `lock_secs`. The attacker locks out only itself.
//! - **per address**, over every account: from `ip_lock_after` failures the address is refused
//!   for every account (one address spraying a password over many accounts).
//! - **per account**, from every address: from `lock_after` failures the account is under
//!   attack from more addresses than one, and attempts for it from addresses it has not
//!   signed in from lately are slowed (one second per further failure, up to
//!   `max_delay_secs`); they are never refused for it. Addresses it signed in from in the last
//!   [`KNOWN_FOR`] are not slowed.
//!
//! An IPv6 "address" is its /64 (one customer's prefix, which the attacker can fill with
//! addresses at will); an IPv4-mapped IPv6 address counts as the IPv4 address.
//!
//! An attempt is counted *before* its password is checked ([`Throttle::attempt`] reserves it,
//! [`Attempt::succeeded`] releases it, [`Attempt::failed`] makes it a failure): while
//! `failures + attempts in flight` of a pair (or of an address) has reached its limit, further
//! attempts are refused, so sending guesses in parallel gains nothing.
//!
//! Every failure and lock is logged at WARN in one fixed format that fail2ban can match:
//! `authentication failed: protocol=imap ip=203.0.113.7 account=alice@example.org`.
//!
//! The tables live in memory: a restart forgets them, which is acceptable (an attacker gains
//! one window) and keeps a login from needing a database write. Each table holds at most
//! [`MAX_ENTRIES`] keys: when full, stale entries go first, then the least recently touched.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

/// How long an address a user signed in from stays "known" (not slowed when the account is
/// under attack): a month covers a laptop that is used weekly.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Keys per table. An entry costs at most about 350 bytes (account names are cut at
/// [`MAX_NAME`]), so the tables stay under about 60 MB however many addresses and account
/// names an attacker uses (a few MB with names of a real length).
pub const MAX_ENTRIES: usize = 50_000;

/// Account names are cut to this many bytes as keys (an address is at most 254 octets).
const MAX_NAME: usize = 256;

/// Where a login comes from, as the throttle counts it: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for Origin {
    fn from(ip: IpAddr) -> Origin {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Origin::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Origin::V6Prefix(prefix)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// Attempts reserved and not yet decided (their passwords are being checked).
    pending: u32,
    /// The last failure (or the creation): failures are forgotten `window_secs` after it.
    last: Instant,
    locked_until: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record {
            failures: 0,
            pending: 0,
            last: now,
            locked_until: None,
        }
    }

    /// Brings the record up to `now`: an ended lock gives the key one more try before the next
    /// lock (not a fresh allowance of `limit`), and a quiet window forgets the failures.
    fn refresh(&mut self, now: Instant, window: Duration, limit: u32) {
        if self.locked_until.is_some_and(|u| u <= now) {
            self.locked_until = None;
            self.failures = self.failures.min(limit.saturating_sub(1));
        }
        if self.locked_until.is_none() && now.saturating_duration_since(self.last) > window {
            self.failures = 0;
        }
    }

    /// Nothing worth keeping: no lock, no attempt in flight, no failure in the window.
    fn stale(&self, now: Instant, window: Duration) -> bool {
        self.pending == 0
            && self.locked_until.is_none_or(|u| u <= now)
            && (self.failures == 0 || now.saturating_duration_since(self.last) > window)
    }
}

/// A map with at most `cap` keys.
struct Table<K> {
    map: HashMap<K, Record>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(cap: usize) -> Table<K> {
        Table {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// The record of `key`, refreshed, or `None` when there is none.
    fn get(&mut self, key: &K, now: Instant, window: Duration, limit: u32) -> Option<&Record> {
        let rec = self.map.get_mut(key)?;
        rec.refresh(now, window, limit);
        Some(rec)
    }

    /// The record of `key`, refreshed, created when missing (evicting others if full).
    fn entry(&mut self, key: K, now: Instant, window: Duration, limit: u32) -> &mut Record {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.make_room(now, window);
        }
        let rec = self.map.entry(key).or_insert_with(|| Record::new(now));
        rec.refresh(now, window, limit);
        rec
    }

    /// Drops stale records; if that is not enough, the least recently touched tenth, locked
    /// records and records with attempts in flight last (so flushing out one lock takes a
    /// table full of locks, each earned with `lock_after` failures). One sort per `cap / 10`
    /// insertions rather than a scan per insertion.
    fn make_room(&mut self, now: Instant, window: Duration) {
        self.map.retain(|_, r| !r.stale(now, window));
        if self.map.len() < self.cap {
            return;
        }
        let mut by_age: Vec<((bool, bool, Instant), K)> = self
            .map
            .iter()
            .map(|(k, r)| {
                let locked = r.locked_until.is_some_and(|u| u > now);
                ((r.pending > 0, locked, r.last), k.clone())
            })
            .collect();
        by_age.sort_unstable_by_key(|(order, _)| *order);
        let excess = self.map.len() + 1 - self.cap;
        let evict = excess.max(self.cap / 10);
        for (_, key) in by_age.into_iter().take(evict) {
            self.map.remove(&key);
        }
    }
}

/// When the account last signed in from an origin, with the same bound as the tables.
struct Known {
    map: HashMap<(Origin, String), Instant>,
    cap: usize,
}

impl Known {
    fn contains(&self, key: &(Origin, String), now: Instant) -> bool {
        self.map
            .get(key)
            .is_some_and(|t| now.saturating_duration_since(*t) <= KNOWN_FOR)
    }

    fn insert(&mut self, key: (Origin, String), now: Instant) {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.map
                .retain(|_, t| now.saturating_duration_since(*t) <= KNOWN_FOR);
            if self.map.len() >= self.cap {
                let mut by_age: Vec<(Instant, (Origin, String))> =
                    self.map.iter().map(|(k, t)| (*t, k.clone())).collect();
                by_age.sort_unstable_by_key(|(t, _)| *t);
                let evict = (self.map.len() + 1 - self.cap).max(self.cap / 10);
                for (_, k) in by_age.into_iter().take(evict) {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(key, now);
    }
}

struct Tables {
    pairs: Table<(Origin, String)>,
    origins: Table<Origin>,
    accounts: Table<String>,
    known: Known,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting this long.
    Allow(Duration),
    /// Refused without checking the password; try again after this long.
    Locked(Duration),
}

pub struct Throttle {
    config: AuthConfig,
    /// One lock over all tables, so a reservation checks and counts atomically (two locks
    /// would let parallel attempts all pass the check before any is counted). Logins are
    /// rare next to what the lock costs, and it is never held across an await.
    tables: Mutex<Tables>,
}

/// An attempt the throttle let through and counts as in flight until it is decided. Dropping
/// it undecided (the login was abandoned before its answer was sent) releases it.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    ip: IpAddr,
    origin: Origin,
    account: String,
    delay: Duration,
    decided: bool,
}

impl Throttle {
    pub fn new(config: AuthConfig) -> Throttle {
        Throttle::with_capacity(config, MAX_ENTRIES)
    }

    /// A throttle whose tables hold at most `cap` keys each.
    pub fn with_capacity(config: AuthConfig, cap: usize) -> Throttle {
        Throttle {
            config,
            tables: Mutex::new(Tables {
                pairs: Table::new(cap),
                origins: Table::new(cap),
                accounts: Table::new(cap),
                known: Known {
                    map: HashMap::new(),
                    cap: cap.max(1),
                },
            }),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_secs)
    }

    fn pair_limit(&self) -> u32 {
        self.config.lock_after.max(1)
    }

    fn origin_limit(&self) -> u32 {
        self.config.ip_lock_after.max(1)
    }

    fn max_delay(&self) -> Duration {
        Duration::from_secs(self.config.max_delay_secs)
    }

    /// What an attempt from `ip` for `account` would meet now, without making one (for
    /// status pages and tests).
    pub fn check(&self, ip: IpAddr, account: &str) -> Verdict {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        match self.judge(
            &mut t,
            Origin::from(ip),
            &normalize(account),
            Instant::now(),
        ) {
            Ok(delay) => Verdict::Allow(delay),
            Err(wait) => Verdict::Locked(wait),
        }
    }

    /// Reserves an attempt from `ip` for `account`, before its password is checked: the
    /// attempt (to be waited for its [`Attempt::delay`], then decided), or how long to wait
    /// before trying again.
    pub fn attempt(&self, ip: IpAddr, account: &str) -> Result<Attempt<'_>, Duration> {
        self.attempt_at(ip, account, Instant::now())
    }

    fn attempt_at(&self, ip: IpAddr, account: &str, now: Instant) -> Result<Attempt<'_>, Duration> {
        let origin = Origin::from(ip);
        let account = normalize(account);
        // A poisoned lock means a panic elsewhere; refusing every login would be a lock-out of
        // its own, so the tables are used as they are. The check and the reservation happen
        // under one hold of the lock.
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let delay = self.judge(&mut t, origin, &account, now)?;
        let (window, pair_limit, origin_limit) =
            (self.window(), self.pair_limit(), self.origin_limit());
        t.pairs
            .entry((origin, account.clone()), now, window, pair_limit)
            .pending += 1;
        t.origins.entry(origin, now, window, origin_limit).pending += 1;
        Ok(Attempt {
            throttle: self,
            ip,
            origin,
            account,
            delay,
            decided: false,
        })
    }

    /// The delay before an attempt's password check, or how long it is refused.
    fn judge(
        &self,
        t: &mut Tables,
        origin: Origin,
        account: &str,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let (window, pair_limit, origin_limit) =
            (self.window(), self.pair_limit(), self.origin_limit());
        let pair_key = (origin, account.to_owned());
        let pair = t.pairs.get(&pair_key, now, window, pair_limit).copied();
        let from = t.origins.get(&origin, now, window, origin_limit).copied();
        let mut wait = Duration::ZERO;
        for (rec, limit) in [(pair, pair_limit), (from, origin_limit)] {
            let Some(rec) = rec else { continue };
            if let Some(until) = rec.locked_until {
                wait = wait.max(until.saturating_duration_since(now));
            } else if rec.failures.saturating_add(rec.pending) >= limit {
                // Not locked yet, but the attempts in flight would take the key to its limit:
                // they are decided within the longest delay plus a password check.
                wait = wait.max(self.max_delay().max(Duration::from_secs(1)));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        let mut delay = steps(pair.map_or(0, |r| r.failures), self.config.slow_after);
        if !t.known.contains(&pair_key, now) {
            let attacked = t
                .accounts
                .get(&pair_key.1, now, window, u32::MAX)
                .map_or(0, |r| r.failures);
            delay = delay.max(steps(attacked, self.config.lock_after));
        }
        Ok(delay.min(self.max_delay()))
    }

    /// Ends an attempt in flight: `failure` counts it; either way it is no longer pending.
    fn decide(&self, attempt: &Attempt<'_>, failure: Option<&str>, now: Instant) {
        let (window, pair_limit, origin_limit) =
            (self.window(), self.pair_limit(), self.origin_limit());
        let lock = Duration::from_secs(self.config.lock_secs);
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let pair_key = (attempt.origin, attempt.account.clone());
        let mut locked = false;
        {
            let pair = t.pairs.entry(pair_key.clone(), now, window, pair_limit);
            pair.pending = pair.pending.saturating_sub(1);
            if failure.is_some() {
                locked |= count_failure(pair, now, pair_limit, lock);
            } else {
                // The user is back: this address's mistakes for this account are forgotten.
                pair.failures = 0;
                pair.locked_until = None;
            }
        }
        {
            // The address's failures are not cleared by a success, so a guesser cannot reset
            // its count by signing in to an account of its own.
            let from = t.origins.entry(attempt.origin, now, window, origin_limit);
            from.pending = from.pending.saturating_sub(1);
            if failure.is_some() {
                locked |= count_failure(from, now, origin_limit, lock);
            }
        }
        match failure {
            Some(_) => {
                // The account's own count never locks; it only slows unknown addresses.
                let acct = t
                    .accounts
                    .entry(attempt.account.clone(), now, window, u32::MAX);
                acct.failures = acct.failures.saturating_add(1);
                acct.last = now;
            }
            None => t.known.insert(pair_key, now),
        }
        drop(t);
        if let Some(protocol) = failure {
            let (ip, account) = (attempt.ip, printable(&attempt.account));
            tracing::warn!(
                target: "mailroom::auth",
                "authentication failed: protocol={protocol} ip={ip} account={account}"
            );
            if locked {
                tracing::warn!(
                    target: "mailroom::auth",
                    "authentication locked: protocol={protocol} ip={ip} account={account} seconds={}",
                    self.config.lock_secs
                );
            }
        }
    }
}

impl Attempt<'_> {
    /// How long to wait before checking the password.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The password was right: the attempt is released, not counted, and the address becomes
    /// one the account is known to sign in from.
    pub fn succeeded(self) {
        self.finish_at(None, Instant::now());
    }

    /// The password was wrong (or the account unknown or disabled): counted, and logged for
    /// fail2ban.
    pub fn failed(self, protocol: &str) {
        self.finish_at(Some(protocol), Instant::now());
    }

    fn finish_at(mut self, failure: Option<&str>, now: Instant) {
        self.decided = true;
        self.throttle.decide(&self, failure, now);
    }

    fn release(&mut self) {
        if self.decided {
            return;
        }
        self.decided = true;
        let mut t = self
            .throttle
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pair_key = (self.origin, std::mem::take(&mut self.account));
        if let Some(r) = t.pairs.map.get_mut(&pair_key) {
            r.pending = r.pending.saturating_sub(1);
        }
        if let Some(r) = t.origins.map.get_mut(&self.origin) {
            r.pending = r.pending.saturating_sub(1);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Counts one failure on `rec`; true when it starts a lock.
fn count_failure(rec: &mut Record, now: Instant, limit: u32, lock: Duration) -> bool {
    rec.failures = rec.failures.saturating_add(1);
    rec.last = now;
    if rec.failures >= limit && rec.locked_until.is_none() {
        // Capped, so an absurd `lock_secs` cannot overflow the clock.
        rec.locked_until = Some(now + lock.min(Duration::from_secs(366 * 24 * 3600)));
        return true;
    }
    false
}

/// One second per failure from the `from`-th on.
fn steps(failures: u32, from: u32) -> Duration {
    let over = failures.saturating_sub(from.saturating_sub(1));
    Duration::from_secs(u64::from(over))
}

fn normalize(account: &str) -> String {
    let mut s = account.trim().to_lowercase();
    if s.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
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
            ip_lock_after: 100,
            max_delay_secs: 10,
            window_secs: 600,
            ..AuthConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One attempt decided at once: its delay, or the refusal.
    fn fail(t: &Throttle, from: &str, account: &str, now: Instant) -> Result<Duration, Duration> {
        let a = t.attempt_at(ip(from), account, now)?;
        let delay = a.delay();
        a.finish_at(Some("imap"), now);
        Ok(delay)
    }

    fn succeed(
        t: &Throttle,
        from: &str,
        account: &str,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let a = t.attempt_at(ip(from), account, now)?;
        let delay = a.delay();
        a.finish_at(None, now);
        Ok(delay)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_pair_slows_then_locks_only_itself() {
        let t = Throttle::new(config());
        let now = Instant::now();
        // The delays before each check: failures 0 and 1 wait nothing, then 1 s more each.
        let delays: Vec<_> = (0..4).map(|_| fail(&t, "192.0.2.1", "a@x", now)).collect();
        assert_eq!(delays, [Ok(secs(0)), Ok(secs(0)), Ok(secs(1)), Ok(secs(2))]);
        // Locked for this pair, even with the right password, whatever the case of the name.
        assert!(matches!(succeed(&t, "192.0.2.1", "A@X ", now), Err(d) if d == secs(60)));
        // Not for the account from another address, nor for the address on another account.
        assert!(succeed(&t, "192.0.2.2", "a@x", now).is_ok());
        assert_eq!(succeed(&t, "192.0.2.1", "b@x", now), Ok(secs(0)));
    }

    #[test]
    fn the_real_user_is_never_locked_out_by_an_attack_from_many_addresses() {
        let t = Throttle::new(config());
        let now = Instant::now();
        // The user's phone signed in before the attack.
        assert_eq!(succeed(&t, "198.51.100.7", "a@x", now), Ok(secs(0)));
        // 50 addresses guess until each is refused: 4 guesses each, 200 in all.
        let mut checked = 0;
        for n in 0..50 {
            let from = format!("203.0.113.{n}");
            while fail(&t, &from, "a@x", now).is_ok() {
                checked += 1;
            }
        }
        assert_eq!(checked, 50 * 4);
        // The known address is not slowed; a new one is slowed to the most, never refused.
        assert_eq!(succeed(&t, "198.51.100.7", "a@x", now), Ok(secs(0)));
        assert_eq!(succeed(&t, "192.0.2.99", "a@x", now), Ok(secs(10)));
        // Having signed in from there, it is known too.
        assert_eq!(succeed(&t, "192.0.2.99", "a@x", now), Ok(secs(0)));
        // Another account is not slowed at all.
        assert_eq!(succeed(&t, "192.0.2.98", "b@x", now), Ok(secs(0)));
    }

    #[test]
    fn attempts_in_flight_count_toward_the_limit() {
        let t = Throttle::new(config());
        let now = Instant::now();
        let from = ip("192.0.2.1");
        let held: Vec<_> = (0..4)
            .map(|_| t.attempt_at(from, "a@x", now).expect("under the limit"))
            .collect();
        // A fifth one in parallel is refused before any of the four is decided.
        assert!(t.attempt_at(from, "a@x", now).is_err());
        let mut held = held.into_iter();
        // A success releases its place, and so does an abandoned attempt.
        held.next().unwrap().finish_at(None, now);
        let again = t
            .attempt_at(from, "a@x", now)
            .expect("a place was released");
        assert!(t.attempt_at(from, "a@x", now).is_err());
        drop(again);
        let again = t.attempt_at(from, "a@x", now).expect("dropped, released");
        // The four in flight fail: the pair is locked, not merely full.
        for a in held.chain([again]) {
            a.finish_at(Some("imap"), now);
        }
        assert!(matches!(t.attempt_at(from, "a@x", now), Err(d) if d == secs(60)));
    }

    #[test]
    fn an_address_spraying_many_accounts_is_locked_for_all() {
        let t = Throttle::new(AuthConfig {
            ip_lock_after: 5,
            ..config()
        });
        let now = Instant::now();
        for n in 0..5 {
            assert_eq!(fail(&t, "192.0.2.1", &format!("u{n}@x"), now), Ok(secs(0)));
        }
        assert!(fail(&t, "192.0.2.1", "other@x", now).is_err());
        assert!(fail(&t, "192.0.2.2", "other@x", now).is_ok());
    }

    #[test]
    fn an_ipv6_address_counts_as_its_slash_64() {
        let t = Throttle::new(AuthConfig {
            ip_lock_after: 5,
            ..config()
        });
        let now = Instant::now();
        // Every guess from a new address of the same /64.
        for n in 0..4 {
            assert!(fail(&t, &format!("2001:db8:1:2::{n}"), "a@x", now).is_ok());
        }
        assert!(fail(&t, "2001:db8:1:2:ffff::1", "a@x", now).is_err());
        assert!(fail(&t, "2001:db8:1:3::1", "a@x", now).is_ok());
        // An IPv4-mapped address is its IPv4 address.
        for _ in 0..4 {
            assert!(fail(&t, "192.0.2.5", "a@x", now).is_ok());
        }
        assert!(fail(&t, "::ffff:192.0.2.5", "a@x", now).is_err());
    }

    #[test]
    fn a_success_clears_the_pair_but_not_the_address() {
        let t = Throttle::new(AuthConfig {
            ip_lock_after: 5,
            ..config()
        });
        let now = Instant::now();
        for _ in 0..3 {
            fail(&t, "192.0.2.1", "a@x", now).unwrap();
        }
        assert_eq!(succeed(&t, "192.0.2.1", "a@x", now), Ok(secs(2)));
        assert_eq!(fail(&t, "192.0.2.1", "a@x", now), Ok(secs(0)));
        // The address has 4 failures: its own account's success did not reset them.
        fail(&t, "192.0.2.1", "b@x", now).unwrap();
        assert!(succeed(&t, "192.0.2.1", "a@x", now).is_err());
    }

    #[test]
    fn a_lock_ends_with_one_more_try_and_a_quiet_window_forgets() {
        let t = Throttle::new(config());
        let now = Instant::now();
        for _ in 0..4 {
            fail(&t, "192.0.2.1", "a@x", now).unwrap();
        }
        assert!(fail(&t, "192.0.2.1", "a@x", now + secs(59)).is_err());
        // Refused attempts did not extend the lock; after it, one guess, then locked again.
        let later = now + secs(61);
        assert_eq!(fail(&t, "192.0.2.1", "a@x", later), Ok(secs(2)));
        assert!(matches!(fail(&t, "192.0.2.1", "a@x", later), Err(d) if d == secs(60)));
        // A window after the last failure (and past the lock), the count is gone.
        let quiet = later + secs(601);
        assert_eq!(fail(&t, "192.0.2.1", "a@x", quiet), Ok(secs(0)));
        assert_eq!(fail(&t, "192.0.2.1", "a@x", quiet), Ok(secs(0)));
        assert_eq!(fail(&t, "192.0.2.1", "a@x", quiet), Ok(secs(1)));
    }

    #[test]
    fn the_tables_stay_bounded_and_keep_the_newest() {
        let t = Throttle::with_capacity(config(), 100);
        let now = Instant::now();
        for n in 0..5000u32 {
            let [_, _, a, b] = n.to_be_bytes();
            let from = format!("10.0.{a}.{b}");
            let at = now + Duration::from_millis(u64::from(n));
            fail(&t, &from, &format!("user{n}@x"), at).unwrap();
            succeed(&t, &from, &format!("own{n}@x"), at).unwrap();
        }
        let tables = t.tables.lock().unwrap();
        assert!(tables.pairs.map.len() <= 100, "{}", tables.pairs.map.len());
        assert!(tables.origins.map.len() <= 100);
        assert!(tables.accounts.map.len() <= 100);
        assert!(tables.known.map.len() <= 100);
        // The newest entries are the ones kept.
        let newest = (Origin::from(ip("10.0.19.135")), "user4999@x".to_string());
        assert_eq!(tables.pairs.map.get(&newest).map(|r| r.failures), Some(1));
        assert!(tables.accounts.map.contains_key("user4999@x"));
        drop(tables);
        // A long name is cut, so it cannot make an entry of any size.
        let long = "x".repeat(100_000);
        fail(&t, "192.0.2.7", &long, now).unwrap();
        let tables = t.tables.lock().unwrap();
        assert!(tables.accounts.map.keys().all(|k| k.len() <= MAX_NAME));
    }

    #[test]
    fn a_flood_of_new_keys_does_not_push_out_a_lock() {
        let t = Throttle::with_capacity(config(), 100);
        let now = Instant::now();
        for _ in 0..4 {
            fail(&t, "192.0.2.1", "a@x", now).unwrap();
        }
        // Newer keys, one failure each from addresses that do not lock.
        for n in 0..5000u32 {
            let [_, _, a, b] = n.to_be_bytes();
            let at = now + Duration::from_millis(u64::from(n));
            fail(&t, &format!("10.1.{a}.{b}"), &format!("u{n}@x"), at).unwrap();
        }
        assert!(t.tables.lock().unwrap().pairs.map.len() <= 100);
        assert!(fail(&t, "192.0.2.1", "a@x", now + secs(5)).is_err());
    }

    #[test]
    fn log_names_are_sanitised() {
        assert_eq!(printable("a b\r\nip=1.2.3.4"), "a?b??ip=1.2.3.4");
        assert_eq!(printable(""), "-");
    }
}
