//! `\Recent` (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to be
//! told of it. UIDs only grow, so the claims of a mailbox are one number, `recent_uid`
//! (migration 0008): UIDs below it are taken, those from it on are recent to whoever claims
//! them next. A claim reads and raises it in one write transaction, so of two sessions
//! claiming at once exactly one gets each message.

use super::mailboxes::Mailbox;
use super::{Result, Store, StoreError};

impl Store {
    /// Claims `\Recent` for the UIDs below `upto` that nobody has claimed: returns the first
    /// of them, so the caller's recent messages are those in `first..upto` (none when
    /// `first >= upto`). `upto` must not be above the UIDNEXT of a snapshot the caller read
    /// (every UID below it is then committed). With `claim` false (EXAMINE, which must not
    /// take `\Recent` away, RFC 3501 §6.3.2) nothing is written: the first unclaimed UID is
    /// returned.
    pub async fn claim_recent(&self, mailbox: &Mailbox, upto: u32, claim: bool) -> Result<u32> {
        let mailbox_id = mailbox.id();
        let missing = || StoreError::NotFound(format!("mailbox {mailbox_id}"));
        // Most claims find nothing new: answered from a reader, without queueing on the writer.
        let first: u32 = sqlx::query_scalar("SELECT recent_uid FROM mailboxes WHERE id = ?")
            .bind(mailbox_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(missing)?;
        if !claim || first >= upto {
            return Ok(first);
        }
        let mut tx = self.write().await?;
        let first: u32 = sqlx::query_scalar("SELECT recent_uid FROM mailboxes WHERE id = ?")
            .bind(mailbox_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(missing)?;
        if first >= upto {
            tx.rollback().await?;
            return Ok(first);
        }
        sqlx::query("UPDATE mailboxes SET recent_uid = ? WHERE id = ?")
            .bind(upto)
            .bind(mailbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(first)
    }

    /// How many messages with a UID of at least `from` no session has claimed as `\Recent`
    /// (STATUS RECENT).
    pub async fn unclaimed_recent(&self, mailbox: &Mailbox, from: u32) -> Result<u32> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages
             WHERE mailbox_id = ?1
               AND uid >= max(?2, (SELECT recent_uid FROM mailboxes WHERE id = ?1))",
        )
        .bind(mailbox.id())
        .bind(from)
        .fetch_one(&self.reader)
        .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }
}
