//! Authentication shared by every protocol: one [`Authenticator::login`] that checks the
//! throttle, verifies the argon2id hash, and records the outcome.

pub mod password;
pub mod sasl;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::AuthConfig;
use crate::store::{Account, Store};
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
}

impl Authenticator {
    pub fn new(store: Store, config: AuthConfig) -> Authenticator {
        Authenticator {
            store,
            throttle: Arc::new(Throttle::new(config)),
        }
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Checks `username`/`password` for a login over `protocol` from `ip`.
    pub async fn login(
        &self,
        protocol: &str,
        ip: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<Account, AuthError> {
        // Counted before the password is checked, so parallel guesses cannot outrun the count.
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
        let account = self
            .store
            .account_by_address(username.trim())
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let ok = match &account {
            Some(a) => password::verify(password, &a.password_hash).await && !a.disabled,
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
