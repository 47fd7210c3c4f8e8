//! The spam filter's memory per account (migration 0014): token counts, totals, and what each
//! message was trained as. Training a message the other way untrains it first (a user who
//! moves a message out of Junk again takes back what moving it in taught).

use super::{Result, Store, now};

/// Spam and ham counts: of trained messages (an account's totals) or of the trained messages a
/// token appeared in. (`spam::bayes` has its own types for them: the store knows nothing of
/// the classifier.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpamHam {
    pub spam: u64,
    pub ham: u64,
}

/// Tokens asked for in one query: below SQLite's limit on bound parameters.
const CHUNK: usize = 500;

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
        let mut known = std::collections::HashMap::new();
        for chunk in tokens.chunks(CHUNK) {
            let sql = format!(
                "SELECT token, spam, ham FROM spam_tokens WHERE account_id = ? AND token IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            // Only placeholders are formatted in; the tokens are bound.
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(account_id);
            for &t in chunk {
                query = query.bind(t as i64);
            }
            for (token, spam, ham) in query.fetch_all(&self.reader).await? {
                known.insert(
                    token as u64,
                    SpamHam {
                        spam: spam.max(0) as u64,
                        ham: ham.max(0) as u64,
                    },
                );
            }
        }
        let counts = tokens
            .iter()
            .map(|t| known.get(t).copied().unwrap_or_default())
            .collect();
        Ok((totals, counts))
    }
}
