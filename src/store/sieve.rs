//! Sieve scripts and what running them needs to remember (migration 0017): each account's
//! scripts by name (source and compiled form, at most one active), the vacation replies sent,
//! the last runtime error, and per domain whether users may forward to external addresses.
//!
//! The store keeps text: compiling a script and what its compiled form means are
//! `crate::sieve`'s; ManageSieve and the webmail's rules pages write through [`Store::put_sieve`],
//! the delivery path reads [`Store::active_sieve`]. Refusals a client should be told about
//! (quota, names, the active script) come back as a [`SieveRefusal`] inside `Ok`, so a caller
//! can map each to its protocol's answer; `Err` is the store failing.

use super::{Result, Store, StoreError, now};

/// Scripts an account may keep (RFC 5804 `QUOTA/MAXSCRIPTS`).
pub const MAX_SCRIPTS: i64 = 32;
/// Source octets an account's scripts may hold together (RFC 5804 `QUOTA/MAXSIZE`).
pub const MAX_TOTAL_BYTES: i64 = 1 << 20;
/// Longest script name, in characters (RFC 5804 §1.6: servers take at least 128 octets).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest runtime error message kept, in characters.
pub const MAX_ERROR_CHARS: usize = 1000;
/// Expired vacation rows removed by each reply recorded: the table stays small without a task.
const PRUNE_BATCH: i64 = 100;

/// Why a script operation was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SieveRefusal {
    /// The account has [`MAX_SCRIPTS`] already.
    MaxScripts,
    /// The account's scripts would hold more than [`MAX_TOTAL_BYTES`].
    MaxSize,
    /// No script of that name.
    Nonexistent,
    /// A script of the new name exists already.
    AlreadyExists,
    /// The active script cannot be deleted.
    Active,
    /// Not a script name (see [`valid_name`]).
    InvalidName,
}

/// A script as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScriptInfo {
    pub name: String,
    pub active: bool,
    /// Source octets.
    pub size: u64,
    pub updated: i64,
}

/// A script with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    pub name: String,
    pub source: String,
    /// The compiled form as it was stored (`sieve::Script::to_stored`).
    pub compiled: String,
    pub active: bool,
    pub updated: i64,
}

/// The active script, as the delivery path reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSieve {
    pub name: String,
    pub source: String,
    pub compiled: String,
}

/// The last runtime error of an account's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveError {
    pub at: i64,
    pub script: String,
    pub message: String,
}

/// A ManageSieve script name (RFC 5804 §1.6): 1 to [`MAX_NAME_CHARS`] characters, none of them
/// a control character (C0, DEL, C1) or the line and paragraph separators U+2028/U+2029.
pub fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&count)
        && !name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// The quota rule, shared by [`Store::put_sieve`] and [`Store::sieve_space`]: an account with
/// `count` scripts of `total` octets stores one of `size` octets, replacing one of `replaced`
/// octets when the name exists.
fn fits(count: i64, total: i64, replaced: Option<i64>, size: i64) -> Option<SieveRefusal> {
    if replaced.is_none() && count >= MAX_SCRIPTS {
        return Some(SieveRefusal::MaxScripts);
    }
    let after = total - replaced.unwrap_or(0) + size;
    (after > MAX_TOTAL_BYTES).then_some(SieveRefusal::MaxSize)
}

type ScriptRow = (String, String, String, i64, i64);

/// What [`fits`] needs, read inside the caller's transaction or from the reader.
async fn usage<'e, E>(executor: E, account_id: i64, name: &str) -> Result<(i64, i64, Option<i64>)>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row: (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(source AS BLOB))), 0),
                MAX(CASE WHEN name = ? THEN LENGTH(CAST(source AS BLOB)) END)
         FROM sieve_scripts WHERE account_id = ?",
    )
    .bind(name)
    .bind(account_id)
    .fetch_one(executor)
    .await?;
    Ok(row)
}

impl Store {
    /// The account's scripts, by name.
    pub async fn sieve_scripts(&self, account_id: i64) -> Result<Vec<SieveScriptInfo>> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, active, LENGTH(CAST(source AS BLOB)), updated
             FROM sieve_scripts WHERE account_id = ? ORDER BY name",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, active, size, updated)| SieveScriptInfo {
                name,
                active: active != 0,
                size: size.max(0) as u64,
                updated,
            })
            .collect())
    }

    /// One script of the account.
    pub async fn sieve_script(&self, account_id: i64, name: &str) -> Result<Option<SieveScript>> {
        let row: Option<ScriptRow> = sqlx::query_as(
            "SELECT name, source, compiled, active, updated
             FROM sieve_scripts WHERE account_id = ? AND name = ?",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(
            row.map(|(name, source, compiled, active, updated)| SieveScript {
                name,
                source,
                compiled,
                active: active != 0,
                updated,
            }),
        )
    }

    /// Whether a script of `size` octets named `name` would fit the account's quota now
    /// (ManageSieve HAVESPACE); the name is checked too.
    pub async fn sieve_space(
        &self,
        account_id: i64,
        name: &str,
        size: u64,
    ) -> Result<std::result::Result<(), SieveRefusal>> {
        if !valid_name(name) {
            return Ok(Err(SieveRefusal::InvalidName));
        }
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let (count, total, replaced) = usage(&self.reader, account_id, name).await?;
        Ok(fits(count, total, replaced, size).map_or(Ok(()), Err))
    }

    /// Stores a script under `name`, replacing one of that name (which stays active if it
    /// was), within the account's quota. Replacing the active script clears the account's
    /// recorded runtime error, which was about the old text.
    pub async fn put_sieve(
        &self,
        account_id: i64,
        name: &str,
        source: &str,
        compiled: &str,
    ) -> Result<std::result::Result<(), SieveRefusal>> {
        if !valid_name(name) {
            return Ok(Err(SieveRefusal::InvalidName));
        }
        let size = i64::try_from(source.len()).unwrap_or(i64::MAX);
        let mut tx = self.write().await?;
        let (count, total, replaced) = usage(&mut *tx, account_id, name).await?;
        if let Some(refusal) = fits(count, total, replaced, size) {
            return Ok(Err(refusal));
        }
        let active: Option<i64> = sqlx::query_scalar(
            "INSERT INTO sieve_scripts (account_id, name, source, compiled, active, updated)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)
             ON CONFLICT (account_id, name)
             DO UPDATE SET source = ?3, compiled = ?4, updated = ?5
             RETURNING active",
        )
        .bind(account_id)
        .bind(name)
        .bind(source)
        .bind(compiled)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some_and(|a| a != 0) {
            clear_error(&mut tx, account_id).await?;
        }
        tx.commit().await?;
        self.sieve_changed();
        Ok(Ok(()))
    }

    /// Makes `name` the account's active script, or with `None` leaves none active. Changing
    /// which script runs clears the recorded runtime error.
    pub async fn set_active_sieve(
        &self,
        account_id: i64,
        name: Option<&str>,
    ) -> Result<std::result::Result<(), SieveRefusal>> {
        let mut tx = self.write().await?;
        if let Some(name) = name {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?")
                    .bind(account_id)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Ok(Err(SieveRefusal::Nonexistent));
            }
        }
        // Off first: the unique index allows one active row at any moment.
        sqlx::query("UPDATE sieve_scripts SET active = 0 WHERE account_id = ? AND active = 1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            sqlx::query("UPDATE sieve_scripts SET active = 1 WHERE account_id = ? AND name = ?")
                .bind(account_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        clear_error(&mut tx, account_id).await?;
        tx.commit().await?;
        self.sieve_changed();
        Ok(Ok(()))
    }

    /// Deletes a script that is not the active one.
    pub async fn delete_sieve(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<std::result::Result<(), SieveRefusal>> {
        let mut tx = self.write().await?;
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT active FROM sieve_scripts WHERE account_id = ? AND name = ?",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        match active {
            None => return Ok(Err(SieveRefusal::Nonexistent)),
            Some(a) if a != 0 => return Ok(Err(SieveRefusal::Active)),
            Some(_) => {}
        }
        sqlx::query("DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?")
            .bind(account_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.sieve_changed();
        Ok(Ok(()))
    }

    /// Renames a script; the active one stays active under its new name.
    pub async fn rename_sieve(
        &self,
        account_id: i64,
        old: &str,
        new: &str,
    ) -> Result<std::result::Result<(), SieveRefusal>> {
        if !valid_name(new) {
            return Ok(Err(SieveRefusal::InvalidName));
        }
        let mut tx = self.write().await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sieve_scripts WHERE account_id = ? AND name IN (?, ?)",
        )
        .bind(account_id)
        .bind(old)
        .bind(new)
        .fetch_all(&mut *tx)
        .await?;
        if !names.iter().any(|n| n == old) {
            return Ok(Err(SieveRefusal::Nonexistent));
        }
        if names.iter().any(|n| n == new) {
            return Ok(Err(SieveRefusal::AlreadyExists));
        }
        sqlx::query("UPDATE sieve_scripts SET name = ? WHERE account_id = ? AND name = ?")
            .bind(new)
            .bind(account_id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.sieve_changed();
        Ok(Ok(()))
    }

    /// A number that changes after every change to any account's scripts in this process
    /// (the only writer of scripts: ManageSieve, the webmail and delivery share it), so
    /// what was read before it last changed is still what the store holds.
    pub fn sieve_generation(&self) -> u64 {
        self.sieve_changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn sieve_changed(&self) {
        self.sieve_changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The account's active script, for delivery.
    pub async fn active_sieve(&self, account_id: i64) -> Result<Option<ActiveSieve>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT name, source, compiled FROM sieve_scripts
             WHERE account_id = ? AND active = 1",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(name, source, compiled)| ActiveSieve {
            name,
            source,
            compiled,
        }))
    }

    /// RFC 5230's once-per-period rule: true when no reply for `handle` went to `sender`
    /// within the period before `now`, and then the reply is recorded (silencing `sender`
    /// until `now + period_secs`) in the same write transaction, so two deliveries at once
    /// cannot both reply. Each recorded reply also removes up to a hundred expired rows.
    pub async fn vacation_reply_due(
        &self,
        account_id: i64,
        handle: &str,
        sender: &str,
        period_secs: u64,
        now: i64,
    ) -> Result<bool> {
        let until = now.saturating_add(i64::try_from(period_secs).unwrap_or(i64::MAX));
        let mut tx = self.write().await?;
        let silenced: Option<i64> = sqlx::query_scalar(
            "SELECT until FROM sieve_vacation
             WHERE account_id = ? AND handle = ? AND sender = ? AND until > ?",
        )
        .bind(account_id)
        .bind(handle)
        .bind(sender)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if silenced.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sieve_vacation (account_id, handle, sender, until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id, handle, sender) DO UPDATE SET until = ?4",
        )
        .bind(account_id)
        .bind(handle)
        .bind(sender)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM sieve_vacation WHERE (account_id, handle, sender) IN
             (SELECT account_id, handle, sender FROM sieve_vacation WHERE until <= ? LIMIT ?)",
        )
        .bind(now)
        .bind(PRUNE_BATCH)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes every vacation row expired at `now`; how many.
    pub async fn prune_vacation_replies(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sieve_vacation WHERE until <= ?")
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records the runtime error of `script` for the account (replacing the previous one);
    /// the message is cut to [`MAX_ERROR_CHARS`].
    pub async fn record_sieve_error(
        &self,
        account_id: i64,
        script: &str,
        message: &str,
        at: i64,
    ) -> Result<()> {
        let message: String = message.chars().take(MAX_ERROR_CHARS).collect();
        sqlx::query(
            "INSERT INTO sieve_errors (account_id, at, script, message) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id) DO UPDATE SET at = ?2, script = ?3, message = ?4",
        )
        .bind(account_id)
        .bind(at)
        .bind(script)
        .bind(message)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The account's last recorded runtime error, if any.
    pub async fn sieve_error(&self, account_id: i64) -> Result<Option<SieveError>> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT at, script, message FROM sieve_errors WHERE account_id = ?")
                .bind(account_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|(at, script, message)| SieveError {
            at,
            script,
            message,
        }))
    }

    /// Forgets the account's runtime error (the user has seen it, or changed the script).
    pub async fn clear_sieve_error(&self, account_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        clear_error(&mut tx, account_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether users of `domain` may forward mail to addresses outside our domains.
    pub async fn domain_allows_external_forward(&self, domain: &str) -> Result<bool> {
        let on: Option<i64> = sqlx::query_scalar(
            "SELECT allow_external_forward FROM domains WHERE name = ? COLLATE NOCASE",
        )
        .bind(domain.trim().trim_end_matches('.'))
        .fetch_optional(&self.reader)
        .await?;
        on.map(|v| v != 0)
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))
    }

    /// Allows or forbids external forwarding for the users of `domain`.
    pub async fn set_domain_allows_external_forward(&self, domain: &str, on: bool) -> Result<()> {
        let done = sqlx::query(
            "UPDATE domains SET allow_external_forward = ? WHERE name = ? COLLATE NOCASE",
        )
        .bind(on)
        .bind(domain.trim().trim_end_matches('.'))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain {domain}")));
        }
        Ok(())
    }

    /// The same flag for the domain of an account, as delivery asks it; `NotFound` for an
    /// unknown account.
    pub async fn account_may_forward_externally(&self, account_id: i64) -> Result<bool> {
        let on: Option<i64> = sqlx::query_scalar(
            "SELECT d.allow_external_forward FROM accounts a
             JOIN domains d ON d.id = a.domain_id WHERE a.id = ?",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?;
        on.map(|v| v != 0)
            .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))
    }
}

async fn clear_error(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, account_id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sieve_errors WHERE account_id = ?")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
