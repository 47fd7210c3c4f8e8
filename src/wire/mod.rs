//! Byte-level pieces the line-based protocols share (SMTP, POP3, and ManageSieve next): pure
//! code, no I/O, nothing here panics on peer input.
//!
//! - [`line`]: one bounded line framer ([`line::LineBuffer`]); each protocol keeps its own limit.
//! - [`dot`]: the wire form of a message sent in a dot-terminated block (SMTP DATA from the
//!   outbound client, POP3 RETR/TOP): CRLF line ends, leading dots doubled, the final `.` line.

pub mod dot;
pub mod line;
