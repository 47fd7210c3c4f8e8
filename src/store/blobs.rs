//! Message bodies, stored once per content (SHA-256) with a reference count, together with what
//! was parsed from them at delivery and their full-text index row. Only the delivery and
//! expunge paths touch references, inside their own transactions, so a count never drifts from
//! the rows that hold it.

use sqlx::SqliteConnection;

use super::{Result, Store, StoreError};
use crate::mime::Analysis;

/// Adds `refs` references to the blob with `hash`, inserting it (with its parsed form and its
/// search text) if it is new. Returns its id.
pub(super) async fn acquire(
    conn: &mut SqliteConnection,
    hash: &str,
    raw: &[u8],
    analysis: &Analysis,
    refs: i64,
) -> Result<i64> {
    let existing: Option<i64> =
        sqlx::query_scalar("UPDATE blobs SET refcount = refcount + ? WHERE hash = ? RETURNING id")
            .bind(refs)
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let envelope = serde_json::to_string(&analysis.envelope).map_err(corrupt)?;
    let structure = serde_json::to_string(&analysis.body).map_err(corrupt)?;
    let id = sqlx::query(
        "INSERT INTO blobs (hash, refcount, size, data, envelope, body_structure, subject,
                            from_display, to_display, cc_display, header_date, message_id,
                            has_attachment, snippet)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(hash)
    .bind(refs)
    .bind(raw.len() as i64)
    .bind(raw)
    .bind(envelope)
    .bind(structure)
    .bind(&analysis.subject)
    .bind(&analysis.from)
    .bind(&analysis.to)
    .bind(&analysis.cc)
    .bind(analysis.date)
    .bind(&analysis.message_id)
    .bind(analysis.has_attachment)
    .bind(&analysis.snippet)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    sqlx::query("INSERT INTO blob_text (rowid, subject, addresses, body) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(&analysis.search.subject)
        .bind(&analysis.search.addresses)
        .bind(&analysis.search.body)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// Drops `refs` references; the blob and its index row go when none are left.
pub(super) async fn release(conn: &mut SqliteConnection, blob_id: i64, refs: i64) -> Result<()> {
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE blobs SET refcount = refcount - ? WHERE id = ? RETURNING refcount",
    )
    .bind(refs)
    .bind(blob_id)
    .fetch_optional(&mut *conn)
    .await?;
    match left {
        Some(n) if n <= 0 => {
            sqlx::query("DELETE FROM blob_text WHERE rowid = ?")
                .bind(blob_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM blobs WHERE id = ?")
                .bind(blob_id)
                .execute(&mut *conn)
                .await?;
        }
        Some(_) => {}
        None => return Err(StoreError::Corrupt(format!("blob {blob_id} is missing"))),
    }
    Ok(())
}

impl Store {
    /// The raw message stored as `blob_id`.
    pub async fn blob(&self, blob_id: i64) -> Result<Vec<u8>> {
        sqlx::query_scalar("SELECT data FROM blobs WHERE id = ?")
            .bind(blob_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message body {blob_id}")))
    }

    /// How many distinct bodies are stored, and their total size (for the dashboard and tests).
    pub async fn blob_stats(&self) -> Result<(i64, i64)> {
        Ok(
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs")
                .fetch_one(&self.reader)
                .await?,
        )
    }
}
