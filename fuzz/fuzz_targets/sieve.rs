//! Sieve: any bytes as a script (UTF-8, lossily) compile or fail with a position, never panic;
//! a script that compiles survives its stored form and runs on a fixed message within its
//! limits, always with at least one action. The same bytes as a message go through a fixed
//! script that uses every test.
//!   cargo +nightly fuzz run sieve fuzz/seeds/sieve -- -max_total_time=300
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::sieve::{self, Context, Limits, Message, Script};

const MAIL: &[u8] = b"From: Alice <alice+x@example.org>\r\nTo: bob@example.com\r\n\
Subject: =?utf-8?q?caf=C3=A9?= *?\\\r\nDate: Fri, 13 Feb 2009 23:31:30 +0100\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
hello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n";

const EVERY_TEST: &str = r#"require ["fileinto", "envelope", "imap4flags", "vacation", "body",
"variables", "relational", "subaddress", "copy", "date", "index", "mailbox", "spamtestplus",
"comparator-i;ascii-numeric", "reject"];
if header :matches "subject" "*?*" { set "s" "${1}${2}"; }
if address :detail :contains ["from", "to", "cc", "sender"] "x" { addflag "a"; }
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "2" { addflag "b"; }
if envelope :domain "from" "example.org" { fileinto :copy "${s}x"; }
if body :content "text" :matches "*h*" { fileinto :flags "c" "B"; }
if body :raw :contains "x" { keep; }
if date :zone "+0200" :index 1 :last "date" "std11" "*" { set "d" "${0}"; }
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { discard; }
if exists "list-id" { stop; }
vacation :days 2 :addresses "bob@example.com" "away ${d}";
"#;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let own = vec!["bob@example.com".to_string()];
    let exists = |m: &str| m == "INBOX";
    let ctx = Context {
        now: time::OffsetDateTime::UNIX_EPOCH,
        own_addresses: &own,
        mailbox_exists: &exists,
        limits: &limits,
    };
    let message = |raw| Message {
        raw,
        envelope_from: "alice+x@example.org",
        envelope_to: "bob@example.com",
        auth: None,
        spam_percent: Some(60),
    };

    let source = String::from_utf8_lossy(data);
    match sieve::compile(&source) {
        Ok(script) => {
            let again = Script::from_stored(&script.to_stored());
            assert_eq!(again.as_ref(), Some(&script));
            let outcome = sieve::run(&script, &message(MAIL), &ctx);
            assert!(!outcome.actions.is_empty());
        }
        Err(e) => assert!(e.line >= 1 && e.column >= 1),
    }

    if let Ok(script) = sieve::compile(EVERY_TEST) {
        let outcome = sieve::run(&script, &message(data), &ctx);
        assert!(!outcome.actions.is_empty());
    }
});
