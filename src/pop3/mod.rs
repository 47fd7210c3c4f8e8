//! POP3 (RFC 1939) with CAPA and response codes (RFC 2449, 3206), STLS (RFC 2595) and
//! AUTH PLAIN/LOGIN (RFC 5034): the protocol people point Gmail's "check mail from other
//! accounts", fetchmail and old clients at.
//!
//! The maildrop is the account's INBOX, as it was at login (see [`maildrop`]); DELE marks, and
//! QUIT expunges through the store's one removal path. Parts:
//!
//! - [`parser`]: line framing with a length limit, and command parsing; pure, no I/O.
//! - [`transfer`]: the wire form of a message (CRLF, byte-stuffing, TOP) and its size.
//! - [`maildrop`]: the per-session snapshot, deletion marks, UIDL, and the IN-USE lock.
//! - `session`: the read loop, replies, states; `login` and `transaction` hold the commands
//!   of the AUTHORIZATION and TRANSACTION states.
//! - [`server`]: what the 110 and 995 listeners share, and their connection handler.

pub mod maildrop;
pub mod parser;
pub mod server;
pub mod transfer;

mod login;
mod session;
mod transaction;

pub use server::{Server, Settings};
