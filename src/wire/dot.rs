//! The wire form of a message sent as a dot-terminated block (RFC 5321 §4.5.2 for SMTP DATA,
//! RFC 1939 §3 for POP3 RETR and TOP): every line ends in CRLF whatever the stored line endings
//! were, a line starting with "." gets one more ("dot-stuffing"), and the block ends with a
//! line holding a single ".". A message that does not end with a line break gets one, since the
//! terminator must start a line.
//!
//! The one choice that differs between users is what a CR not followed by LF is ([`BareCr`]).
//! The wire form is produced a chunk at a time ([`Encoder`]), so a large message costs its
//! stored copy plus one chunk; [`dot_stuff`] makes it whole for callers that want that. Line
//! splitting lives in one function used by [`Encoder`] and [`size`], so a size announced before
//! sending always matches what is sent.

/// What a CR that is not followed by LF is taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareCr {
    /// Part of the line, sent as it is (POP3: the message as stored; a client reading lines
    /// by CRLF or LF sees the same lines). A CR just before the end of the message is dropped.
    Keep,
    /// A line end, sent as CRLF (the outbound SMTP client: servers differ on whether a bare CR
    /// ends a line, so `\r.\r\n` sent as written could end the message early in the next
    /// server's eyes, "SMTP smuggling", and let what follows pass as commands).
    LineEnd,
}

/// Splits off the next line: (its content without the line ending, the rest).
fn next_line(raw: &[u8], bare_cr: BareCr) -> Option<(&[u8], &[u8])> {
    if raw.is_empty() {
        return None;
    }
    let split = |end: usize, skip: usize| {
        (
            raw.get(..end).unwrap_or_default(),
            raw.get(end + skip..).unwrap_or_default(),
        )
    };
    match bare_cr {
        BareCr::Keep => {
            let (line, rest) = match memchr::memchr(b'\n', raw) {
                Some(lf) => split(lf, 1),
                None => (raw, &[][..]),
            };
            Some((line.strip_suffix(b"\r").unwrap_or(line), rest))
        }
        BareCr::LineEnd => Some(match memchr::memchr2(b'\n', b'\r', raw) {
            Some(end) if raw.get(end) == Some(&b'\r') && raw.get(end + 1) == Some(&b'\n') => {
                split(end, 2)
            }
            Some(end) => split(end, 1),
            None => (raw, &[][..]),
        }),
    }
}

/// Whether the wire form is `raw` itself followed by the terminating line: every line already
/// ends in CRLF (and, with [`BareCr::LineEnd`], no CR stands alone), the message ends with a
/// line end, and no line starts with a dot. Mail as received over SMTP almost always is: then
/// its size is its length and it is sent without being copied line by line. One pass of
/// `memchr` over the line ends, a few hundred nanoseconds for a 4 KB message.
fn verbatim(raw: &[u8], bare_cr: BareCr) -> bool {
    if raw.is_empty() {
        return true;
    }
    if raw.first() == Some(&b'.') || !raw.ends_with(b"\r\n") {
        return false;
    }
    let crlf_then_no_dot = |lf: usize| {
        lf.checked_sub(1).and_then(|cr| raw.get(cr)) == Some(&b'\r')
            && raw.get(lf + 1) != Some(&b'.')
    };
    match bare_cr {
        BareCr::Keep => memchr::memchr_iter(b'\n', raw).all(crlf_then_no_dot),
        BareCr::LineEnd => memchr::memchr2_iter(b'\n', b'\r', raw).all(|i| match raw.get(i) {
            Some(b'\r') => raw.get(i + 1) == Some(&b'\n'),
            _ => crlf_then_no_dot(i),
        }),
    }
}

/// The message's size in octets in its CRLF form, without the stuffing dots and the
/// terminating line (what RFC 1939 calls a message's size, and what a client counts after
/// un-stuffing).
pub fn size(raw: &[u8], bare_cr: BareCr) -> u64 {
    if verbatim(raw, bare_cr) {
        return raw.len() as u64;
    }
    let mut total = 0u64;
    let mut rest = raw;
    while let Some((line, next)) = next_line(rest, bare_cr) {
        total += line.len() as u64 + 2;
        rest = next;
    }
    total
}

/// Produces the wire form of a message (or of its header and first body lines, for POP3 TOP),
/// terminator included, in chunks.
#[derive(Debug)]
pub struct Encoder<'a> {
    rest: &'a [u8],
    bare_cr: BareCr,
    /// Body lines still to send; `None` means all.
    body_lines: Option<u32>,
    in_body: bool,
    terminated: bool,
    /// The whole message is sent as it is ([`verbatim`]), in slices of `rest`.
    verbatim: bool,
}

impl<'a> Encoder<'a> {
    fn new(raw: &'a [u8], bare_cr: BareCr, body_lines: Option<u32>, verbatim: bool) -> Self {
        Encoder {
            rest: raw,
            bare_cr,
            body_lines,
            in_body: false,
            terminated: false,
            verbatim,
        }
    }

    /// The whole message.
    pub fn message(raw: &'a [u8], bare_cr: BareCr) -> Encoder<'a> {
        Encoder::new(raw, bare_cr, None, verbatim(raw, bare_cr))
    }

    /// The header, the blank line, and `lines` lines of the body (POP3 TOP).
    pub fn top(raw: &'a [u8], lines: u32, bare_cr: BareCr) -> Encoder<'a> {
        Encoder::new(raw, bare_cr, Some(lines), false)
    }

    /// Appends the next part of the wire form to `out`: at least `chunk` octets (whole lines,
    /// except for a message sent as it is) unless the end is reached. Returns false once everything, terminator included, has been
    /// produced.
    pub fn fill(&mut self, out: &mut Vec<u8>, chunk: usize) -> bool {
        if self.terminated {
            return false;
        }
        let start = out.len();
        if self.verbatim {
            let (now, later) = self.rest.split_at(chunk.min(self.rest.len()));
            out.extend_from_slice(now);
            self.rest = later;
            if self.rest.is_empty() {
                out.extend_from_slice(b".\r\n");
                self.terminated = true;
            }
            return true;
        }
        while out.len() - start < chunk {
            let more = self.in_body && self.body_lines == Some(0);
            let Some((line, rest)) = next_line(self.rest, self.bare_cr).filter(|_| !more) else {
                out.extend_from_slice(b".\r\n");
                self.terminated = true;
                return true;
            };
            self.rest = rest;
            if self.in_body {
                if let Some(n) = self.body_lines.as_mut() {
                    *n -= 1;
                }
            } else if line.is_empty() {
                self.in_body = true;
            }
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        true
    }
}

/// The whole wire form of `message` at once.
pub fn dot_stuff(message: &[u8], bare_cr: BareCr) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 50 + 5);
    let mut encoder = Encoder::message(message, bare_cr);
    while encoder.fill(&mut out, usize::MAX) {}
    out
}

/// `message` with every line ending CRLF: a bare CR or bare LF becomes CRLF (borrowed as it is
/// when there is none). Submitted mail is normalised so before it is DKIM-signed: the outbound
/// client sends every line end as CRLF ([`BareCr::LineEnd`]), and a signature over bare
/// CRs would not verify after that.
/// The lines are the ones [`Encoder`] sends with [`BareCr::LineEnd`], so a signature over
/// this form verifies at the receiver (`line_ends_as_the_client_sends_them`); unlike the
/// wire form, no line end is added at the end.
pub fn crlf_line_ends(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = |i: usize, b: u8| match b {
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || message.get(i - 1) != Some(&b'\r'),
        _ => false,
    };
    if !message.iter().enumerate().any(|(i, &b)| bare(i, b)) {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    for (i, &b) in message.iter().enumerate() {
        if bare(i, b) {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a receiver does with the wire form: drop the terminator, un-stuff.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in body.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn wire_forms() {
        // (message, with bare CRs kept, with bare CRs as line ends)
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"", b".\r\n", b".\r\n"),
            (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n", b"a\r\n..b\r\n.\r\n"),
            (b".\nx", b"..\r\nx\r\n.\r\n", b"..\r\nx\r\n.\r\n"),
            (
                b"a\n.\nb",
                b"a\r\n..\r\nb\r\n.\r\n",
                b"a\r\n..\r\nb\r\n.\r\n",
            ),
            (
                b"a\r.\r\nMAIL",
                b"a\r.\r\nMAIL\r\n.\r\n",
                b"a\r\n..\r\nMAIL\r\n.\r\n",
            ),
            (b"a\r\r\n", b"a\r\r\n.\r\n", b"a\r\n\r\n.\r\n"),
            (b"x\r", b"x\r\n.\r\n", b"x\r\n.\r\n"),
            (b"\r\n", b"\r\n.\r\n", b"\r\n.\r\n"),
            (b"\n\n", b"\r\n\r\n.\r\n", b"\r\n\r\n.\r\n"),
            (b"..x\r\n.", b"...x\r\n..\r\n.\r\n", b"...x\r\n..\r\n.\r\n"),
        ];
        for (raw, keep, line_end) in cases {
            for (bare_cr, want) in [(BareCr::Keep, keep), (BareCr::LineEnd, line_end)] {
                let got = dot_stuff(raw, bare_cr);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(want),
                    "{:?} {bare_cr:?}",
                    String::from_utf8_lossy(raw)
                );
                assert_eq!(size(raw, bare_cr), unstuff(&got).len() as u64, "{raw:?}");
                // In small chunks: the same bytes.
                let mut e = Encoder::message(raw, bare_cr);
                let mut chunked = Vec::new();
                while e.fill(&mut chunked, 1) {}
                assert_eq!(chunked, got);
            }
        }
    }

    /// Every message of up to 7 octets from the bytes that matter: what goes out as it is
    /// ([`verbatim`]) is what the line-by-line encoding gives, and so is its size.
    #[test]
    fn verbatim_is_the_line_by_line_form() {
        let alphabet = [b'a', b'.', b'\r', b'\n'];
        let mut seen_verbatim = 0;
        for len in 0..=7u32 {
            for mut k in 0..alphabet.len().pow(len) {
                let mut raw = Vec::new();
                for _ in 0..len {
                    raw.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                for bare_cr in [BareCr::Keep, BareCr::LineEnd] {
                    let mut slow = Encoder::new(&raw, bare_cr, None, false);
                    let mut want = Vec::new();
                    while slow.fill(&mut want, 3) {}
                    let mut fast = Encoder::message(&raw, bare_cr);
                    let mut got = Vec::new();
                    while fast.fill(&mut got, 3) {}
                    assert_eq!(got, want, "{raw:?} {bare_cr:?}");
                    assert_eq!(size(&raw, bare_cr), unstuff(&want).len() as u64, "{raw:?}");
                    seen_verbatim += usize::from(fast.verbatim);
                }
            }
        }
        assert!(seen_verbatim > 100, "{seen_verbatim}");
        assert!(verbatim(b"A: b\r\n\r\nbody\r\n", BareCr::Keep));
        assert!(!verbatim(b"A: b\r\n\r\n.body\r\n", BareCr::Keep));
        assert!(verbatim(b"A: b\r\n\r\nlone\rcr\r\n", BareCr::Keep));
        assert!(!verbatim(b"A: b\r\n\r\nlone\rcr\r\n", BareCr::LineEnd));
    }

    #[test]
    fn top_stops_after_the_body_lines() {
        let raw = b"A: 1\r\n\r\none\r\n.two\r\nthree\r\n";
        let mut e = Encoder::top(raw, 2, BareCr::LineEnd);
        let mut out = Vec::new();
        while e.fill(&mut out, 3) {}
        assert_eq!(out, b"A: 1\r\n\r\none\r\n..two\r\n.\r\n");
    }

    #[test]
    fn line_ends_become_crlf() {
        assert!(matches!(
            crlf_line_ends(b"a\r\nb\r\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(&*crlf_line_ends(b"a\rb\nc\r\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(&*crlf_line_ends(b"\n\r\r\n\r"), b"\r\n\r\n\r\n\r\n");
        assert_eq!(&*crlf_line_ends(b"no end"), b"no end");
    }

    /// What submission signs (`crlf_line_ends`) is what the outbound client sends.
    #[test]
    fn line_ends_as_the_client_sends_them() {
        for raw in [
            &b"a\r\n.b\rc\n\r\n"[..],
            b"\r\r\n\n.\r",
            b"x\ry",
            b"",
            b"..\n\n",
        ] {
            let normalised = crlf_line_ends(raw);
            assert_eq!(
                dot_stuff(&normalised, BareCr::LineEnd),
                dot_stuff(raw, BareCr::LineEnd),
                "{raw:?}"
            );
            assert_eq!(
                dot_stuff(&normalised, BareCr::Keep),
                dot_stuff(raw, BareCr::LineEnd)
            );
        }
    }
}
