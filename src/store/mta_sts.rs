//! The MTA-STS policy cache (migration 0021 `mta_sts_policies`): one policy per destination
//! domain, as fetched, with the TXT id it was fetched under and its expiry. What a policy means
//! is `queue::mta_sts`'s; the store only keeps the text.

use super::{Result, Store};

/// Domains kept, at most: past it the policies closest to expiry make room.
pub const MAX_CACHED_POLICIES: i64 = 10_000;
/// Expired rows removed per write, at most (a bounded, opportunistic prune).
const PRUNE_BATCH: i64 = 100;

/// A cached policy of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedStsPolicy {
    /// The `id` of the `_mta-sts` TXT record the policy was fetched under.
    pub id: String,
    /// The policy file as served.
    pub policy: String,
    pub fetched_at: i64,
    /// `fetched_at` + the policy's `max_age`: after it, the policy is not used.
    pub expires_at: i64,
}

impl Store {
    /// The cached policy of `domain` (lower case), expired or not.
    pub async fn mta_sts_policy(&self, domain: &str) -> Result<Option<CachedStsPolicy>> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, policy, fetched_at, expires_at FROM mta_sts_policies WHERE domain = ?",
        )
        .bind(domain)
        .fetch_optional(&self.reader)
        .await?;
        Ok(
            row.map(|(id, policy, fetched_at, expires_at)| CachedStsPolicy {
                id,
                policy,
                fetched_at,
                expires_at,
            }),
        )
    }

    /// Keeps `policy` as the one of `domain`, replacing the old one; removes up to 100 rows
    /// expired before `policy.fetched_at`, and past [`MAX_CACHED_POLICIES`] those closest to
    /// expiry.
    pub async fn put_mta_sts_policy(&self, domain: &str, policy: &CachedStsPolicy) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO mta_sts_policies (domain, id, policy, fetched_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (domain) DO UPDATE SET id = ?2, policy = ?3, fetched_at = ?4,
                 expires_at = ?5",
        )
        .bind(domain)
        .bind(&policy.id)
        .bind(&policy.policy)
        .bind(policy.fetched_at)
        .bind(policy.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM mta_sts_policies WHERE domain IN (
                 SELECT domain FROM mta_sts_policies WHERE expires_at < ? LIMIT ?)",
        )
        .bind(policy.fetched_at)
        .bind(PRUNE_BATCH)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM mta_sts_policies WHERE domain IN (
                 SELECT domain FROM mta_sts_policies WHERE domain <> ?
                 ORDER BY expires_at
                 LIMIT max(0, (SELECT COUNT(*) FROM mta_sts_policies) - ?))",
        )
        .bind(domain)
        .bind(MAX_CACHED_POLICIES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::CachedStsPolicy;
    use crate::store::Store;

    #[tokio::test]
    async fn policies_are_kept_replaced_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        let policy = |id: &str, at: i64| CachedStsPolicy {
            id: id.into(),
            policy: format!("version: STSv1\nmode: enforce\nmx: mx.{id}.test\nmax_age: 100\n"),
            fetched_at: at,
            expires_at: at + 100,
        };
        assert_eq!(store.mta_sts_policy("a.test").await.unwrap(), None);
        store
            .put_mta_sts_policy("a.test", &policy("one", 1000))
            .await
            .unwrap();
        store
            .put_mta_sts_policy("b.test", &policy("b", 1000))
            .await
            .unwrap();
        assert_eq!(
            store.mta_sts_policy("a.test").await.unwrap(),
            Some(policy("one", 1000))
        );
        store
            .put_mta_sts_policy("a.test", &policy("two", 1050))
            .await
            .unwrap();
        assert_eq!(
            store.mta_sts_policy("a.test").await.unwrap(),
            Some(policy("two", 1050))
        );
        // b.test expired at 1100: a write after that removes it.
        store
            .put_mta_sts_policy("c.test", &policy("c", 1200))
            .await
            .unwrap();
        assert_eq!(store.mta_sts_policy("b.test").await.unwrap(), None);
        assert!(store.mta_sts_policy("c.test").await.unwrap().is_some());
    }
}
