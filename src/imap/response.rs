//! Writing responses. Responses are built as bytes in an [`Out`] buffer and written once per
//! command (or whenever the buffer grows large, during a big FETCH).
//!
//! Why not imap-codec's response encoder: FETCH is the hot path (10,000 envelopes, 1,000
//! bodies), and the data comes from our own stored structures; writing it directly avoids
//! building an imap-types tree of borrowed strings with validation per field. The string rules
//! are few and all here: a string is sent quoted when it is short 7-bit text without CR, LF or
//! NUL, as a literal otherwise; absent values are NIL.

use std::fmt::Write as _;

use crate::store::{FlagState, Flags};

/// Strings longer than this go as literals even when they could be quoted.
const MAX_QUOTED: usize = 1024;

/// A flag list's contents: `\Seen \Flagged $Label1 \Recent`.
pub fn flag_list(flags: Flags, keywords: &[String], recent: bool) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for (bit, name) in [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ] {
        if flags.contains(bit) {
            parts.push(name);
        }
    }
    parts.extend(keywords.iter().map(String::as_str));
    if recent {
        parts.push("\\Recent");
    }
    parts.join(" ")
}

/// What a report of a message's flags carries besides its sequence number (see
/// [`Out::flag_fetch`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagItems {
    /// `UID n` (UID STORE, and every FETCH response once QRESYNC is enabled).
    pub uid: bool,
    /// `FLAGS (…)`, with `\Recent` among them when `Some(true)`; `None` leaves the item out
    /// (STORE .SILENT under CONDSTORE still reports the MODSEQ).
    pub flags: Option<bool>,
    /// `MODSEQ (n)` (CONDSTORE).
    pub modseq: bool,
}

/// A response buffer.
#[derive(Debug, Default)]
pub struct Out {
    pub buf: Vec<u8>,
}

impl Out {
    pub fn new() -> Out {
        Out::default()
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub fn num(&mut self, n: impl std::fmt::Display) -> &mut Self {
        let mut s = String::new();
        let _ = write!(s, "{n}");
        self.text(&s)
    }

    pub fn crlf(&mut self) -> &mut Self {
        self.raw(b"\r\n")
    }

    /// A string, quoted or literal.
    pub fn string(&mut self, bytes: &[u8]) -> &mut Self {
        let quotable = bytes.len() <= MAX_QUOTED
            && bytes
                .iter()
                .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\r' && b != b'\n');
        if quotable {
            self.buf.push(b'"');
            for &b in bytes {
                if b == b'"' || b == b'\\' {
                    self.buf.push(b'\\');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
            self
        } else {
            self.literal(bytes)
        }
    }

    /// A literal `{n}\r\n` followed by the bytes. RFC 3501 §4.3 excludes NUL from literals
    /// (stored mail may hold one): as Dovecot does, 0x80 stands in for it, so the length and
    /// every offset stay as stored.
    pub fn literal(&mut self, bytes: &[u8]) -> &mut Self {
        self.num_braced(bytes.len());
        let start = self.buf.len();
        self.raw(bytes);
        if bytes.contains(&0)
            && let Some(written) = self.buf.get_mut(start..)
        {
            written
                .iter_mut()
                .filter(|b| **b == 0)
                .for_each(|b| *b = 0x80);
        }
        self
    }

    /// BINARY content (RFC 3516): a `~{n}` literal8 when it holds NUL, a literal otherwise.
    pub fn binary(&mut self, bytes: &[u8]) -> &mut Self {
        if bytes.contains(&0) {
            self.buf.push(b'~');
            self.num_braced(bytes.len());
            self.raw(bytes)
        } else {
            self.literal(bytes)
        }
    }

    fn num_braced(&mut self, n: usize) {
        self.buf.push(b'{');
        self.num(n);
        self.buf.extend_from_slice(b"}\r\n");
    }

    /// A string, or NIL.
    pub fn nstring(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.string(v),
            None => self.raw(b"NIL"),
        }
    }

    /// A string option of text, or NIL.
    pub fn nstr(&mut self, value: Option<&str>) -> &mut Self {
        self.nstring(value.map(str::as_bytes))
    }

    /// The FETCH item `FLAGS (…)`.
    pub fn flags_item(&mut self, flags: Flags, keywords: &[String], recent: bool) -> &mut Self {
        self.text("FLAGS (")
            .text(&flag_list(flags, keywords, recent))
            .raw(b")")
    }

    /// `* n FETCH (UID u FLAGS (…) MODSEQ (m))` with the items asked for, always in that
    /// order: the one writer of a message's flags outside a FETCH command (STORE's answer,
    /// changes made elsewhere, SELECT's QRESYNC report).
    pub fn flag_fetch(&mut self, seq: u32, state: &FlagState, items: FlagItems) -> &mut Self {
        self.raw(b"* ").num(seq).raw(b" FETCH (");
        let mut sep = "";
        if items.uid {
            self.text("UID ").num(state.uid);
            sep = " ";
        }
        if let Some(recent) = items.flags {
            self.text(sep)
                .flags_item(state.flags, &state.keywords, recent);
            sep = " ";
        }
        if items.modseq {
            self.text(sep).text("MODSEQ (").num(state.modseq).raw(b")");
        }
        self.raw(b")").crlf()
    }

    /// An untagged response line: `* {line}\r\n`.
    pub fn untagged(&mut self, line: &str) -> &mut Self {
        self.raw(b"* ").text(line).crlf()
    }

    /// A tagged status line: `{tag} {status} {text}\r\n`.
    pub fn tagged(&mut self, tag: &str, status: Status, text: &str) -> &mut Self {
        self.text(tag)
            .raw(b" ")
            .text(status.as_str())
            .raw(b" ")
            .text(&sanitize(text))
            .crlf()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// The three results of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

/// Response text must be one line of 7-bit text; anything else (from an error message that
/// quotes user input) is replaced.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// An IMAP date-time: `"26-Nov-2026 10:00:00 +0000"` (always UTC).
pub fn date_time(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS
        .get(usize::from(u8::from(t.month())).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        t.day(),
        month,
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut o = Out::new();
        o.string(b"a \"b\" \\c")
            .raw(b" ")
            .string(b"x\r\ny")
            .raw(b" ");
        o.string("é".as_bytes()).raw(b" ").nstr(None);
        assert_eq!(
            String::from_utf8_lossy(&o.buf),
            "\"a \\\"b\\\" \\\\c\" {4}\r\nx\r\ny {2}\r\né NIL"
        );
    }

    #[test]
    fn no_nul_leaves_in_a_literal_or_string() {
        let mut o = Out::new();
        o.literal(b"a\0b").raw(b" ").string(b"subject\0x");
        assert_eq!(o.buf, b"{3}\r\na\x80b {9}\r\nsubject\x80x");
    }

    #[test]
    fn flags() {
        assert_eq!(
            flag_list(Flags::SEEN.union(Flags::DELETED), &["$Junk".into()], true),
            "\\Seen \\Deleted $Junk \\Recent"
        );
        assert_eq!(flag_list(Flags::default(), &[], false), "");
    }

    /// The bytes each caller wrote before there was one writer (`format!` in STORE, the
    /// change reports and SELECT QRESYNC).
    #[test]
    fn flag_reports() {
        let state = FlagState {
            uid: 42,
            flags: Flags::SEEN.union(Flags::FLAGGED),
            keywords: vec!["$Label1".into()],
            modseq: 7,
        };
        let cases: [(FlagItems, &str); 6] = [
            // SELECT (QRESYNC): always UID, FLAGS, MODSEQ, never \Recent.
            (
                FlagItems {
                    uid: true,
                    flags: Some(false),
                    modseq: true,
                },
                "* 3 FETCH (UID 42 FLAGS (\\Seen \\Flagged $Label1) MODSEQ (7))\r\n",
            ),
            // A change from elsewhere, without CONDSTORE, a recent message.
            (
                FlagItems {
                    uid: true,
                    flags: Some(true),
                    modseq: false,
                },
                "* 3 FETCH (UID 42 FLAGS (\\Seen \\Flagged $Label1 \\Recent))\r\n",
            ),
            // STORE: FLAGS alone, UID STORE, and .SILENT under CONDSTORE.
            (
                FlagItems {
                    uid: false,
                    flags: Some(false),
                    modseq: false,
                },
                "* 3 FETCH (FLAGS (\\Seen \\Flagged $Label1))\r\n",
            ),
            (
                FlagItems {
                    uid: true,
                    flags: Some(false),
                    modseq: false,
                },
                "* 3 FETCH (UID 42 FLAGS (\\Seen \\Flagged $Label1))\r\n",
            ),
            (
                FlagItems {
                    uid: false,
                    flags: None,
                    modseq: true,
                },
                "* 3 FETCH (MODSEQ (7))\r\n",
            ),
            (
                FlagItems {
                    uid: false,
                    flags: Some(false),
                    modseq: true,
                },
                "* 3 FETCH (FLAGS (\\Seen \\Flagged $Label1) MODSEQ (7))\r\n",
            ),
        ];
        for (items, wire) in cases {
            let mut o = Out::new();
            o.flag_fetch(3, &state, items);
            assert_eq!(String::from_utf8_lossy(&o.buf), wire, "{items:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date_time(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(date_time(1_795_687_200), "26-Nov-2026 10:00:00 +0000");
    }

    #[test]
    fn status_text_is_one_line() {
        let mut o = Out::new();
        o.tagged("a1", Status::No, "bad\r\nname é");
        assert_eq!(o.buf, b"a1 NO bad??name ?\r\n");
    }
}
