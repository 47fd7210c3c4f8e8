//! The admin audit log (migration 0010): who created, changed or removed which domain,
//! account, alias, quota, password or second factor, and when. Written by the admin panel
//! (`web/admin/`) and the CLI (`cli/accounts.rs`) after each action succeeds; read, newest
//! first and searched, by the panel's `/admin/audit`. Kept bounded: entries older than
//! [`KEEP_SECS`] go, and at most [`KEEP_ENTRIES`] are kept, both trimmed as entries are added.

use super::{Result, Store, now};

/// Entries older than this (a year) are removed.
pub const KEEP_SECS: i64 = 366 * 86_400;
/// At most this many entries are kept, the newest.
pub const KEEP_ENTRIES: i64 = 100_000;
/// Longest search text taken (characters); the rest is ignored.
const MAX_SEARCH: usize = 200;

/// One entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// One page of entries and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub total: i64,
}

/// `text` as a `LIKE` pattern matching it anywhere, with `%`, `_` and the escape character
/// `\` taken literally (used with `ESCAPE '\'`).
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars().take(MAX_SEARCH) {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

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
    /// Records one action in the audit log, and trims the log to its bounds in the same
    /// transaction (both deletions use an index: `at`, and the primary key).
    pub async fn audit(&self, entry: Audit<'_>) -> Result<()> {
        self.audit_at(entry, now(), KEEP_ENTRIES).await
    }

    /// [`Store::audit`] at time `t`, keeping `keep` entries (tests try the bounds with both).
    async fn audit_at(&self, entry: Audit<'_>, t: i64, keep: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO audit_log (at, actor, ip, action, target, detail)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(t)
        .bind(entry.actor)
        .bind(entry.ip)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.detail)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(t - KEEP_SECS)
            .execute(&mut *tx)
            .await?;
        // Ids only grow, so the entries above the newest id minus `keep` are at most `keep`
        // (fewer where gaps are): a lookup of the largest key, where walking the newest `keep`
        // entries to find the cut took milliseconds on each entry at 100,000.
        sqlx::query("DELETE FROM audit_log WHERE id <= (SELECT MAX(id) FROM audit_log) - ?")
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Entries newest first, `limit` from `offset`, those whose actor, action or target
    /// contains `search` (any case for ASCII, as SQLite's `LIKE`); all when it is empty.
    pub async fn audit_entries(&self, search: &str, offset: i64, limit: i64) -> Result<AuditPage> {
        let search = search.trim();
        let pattern = contains_pattern(search);
        // ?1 the search as typed (empty: everything), ?2 the escaped pattern.
        let (total,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log
             WHERE ?1 = '' OR actor LIKE ?2 ESCAPE '\\' OR action LIKE ?2 ESCAPE '\\'
                OR target LIKE ?2 ESCAPE '\\'",
        )
        .bind(search)
        .bind(&pattern)
        .fetch_one(&self.reader)
        .await?;
        let rows: Vec<(i64, i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT id, at, actor, ip, action, target, detail FROM audit_log
             WHERE ?1 = '' OR actor LIKE ?2 ESCAPE '\\' OR action LIKE ?2 ESCAPE '\\'
                OR target LIKE ?2 ESCAPE '\\'
             ORDER BY id DESC LIMIT ?3 OFFSET ?4",
        )
        .bind(search)
        .bind(&pattern)
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(&self.reader)
        .await?;
        let entries = rows
            .into_iter()
            .map(|(id, at, actor, ip, action, target, detail)| AuditEntry {
                id,
                at,
                actor,
                ip,
                action,
                target,
                detail,
            })
            .collect();
        Ok(AuditPage { entries, total })
    }
}

#[cfg(test)]
mod tests {
    use super::{Audit, KEEP_SECS, contains_pattern};
    use crate::store::{Store, now};

    fn entry(target: &str) -> Audit<'_> {
        Audit {
            actor: "admin@example.org",
            ip: "192.0.2.1",
            action: "account.create",
            target,
            detail: "",
        }
    }

    fn targets(page: &super::AuditPage) -> Vec<&str> {
        page.entries.iter().map(|e| e.target.as_str()).collect()
    }

    #[tokio::test]
    async fn the_log_is_bounded_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        let t = now();
        store
            .audit_at(entry("old"), t - KEEP_SECS - 10, 100)
            .await
            .unwrap();
        store.audit_at(entry("recent"), t - 10, 100).await.unwrap();
        assert_eq!(
            targets(&store.audit_entries("", 0, 10).await.unwrap()),
            ["recent", "old"]
        );
        // The next entry removes the one older than a year.
        store.audit_at(entry("a"), t, 100).await.unwrap();
        assert_eq!(
            targets(&store.audit_entries("", 0, 10).await.unwrap()),
            ["a", "recent"]
        );
        // And keeps at most `keep`, the newest.
        for name in ["b", "c", "d"] {
            store.audit_at(entry(name), t, 3).await.unwrap();
        }
        let page = store.audit_entries("", 0, 10).await.unwrap();
        assert_eq!(targets(&page), ["d", "c", "b"]);
        assert_eq!(page.total, 3);
    }

    #[tokio::test]
    async fn search_pages_and_takes_wildcards_literally() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        for name in [
            "alice@example.org",
            "bob@example.org",
            "100%_off@example.org",
        ] {
            store.audit(entry(name)).await.unwrap();
        }
        let page = store.audit_entries("ALICE", 0, 10).await.unwrap();
        assert_eq!((targets(&page), page.total), (vec!["alice@example.org"], 1));
        assert_eq!(
            store
                .audit_entries("account.cr", 0, 10)
                .await
                .unwrap()
                .total,
            3
        );
        assert_eq!(
            store.audit_entries("192.0.2", 0, 10).await.unwrap().total,
            0,
            "not the ip"
        );
        // `%` and `_` match themselves only.
        let page = store.audit_entries("%_", 0, 10).await.unwrap();
        assert_eq!(targets(&page), ["100%_off@example.org"]);
        assert_eq!(store.audit_entries("b_b", 0, 10).await.unwrap().total, 0);
        // Newest first, paged; the total counts every match.
        let page = store.audit_entries("", 1, 1).await.unwrap();
        assert_eq!((targets(&page), page.total), (vec!["bob@example.org"], 3));
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("alice"), "%alice%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
