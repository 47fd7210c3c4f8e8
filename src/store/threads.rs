//! What threading needs beyond the search rows: the header blocks, for the References field
//! (IMAP THREAD reads them), and for the webmail's conversations the rows of a whole folder
//! with the references kept per body at delivery (`blobs.thread_refs`, migration 0023), so a
//! folder is threaded without reading its bodies.

use super::mailboxes::Mailbox;
use super::{Flags, Result, Store, StoreError};

/// Messages of one folder that the conversation view threads at most: the newest ones.
/// A 10,000-message INBOX is read whole; past this, older mail is left out of the view.
pub const MAX_THREADED: u32 = 50_000;

/// What the webmail needs of one message to thread a folder and list its conversations.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ThreadRow {
    pub uid: u32,
    #[sqlx(try_from = "u8")]
    pub flags: Flags,
    pub internal_date: i64,
    pub header_date: Option<i64>,
    pub subject: String,
    pub from_display: String,
    pub to_display: String,
    /// Without angle brackets, as delivery keeps it.
    pub message_id: Option<String>,
    /// `thread::stored_refs` of the message ('' when it has none).
    pub thread_refs: String,
}

/// Bodies given their `thread_refs` per transaction when filling them in.
const FILL_BATCH: i64 = 500;

/// Computes `thread_refs` for the bodies stored before migration 0023, a batch per
/// transaction. Runs at every open; with nothing left it is one lookup in an empty index
/// (the partial index `blobs_thread_refs_pending`, which the planner picks by itself; not
/// named with `INDEXED BY`, so a later migration dropping it cannot stop the server starting).
pub(super) async fn fill_thread_refs(writer: &sqlx::SqlitePool) -> Result<()> {
    let mut done = 0usize;
    loop {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, CASE WHEN instr(data, X'0D0A0D0A') > 0
                             THEN substr(data, 1, min(instr(data, X'0D0A0D0A') + 1, 65536))
                             ELSE substr(data, 1, 65536) END
             FROM blobs WHERE thread_refs IS NULL LIMIT ?",
        )
        .bind(FILL_BATCH)
        .fetch_all(writer)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = writer.begin().await?;
        for (id, block) in &rows {
            sqlx::query("UPDATE blobs SET thread_refs = ? WHERE id = ?")
                .bind(crate::thread::stored_refs(block))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        done += rows.len();
    }
    if done > 0 {
        tracing::info!("kept the references of {done} stored messages for threading");
    }
    Ok(())
}

impl Store {
    /// The newest [`MAX_THREADED`] messages of a mailbox for threading, by ascending UID (the
    /// mailbox order threading breaks ties by). One indexed read of the message rows and
    /// their bodies' parsed columns; no body is read.
    pub async fn thread_rows(&self, mailbox: &Mailbox) -> Result<Vec<ThreadRow>> {
        let mut rows: Vec<ThreadRow> = sqlx::query_as(
            "SELECT m.uid, m.flags, m.internal_date, b.header_date, b.subject, b.from_display,
                    b.to_display, b.message_id, coalesce(b.thread_refs, '') AS thread_refs
             FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? ORDER BY m.uid DESC LIMIT ?",
        )
        .bind(mailbox.id())
        .bind(MAX_THREADED)
        .fetch_all(&self.reader)
        .await?;
        rows.reverse();
        Ok(rows)
    }

    /// The header block (up to the blank line, at most 64 KiB) of every message of a mailbox
    /// (or only of the UIDs `only` names, when given) with its UID, by ascending UID, one at a
    /// time, so a caller that keeps one field holds no more than that. SQLite still reads
    /// each body it cuts a block from.
    pub fn header_blocks<'a>(
        &'a self,
        mailbox: &Mailbox,
        only: Option<&'a [u32]>,
    ) -> futures::stream::BoxStream<'a, Result<(u32, Vec<u8>)>> {
        use futures::TryStreamExt;
        let mailbox_id = mailbox.id();
        // A long UID list costs more as SQL than the rows it saves (as in `search_rows`).
        let only = only.filter(|uids| uids.len() <= 2000);
        let sql = format!(
            "SELECT m.uid, CASE WHEN instr(b.data, X'0D0A0D0A') > 0
                                THEN substr(b.data, 1, min(instr(b.data, X'0D0A0D0A') + 1, 65536))
                                ELSE substr(b.data, 1, 65536) END
             FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? {} ORDER BY m.uid",
            match only {
                // Placeholders only: the UIDs are bound below.
                Some(uids) => format!("AND m.uid IN ({})", vec!["?"; uids.len()].join(", ")),
                None => String::new(),
            }
        );
        let mut query =
            sqlx::query_as::<_, (u32, Vec<u8>)>(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
        for uid in only.unwrap_or_default() {
            query = query.bind(*uid);
        }
        Box::pin(query.fetch(&self.reader).map_err(StoreError::from))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Delivery, Store, Target};

    #[tokio::test]
    async fn references_are_kept_at_delivery_and_filled_for_older_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        store.add_domain("x.org").await.unwrap();
        let account = store
            .create_account(crate::store::NewAccount {
                address: "a@x.org",
                password_hash: "x",
                quota_bytes: 0,
                is_admin: false,
            })
            .await
            .unwrap()
            .id;
        let raw = b"Subject: Re: x\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\n\r\nReferences: <no@x>\r\n";
        store
            .deliver(
                Delivery {
                    raw,
                    internal_date: None,
                },
                &[Target::inbox(account)],
            )
            .await
            .unwrap();
        let kept = || async {
            sqlx::query_scalar::<_, Option<String>>("SELECT thread_refs FROM blobs")
                .fetch_one(&store.writer)
                .await
                .unwrap()
        };
        assert_eq!(kept().await.as_deref(), Some("<1@x>"));
        // A body stored before migration 0023.
        sqlx::query("UPDATE blobs SET thread_refs = NULL")
            .execute(&store.writer)
            .await
            .unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as("EXPLAIN QUERY PLAN SELECT id FROM blobs WHERE thread_refs IS NULL")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.3.contains("blobs_thread_refs_pending")),
            "{plan:?}"
        );
        super::fill_thread_refs(&store.writer).await.unwrap();
        assert_eq!(kept().await.as_deref(), Some("<1@x>"));
        let inbox = store.mailbox(account, "INBOX").await.unwrap().unwrap();
        let rows = store.thread_rows(&inbox).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].thread_refs, "<1@x>");
        assert_eq!(rows[0].message_id.as_deref(), Some("2@x"));
    }
}
