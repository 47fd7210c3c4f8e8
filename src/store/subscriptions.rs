//! IMAP subscriptions: a list of names per account, kept apart from the mailboxes (RFC 3501
//! §6.3.6, RFC 9051 §6.3.7). Creating a mailbox subscribes nothing, deleting or renaming one
//! leaves the list as it was, and a name can be subscribed whether or not a mailbox has it.
//! The accounts' default mailboxes are subscribed when the account is made
//! (`mailboxes::create_default_mailboxes`).

use sqlx::{Sqlite, Transaction};

use super::mailboxes::{SEPARATOR, validate_name};
use super::{Result, Store, StoreError};

/// How many names one account may subscribe: SUBSCRIBE takes names that need not exist, so
/// without a bound one session could grow the table without end.
pub const MAX_SUBSCRIPTIONS: i64 = 10_000;

/// INBOX is one name whatever its case (RFC 3501 §5.1), kept in capitals like the mailbox.
fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

/// Adds `name` to the account's subscriptions inside the caller's transaction.
pub(super) async fn add(
    tx: &mut Transaction<'static, Sqlite>,
    account_id: i64,
    name: &str,
) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)")
        .bind(account_id)
        .bind(canonical(name))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Subscribes `name`, which need not be a mailbox. Subscribing twice is not an error.
    pub async fn subscribe_name(&self, account_id: i64, name: &str) -> Result<()> {
        validate_name(name).map_err(StoreError::Invalid)?;
        let mut tx = self.write().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        let already: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?")
                .bind(account_id)
                .bind(canonical(name))
                .fetch_optional(&mut *tx)
                .await?;
        if already.is_none() && count >= MAX_SUBSCRIPTIONS {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_SUBSCRIPTIONS} names can be subscribed"
            )));
        }
        add(&mut tx, account_id, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unsubscribes `name`, whether or not a mailbox has it; a name not subscribed is no error.
    pub async fn unsubscribe_name(&self, account_id: i64, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM subscriptions WHERE account_id = ? AND name = ?")
            .bind(account_id)
            .bind(canonical(name))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Moves the subscriptions of `from` and the names under it to `to`, for a client that
    /// renames a mailbox and keeps following it (the webmail; IMAP RENAME never does this).
    pub async fn move_subscriptions(&self, account_id: i64, from: &str, to: &str) -> Result<()> {
        let prefix = format!("{from}{SEPARATOR}");
        let prefix_chars = prefix.chars().count() as i64;
        let mut tx = self.write().await?;
        // `substr(name, n)` is from character n on (1-based): "" for `from`, "/rest" under it.
        sqlx::query(
            "INSERT OR IGNORE INTO subscriptions (account_id, name)
             SELECT account_id, ? || substr(name, ?) FROM subscriptions
             WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
        )
        .bind(canonical(to))
        .bind(prefix_chars)
        .bind(account_id)
        .bind(canonical(from))
        .bind(prefix_chars)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM subscriptions
             WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
        )
        .bind(account_id)
        .bind(canonical(from))
        .bind(prefix_chars)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's subscribed names, sorted (INBOX first).
    pub async fn subscriptions(&self, account_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name <> 'INBOX', name",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?)
    }
}
