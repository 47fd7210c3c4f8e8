//! The spam filter's memory per account (migration 0014): token counts, totals, and what each
//! message was trained as. Training a message the other way untrains it first (a user who
//! moves a message out of Junk again takes back what moving it in taught).

use super::spam_policy::{MAX_KEYS, SenderEntry};
use super::{Result, Store, now};

/// Spam and ham counts: of trained messages (an account's totals) or of the trained messages a
/// token appeared in. (`spam::bayes` has its own types for them: the store knows nothing of
/// the classifier.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpamHam {
    pub spam: u64,
    pub ham: u64,
}

/// What an account's filter remembers that bears on one message: see [`Store::spam_memory`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    /// Each token's counts, in the order asked.
    pub tokens: Vec<SpamHam>,
    /// The reputation of the keys that have one.
    pub reputation: Vec<(String, SpamHam)>,
    /// The list entries among the names asked.
    pub lists: Vec<SenderEntry>,
}

/// What training one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trained {
    /// First taught as this.
    New,
    /// Taught the other way before: untaught, then taught as this.
    Reversed,
    /// Already taught as this: nothing changed.
    Already,
}

const TRAINED_AS: &str = "SELECT as_spam FROM spam_trained WHERE account_id = ? AND message = ?";

impl Store {
    /// What the message `message` (SHA-256, hex) was taught as to the account's filter.
    pub async fn spam_trained_as(&self, account_id: i64, message: &str) -> Result<Option<bool>> {
        Ok(sqlx::query_scalar(TRAINED_AS)
            .bind(account_id)
            .bind(message)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Teaches the account's filter that the message `message` (its SHA-256, hex), whose
    /// distinct tokens are `tokens`, is spam (`as_spam`) or ham; one write transaction.
    pub async fn train_spam(
        &self,
        account_id: i64,
        message: &str,
        tokens: &[u64],
        as_spam: bool,
    ) -> Result<Trained> {
        // A message taught again the same way (a second COPY into Junk) costs a read, not the
        // writer.
        if self.spam_trained_as(account_id, message).await? == Some(as_spam) {
            return Ok(Trained::Already);
        }
        let mut tx = self.write().await?;
        let before: Option<bool> = sqlx::query_scalar(TRAINED_AS)
            .bind(account_id)
            .bind(message)
            .fetch_optional(&mut *tx)
            .await?;
        if before == Some(as_spam) {
            return Ok(Trained::Already);
        }
        let day = now() / 86_400;
        // (spam, ham) added to each token and to the totals: the old lesson taken back.
        let (spam, ham) = match (before, as_spam) {
            (Some(_), true) => (1, -1),
            (Some(_), false) => (-1, 1),
            (None, true) => (1, 0),
            (None, false) => (0, 1),
        };
        for &token in tokens {
            sqlx::query(
                "INSERT INTO spam_tokens (account_id, token, spam, ham, seen)
                 VALUES (?, ?, max(?, 0), max(?, 0), ?)
                 ON CONFLICT (account_id, token) DO UPDATE SET
                   spam = max(spam + ?, 0), ham = max(ham + ?, 0), seen = excluded.seen",
            )
            .bind(account_id)
            .bind(token as i64)
            .bind(spam)
            .bind(ham)
            .bind(day)
            .bind(spam)
            .bind(ham)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO spam_totals (account_id, spam, ham) VALUES (?, max(?, 0), max(?, 0))
             ON CONFLICT (account_id) DO UPDATE SET
               spam = max(spam + ?, 0), ham = max(ham + ?, 0)",
        )
        .bind(account_id)
        .bind(spam)
        .bind(ham)
        .bind(spam)
        .bind(ham)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO spam_trained (account_id, message, as_spam) VALUES (?, ?, ?)
             ON CONFLICT (account_id, message) DO UPDATE SET as_spam = excluded.as_spam",
        )
        .bind(account_id)
        .bind(message)
        .bind(as_spam)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if before.is_some() {
            Trained::Reversed
        } else {
            Trained::New
        })
    }

    /// The account's totals and each token's counts (zero for tokens never seen), in the
    /// order of `tokens`.
    pub async fn spam_counts(
        &self,
        account_id: i64,
        tokens: &[u64],
    ) -> Result<(SpamHam, Vec<SpamHam>)> {
        let totals: Option<(i64, i64)> =
            sqlx::query_as("SELECT spam, ham FROM spam_totals WHERE account_id = ?")
                .bind(account_id)
                .fetch_optional(&self.reader)
                .await?;
        let (spam, ham) = totals.unwrap_or_default();
        let totals = SpamHam {
            spam: spam.max(0) as u64,
            ham: ham.max(0) as u64,
        };
        let memory = self.spam_memory(account_id, tokens, &[], &[]).await?;
        Ok((totals, memory.tokens))
    }

    /// What the account's filter remembers that bears on one message, in one statement (it
    /// runs for every message received; each statement is a round trip to a database
    /// thread): each of `tokens`' counts (in their order, zero when never seen), the
    /// reputation of the first [`MAX_KEYS`] of `keys`, and the list entries among the first
    /// [`MAX_KEYS`] of `names`. The values go in as three JSON arrays, so the statement's
    /// text never changes and stays prepared.
    pub async fn spam_memory(
        &self,
        account_id: i64,
        tokens: &[u64],
        keys: &[String],
        names: &[String],
    ) -> Result<Memory> {
        let mut memory = Memory {
            tokens: vec![SpamHam::default(); tokens.len()],
            ..Memory::default()
        };
        if tokens.is_empty() && keys.is_empty() && names.is_empty() {
            return Ok(memory);
        }
        let as_json = |values: &[String]| {
            serde_json::to_string(values.get(..MAX_KEYS).unwrap_or(values))
                .unwrap_or_else(|_| "[]".into())
        };
        // Tokens are `u64` hashes stored as `i64` (see migration 0014).
        let signed: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let tokens_json = serde_json::to_string(&signed).unwrap_or_else(|_| "[]".into());
        let rows: Vec<(i64, i64, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT 0, token, NULL, spam, ham FROM spam_tokens
              WHERE account_id = ?1 AND token IN (SELECT value FROM json_each(?2))
             UNION ALL
             SELECT 1, 0, key, spam, ham FROM spam_reputation
              WHERE account_id = ?1 AND key IN (SELECT value FROM json_each(?3))
             UNION ALL
             SELECT 2, 0, entry, allow, 0 FROM spam_lists
              WHERE account_id = ?1 AND entry IN (SELECT value FROM json_each(?4))",
        )
        .bind(account_id)
        .bind(tokens_json)
        .bind(as_json(keys))
        .bind(as_json(names))
        .fetch_all(&self.reader)
        .await?;
        let mut known = std::collections::HashMap::new();
        for (kind, token, name, a, b) in rows {
            let counts = SpamHam {
                spam: a.max(0) as u64,
                ham: b.max(0) as u64,
            };
            match (kind, name) {
                (0, _) => {
                    known.insert(token as u64, counts);
                }
                (1, Some(key)) => memory.reputation.push((key, counts)),
                (2, Some(entry)) => memory.lists.push(SenderEntry {
                    entry,
                    allow: a != 0,
                }),
                _ => {}
            }
        }
        if !known.is_empty() {
            for (slot, token) in memory.tokens.iter_mut().zip(tokens) {
                if let Some(counts) = known.get(token) {
                    *slot = *counts;
                }
            }
        }
        Ok(memory)
    }

    /// Accounts that have taught their filter spam: the ones whose tokens may need pruning
    /// and whose kept mail may teach ham.
    pub async fn spam_learning_accounts(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT account_id FROM spam_totals WHERE spam > 0 ORDER BY account_id",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    /// Keeps the account's token table at most `max` rows: first tokens seen in at most one
    /// trained message and not trained for 60 days go, then, if still over, the longest
    /// untrained ones, down to nine tenths of `max`. Returns how many went.
    pub async fn prune_spam_tokens(&self, account_id: i64, max: u64) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM spam_tokens WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&self.reader)
                .await?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        if count <= max {
            return Ok(0);
        }
        let day = now() / 86_400;
        let mut tx = self.write().await?;
        let rare = sqlx::query(
            "DELETE FROM spam_tokens WHERE account_id = ? AND spam + ham <= 1 AND seen < ?",
        )
        .bind(account_id)
        .bind(day - 60)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let left = count - i64::try_from(rare).unwrap_or(0);
        let mut old = 0;
        if left > max {
            old = sqlx::query(
                "DELETE FROM spam_tokens WHERE account_id = ?1 AND token IN (
                     SELECT token FROM spam_tokens WHERE account_id = ?1
                     ORDER BY seen, spam + ham LIMIT ?2)",
            )
            .bind(account_id)
            .bind(left - max * 9 / 10)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(rare + old)
    }

    /// Up to `limit` messages of the account's INBOX that the user has read and kept for a
    /// while (received between `from` and `to`, unix seconds), neither deleted nor marked
    /// `$Junk`, whose text the filter was never taught: the INBOX handle and their UIDs.
    pub async fn kept_untaught(
        &self,
        account_id: i64,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Option<(super::Mailbox, Vec<u32>)>> {
        let Some(inbox) = self.mailbox(account_id, "INBOX").await? else {
            return Ok(None);
        };
        let uids: Vec<i64> = sqlx::query_scalar(
            "SELECT m.uid FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? AND m.internal_date BETWEEN ? AND ?
               AND (m.flags & 1) = 1 AND (m.flags & 8) = 0
               AND (' ' || lower(m.keywords) || ' ') NOT LIKE '% $junk %'
               AND NOT EXISTS (SELECT 1 FROM spam_trained t
                               WHERE t.account_id = ? AND t.message = b.hash)
             ORDER BY m.uid LIMIT ?",
        )
        .bind(inbox.id())
        .bind(from)
        .bind(to)
        .bind(account_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let uids = uids
            .into_iter()
            .filter_map(|u| u32::try_from(u).ok())
            .collect();
        Ok(Some((inbox, uids)))
    }
}
