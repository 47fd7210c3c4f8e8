//! The TRANSACTION state (RFC 1939 §5) and the UPDATE state (§6).
//!
//! Everything works on the snapshot taken at login ([`Maildrop`]); the store is read only for
//! bodies and sizes. DELE only marks; QUIT expunges every marked message in one call to
//! [`Store::expunge`], the same transaction IMAP EXPUNGE uses, so quota and IMAP sessions see
//! the removal at once. Deleted messages are invisible to every command until RSET.
//!
//! [`Store::expunge`]: crate::store::Store::expunge

use std::collections::VecDeque;
use std::fmt::Write as _;

use tokio::io::AsyncWriteExt;

use super::maildrop::{Maildrop, NoMessage};
use super::session::{Fail, Flow, Outcome, Refusal, Session, State};
use super::transfer::{self, CHUNK, Encoder};
use crate::store::{Mailbox, Store, StoreError};

fn no_message(e: NoMessage) -> Fail {
    Refusal::answer(e.to_string()).into()
}

fn unreadable(e: StoreError) -> Fail {
    Refusal::ours("cannot read the maildrop, try again later", e).into()
}

/// The body of message `n` (`uid` in `mailbox`), or a refusal when another session expunged
/// it meanwhile.
async fn body(store: &Store, mailbox: &Mailbox, n: u32, uid: u32) -> Result<Vec<u8>, Fail> {
    answer(n, store.message_body(mailbox, uid).await)
}

fn answer(n: u32, read: Result<Vec<u8>, StoreError>) -> Result<Vec<u8>, Fail> {
    match read {
        Ok(body) => Ok(body),
        Err(StoreError::NotFound(_)) => {
            Err(Refusal::answer(format!("message {n} was removed by another session")).into())
        }
        Err(e) => Err(unreadable(e)),
    }
}

/// How many messages RETR reads ahead in one query, and how many bytes (stored size) at most.
const BATCH: usize = 32;
const BATCH_BYTES: u64 = 256 * 1024;

/// The bodies RETR will most likely be asked for next: clients fetch messages in order, so
/// the following messages are read in batches (one query each, `Store::message_bodies_within`)
/// while the current ones are written. At most the batch being read and the one before it are
/// held, each within `BATCH_BYTES` plus one message.
#[derive(Default)]
pub(super) struct Prefetch {
    /// Bodies read, by ascending UID.
    ready: VecDeque<(u32, Vec<u8>)>,
    /// The batch being read.
    reading: Option<Reading>,
}

/// Bodies with their UIDs, ascending.
type Bodies = Vec<(u32, Vec<u8>)>;

struct Reading {
    /// The lowest and highest UID asked for.
    first: u32,
    last: u32,
    task: tokio::task::JoinHandle<Result<Bodies, StoreError>>,
}

impl Drop for Reading {
    /// A batch nobody asked for (the session ended, the client went elsewhere) stops reading.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Prefetch {
    /// The body of `uid` if it was read ahead or is being read; `None` sends the caller to
    /// the store (a message asked out of order, a failed batch, one expunged meanwhile).
    /// Bodies of UIDs below it, which the client skipped, are let go.
    async fn take(&mut self, uid: u32) -> Option<Vec<u8>> {
        loop {
            while self.ready.front().is_some_and(|(u, _)| *u < uid) {
                self.ready.pop_front();
            }
            if let Some((u, _)) = self.ready.front() {
                return if *u == uid {
                    self.ready.pop_front().map(|(_, body)| body)
                } else {
                    None
                };
            }
            let reading = self.reading.as_mut()?;
            if uid < reading.first {
                return None;
            }
            if uid > reading.last {
                self.reading = None;
                return None;
            }
            let read = (&mut reading.task).await;
            self.reading = None;
            match read {
                Ok(Ok(bodies)) if !bodies.is_empty() => self.ready.extend(bodies),
                _ => return None,
            }
        }
    }

    /// Starts reading the next batch after `uid` (the live UIDs `after` gives, ascending) when
    /// none is being read and fewer than half a batch are left.
    fn plan(
        &mut self,
        store: &Store,
        mailbox: &Mailbox,
        uid: u32,
        after: impl Iterator<Item = u32>,
    ) {
        if self.reading.is_some() || self.ready.len() >= BATCH / 2 {
            return;
        }
        let from = self.ready.back().map_or(uid, |(u, _)| (*u).max(uid));
        let uids: Vec<u32> = after.filter(|u| *u > from).take(BATCH).collect();
        let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
            return;
        };
        let store = store.clone();
        let mailbox = mailbox.clone();
        self.reading = Some(Reading {
            first,
            last,
            task: tokio::spawn(async move {
                store
                    .message_bodies_within(&mailbox, &uids, BATCH_BYTES)
                    .await
            }),
        });
    }
}

impl Session {
    fn maildrop(&mut self) -> Result<&mut Maildrop, Fail> {
        match &mut self.state {
            State::Transaction { maildrop, .. } => Ok(maildrop),
            State::Authorization { .. } => Err(Refusal::strike("not logged in").into()),
        }
    }

    pub(super) async fn stat(&mut self) -> Outcome {
        let shared = self.shared.clone();
        let maildrop = self.maildrop()?;
        maildrop
            .compute_sizes(&shared.store)
            .await
            .map_err(unreadable)?;
        let (n, octets) = maildrop.stat();
        self.ok(&format!("{n} {octets}"));
        Ok(Flow::Continue)
    }

    pub(super) async fn list(&mut self, n: Option<u32>) -> Outcome {
        let shared = self.shared.clone();
        let maildrop = self.maildrop()?;
        let Some(n) = n else {
            maildrop
                .compute_sizes(&shared.store)
                .await
                .map_err(unreadable)?;
            let (count, octets) = maildrop.stat();
            let mut listing = String::with_capacity(count * 12);
            for (n, entry) in maildrop.live() {
                let _ = write!(listing, "{n} {}\r\n", entry.size.unwrap_or(0));
            }
            self.ok(&format!("{count} messages ({octets} octets)"));
            self.out().extend_from_slice(listing.as_bytes());
            self.line(".");
            return Ok(Flow::Continue);
        };
        let entry = maildrop.get(n).map_err(no_message)?.clone();
        let size = match entry.size {
            Some(size) => size,
            None => {
                let body = body(&shared.store, &maildrop.mailbox, n, entry.uid).await?;
                let size = transfer::size(&body);
                maildrop.set_size(n, size);
                size
            }
        };
        self.ok(&format!("{n} {size}"));
        Ok(Flow::Continue)
    }

    pub(super) fn uidl(&mut self, n: Option<u32>) -> Outcome {
        let maildrop = self.maildrop()?;
        let Some(n) = n else {
            let mut listing = String::with_capacity(maildrop.len() * 24);
            for (n, entry) in maildrop.live() {
                let _ = write!(listing, "{n} {}\r\n", maildrop.uidl(entry));
            }
            self.ok("unique-id listing follows");
            self.out().extend_from_slice(listing.as_bytes());
            self.line(".");
            return Ok(Flow::Continue);
        };
        let entry = maildrop.get(n).map_err(no_message)?;
        let uidl = maildrop.uidl(entry);
        self.ok(&format!("{n} {uidl}"));
        Ok(Flow::Continue)
    }

    /// RETR: clients fetch messages in order, so while message `n` is written, the bodies of
    /// the next live messages are being read, a batch at a time (see [`Prefetch`]). Reading the
    /// database is then off the path between two RETRs.
    pub(super) async fn retr(&mut self, n: u32) -> Outcome {
        let shared = self.shared.clone();
        let mut prefetch = std::mem::take(&mut self.prefetch);
        let maildrop = self.maildrop()?;
        let uid = maildrop.get(n).map_err(no_message)?.uid;
        let body = match prefetch.take(uid).await {
            Some(body) => body,
            None => body(&shared.store, &maildrop.mailbox, n, uid).await?,
        };
        let size = transfer::size(&body);
        maildrop.set_size(n, size);
        let after = maildrop.live().map(|(_, entry)| entry.uid);
        prefetch.plan(&shared.store, &maildrop.mailbox, uid, after);
        self.prefetch = prefetch;
        self.ok(&format!("{size} octets"));
        self.send(Encoder::message(&body)).await?;
        self.retrieved += 1;
        Ok(Flow::Continue)
    }

    pub(super) async fn top(&mut self, n: u32, lines: u32) -> Outcome {
        let shared = self.shared.clone();
        let maildrop = self.maildrop()?;
        let uid = maildrop.get(n).map_err(no_message)?.uid;
        let body = body(&shared.store, &maildrop.mailbox, n, uid).await?;
        maildrop.set_size(n, transfer::size(&body));
        self.ok("top of message follows");
        self.send(Encoder::top(&body, lines)).await?;
        Ok(Flow::Continue)
    }

    /// Streams an encoded message after the replies already buffered, a chunk at a time.
    async fn send(&mut self, mut encoder: Encoder<'_>) -> std::io::Result<()> {
        while encoder.fill(self.out()) {
            if self.out().len() >= CHUNK {
                let chunk = std::mem::take(self.out());
                self.conn.stream.write_all(&chunk).await?;
                // Keep the allocation for the next chunk.
                *self.out() = chunk;
                self.out().clear();
            }
        }
        Ok(())
    }

    pub(super) fn dele(&mut self, n: u32) -> Outcome {
        self.maildrop()?.delete(n).map_err(no_message)?;
        self.ok(&format!("message {n} deleted"));
        Ok(Flow::Continue)
    }

    pub(super) fn rset(&mut self) -> Outcome {
        let maildrop = self.maildrop()?;
        maildrop.reset();
        let n = maildrop.len();
        self.ok(&format!("maildrop has {n} messages"));
        Ok(Flow::Continue)
    }

    /// QUIT in TRANSACTION: the UPDATE state. The lock is released before the reply goes out,
    /// so a client that reconnects at once is not told the maildrop is in use.
    pub(super) async fn update(&mut self) -> Outcome {
        let shared = self.shared.clone();
        let maildrop = self.maildrop()?;
        let uids = maildrop.deleted_uids();
        let mailbox = maildrop.mailbox.clone();
        let result = shared.store.expunge(&mailbox, &uids).await;
        self.state = State::Authorization { user: None };
        match result {
            Ok(_) => {
                self.deleted = uids.len();
                let plural = if uids.len() == 1 { "" } else { "s" };
                self.ok(&format!(
                    "{} POP3 server signing off ({} message{plural} deleted)",
                    shared.settings.hostname,
                    uids.len()
                ));
            }
            Err(e) => {
                tracing::error!("pop3: expunge at QUIT failed: {e}");
                self.err(Some("SYS/TEMP"), "some deleted messages not removed");
            }
        }
        Ok(Flow::Close)
    }
}
