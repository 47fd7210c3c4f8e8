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
//! One client network (an IPv4 address, an IPv6 /64) may hold at most a quarter of the budget
//! (or one largest message, if that is more), so a single attacker cannot take it all.
//!
//! Why a budget and not a spool file: the one delivery path parses and stores a message from
//! memory in one transaction, so a spool would only move the copy; a budget bounds the total
//! whatever the peers do.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::throttle::Origin;

/// The first bytes of each message that are not counted: small mail is never refused for
/// want of memory while large messages wait their turn (1,000 sessions x 64 KiB = 64 MiB).
pub const FREE_BYTES: usize = 64 * 1024;

/// Bytes of messages in flight across all sessions, and the most there may be.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    /// The most one client network may hold.
    per_client: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    /// Only clients holding something (at most one entry per open connection).
    clients: HashMap<Origin, usize>,
}

impl Budget {
    /// `limit` bytes in all; a client may hold a quarter of it, or `largest_message` if more.
    pub fn new(limit: u64, largest_message: u64) -> Arc<Budget> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let largest = usize::try_from(largest_message).unwrap_or(usize::MAX);
        Arc::new(Budget {
            limit,
            per_client: (limit / 4).max(largest).min(limit),
            held: Mutex::default(),
        })
    }

    /// A claim of nothing yet, for one message from `client`.
    pub fn claim(self: &Arc<Self>, client: IpAddr) -> Claim {
        Claim {
            budget: self.clone(),
            client: Origin::from(client),
            held: 0,
        }
    }

    /// Bytes claimed now, for `/metrics` and tests.
    pub fn used(&self) -> usize {
        self.held().total
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The counts; a panic elsewhere while they were held leaves them usable.
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, client: Origin, bytes: usize) -> bool {
        let mut held = self.held();
        let mine = held.clients.get(&client).copied().unwrap_or(0);
        let fits = |used: usize, most: usize| used.checked_add(bytes).is_some_and(|t| t <= most);
        if !fits(held.total, self.limit) || !fits(mine, self.per_client) {
            return false;
        }
        held.total += bytes;
        held.clients.insert(client, mine + bytes);
        true
    }

    fn give_back(&self, client: Origin, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut held = self.held();
        held.total = held.total.saturating_sub(bytes);
        if let Some(mine) = held.clients.get_mut(&client) {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                held.clients.remove(&client);
            }
        }
    }
}

/// One message's share of the budget; given back when dropped.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<Budget>,
    client: Origin,
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
        if !self.budget.take(self.client, more) {
            return false;
        }
        self.held = counted;
        true
    }

    /// Gives back everything held (the message was dropped).
    pub fn release(&mut self) {
        self.budget
            .give_back(self.client, std::mem::take(&mut self.held));
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

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn claims_share_the_limit_and_give_back_on_drop() {
        let budget = Budget::new(1 << 20, 1 << 20);
        let mut a = budget.claim(ip(1));
        let mut b = budget.claim(ip(2));
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

    #[test]
    fn one_client_holds_a_quarter_or_one_largest_message() {
        let budget = Budget::new(8 << 20, 1 << 20);
        let mut first = budget.claim(ip(1));
        let mut second = budget.claim(ip(1));
        assert!(first.grow_to(FREE_BYTES + (2 << 20)), "a quarter: 2 MiB");
        assert!(
            !second.grow_to(FREE_BYTES + 1),
            "nothing more for 192.0.2.1"
        );
        let mut other = budget.claim(ip(9));
        assert!(
            other.grow_to(FREE_BYTES + (2 << 20)),
            "others are not held back"
        );
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let mut a = budget.claim(v6(1));
        let mut b = budget.claim(v6(2));
        assert!(a.grow_to(FREE_BYTES + (2 << 20)));
        assert!(!b.grow_to(FREE_BYTES + 1), "one /64 is one client");
        drop(first);
        assert!(
            second.grow_to(FREE_BYTES + (2 << 20)),
            "given back to the client too"
        );
        let wide = Budget::new(8 << 20, 5 << 20);
        assert!(
            wide.claim(ip(1)).grow_to(FREE_BYTES + (5 << 20)),
            "one largest message"
        );
    }
}
