//! Copying and moving messages between two mailboxes of one account (IMAP COPY and MOVE).
//!
//! A copy is a new message row pointing at the same body: the blob gains a reference, the
//! account's usage grows by the message's size and is checked against the quota first (the
//! quota counts what the user sees, not the bytes deduplicated on disk). A move does the copy
//! and the expunge in one transaction, so no other session ever sees the message twice or not
//! at all, and usage does not change.

use sqlx::QueryBuilder;

use super::flags::uid_ranges;
use super::mailboxes::Mailbox;
use super::{Change, Result, Store, StoreError};

/// One message carried over: its UID in the source and in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub source_uid: u32,
    pub uid: u32,
}

/// The outcome of [`Store::copy_messages`] and [`Store::move_messages`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// The destination's UIDVALIDITY (for UIDPLUS COPYUID).
    pub uidvalidity: u32,
    /// By ascending source UID.
    pub copied: Vec<Copied>,
}

type Row = (u32, u8, String, i64, i64, i64);

impl Store {
    /// Copies the messages with these UIDs (ascending) from `source` to `target`.
    pub async fn copy_messages(
        &self,
        source: &Mailbox,
        uids: &[u32],
        target: &Mailbox,
    ) -> Result<Transfer> {
        self.transfer(source.id(), uids, target.id(), false).await
    }

    /// Moves the messages with these UIDs (ascending) from `source` to `target`.
    pub async fn move_messages(
        &self,
        source: &Mailbox,
        uids: &[u32],
        target: &Mailbox,
    ) -> Result<Transfer> {
        self.transfer(source.id(), uids, target.id(), true).await
    }

    async fn transfer(
        &self,
        source: i64,
        uids: &[u32],
        target: i64,
        remove: bool,
    ) -> Result<Transfer> {
        let mut tx = self.write().await?;
        let boxes: Vec<(i64, i64, u32)> =
            sqlx::query_as("SELECT id, account_id, uidvalidity FROM mailboxes WHERE id IN (?, ?)")
                .bind(source)
                .bind(target)
                .fetch_all(&mut *tx)
                .await?;
        let find = |id: i64| boxes.iter().find(|b| b.0 == id).copied();
        let (Some(src), Some(dst)) = (find(source), find(target)) else {
            return Err(StoreError::NotFound("mailbox".into()));
        };
        if src.1 != dst.1 {
            return Err(StoreError::Invalid(
                "messages can only be copied within one account".into(),
            ));
        }
        let account_id = src.1;
        let mut rows: Vec<Row> = Vec::new();
        for (lo, hi) in uid_ranges(uids) {
            let found: Vec<Row> = sqlx::query_as(
                "SELECT uid, flags, keywords, internal_date, size, blob_id FROM messages
                 WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
            )
            .bind(source)
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *tx)
            .await?;
            rows.extend(
                found
                    .into_iter()
                    .filter(|r| uids.binary_search(&r.0).is_ok()),
            );
        }
        let mut transfer = Transfer {
            uidvalidity: dst.2,
            copied: Vec::new(),
        };
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(transfer);
        }
        let bytes: i64 = rows.iter().map(|r| r.4).sum();
        let count = rows.len() as i64;
        if !remove {
            let (address, quota, used): (String, i64, i64) = sqlx::query_as(
                "SELECT address, quota_bytes, used_bytes FROM accounts WHERE id = ?",
            )
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
            if !super::quota::fits(used, bytes, quota) {
                return Err(StoreError::QuotaExceeded {
                    address,
                    needed: (used + bytes) as u64,
                    quota: quota as u64,
                });
            }
        }
        let (first_uid, modseq): (u32, i64) = sqlx::query_as(
            "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1
             WHERE id = ? RETURNING uidnext - ?, highestmodseq",
        )
        .bind(count)
        .bind(target)
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        for (i, (uid, flags, keywords, date, size, blob_id)) in rows.iter().enumerate() {
            let new_uid = first_uid
                .checked_add(i as u32)
                .ok_or_else(|| StoreError::Invalid("the mailbox ran out of UIDs".into()))?;
            sqlx::query(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(target)
            .bind(new_uid)
            .bind(modseq)
            .bind(flags)
            .bind(keywords)
            .bind(date)
            .bind(size)
            .bind(blob_id)
            .execute(&mut *tx)
            .await?;
            transfer.copied.push(Copied {
                source_uid: *uid,
                uid: new_uid,
            });
        }
        let mut expunge_modseq = 0i64;
        if remove {
            expunge_modseq = sqlx::query_scalar(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
            )
            .bind(source)
            .fetch_one(&mut *tx)
            .await?;
            for chunk in rows.chunks(500) {
                let mut q: QueryBuilder<sqlx::Sqlite> =
                    QueryBuilder::new("DELETE FROM messages WHERE mailbox_id = ");
                q.push_bind(source).push(" AND uid IN (");
                let mut list = q.separated(", ");
                for r in chunk {
                    list.push_bind(r.0);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            for r in &rows {
                sqlx::query(
                    "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                )
                .bind(source)
                .bind(r.0)
                .bind(expunge_modseq)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            let mut refs: Vec<(i64, i64)> = Vec::new();
            for r in &rows {
                match refs.iter_mut().find(|(b, _)| *b == r.5) {
                    Some(x) => x.1 += 1,
                    None => refs.push((r.5, 1)),
                }
            }
            for (blob_id, n) in refs {
                sqlx::query("UPDATE blobs SET refcount = refcount + ? WHERE id = ?")
                    .bind(n)
                    .bind(blob_id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE id = ?",
            )
            .bind(bytes)
            .bind(count)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        for c in &transfer.copied {
            self.bus.announce(Change::Appended {
                account_id,
                mailbox_id: target,
                uid: c.uid,
                modseq: modseq as u64,
            });
        }
        if remove {
            self.bus.announce(Change::Expunged {
                account_id,
                mailbox_id: source,
                uids: transfer.copied.iter().map(|c| c.source_uid).collect(),
                modseq: expunge_modseq as u64,
            });
        }
        Ok(transfer)
    }
}
