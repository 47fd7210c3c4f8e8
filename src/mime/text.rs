//! Text out of a message: RFC 2047 header words, dates, and part bodies decoded
//! (transfer encoding, then charset; HTML turned into plain text) for search and snippets.
//!
//! The transfer decoders here are deliberately lenient (unlike mail-parser's, which give up
//! on the first bad byte): a stray `=` or a non-base64 byte is skipped, not fatal, so text
//! from a sloppy mailer is still searchable.

use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue};

use super::BodyPart;
use super::header::{bytes_to_string, unfold};

/// Cap on [`super::SearchText::body`].
pub(crate) const SEARCH_BODY_MAX: usize = 1 << 20;
/// Cap on [`super::SearchText::headers`].
pub(crate) const SEARCH_HEADERS_MAX: usize = 64 << 10;
/// Length of [`super::Analysis::snippet`], in characters.
pub(crate) const SNIPPET_CHARS: usize = 200;

/// Decodes RFC 2047 encoded words in an (unfolded) header text; white space runs become
/// single spaces.
pub(crate) fn decode_words(raw: &str) -> String {
    if !raw.contains("=?") {
        return raw.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let mut bytes = Vec::with_capacity(raw.len() + 1);
    bytes.extend_from_slice(raw.as_bytes());
    bytes.push(b'\n');
    match MessageStream::new(&bytes).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}

/// The text of every header field of `raw` for the full-text index (see
/// [`super::SearchText::headers`]).
pub(crate) fn header_search_text(raw: &[u8]) -> String {
    let header = super::header::parse_header(raw, 0, raw.len(), true);
    let mut out = String::new();
    for field in &header.fields {
        if out.len() >= SEARCH_HEADERS_MAX {
            break;
        }
        let value = bytes_to_string(&unfold(field.value));
        out.push_str(&String::from_utf8_lossy(field.name));
        out.push_str(": ");
        out.push_str(&value);
        out.push('\n');
        if value.contains("=?") {
            let decoded = decode_words(&value);
            if decoded != value {
                out.push_str(&decoded);
                out.push('\n');
            }
        }
    }
    truncate(&mut out, SEARCH_HEADERS_MAX);
    out
}

/// A `Date:` value as Unix seconds, `None` when it does not parse to a plausible date.
pub(crate) fn parse_date(raw: &str) -> Option<i64> {
    let dt = DateTime::parse_rfc822(raw)?;
    dt.is_valid().then(|| dt.to_timestamp())
}

/// The text of a `text/*` leaf part: transfer-decoded, charset-decoded, HTML converted.
/// Only the first `limit` bytes of the raw body are looked at.
pub(crate) fn part_text(raw: &[u8], part: &BodyPart, limit: usize) -> String {
    let text = super::decode::part_text(raw, part, limit);
    if part.media_subtype == "html" {
        html_to_text(&text)
    } else {
        text
    }
}

/// Lenient quoted-printable: `=XX` decoded, soft line breaks removed, anything else kept.
pub(crate) fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = |j: usize| input.get(j).and_then(|c| (*c as char).to_digit(16));
        if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        // Soft line break: "=" [white space] line end.
        let mut j = i + 1;
        while input.get(j).is_some_and(|c| *c == b' ' || *c == b'\t') {
            j += 1;
        }
        match (input.get(j), input.get(j + 1)) {
            (Some(b'\r'), Some(b'\n')) => i = j + 2,
            (Some(b'\n'), _) => i = j + 1,
            (None, _) => i = j,
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// Lenient base64: bytes outside the alphabet are skipped, padding ends nothing.
pub(crate) fn base64_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// White space runs collapsed to one space, cut to `max` characters.
pub(crate) fn collapse(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if count >= max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for ch in word.chars() {
            if count >= max {
                break;
            }
            out.push(ch);
            count += 1;
        }
    }
    out.trim_end().to_string()
}

/// Cuts `s` to at most `max` bytes, on a char boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
