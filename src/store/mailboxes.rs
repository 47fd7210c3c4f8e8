//! Mailboxes: the six every account starts with, lookup by name (INBOX without case, as IMAP
//! requires), creation, and UIDVALIDITY assignment.

use sqlx::{Sqlite, Transaction};

use super::{Change, Result, Store, StoreError, now};

/// Every new account gets these, with their RFC 6154 special-use attributes.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Drafts", Some("\\Drafts")),
    ("Sent", Some("\\Sent")),
    ("Junk", Some("\\Junk")),
    ("Trash", Some("\\Trash")),
    ("Archive", Some("\\Archive")),
];

/// The hierarchy separator of mailbox names.
pub const SEPARATOR: char = '/';
const MAX_NAME_LEN: usize = 512;

/// A mailbox, and the permission to reach its messages: only the store makes one, after
/// finding the mailbox among its account's (`Store::mailbox`, `mailbox_by_id`, `mailboxes`), so
/// every message operation taking a `&Mailbox` works on a mailbox its caller was allowed to see.
/// The id and the owner are private (read through [`Mailbox::id`], [`Mailbox::account_id`]) so
/// code outside the store can neither build one nor point one at another mailbox:
///
/// ```compile_fail
/// // Built by hand: the id and the owner are private.
/// let m = mailroom::store::Mailbox {
///     id: 1,
///     account_id: 2,
///     name: "INBOX".into(),
///     special_use: None,
///     uidvalidity: 1,
///     uidnext: 1,
///     highestmodseq: 0,
/// };
/// ```
///
/// ```compile_fail
/// // Pointed at another mailbox: the id cannot be changed.
/// fn retarget(mine: &mut mailroom::store::Mailbox) {
///     mine.id = 7;
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Mailbox {
    pub(super) id: i64,
    pub(super) account_id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: i64,
}

impl Mailbox {
    /// The mailbox's id (as in webmail addresses and change announcements).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The account the mailbox belongs to.
    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// A handle for unit tests of code that keeps one (IMAP's selected state, POP3's
    /// maildrop) without a database.
    #[cfg(test)]
    pub(crate) fn for_test(id: i64, account_id: i64, name: &str) -> Mailbox {
        Mailbox {
            id,
            account_id,
            name: name.to_string(),
            special_use: None,
            uidvalidity: 1,
            uidnext: 1,
            highestmodseq: 0,
        }
    }
}

const MAILBOX_COLUMNS: &str =
    "id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq";

pub(super) async fn create_default_mailboxes(
    tx: &mut Transaction<'static, Sqlite>,
    account_id: i64,
) -> Result<()> {
    for (name, special_use) in DEFAULT_MAILBOXES {
        insert_mailbox(tx, account_id, name, special_use).await?;
        // A new account starts with its default mailboxes subscribed, so clients that show
        // only subscribed folders show them; a later CREATE subscribes nothing, the list
        // being the client's (RFC 3501 §6.3.6).
        super::subscriptions::add(tx, account_id, name).await?;
    }
    Ok(())
}

pub(super) async fn insert_mailbox(
    tx: &mut Transaction<'static, Sqlite>,
    account_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<i64> {
    let uidvalidity = next_uidvalidity(tx).await?;
    let id = next_id(tx, Counter::Mailbox).await?;
    Ok(sqlx::query(
        "INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(account_id)
    .bind(name)
    .bind(special_use)
    .bind(uidvalidity)
    .bind(now())
    .execute(&mut **tx)
    .await?
    .last_insert_rowid())
}

/// The rows whose ids grant access, and so must never be handed out twice.
#[derive(Clone, Copy)]
pub(super) enum Counter {
    Mailbox,
    Account,
}

/// Mailbox and account ids only ever grow, so a handle kept after its row was deleted (the
/// mailbox an IMAP session has selected, the account a session logged in as) reaches nothing.
/// Left to itself SQLite gives a new row the largest id + 1: deleting the newest mailbox or
/// account handed its id to the next one created, whoever it belongs to. The highest id given
/// is kept in `meta` (`mailbox_id`, `account_id`).
pub(super) async fn next_id(
    tx: &mut Transaction<'static, Sqlite>,
    counter: Counter,
) -> Result<i64> {
    let (key, highest_sql) = match counter {
        Counter::Mailbox => ("mailbox_id", "SELECT MAX(id) FROM mailboxes"),
        Counter::Account => ("account_id", "SELECT MAX(id) FROM accounts"),
    };
    let last: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    let last: i64 = last.and_then(|v| v.parse().ok()).unwrap_or(0);
    let highest: Option<i64> = sqlx::query_scalar(highest_sql).fetch_one(&mut **tx).await?;
    let next = last.max(highest.unwrap_or(0)).saturating_add(1);
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(next.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(next)
}

/// UIDVALIDITY values only ever grow across the whole database, so a mailbox deleted and
/// created again under the same name never reuses one (RFC 3501 §2.3.1.1). They start from the
/// current time, as most servers do, so a restored backup does not hand out old values.
async fn next_uidvalidity(tx: &mut Transaction<'static, Sqlite>) -> Result<u32> {
    let last: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'uidvalidity'")
            .fetch_optional(&mut **tx)
            .await?;
    let last: u32 = last.and_then(|v| v.parse().ok()).unwrap_or(0);
    let clock = u32::try_from(now()).unwrap_or(u32::MAX - 1);
    let next = clock.max(last.saturating_add(1));
    sqlx::query("INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(next.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(next)
}

/// Checks a user-chosen mailbox name: non-empty, no empty hierarchy levels, no control
/// characters, bounded length.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("a mailbox name must be 1 to {MAX_NAME_LEN} bytes"));
    }
    if name.starts_with(SEPARATOR) || name.ends_with(SEPARATOR) || name.contains("//") {
        return Err("a mailbox name cannot have an empty level".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("a mailbox name cannot contain control characters".into());
    }
    Ok(())
}

fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

impl Store {
    pub async fn mailboxes(&self, account_id: i64) -> Result<Vec<Mailbox>> {
        let sql = format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?
             ORDER BY name <> 'INBOX', name"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.reader)
            .await?)
    }

    pub async fn mailbox(&self, account_id: i64, name: &str) -> Result<Option<Mailbox>> {
        let name = if is_inbox(name) { "INBOX" } else { name };
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// The mailbox `mailbox_id` if it is `account_id`'s: `None` for another account's, so a
    /// caller cannot tell whether it exists.
    pub async fn mailbox_by_id(&self, account_id: i64, mailbox_id: i64) -> Result<Option<Mailbox>> {
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ? AND account_id = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .bind(account_id)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Creates a mailbox (without special use).
    pub async fn create_mailbox(&self, account_id: i64, name: &str) -> Result<Mailbox> {
        validate_name(name).map_err(StoreError::Invalid)?;
        if is_inbox(name) {
            return Err(StoreError::Conflict("INBOX already exists".into()));
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
        let id = insert_mailbox(&mut tx, account_id, name, None).await?;
        tx.commit().await?;
        self.bus.announce(Change::MailboxesChanged { account_id });
        self.mailbox_by_id(account_id, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("Work").is_ok());
        assert!(validate_name("Work/2026").is_ok());
        assert!(validate_name("Überweisungen").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a\nb", &"x".repeat(600)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
