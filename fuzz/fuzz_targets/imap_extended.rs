//! The pre-parser for ESEARCH and LIST-EXTENDED commands (`src/imap/extended.rs`): no input
//! panics, a recognised SEARCH hands on the input minus one contiguous piece (its return
//! options), and a recognised LIST stays within the pattern bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::imap::extended::{self, Extended, MAX_PATTERNS};

fuzz_target!(|data: &[u8]| {
    match extended::recognise(data) {
        Extended::Search { tag, command, .. } => {
            assert!(command.len() < data.len());
            assert!(command.starts_with(tag.as_bytes()));
            let prefix = command.iter().zip(data).take_while(|(a, b)| a == b).count();
            let suffix = command
                .iter()
                .rev()
                .zip(data.iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            assert!(prefix + suffix >= command.len());
        }
        Extended::List { list, .. } => {
            assert!(!list.patterns.is_empty() && list.patterns.len() <= MAX_PATTERNS);
        }
        Extended::Plain | Extended::Bad { .. } => {}
    }
});
