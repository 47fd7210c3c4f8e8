//! Reading a stored message through the body structure kept at delivery: which parts a
//! reader shows as the text and the HTML, which are attachments (numbered as IMAP numbers
//! them, RFC 3501 §6.4.5), and one part's body decoded (transfer encoding, then charset).
//!
//! The webmail reads messages this way, as IMAP does, so both number parts the same and a
//! view or a download decodes only the parts it shows, never the whole message again.
//!
//! Which parts are "the message" (choices, close to mail-parser's `body_text`/`body_html`):
//! - A `text/plain` or `text/html` leaf is body text unless it is an attachment
//!   (`Content-Disposition: attachment`, or a file name).
//! - In a `multipart/alternative`, the HTML view takes the last alternative that has HTML
//!   (RFC 2046: the last is the richest), the text view the last one made only of plain
//!   text; each falls back to the other. Alternatives not taken are not shown, nor listed.
//! - Other multiparts show their children in order; a mixed message with several text
//!   parts shows them one after the other.
//! - Every other leaf is an attachment, embedded messages included (downloaded as `.eml`),
//!   except images with a `Content-ID` inside a `multipart/related` (and not marked as
//!   attachments): those are the HTML's `cid:` images, shown in place.

use super::BodyPart;
use super::header::{decode_charset, param};
use super::text::{base64_decode, decode_words, qp_decode};

/// Part paths deeper than this are not parsed from a URL (the structure is at most
/// [`super::MAX_DEPTH`] levels deep, and an embedded message adds one level of numbering).
const MAX_PATH: usize = 2 * super::MAX_DEPTH + 2;

/// How a body part is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Html,
}

/// A part shown as the message's text.
#[derive(Debug, Clone)]
pub struct Shown<'a> {
    pub path: Vec<u32>,
    pub kind: Kind,
    pub part: &'a BodyPart,
}

/// An attachment: a part to download.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The IMAP part number (`BODY[2]`, `BODY[1.2]`).
    pub path: Vec<u32>,
    pub part: &'a BodyPart,
    /// The file name as the sender gave it (RFC 2231 and RFC 2047 decoded), or one made up.
    pub name: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
}

/// What a reader sees of a message, found from its body structure.
#[derive(Debug, Clone, Default)]
pub struct Reading<'a> {
    /// The parts to show when HTML may be shown, in order.
    pub html_view: Vec<Shown<'a>>,
    /// The parts to show as plain text (quoting a reply, a reader without HTML), in order.
    pub text_view: Vec<Shown<'a>>,
    pub attachments: Vec<Attachment<'a>>,
    /// `cid:` images: (Content-ID without angle brackets, part).
    pub inline_images: Vec<(String, &'a BodyPart)>,
}

impl Reading<'_> {
    /// Whether the HTML view has any HTML in it.
    pub fn has_html(&self) -> bool {
        self.html_view.iter().any(|s| s.kind == Kind::Html)
    }
}

/// What a reader sees of the message whose top-level body is `body`.
pub fn reading(body: &BodyPart) -> Reading<'_> {
    let mut out = Reading::default();
    if body.is_multipart() {
        visit_children(body, &[], false, &mut out);
    } else {
        visit(body, vec![1], false, &mut out);
    }
    out
}

/// The children of a multipart `part` numbered below `path`.
fn visit_children<'a>(part: &'a BodyPart, path: &[u32], related: bool, out: &mut Reading<'a>) {
    for (i, child) in part.parts.iter().enumerate() {
        let mut p = path.to_vec();
        p.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        visit(child, p, related, out);
    }
}

fn visit<'a>(part: &'a BodyPart, path: Vec<u32>, related: bool, out: &mut Reading<'a>) {
    if part.is_multipart() {
        match part.media_subtype.as_str() {
            "alternative" => alternative(part, &path, out),
            "related" => visit_children(part, &path, true, out),
            _ => visit_children(part, &path, false, out),
        }
        return;
    }
    let attached = is_attachment(part);
    if part.media_type == "text" && !attached {
        let kind = match part.media_subtype.as_str() {
            "plain" => Some(Kind::Plain),
            "html" => Some(Kind::Html),
            _ => None,
        };
        if let Some(kind) = kind {
            let shown = Shown { path, kind, part };
            out.html_view.push(shown.clone());
            out.text_view.push(shown);
            return;
        }
    }
    let cid = part.id.as_deref().map(bare_cid).filter(|c| !c.is_empty());
    if let Some(cid) =
        cid.filter(|_| part.media_type == "image" && !part.media_subtype.contains("svg"))
    {
        out.inline_images.push((cid, part));
        if related && !is_disposed_attachment(part) {
            return;
        }
    }
    out.attachments.push(Attachment {
        name: file_name(part, &path),
        content_type: content_type(part),
        path,
        part,
    });
}

/// A `multipart/alternative`: the richest alternative for the HTML view, the last plain one
/// for the text view (see the module doc).
fn alternative<'a>(part: &'a BodyPart, path: &[u32], out: &mut Reading<'a>) {
    let mut children: Vec<Reading<'a>> = Vec::with_capacity(part.parts.len());
    for (i, child) in part.parts.iter().enumerate() {
        let mut sub = Reading::default();
        let mut p = path.to_vec();
        p.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        visit(child, p, false, &mut sub);
        children.push(sub);
    }
    let shows = |r: &Reading<'_>| !r.html_view.is_empty();
    let html = children
        .iter()
        .rposition(Reading::has_html)
        .or_else(|| children.iter().rposition(shows));
    let text = children
        .iter()
        .rposition(|r| shows(r) && r.text_view.iter().all(|s| s.kind == Kind::Plain))
        .or(html);
    let mut taken: Vec<usize> = html.into_iter().chain(text).collect();
    taken.dedup();
    if taken.is_empty() {
        // Nothing to show (only attachments): keep them all.
        taken = (0..children.len()).collect();
    }
    for (i, sub) in children.into_iter().enumerate() {
        if !taken.contains(&i) {
            continue;
        }
        if Some(i) == html {
            out.html_view.extend(sub.html_view);
        }
        if Some(i) == text {
            out.text_view.extend(sub.text_view);
        }
        out.attachments.extend(sub.attachments);
        out.inline_images.extend(sub.inline_images);
    }
}

fn is_disposed_attachment(part: &BodyPart) -> bool {
    part.disposition
        .as_ref()
        .is_some_and(|(kind, _)| kind == "attachment")
}

/// Marked as an attachment, or named as a file.
fn is_attachment(part: &BodyPart) -> bool {
    is_disposed_attachment(part) || raw_file_name(part).is_some()
}

fn raw_file_name(part: &BodyPart) -> Option<String> {
    part.disposition
        .as_ref()
        .and_then(|(_, params)| param(params, "filename"))
        .or_else(|| param(&part.params, "name"))
        .filter(|n| !n.trim().is_empty())
}

/// The Content-ID without its angle brackets.
fn bare_cid(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// `type/subtype`, lower case.
pub fn content_type(part: &BodyPart) -> String {
    format!("{}/{}", part.media_type, part.media_subtype).to_ascii_lowercase()
}

/// The name to save part `path` under: the sender's file name (RFC 2047 words, which many
/// mailers use against RFC 2231, decoded too), an embedded message's subject, or
/// `part-1.2`. Control characters become `_`; at most 255 characters.
fn file_name(part: &BodyPart, path: &[u32]) -> String {
    let name = raw_file_name(part)
        .map(|n| decode_words(&n))
        .or_else(|| {
            let subject = part.message.as_ref()?.0.subject.as_deref()?;
            let subject = decode_words(subject);
            (!subject.trim().is_empty()).then(|| format!("{}.eml", subject.trim()))
        })
        .unwrap_or_else(|| {
            let ext = if part.media_type == "message" {
                ".eml"
            } else {
                ""
            };
            format!("part-{}{ext}", path_text(path))
        });
    name.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(255)
        .collect()
}

/// An IMAP part number as text: `1.2`.
pub fn path_text(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// An IMAP part number from text (`2`, `1.2`): numbers from 1, separated by single dots;
/// `None` for anything else (so the text is safe in a URL as it is).
pub fn parse_path(text: &str) -> Option<Vec<u32>> {
    if text.is_empty() || text.len() > MAX_PATH * 11 {
        return None;
    }
    let path: Vec<u32> = text
        .split('.')
        .map(|n| {
            if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse::<u32>().ok().filter(|&n| n > 0)
        })
        .collect::<Option<_>>()?;
    (path.len() <= MAX_PATH).then_some(path)
}

/// The stored (transfer-encoded) body of `part`.
fn stored<'r>(raw: &'r [u8], part: &BodyPart, limit: usize) -> &'r [u8] {
    let start = usize::try_from(part.body_start).unwrap_or(usize::MAX);
    let end = usize::try_from(part.body_end)
        .unwrap_or(usize::MAX)
        .min(start.saturating_add(limit));
    raw.get(start..end).unwrap_or_default()
}

/// The body of `part` without its transfer encoding (base64, quoted-printable; lenient, as
/// at delivery). Never longer than the stored body, so bounded by the message size.
pub fn part_body(raw: &[u8], part: &BodyPart) -> Vec<u8> {
    transfer_decode(stored(raw, part, usize::MAX), &part.encoding)
}

fn transfer_decode(body: &[u8], encoding: &str) -> Vec<u8> {
    match encoding {
        "QUOTED-PRINTABLE" => qp_decode(body),
        "BASE64" => base64_decode(body),
        _ => body.to_vec(),
    }
}

/// The text of a `text/*` part in UTF-8 (transfer encoding, then its charset; an unknown
/// charset is read as UTF-8, else Windows-1252). Only the first `limit` bytes of the stored
/// body are decoded.
pub fn part_text(raw: &[u8], part: &BodyPart, limit: usize) -> String {
    let decoded = transfer_decode(stored(raw, part, limit), &part.encoding);
    let charset = param(&part.params, "charset").unwrap_or_default();
    decode_charset(&decoded, &charset)
}

/// The text a reply or a forward quotes: the text view's parts (HTML turned into text), one
/// after the other; at most `limit` stored bytes of each part are decoded.
pub fn plain_text(raw: &[u8], reading: &Reading<'_>, limit: usize) -> String {
    let mut out = String::new();
    for shown in &reading.text_view {
        let text = part_text(raw, shown.part, limit);
        let text = match shown.kind {
            Kind::Plain => text,
            Kind::Html => mail_parser::decoders::html::html_to_text(&text),
        };
        if !out.is_empty() && !text.trim().is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&text);
    }
    out
}

/// Part `path` of the message whose body is `body` as an attachment to download (any part
/// but a multipart), named as [`reading`] names it.
pub fn attachment<'a>(body: &'a BodyPart, path: &[u32]) -> Option<Attachment<'a>> {
    let part = body.part(path)?;
    (!part.is_multipart()).then(|| Attachment {
        path: path.to_vec(),
        part,
        name: file_name(part, path),
        content_type: content_type(part),
    })
}

/// The size of `part` once decoded (what a download will be), without decoding it.
pub fn decoded_size(raw: &[u8], part: &BodyPart) -> u64 {
    let body = stored(raw, part, usize::MAX);
    match part.encoding.as_str() {
        "BASE64" => {
            let digits = body
                .iter()
                .filter(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'/')
                .count();
            (digits * 3 / 4) as u64
        }
        "QUOTED-PRINTABLE" => qp_decode(body).len() as u64,
        _ => body.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::analyze;

    const MIXED: &str = "From: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n\
Content-Type: multipart/alternative; boundary=alt\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 =\r\nau lait\r\n\
--alt\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n\
--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Café <img src=\"cid:logo@x\"></p>\r\n\
--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n\
--rel--\r\n--alt--\r\n\
--outer\r\nContent-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\nLjQK\r\n\
--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: Inner\r\n\r\nhi\r\n\
--outer--\r\n";

    #[test]
    fn alternatives_attachments_and_numbers() {
        let a = analyze(MIXED.as_bytes());
        let r = reading(&a.body);
        let paths = |v: &[Shown<'_>]| {
            v.iter()
                .map(|s| (path_text(&s.path), s.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&r.html_view), [("1.2.1".to_string(), Kind::Html)]);
        assert_eq!(paths(&r.text_view), [("1.1".to_string(), Kind::Plain)]);
        let names: Vec<_> = r
            .attachments
            .iter()
            .map(|a| (path_text(&a.path), a.name.as_str(), a.content_type.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("2".to_string(), "résumé.pdf", "application/pdf"),
                ("3".to_string(), "Inner.eml", "message/rfc822")
            ]
        );
        assert_eq!(r.inline_images.len(), 1);
        assert_eq!(r.inline_images[0].0, "logo@x");
        assert_eq!(part_body(MIXED.as_bytes(), r.inline_images[0].1), b"hello");
        let text = part_text(MIXED.as_bytes(), r.text_view[0].part, usize::MAX);
        assert_eq!(text, "Café au lait");
        let pdf = r.attachments[0].part;
        assert_eq!(part_body(MIXED.as_bytes(), pdf), b"%PDF-1.4\n");
        assert_eq!(decoded_size(MIXED.as_bytes(), pdf), 9);
        // The same part, as IMAP finds it by number.
        assert_eq!(a.body.part(&[2]), Some(pdf));
    }

    #[test]
    fn a_single_part_message_is_part_one() {
        let raw = b"Subject: x\r\n\r\nplain body\r\n";
        let a = analyze(raw);
        let r = reading(&a.body);
        assert_eq!(r.text_view.len(), 1);
        assert_eq!(r.text_view[0].path, [1]);
        assert!(!r.has_html());
        assert!(r.attachments.is_empty());
    }

    #[test]
    fn part_paths_parse_strictly() {
        assert_eq!(parse_path("2"), Some(vec![2]));
        assert_eq!(parse_path("1.2.3"), Some(vec![1, 2, 3]));
        for bad in [
            "",
            "0",
            "1.",
            ".1",
            "1..2",
            "-1",
            "+1",
            "1.a",
            "99999999999",
            "1/2",
            "1.0",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
        assert_eq!(parse_path(&vec!["1"; 500].join(".")), None);
    }
}
