//! One bounded line framer for the line-based protocols (SMTP commands and AUTH lines, POP3
//! commands and AUTH lines; ManageSieve next).
//!
//! - A line ends at LF; a CR just before it is dropped with it, so CRLF and a bare LF both end
//!   a line (people test with `nc`). A CR anywhere else is part of the line.
//! - Each call says how long the line may be ([`Limit`]): protocols count differently (SMTP
//!   counts the line ending, POP3 does not) and POP3 allows longer AUTH lines than commands.
//! - An over-long line is never buffered: once the line is known to be over the limit the
//!   buffer is emptied and everything up to the next LF is dropped as it arrives; only then is
//!   [`Frame::TooLong`] reported, so the error reply answers that line and the next command is
//!   read cleanly. What is held is at most the limit plus one read.
//!
//! Nothing here panics on peer input: no unwrap, no unchecked indexing.

/// How long a line may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The line without its ending (CRLF or LF) is at most this many octets (POP3).
    Content(usize),
    /// The line as received, its ending included, is at most this many octets (SMTP, RFC 5321
    /// §4.5.3.1.4: "including the <CRLF>").
    WithEnding(usize),
}

impl Limit {
    /// Whether a line that took `through_lf` octets of input (its LF included) is too long.
    fn exceeded_by(self, through_lf: usize, had_cr: bool) -> bool {
        match self {
            Limit::Content(max) => through_lf - 1 - usize::from(had_cr) > max,
            Limit::WithEnding(max) => through_lf > max,
        }
    }

    /// Whether `held` octets without an LF yet (the last one a CR or not) are already too long
    /// whatever follows.
    fn passed_by_partial(self, held: usize, ends_in_cr: bool) -> bool {
        match self {
            // The least the finished line can be: all of it, less a CR the LF may follow.
            Limit::Content(max) => held - usize::from(ends_in_cr) > max,
            // At least the LF is still to come.
            Limit::WithEnding(max) => held >= max,
        }
    }
}

/// What [`LineBuffer::next_line`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its line ending.
    Line(Vec<u8>),
    /// A line longer than the limit ended; it was discarded.
    TooLong,
    /// Need more input.
    Incomplete,
}

/// Input received but not yet framed into lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Inside an over-long line: drop input until its line feed.
    discarding: bool,
}

impl LineBuffer {
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Adds what was just read.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// True when no input is waiting (so replies can be flushed before the next read).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets everything buffered: after STARTTLS/STLS, nothing sent in plaintext may be acted
    /// upon (RFC 3207 §4.2, RFC 2595 §4: the command-injection attack).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// The input held after the last line taken, for a protocol that reads something other
    /// than lines next (SMTP DATA and BDAT); give back what it used with [`consume`].
    ///
    /// [`consume`]: LineBuffer::consume
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` octets of [`pending`](LineBuffer::pending) (all, if fewer).
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// The next line within `limit` (line ending excluded).
    pub fn next_line(&mut self, limit: Limit) -> Frame {
        match self.buf.iter().position(|b| *b == b'\n') {
            Some(lf) => {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                let had_cr = line.last() == Some(&b'\r');
                if had_cr {
                    line.pop();
                }
                if std::mem::take(&mut self.discarding) || limit.exceeded_by(lf + 1, had_cr) {
                    Frame::TooLong
                } else {
                    Frame::Line(line)
                }
            }
            None => {
                let ends_in_cr = self.buf.last() == Some(&b'\r');
                if self.discarding || limit.passed_by_partial(self.buf.len(), ends_in_cr) {
                    self.buf.clear();
                    self.discarding = true;
                }
                Frame::Incomplete
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` fed in pieces of `chunk` octets: the lines (as text) and "TOO LONG".
    fn frame_all(input: &[u8], chunk: usize, limit: Limit) -> (Vec<String>, Vec<u8>) {
        let max = match limit {
            Limit::Content(n) | Limit::WithEnding(n) => n,
        };
        let mut buf = LineBuffer::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend(piece);
            loop {
                match buf.next_line(limit) {
                    Frame::Line(l) => out.push(String::from_utf8_lossy(&l).into_owned()),
                    Frame::TooLong => out.push("TOO LONG".to_string()),
                    Frame::Incomplete => break,
                }
            }
            // Bounded: never more than the limit plus the piece just read.
            assert!(buf.buf.len() <= max + 1 + chunk, "held {}", buf.buf.len());
        }
        (out, buf.pending().to_vec())
    }

    #[test]
    fn lines_in_chunks_are_the_same_lines() {
        let mut input = b"EHLO x\r\nbare lf\n\r\nlone\rcr\r\nCR CR\r\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'X', 3000));
        input.extend_from_slice(b"\r\nNOOP\r\n");
        input.extend(std::iter::repeat_n(b'Y', 40));
        input.extend_from_slice(b"\nQUIT\r\npartial");
        for limit in [Limit::Content(40), Limit::WithEnding(42)] {
            let want = vec![
                "EHLO x",
                "bare lf",
                "",
                "lone\rcr",
                "CR CR\r",
                "TOO LONG",
                "NOOP",
                "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY",
                "QUIT",
            ];
            for chunk in [1, 2, 3, 7, 64, 1000, input.len()] {
                let (got, rest) = frame_all(&input, chunk, limit);
                assert_eq!(got, want, "{limit:?} in pieces of {chunk}");
                assert_eq!(rest, b"partial");
            }
        }
    }

    /// SMTP: the line with its ending is at most 1000 octets (so 998 before CRLF, 999 before a
    /// bare LF), whichever way it arrives.
    #[test]
    fn a_limit_with_the_ending_is_exact() {
        let limit = Limit::WithEnding(1000);
        let line = |n: usize, end: &[u8]| {
            let mut l = vec![b'a'; n];
            l.extend_from_slice(end);
            l
        };
        let cases: &[(Vec<u8>, bool)] = &[
            (line(998, b"\r\n"), true),
            (line(999, b"\r\n"), false),
            (line(999, b"\n"), true),
            (line(1000, b"\n"), false),
            (line(2000, b"\r\n"), false),
        ];
        for (input, fits) in cases {
            for chunk in [1, 2, 3, 7, 999, 1000, 1001] {
                let (got, _) = frame_all(input, chunk, limit);
                let want = if *fits {
                    String::from_utf8_lossy(input.trim_ascii_end()).into_owned()
                } else {
                    "TOO LONG".into()
                };
                assert_eq!(got, vec![want], "{} octets in {chunk}", input.len());
            }
        }
    }

    /// POP3: the line without its ending is at most the limit, whichever ending it has.
    #[test]
    fn a_limit_on_the_content_is_exact() {
        for chunk in [1, 2, 3, 7, 512, 513, 600] {
            for end in [&b"\r\n"[..], b"\n"] {
                let mut fits = vec![b'a'; 512];
                fits.extend_from_slice(end);
                let (got, _) = frame_all(&fits, chunk, Limit::Content(512));
                assert_eq!(got, vec!["a".repeat(512)], "chunk {chunk}");
                let mut over = vec![b'a'; 513];
                over.extend_from_slice(end);
                let (got, _) = frame_all(&over, chunk, Limit::Content(512));
                assert_eq!(got, vec!["TOO LONG"], "chunk {chunk}");
            }
        }
        // The same line fits a longer limit (POP3 AUTH lines).
        let mut buf = LineBuffer::new();
        buf.extend(&[b'a'; 600]);
        buf.extend(b"\n");
        assert_eq!(
            buf.next_line(Limit::Content(8192)),
            Frame::Line(vec![b'a'; 600])
        );
    }

    #[test]
    fn too_long_is_reported_at_the_end_of_the_line() {
        let mut buf = LineBuffer::new();
        buf.extend(&[b'x'; 600]);
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::Incomplete);
        assert!(buf.is_empty(), "not buffered");
        buf.extend(&[b'x'; 600]);
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::Incomplete);
        buf.extend(b"xx\r\nNOOP\r\n");
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::TooLong);
        assert_eq!(
            buf.next_line(Limit::Content(512)),
            Frame::Line(b"NOOP".to_vec())
        );
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::Incomplete);
    }

    #[test]
    fn clear_forgets_pipelined_input_and_a_discard() {
        let mut buf = LineBuffer::new();
        buf.extend(b"STLS\r\nUSER mallory\r\n");
        assert_eq!(
            buf.next_line(Limit::Content(512)),
            Frame::Line(b"STLS".to_vec())
        );
        buf.clear();
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::Incomplete);
        buf.extend(&[b'x'; 600]);
        assert_eq!(buf.next_line(Limit::Content(512)), Frame::Incomplete);
        buf.clear();
        buf.extend(b"NOOP\r\n");
        assert_eq!(
            buf.next_line(Limit::Content(512)),
            Frame::Line(b"NOOP".to_vec())
        );
    }

    #[test]
    fn pending_input_is_handed_over() {
        let mut buf = LineBuffer::new();
        buf.extend(b"DATA\r\nSubject: x\r\n");
        assert_eq!(
            buf.next_line(Limit::WithEnding(1000)),
            Frame::Line(b"DATA".to_vec())
        );
        assert_eq!(buf.pending(), b"Subject: x\r\n");
        buf.consume(9);
        assert_eq!(buf.pending(), b"x\r\n");
        buf.consume(100);
        assert!(buf.is_empty());
    }
}
