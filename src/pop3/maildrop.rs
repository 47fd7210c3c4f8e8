//! The maildrop a POP3 session works on: the account's INBOX as it was at login, and the lock
//! that keeps a second POP3 session out of it.
//!
//! - **Snapshot.** RFC 1939 numbers messages 1..n for the whole session, so the list of UIDs
//!   (with body ids) is taken once at login; mail delivered later waits for the next session.
//!   Deletion marks live here until QUIT, which expunges them in one store transaction.
//! - **Sizes** are computed lazily: STAT and a bare LIST compute every size they lack in one
//!   pass over the bodies ([`Store::message_bodies`]), LIST n and RETR n the one they need.
//!   Logins that only ask UIDL and RETR never scan the mailbox. A computed size is kept for
//!   the session, so LIST, STAT and RETR always agree, and in a process-wide [`SizeCache`]
//!   keyed like UIDL (a message's bytes never change), so a client that polls a kept maildrop
//!   every few minutes (Gmail, fetchmail with `keep`) does not re-read every body each time.
//!   The cache is bounded and simply emptied when full; a restart starts it afresh.
//! - **UIDL** is `{uidvalidity:08x}{uid:08x}`: UIDs are never reused within a UIDVALIDITY and
//!   UIDVALIDITY values are never reused by the store, so a UIDL names one message forever.
//! - **The lock** is in-process (one server process owns the database): a set of account ids
//!   behind a mutex, shared by the 110 and 995 listeners; [`MaildropLock`] releases it on drop,
//!   so a session that ends in any way (QUIT, error, dropped connection, shutdown) frees it.
//!   IMAP sessions do not take it: they may expunge a message a POP3 session still lists, and
//!   RETR of it then answers `-ERR` (the body is gone) rather than serving stale data; only
//!   a body RETR had already read ahead (the next message, see `transaction.rs`) before the
//!   expunge is still served, as it would have been had the client asked a moment sooner.
//!
//! [`Store::message_bodies`]: crate::store::Store::message_bodies

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;

use super::transfer;
use crate::store::{Mailbox, MessageMeta, Store, StoreError};

/// The account ids whose maildrop a POP3 session holds.
#[derive(Default)]
pub struct Locks(Mutex<HashSet<i64>>);

impl Locks {
    /// Takes the lock of `account_id`, or `None` when another session holds it.
    pub fn try_lock(self: &Arc<Self>, account_id: i64) -> Option<MaildropLock> {
        let mut held = self.0.lock().ok()?;
        held.insert(account_id).then(|| MaildropLock {
            locks: self.clone(),
            account_id,
        })
    }

    #[cfg(test)]
    fn is_locked(&self, account_id: i64) -> bool {
        self.0.lock().is_ok_and(|h| h.contains(&account_id))
    }
}

/// Sizes as sent (see `transfer::size`) by (UIDVALIDITY, UID). UIDVALIDITY values are unique
/// across the whole database, so the pair names one immutable message: an entry never goes
/// stale, at worst it outlives its message.
#[derive(Default)]
pub struct SizeCache(Mutex<HashMap<(u32, u32), u64>>);

/// About 10 MB of entries.
const SIZE_CACHE_MAX: usize = 250_000;

impl SizeCache {
    fn get(&self, uidvalidity: u32, uid: u32) -> Option<u64> {
        self.0.lock().ok()?.get(&(uidvalidity, uid)).copied()
    }

    fn insert(&self, uidvalidity: u32, sizes: impl IntoIterator<Item = (u32, u64)>) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        for (uid, size) in sizes {
            if map.len() >= SIZE_CACHE_MAX {
                map.clear();
            }
            map.insert((uidvalidity, uid), size);
        }
    }
}

/// Holds one account's maildrop; released when dropped.
pub struct MaildropLock {
    locks: Arc<Locks>,
    account_id: i64,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        if let Ok(mut held) = self.locks.0.lock() {
            held.remove(&self.account_id);
        }
    }
}

/// One message of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    /// The size as sent (see `transfer::size`), once known.
    pub size: Option<u64>,
    pub deleted: bool,
}

/// Why a message number cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoMessage {
    #[error("no such message, only {0} in the maildrop")]
    NoSuch(usize),
    #[error("message {0} already deleted")]
    Deleted(u32),
}

pub struct Maildrop {
    /// The store's handle of the INBOX, for the expunge at QUIT.
    pub mailbox: Mailbox,
    uidvalidity: u32,
    entries: Vec<Entry>,
    sizes: Arc<SizeCache>,
    _lock: MaildropLock,
}

impl Maildrop {
    pub fn new(
        mailbox: &Mailbox,
        messages: Vec<MessageMeta>,
        lock: MaildropLock,
        sizes: Arc<SizeCache>,
    ) -> Maildrop {
        Maildrop {
            mailbox: mailbox.clone(),
            uidvalidity: mailbox.uidvalidity,
            entries: messages
                .into_iter()
                .map(|m| Entry {
                    uid: m.uid,
                    size: sizes.get(mailbox.uidvalidity, m.uid),
                    deleted: false,
                })
                .collect(),
            sizes,
            _lock: lock,
        }
    }

    /// Messages in the snapshot, deleted ones included (message numbers run 1..=len).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The message numbered `n`, unless it does not exist or is marked deleted.
    pub fn get(&self, n: u32) -> Result<&Entry, NoMessage> {
        let entry = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .ok_or(NoMessage::NoSuch(self.entries.len()))?;
        if entry.deleted {
            return Err(NoMessage::Deleted(n));
        }
        Ok(entry)
    }

    /// Undeleted messages with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (u32, &Entry)> {
        (1u32..)
            .zip(self.entries.iter())
            .filter(|(_, e)| !e.deleted)
    }

    pub fn uidl(&self, entry: &Entry) -> String {
        format!("{:08x}{:08x}", self.uidvalidity, entry.uid)
    }

    pub fn delete(&mut self, n: u32) -> Result<(), NoMessage> {
        self.get(n)?;
        if let Some(e) = self.entries.get_mut(n as usize - 1) {
            e.deleted = true;
        }
        Ok(())
    }

    /// Unmarks every deletion (RSET).
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            e.deleted = false;
        }
    }

    /// The UIDs marked for deletion, for the UPDATE state.
    pub fn deleted_uids(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect()
    }

    /// Records the size of message `n`, learnt from its body.
    pub fn set_size(&mut self, n: u32, size: u64) {
        if let Some(e) = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get_mut(i))
            .filter(|e| e.size.is_none())
        {
            e.size = Some(size);
            self.sizes.insert(self.uidvalidity, [(e.uid, size)]);
        }
    }

    /// Computes every size not yet known, in one pass over the mailbox's bodies. A message
    /// expunged meanwhile by another session counts as 0 octets (its RETR answers `-ERR`).
    pub async fn compute_sizes(&mut self, store: &Store) -> Result<(), StoreError> {
        let missing = self.entries.iter().filter(|e| e.size.is_none()).count();
        if missing == 0 {
            return Ok(());
        }
        // Snapshot UIDs ascend, and so do the bodies the store streams.
        let mut next = 0usize;
        let mut computed = Vec::with_capacity(missing);
        let mut bodies = store.message_bodies(&self.mailbox);
        while let Some((uid, body)) = bodies.try_next().await? {
            while self.entries.get(next).is_some_and(|e| e.uid < uid) {
                next += 1;
            }
            if let Some(e) = self
                .entries
                .get_mut(next)
                .filter(|e| e.uid == uid && e.size.is_none())
            {
                let size = transfer::size(&body);
                e.size = Some(size);
                computed.push((uid, size));
            }
        }
        self.sizes.insert(self.uidvalidity, computed);
        for e in &mut self.entries {
            e.size.get_or_insert(0);
        }
        Ok(())
    }

    /// (messages, octets) of the undeleted messages; sizes must have been computed.
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, e)| (n + 1, s + e.size.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_of(uids: &[u32], locks: &Arc<Locks>, account: i64) -> Maildrop {
        let mut mailbox = Mailbox::for_test(7, account, "INBOX");
        mailbox.uidvalidity = 0x6543_2100;
        mailbox.uidnext = 100;
        mailbox.highestmodseq = 1;
        let messages = uids
            .iter()
            .map(|uid| MessageMeta {
                id: i64::from(*uid),
                uid: *uid,
                modseq: 1,
                flags: Default::default(),
                keywords: Vec::new(),
                internal_date: 0,
                size: 10,
            })
            .collect();
        let lock = locks.try_lock(account).expect("lock");
        Maildrop::new(&mailbox, messages, lock, Arc::new(SizeCache::default()))
    }

    #[test]
    fn numbering_deletion_and_reset() {
        let locks = Arc::new(Locks::default());
        let mut m = drop_of(&[3, 5, 9], &locks, 1);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(2).unwrap().uid, 5);
        assert_eq!(m.get(0), Err(NoMessage::NoSuch(3)));
        assert_eq!(m.get(4), Err(NoMessage::NoSuch(3)));
        assert_eq!(m.get(u32::MAX), Err(NoMessage::NoSuch(3)));
        m.delete(2).unwrap();
        assert_eq!(m.delete(2), Err(NoMessage::Deleted(2)));
        assert_eq!(m.get(2), Err(NoMessage::Deleted(2)));
        assert_eq!(m.live().map(|(n, _)| n).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(m.deleted_uids(), [5]);
        m.set_size(1, 100);
        m.set_size(3, 20);
        assert_eq!(m.stat(), (2, 120));
        m.reset();
        assert!(m.deleted_uids().is_empty());
        assert_eq!(m.live().count(), 3);
    }

    #[test]
    fn sizes_are_remembered_across_sessions() {
        let locks = Arc::new(Locks::default());
        let cache = Arc::new(SizeCache::default());
        let mailbox = |uidvalidity| {
            let mut m = Mailbox::for_test(7, 1, "INBOX");
            m.uidvalidity = uidvalidity;
            m.uidnext = 100;
            m.highestmodseq = 1;
            m
        };
        let meta = |uid| MessageMeta {
            id: 1,
            uid,
            modseq: 1,
            flags: Default::default(),
            keywords: Vec::new(),
            internal_date: 0,
            size: 10,
        };
        let open = |uidvalidity| {
            let lock = locks.try_lock(1).expect("lock");
            Maildrop::new(
                &mailbox(uidvalidity),
                vec![meta(1), meta(2)],
                lock,
                cache.clone(),
            )
        };
        let mut first = open(5);
        first.set_size(2, 42);
        // A later size for the same message is ignored: sizes never change.
        first.set_size(2, 43);
        drop(first);
        let second = open(5);
        assert_eq!(second.get(1).unwrap().size, None);
        assert_eq!(second.get(2).unwrap().size, Some(42));
        drop(second);
        // Another UIDVALIDITY is another message.
        assert_eq!(open(6).get(2).unwrap().size, None);
    }

    #[test]
    fn uidl_is_uidvalidity_and_uid() {
        let locks = Arc::new(Locks::default());
        let m = drop_of(&[1, 0xabc], &locks, 1);
        let e = m.get(2).unwrap();
        assert_eq!(m.uidl(e), "6543210000000abc");
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let locks = Arc::new(Locks::default());
        let first = locks.try_lock(1).expect("free");
        assert!(locks.try_lock(1).is_none());
        let other = locks.try_lock(2).expect("another account is free");
        drop(first);
        assert!(!locks.is_locked(1));
        assert!(locks.is_locked(2));
        let m = drop_of(&[1], &locks, 1);
        assert!(locks.is_locked(1));
        drop(m);
        assert!(!locks.is_locked(1));
        drop(other);
    }
}
