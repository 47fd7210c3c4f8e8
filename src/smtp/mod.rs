//! SMTP: inbound MX (port 25) and submission (587 with STARTTLS, 465 with implicit TLS).
//!
//! - [`parser`]: bounded command lines and the DATA decoder;
//! - [`reply`]: replies with enhanced status codes;
//! - [`session`]: the RFC 5321 state machine and the local policy (no open relay: inbound
//!   accepts only recipients of local domains; submission requires AUTH over TLS and a sender
//!   the account owns).
//!
//! Protocol vocabulary (command and parameter parsing) comes from `smtp-proto`; the session,
//! policy and data handling are ours. Inbound mail is stored through the one delivery path
//! (`Store::deliver_atomic`), submitted mail through the one submission path
//! ([`crate::submission`]); in both, `250` is sent only after the commit.

pub mod anvil;
mod auth;
pub mod client;
pub mod dane;
mod data;
mod inbound;
pub mod parser;
pub mod reply;
pub mod session;
pub mod verify;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::budget::Budget;
use crate::config::Config;
use crate::dns::Dns;
use crate::net::{Connection, Handler};
use crate::srs::Srs;
use crate::store::Store;
use crate::submission::Submission;

/// Which policy a listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Port 25: mail from other servers to our users.
    Mx,
    /// Ports 587 and 465: our users sending.
    Submission,
}

/// What every SMTP session shares.
pub struct Smtp {
    pub store: Store,
    pub auth: Authenticator,
    pub submission: Submission,
    pub hostname: String,
    pub max_message_size: usize,
    pub allow_plaintext: bool,
    /// SPF/DKIM/DMARC checks on port 25, unless `[inbound] verify` is off.
    pub verifier: Option<verify::Verifier>,
    /// Rewrites senders of forwarded mail, and recognises bounces to rewritten addresses.
    pub srs: Srs,
    /// Memory for messages being received, shared with IMAP APPEND.
    pub budget: Arc<Budget>,
    /// Refused recipients per client, across connections (port 25).
    pub anvil: anvil::Anvil,
    /// The spam filter's decision at the end of DATA (port 25).
    pub filter: crate::spam::check::Filter,
    /// Messages counted for the DMARC aggregate reports we send (port 25).
    pub dmarc_counts: crate::reports::Counter,
}

impl Smtp {
    pub fn new(
        config: &Config,
        store: Store,
        auth: Authenticator,
        dns: &Dns,
        srs: Srs,
        budget: Arc<Budget>,
    ) -> Smtp {
        Smtp {
            srs,
            budget,
            anvil: anvil::Anvil::new(
                config.inbound.refused_rcpt_limit,
                std::time::Duration::from_secs(config.inbound.refused_rcpt_window_secs),
            ),
            verifier: config.inbound.verify.then(|| {
                verify::Verifier::new(dns, config.hostname.clone(), config.inbound.dmarc_reject)
            }),
            submission: Submission::new(store.clone(), config.hostname.clone()),
            filter: crate::spam::check::Filter::new(store.clone(), dns.clone()),
            dmarc_counts: crate::reports::Counter::start(store.clone()),
            store,
            auth,
            hostname: config.hostname.clone(),
            max_message_size: usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX),
            allow_plaintext: config.auth.allow_plaintext,
        }
    }
}

/// The connection handler for a listener of `kind`.
pub fn handler(smtp: Arc<Smtp>, kind: Kind) -> Handler {
    Arc::new(move |conn: Connection| {
        let smtp = smtp.clone();
        Box::pin(async move {
            let peer = conn.peer;
            let shutdown = conn.shutdown.clone();
            session::Session::new(conn, &smtp, kind, peer)
                .run(shutdown)
                .await;
        })
    })
}
