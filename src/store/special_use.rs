//! Creating a mailbox with a special use (RFC 6154 §3, IMAP CREATE-SPECIAL-USE).
//!
//! An account has at most one mailbox per special use, and a mailbox at most one: the
//! `special_use` column holds one attribute, and clients (the webmail's Sent copy among them)
//! look for *the* `\Sent` or `\Trash` mailbox, which two would make ambiguous. RFC 6154
//! leaves this to the server ("cannot be assigned"); Mailroom refuses a second one, so a user
//! who deleted `Junk` can make `Spam` the `\Junk` mailbox, but cannot have two.

use super::mailboxes::{Mailbox, SEPARATOR, insert_mailbox, validate_name};
use super::{Change, Result, Store, StoreError};

/// The special uses a mailbox may be created with, as LIST shows them. `\All` and `\Flagged`
/// (RFC 6154 §2) name virtual collections of messages kept elsewhere, which this server
/// does not make, so they are not among them.
pub const CREATABLE_SPECIAL_USES: [&str; 5] =
    ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"];

/// The canonical form of a special-use attribute (they are case-insensitive atoms), if a
/// mailbox may be created with it.
pub fn creatable_special_use(attribute: &str) -> Option<&'static str> {
    CREATABLE_SPECIAL_USES
        .into_iter()
        .find(|u| u.eq_ignore_ascii_case(attribute))
}

impl Store {
    /// The account's mailbox that has `special_use`, if any.
    async fn special_use_holder(
        &self,
        account_id: i64,
        special_use: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM mailboxes WHERE account_id = ? AND special_use = ?",
        )
        .bind(account_id)
        .bind(special_use)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Creates mailbox `name` (and any missing parents) with the special use `special_use`
    /// (one of [`CREATABLE_SPECIAL_USES`]). `Ok(Err(why))` when the special use cannot be
    /// given (unknown, or another mailbox has it): nothing is created. A mailbox that exists
    /// is `StoreError::Conflict`, as for a plain create.
    pub async fn create_special_mailbox(
        &self,
        account_id: i64,
        name: &str,
        special_use: &str,
    ) -> Result<std::result::Result<Mailbox, String>> {
        validate_name(name).map_err(StoreError::Invalid)?;
        let Some(special_use) = creatable_special_use(special_use) else {
            return Ok(Err(format!(
                "mailboxes can be created with {} only",
                CREATABLE_SPECIAL_USES.join(" ")
            )));
        };
        if name.eq_ignore_ascii_case("INBOX") || self.mailbox(account_id, name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "mailbox {name} already exists"
            )));
        }
        let taken = |holder: String| {
            format!("{special_use} is already the special use of mailbox {holder}")
        };
        // Checked before the parents are made, and again in the transaction that creates it.
        if let Some(holder) = self.special_use_holder(account_id, special_use).await? {
            return Ok(Err(taken(holder)));
        }
        let parents: Vec<&str> = name
            .char_indices()
            .filter(|(_, c)| *c == SEPARATOR)
            .filter_map(|(i, _)| name.get(..i))
            .collect();
        for parent in parents {
            if self.mailbox(account_id, parent).await?.is_none() {
                match self.create_mailbox(account_id, parent).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut tx = self.write().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM mailboxes WHERE account_id = ? AND name = ?")
                .bind(account_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "mailbox {name} already exists"
            )));
        }
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT name FROM mailboxes WHERE account_id = ? AND special_use = ?",
        )
        .bind(account_id)
        .bind(special_use)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(holder) = holder {
            return Ok(Err(taken(holder)));
        }
        let id = insert_mailbox(&mut tx, account_id, name, Some(special_use)).await?;
        tx.commit().await?;
        self.bus.announce(Change::MailboxesChanged { account_id });
        self.mailbox_by_id(account_id, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))
            .map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        assert_eq!(creatable_special_use("\\sent"), Some("\\Sent"));
        assert_eq!(creatable_special_use("\\JUNK"), Some("\\Junk"));
        assert_eq!(creatable_special_use("\\All"), None);
        assert_eq!(creatable_special_use("\\Flagged"), None);
        assert_eq!(creatable_special_use("\\Important"), None);
        assert_eq!(creatable_special_use("Sent"), None);
    }
}
