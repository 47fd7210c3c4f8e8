//! Web sessions for the admin panel and the webmail.
//!
//! The cookie holds a random token; the database keeps only its SHA-256, so a copy of the
//! database (a backup) cannot be replayed as a login. Each session carries its own CSRF token,
//! which every form posts back. Sessions end after [`IDLE_SECS`] without a request, after
//! [`ABSOLUTE_SECS`] in any case, at logout, when the account is disabled or removed, and when
//! its owner signs one out on the Security page (by its `public_id`, a random id that is not
//! the token's hash, so a page never shows what the database keys sessions by).

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

/// The most of a User-Agent or address kept with a session (characters): enough to tell
/// browsers apart, bounded whatever a client sends.
pub const MAX_CLIENT_TEXT: usize = 256;

/// The most sessions [`Store::sessions_of`] lists (each costs a sign-in, and they end within a
/// day, so only a scripted account gets near it; "sign out everywhere else" still ends all).
pub const MAX_LISTED: i64 = 100;

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub account: Account,
    pub csrf_token: String,
    /// The session's public id (see [`SessionInfo::id`]).
    pub id: String,
}

/// One live session of an account, for the Security page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Random and opaque (32 hex digits); names the session in forms.
    pub id: String,
    /// The address it was opened from.
    pub ip: String,
    /// The browser's User-Agent as sent at sign-in, at most [`MAX_CLIENT_TEXT`] characters.
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// `text` cut to [`MAX_CLIENT_TEXT`] characters, control characters dropped.
fn bounded(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT_TEXT)
        .collect()
}

/// A new random token (256 bits), URL-safe.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A session's public id: 128 random bits as hex, unrelated to its token.
fn public_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Starts a session for `account_id`, opened from `ip` by a browser that says it is
    /// `user_agent` (both kept bounded, for the Security page); returns the cookie token.
    pub async fn create_session(
        &self,
        account_id: i64,
        ip: &str,
        user_agent: &str,
    ) -> Result<String> {
        let token = random_token();
        let t = now();
        // Old sessions of anyone go here, not in a timer: logins are rare enough.
        sqlx::query("DELETE FROM sessions WHERE last_seen < ? OR created_at < ?")
            .bind(t - IDLE_SECS)
            .bind(t - ABSOLUTE_SECS)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at, last_seen,
                                   ip, user_agent, public_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash(&token))
        .bind(account_id)
        .bind(random_token())
        .bind(t)
        .bind(t)
        .bind(bounded(ip))
        .bind(bounded(user_agent))
        .bind(public_id())
        .execute(&self.writer)
        .await?;
        Ok(token)
    }

    /// The live session for a cookie token, with its (enabled) account; refreshes its idle
    /// timer. `None` for an unknown, expired or disabled one.
    pub async fn session(&self, token: &str) -> Result<Option<WebSession>> {
        let hash = token_hash(token);
        let row: Option<(i64, String, i64, i64, String)> = sqlx::query_as(
            "SELECT account_id, csrf_token, created_at, last_seen, public_id
             FROM sessions WHERE token_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some((account_id, csrf_token, created_at, last_seen, id)) = row else {
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
            id,
        }))
    }

    pub async fn end_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash(token))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The account's live sessions, the most recently used first, at most [`MAX_LISTED`].
    pub async fn sessions_of(&self, account_id: i64) -> Result<Vec<SessionInfo>> {
        let t = now();
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT public_id, ip, user_agent, created_at, last_seen FROM sessions
             WHERE account_id = ? AND last_seen >= ? AND created_at >= ?
             ORDER BY last_seen DESC, created_at DESC LIMIT ?",
        )
        .bind(account_id)
        .bind(t - IDLE_SECS)
        .bind(t - ABSOLUTE_SECS)
        .bind(MAX_LISTED)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, ip, user_agent, created_at, last_seen)| SessionInfo {
                id,
                ip,
                user_agent,
                created_at,
                last_seen,
            })
            .collect())
    }

    /// Ends the session with public id `id` if it is `account_id`'s; false when there is no
    /// such session of that account (another account's id ends nothing).
    pub async fn end_session_of(&self, account_id: i64, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND public_id = ?")
            .bind(account_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of the account but the one with public id `keep` ("sign out
    /// everywhere else", and after a password change); returns how many ended.
    pub async fn end_other_sessions(&self, account_id: i64, keep: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND public_id <> ?")
            .bind(account_id)
            .bind(keep)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
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
