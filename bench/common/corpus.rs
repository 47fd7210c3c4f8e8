//! The messages the benches send and store, written once so that every bench (and
//! `bench/compare`, for both servers) measures the same mail. Included with `#[path]` by each
//! bench binary; each uses part of it.
#![allow(dead_code)]

/// The word that 1% of [`report`] messages mention (subject and body), for the SEARCH rows.
pub const RARE: &str = "zanzibar";

/// Report `i` to `to`: ~4 KB of plain text; every hundredth mentions [`RARE`].
pub fn report(i: usize, to: &str) -> Vec<u8> {
    let rare = i % 100 == 7;
    let subject = if rare {
        format!("Trip to {RARE} number {i}")
    } else {
        format!("Weekly report number {i}")
    };
    let mut m = format!(
        "From: Sender {i} <sender{i}@example.net>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{i}@bench.example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    if rare {
        m.push_str(&format!("We are going to {RARE} next week.\r\n"));
    }
    fill(&mut m, i);
    m.into_bytes()
}

/// Plain message `i` to `to`: ~4 KB of text, all alike but for the numbers.
pub fn plain(i: usize, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <bench@example.net>\r\nTo: {to}\r\nSubject: message {i}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{i}@bench.example.net>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    fill(&mut m, i);
    m.into_bytes()
}

/// Lines of filler up to ~4 KB.
fn fill(m: &mut String, i: usize) {
    let mut n = 0;
    while m.len() < 4096 - 80 {
        m.push_str(&format!(
            "Line {n} of message {i}: lorem ipsum dolor sit amet, consectetur elit.\r\n"
        ));
        n += 1;
    }
}

/// The length of the literal an IMAP response line announces (`... {123}\r\n`).
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(line.get(open + 1..)?)
        .ok()?
        .parse()
        .ok()
}
