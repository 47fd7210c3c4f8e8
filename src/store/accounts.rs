//! Accounts: creation (with the default mailboxes), passwords, quotas, removal, and recipient
//! resolution through aliases and catch-alls.

use super::mailboxes::create_default_mailboxes;
use super::{Result, Store, StoreError, now};
use crate::address::Address;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: i64,
    pub address: String,
    pub domain_id: i64,
    pub password_hash: String,
    pub display_name: String,
    /// 0 means unlimited.
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub message_count: i64,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// Appended by the webmail to new messages.
    pub signature: String,
}

pub struct NewAccount<'a> {
    pub address: &'a str,
    /// An argon2id PHC string (see `auth::password::hash`).
    pub password_hash: &'a str,
    pub quota_bytes: u64,
    pub is_admin: bool,
}

/// Where mail for one address goes, after following aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub local: Vec<Account>,
    pub remote: Vec<String>,
}

const ACCOUNT_COLUMNS: &str = "id, address, domain_id, password_hash, display_name, quota_bytes, used_bytes, message_count, is_admin, disabled, created_at, signature";
/// Aliases may point to aliases; this bounds the chain (and breaks loops).
const MAX_ALIAS_DEPTH: usize = 8;

impl Store {
    pub async fn create_account(&self, new: NewAccount<'_>) -> Result<Account> {
        let address = Address::parse(new.address).map_err(StoreError::Invalid)?;
        let quota = i64::try_from(new.quota_bytes)
            .map_err(|_| StoreError::Invalid("quota is too large".into()))?;
        let text = address.to_string();
        let mut tx = self.write().await?;
        let domain_id: i64 = sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
            .bind(&address.domain)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {}", address.domain)))?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE address = ?")
            .bind(&text)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "account {text} already exists"
            )));
        }
        let alias: Option<String> =
            sqlx::query_scalar("SELECT source FROM aliases WHERE source = ? LIMIT 1")
                .bind(&text)
                .fetch_optional(&mut *tx)
                .await?;
        if alias.is_some() {
            return Err(StoreError::Conflict(format!(
                "{text} is an alias; remove the alias first"
            )));
        }
        // Never an id a removed account had: a session of that account still holds it.
        let id = super::mailboxes::next_id(&mut tx, super::mailboxes::Counter::Account).await?;
        let id = sqlx::query(
            "INSERT INTO accounts (id, address, domain_id, password_hash, quota_bytes, is_admin, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&text)
        .bind(domain_id)
        .bind(new.password_hash)
        .bind(quota)
        .bind(new.is_admin)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        create_default_mailboxes(&mut tx, id).await?;
        tx.commit().await?;
        self.account(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {text}")))
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// The account with this address, compared without case.
    pub async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(address.trim())
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Accounts ordered by address, optionally of one domain.
    pub async fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts
             WHERE ?1 IS NULL OR domain_id = (SELECT id FROM domains WHERE name = ?1)
             ORDER BY address"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(domain)
            .fetch_all(&self.reader)
            .await?)
    }

    pub async fn account_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.reader)
            .await?)
    }

    pub async fn set_password_hash(&self, address: &str, hash: &str) -> Result<()> {
        self.update_account(address, "password_hash", hash.to_string())
            .await
    }

    pub async fn set_quota(&self, address: &str, quota_bytes: u64) -> Result<()> {
        let quota = i64::try_from(quota_bytes)
            .map_err(|_| StoreError::Invalid("quota is too large".into()))?;
        self.update_account(address, "quota_bytes", quota).await
    }

    pub async fn set_disabled(&self, address: &str, disabled: bool) -> Result<()> {
        self.update_account(address, "disabled", disabled).await
    }

    pub async fn set_admin(&self, address: &str, admin: bool) -> Result<()> {
        self.update_account(address, "is_admin", admin).await
    }

    pub async fn set_display_name(&self, address: &str, name: &str) -> Result<()> {
        self.update_account(address, "display_name", name.trim().to_string())
            .await
    }

    pub async fn set_signature(&self, address: &str, signature: &str) -> Result<()> {
        self.update_account(address, "signature", signature.to_string())
            .await
    }

    async fn update_account<T>(&self, address: &str, column: &'static str, value: T) -> Result<()>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'static,
    {
        // `column` is one of the literals above, never input.
        let sql = format!("UPDATE accounts SET {column} = ? WHERE address = ?");
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(address.trim())
            .execute(&self.writer)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("account {}", address.trim())));
        }
        Ok(())
    }

    /// Removes an account with all its mail, its web sessions, and alias targets pointing at it.
    pub async fn remove_account(&self, address: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE address = ?")
            .bind(address.trim())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {}", address.trim())))?;
        // Release the bodies first: each message holds one reference to its blob.
        let blobs: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT m.blob_id, COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE b.account_id = ? GROUP BY m.blob_id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        super::blobs::release_many(&mut tx, &blobs).await?;
        sqlx::query("DELETE FROM aliases WHERE target = ?")
            .bind(address.trim())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.bus
            .announce(super::Change::MailboxesChanged { account_id: id });
        Ok(())
    }

    /// Follows aliases and catch-alls from `address`. `None` when the address is not ours to
    /// deliver: an unknown local part of a local domain, or another domain altogether (see
    /// [`Store::is_local_domain`] to tell the two apart). Disabled accounts still receive mail.
    pub async fn expand_recipient(&self, address: &str) -> Result<Option<Expansion>> {
        let mut out = Expansion::default();
        let mut seen: Vec<String> = Vec::new();
        let mut queue = vec![(address.trim().to_lowercase(), 0usize)];
        let mut found = false;
        while let Some((addr, depth)) = queue.pop() {
            if seen.contains(&addr) {
                continue;
            }
            seen.push(addr.clone());
            let Ok(parsed) = Address::parse(&addr) else {
                continue;
            };
            // An account first: the common case answers in one query. (Accounts exist only in
            // local domains, so the domain check can wait.)
            if let Some(account) = self.account_by_address(&addr).await? {
                if !out.local.iter().any(|a| a.id == account.id) {
                    out.local.push(account);
                }
                found = true;
                continue;
            }
            if !self.is_local_domain(&parsed.domain).await? {
                if depth > 0 {
                    out.remote.push(addr);
                    found = true;
                }
                continue;
            }
            // An alias of the address itself, then the required addresses (postmaster@ and
            // abuse@ exist in every domain, RFC 5321 §4.5.1), then the catch-all.
            let targets = match self.alias(&addr).await? {
                Some(a) => a.targets,
                None => match self.required_targets(&parsed).await? {
                    Some(targets) => targets,
                    None => match self.alias(&format!("@{}", parsed.domain)).await? {
                        Some(a) => a.targets,
                        None => continue,
                    },
                },
            };
            if depth >= MAX_ALIAS_DEPTH {
                tracing::warn!("alias chain from {address} is deeper than {MAX_ALIAS_DEPTH}");
                continue;
            }
            queue.extend(targets.into_iter().map(|t| (t.to_lowercase(), depth + 1)));
        }
        Ok(found.then_some(out))
    }

    pub async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
            .bind(domain.trim().trim_end_matches('.'))
            .fetch_optional(&self.reader)
            .await?;
        Ok(id.is_some())
    }
}
