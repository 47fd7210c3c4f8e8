//! The body structure: a tree of [`BodyPart`]s with byte offsets into the raw message.
//!
//! The MIME tree is found here rather than taken from mail-parser's `Message`, because IMAP
//! needs what mail-parser does not keep: raw parameter values, exact part boundaries, and
//! offsets of message/rfc822 parts whose body is transfer-encoded. It is a one-pass
//! recursive descent with a stack of the open multiparts' boundaries, as in Dovecot.
//! Rules (RFC 2046, read the way Dovecot reads it):
//!
//! - A delimiter is a line `--boundary` followed only by white space; a close delimiter is
//!   `--boundary--` (anything may follow). The line break before a delimiter belongs to the
//!   delimiter, so a part's body ends before it.
//! - A line is matched against the open boundaries innermost first. A delimiter of an
//!   enclosing multipart ends every part inside it (an unterminated inner multipart stops
//!   there); a nested multipart that reuses its parent's boundary (seen from Outlook
//!   Express) takes the delimiters until it is closed, then its parent continues.
//! - A multipart part with no boundary parameter, whose boundary never occurs, or that lies
//!   deeper than [`MAX_DEPTH`], gets one synthetic `text/plain` child with an empty MIME
//!   header covering its whole body: BODYSTRUCTURE needs at least one child, and the
//!   content stays readable.
//! - `message/rfc822` and `message/global` parts are parsed as messages when their
//!   transfer encoding is the identity (7bit, 8bit, binary). A transfer-encoded one (illegal
//!   per RFC 2046, but seen) has no addressable embedded message: `message` is `None`, and it
//!   must be rendered in the basic BODYSTRUCTURE form (the grammar allows
//!   `"MESSAGE" "RFC822"` there). The same holds deeper than [`MAX_DEPTH`].
//! - Without `Content-Type` (or with one that does not parse), a part is `text/plain;
//!   charset=us-ascii`, or `message/rfc822` directly inside a `multipart/digest`.
//! - At most about [`MAX_PARTS`] parts are made; past that, a multipart's further
//!   delimiters are not looked for and the rest of its body is epilogue.

use super::address::parse_list;
use super::header::{
    Header, content_type, disposition, languages, param, parse_header, transfer_encoding, unfold,
};
use super::{BodyPart, Envelope};

/// Deepest nesting of multiparts and embedded messages that is parsed. serde_json refuses
/// to read JSON nested deeper than 128; each level here costs two, and an envelope three.
pub const MAX_DEPTH: usize = 50;
/// Most parts made for one message (roughly: embedded messages and stand-in children of
/// broken multiparts come on top).
pub const MAX_PARTS: usize = 10_000;

pub(crate) struct Parser<'a> {
    raw: &'a [u8],
    parts: usize,
    /// Boundaries of the open multiparts, outermost first.
    boundaries: Vec<Vec<u8>>,
}

/// A delimiter line: which open boundary (index in the stack), whether it closes, and
/// where the next line starts.
struct Delimiter {
    level: usize,
    close: bool,
    next: usize,
}

impl<'a> Parser<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Parser {
            raw,
            parts: 0,
            boundaries: Vec::new(),
        }
    }

    /// The top-level message: envelope and body.
    pub fn parse(mut self) -> (Envelope, BodyPart) {
        let (envelope, body, _) = self.message(0, 0);
        (envelope, body)
    }

    /// A message (top level or embedded) starting at `start`: its envelope, its body, and
    /// where parsing stopped (a delimiter line of an enclosing multipart, or the end).
    fn message(&mut self, start: usize, depth: usize) -> (Envelope, BodyPart, usize) {
        self.parts += 1;
        let stop = self.next_delimiter(start);
        let header = parse_header(self.raw, start, self.before_line_break(start, stop), true);
        let envelope = envelope(&header);
        let (body, resume) = self.entity(&header, start, stop, depth, false);
        (envelope, body, resume)
    }

    /// A MIME part starting at `start` (its first header line) and where parsing stopped.
    fn part(&mut self, start: usize, depth: usize, in_digest: bool) -> (BodyPart, usize) {
        self.parts += 1;
        let stop = self.next_delimiter(start);
        let header = parse_header(self.raw, start, self.before_line_break(start, stop), false);
        self.entity(&header, start, stop, depth, in_digest)
    }

    /// Builds an entity from its header; `stop` is the first delimiter line (of any open
    /// multipart) after `start`, where a leaf's body ends.
    fn entity(
        &mut self,
        header: &Header<'_>,
        start: usize,
        stop: usize,
        depth: usize,
        in_digest: bool,
    ) -> (BodyPart, usize) {
        let body_start = header
            .body_start
            .max(start)
            .min(self.before_line_break(start, stop));
        let (media_type, media_subtype, mut params) =
            match header.get("Content-Type").and_then(content_type) {
                Some(ct) => ct,
                None if in_digest => ("message".into(), "rfc822".into(), Vec::new()),
                None => ("text".into(), "plain".into(), Vec::new()),
            };
        if media_type == "text" && param(&params, "charset").is_none() {
            params.push(("charset".into(), "us-ascii".into()));
        }
        let encoding = transfer_encoding(header.get("Content-Transfer-Encoding"));
        let mut body_end = self.before_line_break(body_start, stop);
        let mut resume = stop;
        let mut part = BodyPart {
            media_type,
            media_subtype,
            params,
            id: header.text("Content-ID"),
            description: header.text("Content-Description"),
            encoding,
            size: 0,
            lines: None,
            md5: header.text("Content-MD5"),
            disposition: header.get("Content-Disposition").and_then(disposition),
            language: header
                .get("Content-Language")
                .map(languages)
                .unwrap_or_default(),
            location: header.text("Content-Location"),
            header_start: start as u64,
            body_start: body_start as u64,
            body_end: 0,
            parts: Vec::new(),
            message: None,
        };

        match part.media_type.as_str() {
            "multipart" => {
                let boundary = param(&part.params, "boundary")
                    .filter(|b| !b.is_empty() && depth < MAX_DEPTH && self.parts < MAX_PARTS);
                if let Some(boundary) = boundary {
                    let digest = part.media_subtype == "digest";
                    let (children, end, at) =
                        self.multipart_body(body_start, boundary.into_bytes(), depth, digest);
                    part.parts = children;
                    (body_end, resume) = (end, at);
                }
                if part.parts.is_empty() {
                    part.parts.push(self.synthetic(body_start, body_end));
                }
            }
            "message"
                if matches!(part.media_subtype.as_str(), "rfc822" | "global")
                    && matches!(part.encoding.as_str(), "7BIT" | "8BIT" | "BINARY")
                    && depth < MAX_DEPTH =>
            {
                let (envelope, body, at) = self.message(body_start, depth + 1);
                (body_end, resume) = (body.body_end as usize, at);
                part.lines = Some(count_lines(self.raw, body_start, body_end));
                part.message = Some(Box::new((envelope, body)));
            }
            "text" => part.lines = Some(count_lines(self.raw, body_start, body_end)),
            _ => {}
        }
        let body_end = body_end.max(body_start);
        part.body_end = body_end as u64;
        part.size = (body_end - body_start) as u64;
        (part, resume)
    }

    /// The parts of a multipart body starting at `start`: (parts, end of the body, where
    /// parsing stopped).
    fn multipart_body(
        &mut self,
        start: usize,
        boundary: Vec<u8>,
        depth: usize,
        digest: bool,
    ) -> (Vec<BodyPart>, usize, usize) {
        self.boundaries.push(boundary);
        let own = self.boundaries.len() - 1;
        let mut parts = Vec::new();
        let mut pos = start;
        loop {
            let at = self.next_delimiter(pos);
            let Some(d) = self.delimiter(at) else {
                // End of input: the multipart is not closed.
                self.boundaries.truncate(own);
                return (parts, self.raw.len(), self.raw.len());
            };
            if d.level != own {
                // An enclosing multipart's delimiter ends this one.
                self.boundaries.truncate(own);
                return (parts, self.before_line_break(start, at), at);
            }
            if d.close || self.parts >= MAX_PARTS {
                // The epilogue runs to the next enclosing delimiter.
                self.boundaries.truncate(own);
                let stop = self.next_delimiter(d.next);
                return (parts, self.before_line_break(start, stop), stop);
            }
            let (child, resume) = self.part(d.next, depth + 1, digest);
            parts.push(child);
            pos = resume;
        }
    }

    /// The stand-in child of a multipart without parts: the whole body as text/plain.
    fn synthetic(&mut self, start: usize, end: usize) -> BodyPart {
        self.parts += 1;
        BodyPart {
            params: vec![("charset".into(), "us-ascii".into())],
            size: end.saturating_sub(start) as u64,
            lines: Some(count_lines(self.raw, start, end)),
            header_start: start as u64,
            body_start: start as u64,
            body_end: end as u64,
            ..BodyPart::default()
        }
    }

    /// The start of the first line at or after `pos` (a line start) that is a delimiter of
    /// an open multipart, or the end of the input.
    fn next_delimiter(&self, mut pos: usize) -> usize {
        if self.boundaries.is_empty() {
            return self.raw.len();
        }
        while pos < self.raw.len() {
            if self.delimiter(pos).is_some() {
                return pos;
            }
            pos = match self
                .raw
                .get(pos..)
                .and_then(|r| r.iter().position(|&b| b == b'\n'))
            {
                Some(nl) => pos + nl + 1,
                None => self.raw.len(),
            };
        }
        self.raw.len()
    }

    /// Whether the line starting at `pos` is a delimiter, innermost boundary first.
    fn delimiter(&self, pos: usize) -> Option<Delimiter> {
        let rest = self.raw.get(pos..)?;
        let after = rest.strip_prefix(b"--")?;
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (
                after.get(..nl.saturating_sub(2)).unwrap_or_default(),
                pos + nl + 1,
            ),
            None => (after, self.raw.len()),
        };
        self.boundaries
            .iter()
            .enumerate()
            .rev()
            .find_map(|(level, boundary)| {
                let tail = line.strip_prefix(boundary.as_slice())?;
                let close = tail.starts_with(b"--");
                (close || tail.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')))
                    .then_some(Delimiter { level, close, next })
            })
    }

    /// Where content that stops at the delimiter line starting at `pos` ends: before the
    /// line break preceding it (that belongs to the delimiter), but not before `floor`. At
    /// the end of the input, `pos` itself.
    fn before_line_break(&self, floor: usize, pos: usize) -> usize {
        if pos >= self.raw.len() {
            return pos.max(floor);
        }
        let mut e = pos;
        if e > floor && self.raw.get(e - 1) == Some(&b'\n') {
            e -= 1;
            if e > floor && self.raw.get(e - 1) == Some(&b'\r') {
                e -= 1;
            }
        }
        e.max(floor)
    }
}

/// Lines in `start..end`: the number of line feeds, as Dovecot counts.
fn count_lines(raw: &[u8], start: usize, end: usize) -> u64 {
    raw.get(start..end)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

/// The RFC 3501 envelope of a message header.
pub(crate) fn envelope(header: &Header<'_>) -> Envelope {
    let list = |name: &str| {
        header
            .get(name)
            .map(|v| parse_list(&unfold(v)))
            .unwrap_or_default()
    };
    let from = list("From");
    let or_from = |l: Vec<_>| if l.is_empty() { from.clone() } else { l };
    Envelope {
        date: header.text("Date"),
        subject: header.text("Subject"),
        sender: or_from(list("Sender")),
        reply_to: or_from(list("Reply-To")),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: header.text("In-Reply-To"),
        message_id: header.text("Message-ID"),
        from,
    }
}

/// The Message-ID without its angle brackets.
pub(crate) fn bare_message_id(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let id = match trimmed.split_once('<') {
        Some((_, rest)) => rest.split_once('>').map_or(rest, |(id, _)| id),
        None => trimmed,
    };
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}
