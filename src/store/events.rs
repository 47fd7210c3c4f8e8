//! Counts of what happened (deliveries, rejections by reason, failed logins), per hour, for the
//! dashboard's "last 24 hours" and for monitoring.
//!
//! Counting must cost nothing on the paths it counts (a flood of rejected RCPTs must not turn
//! into a flood of writes), so [`Store::count_event`] only bumps a counter in memory; the server
//! writes the counts out once a minute and at shutdown ([`Store::flush_events`]). A crash loses
//! at most a minute of counts, never mail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Result, Store, now};

/// Counts not yet written, by kind, and counts since the process started (for `/metrics`,
/// whose counters must only grow: the table forgets hours older than 90 days).
#[derive(Clone, Default)]
pub(super) struct Pending(Arc<Mutex<Counts>>);

#[derive(Default)]
struct Counts {
    unwritten: HashMap<&'static str, i64>,
    since_start: HashMap<&'static str, i64>,
}

impl Pending {
    fn take(&self) -> HashMap<&'static str, i64> {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut c.unwritten))
            .unwrap_or_default()
    }

    fn snapshot(&self) -> HashMap<&'static str, i64> {
        self.0
            .lock()
            .map(|c| c.unwritten.clone())
            .unwrap_or_default()
    }
}

impl Store {
    /// Counts one event of `kind` (a fixed name such as `delivered` or `rejected:relay`).
    pub fn count_event(&self, kind: &'static str) {
        self.count_events(kind, 1);
    }

    pub fn count_events(&self, kind: &'static str, n: i64) {
        if let Ok(mut c) = self.events.0.lock() {
            *c.unwritten.entry(kind).or_insert(0) += n;
            *c.since_start.entry(kind).or_insert(0) += n;
        }
    }

    /// Counts by kind since this process opened the store, sorted by kind: counters that only
    /// grow, as Prometheus expects (they start again from 0 when the server restarts).
    pub fn event_counters(&self) -> Vec<(&'static str, i64)> {
        let mut out: Vec<(&'static str, i64)> = self
            .events
            .0
            .lock()
            .map(|c| c.since_start.iter().map(|(k, n)| (*k, *n)).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Writes the counts kept in memory into the current hour, and the reputation counts of
    /// deliveries (`spam_policy`), which are kept the same way.
    pub async fn flush_events(&self) -> Result<()> {
        self.flush_reputation().await?;
        let pending = self.events.take();
        if pending.is_empty() {
            return Ok(());
        }
        let hour = now() / 3600 * 3600;
        let mut tx = self.write().await?;
        for (kind, count) in &pending {
            sqlx::query(
                "INSERT INTO event_counts (hour, kind, count) VALUES (?, ?, ?)
                 ON CONFLICT (hour, kind) DO UPDATE SET count = count + excluded.count",
            )
            .bind(hour)
            .bind(*kind)
            .bind(*count)
            .execute(&mut *tx)
            .await?;
        }
        // Keep 90 days of hours; older ones only grow the file.
        sqlx::query("DELETE FROM event_counts WHERE hour < ?")
            .bind(hour - 90 * 86400)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Totals by kind since `since` (unix seconds, counted by whole hours), with what is not
    /// written yet; sorted by kind.
    pub async fn event_totals(&self, since: i64) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, SUM(count) FROM event_counts WHERE hour >= ? GROUP BY kind",
        )
        .bind(since / 3600 * 3600)
        .fetch_all(&self.reader)
        .await?;
        let mut totals: HashMap<String, i64> = rows.into_iter().collect();
        for (kind, n) in self.events.snapshot() {
            *totals.entry(kind.to_string()).or_insert(0) += n;
        }
        let mut out: Vec<(String, i64)> = totals.into_iter().collect();
        out.sort();
        Ok(out)
    }
}

/// The size of the stored mail and of the database, for the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageTotals {
    pub messages: i64,
    /// Bytes of the database file (pages in use and free), without the WAL.
    pub database_bytes: i64,
}

impl Store {
    pub async fn storage_totals(&self) -> Result<StorageTotals> {
        let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&self.reader)
            .await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.reader)
            .await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&self.reader)
            .await?;
        Ok(StorageTotals {
            messages,
            database_bytes: pages.saturating_mul(page_size),
        })
    }
}
