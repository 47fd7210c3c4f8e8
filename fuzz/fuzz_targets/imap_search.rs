//! IMAP SEARCH evaluation: any command imap-codec accepts as a SEARCH is evaluated against a
//! mailbox of odd messages (extreme dates, sizes, flags, non-ASCII text) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hits = mailroom::imap::search::fuzz_evaluate(data);
    assert!(hits <= 4);
});
