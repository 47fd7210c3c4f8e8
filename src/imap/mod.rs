//! The IMAP server: IMAP4rev1 (RFC 3501) and, after `ENABLE IMAP4rev2`, IMAP4rev2 (RFC 9051) on 143 (STARTTLS) and 993 (implicit TLS), with the
//! extensions listed in [`capabilities`].
//!
//! How it is put together:
//! - `framing.rs` reads commands through imap-codec's `Fragmentizer` (which finds lines and
//!   literals, so the size limits and the `+` continuation for synchronizing literals are
//!   decided before a byte of a literal is buffered).
//! - `session.rs` runs one connection: it decodes commands with `CommandCodec` and
//!   dispatches them by state (not authenticated, authenticated,
//!   selected). Connection-level commands (CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE, IDLE,
//!   ENABLE, ID, LOGOUT) live there.
//! - `mailbox.rs` (LIST, CREATE, SELECT, STATUS, APPEND, …), `message.rs` (STORE, COPY, MOVE,
//!   EXPUNGE), `fetch.rs`, `search.rs` (SEARCH, SORT) and `thread.rs` (THREAD) each add their commands to the session.
//! - `selected.rs` is the per-session view of the selected mailbox (sequence numbers, pending
//!   expunges, the MODSEQ caught up to). `updates.rs` keeps it current and runs IDLE.
//!   Sessions learn about each other's changes from the
//!   store's change bus: an announcement for the selected mailbox marks the session dirty, and
//!   before the next tagged reply (or at once, in IDLE) it reads what changed since its MODSEQ
//!   (`Store::changes_since`) and reports EXISTS / EXPUNGE / FETCH (VANISHED instead of
//!   EXPUNGE once the client enabled QRESYNC). The same catch-up keeps the results of
//!   `SEARCH`/`SORT RETURN (UPDATE)` current (`context.rs`, CONTEXT=SEARCH/SORT).
//! - `extended.rs` recognises the command forms imap-codec cannot parse (`SEARCH RETURN`,
//!   `SORT RETURN`, CANCELUPDATE, the extended LIST) before it sees them, after replacing `$` (SEARCHRES)
//!   by the saved result's set (kept in `Selected::saved`); `forms.rs` recognises those of
//!   MULTIAPPEND (`multiappend.rs`) and CREATE with USE (`create_special.rs`,
//!   CREATE-SPECIAL-USE).
//! - `metadata.rs`: GETMETADATA and SETMETADATA (RFC 5464), which imap-codec parses.
//! - Responses are written by hand (`response.rs`); FETCH renders ENVELOPE and BODYSTRUCTURE
//!   from what was parsed at delivery and cuts body sections from the stored message by offset.
//!
//! Limits: a command line may be 64 KiB, a literal before login 64 KiB (a non-synchronizing
//! one 4096 octets: LITERAL- before login, LITERAL+ after) and a whole command before login
//! 128 KiB; after login a literal may be the configured `max_message_size`
//! (APPENDLIMIT), and the literals of a command count against the memory budget for mail in
//! flight shared with SMTP ([`crate::budget`]). Larger literals are refused with `[TOOBIG]`
//! (over the budget, `[UNAVAILABLE]`) before they are sent; a non-synchronizing one that is
//! refused ends the connection, since its bytes are already coming. Ten syntax errors in a row close the connection. The idle timeout is
//! 30 minutes (RFC 3501 §5.4), also in IDLE, where clients re-issue the command every 29.
//! Failed logins go through the shared throttle (delays, then a lock).

mod compress;
mod context;
mod create_special;
pub mod extended;
mod fetch;
mod forms;
mod framing;
// Only for the fuzz crate (its `panic!`s report findings): see `[features]` in Cargo.toml.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod mailbox;
mod message;
mod metadata;
mod multiappend;
mod response;
pub mod search;
mod selected;
mod seqset;
mod session;
mod thread;
mod uidmap;
mod updates;
pub mod utf7;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::budget::Budget;
use crate::config::Config;
use crate::net::{Connection, Handler};
use crate::store::Store;

pub use session::Session;

/// What every IMAP session shares.
pub struct Imap {
    pub store: Store,
    pub auth: Authenticator,
    /// Accept passwords without TLS (`[auth] allow_plaintext`).
    pub allow_plaintext: bool,
    /// The largest APPEND accepted (`[limits] max_message_size`).
    pub max_message_size: u64,
    /// Memory for commands with large literals, shared with SMTP.
    pub budget: Arc<Budget>,
    /// The spam filter learns from messages moved or copied into and out of Junk.
    pub learner: crate::spam::learn::Learner,
}

/// The listener handler for `imap` and `imaps`.
pub fn handler(imap: Arc<Imap>) -> Handler {
    Arc::new(move |conn: Connection| {
        // The session is made here and boxed, and its `run` future is the connection's whole
        // task: no outer future keeps a second copy of the connection (an async block's
        // captures stay in it), and a thousand idle sessions each hold only the session, its
        // small `run` state and, in IDLE, IDLE's.
        let ip = conn.peer.ip();
        let shutdown = conn.shutdown.clone();
        Box::pin(Box::new(Session::new(imap.clone(), conn, ip, shutdown)).run())
    })
}

/// The capabilities advertised after login. Everything listed is implemented and tested.
pub fn capabilities(imap: &Imap) -> String {
    format!(
        "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MULTIAPPEND MOVE \
         CHILDREN SPECIAL-USE CREATE-SPECIAL-USE METADATA METADATA-SERVER QUOTA QUOTA=RES-STORAGE \
         APPENDLIMIT={} STATUS=SIZE SEARCHRES ESORT CONTEXT=SEARCH CONTEXT=SORT {} COMPRESS=DEFLATE BINARY CONDSTORE QRESYNC \
         SORT ESEARCH LIST-EXTENDED LIST-STATUS UNAUTHENTICATE UTF8=ACCEPT",
        imap.max_message_size.min(u64::from(u32::MAX)),
        thread::CAPABILITIES,
    )
}

/// The capabilities before login: LOGINDISABLED (and no AUTH=PLAIN) while passwords would
/// travel in clear text, STARTTLS while it is possible.
pub fn pre_auth_capabilities(imap: &Imap, tls: bool, can_starttls: bool) -> String {
    // LITERAL- before login (non-synchronizing literals of at most 4096 octets, as
    // `framing::MAX_PRE_AUTH_NON_SYNC` enforces), LITERAL+ after.
    let mut caps = String::from("IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE IDLE");
    if can_starttls {
        caps.push_str(" STARTTLS");
    }
    if tls || imap.allow_plaintext {
        caps.push_str(" AUTH=PLAIN");
    } else {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

impl Imap {
    pub fn new(
        config: &Config,
        store: &Store,
        auth: &Authenticator,
        budget: &Arc<Budget>,
        learner: &crate::spam::learn::Learner,
    ) -> Imap {
        Imap {
            learner: learner.clone(),
            budget: budget.clone(),
            store: store.clone(),
            auth: auth.clone(),
            allow_plaintext: config.auth.allow_plaintext,
            max_message_size: config.limits.max_message_size,
        }
    }
}
