//! Whole IMAP sessions: any bytes a client may send, through the session's framing, the
//! command decoder and every handler with a real store behind it (`mailroom::imap::fuzzing`).
//! The server must answer without panicking, end when its input ends, and greet first.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = mailroom::imap::fuzzing::session(data);
    assert!(out.starts_with(b"* OK "), "greeting first");
});
