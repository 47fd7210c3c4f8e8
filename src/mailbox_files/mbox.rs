//! mbox files, read and written in the mboxrd variant.
//!
//! Reading:
//! - A message starts at a `From ` line at the start of the file, after an empty line, or
//!   anywhere when the line carries a full date (`From sender Thu Nov 26 10:00:00 2026`). The
//!   empty line before a separator belongs to the separator, not to the message. Requiring
//!   one of the two keeps a body line such as "From here on…" that a careless writer did not
//!   quote inside its message.
//! - `>From `, `>>From `, … lose one `>` (mboxrd; for mboxo files this also unquotes the lines
//!   that writer quoted, which is what was meant).
//! - Lines end with CRLF as stored mail does, whatever the file used.
//! - `Status:`, `X-Status:` and `X-Keywords:` fields of the header (the mutt / c-client /
//!   Dovecot convention) become flags and keywords and are removed, so a message exported and
//!   imported again has its original bytes.
//!
//! Writing is the reverse: a `From MAILER-DAEMON <date>` line with the internal date (UTC),
//! LF line ends, the flag fields added at the end of the header, `From ` lines quoted with one
//! more `>`, and an empty line after each message.

use std::io::{self, BufRead, Write};

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::store::Flags;

/// One message read from an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// The date on its `From ` line, Unix seconds, when there is one that parses.
    pub from_date: Option<i64>,
    /// The message with CRLF line ends, unquoted, without its flag fields.
    pub raw: Vec<u8>,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

/// Reads messages one at a time, so a large mbox file is never held in memory whole.
pub struct Reader<R> {
    input: R,
    /// The `From ` line that starts the next message, read while finishing the previous one.
    next_from: Option<Vec<u8>>,
    started: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            next_from: None,
            started: false,
        }
    }

    /// The next message, `None` at the end of the file. A file whose first non-empty line is
    /// not a `From ` line is not an mbox file.
    pub fn next_message(&mut self) -> io::Result<Option<MboxMessage>> {
        let mut line = Vec::new();
        let from_line = match self.next_from.take() {
            Some(l) => l,
            None if self.started => return Ok(None),
            None => {
                self.started = true;
                loop {
                    line.clear();
                    if self.input.read_until(b'\n', &mut line)? == 0 {
                        return Ok(None);
                    }
                    if strip_eol(&line).is_empty() {
                        continue;
                    }
                    if line.starts_with(b"From ") {
                        break std::mem::take(&mut line);
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not an mbox file: the first line does not start with \"From \"",
                    ));
                }
            }
        };
        let mut raw = Vec::new();
        let mut blank_pending = false;
        loop {
            line.clear();
            if self.input.read_until(b'\n', &mut line)? == 0 {
                // The empty line before the end of the file is the last separator.
                break;
            }
            let content = strip_eol(&line);
            if content.starts_with(b"From ") && (blank_pending || from_date(content).is_some()) {
                self.next_from = Some(content.to_vec());
                break;
            }
            if blank_pending {
                raw.extend_from_slice(b"\r\n");
                blank_pending = false;
            }
            if content.is_empty() {
                blank_pending = true;
                continue;
            }
            raw.extend_from_slice(unquote(content));
            raw.extend_from_slice(b"\r\n");
        }
        let (raw, flags, keywords) = take_flag_fields(&raw);
        Ok(Some(MboxMessage {
            from_date: from_date(strip_eol(&from_line)),
            raw,
            flags,
            keywords,
        }))
    }
}

/// A line without its LF or CRLF.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `>From ` → `From `, `>>From ` → `>From `: one `>` less on a quoted `From ` line.
fn unquote(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    match line.get(quotes..) {
        Some(rest) if quotes > 0 && rest.starts_with(b"From ") => line.get(1..).unwrap_or(line),
        _ => line,
    }
}

/// Does this line need one more `>` to stay inside its message?
fn needs_quote(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    line.get(quotes..)
        .is_some_and(|rest| rest.starts_with(b"From "))
}

/// The flag fields this module reads and writes.
const FLAG_FIELDS: [&[u8]; 3] = [b"status", b"x-status", b"x-keywords"];

/// Removes `Status:`, `X-Status:` and `X-Keywords:` from the header of a CRLF message and
/// returns the message with the flags and keywords they meant.
fn take_flag_fields(raw: &[u8]) -> (Vec<u8>, Flags, Vec<String>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut flags = Flags::default();
    let mut keywords: Vec<String> = Vec::new();
    let mut pos = 0;
    // Whether the field being read (with its continuation lines) is dropped.
    let mut dropping = false;
    while pos < raw.len() {
        let rest = raw.get(pos..).unwrap_or_default();
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |i| i + 2);
        let line = rest.get(..end).unwrap_or(rest);
        pos += end;
        if line == b"\r\n" {
            // The end of the header: the rest is the body, kept as is.
            out.extend_from_slice(line);
            out.extend_from_slice(raw.get(pos..).unwrap_or_default());
            break;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if !dropping {
                out.extend_from_slice(line);
            }
            continue;
        }
        let field = line
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| line.get(..colon).zip(line.get(colon + 1..)));
        dropping = false;
        if let Some((name, value)) = field {
            let name = name.to_ascii_lowercase();
            if FLAG_FIELDS.contains(&name.as_slice()) {
                dropping = true;
                let value = String::from_utf8_lossy(value);
                match name.as_slice() {
                    b"status" => {
                        if value.contains('R') {
                            flags = flags.union(Flags::SEEN);
                        }
                    }
                    b"x-status" => {
                        for (c, flag) in [
                            ('A', Flags::ANSWERED),
                            ('F', Flags::FLAGGED),
                            ('T', Flags::DRAFT),
                            ('D', Flags::DELETED),
                        ] {
                            if value.contains(c) {
                                flags = flags.union(flag);
                            }
                        }
                    }
                    _ => {
                        for k in value.split([',', ' ', '\t', '\r', '\n']) {
                            if is_keyword(k) && !keywords.iter().any(|have| have == k) {
                                keywords.push(k.to_string());
                            }
                        }
                    }
                }
                continue;
            }
        }
        out.extend_from_slice(line);
    }
    (out, flags, keywords)
}

/// An IMAP keyword: an atom that is not a system flag.
pub fn is_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 100
        && !k.starts_with('\\')
        && k.bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The date of a `From ` line (asctime form, `Thu Nov 26 10:00:00 2026`, with an optional
/// numeric zone before or after the year; UTC without one), as Unix seconds.
pub fn from_date(line: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(line).ok()?;
    let tokens: Vec<&str> = text.split_whitespace().skip(2).collect();
    // After `From` and the sender: find "Mon DD HH:MM[:SS]", then the year and zone.
    for (i, w) in tokens.windows(3).enumerate() {
        let [month, day, clock] = w else { continue };
        let Some(month) = MONTHS
            .iter()
            .position(|m| month.eq_ignore_ascii_case(m))
            .and_then(|m| Month::try_from(m as u8 + 1).ok())
        else {
            continue;
        };
        let Ok(day) = day.parse::<u8>() else { continue };
        let Some(time) = parse_clock(clock) else {
            continue;
        };
        let after = tokens.get(i + 3..).unwrap_or_default();
        let year = after
            .iter()
            .take(2)
            .find_map(|t| (t.len() == 4).then(|| t.parse::<i32>().ok()).flatten())?;
        let offset = after
            .iter()
            .take(2)
            .find_map(|t| zone_seconds(t))
            .unwrap_or(0);
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let utc = PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp();
        return Some(utc - offset);
    }
    None
}

fn parse_clock(s: &str) -> Option<Time> {
    let mut parts = s.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let sec = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Time::from_hms(h, m, sec).ok()
}

/// `+0100` → 3600, `-0530` → -19800.
fn zone_seconds(t: &str) -> Option<i64> {
    let (sign, digits) = match t.as_bytes().first()? {
        b'+' => (1, t.get(1..)?),
        b'-' => (-1, t.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits.get(..2)?.parse().ok()?;
    let m: i64 = digits.get(2..)?.parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

/// `Thu Nov 26 10:00:00 2026`, in UTC.
fn asctime(unix: i64) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "Thu Jan  1 00:00:00 1970".to_string())
}

/// Appends one message to an mbox file.
pub fn write_message<W: Write>(
    out: &mut W,
    raw: &[u8],
    internal_date: i64,
    flags: Flags,
    keywords: &[String],
) -> io::Result<()> {
    writeln!(out, "From MAILER-DAEMON {}", asctime(internal_date))?;
    let mut fields = format!(
        "Status: {}O\n",
        if flags.contains(Flags::SEEN) { "R" } else { "" }
    );
    let x_status: String = [
        ('A', Flags::ANSWERED),
        ('F', Flags::FLAGGED),
        ('T', Flags::DRAFT),
        ('D', Flags::DELETED),
    ]
    .iter()
    .filter(|(_, f)| flags.contains(*f))
    .map(|(c, _)| *c)
    .collect();
    if !x_status.is_empty() {
        fields.push_str(&format!("X-Status: {x_status}\n"));
    }
    let keywords: Vec<&str> = keywords
        .iter()
        .map(String::as_str)
        .filter(|k| is_keyword(k))
        .collect();
    if !keywords.is_empty() {
        fields.push_str(&format!("X-Keywords: {}\n", keywords.join(" ")));
    }
    let mut in_header = true;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let content = strip_eol(line);
        if in_header && content.is_empty() {
            out.write_all(fields.as_bytes())?;
            in_header = false;
        }
        if needs_quote(content) {
            out.write_all(b">")?;
        }
        out.write_all(content)?;
        out.write_all(b"\n")?;
    }
    if in_header {
        // A message without a body: the fields still end its header.
        out.write_all(fields.as_bytes())?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<MboxMessage> {
        let mut r = Reader::new(input);
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn reads_mboxrd() {
        let file = b"From alice@example.net Thu Nov 26 10:00:00 2026\n\
            Subject: one\n\nHello\n>From the quoted line\n>>From twice\nFrom here on, not a separator\n\n\
            From bob@example.net Fri Nov 27 11:30:05 2026 +0100\r\n\
            Subject: two\r\nStatus: RO\r\nX-Status: AF\r\nX-Keywords: $Work Later\r\n\r\nBye\r\n\n";
        let msgs = read_all(file);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&msgs[0].raw),
            "Subject: one\r\n\r\nHello\r\nFrom the quoted line\r\n>From twice\r\n\
             From here on, not a separator\r\n"
        );
        assert_eq!(msgs[0].from_date, Some(1795687200));
        assert_eq!(msgs[0].flags, Flags::default());
        assert_eq!(
            String::from_utf8_lossy(&msgs[1].raw),
            "Subject: two\r\n\r\nBye\r\n"
        );
        assert_eq!(msgs[1].from_date, Some(1795687200 + 86400 + 5405 - 3600));
        assert_eq!(
            msgs[1].flags,
            Flags::SEEN.union(Flags::ANSWERED).union(Flags::FLAGGED)
        );
        assert_eq!(msgs[1].keywords, ["$Work", "Later"]);
    }

    #[test]
    fn not_an_mbox() {
        let mut r = Reader::new(&b"Subject: hi\n\nbody\n"[..]);
        assert!(r.next_message().is_err());
        assert!(read_all(b"").is_empty());
        assert!(read_all(b"\n\n").is_empty());
    }

    #[test]
    fn a_dated_from_line_separates_without_a_blank_line() {
        let msgs = read_all(
            b"From a Thu Nov 26 10:00:00 2026\nSubject: a\n\nx\nFrom b Thu Nov 26 10:00:01 2026\nSubject: b\n\ny\n",
        );
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1].from_date, Some(1795687201));
    }

    #[test]
    fn from_dates() {
        assert_eq!(
            from_date(b"From - Sat Jan  3 01:05:34 1996"),
            Some(820631134)
        );
        assert_eq!(
            from_date(b"From x@y Sat Jan 3 01:05 1996 -0100"),
            Some(820631100 + 3600)
        );
        assert_eq!(from_date(b"From here on we talk"), None);
        assert_eq!(from_date(b"From x Feb 31 10:00:00 2026"), None);
        assert_eq!(from_date(b"From x Thu Nov 26 25:00:00 2026"), None);
    }

    #[test]
    fn writes_what_it_reads() {
        let raw = b"Subject: s\r\nMessage-ID: <a@b>\r\n\r\nFrom me\r\n>From you\r\n\r\nend\r\n";
        let flags = Flags::SEEN.union(Flags::DRAFT).union(Flags::DELETED);
        let mut file = Vec::new();
        write_message(&mut file, raw, 1795687200, flags, &["$Later".into()]).unwrap();
        write_message(
            &mut file,
            b"Subject: bare",
            1795687201,
            Flags::default(),
            &[],
        )
        .unwrap();
        let text = String::from_utf8_lossy(&file);
        assert!(
            text.starts_with("From MAILER-DAEMON Thu Nov 26 10:00:00 2026\n"),
            "{text}"
        );
        assert!(text.contains("\n>From me\n>>From you\n"), "{text}");
        assert!(text.contains("Status: RO\nX-Status: TD\nX-Keywords: $Later\n\n"));
        let msgs = read_all(&file);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, raw);
        assert_eq!(msgs[0].flags, flags);
        assert_eq!(msgs[0].keywords, ["$Later"]);
        assert_eq!(msgs[0].from_date, Some(1795687200));
        assert_eq!(msgs[1].raw, b"Subject: bare\r\n");
        assert_eq!(msgs[1].from_date, Some(1795687201));
    }
}
