//! Reading a message: headers, the text, the HTML (sanitized, in a sandboxed frame, remote
//! images only on request), attachments to download, the raw source. Opening marks it read.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};
use serde::Deserialize;

use super::super::sanitize::sanitize;
use super::super::{WebError, WebState};
use super::{Chrome, Reader};
use crate::config::format_size;
use crate::store::{FlagOp, Flags, ListEntry, Mailbox};

/// `cid:` images inlined into the HTML at most this large in all (bigger ones show as
/// attachments).
const MAX_INLINE_IMAGES: usize = 5 << 20;

/// The message `uid` of folder `id` of this reader, with its body.
pub(super) async fn load(
    state: &WebState,
    reader: &Reader,
    id: i64,
    uid: u32,
) -> Result<(Mailbox, ListEntry, Vec<u8>), WebError> {
    let mailbox = reader.mailbox(state, id).await?;
    let entry = state
        .store
        .list_entry(&mailbox, uid)
        .await?
        .ok_or(WebError::NotFound)?;
    let raw = state.store.message_body(&mailbox, uid).await?;
    Ok((mailbox, entry, raw))
}

fn parse(raw: &[u8]) -> Result<Message<'_>, WebError> {
    MessageParser::default()
        .parse(raw)
        .ok_or_else(|| WebError::BadRequest("This message cannot be read.".into()))
}

/// Parses `raw` with mail-parser and runs `f` on the result, on the blocking pool: a message
/// may be as large as the size limit, and parsing and decoding it must not hold an async
/// worker (every other page and protocol session on that worker would wait).
pub(super) async fn with_parsed<T: Send + 'static>(
    raw: Vec<u8>,
    f: impl FnOnce(&Message<'_>) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(move || f(&parse(&raw)?))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
}

/// What a conversation (`conversations.rs`) shows of a message in the page itself: its text
/// when it has no HTML part; `None` when it has one (framed from [`body`], as here).
pub(super) async fn text_unless_html(raw: Vec<u8>) -> Result<Option<String>, WebError> {
    with_parsed(raw, |m| {
        Ok(html_part(m)
            .is_none()
            .then(|| m.body_text(0).map(|t| t.into_owned()).unwrap_or_default()))
    })
    .await
}

/// `Name <address>, …` of an address header.
pub(super) fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .map(|x| match (x.name(), x.address()) {
                (Some(n), Some(addr)) if !n.is_empty() => format!("{n} <{addr}>"),
                (_, Some(addr)) => addr.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// The bare addresses of an address header.
pub(super) fn bare_addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address().map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

/// The real HTML part, if the message has one (not text converted by the parser).
fn html_part<'a>(m: &'a Message<'a>) -> Option<&'a MessagePart<'a>> {
    m.html_part(0).filter(|p| p.is_text_html())
}

/// An attachment as the page lists it.
pub struct Attachment {
    pub index: usize,
    pub name: String,
    pub size: String,
    pub content_type: String,
}

fn content_type(p: &MessagePart<'_>) -> String {
    p.content_type()
        .map(|ct| match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub),
            None => ct.c_type.to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

fn attachment_name(p: &MessagePart<'_>, index: usize) -> String {
    p.attachment_name()
        .map(str::to_string)
        .or_else(|| {
            p.message()
                .and_then(|m| m.subject())
                .map(|s| format!("{s}.eml"))
        })
        .unwrap_or_else(|| format!("attachment-{}", index + 1))
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/message.html")]
pub struct MessagePage {
    chrome: Chrome,
    box_id: i64,
    folder: String,
    uid: u32,
    subject: String,
    from: Vec<String>,
    to: Vec<String>,
    cc: Vec<String>,
    date: String,
    iso: String,
    flagged: bool,
    /// The plain text, when there is no HTML part.
    text: Option<String>,
    has_html: bool,
    /// The HTML loads remote images: they are blocked until allowed.
    remote_images: bool,
    images_allowed: bool,
    attachments: Vec<Attachment>,
    in_trash: bool,
    /// In Junk: "Not spam" instead of "Spam".
    in_junk: bool,
    /// Why the spam filter put the message where it is, from its `X-Mailroom-Spam:` header.
    spam_why: Option<String>,
}

impl MessagePage {
    fn base(&self) -> String {
        format!("/mail/box/{}/{}", self.box_id, self.uid)
    }
}

#[derive(Deserialize)]
pub struct ReadQuery {
    images: Option<String>,
    done: Option<String>,
}

/// What the reading page shows of the parsed message.
struct Shown {
    subject: String,
    from: Vec<String>,
    to: Vec<String>,
    cc: Vec<String>,
    text: Option<String>,
    has_html: bool,
    remote_images: bool,
    attachments: Vec<Attachment>,
    spam_why: Option<String>,
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<ReadQuery>,
) -> Result<MessagePage, WebError> {
    let (mailbox, entry, raw) = load(&state, &reader, id, uid).await?;
    if !entry.flags.contains(Flags::SEEN) {
        state
            .store
            .set_flags(&mailbox, &[uid], FlagOp::Add, Flags::SEEN, &[], None)
            .await?;
    }
    let shown = with_parsed(raw, |m| {
        let html = html_part(m);
        let remote_images = html.and_then(|p| p.text_contents()).is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            ["src=\"http", "src='http", "src=http", "src=\"//"]
                .iter()
                .any(|p| h.contains(p))
        });
        Ok(Shown {
            // The first one is ours: the MX adds it on top and removes any from outside.
            spam_why: m
                .header_raw(crate::spam::verdict::FIELD)
                .and_then(|v| crate::spam::verdict::explain(v.trim())),
            subject: m.subject().unwrap_or("(no subject)").to_string(),
            from: addresses(m.from()),
            to: addresses(m.to()),
            cc: addresses(m.cc()),
            text: if html.is_some() {
                None
            } else {
                Some(m.body_text(0).map(|t| t.into_owned()).unwrap_or_default())
            },
            has_html: html.is_some(),
            remote_images,
            attachments: m
                .attachments()
                .enumerate()
                .map(|(index, p)| Attachment {
                    index,
                    name: attachment_name(p, index),
                    size: format_size(p.len() as u64),
                    content_type: content_type(p),
                })
                .collect(),
        })
    })
    .await?;
    let t = entry.header_date.unwrap_or(entry.internal_date);
    Ok(MessagePage {
        chrome: Chrome::new(&state, &reader, Some(id), q.done.as_deref()).await?,
        box_id: id,
        folder: mailbox.name.clone(),
        uid,
        subject: shown.subject,
        from: shown.from,
        to: shown.to,
        cc: shown.cc,
        date: super::super::admin::timestamp(t),
        iso: super::iso_date(t),
        flagged: entry.flags.contains(Flags::FLAGGED),
        text: shown.text,
        has_html: shown.has_html,
        remote_images: shown.remote_images,
        images_allowed: q.images.is_some(),
        attachments: shown.attachments,
        in_trash: mailbox.special_use.as_deref() == Some("\\Trash"),
        in_junk: mailbox.special_use.as_deref() == Some("\\Junk"),
        spam_why: shown.spam_why,
    })
}

/// The sanitized HTML of the message, for the reading page's sandboxed frame.
pub async fn body(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, WebError> {
    let (_, _, raw) = load(&state, &reader, id, uid).await?;
    let allow_remote = q.images.is_some();
    let html = with_parsed(raw, move |m| {
        let source = html_part(m)
            .and_then(|p| p.text_contents())
            .ok_or(WebError::NotFound)?;
        let images = inline_images(m);
        let clean = sanitize(source, allow_remote, move |cid| images.get(cid).cloned());
        Ok(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
             <style>body{{font-family:system-ui,sans-serif;margin:0;padding:12px;\
             overflow-wrap:anywhere;color:#1d1f21;background:#fff}}img{{max-width:100%;height:auto}}\
             </style></head><body>{}</body></html>",
            clean.html
        ))
    })
    .await?;
    let images = if allow_remote { " https: http:" } else { "" };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:{images}; font-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
         sandbox allow-popups allow-popups-to-escape-sandbox"
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&csp).map_err(|e| WebError::Internal(e.to_string()))?,
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        html,
    )
        .into_response())
}

/// `cid:` → `data:` URLs of the message's images, up to [`MAX_INLINE_IMAGES`] in all.
fn inline_images(m: &Message<'_>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut total = 0;
    for p in &m.parts {
        let (Some(cid), ct) = (p.content_id(), content_type(p)) else {
            continue;
        };
        if !ct.starts_with("image/") || ct.contains("svg") {
            continue;
        }
        total += p.contents().len();
        if total > MAX_INLINE_IMAGES {
            break;
        }
        let data = base64::engine::general_purpose::STANDARD.encode(p.contents());
        let cid = cid
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        out.insert(cid, format!("data:{ct};base64,{data}"));
    }
    out
}

/// Types a browser would run or render as a page; downloaded as plain bytes instead.
fn safe_download_type(ct: &str) -> &str {
    let risky = ct.contains("html")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.contains("svg")
        || ct.contains("ecmascript")
        || ct == "application/pdf";
    if risky || !ct.is_ascii() || ct.contains(['\r', '\n', ';', ',']) {
        "application/octet-stream"
    } else {
        ct
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII fallback and the real name.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        super::super::admin::url_encode(name)
    )
}

fn download(content_type: &str, name: &str, bytes: Vec<u8>) -> Result<Response, WebError> {
    let bad = |e: axum::http::header::InvalidHeaderValue| WebError::Internal(e.to_string());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(safe_download_type(content_type)).map_err(bad)?,
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition(name)).map_err(bad)?,
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Attachment `n` (in the order the page lists them), always as a download.
pub async fn attachment(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid, n)): Path<(i64, u32, usize)>,
) -> Result<Response, WebError> {
    let (_, _, raw) = load(&state, &reader, id, uid).await?;
    let (content_type, name, bytes) = with_parsed(raw, move |m| {
        let p = m.attachments().nth(n).ok_or(WebError::NotFound)?;
        Ok((
            content_type(p),
            attachment_name(p, n),
            p.contents().to_vec(),
        ))
    })
    .await?;
    download(&content_type, &name, bytes)
}

/// The message as stored (`.eml`).
pub async fn raw(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
) -> Result<Response, WebError> {
    let (_, entry, raw) = load(&state, &reader, id, uid).await?;
    let name = if entry.subject.trim().is_empty() {
        format!("message-{uid}.eml")
    } else {
        format!("{}.eml", entry.subject.trim())
    };
    download("message/rfc822", &name, raw)
}
