//! Byte-level SMTP input handling: the command line limit (lines are framed by the shared
//! [`crate::wire::line::LineBuffer`]), and the DATA decoder.
//!
//! Decisions (RFC 5321 §2.3.8 and the 2023 "SMTP smuggling" lessons):
//! - Command lines may end in CRLF or a bare LF (treated as CRLF); a line longer than
//!   [`MAX_LINE`] is answered `500 5.5.2` and skipped to its end without buffering it.
//! - In DATA, only `CRLF . CRLF` ends the message. A bare LF inside the message is taken as a line
//!   end and stored as CRLF; a bare CR is kept as it is. So no sequence can end the message early
//!   in our eyes yet late in another server's, or the other way round.
//! - Leading dots are removed (dot-unstuffing, §4.5.2).
//! - Past the size limit, or when the memory budget for mail in flight is spent
//!   ([`crate::budget`]), the decoder keeps reading to the end of the message but stores nothing
//!   more, so the reply (`552 5.3.4`, `452 4.3.1`) comes at the right place in the stream. BDAT
//!   chunks go into the same [`MessageBuffer`].

use crate::budget::Claim;
use crate::wire::line::Limit;

/// The longest command line, CRLF included (§4.5.3.1.4 says 512; 1000 is the text-line limit
/// and what real clients need for AUTH with long initial responses).
pub const MAX_LINE: usize = 1000;
/// [`MAX_LINE`] for the framer: SMTP counts the line with its ending.
pub const LINE_LIMIT: Limit = Limit::WithEnding(MAX_LINE);

/// The `SIZE=` parameter of a MAIL command line, read exactly: smtp-proto saturates long
/// numbers and then starts again from the next digit, so `SIZE=99999999999999999999999` came
/// out small. A number too large for a u64 is `u64::MAX` (and so over any limit).
pub fn mail_size_param(line: &[u8]) -> Option<u64> {
    let params = line.splitn(2, |b| *b == b'>').nth(1)?;
    params
        .split(|b| *b == b' ' || *b == b'\t')
        .find_map(|p| {
            p.get(..5)
                .filter(|k| k.eq_ignore_ascii_case(b"SIZE="))
                .map(|_| p.get(5..))
        })?
        .filter(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
        .map(|digits| {
            digits
                .iter()
                .try_fold(0u64, |n, d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .unwrap_or(u64::MAX)
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a CRLF (or the DATA command itself).
    LineStartCrlf,
    /// At the start of a line that followed a bare LF: a dot here never ends the message.
    LineStartLf,
    /// Saw a leading dot at the start of a line.
    Dot {
        after_crlf: bool,
    },
    /// Saw a leading dot and then CR.
    DotCr {
        after_crlf: bool,
    },
    InLine,
    Cr,
}

/// Why a message was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Over `max_message_size`.
    TooBig,
    /// The memory budget for mail in flight is spent.
    NoMemory,
}

/// A message being received: its bytes, held under the size limit and the memory budget. Past
/// either the rest is counted but dropped, so the reply can wait for the message's end.
#[derive(Debug)]
pub struct MessageBuffer {
    data: Vec<u8>,
    claim: Claim,
    max: usize,
    /// Octets received, including those dropped.
    size: usize,
    dropped: Option<Dropped>,
}

impl MessageBuffer {
    pub fn new(max: usize, claim: Claim) -> MessageBuffer {
        MessageBuffer {
            data: Vec::new(),
            claim,
            max,
            size: 0,
            dropped: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len());
        if self.dropped.is_some() {
            return;
        }
        if self.size > self.max {
            return self.drop_all(Dropped::TooBig);
        }
        let need = self.data.len() + bytes.len();
        if need > self.data.capacity() {
            // Grow by half again, up to the limit, and claim the room before taking it: the
            // memory held is what the budget counts (a doubling Vec could hold twice that).
            let ample = (self.data.capacity().saturating_mul(3) / 2)
                .clamp(8192, self.max.max(8192))
                .max(need);
            // Near the budget's end, what is needed rounded up to a whole MiB, then to a page:
            // each step copies the message, so steps must not be small while the budget lasts.
            let room = [
                ample,
                need.next_multiple_of(1 << 20),
                need.next_multiple_of(4096),
            ]
            .into_iter()
            .find(|&room| room >= need && self.claim.grow_to(room));
            let Some(room) = room else {
                return self.drop_all(Dropped::NoMemory);
            };
            self.data.reserve_exact(room - self.data.len());
        }
        self.data.extend_from_slice(bytes);
    }

    fn drop_all(&mut self, why: Dropped) {
        self.dropped = Some(why);
        self.data = Vec::new();
        self.claim.release();
    }

    /// Octets received so far, including any dropped.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn dropped(&self) -> Option<Dropped> {
        self.dropped
    }

    /// The message with its claim (to be kept until the message is stored), or why it was
    /// dropped.
    pub fn finish(self) -> Result<(Vec<u8>, Claim), Dropped> {
        match self.dropped {
            Some(why) => Err(why),
            None => Ok((self.data, self.claim)),
        }
    }
}

/// Decodes a DATA stream into the message: dot-unstuffing, line-end normalisation; the size
/// and memory limits are the [`MessageBuffer`]'s.
#[derive(Debug)]
pub struct DataDecoder {
    state: State,
    out: MessageBuffer,
}

impl DataDecoder {
    pub fn new(out: MessageBuffer) -> DataDecoder {
        DataDecoder {
            state: State::LineStartCrlf,
            out,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.out.push(bytes);
    }

    /// Feeds input; returns how many bytes were used and whether the end of data was reached
    /// (the bytes after it belong to the next command).
    pub fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            // Fast path: inside a line, copy everything up to the next CR or LF at once.
            if self.state == State::InLine {
                let run = input
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .position(|c| *c == b'\r' || *c == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.emit(input.get(i..i + run).unwrap_or_default());
                    i += run;
                    continue;
                }
            }
            i += 1;
            self.state = match (self.state, b) {
                (State::LineStartCrlf, b'.') => State::Dot { after_crlf: true },
                (State::LineStartLf, b'.') => State::Dot { after_crlf: false },
                (State::Dot { after_crlf }, b'\r') => State::DotCr { after_crlf },
                (State::DotCr { after_crlf: true }, b'\n') => return (i, true),
                (State::DotCr { after_crlf: false }, b'\n') | (State::Dot { .. }, b'\n') => {
                    // A lone dot that cannot end the message: keep it as a "." line.
                    self.emit(b".\r\n");
                    State::LineStartLf
                }
                (State::DotCr { .. }, other) => {
                    self.emit(b"\r");
                    self.after_text(other)
                }
                (State::Dot { .. }, other) => self.after_text(other),
                (State::Cr, b'\n') => {
                    self.emit(b"\r\n");
                    State::LineStartCrlf
                }
                (State::Cr, other) => {
                    self.emit(b"\r");
                    self.after_text(other)
                }
                (_, other) => self.after_text(other),
            };
        }
        (input.len(), false)
    }

    /// The state after a byte of line content (or a line end) outside the dot states.
    fn after_text(&mut self, b: u8) -> State {
        match b {
            b'\r' => State::Cr,
            b'\n' => {
                self.emit(b"\r\n");
                State::LineStartLf
            }
            _ => {
                self.emit(&[b]);
                State::InLine
            }
        }
    }

    /// The message decoded so far (all of it once `feed` said done).
    pub fn finish(self) -> MessageBuffer {
        self.out
    }
}

/// Whether `line` is `RCPT TO:<postmaster>` (any case, parameters allowed after it), the one
/// address without a domain every SMTP server must accept (RFC 5321 §4.5.1), which smtp-proto
/// parses as an empty address.
pub fn bare_postmaster(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line).to_ascii_lowercase();
    let Some(rest) = text.strip_prefix("rcpt to:") else {
        return false;
    };
    let rest = rest.trim_start().trim_end_matches(['\r', '\n']);
    rest.strip_prefix("<postmaster>")
        .is_some_and(|after| after.is_empty() || after.starts_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn buffer(max: usize) -> MessageBuffer {
        MessageBuffer::new(
            max,
            crate::budget::Budget::new(u64::MAX, u64::MAX).claim(LOCAL),
        )
    }

    fn decode_chunked(input: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let mut d = DataDecoder::new(buffer(1 << 20));
        let mut used = 0;
        for piece in input.chunks(chunk) {
            let (n, done) = d.feed(piece);
            used += n;
            if done {
                return (d.finish().finish().unwrap().0, used);
            }
        }
        panic!("no end of data in {input:?}");
    }

    #[test]
    fn data_decoding_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"Subject: x\r\n\r\nhello\r\n.\r\n",
                b"Subject: x\r\n\r\nhello\r\n",
            ),
            (b".\r\n", b""),
            (b"..leading dot\r\n.\r\n", b".leading dot\r\n"),
            (b"a\nb\n.\r\nx\r\n.\r\n", b"a\r\nb\r\n.\r\nx\r\n"),
            (b"a\r\n.\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
            (b"bare\rcr\r\n.\r\n", b"bare\rcr\r\n"),
            (b"a\r\n.x\r\n.\r\n", b"a\r\nx\r\n"),
            (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n"),
        ];
        for (input, want) in cases {
            for chunk in [1, 2, 3, 7, 1000] {
                let (got, used) = decode_chunked(input, chunk);
                assert_eq!(
                    got,
                    *want,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(input)
                );
                assert_eq!(used, input.len());
            }
        }
    }

    #[test]
    fn end_of_data_leaves_the_rest() {
        let mut d = DataDecoder::new(buffer(100));
        let (n, done) = d.feed(b"x\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(n, 6);
    }

    #[test]
    fn size_limit_keeps_reading_but_stops_storing() {
        let mut d = DataDecoder::new(buffer(10));
        let (_, done) = d.feed(b"0123456789abcdef\r\n.\r\n");
        assert!(done);
        let out = d.finish();
        assert_eq!(out.size(), 18);
        assert_eq!(out.finish().unwrap_err(), Dropped::TooBig);
    }

    #[test]
    fn a_spent_budget_drops_the_message_and_gives_back_its_claim() {
        let budget = crate::budget::Budget::new(100 << 10, 100 << 10);
        let mut big = MessageBuffer::new(1 << 20, budget.claim(LOCAL));
        let line = [b'x'; 1000];
        for _ in 0..150 {
            big.push(&line);
        }
        assert!(budget.used() > 0 && budget.used() <= 100 << 10);
        let mut other = MessageBuffer::new(1 << 20, budget.claim([192, 0, 2, 1].into()));
        for _ in 0..150 {
            other.push(&line);
        }
        assert_eq!(other.dropped(), Some(Dropped::NoMemory));
        assert_eq!(other.size(), 150_000, "still counted");
        let (message, claim) = big.finish().unwrap();
        assert_eq!(message.len(), 150_000);
        assert!(message.capacity() - crate::budget::FREE_BYTES <= 100 << 10);
        drop(claim);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn size_parameters_are_read_exactly() {
        let size = |l: &str| mail_size_param(l.as_bytes());
        assert_eq!(size("MAIL FROM:<a@b> SIZE=1000"), Some(1000));
        assert_eq!(size("MAIL FROM:<a@b> BODY=8BITMIME size=42"), Some(42));
        assert_eq!(
            size("MAIL FROM:<a@b> SIZE=99999999999999999999999"),
            Some(u64::MAX)
        );
        assert_eq!(
            size("MAIL FROM:<a@b> SIZE=18446744073709551616"),
            Some(u64::MAX)
        );
        assert_eq!(
            size("MAIL FROM:<a@b> SIZE=18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(size("MAIL FROM:<a@b>"), None);
        assert_eq!(size("MAIL FROM:<a@b> SIZE=x"), None);
        assert_eq!(size("MAIL FROM:<size=5@b>"), None, "inside the address");
    }

    #[test]
    fn lines() {
        use crate::wire::line::{Frame, LineBuffer};
        let mut buf = LineBuffer::new();
        buf.extend(b"EHLO x\r\nMAIL\nNOOP");
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::Line(b"EHLO x".to_vec()));
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::Line(b"MAIL".to_vec()));
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::Incomplete);
        buf.clear();
        // 1000 octets with the CRLF fit; one more does not, and is skipped to its end.
        let mut line = vec![b'a'; MAX_LINE - 2];
        line.extend_from_slice(b"\r\n");
        buf.extend(&line);
        assert_eq!(
            buf.next_line(LINE_LIMIT),
            Frame::Line(vec![b'a'; MAX_LINE - 2])
        );
        buf.extend(&[b'a'; MAX_LINE + 5]);
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::Incomplete);
        buf.extend(b"aa\r\nNOOP\r\n");
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::TooLong);
        assert_eq!(buf.next_line(LINE_LIMIT), Frame::Line(b"NOOP".to_vec()));
    }

    #[test]
    fn bare_postmaster_is_recognised() {
        for yes in [
            "RCPT TO:<postmaster>",
            "RCPT TO:<postmaster>\r\n",
            "rcpt to:<PostMaster>",
            "RCPT TO: <postmaster> NOTIFY=NEVER",
        ] {
            assert!(super::bare_postmaster(yes.as_bytes()), "{yes}");
        }
        for no in [
            "RCPT TO:<postmaster@example.org>",
            "RCPT TO:<postmasterx>",
            "MAIL FROM:<postmaster>",
            "RCPT TO:<postmaster>x",
        ] {
            assert!(!super::bare_postmaster(no.as_bytes()), "{no}");
        }
    }
}
