//! Undo for delete and move: after the webmail moves messages (Delete moves to Trash), the
//! notice offers "Undo" for [`SHOWN_SECONDS`]; undoing moves them back.
//!
//! What was moved travels in a token in the redirect's address (`undo=`), not in server
//! memory: the account, the folder they came from, the folder they are in, the UIDs they got
//! there and when, signed with HMAC-SHA256 under a key made at start (a restart forgets the
//! pending undos, which last seconds anyway). The signature is what stops an old or edited
//! token: the server refuses one older than [`MAX_AGE`]. Both folders are looked up again
//! through the reader's own mailboxes before anything moves, and a token names its account,
//! so another user's token undoes nothing.

use std::sync::OnceLock;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use serde::Deserialize;

use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::Reader;

/// How long the notice shows the Undo button (`mail.js` hides it then).
pub const SHOWN_SECONDS: i64 = 10;
/// How old a token the server still honours: the button's time plus slack for a slow
/// network or a click on the last second.
pub const MAX_AGE: i64 = 60;
/// Messages a token carries at most: beyond, no Undo is offered (the address would grow
/// past what browsers and proxies accept).
pub const MAX_UIDS: usize = 500;

/// What an undo moves back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub account_id: i64,
    /// Where the messages were.
    pub from: i64,
    /// Where they are now.
    pub to: i64,
    /// Their UIDs in `to`.
    pub uids: Vec<u32>,
    /// Unix seconds when they moved.
    pub at: i64,
}

fn key() -> &'static ring::hmac::Key {
    static KEY: OnceLock<ring::hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let secret: [u8; 32] = rand::random();
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret)
    })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl Pending {
    /// The signed token, or `None` when there are too many messages to carry.
    pub fn token(&self) -> Option<String> {
        if self.uids.is_empty() || self.uids.len() > MAX_UIDS {
            return None;
        }
        let uids: Vec<String> = self.uids.iter().map(u32::to_string).collect();
        let text = format!(
            "{}.{}.{}.{}.{}",
            self.account_id,
            self.from,
            self.to,
            self.at,
            uids.join(",")
        );
        let tag = ring::hmac::sign(key(), text.as_bytes());
        Some(format!(
            "{}.{}",
            b64().encode(text.as_bytes()),
            b64().encode(tag.as_ref())
        ))
    }

    /// The token's content if its signature is ours (its age is checked by the caller).
    pub fn from_token(token: &str) -> Option<Pending> {
        // A token is at most ~6 KiB (MAX_UIDS UIDs); anything longer is not ours.
        if token.len() > 8192 {
            return None;
        }
        let (text, tag) = token.split_once('.')?;
        let text = b64().decode(text).ok()?;
        let tag = b64().decode(tag).ok()?;
        ring::hmac::verify(key(), &text, &tag).ok()?;
        let text = String::from_utf8(text).ok()?;
        let mut fields = text.splitn(5, '.');
        let account_id = fields.next()?.parse().ok()?;
        let from = fields.next()?.parse().ok()?;
        let to = fields.next()?.parse().ok()?;
        let at = fields.next()?.parse().ok()?;
        let uids = fields
            .next()?
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<u32>, _>>()
            .ok()?;
        Some(Pending {
            account_id,
            from,
            to,
            uids,
            at,
        })
    }
}

#[derive(Deserialize)]
pub struct UndoForm {
    #[serde(default)]
    token: String,
}

/// `POST /mail/undo`: moves the messages of a fresh token back where they were, then shows
/// that folder.
pub async fn undo(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, UndoForm>,
) -> Result<Response, WebError> {
    let expired = || {
        WebError::BadRequest("Too late to undo: move the messages back from their folder.".into())
    };
    let pending = Pending::from_token(&f.token).ok_or_else(expired)?;
    let age = crate::store::now() - pending.at;
    if pending.account_id != reader.account_id() || !(0..=MAX_AGE).contains(&age) {
        return Err(expired());
    }
    // Both folders must still be the reader's (one may have been deleted meanwhile).
    let from = reader.mailbox(&state, pending.from).await?;
    let to = reader.mailbox(&state, pending.to).await?;
    let mut uids = pending.uids;
    uids.sort_unstable();
    uids.dedup();
    let transfer = state.store.move_messages(&to, &uids, &from).await?;
    let back = transfer.copied.iter().map(|c| c.uid).collect();
    // Moving back teaches the spam filter like any move (out of Junk: not spam).
    state.learner.after_transfer(&to, &from, back, true);
    Ok(Redirect::to(&format!("/mail/box/{}?done=undone", from.id())).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_tamper() {
        let p = Pending {
            account_id: 7,
            from: 3,
            to: 9,
            uids: vec![4, 5, 6],
            at: 1_700_000_000,
        };
        let t = p.token().unwrap();
        assert_eq!(Pending::from_token(&t), Some(p.clone()));
        // Another folder or UID list with the old signature is refused.
        let (_, tag) = t.split_once('.').unwrap();
        let forged = format!("{}.{tag}", b64().encode(b"7.3.1.1700000000.4,5,6"));
        assert_eq!(Pending::from_token(&forged), None);
        assert_eq!(Pending::from_token("garbage"), None);
        assert_eq!(Pending::from_token(""), None);
        let many = Pending {
            uids: (0..=MAX_UIDS as u32).collect(),
            ..p
        };
        assert_eq!(many.token(), None);
    }
}
