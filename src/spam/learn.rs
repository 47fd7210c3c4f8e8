//! Learning from what users do, off the request path: a message moved or copied into Junk is
//! spam; one moved out of Junk to anywhere but Trash is ham (which also takes back what moving
//! it in taught). The session hands a [`Lesson`] to a bounded queue and answers at once; one
//! task reads the messages and trains the account's filter. A full queue drops the lesson
//! (counted, logged): learning must never slow or fail what the user is doing.

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;
use crate::store::{Mailbox, Store, Trained};

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

async fn run(store: Store, mut rx: mpsc::Receiver<Lesson>, shutdown: Shutdown) {
    loop {
        let lesson = tokio::select! {
            l = rx.recv() => l,
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
            if let Err(e) = learn_one(&store, &lesson, uid).await {
                tracing::warn!("spam filter: learning from a message failed: {e}");
            }
        }
    }
}

async fn learn_one(
    store: &Store,
    lesson: &Lesson,
    uid: u32,
) -> Result<(), crate::store::StoreError> {
    let raw = store.message_body(&lesson.mailbox, uid).await?;
    let digest: String = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Taught this way already (a second COPY into Junk): nothing to tokenize.
    if store.spam_trained_as(lesson.account_id, &digest).await? == Some(lesson.as_spam) {
        return Ok(());
    }
    let raw_head = header_section(&raw);
    // Tokenizing parses up to 256 KiB: on the blocking pool, not a runtime thread.
    let (tokens, digest) =
        tokio::task::spawn_blocking(move || (super::tokens::hashed(&raw), digest))
            .await
            .map_err(|e| crate::store::StoreError::Unavailable(format!("tokenizer: {e}")))?;
    let trained = store
        .train_spam(lesson.account_id, &digest, &tokens, lesson.as_spam)
        .await?;
    if trained == Trained::Already {
        return Ok(());
    }
    // The user's word about the sender: every key the delivery recorded counts
    // USER_WEIGHT times; a reversal takes back the word before, and the classification at
    // delivery is replaced by the user's.
    let Some(judged) = Judgement::read(&raw_head) else {
        return Ok(());
    };
    let weight = super::reputation::USER_WEIGHT;
    let (mut spam, mut ham) = match lesson.as_spam {
        true => (weight, 0),
        false => (0, weight),
    };
    if trained == Trained::Reversed {
        match lesson.as_spam {
            true => ham -= weight,
            false => spam -= weight,
        }
    }
    let mut all = Vec::new();
    let mut classified = Vec::new();
    for (key, verified) in &judged.keys {
        all.push(key.clone());
        // What delivery counted for this key, which the user now overrules.
        if trained == Trained::New && judged.junked != Some(lesson.as_spam) {
            if let Some(junked) = judged.junked {
                let k = super::reputation::Key {
                    key: key.clone(),
                    verified: *verified,
                };
                if super::reputation::classified(&k, junked).is_some() {
                    classified.push(key.clone());
                }
            }
        }
    }
    store
        .count_reputation(lesson.account_id, &all, spam, ham)
        .await?;
    if let Some(junked) = judged.junked.filter(|_| !classified.is_empty()) {
        let (s, h) = if junked { (-1, 0) } else { (0, -1) };
        store
            .count_reputation(lesson.account_id, &classified, s, h)
            .await?;
    }
    Ok(())
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
    keys: Vec<(String, bool)>,
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
            let keys = super::verdict::keys_of(&value)
                .into_iter()
                .map(|k| match k.strip_prefix('~') {
                    Some(k) => (k.to_string(), false),
                    None => (k, true),
                })
                .filter(|(k, _)| !super::reputation::recorded(std::slice::from_ref(k)).is_empty())
                .collect();
            return Some(Judgement {
                keys,
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
            keys: sender.keys().into_iter().map(|k| (k.key, false)).collect(),
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
