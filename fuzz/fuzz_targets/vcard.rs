//! vCard import (`mailroom::vcard`): any file a user uploads to the Contacts page, or finds in
//! an export directory, is read without panicking, every card is either used or reported, and
//! what is written back from the cards read gives the same number of cards again.
//!   cargo +nightly fuzz run vcard -- -max_total_time=300
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::vcard;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = vcard::parse(&text);
    let cards: Vec<vcard::Card> = parsed.cards.into_iter().map(|(_, c)| c).collect();
    let again = vcard::parse(&vcard::write(&cards));
    assert_eq!(again.cards.len(), cards.len(), "{:?}", again.errors);
    assert!(again.errors.is_empty(), "{:?}", again.errors);
});
