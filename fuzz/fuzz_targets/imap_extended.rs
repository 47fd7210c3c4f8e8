//! The pre-parser for ESEARCH and LIST-EXTENDED commands (`src/imap/extended.rs`): no input
//! panics, a recognised SEARCH hands on the input minus one contiguous piece (its return
//! options), a recognised LIST stays within the pattern bound, and the `$` substitution
//! (SEARCHRES) keeps everything but the markers it replaces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::imap::extended::{self, Extended, MAX_PATTERNS, SavedSets, Substituted};

fuzz_target!(|data: &[u8]| {
    let sets = || SavedSets {
        uids: "7:9".into(),
        seqs: "1:3".into(),
    };
    if let Substituted::Rewritten(out) = extended::substitute_saved(data, sets) {
        // Each `$` (one byte) became a longer set or key.
        assert!(out.len() > data.len());
        let markers = data.iter().filter(|&&b| b == b'$').count();
        let left = out.iter().filter(|&&b| b == b'$').count();
        assert!(left < markers);
    }
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
        Extended::CancelUpdate { tag, tags } => {
            // A command with its tag, naming at least one search to cancel.
            assert!(data.starts_with(tag.as_bytes()));
            assert!(!tags.is_empty());
        }
        Extended::Plain | Extended::Bad { .. } => {}
    }
});
