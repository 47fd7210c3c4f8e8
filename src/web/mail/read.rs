//! Reading a message: headers, the text, the HTML (sanitized, in a sandboxed frame, remote
//! images only on request), attachments to download, the raw source. Opening marks it read.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mail_parser::{Message, MessageParser};
use serde::Deserialize;

use super::super::sanitize::{MAX_HTML_BYTES, linkify, neutralise_bidi, sanitize};
use super::super::{WebError, WebState};
use super::{Chrome, Reader};
use crate::config::format_size;
use crate::mime::BodyPart;
use crate::mime::decode::{self, Kind};
use crate::store::{FlagOp, Flags, ListEntry, Mailbox, ViewParts};

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

/// The header section of `raw` parsed by mail-parser (its body is not parsed: the text of a
/// message comes from [`message_text`], through the stored structure).
fn parse(raw: &[u8]) -> Result<Message<'_>, WebError> {
    MessageParser::default()
        .parse_headers(raw)
        .ok_or_else(|| WebError::BadRequest("This message cannot be read.".into()))
}

/// Parses the header of `raw` with mail-parser and runs `f` on the result, on the blocking
/// pool (compose reads the addresses and identifiers of the message it answers).
pub(super) async fn with_parsed<T: Send + 'static>(
    raw: Vec<u8>,
    f: impl FnOnce(&Message<'_>) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(move || f(&parse(&raw)?))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
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

/// An attachment as the page lists it.
pub struct Attachment {
    /// The IMAP part number (`2`, `1.2`): the download's URL ends with it.
    pub part: String,
    pub name: String,
    pub size: String,
    pub content_type: String,
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
    /// The plain text as HTML (escaped, links made clickable), when there is no HTML part.
    text: Option<String>,
    has_html: bool,
    /// The sanitized HTML held back remote images: they are blocked until allowed.
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

/// Stored bytes of a plain-text body shown on the page, at most (the original can be
/// downloaded whole).
const MAX_TEXT: usize = 4 << 20;
/// Stored bytes of an HTML part given to the sanitizer, at most: base64 takes 4/3 of the
/// text, and the sanitizer cuts at [`MAX_HTML_BYTES`] anyway (with a notice).
const MAX_HTML_STORED: usize = MAX_HTML_BYTES / 3 * 4 + 4096;

/// What the reading page shows of the message.
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

/// A stored message with the body structure kept at delivery.
pub(super) struct Stored {
    pub mailbox: Mailbox,
    pub entry: ListEntry,
    pub raw: Vec<u8>,
    pub body: BodyPart,
}

/// The message `uid` of folder `id` of this reader, with its body and body structure.
pub(super) async fn load_stored(
    state: &WebState,
    reader: &Reader,
    id: i64,
    uid: u32,
) -> Result<Stored, WebError> {
    let mailbox = reader.mailbox(state, id).await?;
    stored(state, mailbox, uid).await
}

async fn stored(state: &WebState, mailbox: Mailbox, uid: u32) -> Result<Stored, WebError> {
    let entry = state
        .store
        .list_entry(&mailbox, uid)
        .await?
        .ok_or(WebError::NotFound)?;
    let parts = ViewParts {
        envelope: false,
        structure: true,
        raw: true,
    };
    let view = state
        .store
        .message_views(&mailbox, &[uid], parts)
        .await?
        .into_iter()
        .next()
        .ok_or(WebError::NotFound)?;
    let raw = view.raw.unwrap_or_default();
    let body = match view.structure {
        Some(body) => body,
        // Every delivery stores the structure; should a row lack it, the same parser
        // (not another one) finds it again, and the reader sees the same parts.
        None => {
            tracing::warn!(uid, "message without a stored body structure: parsed again");
            crate::mime::analyze(&raw).body
        }
    };
    Ok(Stored {
        mailbox,
        entry,
        raw,
        body,
    })
}

/// Runs `f` on the blocking pool: a message may be as large as the size limit, and decoding
/// and sanitizing it must not hold an async worker (every other page and protocol session on
/// that worker would wait).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
}

/// The text of message `uid` of `mailbox` that a reply or a forward quotes: its text parts,
/// HTML turned into text where there is no plain alternative.
pub(super) async fn message_text(
    state: &WebState,
    mailbox: &Mailbox,
    uid: u32,
) -> Result<String, WebError> {
    let s = stored(state, mailbox.clone(), uid).await?;
    blocking(move || {
        let reading = decode::reading(&s.body);
        Ok(decode::plain_text(&s.raw, &reading, MAX_TEXT))
    })
    .await
}

/// What a conversation (`conversations.rs`) shows of message `uid` in the page itself: its
/// text when it has no HTML to show; `None` when it has (framed from [`body`], as here).
pub(super) async fn text_unless_html(
    state: &WebState,
    mailbox: &Mailbox,
    uid: u32,
) -> Result<Option<String>, WebError> {
    let s = stored(state, mailbox.clone(), uid).await?;
    blocking(move || {
        let reading = decode::reading(&s.body);
        Ok((!reading.has_html()).then(|| decode::plain_text(&s.raw, &reading, MAX_TEXT)))
    })
    .await
}

/// What the editor takes back from a draft, read through the stored structure like every
/// other message: its text, its HTML (sanitized as the reading view shows it, no remote loads)
/// when it has any, and its attachments in [`decode::reading`]'s order (the index the form's
/// boxes carry).
pub(super) struct DraftParts {
    pub text: String,
    pub html: Option<String>,
    /// (name, content type, decoded size)
    pub attachments: Vec<(String, String, u64)>,
}

/// [`DraftParts`] of message `uid` of `mailbox`.
pub(super) async fn draft_parts(
    state: &WebState,
    mailbox: &Mailbox,
    uid: u32,
) -> Result<DraftParts, WebError> {
    let s = stored(state, mailbox.clone(), uid).await?;
    blocking(move || Ok(parts_of(&s.raw, &s.body))).await
}

/// [`DraftParts`] of a message just built (not stored yet: its structure is found here).
pub(super) async fn draft_parts_of(raw: Vec<u8>) -> Result<DraftParts, WebError> {
    blocking(move || {
        let body = crate::mime::analyze(&raw).body;
        Ok(parts_of(&raw, &body))
    })
    .await
}

fn parts_of(raw: &[u8], body: &BodyPart) -> DraftParts {
    let reading = decode::reading(body);
    DraftParts {
        text: decode::plain_text(raw, &reading, MAX_TEXT),
        html: reading
            .has_html()
            .then(|| frame_html(raw, &reading, false).0),
        attachments: reading
            .attachments
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    a.content_type.clone(),
                    decode::decoded_size(raw, a.part),
                )
            })
            .collect(),
    }
}

/// The attachments numbered `keep` (in [`decode::reading`]'s order) of message `uid`,
/// decoded: (name, content type, bytes).
pub(super) async fn attachment_files(
    state: &WebState,
    mailbox: &Mailbox,
    uid: u32,
    keep: Vec<usize>,
) -> Result<Vec<(String, String, Vec<u8>)>, WebError> {
    let s = stored(state, mailbox.clone(), uid).await?;
    blocking(move || {
        let reading = decode::reading(&s.body);
        Ok(reading
            .attachments
            .iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, a)| {
                (
                    a.name.clone(),
                    a.content_type.clone(),
                    decode::part_body(&s.raw, a.part),
                )
            })
            .collect())
    })
    .await
}

/// The first `name:` field of the message's header, unfolded and trimmed.
fn header_field(raw: &[u8], name: &str) -> Option<String> {
    crate::mime::raw_header(raw)
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| {
            String::from_utf8_lossy(f.value)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// Display names, file names and subjects as the page shows them (see
/// [`neutralise_bidi`]).
fn shown_name(s: &str) -> String {
    neutralise_bidi(s).into_owned()
}

fn shown(raw: &[u8], body: &BodyPart, images_allowed: bool, frame_key: FrameKey) -> Shown {
    let envelope = crate::mime::envelope(raw);
    let names = |list: &[crate::mime::Address]| {
        crate::mime::display_addresses(list)
            .iter()
            .map(|a| shown_name(a))
            .collect()
    };
    let subject = envelope
        .subject
        .as_deref()
        .map(crate::mime::decode_words)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let reading = decode::reading(body);
    let has_html = reading.has_html();
    // Only what survives sanitizing counts: remote images in stripped script text or
    // comments are no reason for the notice. `<img` is the only element whose remote `src`
    // survives (see sanitize.rs), so HTML without one needs no sanitizing here.
    let remote_images = has_html
        && !images_allowed
        && reading.html_view.iter().any(|s| {
            s.kind == Kind::Html
                && decode::part_text(raw, s.part, MAX_HTML_STORED)
                    .to_ascii_lowercase()
                    .contains("<img")
        })
        && {
            let (html, blocked) = frame_html(raw, &reading, false);
            keep_frame(frame_key, html);
            blocked > 0
        };
    let text = (!has_html).then(|| {
        let mut text = String::new();
        for s in &reading.text_view {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&decode::part_text(raw, s.part, MAX_TEXT));
            if s.part.size as usize > MAX_TEXT {
                text.push_str("\n\n[This text is too long to show in full: download the original to read the rest.]");
            }
        }
        linkify(&text)
    });
    Shown {
        // The first one is ours: the MX adds it on top and removes any from outside.
        spam_why: header_field(raw, crate::spam::verdict::FIELD)
            .and_then(|v| crate::spam::verdict::explain(&v)),
        subject: shown_name(&subject),
        from: names(&envelope.from),
        to: names(&envelope.to),
        cc: names(&envelope.cc),
        text,
        has_html,
        remote_images,
        attachments: reading
            .attachments
            .iter()
            .map(|a| Attachment {
                part: decode::path_text(&a.path),
                name: shown_name(&a.name),
                size: format_size(decode::decoded_size(raw, a.part)),
                content_type: a.content_type.clone(),
            })
            .collect(),
    }
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<ReadQuery>,
) -> Result<MessagePage, WebError> {
    let Stored {
        mailbox,
        entry,
        raw,
        body,
    } = load_stored(&state, &reader, id, uid).await?;
    if !entry.flags.contains(Flags::SEEN) {
        state
            .store
            .set_flags(&mailbox, &[uid], FlagOp::Add, Flags::SEEN, &[], None)
            .await?;
    }
    let images_allowed = q.images.is_some();
    let key = (reader.account_id(), mailbox.id(), uid, raw.len());
    let shown = blocking(move || Ok(shown(&raw, &body, images_allowed, key))).await?;
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
        images_allowed,
        attachments: shown.attachments,
        in_trash: mailbox.special_use.as_deref() == Some("\\Trash"),
        in_junk: mailbox.special_use.as_deref() == Some("\\Junk"),
        spam_why: shown.spam_why,
    })
}

/// The sanitized HTML of the message, for the reading page's sandboxed frame: its HTML
/// view, each HTML part sanitized and each plain one escaped (links clickable).
pub async fn body(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, WebError> {
    let Stored {
        mailbox, raw, body, ..
    } = load_stored(&state, &reader, id, uid).await?;
    let allow_remote = q.images.is_some();
    let key = (reader.account_id(), mailbox.id(), uid, raw.len());
    let html = blocking(move || {
        let kept = if allow_remote { None } else { take_frame(key) };
        let frame = match kept {
            Some(kept) => kept,
            None => {
                let reading = decode::reading(&body);
                if !reading.has_html() {
                    return Err(WebError::NotFound);
                }
                Arc::new(frame_html(&raw, &reading, allow_remote).0)
            }
        };
        Ok(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
             <style>body{{font-family:system-ui,sans-serif;margin:0;padding:12px;\
             overflow-wrap:anywhere;color:#1d1f21;background:#fff}}img{{max-width:100%;height:auto}}\
             </style></head><body>{frame}</body></html>"
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

/// The frame's HTML of a message: its HTML view, each HTML part sanitized (with its `cid:`
/// images) and each plain one escaped with clickable links; and how many remote images the
/// sanitizer held back.
fn frame_html(raw: &[u8], reading: &decode::Reading<'_>, allow_remote: bool) -> (String, usize) {
    let images = inline_images(raw, reading);
    let mut out = String::new();
    let mut blocked = 0;
    for s in &reading.html_view {
        match s.kind {
            Kind::Html => {
                let source = decode::part_text(raw, s.part, MAX_HTML_STORED);
                let images = images.clone();
                let clean = sanitize(&source, allow_remote, move |cid| images.get(cid).cloned());
                blocked += clean.blocked_images;
                out.push_str(&clean.html);
            }
            Kind::Plain => {
                out.push_str("<pre style=\"white-space:pre-wrap\">");
                out.push_str(&linkify(&decode::part_text(raw, s.part, MAX_TEXT)));
                out.push_str("</pre>");
            }
        }
    }
    (out, blocked)
}

/// Whose frame a kept HTML is: account, folder, UID, and the message's size.
type FrameKey = (i64, i64, u32, usize);

/// Frames sanitized for a reading page (which must sanitize to know whether remote images
/// were held back), kept for the frame request that follows it so that a large message is
/// not sanitized twice: taken once, at most [`FRAMES_KEPT`] of them and [`FRAME_BYTES_KEPT`]
/// bytes in all (the oldest go first). Only the default form (remote images blocked).
static FRAMES: std::sync::Mutex<Vec<(FrameKey, Arc<String>)>> = std::sync::Mutex::new(Vec::new());
const FRAMES_KEPT: usize = 8;
const FRAME_BYTES_KEPT: usize = 8 << 20;

fn keep_frame(key: FrameKey, html: String) {
    if html.len() > FRAME_BYTES_KEPT {
        return;
    }
    let Ok(mut frames) = FRAMES.lock() else {
        return;
    };
    frames.retain(|(k, _)| *k != key);
    frames.push((key, Arc::new(html)));
    while frames.len() > FRAMES_KEPT
        || frames.iter().map(|(_, h)| h.len()).sum::<usize>() > FRAME_BYTES_KEPT
    {
        frames.remove(0);
    }
}

fn take_frame(key: FrameKey) -> Option<Arc<String>> {
    let mut frames = FRAMES.lock().ok()?;
    let at = frames.iter().position(|(k, _)| *k == key)?;
    Some(frames.remove(at).1)
}

/// `cid:` → `data:` URLs of the message's images, up to [`MAX_INLINE_IMAGES`] in all.
fn inline_images(raw: &[u8], reading: &decode::Reading<'_>) -> Arc<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut total = 0usize;
    for (cid, part) in &reading.inline_images {
        total = total.saturating_add(part.size as usize);
        if total > MAX_INLINE_IMAGES {
            break;
        }
        let data = base64::engine::general_purpose::STANDARD.encode(decode::part_body(raw, part));
        out.insert(
            cid.clone(),
            format!("data:{};base64,{data}", decode::content_type(part)),
        );
    }
    Arc::new(out)
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

/// Part `n` of the message (an IMAP part number, `2` or `1.2`, as the page links it), decoded,
/// always as a download. Only that part is decoded.
pub async fn attachment(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid, n)): Path<(i64, u32, String)>,
) -> Result<Response, WebError> {
    let path = decode::parse_path(&n).ok_or(WebError::NotFound)?;
    let Stored { raw, body, .. } = load_stored(&state, &reader, id, uid).await?;
    let (content_type, name, bytes) = blocking(move || {
        let a = decode::attachment(&body, &path).ok_or(WebError::NotFound)?;
        Ok((
            a.content_type.clone(),
            a.name.clone(),
            decode::part_body(&raw, a.part),
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
