//! The verified-credentials cache: which (account, password) pairs passed the argon2id check
//! in the last few minutes, so that a mail client that connects, works and disconnects in a
//! loop pays for the hash once per [`AuthConfig::cache_secs`] instead of on every login
//! (argon2id costs tens of milliseconds of CPU and 19 MiB; ten such clients on two cores spend
//! most of their time in LOGIN).
//!
//! What is kept, and why it is safe:
//!
//! - Only a **keyed hash**: HMAC-SHA256 under a key drawn from the system's random source when
//!   the process starts, over (account id, the stored password hash the password was checked
//!   against, the password). No password and no unkeyed digest of one is kept, so a memory
//!   dump does not give an offline guessing target that is cheaper than argon2 without the
//!   key, and the key dies with the process. Entries are compared in constant time
//!   (`ring::hmac::verify`).
//! - **Bound to the stored hash.** Every login still reads the account from the store; the
//!   tag covers the account's *current* password hash, so after a password change (a new
//!   salted hash, even for the same password) no old entry can match, whoever changed it: the
//!   admin panel, the webmail, or `mailroom user passwd` from another process, which cannot
//!   reach this process's memory. A disabled or removed account is refused by the store read
//!   before the cache is asked. The hooks that drop an account's entries
//!   ([`CredentialsCache::forget_account`], through `Authenticator::forget_account`) free the
//!   memory at once (app-password revocation calls them too); correctness does not depend
//!   on them.
//! - **Account passwords only.** App passwords are never cached (their keyed-hash check costs
//!   less than a cache lookup would save), and with two-factor sign-in on a cache hit is
//!   refused like a checked password: `Authenticator::login` asks after either.
//! - **Only successes.** A failed check is never remembered, so each wrong guess costs a full
//!   argon2 check, and the throttle counts it before any check, cached or not.
//! - **Bounded**: at most [`AuthConfig::cache_entries`] entries in all and
//!   [`MAX_PER_ACCOUNT`] per account, each about 50 bytes; when full, expired entries go
//!   first, then those closest to expiry.
//!
//! [`AuthConfig::cache_secs`]: crate::config::AuthConfig::cache_secs
//! [`AuthConfig::cache_entries`]: crate::config::AuthConfig::cache_entries

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Entries per account: one per distinct password that works for it (the account's one
/// password; a few while a password change is recent), beyond which the oldest goes.
pub const MAX_PER_ACCOUNT: usize = 8;

#[derive(Clone, Copy)]
struct Entry {
    tag: [u8; 32],
    expires: Instant,
}

#[derive(Default)]
struct Entries {
    by_account: HashMap<i64, Vec<Entry>>,
    count: usize,
}

impl Entries {
    fn drop_expired(&mut self, now: Instant) {
        let mut count = 0;
        self.by_account.retain(|_, v| {
            v.retain(|e| e.expires > now);
            count += v.len();
            !v.is_empty()
        });
        self.count = count;
    }

    /// Makes room for one more entry under a cap of `cap`: expired entries first, then the
    /// tenth closest to expiry (one sort per `cap / 10` insertions, not a scan per insertion).
    fn make_room(&mut self, cap: usize, now: Instant) {
        self.drop_expired(now);
        if self.count < cap {
            return;
        }
        let mut by_expiry: Vec<(Instant, i64)> = self
            .by_account
            .iter()
            .flat_map(|(id, v)| v.iter().map(move |e| (e.expires, *id)))
            .collect();
        by_expiry.sort_unstable_by_key(|(t, _)| *t);
        let evict = (self.count + 1 - cap).max(cap / 10);
        if let Some((cutoff, _)) = by_expiry.get(evict.saturating_sub(1)) {
            let cutoff = *cutoff;
            let mut count = 0;
            self.by_account.retain(|_, v| {
                v.retain(|e| e.expires > cutoff);
                count += v.len();
                !v.is_empty()
            });
            self.count = count;
        }
    }
}

pub struct CredentialsCache {
    /// `None` when the cache is off (`cache_secs = 0`, or no random key could be drawn).
    key: Option<hmac::Key>,
    ttl: Duration,
    cap: usize,
    entries: Mutex<Entries>,
}

impl CredentialsCache {
    /// A cache keeping entries for `ttl`, at most `cap` of them; off when either is zero.
    pub fn new(ttl: Duration, cap: usize) -> CredentialsCache {
        let key = if ttl.is_zero() || cap == 0 {
            None
        } else {
            let mut bytes = [0u8; 32];
            match SystemRandom::new().fill(&mut bytes) {
                Ok(()) => Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
                Err(_) => {
                    tracing::warn!(
                        target: "mailroom::auth",
                        "no random key for the credentials cache; every login checks the hash"
                    );
                    None
                }
            }
        };
        CredentialsCache {
            key,
            ttl,
            cap,
            entries: Mutex::new(Entries::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    /// The message the tag is computed over: every part length-prefixed, so no two
    /// different triples give the same bytes.
    fn message(account_id: i64, stored_hash: &str, password: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(24 + stored_hash.len() + password.len());
        m.extend_from_slice(&account_id.to_le_bytes());
        m.extend_from_slice(&(stored_hash.len() as u64).to_le_bytes());
        m.extend_from_slice(stored_hash.as_bytes());
        m.extend_from_slice(&(password.len() as u64).to_le_bytes());
        m.extend_from_slice(password.as_bytes());
        m
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A poisoned lock means a panic elsewhere while holding it; the map is still a valid
        // map (every mutation leaves it one), and refusing logins for it would be worse.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `password` was verified against `stored_hash` (the account's password hash as
    /// the store has it now) for account `account_id` less than the lifetime ago.
    pub fn hit(&self, account_id: i64, stored_hash: &str, password: &str) -> bool {
        self.hit_at(account_id, stored_hash, password, Instant::now())
    }

    fn hit_at(&self, account_id: i64, stored_hash: &str, password: &str, now: Instant) -> bool {
        let Some(key) = &self.key else { return false };
        // Copied out so the lock is not held while the tags are computed.
        let tags: Vec<[u8; 32]> = match self.lock().by_account.get(&account_id) {
            Some(v) => v
                .iter()
                .filter(|e| e.expires > now)
                .map(|e| e.tag)
                .collect(),
            None => return false,
        };
        if tags.is_empty() {
            return false;
        }
        let message = Self::message(account_id, stored_hash, password);
        // Every entry is checked, with ring's constant-time tag comparison.
        tags.iter().fold(false, |found, tag| {
            hmac::verify(key, &message, tag).is_ok() | found
        })
    }

    /// Remembers that `password` matched `stored_hash` for `account_id` just now. Call only
    /// after a successful check of an account that may log in.
    pub fn remember(&self, account_id: i64, stored_hash: &str, password: &str) {
        self.remember_at(account_id, stored_hash, password, Instant::now());
    }

    fn remember_at(&self, account_id: i64, stored_hash: &str, password: &str, now: Instant) {
        let Some(key) = &self.key else { return };
        let signed = hmac::sign(key, &Self::message(account_id, stored_hash, password));
        let mut tag = [0u8; 32];
        if signed.as_ref().len() != tag.len() {
            return;
        }
        tag.copy_from_slice(signed.as_ref());
        let entry = Entry {
            tag,
            expires: now + self.ttl,
        };
        let mut entries = self.lock();
        if let Some(v) = entries.by_account.get_mut(&account_id)
            && let Some(same) = v.iter_mut().find(|e| e.tag == tag)
        {
            // The same credentials verified again: only the lifetime moves. (A plain
            // comparison is fine here: this runs only after a successful check, never on a
            // guess.)
            same.expires = entry.expires;
            return;
        }
        if entries.count >= self.cap {
            entries.make_room(self.cap, now);
        }
        let v = entries.by_account.entry(account_id).or_default();
        v.retain(|e| e.expires > now);
        if v.len() >= MAX_PER_ACCOUNT {
            // The one closest to expiry makes way.
            if let Some(i) = v
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.expires)
                .map(|(i, _)| i)
            {
                v.swap_remove(i);
            }
        }
        v.push(entry);
        let count: usize = entries.by_account.values().map(Vec::len).sum();
        entries.count = count;
    }

    /// Drops every entry of an account: its password changed, it was disabled or removed, or
    /// (issue 19) one of its app passwords was revoked.
    pub fn forget_account(&self, account_id: i64) {
        let mut entries = self.lock();
        if let Some(v) = entries.by_account.remove(&account_id) {
            entries.count = entries.count.saturating_sub(v.len());
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.by_account.clear();
        entries.count = 0;
    }

    /// Entries held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$aGFzaA";

    fn cache() -> CredentialsCache {
        CredentialsCache::new(Duration::from_secs(300), 100)
    }

    #[test]
    fn remembers_exactly_what_was_verified() {
        let c = cache();
        assert!(c.is_enabled());
        assert!(!c.hit(1, HASH, "secret"));
        c.remember(1, HASH, "secret");
        assert!(c.hit(1, HASH, "secret"));
        // Another password, another account, another stored hash (a changed password, even
        // to the same text): no hit.
        assert!(!c.hit(1, HASH, "secret2"));
        assert!(!c.hit(1, HASH, "secre"));
        assert!(!c.hit(2, HASH, "secret"));
        assert!(!c.hit(1, NEW_HASH, "secret"));
        assert_eq!(c.len(), 1);
        // The same credentials again: one entry, not two.
        c.remember(1, HASH, "secret");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn parts_cannot_be_shifted_between_fields() {
        let c = cache();
        c.remember(1, "ab", "c");
        assert!(!c.hit(1, "a", "bc"));
        assert!(c.hit(1, "ab", "c"));
    }

    #[test]
    fn entries_expire() {
        let c = cache();
        let t0 = Instant::now();
        c.remember_at(1, HASH, "secret", t0);
        assert!(c.hit_at(1, HASH, "secret", t0 + Duration::from_secs(299)));
        assert!(!c.hit_at(1, HASH, "secret", t0 + Duration::from_secs(300)));
    }

    #[test]
    fn forget_account_drops_only_that_account() {
        let c = cache();
        c.remember(1, HASH, "secret");
        c.remember(2, HASH, "secret");
        c.forget_account(1);
        assert!(!c.hit(1, HASH, "secret"));
        assert!(c.hit(2, HASH, "secret"));
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn off_when_lifetime_or_size_is_zero() {
        for c in [
            CredentialsCache::new(Duration::ZERO, 100),
            CredentialsCache::new(Duration::from_secs(60), 0),
        ] {
            assert!(!c.is_enabled());
            c.remember(1, HASH, "secret");
            assert!(!c.hit(1, HASH, "secret"));
            assert!(c.is_empty());
        }
    }

    #[test]
    fn the_size_is_bounded() {
        let c = CredentialsCache::new(Duration::from_secs(300), 50);
        let t0 = Instant::now();
        for i in 0..500i64 {
            c.remember_at(i, HASH, "secret", t0 + Duration::from_millis(i as u64));
            assert!(c.len() <= 50, "{} entries after {i}", c.len());
        }
        // The newest is kept, the oldest went.
        let now = t0 + Duration::from_secs(1);
        assert!(c.hit_at(499, HASH, "secret", now));
        assert!(!c.hit_at(0, HASH, "secret", now));
    }

    #[test]
    fn per_account_bound() {
        let c = cache();
        let t0 = Instant::now();
        for i in 0..20u64 {
            c.remember_at(
                7,
                HASH,
                &format!("password {i}"),
                t0 + Duration::from_millis(i),
            );
        }
        assert_eq!(c.len(), MAX_PER_ACCOUNT);
        let now = t0 + Duration::from_secs(1);
        assert!(c.hit_at(7, HASH, "password 19", now));
        assert!(!c.hit_at(7, HASH, "password 0", now));
    }
}
