//! Modified UTF-7 mailbox names: decoding never panics, and what decodes encodes back to the
//! same wire form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::imap::utf7;

fuzz_target!(|data: &[u8]| {
    let _ = utf7::decode_lenient(data);
    if let Some(name) = utf7::decode(data) {
        assert_eq!(
            utf7::decode(utf7::encode(&name).as_bytes()).as_deref(),
            Some(name.as_str())
        );
    }
});
