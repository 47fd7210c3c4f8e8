//! Authentication shared by every protocol: one [`Authenticator::login`] that checks the
//! throttle, verifies the argon2id hash (or finds the password in the verified-credentials
//! [`cache`]), and records the outcome.

pub mod cache;
pub mod password;
pub mod recovery;
pub mod sasl;
pub mod throttle;
pub mod totp;
pub mod webauthn;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::AuthConfig;
use crate::store::{Account, Store};
use cache::CredentialsCache;
use throttle::Throttle;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user or password, or a disabled account: one answer for all, so nothing leaks.
    #[error("invalid credentials")]
    Failed,
    #[error("too many failed logins; try again in {0} seconds")]
    Locked(u64),
    #[error("authentication unavailable: {0}")]
    Internal(String),
}

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    throttle: Arc<Throttle>,
    cache: Arc<CredentialsCache>,
    counts: Arc<Counts>,
}

/// What the logins of one [`Authenticator`] did, for tests and operators: they show that a
/// repeated login skipped the hash without timing anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginStats {
    /// Password checks that ran argon2id against an account's hash.
    pub hash_checks: u64,
    /// Logins accepted from the credentials cache, without a hash check.
    pub cache_hits: u64,
    /// Entries in the credentials cache now.
    pub cached: usize,
}

#[derive(Default)]
struct Counts {
    hash_checks: AtomicU64,
    cache_hits: AtomicU64,
}

/// Whether a login may use the credentials cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cached {
    /// The mail protocols: clients that reconnect all day with the same password.
    Use,
    /// The web sign-in and the webmail's "current password": a person, once per browser
    /// session, so nothing to save, and these prove the password against the stored hash.
    Bypass,
}

impl Authenticator {
    pub fn new(store: Store, config: AuthConfig) -> Authenticator {
        let cache =
            CredentialsCache::new(Duration::from_secs(config.cache_secs), config.cache_entries);
        Authenticator {
            store,
            throttle: Arc::new(Throttle::new(config)),
            cache: Arc::new(cache),
            counts: Arc::default(),
        }
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn stats(&self) -> LoginStats {
        LoginStats {
            hash_checks: self.counts.hash_checks.load(Ordering::Relaxed),
            cache_hits: self.counts.cache_hits.load(Ordering::Relaxed),
            cached: self.cache.len(),
        }
    }

    /// Drops what the credentials cache holds for an account. Call it when its password
    /// changes, when it is disabled or removed, and (issue 19) when one of its app passwords
    /// is revoked. The cache never lets a changed password or a disabled account in even
    /// without this call (see [`cache`]), so a change made by another process (the CLI) is
    /// safe too; the call frees the entries at once.
    pub fn forget_account(&self, account_id: i64) {
        self.cache.forget_account(account_id);
    }

    /// Checks `username`/`password` for a login over `protocol` from `ip`: the mail protocols
    /// (IMAP LOGIN/AUTHENTICATE, POP3, SMTP AUTH). A password verified in the last
    /// `[auth] cache_secs` is accepted from the credentials cache, after the same throttle.
    pub async fn login(
        &self,
        protocol: &str,
        ip: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<Account, AuthError> {
        self.check(protocol, ip, username, password, Cached::Use)
            .await
    }

    /// As [`Authenticator::login`], always with the full hash check and without filling the
    /// cache: for the web sign-in and the webmail's password change, where a person types the
    /// password once per browser session (the cookie carries the session after it).
    pub async fn login_fresh(
        &self,
        protocol: &str,
        ip: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<Account, AuthError> {
        self.check(protocol, ip, username, password, Cached::Bypass)
            .await
    }

    async fn check(
        &self,
        protocol: &str,
        ip: IpAddr,
        username: &str,
        password: &str,
        cached: Cached,
    ) -> Result<Account, AuthError> {
        // Counted before the password is checked, so parallel guesses cannot outrun the count;
        // a cached password goes through the same reservation, delay and lock.
        let attempt = match self.throttle.attempt(ip, username) {
            Ok(attempt) => attempt,
            Err(left) => {
                tracing::warn!(
                    target: "mailroom::auth",
                    "authentication refused while locked: protocol={protocol} ip={ip}"
                );
                return Err(AuthError::Locked(left.as_secs().max(1)));
            }
        };
        if !attempt.delay().is_zero() {
            tokio::time::sleep(attempt.delay()).await;
        }
        // Read on every login, cached or not: the cache is asked about the account's current
        // hash, and a disabled or removed account never reaches it.
        let account = self
            .store
            .account_by_address(username.trim())
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let ok = match &account {
            Some(a) if a.disabled => {
                // The same time as a wrong password, and nothing of it stays cached.
                self.cache.forget_account(a.id);
                self.counts.hash_checks.fetch_add(1, Ordering::Relaxed);
                let _ = password::verify(password, &a.password_hash).await;
                false
            }
            Some(a) => {
                if cached == Cached::Use && self.cache.hit(a.id, &a.password_hash, password) {
                    self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    self.counts.hash_checks.fetch_add(1, Ordering::Relaxed);
                    let ok = password::verify(password, &a.password_hash).await;
                    // Only successes are remembered.
                    if ok && cached == Cached::Use {
                        self.cache.remember(a.id, &a.password_hash, password);
                    }
                    ok
                }
            }
            None => {
                password::burn_time(password).await;
                false
            }
        };
        match account {
            Some(a) if ok => {
                attempt.succeeded();
                tracing::info!(target: "mailroom::auth", "login: protocol={protocol} ip={ip} account={}", a.address);
                Ok(a)
            }
            _ => {
                attempt.failed(protocol);
                self.store.count_event("login_failed");
                Err(AuthError::Failed)
            }
        }
    }
}
