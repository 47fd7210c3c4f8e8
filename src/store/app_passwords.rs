//! App passwords for mail clients (migration 0010, `app_passwords`): one per device, named,
//! scoped to protocols, found by their keyed hash (`tag`). The store keeps tags only; making a
//! password, its tag and the key are `auth::app_passwords`' (the store knows no protocol: it
//! takes the scope bits as a number).

use super::{Result, Store, now};

/// The meta key of the HMAC key app-password tags are computed under (base64, 32 bytes).
const KEY_META: &str = "app_password_key";

/// Longest app password name kept (a device name; longer input is cut by the caller).
pub const MAX_NAME: usize = 64;

/// App passwords per account: a device each, so a few dozen is plenty; the bound keeps one
/// account from filling the table.
pub const MAX_PER_ACCOUNT: i64 = 50;

/// One app password as listed (never the password: it is shown once, when made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    /// Protocol bits: 1 IMAP, 2 POP3, 4 SMTP submission, 8 ManageSieve, 16 DAV.
    pub scopes: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub last_used_protocol: Option<String>,
}

/// One use of an app password, recorded in batches off the login path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordUse {
    pub id: i64,
    pub at: i64,
    pub ip: String,
    pub protocol: String,
}

type Row = (
    i64,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn from_row(r: Row) -> AppPassword {
    AppPassword {
        id: r.0,
        account_id: r.1,
        name: r.2,
        scopes: r.3,
        created_at: r.4,
        last_used_at: r.5,
        last_used_ip: r.6,
        last_used_protocol: r.7,
    }
}

impl Store {
    /// The server's key for app-password tags, made on first use. Kept in the database (not a
    /// file beside it) so that a backup restored elsewhere, and the CLI's process, compute the
    /// same tags; the tags' strength rests on the passwords' 140 random bits, the key only
    /// keeps someone holding a copy of the database from testing a candidate password against
    /// them. `INSERT OR IGNORE` then read: two processes starting at once agree on one key.
    pub async fn app_password_key(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let fresh: [u8; 32] = rand::random();
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(KEY_META)
            .bind(engine.encode(fresh))
            .execute(&self.writer)
            .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(KEY_META)
            .fetch_one(&self.writer)
            .await?;
        engine
            .decode(stored)
            .map_err(|e| super::StoreError::Corrupt(format!("app password key: {e}")))
    }

    /// Adds an app password by its tag; `None` when the account already has
    /// [`MAX_PER_ACCOUNT`].
    pub async fn create_app_password(
        &self,
        account_id: i64,
        name: &str,
        tag: &str,
        scopes: i64,
    ) -> Result<Option<AppPassword>> {
        let mut tx = self.write().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM app_passwords WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_PER_ACCOUNT {
            return Ok(None);
        }
        let created_at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO app_passwords (account_id, name, tag, scopes, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(account_id)
        .bind(name)
        .bind(tag)
        .bind(scopes)
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(AppPassword {
            id,
            account_id,
            name: name.to_string(),
            scopes,
            created_at,
            last_used_at: None,
            last_used_ip: None,
            last_used_protocol: None,
        }))
    }

    /// The app password with this tag, if any.
    pub async fn app_password_by_tag(&self, tag: &str) -> Result<Option<AppPassword>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, account_id, name, scopes, created_at, last_used_at, last_used_ip,
                    last_used_protocol
             FROM app_passwords WHERE tag = ?",
        )
        .bind(tag)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(from_row))
    }

    /// The account's app passwords, newest first.
    pub async fn app_passwords(&self, account_id: i64) -> Result<Vec<AppPassword>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, account_id, name, scopes, created_at, last_used_at, last_used_ip,
                    last_used_protocol
             FROM app_passwords WHERE account_id = ? ORDER BY id DESC",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Removes one of the account's app passwords; its tag (so the sessions using it can be
    /// ended), or `None` when the account has no such app password.
    pub async fn delete_app_password(&self, account_id: i64, id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM app_passwords WHERE id = ? AND account_id = ? RETURNING tag",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.writer)
        .await?)
    }

    /// Records the last use of app passwords, in one transaction. A use older than the one
    /// stored is not written back over it (batches may arrive out of order).
    pub async fn record_app_password_uses(&self, uses: &[AppPasswordUse]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for u in uses {
            sqlx::query(
                "UPDATE app_passwords
                 SET last_used_at = ?, last_used_ip = ?, last_used_protocol = ?
                 WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
            )
            .bind(u.at)
            .bind(&u.ip)
            .bind(&u.protocol)
            .bind(u.id)
            .bind(u.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
