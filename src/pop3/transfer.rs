//! How a stored message goes on the wire for RETR and TOP (RFC 1939 §3): the shared
//! dot-terminated form ([`crate::wire::dot`]: every line ends in CRLF whatever the stored line
//! endings were, a line starting with "." gets one more, "byte-stuffing", and the message ends
//! with a line holding a single "."). A lone CR inside a line is left alone.
//!
//! The stored body is read once into memory (the store keeps bodies in SQLite); the wire form
//! is never built whole: [`Encoder`] produces it a chunk at a time, so a 50 MB message costs
//! its stored copy plus one chunk, not two copies.
//!
//! Sizes: [`size`] is the number of octets the message has in this CRLF form, without the
//! stuffing dots and the terminating line, which is what RFC 1939 means by a message's size
//! and what a client counts after un-stuffing. Both split lines the same way, so the size in
//! LIST and STAT always matches what RETR sends.

use crate::wire::dot::{self, BareCr};

/// Chunks handed to the writer: big enough to amortise a TLS record and a syscall.
pub const CHUNK: usize = 64 * 1024;

/// POP3 sends the message as stored: a CR not followed by LF stays part of its line.
const BARE_CR: BareCr = BareCr::Keep;

/// The message's size in octets as POP3 presents it (CRLF line endings, no stuffing).
pub fn size(raw: &[u8]) -> u64 {
    dot::size(raw, BARE_CR)
}

/// Produces the wire form of a message (or of its headers and first lines, for TOP),
/// terminator included, in chunks.
pub struct Encoder<'a>(dot::Encoder<'a>);

impl<'a> Encoder<'a> {
    /// The whole message, for RETR.
    pub fn message(raw: &'a [u8]) -> Encoder<'a> {
        Encoder(dot::Encoder::message(raw, BARE_CR))
    }

    /// The header, the blank line, and `lines` lines of the body, for TOP.
    pub fn top(raw: &'a [u8], lines: u32) -> Encoder<'a> {
        Encoder(dot::Encoder::top(raw, lines, BARE_CR))
    }

    /// Appends the next part of the wire form to `out`, at least `CHUNK` octets unless the end
    /// is reached. Returns false once everything, terminator included, has been produced.
    pub fn fill(&mut self, out: &mut Vec<u8>) -> bool {
        self.0.fill(out, CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(mut e: Encoder<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        while e.fill(&mut out) {}
        out
    }

    /// What a client does with the wire form: drop the terminator, un-stuff.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in body.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn line_endings_and_stuffing() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"A: b\r\n\r\nbody\r\n", b"A: b\r\n\r\nbody\r\n.\r\n"),
            (b"A: b\n\nbare\nlf\n", b"A: b\r\n\r\nbare\r\nlf\r\n.\r\n"),
            (b"A: b\r\n\r\nno end", b"A: b\r\n\r\nno end\r\n.\r\n"),
            (
                b"A: b\r\n\r\n.\r\n..x\r\n.",
                b"A: b\r\n\r\n..\r\n...x\r\n..\r\n.\r\n",
            ),
            (
                b"A: b\r\n\r\nlone\rcr\r\n",
                b"A: b\r\n\r\nlone\rcr\r\n.\r\n",
            ),
            (
                b"A: b\r\n\r\nends in cr\r",
                b"A: b\r\n\r\nends in cr\r\n.\r\n",
            ),
            (b"\r\n", b"\r\n.\r\n"),
        ];
        for (raw, wire) in cases {
            let got = encode(Encoder::message(raw));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(wire),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(size(raw), unstuff(&got).len() as u64, "{raw:?}");
        }
    }

    #[test]
    fn top_sends_headers_and_n_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\none\r\n.two\r\nthree\r\n";
        assert_eq!(encode(Encoder::top(raw, 0)), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            encode(Encoder::top(raw, 2)),
            b"A: 1\r\nB: 2\r\n\r\none\r\n..two\r\n.\r\n"
        );
        assert_eq!(encode(Encoder::top(raw, 99)), encode(Encoder::message(raw)));
        assert_eq!(
            encode(Encoder::top(raw, u32::MAX)),
            encode(Encoder::message(raw))
        );
        // No body at all: the header is everything there is.
        assert_eq!(
            encode(Encoder::top(b"A: 1\nB: 2", 5)),
            b"A: 1\r\nB: 2\r\n.\r\n"
        );
        assert_eq!(encode(Encoder::top(b"", 0)), b".\r\n");
    }

    #[test]
    fn big_messages_come_in_bounded_chunks() {
        let mut raw = b"Subject: big\n\n".to_vec();
        for i in 0..50_000 {
            raw.extend_from_slice(format!(".line {i}\n").as_bytes());
        }
        let mut e = Encoder::message(&raw);
        let mut wire = Vec::new();
        let mut chunk = Vec::new();
        let mut chunks = 0;
        while e.fill(&mut chunk) {
            // At most one line past the chunk size.
            assert!(chunk.len() < CHUNK + 64, "{}", chunk.len());
            wire.append(&mut chunk);
            chunks += 1;
        }
        assert!(chunks > 5);
        assert!(!e.fill(&mut chunk));
        assert_eq!(unstuff(&wire).len() as u64, size(&raw));
        assert!(wire.ends_with(b".line 49999\r\n.\r\n"));
    }
}
