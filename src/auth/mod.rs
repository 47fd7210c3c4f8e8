//! Authentication shared by every protocol: one [`Authenticator::login`] that checks the
//! throttle, then an app password (a keyed hash, [`app_passwords`]) or the account password
//! (argon2id, or the verified-credentials [`cache`]), refuses the account password on the mail
//! protocols when the account has two-factor sign-in on, and records the outcome: the
//! fail2ban line, the event counts, and the sign-in history ([`recorder`], off the login path).

pub mod app_passwords;
pub mod cache;
pub mod live;
pub mod password;
pub mod recorder;
pub mod recovery;
pub mod sasl;
pub mod throttle;
pub mod totp;
pub mod webauthn;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ring::hmac;

use crate::config::AuthConfig;
use crate::store::{Account, AppPassword, AppPasswordUse, Store, StoreError};
use cache::CredentialsCache;
use live::{Live, Revoked};
use recorder::Recorder;
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
    /// The account password was right, but the account has two-factor sign-in on: the mail
    /// protocols take only its app passwords (which the answer tells the user to make).
    #[error("two-factor sign-in is on for this account: use an app password")]
    AppPasswordRequired,
}

/// A successful login of a mail protocol.
#[derive(Debug, Clone)]
pub struct Login {
    pub account: Account,
    /// The app password used, if one was.
    pub app_password: Option<i64>,
    /// Fires when that app password is revoked: the session must end (never for the account
    /// password).
    pub revoked: Revoked,
}

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    throttle: Arc<Throttle>,
    cache: Arc<CredentialsCache>,
    counts: Arc<Counts>,
    /// The sessions signed in with each app password, for revocation.
    live: Arc<Live>,
    recorder: Recorder,
    /// The key of app-password tags, read from (or made in) the store on first use.
    app_key: Arc<tokio::sync::OnceCell<hmac::Key>>,
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
            throttle: Arc::new(Throttle::new(config)),
            cache: Arc::new(cache),
            counts: Arc::default(),
            live: Arc::default(),
            recorder: Recorder::start(store.clone()),
            app_key: Arc::default(),
            store,
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
    /// changes, when it is disabled or removed, and when one of its app passwords is revoked
    /// ([`Authenticator::revoke_app_password`] does). The cache never lets a changed password
    /// or a disabled account in even without this call (see [`cache`]), so a change made by
    /// another process (the CLI) is safe too; the call frees the entries at once.
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
    ) -> Result<Login, AuthError> {
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
            .map(|login| login.account)
    }

    /// Waits until the sign-ins and app-password uses recorded so far are written (tests, and
    /// the server's shutdown).
    pub async fn flush_records(&self) {
        self.recorder.flush().await;
    }

    /// Sign-in records dropped because the writer was behind (also the
    /// `sign_in_records_dropped` event).
    pub fn dropped_records(&self) -> u64 {
        self.recorder.dropped()
    }

    async fn app_key(&self) -> Result<&hmac::Key, StoreError> {
        self.app_key
            .get_or_try_init(|| async {
                let bytes = self.store.app_password_key().await?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
            })
            .await
    }

    /// Makes an app password for the account, named `name` (trimmed, cut to
    /// [`crate::store::app_passwords::MAX_NAME`] characters), usable on the protocols of
    /// `scopes`: the row and the password, which is shown once and never again. `None` when
    /// the account has as many app passwords as it may.
    pub async fn create_app_password(
        &self,
        account_id: i64,
        name: &str,
        scopes: i64,
    ) -> Result<Option<(AppPassword, String)>, StoreError> {
        let name: String = name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(crate::store::app_passwords::MAX_NAME)
            .collect();
        let secret = app_passwords::generate();
        let canonical = app_passwords::canonical(&secret).ok_or_else(|| {
            StoreError::Invalid("generated app password has no canonical form".into())
        })?;
        let tag = app_passwords::tag(self.app_key().await?, &canonical);
        let made = self
            .store
            .create_app_password(account_id, &name, &tag, scopes & app_passwords::ALL)
            .await?;
        Ok(made.map(|row| (row, secret)))
    }

    /// Revokes one of the account's app passwords: the row goes, and every session signed in
    /// with it ends within a second. False when the account has no such app password.
    pub async fn revoke_app_password(&self, account_id: i64, id: i64) -> Result<bool, StoreError> {
        let Some(tag) = self.store.delete_app_password(account_id, id).await? else {
            return Ok(false);
        };
        self.live.revoke(&tag);
        self.cache.forget_account(account_id);
        Ok(true)
    }

    /// Looks `canonical` (an app password's shape) up for `account` on `protocol`.
    async fn app_password(
        &self,
        protocol: &str,
        account: &Account,
        canonical: &str,
    ) -> Result<AppCheck, AuthError> {
        let key = self
            .app_key()
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let tag = app_passwords::tag(key, canonical);
        // Watched before the lookup, so a revocation after it reaches this session (`live`).
        let revoked = self.live.watch(&tag);
        let row = self
            .store
            .app_password_by_tag(&tag)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(match row {
            Some(row) if row.account_id == account.id => {
                let allowed =
                    app_passwords::scope_of(protocol).is_some_and(|bit| row.scopes & bit != 0);
                if allowed {
                    AppCheck::Valid(row, revoked)
                } else {
                    AppCheck::OutOfScope(row)
                }
            }
            // Another account's app password is no password of this one.
            _ => AppCheck::NotOne,
        })
    }

    fn record(&self, account_id: i64, ip: IpAddr, protocol: &str, method: &str, success: bool) {
        self.recorder.sign_in(Store::sign_in_now(
            account_id,
            &ip.to_canonical().to_string(),
            protocol,
            method,
            success,
        ));
    }

    async fn check(
        &self,
        protocol: &str,
        ip: IpAddr,
        username: &str,
        password: &str,
        cached: Cached,
    ) -> Result<Login, AuthError> {
        // Counted before the password is checked, so parallel guesses cannot outrun the count;
        // a cached password or an app password goes through the same reservation and lock.
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
        // Read on every login, cached or not: the cache is asked about the account's current
        // hash, and a disabled or removed account never reaches it.
        let account = self
            .store
            .account_by_address(username.trim())
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        // An app password (mail protocols only) is checked before the delay: 140 random bits
        // are not guessed faster for being answered at once, and a user's phone must not wait
        // while someone else's guesses slow the account.
        if cached == Cached::Use
            && let Some(a) = account.as_ref().filter(|a| !a.disabled)
            && let Some(canonical) = app_passwords::canonical(password)
        {
            match self.app_password(protocol, a, &canonical).await? {
                AppCheck::Valid(row, revoked) => {
                    attempt.succeeded();
                    let ip_text = ip.to_canonical().to_string();
                    self.record(
                        a.id,
                        ip,
                        protocol,
                        &format!("app password {}", row.name),
                        true,
                    );
                    self.recorder.used(AppPasswordUse {
                        id: row.id,
                        at: crate::store::now(),
                        ip: ip_text,
                        protocol: protocol.to_string(),
                    });
                    tracing::info!(
                        target: "mailroom::auth",
                        "login: protocol={protocol} ip={ip} account={} app_password={}",
                        a.address,
                        row.id
                    );
                    return Ok(Login {
                        account: a.clone(),
                        app_password: Some(row.id),
                        revoked,
                    });
                }
                AppCheck::OutOfScope(row) => {
                    self.record(
                        a.id,
                        ip,
                        protocol,
                        &format!("app password {}", row.name),
                        false,
                    );
                    attempt.failed(protocol);
                    self.store.count_event("login_failed");
                    return Err(AuthError::Failed);
                }
                // Not one of this account's app passwords: it may be the account password.
                AppCheck::NotOne => {}
            }
        }
        if !attempt.delay().is_zero() {
            tokio::time::sleep(attempt.delay()).await;
        }
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
                // With two-factor sign-in on, the mail protocols take app passwords only. Asked
                // after the password (a cache hit included), on every login: turning 2FA on
                // takes effect at the next login whatever the cache holds. The attempt is
                // released, not failed: the password was right, and a client still configured
                // with it must not lock its address out of the app password that replaces it.
                if cached == Cached::Use
                    && self
                        .store
                        .second_factor_on(a.id)
                        .await
                        .map_err(|e| AuthError::Internal(e.to_string()))?
                {
                    drop(attempt);
                    self.record(a.id, ip, protocol, "password", false);
                    tracing::info!(
                        target: "mailroom::auth",
                        "account password refused (two-factor sign-in on): protocol={protocol} \
                         ip={ip} account={}",
                        a.address
                    );
                    return Err(AuthError::AppPasswordRequired);
                }
                attempt.succeeded();
                self.record(a.id, ip, protocol, "password", true);
                tracing::info!(target: "mailroom::auth", "login: protocol={protocol} ip={ip} account={}", a.address);
                Ok(Login {
                    account: a,
                    app_password: None,
                    revoked: Revoked::never(),
                })
            }
            other => {
                if let Some(a) = other {
                    self.record(a.id, ip, protocol, "password", false);
                }
                attempt.failed(protocol);
                self.store.count_event("login_failed");
                Err(AuthError::Failed)
            }
        }
    }
}

/// What an app-password-shaped password turned out to be for an account.
enum AppCheck {
    /// One of its app passwords, allowed on this protocol.
    Valid(AppPassword, Revoked),
    /// One of its app passwords, not allowed on this protocol.
    OutOfScope(AppPassword),
    /// None of its app passwords.
    NotOne,
}
