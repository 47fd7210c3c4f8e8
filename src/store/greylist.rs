//! Greylisting's triplets (migration 0015 `greylist`): (client network, envelope sender,
//! recipient), when first seen and when a retry was accepted. What a triplet's state means for
//! the SMTP reply is `spam::greylist`'s.

use super::{Result, Store};

/// A triplet not retried within this long after its first attempt starts over.
pub const GREYLIST_RETRY_SECS: i64 = 4 * 3600;
/// A passed triplet (and its network's exemption) is kept this long after its last pass.
pub const GREYLIST_KEEP_SECS: i64 = 36 * 86_400;
/// Expired rows of each kind removed per new triplet, at most (a bounded, opportunistic prune).
const PRUNE_BATCH: i64 = 100;

/// What an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triplet {
    /// Not seen (or expired): recorded now; the client must retry.
    New,
    /// Seen, but the delay has not passed since the first attempt.
    TooEarly,
    /// A retry after the delay (now marked passed), or a triplet that passed before.
    Passed,
}

impl Store {
    /// Records an attempt of the triplet at unix time `at`: the first one (or the first since
    /// the row expired) is [`Triplet::New`]; a retry at least `delay` seconds after it and
    /// within [`GREYLIST_RETRY_SECS`] passes, and so does every later attempt within
    /// [`GREYLIST_KEEP_SECS`] of the last pass (which is moved to `at`). A new triplet also
    /// removes up to 100 expired rows of each kind.
    pub async fn greylist_attempt(
        &self,
        network: &str,
        sender: &str,
        recipient: &str,
        delay: i64,
        at: i64,
    ) -> Result<Triplet> {
        let mut tx = self.write().await?;
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT first, passed FROM greylist WHERE network = ? AND sender = ? AND recipient = ?",
        )
        .bind(network)
        .bind(sender)
        .bind(recipient)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            Some((_, Some(passed))) if at - passed < GREYLIST_KEEP_SECS => Triplet::Passed,
            Some((first, None)) if at - first < delay => Triplet::TooEarly,
            Some((first, None)) if at - first < GREYLIST_RETRY_SECS => Triplet::Passed,
            _ => Triplet::New,
        };
        match outcome {
            Triplet::TooEarly => return Ok(outcome),
            Triplet::Passed => {
                sqlx::query(
                    "UPDATE greylist SET passed = ?
                     WHERE network = ? AND sender = ? AND recipient = ?",
                )
                .bind(at)
                .bind(network)
                .bind(sender)
                .bind(recipient)
                .execute(&mut *tx)
                .await?;
            }
            Triplet::New => {
                sqlx::query(
                    "INSERT INTO greylist (network, sender, recipient, first, passed)
                     VALUES (?1, ?2, ?3, ?4, NULL)
                     ON CONFLICT (network, sender, recipient)
                     DO UPDATE SET first = ?4, passed = NULL",
                )
                .bind(network)
                .bind(sender)
                .bind(recipient)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                prune(&mut tx, at).await?;
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// When a triplet of `network` last passed, if it did at or after `since`.
    pub async fn greylist_network_passed(&self, network: &str, since: i64) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar(
                "SELECT MAX(passed) FROM greylist WHERE network = ? AND passed >= ?",
            )
            .bind(network)
            .bind(since)
            .fetch_one(&self.reader)
            .await?,
        )
    }

    /// Moves the last pass of `network` (the triplets that passed at `last`) to `at`, so a
    /// network that keeps sending stays exempt.
    pub async fn greylist_renew_network(&self, network: &str, last: i64, at: i64) -> Result<()> {
        sqlx::query("UPDATE greylist SET passed = ? WHERE network = ? AND passed = ?")
            .bind(at)
            .bind(network)
            .bind(last)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// Removes up to [`PRUNE_BATCH`] expired rows of each kind (index `greylist_expiry`,
/// migration 0016).
async fn prune(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, at: i64) -> Result<()> {
    sqlx::query(
        "DELETE FROM greylist WHERE (network, sender, recipient) IN (
             SELECT network, sender, recipient FROM greylist
             WHERE passed IS NULL AND first < ? LIMIT ?)",
    )
    .bind(at - GREYLIST_RETRY_SECS)
    .bind(PRUNE_BATCH)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM greylist WHERE (network, sender, recipient) IN (
             SELECT network, sender, recipient FROM greylist
             WHERE passed IS NOT NULL AND passed < ? LIMIT ?)",
    )
    .bind(at - GREYLIST_KEEP_SECS)
    .bind(PRUNE_BATCH)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{GREYLIST_KEEP_SECS, GREYLIST_RETRY_SECS, Triplet};
    use crate::store::Store;

    #[tokio::test]
    async fn triplets_pass_after_the_delay_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        let t = 1_000_000;
        let net = "192.0.2.0/24";
        let try_at = |at: i64, sender: &'static str| {
            let store = store.clone();
            async move {
                store
                    .greylist_attempt(net, sender, "a@example.org", 300, at)
                    .await
                    .unwrap()
            }
        };
        let rows = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM greylist")
                .fetch_one(&store.reader)
                .await
                .unwrap()
        };
        assert_eq!(try_at(t, "s@x.test").await, Triplet::New);
        assert_eq!(try_at(t + 299, "s@x.test").await, Triplet::TooEarly);
        assert_eq!(store.greylist_network_passed(net, 0).await.unwrap(), None);
        assert_eq!(try_at(t + 300, "s@x.test").await, Triplet::Passed);
        assert_eq!(
            store.greylist_network_passed(net, 0).await.unwrap(),
            Some(t + 300)
        );
        assert_eq!(
            store.greylist_network_passed(net, t + 301).await.unwrap(),
            None
        );
        assert_eq!(try_at(t + 400, "s@x.test").await, Triplet::Passed);
        store
            .greylist_renew_network(net, t + 400, t + 500)
            .await
            .unwrap();
        assert_eq!(
            store.greylist_network_passed(net, 0).await.unwrap(),
            Some(t + 500)
        );

        // Never retried within 4 hours: starts over.
        assert_eq!(try_at(t, "late@x.test").await, Triplet::New);
        assert_eq!(
            try_at(t + GREYLIST_RETRY_SECS, "late@x.test").await,
            Triplet::New
        );
        // A pass older than 36 days is forgotten.
        assert_eq!(
            try_at(t + 500 + GREYLIST_KEEP_SECS, "s@x.test").await,
            Triplet::New
        );

        // A new triplet prunes the expired ones: the last one took late@x.test's (first
        // attempt over 4 hours before), this one takes s@x.test's and old@x.test's.
        assert_eq!(try_at(t, "old@x.test").await, Triplet::New);
        assert_eq!(rows().await, 2);
        assert_eq!(
            try_at(t + GREYLIST_KEEP_SECS * 2, "new@x.test").await,
            Triplet::New
        );
        assert_eq!(rows().await, 1);
    }
}
