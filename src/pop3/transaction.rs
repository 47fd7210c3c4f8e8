//! The TRANSACTION state (RFC 1939 §5) and the UPDATE state (§6).
//!
//! Everything works on the snapshot taken at login ([`Maildrop`]); the store is read only for
//! bodies and sizes. DELE only marks; QUIT expunges every marked message in one call to
//! [`Store::expunge`], the same transaction IMAP EXPUNGE uses, so quota and IMAP sessions see
//! the removal at once. Deleted messages are invisible to every command until RSET.
//!
//! [`Store::expunge`]: crate::store::Store::expunge

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

/// The body of the message RETR will most likely be asked for next, being read.
pub(super) struct Prefetch {
    uid: u32,
    task: tokio::task::JoinHandle<Result<Vec<u8>, StoreError>>,
}

impl Prefetch {
    fn start(store: &Store, mailbox: Mailbox, uid: u32) -> Prefetch {
        let store = store.clone();
        Prefetch {
            uid,
            task: tokio::spawn(async move { store.message_body(&mailbox, uid).await }),
        }
    }
}

impl Drop for Prefetch {
    /// A prefetch nobody asked for (another command came, the session ended) stops reading.
    fn drop(&mut self) {
        self.task.abort();
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

    /// RETR: clients fetch messages in order, so while message `n` is written, the body of the
    /// next live message is already being read (one body ahead at most, dropped with the
    /// session). Reading the database is then off the path between two RETRs.
    pub(super) async fn retr(&mut self, n: u32) -> Outcome {
        let shared = self.shared.clone();
        let prefetched = self.prefetch.take();
        let maildrop = self.maildrop()?;
        let uid = maildrop.get(n).map_err(no_message)?.uid;
        let body = match prefetched {
            Some(mut p) if p.uid == uid => match (&mut p.task).await {
                Ok(read) => answer(n, read)?,
                // The reading task failed: read it here instead.
                Err(_) => body(&shared.store, &maildrop.mailbox, n, uid).await?,
            },
            _ => body(&shared.store, &maildrop.mailbox, n, uid).await?,
        };
        let size = transfer::size(&body);
        maildrop.set_size(n, size);
        let next = maildrop
            .live()
            .find(|(m, _)| *m > n)
            .map(|(_, entry)| entry.uid);
        let mailbox = maildrop.mailbox.clone();
        self.prefetch = next.map(|uid| Prefetch::start(&shared.store, mailbox, uid));
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
