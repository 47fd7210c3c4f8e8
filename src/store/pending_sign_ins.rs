//! Pending sign-ins (migration 0012): what the web keeps between the two steps of a sign-in,
//! and during a signed-in user's passkey registration. Each needs a correct password or a
//! session first, so their number is bounded by real sign-ins (the username-less passkey
//! sign-in, which anyone may start, is kept in memory instead: `web::ceremonies`). Not a session: nothing but the second step (or the setup
//! page, or the ceremony) accepts it. The cookie holds a random token, the table its SHA-256;
//! each lives [`PENDING_SECS`] and allows [`MAX_ATTEMPTS`] wrong codes.

use super::sessions::token_hash;
use super::{Result, Store, now, random_token};

/// How long a pending sign-in lives.
pub const PENDING_SECS: i64 = 5 * 60;
/// Wrong codes one pending sign-in allows; then the password must be typed again.
pub const MAX_ATTEMPTS: i64 = 5;

/// A pending sign-in as the second step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub account_id: Option<i64>,
    /// `second`, `enroll`, `passkey-login`, `passkey-register`.
    pub purpose: String,
    /// `admin` or `mail`: where the sign-in leads.
    pub area: String,
    pub next: String,
    pub challenge: Vec<u8>,
    pub attempts: i64,
}

/// A row: account, purpose, area, next, challenge, attempts.
type PendingRow = (Option<i64>, String, String, String, Vec<u8>, i64);

/// What a new pending sign-in is for.
pub struct NewPending<'a> {
    pub account_id: Option<i64>,
    pub purpose: &'a str,
    pub area: &'a str,
    pub next: &'a str,
    pub challenge: &'a [u8],
}

impl Store {
    /// Starts a pending sign-in; returns the cookie token.
    pub async fn create_pending(&self, new: NewPending<'_>) -> Result<String> {
        let token = random_token();
        let t = now();
        // Expired ones of anyone go here, as old sessions do in `create_session`.
        sqlx::query("DELETE FROM pending_sign_ins WHERE created_at < ?")
            .bind(t - PENDING_SECS)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "INSERT INTO pending_sign_ins (token_hash, account_id, purpose, area, next,
                                           challenge, attempts, created_at)
             VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        )
        .bind(token_hash(&token))
        .bind(new.account_id)
        .bind(new.purpose)
        .bind(new.area)
        .bind(new.next)
        .bind(new.challenge)
        .bind(t)
        .execute(&self.writer)
        .await?;
        Ok(token)
    }

    /// The live pending sign-in of this token, if any.
    pub async fn pending(&self, token: &str) -> Result<Option<Pending>> {
        let row: Option<PendingRow> = sqlx::query_as(
            "SELECT account_id, purpose, area, next, challenge, attempts FROM pending_sign_ins
             WHERE token_hash = ? AND created_at >= ? AND attempts < ?",
        )
        .bind(token_hash(token))
        .bind(now() - PENDING_SECS)
        .bind(MAX_ATTEMPTS)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(
            |(account_id, purpose, area, next, challenge, attempts)| Pending {
                account_id,
                purpose,
                area,
                next,
                challenge,
                attempts,
            },
        ))
    }

    /// Sets the WebAuthn challenge of a pending sign-in (a new one per ceremony).
    pub async fn set_pending_challenge(&self, token: &str, challenge: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE pending_sign_ins SET challenge = ? WHERE token_hash = ? AND created_at >= ?",
        )
        .bind(challenge)
        .bind(token_hash(token))
        .bind(now() - PENDING_SECS)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a wrong code; returns the attempts left (0: the pending sign-in is spent).
    pub async fn fail_pending(&self, token: &str) -> Result<i64> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE pending_sign_ins SET attempts = attempts + 1 WHERE token_hash = ?
             RETURNING attempts",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.writer)
        .await?;
        Ok(attempts.map_or(0, |a| (MAX_ATTEMPTS - a).max(0)))
    }

    /// Ends a pending sign-in (it succeeded, or was abandoned). True if it was still there:
    /// of two requests finishing one pending sign-in, one only gets a session.
    pub async fn end_pending(&self, token: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM pending_sign_ins WHERE token_hash = ?")
            .bind(token_hash(token))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
