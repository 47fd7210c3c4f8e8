//! What the tests read of the message: header values (RFC 2047 decoded, unfolded), the
//! addresses in a header, and the body as the "body" extension sees it (RFC 5173). The
//! message is parsed once, by mail-parser, which never panics and bounds its own nesting.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

use super::ir::BodyTransform;

/// How deep `:content` follows message/rfc822 parts into embedded messages.
const MAX_EMBEDDED: usize = 8;

pub(crate) struct Mail<'a> {
    raw: &'a [u8],
    parsed: Option<mail_parser::Message<'a>>,
}

impl<'a> Mail<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        let parsed = MessageParser::new()
            .with_mime_headers()
            .default_header_text()
            .parse(raw);
        Mail { raw, parsed }
    }

    pub fn size(&self) -> usize {
        self.raw.len()
    }

    fn headers(&self) -> &[mail_parser::Header<'a>] {
        match &self.parsed {
            Some(m) => m.parts.first().map_or(&[], |p| p.headers.as_slice()),
            None => &[],
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.headers()
            .iter()
            .any(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// The values of the fields named `name`, in order: decoded text.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| match h.value() {
                HeaderValue::Text(t) => t.trim().to_string(),
                _ => self.raw_value(h),
            })
            .collect()
    }

    /// The values of the fields named `name` as written, unfolded (for addresses, whose
    /// syntax decoding could break).
    pub fn raw_values(&self, name: &str) -> Vec<String> {
        self.headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| self.raw_value(h))
            .collect()
    }

    fn raw_value(&self, h: &mail_parser::Header<'_>) -> String {
        let start = usize::try_from(h.offset_start()).unwrap_or(usize::MAX);
        let end = usize::try_from(h.offset_end()).unwrap_or(0);
        let bytes = self.raw.get(start..end).unwrap_or_default();
        unfold(&String::from_utf8_lossy(bytes))
    }

    /// The first value of `name`, or "".
    pub fn first(&self, name: &str) -> String {
        self.values(name).into_iter().next().unwrap_or_default()
    }

    /// The body texts the `body` test compares against.
    pub fn body(&self, transform: &BodyTransform) -> Vec<String> {
        let Some(m) = &self.parsed else {
            return Vec::new();
        };
        match transform {
            BodyTransform::Raw => {
                let start = m.parts.first().map_or(self.raw.len(), |p| {
                    usize::try_from(p.raw_body_offset()).unwrap_or(usize::MAX)
                });
                vec![
                    String::from_utf8_lossy(self.raw.get(start..).unwrap_or_default()).into_owned(),
                ]
            }
            BodyTransform::Text => {
                let mut out = Vec::new();
                collect(m, &[String::from("text")], true, 0, &mut out);
                out
            }
            BodyTransform::Content(types) => {
                let mut out = Vec::new();
                collect(m, types, false, 0, &mut out);
                out
            }
        }
    }
}

/// Removes header folding (CRLF before white space) and trims.
fn unfold(s: &str) -> String {
    s.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// Whether a part of type `ctype/subtype` is selected by the `:content` list (RFC 5173 §5:
/// "" selects all, a type alone all its subtypes, "type/subtype" exactly).
fn selected(types: &[String], ctype: &str, subtype: &str) -> bool {
    types.iter().any(|t| {
        let t = t.trim();
        if t.is_empty() {
            return true;
        }
        match t.split_once('/') {
            Some((ty, sub)) => ty.eq_ignore_ascii_case(ctype) && sub.eq_ignore_ascii_case(subtype),
            None => t.eq_ignore_ascii_case(ctype),
        }
    })
}

fn collect(
    m: &mail_parser::Message<'_>,
    types: &[String],
    text: bool,
    depth: usize,
    out: &mut Vec<String>,
) {
    for part in &m.parts {
        let (ctype, subtype) = match part.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or_default().to_ascii_lowercase(),
            ),
            None => ("text".to_string(), "plain".to_string()),
        };
        match &part.body {
            // RFC 5173 §5: a multipart's own text (its prologue and epilogue) is what
            // `:content "multipart"` sees; its parts come in the loop on their own.
            PartType::Multipart(_) if !text && selected(types, &ctype, &subtype) => {
                let start = usize::try_from(part.raw_body_offset()).unwrap_or(usize::MAX);
                let end = usize::try_from(part.raw_end_offset()).unwrap_or(usize::MAX);
                let body = m.raw_message.get(start..end).unwrap_or_default();
                let boundary = part
                    .content_type()
                    .and_then(|ct| ct.attribute("boundary"))
                    .unwrap_or_default();
                out.extend(prologue_and_epilogue(body, boundary));
            }
            PartType::Multipart(_) => {}
            PartType::Message(inner) if depth < MAX_EMBEDDED => {
                collect(inner, types, text, depth + 1, out);
            }
            PartType::Html(html) if selected(types, &ctype, &subtype) => {
                // :text wants the words, not the markup (RFC 5173 §5.2 lets it convert).
                out.push(if text {
                    mail_parser::decoders::html::html_to_text(html)
                } else {
                    html.to_string()
                });
            }
            PartType::Text(t) if selected(types, &ctype, &subtype) => out.push(t.to_string()),
            PartType::Binary(b) | PartType::InlineBinary(b)
                if !text && selected(types, &ctype, &subtype) =>
            {
                out.push(String::from_utf8_lossy(b).into_owned());
            }
            _ => {}
        }
    }
}

/// The text of a multipart body before its first boundary line and after its closing one.
fn prologue_and_epilogue(body: &[u8], boundary: &str) -> Vec<String> {
    if boundary.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(body);
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut out = Vec::new();
    let first = text
        .match_indices(&open)
        .find(|(i, _)| *i == 0 || text.get(..*i).is_some_and(|b| b.ends_with('\n')))
        .map(|(i, _)| i);
    if let Some(prologue) = first
        .and_then(|i| text.get(..i))
        .filter(|p| !p.trim().is_empty())
    {
        out.push(prologue.to_string());
    }
    if let Some(i) = text.rfind(&close)
        && let Some(epilogue) = text.get(i + close.len()..)
    {
        let epilogue = epilogue.trim_start_matches(['\r', '\n']);
        if !epilogue.trim().is_empty() {
            out.push(epilogue.to_string());
        }
    }
    out
}

/// The addresses (addr-specs) in an address-list value, as written: display names,
/// comments and group names dropped, angle brackets removed.
pub(crate) fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut quoted = false;
    let mut comment = 0usize;
    let mut chars = value.chars();
    let finish = |current: &mut String, angle: &mut Option<String>, out: &mut Vec<String>| {
        let had_angle = angle.is_some();
        let addr = match angle.take() {
            Some(a) => strip_route(a.trim()),
            None => current.split_whitespace().collect::<Vec<_>>().join(""),
        };
        // `<>` is the null address: kept, empty.
        if !addr.is_empty() || had_angle {
            out.push(addr);
        }
        current.clear();
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' => quoted = false,
                '\\' => {
                    if let Some(n) = chars.next() {
                        push(&mut current, &mut angle, in_angle, n);
                    }
                    continue;
                }
                _ => {}
            }
            push(&mut current, &mut angle, in_angle, c);
            continue;
        }
        if comment > 0 {
            match c {
                '(' => comment += 1,
                ')' => comment -= 1,
                '\\' => {
                    chars.next();
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                push(&mut current, &mut angle, in_angle, c);
            }
            '(' => comment = 1,
            '<' if !in_angle => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' if in_angle => in_angle = false,
            ',' | ';' if !in_angle => finish(&mut current, &mut angle, &mut out),
            // A group's name ends at its colon: what came before is not an address.
            ':' if !in_angle && angle.is_none() => current.clear(),
            _ => push(&mut current, &mut angle, in_angle, c),
        }
    }
    finish(&mut current, &mut angle, &mut out);
    out
}

fn push(current: &mut String, angle: &mut Option<String>, in_angle: bool, c: char) {
    match angle {
        Some(a) if in_angle => a.push(c),
        _ => current.push(c),
    }
}

/// `@a,@b:user@host` → `user@host` (obsolete source routes).
fn strip_route(a: &str) -> String {
    match a.strip_prefix('@').and_then(|_| a.split_once(':')) {
        Some((_, rest)) => rest.to_string(),
        None => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists() {
        assert_eq!(
            addresses("Alice <alice@example.org>, bob@example.com"),
            ["alice@example.org", "bob@example.com"]
        );
        assert_eq!(
            addresses("\"Doe, J\" <j@x.org> (comment, here)"),
            ["j@x.org"]
        );
        assert_eq!(addresses("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(
            addresses("team: a@x.org, b@x.org;, c@x.org"),
            ["a@x.org", "b@x.org", "c@x.org"]
        );
        assert_eq!(addresses("<@route:u@h>"), ["u@h"]);
        assert_eq!(addresses("<>"), [""]);
        assert_eq!(addresses("plain"), ["plain"]);
    }

    #[test]
    fn body_parts() {
        let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html <b>words</b></p>\r\n--b--\r\n";
        let m = Mail::new(raw);
        let text = m.body(&BodyTransform::Text).join("|");
        assert!(
            text.contains("plain words") && text.contains("html words"),
            "{text}"
        );
        let html = m
            .body(&BodyTransform::Content(vec!["text/html".into()]))
            .join("|");
        assert!(
            html.contains("<b>words</b>") && !html.contains("plain"),
            "{html}"
        );
        let raw_body = m.body(&BodyTransform::Raw).join("");
        assert!(raw_body.starts_with("--b\r\n"), "{raw_body}");
    }
}
