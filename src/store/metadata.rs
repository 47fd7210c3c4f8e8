//! IMAP METADATA (RFC 5464): entries ("annotations") on a mailbox or on the server.
//!
//! Entry names arrive checked and in lower case (`imap/metadata.rs` validates them: RFC 5464
//! names are case-insensitive) and start with `/private/` or `/shared/`. Values are octets.
//!
//! Where they live (migration 0009):
//! - Mailbox entries, private and shared, in `mailbox_metadata` by mailbox id. A mailbox has
//!   one owner and no other account can open it, so both kinds are the owner's. Keyed by id,
//!   they follow a RENAME (which keeps the id) and go with DELETE (`ON DELETE CASCADE`;
//!   mailbox ids are never reused). RENAME of INBOX makes a new mailbox for the messages and
//!   leaves INBOX in place, so INBOX keeps its entries.
//! - Server entries in `server_metadata`: `/private/…` per account, `/shared/…` without an
//!   account, read by every account and written only by administrators (the IMAP layer
//!   decides who may write; the store only keeps them apart).
//!
//! Bounds, so a client cannot grow the database without end: a value is at most
//! [`MAX_VALUE`] octets, an account has at most [`MAX_ENTRIES`] entries (its mailboxes' and
//! its private server entries together), and the server at most [`MAX_SHARED_SERVER_ENTRIES`]
//! shared ones: at most 16 MiB of values per account.
//!
//! A mailbox's `/private/specialuse` (RFC 6154 §4) is not a row: it is the mailbox's special
//! use (`mailboxes.special_use`), read and set here under the rules of `special_use.rs` (one
//! attribute, one mailbox per attribute), in the same transaction as the other entries.
//!
//! Carried by `mailroom backup`/`restore` (the whole database); not by `export`/`import`
//! (`mailbox_files`), which move messages as mbox/Maildir, formats without a place for them.

use super::mailboxes::Mailbox;
use super::special_use::{CREATABLE_SPECIAL_USES, creatable_special_use};
use super::{Change, Result, Store, StoreError};

/// The largest value of one entry, in octets (RFC 5464 `[METADATA MAXSIZE n]`).
pub const MAX_VALUE: usize = 64 * 1024;
/// Most entries one account may hold, over all its mailboxes and the server (RFC 5464
/// `[METADATA TOOMANY]`).
pub const MAX_ENTRIES: i64 = 256;
/// Most shared server entries (written by administrators).
pub const MAX_SHARED_SERVER_ENTRIES: i64 = 256;

/// Whose entries: the server's, or a mailbox's.
#[derive(Debug, Clone, Copy)]
pub enum MetadataOwner<'a> {
    Server,
    Mailbox(&'a Mailbox),
}

/// Why a SETMETADATA was refused as a whole (nothing of it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataLimit {
    /// A value is larger than [`MAX_VALUE`].
    MaxSize(usize),
    /// The account (or the server's shared entries) would have too many entries.
    TooMany,
    /// `/private/specialuse` cannot be set to that value (RFC 6154 `[USEATTR]`).
    UseAttr(String),
}

/// The entry of a mailbox that is its special use (RFC 6154 §4).
pub const SPECIAL_USE_ENTRY: &str = "/private/specialuse";

/// Names for which `entry` is the name itself or below it (`entry/…`): the SQL condition's
/// parameters, the prefix and its length in characters (SQLite's `substr` counts those).
fn below(entry: &str) -> (String, i64) {
    let prefix = format!("{entry}/");
    let chars = prefix.chars().count() as i64;
    (prefix, chars)
}

fn is_shared(name: &str) -> bool {
    name.starts_with("/shared/")
}

/// Sets (or with `None`, removes) the special use of `mailbox` to `value`, one attribute as
/// LIST shows it, inside the caller's transaction; `Ok(Err(why))` when it cannot be given.
async fn set_special_use(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    mailbox: &Mailbox,
    value: Option<&[u8]>,
) -> Result<std::result::Result<(), String>> {
    let text = value.map(|v| String::from_utf8_lossy(v).trim().to_string());
    let special_use = match text.as_deref() {
        None | Some("") => None,
        Some(t) if t.contains(' ') => {
            return Ok(Err("a mailbox can have only one special use here".into()));
        }
        Some(t) => match creatable_special_use(t) {
            Some(u) => Some(u),
            None => {
                return Ok(Err(format!(
                    "mailboxes can have {} only",
                    CREATABLE_SPECIAL_USES.join(" ")
                )));
            }
        },
    };
    if let Some(u) = special_use {
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT name FROM mailboxes WHERE account_id = ? AND special_use = ? AND id <> ?",
        )
        .bind(mailbox.account_id)
        .bind(u)
        .bind(mailbox.id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(holder) = holder {
            return Ok(Err(format!(
                "{u} is already the special use of mailbox {holder}"
            )));
        }
    }
    sqlx::query("UPDATE mailboxes SET special_use = ? WHERE id = ? AND account_id = ?")
        .bind(special_use)
        .bind(mailbox.id)
        .bind(mailbox.account_id)
        .execute(&mut **tx)
        .await?;
    Ok(Ok(()))
}

impl Store {
    /// The existing entries of `owner` that `account_id` may read and that are `entries`
    /// themselves or below them, sorted by name, without duplicates. The caller picks the
    /// depth it was asked for.
    pub async fn metadata(
        &self,
        account_id: i64,
        owner: MetadataOwner<'_>,
        entries: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut found: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in entries {
            let (prefix, chars) = below(entry);
            let rows: Vec<(String, Vec<u8>)> = match owner {
                MetadataOwner::Mailbox(mailbox) => {
                    sqlx::query_as(
                        "SELECT mm.name, mm.value FROM mailbox_metadata mm
                         JOIN mailboxes m ON m.id = mm.mailbox_id
                         WHERE mm.mailbox_id = ? AND m.account_id = ?
                           AND (mm.name = ? OR substr(mm.name, 1, ?) = ?)",
                    )
                    .bind(mailbox.id)
                    .bind(mailbox.account_id)
                    .bind(entry)
                    .bind(chars)
                    .bind(&prefix)
                    .fetch_all(&self.reader)
                    .await?
                }
                MetadataOwner::Server => {
                    sqlx::query_as(
                        "SELECT name, value FROM server_metadata
                         WHERE (account_id = ? OR account_id IS NULL)
                           AND (name = ? OR substr(name, 1, ?) = ?)",
                    )
                    .bind(account_id)
                    .bind(entry)
                    .bind(chars)
                    .bind(&prefix)
                    .fetch_all(&self.reader)
                    .await?
                }
            };
            found.extend(rows);
            if let MetadataOwner::Mailbox(mailbox) = owner
                && (entry == SPECIAL_USE_ENTRY || SPECIAL_USE_ENTRY.starts_with(&prefix))
            {
                let special_use: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT special_use FROM mailboxes WHERE id = ? AND account_id = ?",
                )
                .bind(mailbox.id)
                .bind(mailbox.account_id)
                .fetch_optional(&self.reader)
                .await?;
                if let Some(Some(special_use)) = special_use {
                    found.push((SPECIAL_USE_ENTRY.to_string(), special_use.into_bytes()));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }

    /// Sets (`Some`) or removes (`None`) entries of `owner` for `account_id`, all or none, in
    /// one transaction. Shared server entries are the server's (no account); whether the caller
    /// may write them is the caller's decision. `Ok(Err(limit))` when a bound refused it all.
    pub async fn set_metadata(
        &self,
        account_id: i64,
        owner: MetadataOwner<'_>,
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<std::result::Result<(), MetadataLimit>> {
        if let Some(size) = writes
            .iter()
            .filter_map(|(_, v)| v.as_ref().map(Vec::len))
            .find(|&len| len > MAX_VALUE)
        {
            return Ok(Err(MetadataLimit::MaxSize(size)));
        }
        let mut tx = self.write().await?;
        if let MetadataOwner::Mailbox(mailbox) = owner {
            // The mailbox may have been deleted since the caller looked it up.
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM mailboxes WHERE id = ? AND account_id = ?")
                    .bind(mailbox.id)
                    .bind(mailbox.account_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() || mailbox.account_id != account_id {
                return Err(StoreError::NotFound(format!("mailbox {}", mailbox.name)));
            }
        }
        let mut added_own = false;
        let mut added_shared = false;
        for (name, value) in writes {
            match owner {
                MetadataOwner::Mailbox(mailbox) if name == SPECIAL_USE_ENTRY => {
                    if let Err(why) = set_special_use(&mut tx, mailbox, value.as_deref()).await? {
                        return Ok(Err(MetadataLimit::UseAttr(why)));
                    }
                }
                MetadataOwner::Mailbox(mailbox) => match value {
                    Some(v) => {
                        sqlx::query(
                                "INSERT INTO mailbox_metadata (mailbox_id, name, value)
                                 VALUES (?, ?, ?)
                                 ON CONFLICT (mailbox_id, name) DO UPDATE SET value = excluded.value",
                            )
                            .bind(mailbox.id)
                            .bind(name)
                            .bind(v)
                            .execute(&mut *tx)
                            .await?;
                        added_own = true;
                    }
                    None => {
                        sqlx::query(
                            "DELETE FROM mailbox_metadata WHERE mailbox_id = ? AND name = ?",
                        )
                        .bind(mailbox.id)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    }
                },
                MetadataOwner::Server => {
                    let row_account = (!is_shared(name)).then_some(account_id);
                    sqlx::query("DELETE FROM server_metadata WHERE account_id IS ? AND name = ?")
                        .bind(row_account)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(v) = value {
                        sqlx::query(
                            "INSERT INTO server_metadata (account_id, name, value) VALUES (?, ?, ?)",
                        )
                        .bind(row_account)
                        .bind(name)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                        if row_account.is_some() {
                            added_own = true;
                        } else {
                            added_shared = true;
                        }
                    }
                }
            }
        }
        // Counted after the writes, inside the transaction: replacing an entry adds nothing,
        // and a refused command leaves nothing behind (the transaction is dropped, rolled back).
        if added_own {
            let count: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM mailbox_metadata mm
                         JOIN mailboxes m ON m.id = mm.mailbox_id WHERE m.account_id = ?)
                      + (SELECT COUNT(*) FROM server_metadata WHERE account_id = ?)",
            )
            .bind(account_id)
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
            if count > MAX_ENTRIES {
                return Ok(Err(MetadataLimit::TooMany));
            }
        }
        if added_shared {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM server_metadata WHERE account_id IS NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            if count > MAX_SHARED_SERVER_ENTRIES {
                return Ok(Err(MetadataLimit::TooMany));
            }
        }
        tx.commit().await?;
        if let MetadataOwner::Mailbox(mailbox) = owner
            && writes.iter().any(|(n, _)| n == SPECIAL_USE_ENTRY)
        {
            self.bus.announce(Change::MailboxesChanged {
                account_id: mailbox.account_id,
            });
        }
        Ok(Ok(()))
    }
}
