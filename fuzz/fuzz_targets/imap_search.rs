//! IMAP SEARCH against the real store: any bytes after `UID SEARCH`, in a session whose INBOX
//! holds messages with text in several scripts, through the decoder, the evaluation and the
//! store's own queries (the trigram index for BODY/TEXT, the header and envelope reads), as a
//! client would send them (`mailroom::imap::fuzzing`). Fuzzed strings reach SQLite's FTS5
//! query syntax here, so a string that escapes its quoting is a finding (an error instead of a
//! result, or a wrong result).
//!
//! The answer must be a tagged OK with a `* SEARCH` of UIDs that exist, or a tagged NO/BAD;
//! never a crash or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Appended by each input (the store lives across inputs and is made anew every 2,000), so
/// the mailbox holds at most a few thousand UIDs.
const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\
Subject: =?utf-8?q?R=C3=A9union?= \"quoted\" AND OR NOT NEAR(x y) *\r\n\
Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m@example.org>\r\n\r\n\
Hello \xc3\xa9t\xc3\xa9, \"fts\" syntax: a* OR b NEAR(c d) ^e {f} -g col:h\r\n";

fuzz_target!(|data: &[u8]| {
    // INBOX selected after the APPEND (first byte 0: not before), so the view holds it.
    let mut input = vec![0u8];
    input.extend_from_slice(format!("a APPEND INBOX {{{}+}}\r\n", MESSAGE.len()).as_bytes());
    input.extend_from_slice(MESSAGE);
    input.extend_from_slice(b"\r\ns SELECT INBOX\r\nq UID SEARCH ");
    input.extend_from_slice(data);
    input.extend_from_slice(b"\r\n");
    let out = mailroom::imap::fuzzing::session(&input);
    assert!(out.starts_with(b"* OK "), "greeting first");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\r\na OK"), "the APPEND was stored: {text}");
    // Only the first line of the fuzzed command is the SEARCH: what follows a CRLF in the
    // input is another command, whose answers are not checked here.
    if data.contains(&b'\n') {
        return;
    }
    let tagged = text
        .lines()
        .find(|l| l.starts_with("q "))
        .unwrap_or_else(|| panic!("no tagged answer to the SEARCH: {text}"));
    assert!(
        tagged.starts_with("q OK") || tagged.starts_with("q NO") || tagged.starts_with("q BAD"),
        "{tagged}"
    );
    for line in text.lines().filter(|l| l.starts_with("* SEARCH")) {
        // UIDs (and a MODSEQ in parentheses for CONDSTORE searches).
        for token in line["* SEARCH".len()..].split_whitespace() {
            let token = token.trim_matches(|c| c == '(' || c == ')');
            if token.eq_ignore_ascii_case("MODSEQ") {
                continue;
            }
            let n: u64 = token
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}"));
            assert!(n >= 1 && n <= 100_000, "{n} in {line:?}");
        }
    }
});
