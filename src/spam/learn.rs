//! Learning from what users do, off the request path: a message moved or copied into Junk is
//! spam; one moved out of Junk to anywhere but Trash is ham (which also takes back what moving
//! it in taught). The session hands a [`Lesson`] to a bounded queue and answers at once; one
//! task reads the messages and trains the account's filter. A full queue drops the lesson
//! (counted, logged): learning must never slow or fail what the user is doing.

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
