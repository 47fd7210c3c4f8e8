//! Learning from what users do, off the request path: a message moved or copied into Junk is
//! spam; one moved out of Junk to anywhere but Trash is ham (which also takes back what moving
//! it in taught). The session hands a [`Lesson`] to a bounded queue and answers at once; one
//! task reads the messages and trains the account's filter. A full queue drops the lesson
//! (counted, logged): learning must never slow or fail what the user is doing.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;
use crate::store::{Mailbox, Store};

/// Lessons waiting; past this, new ones are dropped.
const QUEUE: usize = 1024;
/// Messages learned from one lesson. Each holds the one writer for up to 3,000 token upserts
/// (a few milliseconds): a bulk move of an old spam folder teaches from its first messages
/// instead of holding back delivery for minutes.
pub const MAX_LESSON: usize = 500;

/// Messages the user placed in one mailbox: all spam, or all ham.
#[derive(Debug, Clone)]
pub struct Lesson {
    pub account_id: i64,
    /// Where the messages are now.
    pub mailbox: Mailbox,
    pub uids: Vec<u32>,
    pub as_spam: bool,
}

/// The handle sessions teach through. Cheap to clone.
#[derive(Clone)]
pub struct Learner {
    tx: mpsc::Sender<Lesson>,
    store: Store,
}

impl Learner {
    /// Starts the learning task; it ends at shutdown or when every handle is gone.
    pub fn start(store: Store, shutdown: Shutdown) -> Learner {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store.clone(), rx, shutdown));
        Learner { tx, store }
    }

    /// Queues a lesson; never waits.
    pub fn teach(&self, lesson: Lesson) {
        if lesson.uids.is_empty() {
            return;
        }
        self.store.count_event("spam_lessons");
        if self.tx.try_send(lesson).is_err() {
            self.store.count_event("spam_lessons_dropped");
            tracing::warn!("spam filter: learning queue full, a lesson was dropped");
        }
    }
}

/// What moving (or copying) messages from a mailbox with special use `from` to one with `to`
/// teaches: `Some(true)` spam, `Some(false)` ham, `None` nothing. Copying out of Junk teaches
/// nothing (the original stays there).
pub fn lesson(from: Option<&str>, to: Option<&str>, moved: bool) -> Option<bool> {
    let junk = |u: Option<&str>| u == Some("\\Junk");
    if junk(to) && !junk(from) {
        return Some(true);
    }
    if moved && junk(from) && !junk(to) && to != Some("\\Trash") {
        return Some(false);
    }
    None
}

impl Learner {
    /// Teaches what moving (`moved`) or copying messages from `from` to `to` teaches (see
    /// [`lesson`]); `uids` are the messages' UIDs in `to`. The one way IMAP COPY/MOVE and the
    /// webmail's moves and "Spam" / "Not spam" buttons teach.
    pub fn after_transfer(&self, from: &Mailbox, to: &Mailbox, uids: Vec<u32>, moved: bool) {
        if let Some(as_spam) = lesson(
            from.special_use.as_deref(),
            to.special_use.as_deref(),
            moved,
        ) {
            self.teach(Lesson {
                account_id: to.account_id(),
                mailbox: to.clone(),
                uids,
                as_spam,
            });
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Lesson>, shutdown: Shutdown) {
    let start = tokio::time::Instant::now() + UPKEEP_FIRST;
    let mut upkeep_tick = tokio::time::interval_at(start, UPKEEP_EVERY);
    upkeep_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let lesson = tokio::select! {
            l = rx.recv() => l,
            _ = upkeep_tick.tick() => {
                upkeep(&store).await;
                continue;
            }
            () = shutdown.wait() => None,
        };
        let Some(lesson) = lesson else {
            return;
        };
        if lesson.uids.len() > MAX_LESSON {
            tracing::info!(
                "spam filter: learning from {MAX_LESSON} of {} messages moved at once",
                lesson.uids.len()
            );
        }
        for &uid in lesson.uids.iter().take(MAX_LESSON) {
            if let Err(e) = learn_one(&store, &lesson, uid, true).await {
                tracing::warn!("spam filter: learning from a message failed: {e}");
            }
        }
    }
}

/// The first upkeep after start, and how often it runs after that.
const UPKEEP_FIRST: Duration = Duration::from_secs(600);
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);
/// Tokens an account's filter keeps at most (about 5 MB of table); the SpamAssassin corpus
/// trains about 100,000.
pub const MAX_TOKENS: u64 = 150_000;
/// Days a sender's reputation is kept without a new count.
const REPUTATION_DAYS: i64 = 365;
/// Sender keys an account keeps at most (a botnet brings a handful per message).
pub const MAX_REPUTATION: u64 = 50_000;
/// Read mail kept in the INBOX this long teaches ham...
const KEPT_FOR: i64 = 3 * 86_400;
/// ...if it arrived within this long (older mail says little about today's mail).
const KEPT_WITHIN: i64 = 30 * 86_400;
/// Kept messages learned per account and upkeep.
const KEPT_PER_RUN: u32 = 100;

/// The filter's hourly upkeep, for every account that teaches its filter spam: tokens pruned
/// to [`MAX_TOKENS`], reputation unused for a year forgotten, and the mail the user read and
/// kept in the INBOX for three days taught as ham.
///
/// Why read-and-kept mail teaches ham: users move spam into Junk, but almost never say "not
/// spam" of good mail, and Bayes says nothing until it has seen ten of each. Mail a user read
/// and left in the INBOX for days is what they want; spam that slipped through is usually
/// deleted or junked within a day. It is learned as ham only (the user's word counts more:
/// such mail changes no reputation), only for accounts that use Junk, and only once: a
/// message moved to Junk later is untaught as ham by the move.
pub async fn upkeep(store: &Store) {
    let accounts = match store.spam_learning_accounts().await {
        Ok(accounts) => accounts,
        Err(e) => {
            tracing::warn!("spam filter upkeep: {e}");
            return;
        }
    };
    // Every account's reputation, whether or not it uses Junk: deliveries count senders for
    // all of them.
    match store
        .prune_reputation(REPUTATION_DAYS, MAX_REPUTATION)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!("spam filter: forgot {n} senders' reputation"),
        Err(e) => tracing::warn!("spam filter upkeep: {e}"),
    }
    let now = crate::store::now();
    for account_id in accounts {
        if let Err(e) = upkeep_one(store, account_id, now).await {
            tracing::warn!("spam filter upkeep of account {account_id}: {e}");
        }
    }
}

async fn upkeep_one(
    store: &Store,
    account_id: i64,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    let pruned = store.prune_spam_tokens(account_id, MAX_TOKENS).await?;
    if pruned > 0 {
        tracing::info!("spam filter: pruned {pruned} rare or old tokens of account {account_id}");
    }
    let kept = store
        .kept_untaught(account_id, now - KEPT_WITHIN, now - KEPT_FOR, KEPT_PER_RUN)
        .await?;
    if let Some((inbox, uids)) = kept {
        let lesson = Lesson {
            account_id,
            mailbox: inbox,
            uids,
            as_spam: false,
        };
        for &uid in &lesson.uids {
            // One message that cannot be learned (expunged meanwhile) stops nothing.
            if let Err(e) = learn_one(store, &lesson, uid, false).await {
                tracing::debug!("spam filter upkeep: message {uid} of account {account_id}: {e}");
            }
        }
    }
    Ok(())
}

/// Learns one message of `lesson`; `said` when the user moved or marked it (their word
/// also counts in the sender's reputation), not when the upkeep learns from kept mail.
async fn learn_one(
    store: &Store,
    lesson: &Lesson,
    uid: u32,
    said: bool,
) -> Result<(), crate::store::StoreError> {
    let raw = store.message_body(&lesson.mailbox, uid).await?;
    let digest: String = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Taught this way already (a second COPY into Junk): nothing to tokenize.
    let before = store.spam_trained_as(lesson.account_id, &digest).await?;
    if before == Some(lesson.as_spam) {
        return Ok(());
    }
    // The user's word about the sender first, so that once the filter counts the message as
    // learned (the settings page shows it) the sender's reputation has it too.
    if said {
        let judged = Judgement::read(&header_section(&raw));
        word_about_sender(store, lesson, judged, before.is_none()).await?;
    }
    // Tokenizing parses up to 256 KiB: on the blocking pool, not a runtime thread.
    let (tokens, digest) =
        tokio::task::spawn_blocking(move || (super::tokens::hashed(&raw), digest))
            .await
            .map_err(|e| crate::store::StoreError::Unavailable(format!("tokenizer: {e}")))?;
    store
        .train_spam(lesson.account_id, &digest, &tokens, lesson.as_spam)
        .await?;
    Ok(())
}

/// What the user's move says of the sender: every key the delivery recorded counts
/// [`USER_WEIGHT`] times as spam or ham. A first judgement also takes back what the delivery
/// counted the other way. A reversal takes nothing back (the lesson before may have been
/// the upkeep's, which counted nothing): moved in and out again, the sender is even.
///
/// [`USER_WEIGHT`]: super::reputation::USER_WEIGHT
async fn word_about_sender(
    store: &Store,
    lesson: &Lesson,
    judged: Option<Judgement>,
    first: bool,
) -> Result<(), crate::store::StoreError> {
    let Some(judged) = judged else {
        return Ok(());
    };
    let weight = super::reputation::USER_WEIGHT;
    let (spam, ham) = match lesson.as_spam {
        true => (weight, 0),
        false => (0, weight),
    };
    let all: Vec<String> = judged.keys.iter().map(|k| k.key.clone()).collect();
    store
        .count_reputation(lesson.account_id, &all, spam, ham)
        .await?;
    let Some(junked) = judged.junked.filter(|j| first && *j != lesson.as_spam) else {
        return Ok(());
    };
    let counted: Vec<String> = judged
        .keys
        .iter()
        .filter(|k| super::reputation::classified(k, junked).is_some())
        .map(|k| k.key.clone())
        .collect();
    if counted.is_empty() {
        return Ok(());
    }
    // The delivery's count may still be in memory: written first, then taken back.
    store.flush_reputation().await?;
    let (s, h) = if junked { (-1, 0) } else { (0, -1) };
    store
        .count_reputation(lesson.account_id, &counted, s, h)
        .await
}

/// The header section of `raw` (at most 64 KiB of it), kept while the body is tokenized.
fn header_section(raw: &[u8]) -> Vec<u8> {
    let end = crate::mime::raw_header(raw).body_start.min(64 * 1024);
    raw.get(..end).unwrap_or(raw).to_vec()
}

/// What delivery wrote about a message's sender: its reputation keys (with whether each is
/// verified) and whether it was junked; from our `X-Mailroom-Spam:` field, or, for mail that
/// did not come through our MX, the `From:` address and domain, unverified and unjudged.
struct Judgement {
    keys: Vec<super::reputation::Key>,
    junked: Option<bool>,
}

impl Judgement {
    fn read(raw: &[u8]) -> Option<Judgement> {
        let header = crate::mime::raw_header(raw);
        let field = |name: &str| {
            header
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .map(|f| String::from_utf8_lossy(f.value).into_owned())
        };
        if let Some(value) = field(super::verdict::FIELD) {
            return Some(Judgement {
                keys: super::reputation::recorded(&super::verdict::keys_of(&value)),
                junked: super::verdict::junked(&value),
            });
        }
        let from = field("From")?;
        let address = crate::mime::mailboxes(from.as_bytes())
            .ok()?
            .into_iter()
            .next()?
            .address
            .to_ascii_lowercase();
        let sender = super::reputation::Sender {
            from: Some(address),
            ..Default::default()
        };
        Some(Judgement {
            keys: sender.keys(),
            junked: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::lesson;

    #[test]
    fn what_a_move_teaches() {
        let (junk, trash, inbox) = (Some("\\Junk"), Some("\\Trash"), None);
        assert_eq!(lesson(inbox, junk, true), Some(true));
        assert_eq!(lesson(inbox, junk, false), Some(true));
        assert_eq!(lesson(junk, inbox, true), Some(false));
        assert_eq!(lesson(junk, Some("\\Archive"), true), Some(false));
        assert_eq!(lesson(junk, trash, true), None);
        assert_eq!(lesson(junk, inbox, false), None);
        assert_eq!(lesson(junk, junk, true), None);
        assert_eq!(lesson(inbox, trash, true), None);
    }
}
