//! Web sessions for the admin panel and the webmail.
//!
//! The cookie holds a random token; the database keeps only its SHA-256, so a copy of the
//! database (a backup) cannot be replayed as a login. Each session carries its own CSRF token,
//! which every form posts back. Sessions end after [`IDLE_SECS`] without a request, after
//! [`ABSOLUTE_SECS`] in any case, at logout, and when the account is disabled or removed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Account, Result, Store, now};

/// A session unused this long is over.
pub const IDLE_SECS: i64 = 2 * 3600;
/// No session lives longer than this, however busy.
pub const ABSOLUTE_SECS: i64 = 24 * 3600;
/// `last_seen` is written at most this often, so reading pages does not write every time.
const TOUCH_SECS: i64 = 60;

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub account: Account,
    pub csrf_token: String,
}

/// A new random token (256 bits), URL-safe.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Starts a session for `account_id`; returns the cookie token.
    pub async fn create_session(&self, account_id: i64) -> Result<String> {
        let token = random_token();
        let t = now();
        // Old sessions of anyone go here, not in a timer: logins are rare enough.
        sqlx::query("DELETE FROM sessions WHERE last_seen < ? OR created_at < ?")
            .bind(t - IDLE_SECS)
            .bind(t - ABSOLUTE_SECS)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at, last_seen)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash(&token))
        .bind(account_id)
        .bind(random_token())
        .bind(t)
        .bind(t)
        .execute(&self.writer)
        .await?;
        Ok(token)
    }

    /// The live session for a cookie token, with its (enabled) account; refreshes its idle
    /// timer. `None` for an unknown, expired or disabled one.
    pub async fn session(&self, token: &str) -> Result<Option<WebSession>> {
        let hash = token_hash(token);
        let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT account_id, csrf_token, created_at, last_seen FROM sessions WHERE token_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some((account_id, csrf_token, created_at, last_seen)) = row else {
            return Ok(None);
        };
        let t = now();
        if t - last_seen > IDLE_SECS || t - created_at > ABSOLUTE_SECS {
            self.end_session(token).await?;
            return Ok(None);
        }
        let Some(account) = self.account(account_id).await?.filter(|a| !a.disabled) else {
            self.end_session(token).await?;
            return Ok(None);
        };
        if t - last_seen >= TOUCH_SECS {
            sqlx::query("UPDATE sessions SET last_seen = ? WHERE token_hash = ?")
                .bind(t)
                .bind(&hash)
                .execute(&self.writer)
                .await?;
        }
        Ok(Some(WebSession {
            account,
            csrf_token,
        }))
    }

    pub async fn end_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash(token))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends every session of an account (after a password reset or when it is disabled).
    pub async fn end_sessions_of(&self, account_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE account_id = ?")
            .bind(account_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
