//! What IMAP and the webmail need from a message, computed once at delivery.
//!
//! [`analyze`] parses a raw message (RFC 5322 + MIME) into an [`Analysis`]: the RFC 3501
//! ENVELOPE, the BODYSTRUCTURE tree with the byte offsets of every part, the decoded header
//! fields the webmail lists, and the text that search indexes. The store keeps it (the
//! envelope in the compact form of `packed.rs`, the body structure as JSON), so FETCH never
//! parses a message again: BODY[1.2] is `raw[part.body_start..part.body_end]`,
//! BODY[1.2.MIME] is `raw[part.header_start..part.body_start]`.
//!
//! Choices, where the RFCs leave room:
//! - Nothing fails: any bytes give an Analysis. Input with no header is one text/plain part
//!   covering all of it. Header values in 8-bit that are not UTF-8 are read as
//!   Windows-1252.
//! - Envelope strings are raw (unfolded, trimmed, encoded words kept; display names and
//!   local parts unquoted), as Dovecot sends them. A mailbox without a domain has the host
//!   `MISSING_DOMAIN`, without a local part the mailbox `MISSING_MAILBOX` (Dovecot's
//!   markers); NIL hosts are only used for group markers.
//! - A repeated header field counts by its first occurrence; Sender and Reply-To default
//!   to From when absent or empty (RFC 3501).
//! - Lines (text/* and message/rfc822) count line feeds in the body, as Dovecot does.
//! - How parts are found (Dovecot's way: one pass, open boundaries matched innermost
//!   first), and what happens with broken multiparts and encoded message/rfc822 parts, is
//!   described in `structure.rs`. Two things renderers must know: every multipart has at
//!   least one child (a broken one gets a stand-in text/plain child covering its body); a
//!   message/rfc822 part has `message: None` (and `lines: None`) when its body cannot be
//!   addressed as a message (transfer-encoded, or too deep), and is then written in the
//!   basic BODYSTRUCTURE form.
//! - Nesting is parsed to [`MAX_DEPTH`] levels and at most about [`MAX_PARTS`] parts are
//!   made, so that the JSON of the result stays readable by serde_json (whose limit is 128
//!   levels) and a hostile message cannot make the result huge.
//!
//! mail-parser is used for what it does well (RFC 2047 words, dates, charsets, HTML to
//! text); the MIME tree and the header syntax that IMAP shows raw are parsed here.

mod address;
pub mod decode;
mod header;
mod packed;
mod stamp;
mod structure;
#[cfg(test)]
mod tests;
mod text;

use serde::{Deserialize, Serialize};

pub use address::Mailbox;
pub use packed::{AddressRef, Addresses, EnvelopeRef, PackedEnvelope, pack as pack_envelope};
pub use stamp::{random_text, rfc5322_now, unique_id};
pub use structure::{MAX_DEPTH, MAX_PARTS};

/// The decoded display form of each address (or group) of an envelope list:
/// `Alice <a@x.org>`, `Friends: c@z.org;`.
pub fn display_addresses(list: &[Address]) -> Vec<String> {
    address::display_items(list)
}

/// The bare addresses of an envelope list (groups flattened).
pub fn bare_addresses(list: &[Address]) -> Vec<String> {
    list.iter().filter_map(address::email).collect()
}

/// The envelope of a message, read from its header alone, as at delivery.
pub fn envelope(raw: &[u8]) -> Envelope {
    let header = header::parse_header(raw, 0, raw.len(), true);
    structure::envelope(&header)
}

/// RFC 2047 encoded words decoded (a raw envelope subject, say).
pub fn decode_words(raw: &str) -> String {
    text::decode_words(raw)
}
/// The transfer decodings, also for IMAP BINARY.
pub(crate) use text::{base64_decode, qp_decode};

/// Everything kept about a message at delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub envelope: Envelope,
    pub body: BodyPart,
    /// Decoded (RFC 2047) subject, "" if none.
    pub subject: String,
    /// Decoded display form of From: e.g. "Alice <a@x.org>, b@y.org".
    pub from: String,
    /// Same for To.
    pub to: String,
    /// Same for Cc.
    pub cc: String,
    /// Date: header as unix seconds, None if missing or unparseable.
    pub date: Option<i64>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// Any part with Content-Disposition attachment, or a non-text leaf part with a
    /// filename.
    pub has_attachment: bool,
    /// First ~200 chars of the message text, whitespace collapsed.
    pub snippet: String,
    pub search: SearchText,
}

/// The text that the full-text index gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SearchText {
    pub subject: String,
    /// Every address and display name from From/To/Cc/Bcc/Reply-To/Sender, space separated.
    pub addresses: String,
    /// The decoded text of every text/* part (HTML converted to text), joined; at most
    /// 1 MiB.
    pub body: String,
    /// Every field of the message's header, one `Name: value` line each, unfolded, at most
    /// 64 KiB: IMAP `SEARCH TEXT` covers all of them (RFC 3501 §6.4.4). A value with RFC 2047
    /// encoded words is followed by a line with its decoded text, so both forms are found.
    pub headers: String,
}

/// RFC 3501 §7.4.2 ENVELOPE. Strings are the raw header values (unfolded, not decoded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<Address>,
    /// Defaults to `from` when absent or empty (RFC 3501).
    pub sender: Vec<Address>,
    /// Defaults to `from` when absent or empty (RFC 3501).
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// RFC 3501 address structure. A group is a start marker `{mailbox: Some(group name), host:
/// None}`, its members, and an end marker `{mailbox: None, host: None}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Address {
    pub name: Option<String>,
    pub adl: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

/// One node of the body structure (BODYSTRUCTURE, extended form), with offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyPart {
    /// Lower case, e.g. "text"; default "text".
    pub media_type: String,
    /// Lower case, e.g. "plain"; default "plain" ("rfc822" inside multipart/digest).
    pub media_subtype: String,
    /// Content-Type parameters in order, values unquoted; text/* without a charset gets
    /// ("charset", "us-ascii") appended.
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding, upper case; default "7BIT".
    pub encoding: String,
    /// Octets of the body as stored (encoded).
    pub size: u64,
    /// For text/* and message/rfc822 (with `message`): line feeds in the body.
    pub lines: Option<u64>,
    pub md5: Option<String>,
    /// Disposition type (lower case) and its parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Vec<String>,
    pub location: Option<String>,
    /// Byte offsets in the top-level raw message: `header_start..body_start` is this part's
    /// header including the blank line, `body_start..body_end` its body.
    pub header_start: u64,
    pub body_start: u64,
    pub body_end: u64,
    /// Children of a multipart (never empty for a multipart).
    pub parts: Vec<BodyPart>,
    /// For message/rfc822 and message/global: the embedded message's envelope and body,
    /// offsets still in the top-level raw message.
    pub message: Option<Box<(Envelope, BodyPart)>>,
}

impl Default for BodyPart {
    /// An empty `text/plain; charset=us-ascii` part at offset 0.
    fn default() -> Self {
        BodyPart {
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            size: 0,
            lines: None,
            md5: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            header_start: 0,
            body_start: 0,
            body_end: 0,
            parts: Vec::new(),
            message: None,
        }
    }
}

impl BodyPart {
    /// Whether this is a multipart (and so has `parts`).
    pub fn is_multipart(&self) -> bool {
        self.media_type == "multipart"
    }

    /// Resolves an IMAP part number (RFC 3501 §6.4.5), called on a message's body (the
    /// top-level `Analysis::body`, or the body of an embedded message). `[1]` of a
    /// non-multipart message is its body; a message/rfc822 part's children are those of its
    /// embedded message. An empty path, a 0, or a number out of range gives `None`.
    pub fn part(&self, path: &[u32]) -> Option<&BodyPart> {
        let mut children = message_children(self);
        let mut found = None;
        for &n in path {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            let p = children.get(index)?;
            found = Some(p);
            children = if p.is_multipart() {
                &p.parts
            } else if let Some(m) = &p.message {
                message_children(&m.1)
            } else {
                &[]
            };
        }
        found
    }
}

/// The numbered parts of a message whose body is `body`.
fn message_children(body: &BodyPart) -> &[BodyPart] {
    if body.is_multipart() {
        &body.parts
    } else {
        std::slice::from_ref(body)
    }
}

/// The bare Message-ID and the `Date:` (Unix seconds) of a message, read from its header
/// alone: the same values [`analyze`] stores, without parsing the body (import uses them to
/// recognise messages it already stored).
pub fn identity(raw: &[u8]) -> (Option<String>, Option<i64>) {
    let header = header::parse_header(raw, 0, raw.len(), true);
    let id = header
        .text("Message-ID")
        .as_deref()
        .and_then(structure::bare_message_id);
    let date = header.text("Date").as_deref().and_then(text::parse_date);
    (id, date)
}

/// The names of the fields in the header section of `message`, in order (split by the same
/// rules as at delivery).
pub fn header_fields(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    header::parse_header(message, 0, message.len(), true)
        .fields
        .into_iter()
        .map(|f| f.name)
}

/// A header field as written: its name and raw value (after the colon, folding kept).
#[derive(Debug, Clone, Copy)]
pub struct RawField<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// The header section of a message, split by the same rules as at delivery.
#[derive(Debug)]
pub struct RawHeader<'a> {
    pub fields: Vec<RawField<'a>>,
    /// Where the body starts (after the empty line, if any).
    pub body_start: usize,
    /// A line that looks like a field follows the line that ended the header, before the
    /// first empty line: readers would disagree on where the header ends.
    pub stray_field: bool,
}

/// The header section of `message`, up to and including the blank line that ends it (all of
/// `message` when it has no body): what reports quote of a message they return.
pub fn header_section(message: &[u8]) -> &[u8] {
    let end = header::parse_header(message, 0, message.len(), false).body_start;
    message.get(..end).unwrap_or(message)
}

/// The header section of `message`: its fields in order and where it ends.
pub fn raw_header(message: &[u8]) -> RawHeader<'_> {
    let header = header::parse_header(message, 0, message.len(), true);
    RawHeader {
        stray_field: header::stray_field(message, header.body_start),
        body_start: header.body_start,
        fields: header
            .fields
            .into_iter()
            .map(|f| RawField {
                name: f.name,
                value: f.value,
            })
            .collect(),
    }
}

/// The mailboxes of an author field's raw value (`From:`, `Sender:`), read strictly: see
/// [`Mailbox`]. An error says what is wrong, in words for the sender.
pub fn mailboxes(value: &[u8]) -> Result<Vec<Mailbox>, String> {
    address::parse_mailboxes(&header::unfold(value))
}

/// `message` without the header fields `drop` picks (it sees each field's first line, without
/// its line end; the field's continuation lines go with it), and without continuation lines
/// before the first field: joined after fields of ours, such a line would continue them (a
/// forged `X-Mailroom-Spam:` value folded into ours). The body is untouched.
pub fn drop_fields(message: &[u8], drop: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut rest = message;
    // Before the first field, a continuation line continues nothing of the sender's.
    let mut dropping = true;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        let (line, tail) = rest.split_at(end);
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            // End of the header section: the body goes through untouched.
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = drop(bare);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// The addresses of an address-list field's raw value (`To:`, `Cc:`), lower case, groups
/// flattened; what cannot be read is left out.
pub fn addresses(value: &[u8]) -> Vec<String> {
    address::parse_list(&header::unfold(value))
        .iter()
        .filter_map(address::email)
        .map(|a| a.to_ascii_lowercase())
        .collect()
}

/// `id` (with or without its angle brackets) when it is a well-formed message identifier
/// (RFC 5322 §3.6.4: `id-left "@" id-right`, each a dot-atom, the right side also a domain
/// literal; UTF-8 allowed as RFC 6532 does), without the brackets; `None` otherwise. What a
/// form sends back as `In-Reply-To:` or `References:` must pass this before it goes into a
/// header: anything else could carry a line break and a field of its own.
pub fn message_id(id: &str) -> Option<&str> {
    let id = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id);
    let (left, right) = id.rsplit_once('@')?;
    // RFC 5322 atext, plus anything beyond ASCII that is not a control or a space.
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~".contains(c)
            || !(c.is_ascii() || c.is_control() || c.is_whitespace())
    };
    let dot_atom = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|part| !part.is_empty() && part.chars().all(atext))
    };
    let literal = |s: &str| {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .is_some_and(|inner| {
                inner
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !"[]\\".contains(c))
            })
    };
    (id.len() <= 250 && dot_atom(left) && (dot_atom(right) || literal(right))).then_some(id)
}

/// Parses a raw message once, for everything IMAP, search and the webmail need. Never
/// panics, never fails.
pub fn analyze(raw: &[u8]) -> Analysis {
    let (envelope, body) = structure::Parser::new(raw).parse();

    let subject = envelope
        .subject
        .as_deref()
        .map(text::decode_words)
        .unwrap_or_default();
    let mut addresses = String::new();
    for list in [&envelope.from, &envelope.to, &envelope.cc, &envelope.bcc] {
        address::search_text(list, &mut addresses);
    }
    for list in [&envelope.sender, &envelope.reply_to] {
        if *list != envelope.from {
            address::search_text(list, &mut addresses);
        }
    }

    let headers = text::header_search_text(raw);

    let mut body_text = String::new();
    let mut snippet = None;
    collect_text(raw, &body, &mut body_text, &mut snippet);
    text::truncate(&mut body_text, text::SEARCH_BODY_MAX);

    Analysis {
        subject: subject.clone(),
        from: address::display(&envelope.from),
        to: address::display(&envelope.to),
        cc: address::display(&envelope.cc),
        date: envelope.date.as_deref().and_then(text::parse_date),
        message_id: envelope
            .message_id
            .as_deref()
            .and_then(structure::bare_message_id),
        has_attachment: has_attachment(&body),
        snippet: snippet.unwrap_or_default(),
        search: SearchText {
            subject,
            addresses,
            body: body_text,
            headers,
        },
        envelope,
        body,
    }
}

fn is_attachment(part: &BodyPart) -> bool {
    part.disposition
        .as_ref()
        .is_some_and(|(kind, _)| kind == "attachment")
}

fn has_filename(part: &BodyPart) -> bool {
    let named = |params: &[(String, String)], name: &str| {
        params.iter().any(|(n, _)| {
            let n = n.to_ascii_lowercase();
            n == name || n.starts_with(&format!("{name}*"))
        })
    };
    part.disposition
        .as_ref()
        .is_some_and(|(_, params)| named(params, "filename"))
        || named(&part.params, "name")
}

fn has_attachment(part: &BodyPart) -> bool {
    if is_attachment(part) {
        return true;
    }
    if part.is_multipart() {
        return part.parts.iter().any(has_attachment);
    }
    if part.media_type != "text" && has_filename(part) {
        return true;
    }
    part.message.as_ref().is_some_and(|m| has_attachment(&m.1))
}

/// Appends the text of every text/* leaf to `out` (up to the search cap) and takes the
/// snippet from the first text/plain or text/html one, not an attachment, that has any
/// text.
fn collect_text(raw: &[u8], part: &BodyPart, out: &mut String, snippet: &mut Option<String>) {
    if part.is_multipart() {
        for child in &part.parts {
            collect_text(raw, child, out, snippet);
        }
        return;
    }
    if let Some(m) = &part.message {
        collect_text(raw, &m.1, out, snippet);
        return;
    }
    if part.media_type != "text" {
        return;
    }
    let remaining = text::SEARCH_BODY_MAX.saturating_sub(out.len());
    let want_snippet = snippet.is_none()
        && !is_attachment(part)
        && matches!(part.media_subtype.as_str(), "plain" | "html");
    if remaining == 0 && !want_snippet {
        return;
    }
    // Decoding only a prefix: base64 and HTML markup are bigger than the text they carry.
    let limit = remaining.saturating_mul(4).saturating_add(64 * 1024);
    let t = text::part_text(raw, part, limit);
    if want_snippet {
        let s = text::collapse(&t, text::SNIPPET_CHARS);
        if !s.is_empty() {
            *snippet = Some(s);
        }
    }
    if remaining > 0 && !t.trim().is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&t);
    }
}
