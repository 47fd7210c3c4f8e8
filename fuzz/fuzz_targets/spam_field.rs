//! The spam filter's `X-Mailroom-Spam:` field, both ways. Reading it back (the webmail's "why"
//! line, the learner's keys) never panics on any value: a user can APPEND a message with any
//! such field. Writing it, whatever names a sender brings (From address, DKIM domains, DNS list
//! zones), gives one well-formed field: CRLF only as folding, no line over 998 octets, and the
//! keys read back as written (cleaned).
//!   cargo +nightly fuzz run spam_field -- -max_total_time=300
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::spam::verdict::{self, Personal, Shared, Thresholds};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = verdict::explain(&text);
    let _ = verdict::keys_of(&text);
    let _ = verdict::junked(&text);

    // The same bytes as the names a sender controls.
    let mut parts = text.split('\u{0}');
    let zone = parts.next().unwrap_or_default().to_string();
    let key = parts.next().unwrap_or_default().to_string();
    let keys: Vec<String> = parts.map(str::to_string).take(12).collect();
    let shared = Shared {
        dnsbl: 1.0,
        dnsbl_zones: vec![zone],
        ..Shared::default()
    };
    let personal = Personal {
        bayes: Some(0.7),
        reputation: Some((2.0, key)),
        ..Personal::default()
    };
    let field = verdict::decide(&shared, &personal, Thresholds::default()).field(&keys);
    assert!(field.starts_with("X-Mailroom-Spam: ") && field.ends_with("\r\n"));
    let body = &field[..field.len() - 2];
    for (i, line) in body.split("\r\n").enumerate() {
        assert!(line.len() < 998, "{field:?}");
        assert!(!line.contains(['\r', '\n']), "{field:?}");
        assert!(i == 0 || line.starts_with('\t'), "{field:?}");
    }
    let value = &body["X-Mailroom-Spam:".len()..];
    let written: Vec<String> = verdict::keys_of(value);
    assert!(written.len() <= keys.len(), "{field:?}");
    assert!(verdict::explain(value).is_some(), "{field:?}");
});
