//! Compose, reply, reply-all and forward; Send through the one submission path (DKIM, local
//! delivery, queue) with a copy kept in Sent, or Save to Drafts.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mail_builder::MessageBuilder;
use mail_builder::mime::MimePart;
use serde::Deserialize;

use super::super::{WebError, WebState};
use super::read::{addresses, bare_addresses, load, with_parsed};
use super::{Chrome, Reader};
use crate::address::Address;
use crate::config::format_size;
use crate::store::{Delivery, FlagOp, Flags, Target};
use crate::submission::{Recipient, SubmitError};

/// Recipients of one message at most (To, Cc and Bcc together), as SMTP allows.
const MAX_RECIPIENTS: usize = 100;

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
}

#[derive(Deserialize)]
pub struct ComposeQuery {
    reply: Option<String>,
    all: Option<String>,
    forward: Option<String>,
    to: Option<String>,
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
    files: Vec<(String, String, Vec<u8>)>,
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
                f.files.push((file, content_type, bytes.to_vec()));
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

pub async fn send(
    reader: Reader,
    State(state): State<WebState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let f = read_form(multipart, state.max_message_size).await?;
    reader.check(&headers, &f.csrf)?;
    let mut page = ComposePage {
        to: f.to.clone(),
        cc: f.cc.clone(),
        bcc: f.bcc.clone(),
        subject: f.subject.clone(),
        body: f.body.clone(),
        in_reply_to: f.in_reply_to.clone(),
        references: f.references.clone(),
        reply_of: f.reply_of.clone(),
        forward_of: f.forward_of.clone(),
        max_size: format_size(state.max_message_size),
        ..ComposePage::default()
    };
    let draft = f.action == "draft";
    let to = parse_addresses(&f.to).map_err(|e| page.to_error = Some(e));
    let cc = parse_addresses(&f.cc).map_err(|e| page.cc_error = Some(e));
    let bcc = parse_addresses(&f.bcc).map_err(|e| page.bcc_error = Some(e));
    let (Ok(to), Ok(cc), Ok(bcc)) = (to, cc, bcc) else {
        return again(&state, &reader, page).await;
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
            return again(&state, &reader, page).await;
        }
    };
    let all: Vec<String> = to.iter().chain(&cc).chain(&bcc).cloned().collect();
    if !draft && all.is_empty() {
        page.to_error = Some("Who is it for? Give at least one address.".into());
        return again(&state, &reader, page).await;
    }
    if all.len() > MAX_RECIPIENTS {
        page.to_error = Some(format!("At most {MAX_RECIPIENTS} recipients in all."));
        return again(&state, &reader, page).await;
    }

    // The forwarded message goes along as an attachment, unencoded as RFC 2046 §5.2.1 wants
    // for message/rfc822 (it was accepted as mail, so its lines are fine as they are).
    let mut attachments: Vec<MimePart<'static>> = f
        .files
        .into_iter()
        .map(|(name, content_type, bytes)| MimePart::new(content_type, bytes).attachment(name))
        .collect();
    if let Some((id, uid)) = message_ref(&f.forward_of) {
        let (_, entry, raw) = load(&state, &reader, id, uid).await?;
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
    let text = f.body.replace("\r\n", "\n");
    builder = if attachments.is_empty() {
        builder.text_body(text)
    } else {
        let mut parts = vec![MimePart::new("text/plain", text)];
        parts.extend(attachments);
        builder.body(MimePart::new("multipart/mixed", parts))
    };
    if !to.is_empty() {
        builder = builder.to(to.clone());
    }
    if !cc.is_empty() {
        builder = builder.cc(cc.clone());
    }
    if draft && !bcc.is_empty() {
        // Kept in the draft so it is not lost; never written into a sent message.
        builder = builder.bcc(bcc.clone());
    }
    if let Some(id) = in_reply_to.into_iter().next() {
        builder = builder.in_reply_to(id);
        if !references.is_empty() {
            builder = builder.references(references);
        }
    }
    let message = builder
        .write_to_vec()
        .map_err(|e| WebError::Internal(e.to_string()))?;
    if message.len() as u64 > state.max_message_size {
        page.attach_error = Some(format!(
            "The message with its attachments is {}; this server accepts up to {}.",
            format_size(message.len() as u64),
            format_size(state.max_message_size)
        ));
        return again(&state, &reader, page).await;
    }

    if draft {
        let drafts = reader
            .special(&state, "\\Drafts")
            .await?
            .ok_or_else(|| WebError::BadRequest("There is no Drafts folder.".into()))?;
        let target =
            Target::mailbox(&drafts).with_flags(Flags::DRAFT.union(Flags::SEEN), Vec::new());
        match state
            .store
            .deliver_atomic(
                Delivery {
                    raw: &crate::submission::complete_headers(&message, &state.hostname),
                    internal_date: None,
                },
                &[target],
            )
            .await
        {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("/mail/box/{}?done=draft", drafts.id())).into_response(),
                );
            }
            Err(crate::store::StoreError::QuotaExceeded { .. }) => {
                page.error = Some("Your mailbox is full: the draft could not be saved.".into());
                return again(&state, &reader, page).await;
            }
            Err(e) => return Err(e.into()),
        }
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
                    return again(&state, &reader, page).await;
                }
                Err(e) => return Err(WebError::Internal(e.to_string())),
            }
        }
    }
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
            return again(&state, &reader, page).await;
        }
        Err(e @ (SubmitError::NotYourAddress(_) | SubmitError::Malformed(_))) => {
            page.error = Some(e.to_string());
            return again(&state, &reader, page).await;
        }
        Err(SubmitError::Store(crate::store::StoreError::Unavailable(why))) => {
            return Err(WebError::Unavailable(why));
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    }
    if let Some((id, uid)) = message_ref(&f.reply_of)
        && let Ok(replied) = reader.mailbox(&state, id).await
    {
        state
            .store
            .set_flags(&replied, &[uid], FlagOp::Add, Flags::ANSWERED, &[], None)
            .await?;
    }
    let back = match sent {
        Some(sent) => format!("/mail/box/{}?done=sent", sent.id()),
        None => "/mail?done=sent".into(),
    };
    Ok(Redirect::to(&back).into_response())
}

/// The form again, with the errors next to their fields. Uploaded files are not kept.
async fn again(
    state: &WebState,
    reader: &Reader,
    mut page: ComposePage,
) -> Result<Response, WebError> {
    page.chrome = Chrome::new(state, reader, None, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
