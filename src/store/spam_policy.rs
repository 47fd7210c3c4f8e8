//! What the spam filter decides with, besides token counts (migration 0015): thresholds per
//! domain and account, each account's always-allow and always-block lists, sender reputation
//! per account, and the DNS block/allow-list zones. The store keeps numbers and names; what
//! they mean is `spam::verdict`'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Result, SpamHam, Store, StoreError, now};

/// An account's filter settings as stored: `None` means "the level above decides" (account →
/// domain → server default in `spam::verdict`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpamPolicy {
    /// The account's domain has the filter on.
    pub enabled: bool,
    pub account_junk: Option<f64>,
    pub domain_junk: Option<f64>,
    pub domain_reject: Option<f64>,
    /// How many spam and ham messages the account's filter has learned from (read with the
    /// rest: the filter skips the token counts of an account that has learned too little).
    pub trained: SpamHam,
}

/// A domain's filter settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSpamPolicy {
    pub domain: String,
    pub enabled: bool,
    pub junk: Option<f64>,
    pub reject: Option<f64>,
}

/// One entry of an account's always-allow (`allow`) or always-block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderEntry {
    /// A lower-case address (`a@b`) or domain (`b`).
    pub entry: String,
    pub allow: bool,
}

/// A DNSBL (positive weight) or DNSWL (negative weight) zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub zone: String,
    pub weight: f64,
}

/// Entries an account's two lists may hold together.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Longest list entry (an address is at most 254 characters).
pub const MAX_ENTRY_LEN: usize = 254;
/// DNS list zones asked per message at most.
pub const MAX_ZONES: usize = 16;
/// Reputation keys looked up or counted in one call (a message has about ten).
pub const MAX_KEYS: usize = 64;
/// Reputation counts of deliveries held in memory before they are written; past this, new
/// ones are dropped until the next write (a flood must not grow memory).
const MAX_PENDING: usize = 50_000;

/// Reputation counts of deliveries not yet written: `(account, key) -> (spam, ham)`. Every
/// delivery counts its sender's keys; a write per delivery would double the fsyncs of SMTP
/// ingest, so the counts are added up here and written with the event counts, once a minute
/// and at shutdown. A crash loses a minute of them, never mail.
#[derive(Clone, Default)]
pub(super) struct Pending(Arc<Mutex<HashMap<(i64, String), SpamAndHam>>>);

/// Signed spam and ham counts to add.
type SpamAndHam = (i64, i64);

/// A domain's `enabled`, junk and reject thresholds and an account's junk threshold, as read.
type PolicyRow = (
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<i64>,
    Option<i64>,
);
/// A domain's name, `enabled`, junk and reject thresholds, as read.
type DomainPolicyRow = (String, Option<i64>, Option<f64>, Option<f64>);

impl Store {
    /// The account's filter settings; the filter is on for an unknown account's domain.
    pub async fn spam_policy(&self, account_id: i64) -> Result<SpamPolicy> {
        let row: Option<PolicyRow> = sqlx::query_as(
            "SELECT d.enabled, d.junk_threshold, d.reject_threshold, p.junk_threshold,
                    t.spam, t.ham
             FROM accounts a
             LEFT JOIN spam_domain_policy d ON d.domain_id = a.domain_id
             LEFT JOIN spam_account_policy p ON p.account_id = a.id
             LEFT JOIN spam_totals t ON t.account_id = a.id
             WHERE a.id = ?",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?;
        let Some((enabled, domain_junk, domain_reject, account_junk, spam, ham)) = row else {
            return Ok(SpamPolicy {
                enabled: true,
                ..SpamPolicy::default()
            });
        };
        Ok(SpamPolicy {
            enabled: enabled.is_none_or(|e| e != 0),
            account_junk,
            domain_junk,
            domain_reject,
            trained: SpamHam {
                spam: spam.unwrap_or(0).max(0) as u64,
                ham: ham.unwrap_or(0).max(0) as u64,
            },
        })
    }

    /// Sets (or with `None` clears) the account's own junk threshold.
    pub async fn set_account_junk_threshold(
        &self,
        account_id: i64,
        junk: Option<f64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO spam_account_policy (account_id, junk_threshold) VALUES (?, ?)
             ON CONFLICT(account_id) DO UPDATE SET junk_threshold = excluded.junk_threshold",
        )
        .bind(account_id)
        .bind(junk)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every domain's filter settings, by name (domains never configured: on, defaults).
    pub async fn domain_spam_policies(&self) -> Result<Vec<DomainSpamPolicy>> {
        let rows: Vec<DomainPolicyRow> = sqlx::query_as(
            "SELECT d.name, p.enabled, p.junk_threshold, p.reject_threshold
             FROM domains d LEFT JOIN spam_domain_policy p ON p.domain_id = d.id
             ORDER BY d.name",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(domain, enabled, junk, reject)| DomainSpamPolicy {
                domain,
                enabled: enabled.is_none_or(|e| e != 0),
                junk,
                reject,
            })
            .collect())
    }

    /// Sets a domain's filter settings; `NotFound` for an unknown domain.
    pub async fn set_domain_spam_policy(&self, policy: &DomainSpamPolicy) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO spam_domain_policy (domain_id, enabled, junk_threshold, reject_threshold)
             SELECT id, ?, ?, ? FROM domains WHERE name = ?
             ON CONFLICT(domain_id) DO UPDATE SET enabled = excluded.enabled,
                 junk_threshold = excluded.junk_threshold,
                 reject_threshold = excluded.reject_threshold",
        )
        .bind(i64::from(policy.enabled))
        .bind(policy.junk)
        .bind(policy.reject)
        .bind(&policy.domain)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain {}", policy.domain)));
        }
        Ok(())
    }

    /// The account's two lists, allowed first, then by entry.
    pub async fn spam_list(&self, account_id: i64) -> Result<Vec<SenderEntry>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT entry, allow FROM spam_lists WHERE account_id = ? ORDER BY allow DESC, entry",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(entry, allow)| SenderEntry {
                entry,
                allow: allow != 0,
            })
            .collect())
    }

    /// Puts `entry` (already normalised to lower case) on the allow or block list, moving it
    /// from the other one; at most [`MAX_LIST_ENTRIES`] per account.
    pub async fn set_spam_list_entry(
        &self,
        account_id: i64,
        entry: &str,
        allow: bool,
    ) -> Result<()> {
        if entry.is_empty() || entry.len() > MAX_ENTRY_LEN {
            return Err(StoreError::Invalid(format!(
                "a list entry is 1 to {MAX_ENTRY_LEN} characters"
            )));
        }
        let mut tx = self.write().await?;
        let (count, present): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(entry = ?), 0) FROM spam_lists WHERE account_id = ?",
        )
        .bind(entry)
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        if present == 0 && count >= MAX_LIST_ENTRIES as i64 {
            return Err(StoreError::Invalid(format!(
                "the lists hold at most {MAX_LIST_ENTRIES} entries"
            )));
        }
        sqlx::query(
            "INSERT INTO spam_lists (account_id, entry, allow) VALUES (?, ?, ?)
             ON CONFLICT(account_id, entry) DO UPDATE SET allow = excluded.allow",
        )
        .bind(account_id)
        .bind(entry)
        .bind(i64::from(allow))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes `entry` off the account's lists; whether it was there.
    pub async fn remove_spam_list_entry(&self, account_id: i64, entry: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM spam_lists WHERE account_id = ? AND entry = ?")
            .bind(account_id)
            .bind(entry)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The DNS list zones, by name.
    pub async fn spam_zones(&self) -> Result<Vec<Zone>> {
        let rows: Vec<(String, f64)> =
            sqlx::query_as("SELECT zone, weight FROM spam_zones ORDER BY zone")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(zone, weight)| Zone { zone, weight })
            .collect())
    }

    /// Adds a zone or changes its weight; at most [`MAX_ZONES`].
    pub async fn set_spam_zone(&self, zone: &str, weight: f64) -> Result<()> {
        if !weight.is_finite() {
            return Err(StoreError::Invalid("a zone's weight is a number".into()));
        }
        let mut tx = self.write().await?;
        let (count, present): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(zone = ?), 0) FROM spam_zones")
                .bind(zone)
                .fetch_one(&mut *tx)
                .await?;
        if present == 0 && count >= MAX_ZONES as i64 {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_ZONES} DNS list zones"
            )));
        }
        sqlx::query(
            "INSERT INTO spam_zones (zone, weight) VALUES (?, ?)
             ON CONFLICT(zone) DO UPDATE SET weight = excluded.weight",
        )
        .bind(zone)
        .bind(weight)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a zone; whether it was there.
    pub async fn remove_spam_zone(&self, zone: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM spam_zones WHERE zone = ?")
            .bind(zone)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The counts the account holds for each of `keys` that it has seen.
    pub async fn reputation(
        &self,
        account_id: i64,
        keys: &[String],
    ) -> Result<Vec<(String, SpamHam)>> {
        Ok(self
            .spam_memory(account_id, &[], keys, &[])
            .await?
            .reputation)
    }

    /// Adds `spam` and `ham` (either may be negative, to take back an earlier count; counts
    /// never go below zero) to each of `keys` of the account, in one transaction: what the
    /// user's own judgement teaches, written at once.
    pub async fn count_reputation(
        &self,
        account_id: i64,
        keys: &[String],
        spam: i64,
        ham: i64,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let day = now() / 86_400;
        let mut tx = self.write().await?;
        for key in keys.iter().take(MAX_KEYS) {
            upsert_reputation(&mut tx, account_id, key, spam, ham, day).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets reputation not counted for `days` days, then, for any account holding more
    /// than `max` keys, the longest unused down to nine tenths of `max`; how many keys went.
    pub async fn prune_reputation(&self, days: i64, max: u64) -> Result<u64> {
        let mut gone = sqlx::query("DELETE FROM spam_reputation WHERE seen < ?")
            .bind(now() / 86_400 - days)
            .execute(&self.writer)
            .await?
            .rows_affected();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let over: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT account_id, COUNT(*) FROM spam_reputation GROUP BY account_id HAVING COUNT(*) > ?",
        )
        .bind(max)
        .fetch_all(&self.reader)
        .await?;
        for (account_id, count) in over {
            gone += sqlx::query(
                "DELETE FROM spam_reputation WHERE account_id = ?1 AND key IN (
                     SELECT key FROM spam_reputation WHERE account_id = ?1 ORDER BY seen LIMIT ?2)",
            )
            .bind(account_id)
            .bind(count - max * 9 / 10)
            .execute(&self.writer)
            .await?
            .rows_affected();
        }
        Ok(gone)
    }

    /// Counts a delivery's classification for `keys` of the account, in memory: written by
    /// [`Store::flush_events`].
    pub fn note_reputation(&self, account_id: i64, keys: &[(String, i64, i64)]) {
        let Ok(mut pending) = self.reputation.0.lock() else {
            return;
        };
        for (key, spam, ham) in keys.iter().take(MAX_KEYS) {
            if pending.len() >= MAX_PENDING && !pending.contains_key(&(account_id, key.clone())) {
                return;
            }
            let entry = pending.entry((account_id, key.clone())).or_default();
            entry.0 += spam;
            entry.1 += ham;
        }
    }

    /// Writes the counts [`Store::note_reputation`] kept, in one transaction (also before a
    /// user's move takes back what a delivery counted, so the two land in order).
    pub async fn flush_reputation(&self) -> Result<()> {
        let pending = match self.reputation.0.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(()),
        };
        if pending.is_empty() {
            return Ok(());
        }
        let day = now() / 86_400;
        let mut tx = self.write().await?;
        for ((account_id, key), (spam, ham)) in &pending {
            upsert_reputation(&mut tx, *account_id, key, *spam, *ham, day).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Adds signed counts to one key (never below zero); an account removed meanwhile is skipped.
async fn upsert_reputation(
    tx: &mut sqlx::SqliteConnection,
    account_id: i64,
    key: &str,
    spam: i64,
    ham: i64,
    day: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO spam_reputation (account_id, key, spam, ham, seen)
         SELECT ?1, ?2, MAX(?3, 0), MAX(?4, 0), ?5 FROM accounts WHERE id = ?1
         ON CONFLICT(account_id, key) DO UPDATE SET
             spam = MAX(spam + ?3, 0), ham = MAX(ham + ?4, 0), seen = ?5",
    )
    .bind(account_id)
    .bind(key)
    .bind(spam)
    .bind(ham)
    .bind(day)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
