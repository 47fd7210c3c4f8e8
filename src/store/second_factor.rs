//! Second factors for the web sign-in: TOTP (RFC 6238) and passkeys (WebAuthn), and the
//! one-time recovery codes (migration 0010). "Two-factor sign-in on" is one question asked by
//! the web sign-in, the mail protocols (which then take app passwords only) and autoconfig.
//!
//! Who *must* have one: every account of a domain with `domains.require_two_factor`, and every
//! admin while the meta key [`REQUIRE_ADMINS`] is `1`.
//!
//! The checks that make a code single-use are single statements here (`UPDATE … WHERE
//! last_step < ?`, `UPDATE … WHERE used_at IS NULL`), so two requests racing with one code
//! cannot both win.

use sqlx::Row;

use super::{Result, Store, StoreError, now};

/// The meta key that requires two-factor sign-in of every admin (`1`) or not.
pub const REQUIRE_ADMINS: &str = "require_two_factor_admins";

/// An account's TOTP secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSecret {
    pub secret: Vec<u8>,
    /// Whether the user confirmed it with a code (only then does it count).
    pub confirmed: bool,
    /// The last time step accepted.
    pub last_step: i64,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: i64,
    pub account_id: i64,
    pub credential_id: Vec<u8>,
    /// The COSE_Key as the authenticator sent it.
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A new passkey, verified by the caller.
pub struct NewPasskey<'a> {
    pub account_id: i64,
    pub credential_id: &'a [u8],
    pub public_key: &'a [u8],
    pub sign_count: i64,
    pub name: &'a str,
    pub user_handle: &'a [u8],
}

fn passkey(r: &sqlx::sqlite::SqliteRow) -> Result<Passkey> {
    Ok(Passkey {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        credential_id: r.try_get("credential_id")?,
        public_key: r.try_get("public_key")?,
        sign_count: r.try_get("sign_count")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

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

    /// Whether the account must sign in to the web with a second factor: its domain requires
    /// it, or it is an admin and every admin must.
    pub async fn second_factor_required(&self, account_id: i64) -> Result<bool> {
        let required: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM accounts a JOIN domains d ON d.id = a.domain_id
                            WHERE a.id = ? AND d.require_two_factor != 0)
                 OR EXISTS (SELECT 1 FROM accounts a, meta m
                            WHERE a.id = ? AND a.is_admin != 0 AND m.key = ? AND m.value = '1')",
        )
        .bind(account_id)
        .bind(account_id)
        .bind(REQUIRE_ADMINS)
        .fetch_one(&self.reader)
        .await?;
        Ok(required != 0)
    }

    /// Whether every account of `domain` must use a second factor.
    pub async fn domain_requires_second_factor(&self, domain: &str) -> Result<bool> {
        let on: Option<i64> = sqlx::query_scalar(
            "SELECT require_two_factor FROM domains WHERE name = ? COLLATE NOCASE",
        )
        .bind(domain.trim().trim_end_matches('.'))
        .fetch_optional(&self.reader)
        .await?;
        on.map(|v| v != 0)
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))
    }

    /// Requires (or stops requiring) a second factor of every account of `domain`.
    pub async fn set_domain_requires_second_factor(&self, domain: &str, on: bool) -> Result<()> {
        let done =
            sqlx::query("UPDATE domains SET require_two_factor = ? WHERE name = ? COLLATE NOCASE")
                .bind(on)
                .bind(domain.trim().trim_end_matches('.'))
                .execute(&self.writer)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain {domain}")));
        }
        Ok(())
    }

    /// Whether every admin must use a second factor.
    pub async fn admins_require_second_factor(&self) -> Result<bool> {
        Ok(self.meta(REQUIRE_ADMINS).await?.as_deref() == Some("1"))
    }

    // --- TOTP ---

    /// The account's TOTP secret, confirmed or being set up.
    pub async fn totp(&self, account_id: i64) -> Result<Option<TotpSecret>> {
        let row: Option<(Vec<u8>, Option<i64>, i64)> =
            sqlx::query_as("SELECT secret, confirmed_at, last_step FROM totp WHERE account_id = ?")
                .bind(account_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|(secret, confirmed_at, last_step)| TotpSecret {
            secret,
            confirmed: confirmed_at.is_some(),
            last_step,
        }))
    }

    /// Starts setting up TOTP with a new secret, replacing one not yet confirmed. A confirmed
    /// secret is kept (Conflict): it is removed first, on purpose.
    pub async fn begin_totp(&self, account_id: i64, secret: &[u8]) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO totp (account_id, secret, confirmed_at, last_step, created_at)
             VALUES (?, ?, NULL, 0, ?)
             ON CONFLICT(account_id) DO UPDATE SET secret = excluded.secret,
                 created_at = excluded.created_at, last_step = 0
             WHERE totp.confirmed_at IS NULL",
        )
        .bind(account_id)
        .bind(secret)
        .bind(now())
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "two-factor sign-in with an app is already on".into(),
            ));
        }
        Ok(())
    }

    /// Confirms the TOTP set up (the user typed a code of time step `step`) and replaces the
    /// recovery codes by `code_hashes`, in one transaction. False when there was nothing to
    /// confirm (already confirmed, or removed meanwhile).
    pub async fn confirm_totp(
        &self,
        account_id: i64,
        step: i64,
        code_hashes: &[String],
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE totp SET confirmed_at = ?, last_step = ?
             WHERE account_id = ? AND confirmed_at IS NULL",
        )
        .bind(now())
        .bind(step)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, account_id, code_hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends time step `step` of the account's confirmed TOTP: true only if it is later than
    /// the last one accepted, so a code signs in once.
    pub async fn use_totp_step(&self, account_id: i64, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE totp SET last_step = ?
             WHERE account_id = ? AND confirmed_at IS NOT NULL AND last_step < ?",
        )
        .bind(step)
        .bind(account_id)
        .bind(step)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns TOTP off for the account.
    pub async fn remove_totp(&self, account_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM totp WHERE account_id = ?")
            .bind(account_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // --- Recovery codes ---

    /// Replaces the account's recovery codes by `code_hashes`.
    pub async fn set_recovery_codes(&self, account_id: i64, code_hashes: &[String]) -> Result<()> {
        let mut tx = self.write().await?;
        replace_recovery_codes(&mut tx, account_id, code_hashes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends the recovery code with hash `code_hash`: true once, false after (or if unknown).
    pub async fn use_recovery_code(&self, account_id: i64, code_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ?
             WHERE account_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(now())
        .bind(account_id)
        .bind(code_hash)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many unused recovery codes the account has.
    pub async fn recovery_codes_left(&self, account_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ? AND used_at IS NULL",
        )
        .bind(account_id)
        .fetch_one(&self.reader)
        .await?)
    }

    // --- Passkeys ---

    /// Stores a verified passkey. A credential id already registered (to anyone) is a Conflict.
    pub async fn add_passkey(&self, new: NewPasskey<'_>) -> Result<i64> {
        let done = sqlx::query(
            "INSERT INTO passkeys (account_id, credential_id, public_key, sign_count, name,
                                   created_at, user_handle)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(credential_id) DO NOTHING",
        )
        .bind(new.account_id)
        .bind(new.credential_id)
        .bind(new.public_key)
        .bind(new.sign_count)
        .bind(new.name)
        .bind(now())
        .bind(new.user_handle)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "this passkey is already registered".into(),
            ));
        }
        Ok(done.last_insert_rowid())
    }

    /// The account's passkeys, oldest first.
    pub async fn passkeys(&self, account_id: i64) -> Result<Vec<Passkey>> {
        let rows = sqlx::query(
            "SELECT id, account_id, credential_id, public_key, sign_count, name, created_at,
                    last_used_at FROM passkeys WHERE account_id = ? ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(passkey).collect()
    }

    /// The passkey with this credential id, whoever it belongs to.
    pub async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<Passkey>> {
        let row = sqlx::query(
            "SELECT id, account_id, credential_id, public_key, sign_count, name, created_at,
                    last_used_at FROM passkeys WHERE credential_id = ?",
        )
        .bind(credential_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(passkey).transpose()
    }

    /// The user handle given to the account's passkeys (a new random one for its first).
    pub async fn passkey_user_handle(&self, account_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT user_handle FROM passkeys WHERE account_id = ? AND length(user_handle) > 0
             LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Records a sign-in with passkey `id` whose authenticator now counts `sign_count`. False
    /// when the counter did not move forward (a cloned authenticator) while it is in use:
    /// authenticators that keep no counter send 0 every time, which stays accepted.
    pub async fn use_passkey(&self, id: i64, sign_count: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE passkeys SET sign_count = ?, last_used_at = ?
             WHERE id = ? AND ((sign_count = 0 AND ? = 0) OR sign_count < ?)",
        )
        .bind(sign_count)
        .bind(now())
        .bind(id)
        .bind(sign_count)
        .bind(sign_count)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes one of the account's passkeys; false if it has none with that id.
    pub async fn remove_passkey(&self, account_id: i64, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM passkeys WHERE id = ? AND account_id = ?")
            .bind(id)
            .bind(account_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes every second factor of the account (TOTP, recovery codes, passkeys) and its
    /// pending sign-ins: the admin's reset, for a user who lost their phone.
    pub async fn reset_second_factor(&self, account_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        for sql in [
            "DELETE FROM totp WHERE account_id = ?",
            "DELETE FROM recovery_codes WHERE account_id = ?",
            "DELETE FROM passkeys WHERE account_id = ?",
            "DELETE FROM pending_sign_ins WHERE account_id = ?",
        ] {
            sqlx::query(sql).bind(account_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn replace_recovery_codes(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    account_id: i64,
    code_hashes: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = ?")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    for hash in code_hashes {
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES (?, ?)")
            .bind(account_id)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Ends the web sessions of every account that must have a second factor and has none,
    /// when a requirement is switched on: they sign in again, and get only the set-up page.
    /// Returns how many sessions ended.
    pub async fn end_sessions_lacking_second_factor(&self) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE account_id IN (
                 SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id
                 WHERE (d.require_two_factor != 0
                        OR (a.is_admin != 0
                            AND EXISTS (SELECT 1 FROM meta WHERE key = ? AND value = '1')))
                   AND NOT EXISTS (SELECT 1 FROM totp t
                                   WHERE t.account_id = a.id AND t.confirmed_at IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.account_id = a.id))",
        )
        .bind(REQUIRE_ADMINS)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
