//! Mailbox management beyond creation: creating with parents, renaming (with children, and
//! INBOX's special rename), deleting, and the counts STATUS shows. None of them touches the
//! subscriptions (`subscriptions.rs`): those are names, kept whatever happens to mailboxes.
//!
//! Choices:
//! - Creating `a/b/c` creates `a` and `a/b` too when they are missing, so every level of the
//!   hierarchy is a real mailbox and LIST never has to invent `\NonExistent` parents.
//! - A mailbox with children cannot be deleted (RFC 3501 allows either this or turning it
//!   into a `\Noselect` placeholder; refusing keeps the model simple).
//! - Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (RFC 3501
//!   §6.3.5); the moved messages keep their UIDs under the new mailbox's own UIDVALIDITY.
//! - A renamed mailbox keeps its UIDVALIDITY: its messages and their UIDs are unchanged.

use super::mailboxes::{Mailbox, SEPARATOR, validate_name};
use super::{Change, Result, Store, StoreError, blobs};

/// What STATUS shows about a mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    /// Total octets of the messages.
    pub size: u64,
    /// Octets of the messages marked \Deleted.
    pub deleted_size: u64,
}

/// messages, unseen, deleted, size, deleted size
type CountRow = (i64, i64, i64, i64, i64);

const COUNT_COLUMNS: &str =
    "COUNT(*), COALESCE(SUM((flags & 1) = 0), 0), COALESCE(SUM((flags & 8) != 0), 0),
    COALESCE(SUM(size), 0), COALESCE(SUM(CASE WHEN flags & 8 THEN size ELSE 0 END), 0)";

fn counts((messages, unseen, deleted, size, deleted_size): CountRow) -> MailboxCounts {
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    MailboxCounts {
        messages: n(messages),
        unseen: n(unseen),
        deleted: n(deleted),
        size: size.max(0) as u64,
        deleted_size: deleted_size.max(0) as u64,
    }
}

fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// `a/b/c` → `["a", "a/b"]`.
fn ancestors(name: &str) -> Vec<&str> {
    name.char_indices()
        .filter(|(_, c)| *c == SEPARATOR)
        .filter_map(|(i, _)| name.get(..i))
        .collect()
}

impl Store {
    /// Creates a mailbox and any missing parents. Fails when the mailbox itself exists.
    pub async fn create_mailbox_path(&self, account_id: i64, name: &str) -> Result<Mailbox> {
        validate_name(name).map_err(StoreError::Invalid)?;
        for parent in ancestors(name) {
            if self.mailbox(account_id, parent).await?.is_none() {
                match self.create_mailbox(account_id, parent).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.create_mailbox(account_id, name).await
    }

    /// Renames a mailbox and its children. Renaming INBOX moves its messages instead.
    pub async fn rename_mailbox(&self, account_id: i64, from: &str, to: &str) -> Result<()> {
        validate_name(to).map_err(StoreError::Invalid)?;
        if is_inbox(to) {
            return Err(StoreError::Conflict("INBOX already exists".into()));
        }
        let source = self
            .mailbox(account_id, from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
        if self.mailbox(account_id, to).await?.is_some() {
            return Err(StoreError::Conflict(format!("mailbox {to} already exists")));
        }
        if to.starts_with(&format!("{}{SEPARATOR}", source.name)) {
            return Err(StoreError::Invalid(
                "a mailbox cannot be moved inside itself".into(),
            ));
        }
        for parent in ancestors(to) {
            if self.mailbox(account_id, parent).await?.is_none() {
                match self.create_mailbox(account_id, parent).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if source.name == "INBOX" {
            return self.rename_inbox(account_id, &source, to).await;
        }
        let mut tx = self.write().await?;
        let prefix = format!("{}{SEPARATOR}", source.name);
        let children: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?",
        )
        .bind(account_id)
        .bind(prefix.chars().count() as i64)
        .bind(&prefix)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE mailboxes SET name = ? WHERE id = ?")
            .bind(to)
            .bind(source.id)
            .execute(&mut *tx)
            .await?;
        for (id, name) in children {
            let rest = name.get(prefix.len()..).unwrap_or_default();
            let new_name = format!("{to}{SEPARATOR}{rest}");
            let taken: Option<i64> =
                sqlx::query_scalar("SELECT id FROM mailboxes WHERE account_id = ? AND name = ?")
                    .bind(account_id)
                    .bind(&new_name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "mailbox {new_name} already exists"
                )));
            }
            sqlx::query("UPDATE mailboxes SET name = ? WHERE id = ?")
                .bind(new_name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.bus.announce(Change::MailboxesChanged { account_id });
        Ok(())
    }

    async fn rename_inbox(&self, account_id: i64, inbox: &Mailbox, to: &str) -> Result<()> {
        let target = self.create_mailbox(account_id, to).await?;
        let mut tx = self.write().await?;
        let uids: Vec<u32> =
            sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid")
                .bind(inbox.id)
                .fetch_all(&mut *tx)
                .await?;
        let modseq: i64 = sqlx::query_scalar(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
        )
        .bind(inbox.id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE messages SET mailbox_id = ?, modseq = 1 WHERE mailbox_id = ?")
            .bind(target.id)
            .bind(inbox.id)
            .execute(&mut *tx)
            .await?;
        // The messages keep their UIDs, and whether a session has claimed them as \Recent.
        sqlx::query(
            "UPDATE mailboxes SET uidnext = ?, highestmodseq = 1,
                 recent_uid = (SELECT recent_uid FROM mailboxes WHERE id = ?)
             WHERE id = ?",
        )
        .bind(inbox.uidnext)
        .bind(inbox.id)
        .bind(target.id)
        .execute(&mut *tx)
        .await?;
        for uid in &uids {
            sqlx::query(
                "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            )
            .bind(inbox.id)
            .bind(uid)
            .bind(modseq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.bus.announce(Change::MailboxesChanged { account_id });
        if !uids.is_empty() {
            self.bus.announce(Change::Expunged {
                account_id,
                mailbox_id: inbox.id,
                uids,
                modseq: modseq as u64,
            });
        }
        Ok(())
    }

    /// Deletes a mailbox and its messages (their bodies lose a reference, the quota is
    /// credited). INBOX and mailboxes with children cannot be deleted.
    pub async fn delete_mailbox(&self, account_id: i64, name: &str) -> Result<()> {
        if is_inbox(name) {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        let mailbox = self
            .mailbox(account_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
        let mut tx = self.write().await?;
        let prefix = format!("{}{SEPARATOR}", mailbox.name);
        let children: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?",
        )
        .bind(account_id)
        .bind(prefix.chars().count() as i64)
        .bind(&prefix)
        .fetch_one(&mut *tx)
        .await?;
        if children > 0 {
            return Err(StoreError::Conflict(format!(
                "mailbox {name} has children; delete them first"
            )));
        }
        let refs: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT blob_id, COUNT(*), SUM(size) FROM messages WHERE mailbox_id = ? GROUP BY blob_id",
        )
        .bind(mailbox.id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM messages WHERE mailbox_id = ?")
            .bind(mailbox.id)
            .execute(&mut *tx)
            .await?;
        let (mut count, mut bytes) = (0i64, 0i64);
        for (_, n, size) in &refs {
            count += n;
            bytes += size;
        }
        let refs: Vec<(i64, i64)> = refs.iter().map(|(blob_id, n, _)| (*blob_id, *n)).collect();
        blobs::release_many(&mut tx, &refs).await?;
        sqlx::query(
            "UPDATE accounts SET used_bytes = MAX(used_bytes - ?, 0), message_count = MAX(message_count - ?, 0) WHERE id = ?",
        )
        .bind(bytes)
        .bind(count)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mailboxes WHERE id = ?")
            .bind(mailbox.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.bus.announce(Change::MailboxesChanged { account_id });
        Ok(())
    }

    /// Message counts and sizes of a mailbox.
    pub async fn mailbox_counts(&self, mailbox: &Mailbox) -> Result<MailboxCounts> {
        let mailbox_id = mailbox.id();
        let sql = format!("SELECT {COUNT_COLUMNS} FROM messages WHERE mailbox_id = ?");
        let row: CountRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .fetch_one(&self.reader)
            .await?;
        Ok(counts(row))
    }

    /// The counts of every mailbox of an account in one query (the webmail's folder list);
    /// mailboxes without messages are absent.
    pub async fn account_mailbox_counts(
        &self,
        account_id: i64,
    ) -> Result<std::collections::HashMap<i64, MailboxCounts>> {
        let sql = format!(
            "SELECT mailbox_id, {COUNT_COLUMNS} FROM messages
             WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)
             GROUP BY mailbox_id"
        );
        let rows: Vec<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, a, b, c, d, e)| (id, counts((a, b, c, d, e))))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::ancestors;

    #[test]
    fn parents() {
        assert_eq!(ancestors("a"), Vec::<&str>::new());
        assert_eq!(ancestors("a/b/c"), vec!["a", "a/b"]);
    }
}
