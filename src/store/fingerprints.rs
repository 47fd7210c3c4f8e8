//! What `mailroom import` compares to recognise a message it already stored, so that running
//! an import again adds only what is new.
//!
//! A message is identified by its Message-ID, its internal date and its size, as the stored
//! copy has them. A message without a Message-ID is identified by its content hash instead
//! (with the same date and size), so two different messages that both lack one are not taken
//! for each other.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::mailboxes::Mailbox;
use super::{Result, Store};

/// What makes a stored message "the same" as one about to be imported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    identity: Identity,
    internal_date: i64,
    size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    MessageId(String),
    /// SHA-256 of the raw message, hex, as the blobs table keeps it.
    Content(String),
}

impl Fingerprint {
    /// The fingerprint `raw` would have once stored with this internal date.
    pub fn of(raw: &[u8], internal_date: i64) -> Fingerprint {
        let identity = match crate::mime::identity(raw).0 {
            Some(id) => Identity::MessageId(id),
            None => Identity::Content(super::deliver::hex(&Sha256::digest(raw))),
        };
        Fingerprint {
            identity,
            internal_date,
            size: raw.len() as u64,
        }
    }
}

impl Store {
    /// The fingerprints of every message in a mailbox, read in one pass: an import checks each
    /// message against this set instead of querying once per message.
    pub async fn fingerprints(&self, mailbox: &Mailbox) -> Result<HashSet<Fingerprint>> {
        let mailbox_id = mailbox.id();
        let rows: Vec<(Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT b.message_id, b.hash, m.internal_date, m.size
             FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?",
        )
        .bind(mailbox_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, hash, internal_date, size)| Fingerprint {
                identity: match message_id {
                    Some(id) => Identity::MessageId(id),
                    None => Identity::Content(hash),
                },
                internal_date,
                size: u64::try_from(size).unwrap_or(0),
            })
            .collect())
    }
}
