//! ManageSieve (RFC 5804): how mail clients (Thunderbird's sieve add-on, Roundcube's
//! managesieve plugin, `sieve-connect`, `sievelib`) upload, list, activate and fetch an
//! account's Sieve scripts. Port 4190 (trial 24190), plain with STARTTLS.
//!
//! - Logins: SASL PLAIN and LOGIN through the shared step machine (`auth::sasl::Exchange`),
//!   checked by the shared `Authenticator` (its throttle, the fail2ban line, the sign-in
//!   history under protocol `managesieve`, app passwords with the ManageSieve scope). The
//!   mechanisms are offered only where a password may be sent: after STARTTLS, unless
//!   `[auth] allow_plaintext`; before that `"SASL" ""` and `"STARTTLS"` (RFC 5804 §1.7).
//! - Scripts: compiled by `crate::sieve::compile` before they are stored (a script that does
//!   not compile is refused with the line and column of the problem), kept with their
//!   compiled form by the store (`store::sieve`), which also keeps the quotas: 32 scripts and
//!   1 MiB of source per account (`QUOTA/MAXSCRIPTS`, `QUOTA/MAXSIZE`); one script at most
//!   64 KiB (the language's `Limits::max_script_bytes`).
//! - Bounds: see [`parser`] for lines, strings and literals (a literal over the limit is
//!   refused from its `{n+}`, before its octets are read); [`MAX_ERRORS`] protocol errors and
//!   failed logins, [`MAX_COMMANDS_BEFORE_LOGIN`] commands before a login; the idle timeout
//!   is `net`'s, and so is the login deadline.
//!
//! Parts: [`parser`] (framing and commands, pure), `session` (the loop, responses, the
//! commands of any state), `login` (AUTHENTICATE, UNAUTHENTICATE), `scripts` (the script
//! commands).

pub mod parser;

mod login;
mod scripts;
mod session;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::net::Handler;
use crate::store::Store;

/// Idle time after which a session ends (a client editing a script keeps its connection).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Protocol errors and failed logins a session may make before it is closed.
pub const MAX_ERRORS: u32 = 10;
/// Commands a session may send before it logs in (capabilities, STARTTLS, a few tries).
pub const MAX_COMMANDS_BEFORE_LOGIN: u32 = 30;
/// Largest literal before login: a SASL response.
pub const MAX_LITERAL_BEFORE_LOGIN: u64 = 8 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Named in the IMPLEMENTATION capability and the logs.
    pub hostname: String,
    /// Offer SASL on a connection without TLS (`[auth] allow_plaintext`).
    pub allow_plaintext: bool,
    pub idle_timeout: Duration,
    pub max_errors: u32,
    /// The language's bound on one script (`Limits::max_script_bytes`).
    pub max_script_bytes: u64,
    /// Advertised as MAXREDIRECTS (`Limits::max_redirects`).
    pub max_redirects: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let limits = language::limits();
        Settings {
            hostname: config.hostname.clone(),
            allow_plaintext: config.auth.allow_plaintext,
            idle_timeout: IDLE_TIMEOUT,
            max_errors: MAX_ERRORS,
            max_script_bytes: u64::try_from(limits.0).unwrap_or(u64::MAX),
            max_redirects: limits.1,
        }
    }
}

struct Shared {
    store: Store,
    auth: Authenticator,
    settings: Settings,
}

/// The ManageSieve service; cheap to clone.
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
            }),
        }
    }

    /// The connection handler for a ManageSieve listener.
    pub fn handler(&self) -> Handler {
        let shared = self.shared.clone();
        Arc::new(move |conn| Box::pin(session::run(shared.clone(), conn)))
    }
}

/// What ManageSieve asks of the Sieve language, in one place.
mod language {
    /// (script size limit, redirects per run): the language's own bounds.
    pub fn limits() -> (usize, usize) {
        let limits = crate::sieve::Limits::default();
        (limits.max_script_bytes, limits.max_redirects)
    }

    /// The SIEVE capability: the extensions, space-separated.
    pub fn extensions() -> String {
        crate::sieve::EXTENSIONS.join(" ")
    }

    /// Compiles `source`: its stored compiled form, or "line L, column C: what is wrong".
    pub fn compile(source: &str) -> Result<String, String> {
        crate::sieve::compile(source)
            .map(|script| script.to_stored())
            .map_err(|e| e.to_string())
    }
}
