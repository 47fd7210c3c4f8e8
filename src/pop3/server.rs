//! What the POP3 listeners (110 with STLS, 995 with implicit TLS) share: the store, the
//! authenticator, the settings, the maildrop locks and the size cache. One [`Server`] serves
//! both listeners, so a maildrop open over 995 is locked for 110 too.

use std::sync::Arc;
use std::time::Duration;

use super::maildrop::{Locks, SizeCache};
use super::session;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::net::Handler;
use crate::store::Store;

/// RFC 1939 §3: an autologout timer "of at least 10 minutes".
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Protocol errors (unknown commands, wrong state, bad arguments, long lines, failed logins)
/// a session may make before it is closed.
pub const MAX_ERRORS: u32 = 10;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Named in the greeting and the sign-off.
    pub hostname: String,
    /// Accept USER/PASS and AUTH on a connection without TLS (`[auth] allow_plaintext`).
    pub allow_plaintext: bool,
    /// Idle time after which a session ends without deleting anything.
    pub idle_timeout: Duration,
    pub max_errors: u32,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            hostname: config.hostname.clone(),
            allow_plaintext: config.auth.allow_plaintext,
            idle_timeout: IDLE_TIMEOUT,
            max_errors: MAX_ERRORS,
        }
    }
}

pub(super) struct Shared {
    pub store: Store,
    pub auth: Authenticator,
    pub settings: Settings,
    pub locks: Arc<Locks>,
    pub sizes: Arc<SizeCache>,
}

/// The POP3 service; cheap to clone.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(store: Store, auth: Authenticator, settings: Settings) -> Server {
        Server {
            shared: Arc::new(Shared {
                store,
                auth,
                settings,
                locks: Arc::new(Locks::default()),
                sizes: Arc::new(SizeCache::default()),
            }),
        }
    }

    /// The connection handler for a POP3 or POP3S listener.
    pub fn handler(&self) -> Handler {
        let shared = self.shared.clone();
        Arc::new(move |conn| Box::pin(session::run(shared.clone(), conn)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_rfc_and_the_config() {
        let mut config = Config::embedded();
        let s = Settings::from_config(&config);
        assert_eq!(s.idle_timeout, Duration::from_secs(10 * 60));
        assert!(!s.allow_plaintext);
        assert_eq!(s.hostname, "localhost");
        config.auth.allow_plaintext = true;
        assert!(Settings::from_config(&config).allow_plaintext);
    }
}
