//! Second factors for the web sign-in: TOTP (RFC 6238) and passkeys (WebAuthn), and the
//! one-time recovery codes (migration 0010). "Two-factor sign-in on" is one question asked by
//! the web sign-in, the mail protocols (which then take app passwords only) and autoconfig.

use super::{Result, Store};

impl Store {
    /// Whether the account has a second factor: a confirmed TOTP or a passkey.
    pub async fn second_factor_on(&self, account_id: i64) -> Result<bool> {
        let on: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM totp WHERE account_id = ? AND confirmed_at IS NOT NULL)
                 OR EXISTS (SELECT 1 FROM passkeys WHERE account_id = ?)",
        )
        .bind(account_id)
        .bind(account_id)
        .fetch_one(&self.reader)
        .await?;
        Ok(on != 0)
    }
}
