//! The outbound queue: messages for other servers, with retry state per recipient.
//!
//! The worker claims due recipients by pushing their next attempt a lease ahead
//! ([`Store::queue_claim`]), so a crash mid-delivery only delays them; results are then written
//! back per recipient. A message row goes with its last recipient.

use sqlx::Row;

use super::{Result, Store, StoreError, now};

/// How long a claimed recipient stays invisible to other claims: longer than any one delivery
/// attempt can take (connect + replies are bounded by the queue timeout).
const LEASE_SECS: i64 = 3600;

/// One message in the queue, for `mailroom queue list` and the admin panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: i64,
    pub sender: String,
    pub size: i64,
    pub created_at: i64,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub id: i64,
    pub message_id: i64,
    pub address: String,
    pub domain: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

/// Length and age of the queue, for the dashboard and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub messages: i64,
    pub recipients: i64,
    pub oldest_created_at: Option<i64>,
}

/// One message for the queue, as [`Store::queue_add`] and a delivery with remote recipients
/// ([`Store::deliver_and_queue`]) write it.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    /// The envelope sender ('' for the null sender).
    pub sender: &'a str,
    /// Each `local@domain`; at least one.
    pub recipients: &'a [String],
    /// The message as it leaves.
    pub raw: &'a [u8],
}

impl Outbound<'_> {
    pub(super) fn check(&self) -> Result<()> {
        if self.recipients.is_empty() {
            return Err(StoreError::Invalid(
                "a queued message needs recipients".into(),
            ));
        }
        Ok(())
    }
}

/// Inserts `message` into the queue inside the caller's transaction; its id. The caller
/// commits, then wakes the worker ([`Store::queue_add`], or the delivery writer).
pub(super) async fn insert(
    conn: &mut sqlx::SqliteConnection,
    message: Outbound<'_>,
) -> Result<i64> {
    let created_at = now();
    let Outbound {
        sender,
        recipients,
        raw,
    } = message;
    let smtputf8 = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let id = sqlx::query(
        "INSERT INTO queue_messages (sender, raw, size, created_at, smtputf8) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(sender)
    .bind(raw)
    .bind(raw.len() as i64)
    .bind(created_at)
    .bind(smtputf8)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    for address in recipients {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        sqlx::query(
            "INSERT INTO queue_recipients (message_id, address, domain, next_attempt) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(address)
        .bind(domain.to_ascii_lowercase())
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

impl Store {
    /// Commits `raw` from `sender` for `recipients` (each `local@domain`) to the queue and wakes
    /// the worker. When this returns the message is durable. (A message that also has local
    /// copies goes through [`Store::deliver_and_queue`] instead, in one transaction.)
    pub async fn queue_add(&self, sender: &str, recipients: &[String], raw: &[u8]) -> Result<i64> {
        let message = Outbound {
            sender,
            recipients,
            raw,
        };
        message.check()?;
        self.admit(raw.len()).await?;
        let mut tx = self.write().await?;
        let id = insert(&mut tx, message).await?;
        tx.commit().await?;
        self.queue_wake.notify_one();
        Ok(id)
    }

    /// Waits until something is queued (or [`Store::queue_retry`] runs in this process).
    pub async fn queue_woken(&self) {
        self.queue_wake.notified().await;
    }

    /// Claims up to `limit` recipients due now: their next attempt moves a lease ahead, so
    /// nothing else picks them while the caller delivers.
    pub async fn queue_claim(&self, limit: i64) -> Result<Vec<QueuedRecipient>> {
        let now = now();
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "UPDATE queue_recipients SET next_attempt = ?, claimed = 1
             WHERE id IN (SELECT id FROM queue_recipients WHERE next_attempt <= ?
                          ORDER BY next_attempt, id LIMIT ?)
             RETURNING id, message_id, address, domain, attempts, next_attempt, last_error",
        )
        .bind(now + LEASE_SECS)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = rows.iter().map(recipient).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|r| (r.message_id, r.id));
        Ok(claimed)
    }

    /// Makes recipients claimed by an earlier run (cut short by a crash or a shutdown) due
    /// now. Called once when the worker starts: one server owns the database.
    pub async fn queue_release_claims(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE queue_recipients SET claimed = 0, next_attempt = ? WHERE claimed = 1",
        )
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the next recipient falls due, if any.
    pub async fn queue_next_due(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_attempt) FROM queue_recipients")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// The sender, raw message and arrival time of a queued message.
    pub async fn queued_message(&self, id: i64) -> Result<Option<(String, Vec<u8>, i64, bool)>> {
        let row = sqlx::query(
            "SELECT sender, raw, created_at, smtputf8 FROM queue_messages WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("sender")?,
                r.try_get("raw")?,
                r.try_get("created_at")?,
                r.try_get("smtputf8")?,
            ))
        })
        .transpose()
    }

    /// Removes recipients that were delivered or bounced, and messages left without any.
    pub async fn queue_finish(&self, recipient_ids: &[i64]) -> Result<()> {
        if recipient_ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        let mut messages: Vec<i64> = Vec::new();
        for id in recipient_ids {
            let message: Option<i64> = sqlx::query_scalar(
                "DELETE FROM queue_recipients WHERE id = ? RETURNING message_id",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(m) = message.filter(|m| !messages.contains(m)) {
                messages.push(m);
            }
        }
        // Only the messages these recipients belonged to can have become empty.
        for id in messages {
            sqlx::query(
                "DELETE FROM queue_messages WHERE id = ? AND NOT EXISTS
                   (SELECT 1 FROM queue_recipients r WHERE r.message_id = ?)",
            )
            .bind(id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a temporary failure: one more attempt, the next at `next_attempt`.
    pub async fn queue_defer(
        &self,
        recipient_id: i64,
        next_attempt: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE queue_recipients SET attempts = attempts + 1, next_attempt = ?, last_error = ?,
                    claimed = 0
             WHERE id = ?",
        )
        .bind(next_attempt)
        .bind(error)
        .bind(recipient_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every queued message with its recipients, oldest first.
    pub async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        let messages = sqlx::query(
            "SELECT id, sender, size, created_at FROM queue_messages ORDER BY created_at, id",
        )
        .fetch_all(&self.reader)
        .await?;
        let recipients = sqlx::query(
            "SELECT id, message_id, address, domain, attempts, next_attempt, last_error
             FROM queue_recipients ORDER BY message_id, id",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(recipient)
        .collect::<Result<Vec<_>>>()?;
        messages
            .iter()
            .map(|m| {
                let id: i64 = m.try_get("id")?;
                Ok(QueuedMessage {
                    id,
                    sender: m.try_get("sender")?,
                    size: m.try_get("size")?,
                    created_at: m.try_get("created_at")?,
                    recipients: recipients
                        .iter()
                        .filter(|r| r.message_id == id)
                        .cloned()
                        .collect(),
                })
            })
            .collect()
    }

    /// Makes every recipient of message `id` due now. False when there is no such message.
    pub async fn queue_retry(&self, id: i64) -> Result<bool> {
        // A recipient being delivered right now keeps its claim; the message still exists.
        let done = sqlx::query(
            "UPDATE queue_recipients
             SET next_attempt = CASE WHEN claimed = 0 THEN ? ELSE next_attempt END
             WHERE message_id = ?",
        )
        .bind(now())
        .bind(id)
        .execute(&self.writer)
        .await?;
        self.queue_wake.notify_one();
        Ok(done.rows_affected() > 0)
    }

    /// Removes message `id` from the queue without delivering or bouncing it.
    pub async fn queue_drop(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM queue_messages WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM queue_messages) AS messages,
                    (SELECT COUNT(*) FROM queue_recipients) AS recipients,
                    (SELECT MIN(created_at) FROM queue_messages) AS oldest",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(QueueStats {
            messages: row.try_get("messages")?,
            recipients: row.try_get("recipients")?,
            oldest_created_at: row.try_get("oldest")?,
        })
    }
}

fn recipient(r: &sqlx::sqlite::SqliteRow) -> Result<QueuedRecipient> {
    Ok(QueuedRecipient {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        address: r.try_get("address")?,
        domain: r.try_get("domain")?,
        attempts: r.try_get("attempts")?,
        next_attempt: r.try_get("next_attempt")?,
        last_error: r.try_get("last_error")?,
    })
}
