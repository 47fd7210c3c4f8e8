//! Compose, reply, reply-all and forward; Send through the one submission path (DKIM, local
//! delivery, queue) with a copy kept in Sent, or Save to Drafts.
//!
//! Drafts reopen in this form (`?draft=box:uid`, see `drafts.rs`), and the form follows its
//! draft in the hidden `draft` field: every save (the button, the autosave endpoint that
//! `static/compose.js` calls while typing, a form error with files attached) stores a new
//! version and expunges the old one, and sending expunges it. A draft's attachments are listed
//! with a box each and go along without being uploaded again; a form error saves the uploads
//! as a draft so they are not lost.
//!
//! Rich text: with JavaScript the body is edited as HTML (`body_html`, `mode=rich`); it is
//! sanitized by the reading view's own rules before it is sent, and sent as
//! multipart/alternative with a text part written from it (`rich.rs`). Without JavaScript, or
//! in "Plain text" mode, the textarea is the body.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mail_builder::MessageBuilder;
use mail_builder::mime::MimePart;
use serde::Deserialize;

use super::super::sanitize::{MAX_HTML_BYTES, sanitize};
use super::super::{WebError, WebState};
use super::drafts::{self, File, Kept, NotSaved};
use super::read::{addresses, bare_addresses, load, with_parsed};
use super::rich::{html_to_text, text_to_html};
use super::{Chrome, Reader};
use crate::address::Address;
use crate::config::format_size;
use crate::store::{FlagOp, Flags};
use crate::submission::{Recipient, SubmitError};

/// Recipients of one message at most (To, Cc and Bcc together), as SMTP allows.
const MAX_RECIPIENTS: usize = 100;

/// `keep` boxes read from one form, at most (a draft has no more attachments than fit in a
/// message; this only bounds what a forged form can make us hold).
const MAX_KEEP: usize = 1000;

#[derive(Template, WebTemplate, Default)]
#[template(path = "mail/compose.html")]
pub struct ComposePage {
    chrome: Chrome,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    body: String,
    in_reply_to: String,
    references: String,
    /// `box:uid` of the message answered (marked \Answered once sent).
    reply_of: String,
    /// `box:uid` of the message forwarded (attached to the new one).
    forward_of: String,
    forward_name: String,
    to_error: Option<String>,
    cc_error: Option<String>,
    bcc_error: Option<String>,
    attach_error: Option<String>,
    error: Option<String>,
    max_size: String,
    /// `box:uid` of the draft this form edits (empty: none yet).
    draft: String,
    /// The draft's attachments, sent along unless unticked.
    kept: Vec<Kept>,
    /// `rich` when the body is HTML (the editor starts in it), else `plain`.
    mode: String,
    /// The body as HTML, for the rich editor.
    body_html: String,
    /// Files uploaded with a form that had an error could not be kept.
    files_lost: bool,
}

#[derive(Deserialize)]
pub struct ComposeQuery {
    reply: Option<String>,
    all: Option<String>,
    forward: Option<String>,
    to: Option<String>,
    draft: Option<String>,
}

/// `"12:34"` → (mailbox 12, uid 34).
pub(super) fn message_ref(s: &str) -> Option<(i64, u32)> {
    let (b, u) = s.split_once(':')?;
    Some((b.parse().ok()?, u.parse().ok()?))
}

/// The original text, each line quoted with `> `.
fn quote(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('>') {
                format!(">{l}")
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn with_prefix(prefix: &str, subject: &str) -> String {
    let s = subject.trim();
    if s.to_ascii_lowercase()
        .starts_with(&prefix.to_ascii_lowercase())
    {
        s.to_string()
    } else {
        format!("{prefix} {s}")
    }
}

pub async fn form(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<ComposeQuery>,
) -> Result<ComposePage, WebError> {
    let signature = reader.0.account.signature.trim().to_string();
    let sig_block = if signature.is_empty() {
        String::new()
    } else {
        format!("\n\n-- \n{signature}")
    };
    let mut page = ComposePage {
        chrome: Chrome::new(&state, &reader, None, None).await?,
        max_size: format_size(state.max_message_size),
        to: q.to.unwrap_or_default(),
        body: sig_block.clone(),
        ..ComposePage::default()
    };
    if let Some(reference) = q.draft.as_deref() {
        let d = drafts::open(&state, &reader, reference).await?;
        page.to = d.to;
        page.cc = d.cc;
        page.bcc = d.bcc;
        page.subject = d.subject;
        page.in_reply_to = d.in_reply_to;
        page.references = d.references;
        page.reply_of = d.reply_of;
        page.kept = d.kept;
        page.draft = reference.to_string();
        match d.html {
            Some(html) => {
                page.mode = "rich".into();
                page.body_html = html;
                page.body = d.text;
            }
            None => {
                page.mode = "plain".into();
                page.body_html = text_to_html(&d.text);
                page.body = d.text;
            }
        }
        return Ok(page);
    }
    let original = q.reply.as_deref().or(q.forward.as_deref());
    if let Some((id, uid)) = original.and_then(message_ref) {
        let (mailbox, entry, raw) = load(&state, &reader, id, uid).await?;
        let text = super::read::message_text(&state, &mailbox, uid).await?;
        let me = reader.0.account.address.to_lowercase();
        let (reply, all) = (q.reply.is_some(), q.all.is_some());
        page = with_parsed(raw, move |m| {
            let subject = m.subject().unwrap_or("").to_string();
            let from = addresses(m.from()).join(", ");
            let date =
                super::super::admin::timestamp(entry.header_date.unwrap_or(entry.internal_date));
            if reply {
                let reply_to = bare_addresses(m.reply_to());
                let mut to = if reply_to.is_empty() {
                    bare_addresses(m.from())
                } else {
                    reply_to
                };
                let mut cc = Vec::new();
                if all {
                    to.extend(bare_addresses(m.to()));
                    cc.extend(bare_addresses(m.cc()));
                }
                let mut seen = vec![me];
                let mut keep = |a: &String| {
                    let l = a.to_lowercase();
                    let new = !seen.contains(&l);
                    seen.push(l);
                    new
                };
                to.retain(&mut keep);
                cc.retain(&mut keep);
                page.to = to.join(", ");
                page.cc = cc.join(", ");
                page.subject = with_prefix("Re:", &subject);
                // Only identifiers that will pass `message_ids` on the way back: a reply to a
                // message whose ids are malformed is sent without threading headers rather than
                // refused.
                if let Some(id) = m.message_id().and_then(crate::mime::message_id) {
                    page.in_reply_to = id.to_string();
                    let mut refs: Vec<String> = m
                        .references()
                        .as_text_list()
                        .map(|l| l.iter().map(|r| r.to_string()).collect())
                        .or_else(|| m.references().as_text().map(|r| vec![r.to_string()]))
                        .unwrap_or_default();
                    refs.retain(|r| crate::mime::message_id(r).is_some());
                    refs.push(id.to_string());
                    page.references = refs.join(" ");
                }
                page.reply_of = format!("{id}:{uid}");
                page.body = format!(
                    "{sig_block}\n\nOn {date}, {from} wrote:\n{}\n",
                    quote(&text)
                );
            } else {
                page.subject = with_prefix("Fwd:", &subject);
                page.forward_of = format!("{id}:{uid}");
                page.forward_name = format!(
                    "{}.eml",
                    if subject.is_empty() {
                        "message"
                    } else {
                        &subject
                    }
                );
                page.body = format!(
                    "{sig_block}\n\n---------- Forwarded message ----------\n\
                 From: {from}\nDate: {date}\nSubject: {subject}\n\n{text}\n"
                );
            }
            Ok(page)
        })
        .await?;
    }
    // A new message: the editor's mode is the browser's choice (compose.js remembers the last
    // one; an empty mode is plain text without JavaScript). In rich mode a reply's quote is a
    // <blockquote> (text_to_html).
    page.mode = String::new();
    page.body_html = text_to_html(&page.body);
    Ok(page)
}

/// What the form sent.
#[derive(Default)]
struct Sent {
    csrf: String,
    action: String,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    body: String,
    in_reply_to: String,
    references: String,
    reply_of: String,
    forward_of: String,
    draft: String,
    keep: Vec<usize>,
    mode: String,
    body_html: String,
    files: Vec<File>,
}

async fn read_form(mut multipart: Multipart, limit: u64) -> Result<Sent, WebError> {
    let too_large = || {
        WebError::TooLarge(format!(
            "The message with its attachments is larger than this server accepts ({}). Attach less, or share large files another way.",
            format_size(limit)
        ))
    };
    let mut f = Sent::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(WebError::BadRequest(format!(
                    "The form could not be read: {e}"
                )));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(WebError::BadRequest(format!(
                    "The form could not be read: {e}"
                )));
            }
        };
        if name == "attachment" {
            if let Some(file) = file_name.filter(|n| !n.is_empty()) {
                f.files.push(File {
                    name: file,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            continue;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "csrf" => f.csrf = text,
            "action" => f.action = text,
            "to" => f.to = text,
            "cc" => f.cc = text,
            "bcc" => f.bcc = text,
            "subject" => f.subject = text,
            "body" => f.body = text,
            "in_reply_to" => f.in_reply_to = text,
            "references" => f.references = text,
            "reply_of" => f.reply_of = text,
            "forward_of" => f.forward_of = text,
            "draft" => f.draft = text,
            "mode" => f.mode = text,
            "body_html" => f.body_html = text,
            "keep" => {
                if let Ok(i) = text.trim().parse()
                    && f.keep.len() < MAX_KEEP
                    && !f.keep.contains(&i)
                {
                    f.keep.push(i);
                }
            }
            _ => {}
        }
    }
    Ok(f)
}

/// Most identifiers kept in `References:` (RFC 5322 §3.6.4 lets a writer trim the middle of a
/// long thread; clients keep about 20).
const MAX_REFERENCES: usize = 50;

/// The message identifiers of a form's `in_reply_to` or `references` field (white space
/// separated, with or without angle brackets), each checked by [`crate::mime::message_id`]:
/// these are written into the header, so one with a line break in it would add fields of its
/// own. The one validator for every identifier a form sends.
fn message_ids(field: &str, what: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for item in field.split_whitespace() {
        match crate::mime::message_id(item) {
            Some(id) => ids.push(id.to_string()),
            None => return Err(format!("{what}: {item:?} is not a message identifier.")),
        }
    }
    // Keep the first (the thread's root) and the latest.
    if ids.len() > MAX_REFERENCES {
        ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
    }
    Ok(ids)
}

/// The addresses of a To/Cc/Bcc field: comma or semicolon separated, each `a@b` or
/// `Name <a@b>`.
fn parse_addresses(field: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in field
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let addr = match (item.rfind('<'), item.rfind('>')) {
            (Some(a), Some(b)) if a < b => &item[a + 1..b],
            _ => item,
        };
        // The message already quotes the address it refuses: not again (issue 24).
        let parsed = Address::parse(addr)?;
        out.push(parsed.to_string());
    }
    Ok(out)
}

/// (display name, address) of each address of a field that parses, each item on its own (a
/// draft keeps what it can of a half-typed field; a message sent has passed
/// [`parse_addresses`] first): for the headers and the address book.
fn named_addresses(field: &str) -> Vec<(String, String)> {
    field
        .split([',', ';'])
        .filter_map(|item| {
            let address = parse_addresses(item).ok()?.into_iter().next()?;
            // No control characters: the name goes into a header.
            let name: String = match item.rfind('<') {
                Some(a) => item[..a].trim().trim_matches('"').trim().to_string(),
                None => String::new(),
            }
            .chars()
            .filter(|c| !c.is_control())
            .collect();
            Some((name, address))
        })
        .collect()
}

/// The text part, and the HTML part when the form was in rich mode: the editor's HTML
/// sanitized by the reading view's rules, then the text written from that.
async fn bodies(f: &Sent) -> Result<(String, Option<String>), String> {
    if f.mode != "rich" || f.body_html.trim().is_empty() {
        return Ok((f.body.replace("\r\n", "\n"), None));
    }
    if f.body_html.len() > MAX_HTML_BYTES {
        return Err(format!(
            "The formatted text is longer than {}: switch to plain text, or attach it as a file.",
            format_size(MAX_HTML_BYTES as u64)
        ));
    }
    let html = f.body_html.clone();
    tokio::task::spawn_blocking(move || {
        let clean = sanitize(&html, false, |_| None).html;
        let text = html_to_text(&clean);
        let document = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>{clean}</body></html>\n"
        );
        (text, Some(document))
    })
    .await
    .map_err(|e| format!("The formatted text could not be read: {e}"))
}

/// (display name, address) pairs as a header's address list.
fn address_list(people: Vec<(String, String)>) -> mail_builder::headers::address::Address<'static> {
    use mail_builder::headers::address::Address as A;
    A::new_list(
        people
            .into_iter()
            .map(|(name, address)| {
                if name.is_empty() {
                    A::from(address)
                } else {
                    A::from((name, address))
                }
            })
            .collect(),
    )
}

/// What goes into a message: its recipients (display name, address), threading, body and
/// files.
struct Content {
    to: Vec<(String, String)>,
    cc: Vec<(String, String)>,
    bcc: Vec<(String, String)>,
    in_reply_to: Vec<String>,
    references: Vec<String>,
    text: String,
    html: Option<String>,
    files: Vec<File>,
}

/// Builds the message (a draft keeps Bcc and the replied message's reference; a message to
/// send never does).
async fn build(
    state: &WebState,
    reader: &Reader,
    f: &Sent,
    c: Content,
    draft: bool,
) -> Result<Vec<u8>, WebError> {
    // The forwarded message goes along as an attachment, unencoded as RFC 2046 §5.2.1 wants
    // for message/rfc822 (it was accepted as mail, so its lines are fine as they are).
    let mut attachments: Vec<MimePart<'static>> = c
        .files
        .into_iter()
        .map(|file| {
            let part = MimePart::new(file.content_type.clone(), file.bytes);
            let part = if file.content_type == "message/rfc822" {
                part.transfer_encoding("8bit")
            } else {
                part
            };
            part.attachment(file.name)
        })
        .collect();
    if let Some((id, uid)) = message_ref(&f.forward_of) {
        let (_, entry, raw) = load(state, reader, id, uid).await?;
        let name = if entry.subject.trim().is_empty() {
            "message.eml".to_string()
        } else {
            format!("{}.eml", entry.subject.trim())
        };
        let encoding = if raw.iter().all(u8::is_ascii) {
            "7bit"
        } else {
            "8bit"
        };
        attachments.push(
            MimePart::new("message/rfc822", raw)
                .attachment(name)
                .transfer_encoding(encoding),
        );
    }
    let account = &reader.0.account;
    let mut builder = MessageBuilder::new()
        .from(if account.display_name.is_empty() {
            mail_builder::headers::address::Address::from(account.address.clone())
        } else {
            (account.display_name.clone(), account.address.clone()).into()
        })
        .subject(f.subject.trim().to_string())
        .message_id(format!("{}@{}", crate::mime::unique_id(), state.hostname))
        .header(
            "User-Agent",
            mail_builder::headers::raw::Raw::new("Mailroom webmail"),
        );
    let body = match c.html {
        Some(html) => MimePart::new(
            "multipart/alternative",
            vec![
                MimePart::new("text/plain", c.text),
                MimePart::new("text/html", html),
            ],
        ),
        None => MimePart::new("text/plain", c.text),
    };
    builder = if attachments.is_empty() {
        builder.body(body)
    } else {
        let mut parts = vec![body];
        parts.extend(attachments);
        builder.body(MimePart::new("multipart/mixed", parts))
    };
    if !c.to.is_empty() {
        builder = builder.to(address_list(c.to));
    }
    if !c.cc.is_empty() {
        builder = builder.cc(address_list(c.cc));
    }
    if draft && !c.bcc.is_empty() {
        // Kept in the draft so it is not lost; never written into a sent message.
        builder = builder.bcc(address_list(c.bcc));
    }
    if draft && message_ref(&f.reply_of).is_some() {
        builder = builder.header(
            drafts::REPLY_OF,
            mail_builder::headers::raw::Raw::new(f.reply_of.trim().to_string()),
        );
    }
    if let Some(id) = c.in_reply_to.into_iter().next() {
        builder = builder.in_reply_to(id);
        if !c.references.is_empty() {
            builder = builder.references(c.references);
        }
    }
    builder
        .write_to_vec()
        .map_err(|e| WebError::Internal(e.to_string()))
}

/// The form as it was sent, to show it again.
fn page_of(state: &WebState, f: &Sent) -> ComposePage {
    ComposePage {
        to: f.to.clone(),
        cc: f.cc.clone(),
        bcc: f.bcc.clone(),
        subject: f.subject.clone(),
        body: f.body.clone(),
        body_html: if f.mode == "rich" {
            f.body_html.clone()
        } else {
            text_to_html(&f.body)
        },
        mode: if f.mode == "rich" { "rich" } else { "plain" }.into(),
        in_reply_to: f.in_reply_to.clone(),
        references: f.references.clone(),
        reply_of: f.reply_of.clone(),
        forward_of: f.forward_of.clone(),
        draft: f.draft.clone(),
        max_size: format_size(state.max_message_size),
        ..ComposePage::default()
    }
}

/// Saves the form as a draft, keeping whatever parses of its fields: the autosave, and a form
/// with an error that has files to keep. Returns the new reference and its attachments.
async fn save_leniently(
    state: &WebState,
    reader: &Reader,
    f: &Sent,
    files: Vec<File>,
) -> Result<(String, Vec<Kept>), NotSaved> {
    let (text, html) = bodies(f).await.unwrap_or_else(|_| (f.body.clone(), None));
    let ids = |field: &str| -> Vec<String> {
        field
            .split_whitespace()
            .filter_map(|i| crate::mime::message_id(i).map(|id| id.to_string()))
            .take(MAX_REFERENCES)
            .collect()
    };
    let content = Content {
        to: named_addresses(&f.to),
        cc: named_addresses(&f.cc),
        bcc: named_addresses(&f.bcc),
        in_reply_to: ids(&f.in_reply_to).into_iter().take(1).collect(),
        references: ids(&f.references),
        text,
        html,
        files,
    };
    let message = build(state, reader, f, content, true).await?;
    if message.len() as u64 > state.max_message_size {
        return Err(NotSaved::Web(WebError::TooLarge(format!(
            "The draft with its attachments is {}; this server accepts up to {}.",
            format_size(message.len() as u64),
            format_size(state.max_message_size)
        ))));
    }
    let reference = drafts::save(state, reader, &message, &f.draft).await?;
    let kept = drafts::attachments_of(message).await?;
    Ok((reference, kept))
}

pub async fn send(
    reader: Reader,
    State(state): State<WebState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let mut f = read_form(multipart, state.max_message_size).await?;
    reader.check(&headers, &f.csrf)?;
    let mut page = page_of(&state, &f);
    // The draft's attachments still ticked, then the new uploads.
    let mut files = drafts::kept_files(&state, &reader, &f.draft, &f.keep).await?;
    files.append(&mut f.files);
    let draft = f.action == "draft";
    let to = parse_addresses(&f.to).map_err(|e| page.to_error = Some(e));
    let cc = parse_addresses(&f.cc).map_err(|e| page.cc_error = Some(e));
    let bcc = parse_addresses(&f.bcc).map_err(|e| page.bcc_error = Some(e));
    let (Ok(to), Ok(cc), Ok(bcc)) = (to, cc, bcc) else {
        return again(&state, &reader, page, &f, files).await;
    };
    // Both come from hidden fields the form filled with checked identifiers: anything else
    // was not written by this form.
    let threading = message_ids(&f.in_reply_to, "In-Reply-To").and_then(|in_reply_to| {
        match in_reply_to.as_slice() {
            [] | [_] => Ok((in_reply_to, message_ids(&f.references, "References")?)),
            _ => Err("In-Reply-To: one message identifier only.".to_string()),
        }
    });
    let (in_reply_to, references) = match threading {
        Ok(t) => t,
        Err(e) => {
            page.error = Some(e);
            return again(&state, &reader, page, &f, files).await;
        }
    };
    let all: Vec<String> = to.iter().chain(&cc).chain(&bcc).cloned().collect();
    if !draft && all.is_empty() {
        page.to_error = Some("Who is it for? Give at least one address.".into());
        return again(&state, &reader, page, &f, files).await;
    }
    if all.len() > MAX_RECIPIENTS {
        page.to_error = Some(format!("At most {MAX_RECIPIENTS} recipients in all."));
        return again(&state, &reader, page, &f, files).await;
    }
    let (text, html) = match bodies(&f).await {
        Ok(b) => b,
        Err(e) => {
            page.error = Some(e);
            return again(&state, &reader, page, &f, files).await;
        }
    };
    // A copy of the files, for the form again if the recipients turn out wrong below.
    let kept_copy: Vec<File> = files
        .iter()
        .map(|x| File {
            name: x.name.clone(),
            content_type: x.content_type.clone(),
            bytes: x.bytes.clone(),
        })
        .collect();
    let content = Content {
        to: named_addresses(&f.to),
        cc: named_addresses(&f.cc),
        bcc: named_addresses(&f.bcc),
        in_reply_to,
        references,
        text,
        html,
        files,
    };
    let message = build(&state, &reader, &f, content, draft).await?;
    if message.len() as u64 > state.max_message_size {
        page.attach_error = Some(format!(
            "The message with its attachments is {}; this server accepts up to {}.",
            format_size(message.len() as u64),
            format_size(state.max_message_size)
        ));
        // Too large to keep as a draft either.
        page.files_lost = true;
        page.draft = f.draft.clone();
        return again(&state, &reader, page, &f, Vec::new()).await;
    }

    if draft {
        return match drafts::save(&state, &reader, &message, &f.draft).await {
            Ok(reference) => {
                let drafts_box = reference.split(':').next().unwrap_or("");
                Ok(Redirect::to(&format!("/mail/box/{drafts_box}?done=draft")).into_response())
            }
            Err(NotSaved::Full) => {
                page.error = Some("Your mailbox is full: the draft could not be saved.".into());
                page.files_lost = true;
                again(&state, &reader, page, &f, Vec::new()).await
            }
            Err(NotSaved::Web(e)) => Err(e),
        };
    }

    let mut recipients: Vec<Recipient> = Vec::new();
    for (field, list) in [("to", &to), ("cc", &cc), ("bcc", &bcc)] {
        for address in list.iter() {
            match state.submission.check_recipient(address).await {
                Ok(r) => recipients.push(r),
                Err(SubmitError::BadRecipient(e)) => {
                    let slot = match field {
                        "to" => &mut page.to_error,
                        "cc" => &mut page.cc_error,
                        _ => &mut page.bcc_error,
                    };
                    *slot = Some(e);
                    return again(&state, &reader, page, &f, kept_copy).await;
                }
                Err(e) => return Err(WebError::Internal(e.to_string())),
            }
        }
    }
    let account = &reader.0.account;
    let sent = reader.special(&state, "\\Sent").await?;
    let trace = format!(
        "Received: from webmail by {} with HTTP (Mailroom webmail) for {}; {}\r\n",
        state.hostname,
        account.address,
        crate::mime::rfc5322_now()
    );
    match state
        .submission
        .submit_keeping(
            account,
            &account.address,
            &recipients,
            trace.as_bytes(),
            &message,
            sent.as_ref(),
        )
        .await
    {
        Ok(_) => {}
        Err(SubmitError::Store(crate::store::StoreError::QuotaExceeded { address, .. })) => {
            page.error = Some(format!(
                "Not sent: the mailbox of {address} is full, so nothing was delivered."
            ));
            return again(&state, &reader, page, &f, kept_copy).await;
        }
        Err(e @ (SubmitError::NotYourAddress(_) | SubmitError::Malformed(_))) => {
            page.error = Some(e.to_string());
            return again(&state, &reader, page, &f, kept_copy).await;
        }
        Err(SubmitError::Store(crate::store::StoreError::Unavailable(why))) => {
            return Err(WebError::Unavailable(why));
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    }
    // Sent: what follows must not turn a sent message into an error page (a retry would send
    // it twice), so failures are logged.
    if let Err(e) = drafts::remove(&state, &reader, &f.draft).await {
        tracing::warn!(error = %e, "the sent draft could not be removed from Drafts");
    }
    if let Some((id, uid)) = message_ref(&f.reply_of)
        && let Ok(replied) = reader.mailbox(&state, id).await
        && let Err(e) = state
            .store
            .set_flags(&replied, &[uid], FlagOp::Add, Flags::ANSWERED, &[], None)
            .await
    {
        tracing::warn!(error = %e, "the answered message could not be flagged");
    }
    let people: Vec<(String, String)> = [&f.to, &f.cc, &f.bcc]
        .into_iter()
        .flat_map(|field| named_addresses(field))
        .collect();
    if let Err(e) = state
        .store
        .collect_contacts(reader.account_id(), &people)
        .await
    {
        tracing::warn!(error = %e, "the recipients could not be added to the contacts");
    }
    let back = match sent {
        Some(sent) => format!("/mail/box/{}?done=sent", sent.id()),
        None => "/mail?done=sent".into(),
    };
    Ok(Redirect::to(&back).into_response())
}

/// Saves the form as a draft while it is being written (`static/compose.js`, a few seconds
/// after the last change and when the page is left). Nothing is checked but the session and
/// CSRF: a half-typed address is normal here. Answers JSON: the new draft's reference, when
/// (unix time), and its attachments, so the form follows the new version.
pub async fn autosave(
    reader: Reader,
    State(state): State<WebState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let mut f = read_form(multipart, state.max_message_size).await?;
    reader.check(&headers, &f.csrf)?;
    let mut files = drafts::kept_files(&state, &reader, &f.draft, &f.keep).await?;
    files.append(&mut f.files);
    let json = |status: StatusCode, v: serde_json::Value| (status, axum::Json(v)).into_response();
    Ok(match save_leniently(&state, &reader, &f, files).await {
        Ok((draft, attachments)) => json(
            StatusCode::OK,
            serde_json::json!({
                "draft": draft,
                "saved": crate::store::now(),
                "attachments": attachments,
            }),
        ),
        Err(NotSaved::Full) => json(
            StatusCode::INSUFFICIENT_STORAGE,
            serde_json::json!({ "error": "Your mailbox is full: the draft could not be saved." }),
        ),
        Err(NotSaved::Web(WebError::TooLarge(why))) => json(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({ "error": why }),
        ),
        Err(NotSaved::Web(e)) => return Err(e),
    })
}

/// The form again, with the errors next to their fields. Files that came with it (uploaded,
/// kept from the draft, a forwarded message) are saved as a draft first, so the form lists
/// them as attached and they go along with the next Send.
async fn again(
    state: &WebState,
    reader: &Reader,
    mut page: ComposePage,
    f: &Sent,
    files: Vec<File>,
) -> Result<Response, WebError> {
    if !files.is_empty() || message_ref(&f.forward_of).is_some() {
        match save_leniently(state, reader, f, files).await {
            Ok((reference, kept)) => {
                page.draft = reference;
                page.kept = kept;
                // The forwarded message is now one of the draft's attachments.
                page.forward_of.clear();
            }
            Err(NotSaved::Full | NotSaved::Web(WebError::TooLarge(_))) => page.files_lost = true,
            Err(NotSaved::Web(e)) => return Err(e),
        }
    }
    page.chrome = Chrome::new(state, reader, None, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
