//! The sign-in history (migration 0010): every sign-in of an existing account on every
//! protocol, successful or not, for the user's Security page. Failures for unknown names are
//! not kept (they would let anyone fill the table); each account keeps its last
//! [`KEPT_PER_ACCOUNT`] rows, so an attack on one account costs a bounded number of rows.

use super::{Result, Store, now};

/// Rows kept per account; the Security page shows the last 20.
pub const KEPT_PER_ACCOUNT: i64 = 100;

/// One sign-in as recorded and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub account_id: i64,
    /// Unix seconds.
    pub at: i64,
    pub ip: String,
    /// `imap`, `pop3`, `smtp`, `web`, `managesieve`.
    pub protocol: String,
    /// `password`, `app password <name>`, `totp`, `passkey`, `recovery code`.
    pub method: String,
    pub success: bool,
}

impl Store {
    /// Records sign-ins in one write transaction (callers batch them off the login path) and
    /// trims each account they concern to its last [`KEPT_PER_ACCOUNT`] rows.
    pub async fn record_sign_ins(&self, batch: &[SignIn]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for s in batch {
            sqlx::query(
                "INSERT INTO sign_ins (account_id, at, ip, protocol, method, success)
                 SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)",
            )
            .bind(s.account_id)
            .bind(s.at)
            .bind(&s.ip)
            .bind(&s.protocol)
            .bind(&s.method)
            .bind(s.success)
            .bind(s.account_id)
            .execute(&mut *tx)
            .await?;
        }
        let mut accounts: Vec<i64> = batch.iter().map(|s| s.account_id).collect();
        accounts.sort_unstable();
        accounts.dedup();
        for account_id in accounts {
            sqlx::query(
                "DELETE FROM sign_ins WHERE account_id = ? AND id NOT IN
                 (SELECT id FROM sign_ins WHERE account_id = ? ORDER BY id DESC LIMIT ?)",
            )
            .bind(account_id)
            .bind(account_id)
            .bind(KEPT_PER_ACCOUNT)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The account's last `limit` sign-ins, newest first.
    pub async fn recent_sign_ins(&self, account_id: i64, limit: i64) -> Result<Vec<SignIn>> {
        let rows: Vec<(i64, String, String, String, bool)> = sqlx::query_as(
            "SELECT at, ip, protocol, method, success FROM sign_ins
             WHERE account_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, ip, protocol, method, success)| SignIn {
                account_id,
                at,
                ip,
                protocol,
                method,
                success,
            })
            .collect())
    }

    /// A sign-in stamped now, for callers that record one as it happens.
    pub fn sign_in_now(
        account_id: i64,
        ip: &str,
        protocol: &str,
        method: &str,
        success: bool,
    ) -> SignIn {
        SignIn {
            account_id,
            at: now(),
            ip: ip.to_string(),
            protocol: protocol.to_string(),
            method: method.to_string(),
            success,
        }
    }
}
