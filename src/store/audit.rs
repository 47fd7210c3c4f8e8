//! The admin audit log (migration 0010): who created, changed or removed which domain,
//! account, alias, quota, password or second factor, and when.

use super::{Result, Store, now};

/// One audited action. `actor` is the admin's address, or `"cli"` for the command line.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub actor: &'a str,
    /// The address the request came from; empty for the CLI.
    pub ip: &'a str,
    /// What was done, as `object.verb`: `account.create`, `account.password`,
    /// `second_factor.reset`, ...
    pub action: &'a str,
    /// The domain, address or alias acted on.
    pub target: &'a str,
    /// Anything else worth keeping (a new quota, ...), never a secret.
    pub detail: &'a str,
}

impl Store {
    /// Records one action in the audit log.
    pub async fn audit(&self, entry: Audit<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, ip, action, target, detail)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(now())
        .bind(entry.actor)
        .bind(entry.ip)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
