//! The memory budget for mail in flight: bytes of messages that sessions hold in memory before
//! they are stored (SMTP DATA and BDAT, IMAP APPEND literals), counted across every session.
//!
//! Each session may hold up to `max_message_size` of one message, and the connection limits
//! allow a thousand sessions: tens of gigabytes, unauthenticated on port 25. So beyond a small
//! allowance per message ([`FREE_BYTES`], enough for most mail, and bounded by the connection
//! limit), a session must [`Claim::grow_to`] the bytes it is about to hold. When the budget is
//! spent the claim fails and the protocol answers with a temporary error (SMTP `452 4.3.1`,
//! IMAP `NO [UNAVAILABLE]`): the sender retries later and nothing is lost. A claim is given back
//! when it is dropped, after the message has been stored (or refused).
//!
//! Why a budget and not a spool file: the one delivery path parses and stores a message from
//! memory in one transaction, so a spool would only move the copy; a budget bounds the total
//! whatever the peers do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The first bytes of each message that are not counted: small mail is never refused for
/// want of memory while large messages wait their turn (1,000 sessions x 64 KiB = 64 MiB).
pub const FREE_BYTES: usize = 64 * 1024;

/// Bytes of messages in flight across all sessions, and the most there may be.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: AtomicUsize::new(0),
        })
    }

    /// A claim of nothing yet, for one message.
    pub fn claim(self: &Arc<Self>) -> Claim {
        Claim {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Bytes claimed now, for `/metrics` and tests.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One message's share of the budget; given back when dropped.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<Budget>,
    held: usize,
}

impl Claim {
    /// Makes room for a message of `total` bytes; false (holding what it held) when the budget
    /// cannot cover it.
    pub fn grow_to(&mut self, total: usize) -> bool {
        let counted = total.saturating_sub(FREE_BYTES);
        if counted <= self.held {
            return true;
        }
        let more = counted - self.held;
        if !self.budget.take(more) {
            return false;
        }
        self.held = counted;
        true
    }

    /// Gives back everything held (the message was dropped).
    pub fn release(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.held));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_share_the_limit_and_give_back_on_drop() {
        let budget = Budget::new(1 << 20);
        let mut a = budget.claim();
        let mut b = budget.claim();
        assert!(a.grow_to(FREE_BYTES), "the allowance is free");
        assert_eq!(budget.used(), 0);
        assert!(a.grow_to(FREE_BYTES + (700 << 10)));
        assert!(
            !b.grow_to(FREE_BYTES + (400 << 10)),
            "700 + 400 KiB > 1 MiB"
        );
        assert!(b.grow_to(FREE_BYTES + (300 << 10)));
        assert!(a.grow_to(100), "shrinking asks for nothing");
        drop(a);
        assert_eq!(budget.used(), 300 << 10);
        assert!(b.grow_to(FREE_BYTES + (1 << 20)));
        assert!(!b.grow_to(FREE_BYTES + (1 << 20) + 1));
        b.release();
        assert_eq!(budget.used(), 0);
        drop(b);
        assert_eq!(budget.used(), 0, "released once");
    }
}
