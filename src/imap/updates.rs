//! Keeping a session up to date with other sessions and deliveries: reading the change bus,
//! catching the selected mailbox up with the store (`Store::changes_since`), writing the
//! untagged EXISTS / EXPUNGE / FETCH reports, and IDLE (RFC 2177), which does the same as soon
//! as a change is announced.

use std::io;

use imap_codec::IdleDoneCodec;
use imap_codec::fragmentizer::FragmentInfo;
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;

use super::framing::MAX_LINE;
use super::response::{FlagItems, Out};
use super::selected::{Selected, Update};
use super::seqset::compact;
use super::session::{CmdError, CmdResult, Reply, Session};
use crate::net::Transport;
use crate::store::{Account, Change, StoreError};

impl<T: Transport> Session<T> {
    /// IDLE (RFC 2177): report changes as they are announced until the client sends DONE.
    pub(super) async fn idle(&mut self) -> CmdResult {
        self.out.text("+ idling").crlf();
        self.dirty = true;
        if let Err(e) = Box::pin(self.sync(true)).await {
            tracing::error!("imap: reading mailbox changes failed: {e}");
        }
        self.flush().await?;
        loop {
            // A DONE (or anything else) already buffered ends the IDLE.
            if self.progress_line() {
                self.line_start = 0;
                return Ok(match self.frag.decode_message(&IdleDoneCodec::default()) {
                    Ok(_) => Reply::ok("IDLE terminated"),
                    Err(_) => Reply::bad("expected DONE to end IDLE"),
                });
            }
            if self.frag.message_bytes().len() > MAX_LINE {
                return Err(CmdError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "line too long in IDLE",
                )));
            }
            let waiting = self.waiting_for_command();
            let room = self.rbuf.room(waiting);
            let changes = &mut self.changes;
            tokio::select! {
                read = self.io.read(room) => {
                    let n = read?;
                    if n == 0 {
                        return Err(CmdError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                    self.frag.enqueue_bytes(self.rbuf.filled(n));
                }
                change = recv(changes) => {
                    let relevant = match change {
                        Ok(c) => self.concerns(&c),
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    if relevant {
                        self.dirty = true;
                        if let Err(e) = Box::pin(self.sync(true)).await {
                            tracing::error!("imap: reading mailbox changes failed: {e}");
                        }
                        self.flush().await?;
                    }
                }
                _ = self.shutdown.wait() => {
                    self.out.untagged("BYE server shutting down");
                    self.flush().await?;
                    return Err(CmdError::Io(io::ErrorKind::ConnectionAborted.into()));
                }
                _ = self.revoked.wait() => {
                    self.out.untagged(super::framing::REVOKED_BYE);
                    self.flush().await?;
                    return Err(CmdError::Io(io::ErrorKind::ConnectionAborted.into()));
                }
            }
        }
    }

    /// Advances the fragmentizer; true once it holds a complete line.
    fn progress_line(&mut self) -> bool {
        while let Some(fragment) = self.frag.progress() {
            match fragment {
                FragmentInfo::Line {
                    announcement: None, ..
                } => return true,
                // No literal belongs in IDLE's DONE: decoding will fail and say so.
                FragmentInfo::Line { .. } => self.frag.poison_message(),
                FragmentInfo::Literal { .. } => {}
            }
        }
        false
    }

    pub(super) fn concerns(&self, change: &Change) -> bool {
        let (Some(account), Some(selected)) = (&self.account, &self.selected) else {
            return false;
        };
        concerns(account, selected, change)
    }

    /// Reads the change announcements waiting for this session.
    pub(super) fn drain_changes(&mut self) {
        let mut dirty = false;
        if let Some(rx) = &mut self.changes {
            loop {
                match rx.try_recv() {
                    Ok(change) => {
                        let (Some(account), Some(selected)) = (&self.account, &self.selected)
                        else {
                            continue;
                        };
                        dirty |= concerns(account, selected, &change);
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                    Err(_) => break,
                }
            }
        }
        self.dirty |= dirty;
    }

    /// Catches the selected mailbox up with the store and writes the untagged reports.
    pub(super) async fn sync(&mut self, allow_expunge: bool) -> Result<(), StoreError> {
        self.drain_changes();
        let Some(selected) = &self.selected else {
            self.dirty = false;
            return Ok(());
        };
        if !(self.dirty || (allow_expunge && selected.has_pending())) {
            return Ok(());
        }
        self.dirty = false;
        let (mailbox, since) = (selected.mailbox.clone(), selected.highestmodseq);
        let Some(changes) = self.imap.store.changes_since(&mailbox, since).await? else {
            // The mailbox was deleted under us: nothing sensible is left to show.
            self.out.untagged("BYE the selected mailbox was deleted");
            self.logout = true;
            return Ok(());
        };
        // \Recent (IMAP4rev1): the new messages are claimed before they are reported, so the
        // RECENT count and their FLAGS say whether this session is the one that has them.
        let claim = self.selected.as_ref().and_then(|s| {
            let known = s.max_uid();
            let newest = changes
                .changed
                .iter()
                .map(|c| c.uid)
                .filter(|&u| u > known)
                .max()?;
            s.reports_recent()
                .then(|| (newest.saturating_add(1), !s.read_only))
        });
        if let Some((upto, claim)) = claim {
            let first = self.imap.store.claim_recent(&mailbox, upto, claim).await?;
            if let Some(selected) = &mut self.selected {
                selected.add_recent(first, upto);
            }
        }
        let (condstore, qresync) = (self.condstore, self.qresync);
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        let changed: Vec<u32> = changes.changed.iter().map(|c| c.uid).collect();
        let updates = selected.apply(changes, allow_expunge);
        // Kept results (CONTEXT=SEARCH) lose their expunged messages while the sequence
        // numbers still name them, and learn of new matches after EXISTS.
        self.contexts_expunged(&updates);
        if let Some(selected) = &self.selected {
            write_updates(&mut self.out, selected, &updates, condstore, qresync);
        }
        self.contexts_refresh(&changed).await;
        Ok(())
    }
}

/// Whether a change is to the messages of the selected mailbox.
fn concerns(account: &Account, selected: &Selected, change: &Change) -> bool {
    change.account_id() == account.id && change.mailbox() == Some(selected.mailbox.id())
}

/// Writes untagged reports in order. Once QRESYNC is enabled, expunges go out as one
/// `* VANISHED uid-set` instead of `* n EXPUNGE` lines (RFC 7162 §3.2.10.2).
pub(super) fn write_updates(
    out: &mut Out,
    selected: &Selected,
    updates: &[Update],
    condstore: bool,
    qresync: bool,
) {
    let mut vanished: Vec<u32> = Vec::new();
    for update in updates {
        match update {
            Update::Expunge { uid, .. } if qresync => vanished.push(*uid),
            other => {
                write_vanished(out, &mut vanished);
                write_update(out, selected, other, condstore);
            }
        }
    }
    write_vanished(out, &mut vanished);
}

fn write_vanished(out: &mut Out, uids: &mut Vec<u32>) {
    if uids.is_empty() {
        return;
    }
    // Expunges are produced highest sequence number first; the set is written ascending.
    uids.sort_unstable();
    out.untagged(&format!("VANISHED {}", compact(uids)));
    uids.clear();
}

/// Writes one untagged report.
fn write_update(out: &mut Out, selected: &Selected, update: &Update, condstore: bool) {
    match update {
        Update::Expunge { seq, .. } => out.untagged(&format!("{seq} EXPUNGE")),
        Update::Exists(n) => out.untagged(&format!("{n} EXISTS")),
        Update::Recent(n) => out.untagged(&format!("{n} RECENT")),
        Update::Keywords => {
            write_flag_lists(out, selected.keywords(), selected.read_only);
            out
        }
        Update::Flags(seq, state) => {
            let items = FlagItems {
                uid: true,
                flags: Some(selected.is_recent(state.uid)),
                modseq: condstore,
            };
            out.flag_fetch(*seq, state, items)
        }
    };
}

/// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]` with the keywords known in the mailbox: at
/// SELECT, and again whenever a keyword new to the session appears (RFC 3501 §7.2.6: the
/// FLAGS response tells the client which flags it may see). A read-only mailbox permits none.
pub(super) fn write_flag_lists(out: &mut Out, keywords: &[String], read_only: bool) {
    let kw: String = keywords.iter().map(|k| format!(" {k}")).collect();
    out.untagged(&format!(
        "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})"
    ));
    if read_only {
        out.untagged("OK [PERMANENTFLAGS ()] read-only mailbox");
    } else {
        out.untagged(&format!(
            "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw} \\*)] flags permitted"
        ));
    }
}

/// Announces, before a response shows them, keywords of `keywords` the session has not been
/// told of (FETCH and STORE read flags fresh from the store, ahead of the catching up).
pub(super) fn announce_keywords<'a>(
    out: &mut Out,
    selected: &mut Selected,
    keywords: impl IntoIterator<Item = &'a String>,
) {
    if selected.learn_keywords(keywords) {
        write_flag_lists(out, selected.keywords(), selected.read_only);
    }
}

/// Waits for the next change, or forever when there is no receiver.
async fn recv(
    changes: &mut Option<broadcast::Receiver<Change>>,
) -> Result<Change, broadcast::error::RecvError> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
