//! Drafts for compose: reopening one in the editor (recipients, Bcc included, subject, text or
//! HTML, threading, attachments), saving a new version (appended first, the old one expunged
//! after, so a failure never loses both), and the draft's attachments carried into the next
//! version or the sent message without uploading them again.
//!
//! A draft is referred to as `box:uid` (the form's hidden `draft` field). Only a message in the
//! account's `\Drafts` mailbox is ever expunged as "the old version": a reference to any other
//! folder (a forged form, a stale tab) is read at most, never deleted.

use super::super::{WebError, WebState};
use super::Reader;
use super::compose::message_ref;
use super::read::{self, DraftParts, load};
use crate::config::format_size;
use crate::store::{Delivery, Flags, StoreError, Target};

/// The draft's header that remembers which message it answers (`box:uid`), so that sending
/// it marks that message \Answered. Written into drafts only, never into sent mail.
pub(super) const REPLY_OF: &str = "X-Mailroom-Reply-Of";

/// A file going into the message: uploaded with this form, or kept from the draft.
pub(super) struct File {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// An attachment of the draft, as the form lists it (with a box to untick).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Kept {
    pub index: usize,
    pub name: String,
    pub size: String,
}

/// A draft as the editor shows it.
#[derive(Default)]
pub(super) struct Draft {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub text: String,
    /// The HTML part, sanitized, when the draft was written in the rich editor.
    pub html: Option<String>,
    pub in_reply_to: String,
    pub references: String,
    pub reply_of: String,
    pub kept: Vec<Kept>,
}

/// An address header as the form's field: `Name <address>, …`, the bare address when the name
/// has a character that the field's own syntax uses (it is split at commas and semicolons).
fn field(a: Option<&mail_parser::Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .filter_map(|x| {
                let address = x.address()?;
                Some(match x.name() {
                    Some(n) if !n.trim().is_empty() && !n.contains([',', ';', '<', '>', '"']) => {
                        format!("{} <{address}>", n.trim())
                    }
                    _ => address.to_string(),
                })
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

/// The attachments as the form lists them, numbered as [`kept_files`] reads them.
fn kept(parts: &DraftParts) -> Vec<Kept> {
    parts
        .attachments
        .iter()
        .enumerate()
        .map(|(index, (name, _, size))| Kept {
            index,
            name: name.clone(),
            size: format_size(*size),
        })
        .collect()
}

/// The attachments of a message just built (to list them after saving it).
pub(super) async fn attachments_of(raw: Vec<u8>) -> Result<Vec<Kept>, WebError> {
    Ok(kept(&read::draft_parts_of(raw).await?))
}

/// Draft `reference` of this reader, as the editor shows it: the header fields through
/// mail-parser (the header only), the text, HTML and attachments through the stored structure
/// (`read::draft_parts`), as the reading view reads any message.
pub(super) async fn open(
    state: &WebState,
    reader: &Reader,
    reference: &str,
) -> Result<Draft, WebError> {
    let (id, uid) = message_ref(reference).ok_or(WebError::NotFound)?;
    let (mailbox, _, raw) = load(state, reader, id, uid).await?;
    let parts = read::draft_parts(state, &mailbox, uid).await?;
    let kept = kept(&parts);
    let DraftParts { text, html, .. } = parts;
    read::with_parsed(raw, move |m| {
        let ids = |v: &mail_parser::HeaderValue<'_>| -> String {
            v.as_text_list()
                .map(|l| l.iter().map(|r| r.to_string()).collect::<Vec<_>>())
                .or_else(|| v.as_text().map(|r| vec![r.to_string()]))
                .unwrap_or_default()
                .into_iter()
                .filter(|r| crate::mime::message_id(r).is_some())
                .collect::<Vec<_>>()
                .join(" ")
        };
        Ok(Draft {
            to: field(m.to()),
            cc: field(m.cc()),
            bcc: field(m.bcc()),
            subject: m.subject().unwrap_or("").to_string(),
            text,
            html,
            in_reply_to: ids(m.in_reply_to()),
            references: ids(m.references()),
            reply_of: m
                .header_raw(REPLY_OF)
                .map(str::trim)
                .filter(|r| message_ref(r).is_some())
                .unwrap_or("")
                .to_string(),
            kept,
        })
    })
    .await
}

/// The attachments numbered `keep` of draft `reference` (none when `keep` is empty or there is
/// no draft). A reference that is not this reader's message is not found.
pub(super) async fn kept_files(
    state: &WebState,
    reader: &Reader,
    reference: &str,
    keep: &[usize],
) -> Result<Vec<File>, WebError> {
    if keep.is_empty() {
        return Ok(Vec::new());
    }
    let Some((id, uid)) = message_ref(reference) else {
        return Ok(Vec::new());
    };
    let mailbox = reader.mailbox(state, id).await?;
    Ok(read::attachment_files(state, &mailbox, uid, keep.to_vec())
        .await?
        .into_iter()
        .map(|(name, content_type, bytes)| File {
            name,
            content_type,
            bytes,
        })
        .collect())
}

/// Why a draft was not saved.
pub(super) enum NotSaved {
    /// The account is over its quota.
    Full,
    Web(WebError),
}

impl From<WebError> for NotSaved {
    fn from(e: WebError) -> NotSaved {
        NotSaved::Web(e)
    }
}

/// Saves `message` as the new version of draft `old` (empty: a new draft): appended to Drafts
/// first, then the old version expunged. Returns the new reference.
pub(super) async fn save(
    state: &WebState,
    reader: &Reader,
    message: &[u8],
    old: &str,
) -> Result<String, NotSaved> {
    let drafts = reader
        .special(state, "\\Drafts")
        .await?
        .ok_or_else(|| WebError::BadRequest("There is no Drafts folder.".into()))?;
    let target = Target::mailbox(&drafts).with_flags(Flags::DRAFT.union(Flags::SEEN), Vec::new());
    let delivered = match state
        .store
        .deliver_atomic(
            Delivery {
                raw: &crate::submission::complete_headers(message, &state.hostname),
                internal_date: None,
            },
            &[target],
        )
        .await
    {
        Ok(d) => d,
        Err(StoreError::QuotaExceeded { .. }) => return Err(NotSaved::Full),
        Err(e) => return Err(NotSaved::Web(e.into())),
    };
    let uid = delivered
        .first()
        .map(|d| d.uid)
        .ok_or_else(|| WebError::Internal("the draft was not stored".into()))?;
    remove(state, reader, old).await?;
    Ok(format!("{}:{uid}", drafts.id()))
}

/// Expunges draft `reference` if it is a message of this reader's Drafts folder.
pub(super) async fn remove(
    state: &WebState,
    reader: &Reader,
    reference: &str,
) -> Result<(), WebError> {
    let Some((id, uid)) = message_ref(reference) else {
        return Ok(());
    };
    let Ok(mailbox) = reader.mailbox(state, id).await else {
        return Ok(());
    };
    if mailbox.special_use.as_deref() == Some("\\Drafts") {
        state.store.expunge(&mailbox, &[uid]).await?;
    }
    Ok(())
}
