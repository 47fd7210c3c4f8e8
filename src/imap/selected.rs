//! The selected mailbox as one session sees it: the map between message sequence numbers and
//! UIDs, the expunges not yet reported, and the MODSEQ the session has caught up to.
//!
//! Invariants (RFC 3501 §7.4.1, RFC 7162):
//! - `uids` is ascending and is exactly what the client believes: sequence number `n` is
//!   `uids[n - 1]`. It changes only when the client is told: a new message is appended when
//!   `* n EXISTS` is sent, an expunged one removed when its `* n EXPUNGE` is sent.
//! - An expunge seen while EXPUNGE responses are not allowed (during FETCH, STORE, SEARCH)
//!   stays in `pending` and keeps its sequence number until a command that allows them.
//! - `highestmodseq` is the MODSEQ of the store snapshot last applied; everything changed
//!   after it has not been reported yet. Flag changes this session made itself (and reported
//!   in its own STORE response) are remembered in `own` so they are not reported twice.
//! - `\Recent` (IMAP4rev1): the UIDs this session claimed from the store
//!   (`Store::claim_recent`: at SELECT, and whenever it learns of new messages), kept as
//!   ascending half-open ranges; an EXAMINE session shows those nobody had claimed without
//!   claiming them. No other session ever has the same UID recent. After ENABLE IMAP4rev2
//!   there is no `\Recent` at all (`report_recent` false, no ranges).
//! - `keywords`: the keywords announced in the last `* FLAGS` response. A keyword not among
//!   them is announced (`* FLAGS`, `* OK [PERMANENTFLAGS]`) before any response that shows it.

use std::collections::BTreeSet;

use super::context::SearchContext;
use super::uidmap::UidMap;
use crate::store::{FlagState, Mailbox, MailboxChanges};

/// One untagged report produced by catching up with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `* n EXPUNGE` (sequence number at the time it is sent), or the UID in a
    /// `* VANISHED` once QRESYNC is enabled.
    Expunge { seq: u32, uid: u32 },
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT`.
    Recent(u32),
    /// `* n FETCH (FLAGS ...)` for a message changed elsewhere.
    Flags(u32, FlagState),
    /// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]`: keywords new to the session were
    /// learned (the list is in [`Selected::keywords`]).
    Keywords,
}

#[derive(Debug, Clone)]
pub struct Selected {
    /// The store's handle: every message operation of the session goes through it.
    pub mailbox: Mailbox,
    pub name: String,
    pub read_only: bool,
    pub highestmodseq: u64,
    uids: UidMap,
    pending: BTreeSet<u32>,
    /// While expunges are held back: the MODSEQ reached before the oldest of them was learned
    /// (they all have higher ones). See [`Selected::held_modseq`].
    held_since: Option<u64>,
    /// The UIDs recent to this session: ascending, disjoint half-open ranges.
    recent: Vec<(u32, u32)>,
    /// Whether `* n RECENT` is reported (IMAP4rev1; not after ENABLE IMAP4rev2).
    report_recent: bool,
    /// The keywords announced in `* FLAGS`, in the order they were learned.
    keywords: Vec<String>,
    own: Vec<u64>,
    /// The saved search result (SEARCHRES, RFC 5182), UIDs ascending: empty at SELECT and
    /// EXAMINE, gone with the selection. UIDs of expunged messages are dropped when `$` is
    /// read (`Session::saved_sets`); UIDs are never reused, so none can come back.
    pub saved: Vec<u32>,
    /// The results kept up to date (CONTEXT=SEARCH/SORT, `context.rs`): gone with the
    /// selection, as RFC 5267 §4.3 says.
    pub contexts: Vec<SearchContext>,
}

impl Selected {
    /// A selected mailbox holding `uids`, of which those from `recent_from` on are recent to
    /// this session (`u32::MAX`: none).
    pub fn new(
        mailbox: Mailbox,
        name: String,
        read_only: bool,
        recent_from: u32,
        uids: Vec<u32>,
        highestmodseq: u64,
    ) -> Selected {
        let mut selected = Selected {
            mailbox,
            name,
            read_only,
            highestmodseq,
            uids: UidMap::from_sorted(uids),
            pending: BTreeSet::new(),
            held_since: None,
            recent: Vec::new(),
            report_recent: true,
            keywords: Vec::new(),
            own: Vec::new(),
            saved: Vec::new(),
            contexts: Vec::new(),
        };
        let end = selected.max_uid().saturating_add(1);
        selected.add_recent(recent_from, end);
        selected
    }

    /// IMAP4rev2 (RFC 9051 removed `\Recent`): no recent messages, no `* n RECENT`.
    pub fn without_recent(mut self) -> Selected {
        self.recent.clear();
        self.report_recent = false;
        self
    }

    /// Whether `\Recent` is shown at all (IMAP4rev1).
    pub fn reports_recent(&self) -> bool {
        self.report_recent
    }

    /// Makes the UIDs in `from..to` recent to this session (a claim it won, or for EXAMINE the
    /// unclaimed ones it may show).
    pub fn add_recent(&mut self, from: u32, to: u32) {
        if from >= to || !self.report_recent {
            return;
        }
        self.recent.push((from, to));
        self.recent.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.recent.len());
        for &(lo, hi) in &self.recent {
            match merged.last_mut() {
                Some((_, end)) if lo <= *end => *end = (*end).max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.recent = merged;
    }

    /// The keywords announced so far.
    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }

    /// Adds the keywords not announced yet (compared without case, as flags are); true when
    /// there were any, and `* FLAGS` must be sent before they are shown.
    pub fn learn_keywords<'a>(&mut self, keywords: impl IntoIterator<Item = &'a String>) -> bool {
        let mut learned = false;
        for k in keywords {
            if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.clone());
                learned = true;
            }
        }
        learned
    }

    /// Messages the client knows of (EXISTS).
    pub fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    #[cfg(test)]
    pub fn uids(&self) -> Vec<u32> {
        self.uids.iter().collect()
    }

    pub fn max_uid(&self) -> u32 {
        self.uids.last().unwrap_or(0)
    }

    pub fn uid(&self, seq: u32) -> Option<u32> {
        self.uids.get(usize::try_from(seq).ok()?.checked_sub(1)?)
    }

    pub fn seq(&self, uid: u32) -> Option<u32> {
        self.uids.position(uid).ok().map(|i| i as u32 + 1)
    }

    /// Whether the message is gone from the store but its expunge not yet reported.
    pub fn is_expunged(&self, uid: u32) -> bool {
        self.pending.contains(&uid)
    }

    pub fn is_recent(&self, uid: u32) -> bool {
        let i = self.recent.partition_point(|&(lo, _)| lo <= uid);
        i > 0 && self.recent.get(i - 1).is_some_and(|&(_, hi)| uid < hi)
    }

    /// The messages the client knows of that are recent to this session.
    pub fn recent_count(&self) -> u32 {
        self.recent
            .iter()
            .map(|&(lo, hi)| self.uids.count_below(hi) - self.uids.count_below(lo))
            .sum::<usize>() as u32
    }

    /// The messages (sequence number, UID) a set names. `uid_mode`: the ranges are UIDs and
    /// UIDs that do not exist are skipped. Otherwise they are sequence numbers, and one past
    /// EXISTS is an error (`Err` with the first bad number).
    pub fn resolve(&self, ranges: &[(u32, u32)], uid_mode: bool) -> Result<Vec<(u32, u32)>, u32> {
        let mut seqs: Vec<u32> = Vec::new();
        for &(lo, hi) in ranges {
            if uid_mode {
                let start = self.uids.count_below(lo);
                let end = hi
                    .checked_add(1)
                    .map_or(self.uids.len(), |h| self.uids.count_below(h));
                seqs.extend((start..end).map(|i| i as u32 + 1));
            } else {
                if lo == 0 || hi > self.exists() {
                    return Err(if lo == 0 { 0 } else { hi });
                }
                seqs.extend(lo..=hi);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs
            .into_iter()
            .filter_map(|s| self.uid(s).map(|u| (s, u)))
            .collect())
    }

    /// Remembers a MODSEQ this session produced and reported itself.
    pub fn note_own(&mut self, modseq: u64) {
        self.own.push(modseq);
    }

    /// Applies what changed in the store since `highestmodseq`, returning the reports to send,
    /// in order. Expunges are reported only when `allow_expunge`.
    pub fn apply(&mut self, changes: MailboxChanges, allow_expunge: bool) -> Vec<Update> {
        let mut updates = Vec::new();
        if self.learn_keywords(changes.changed.iter().flat_map(|s| &s.keywords)) {
            updates.push(Update::Keywords);
        }
        for uid in changes.expunged {
            if self.uids.contains(uid) {
                if self.pending.is_empty() {
                    self.held_since = Some(self.highestmodseq);
                }
                self.pending.insert(uid);
            }
        }
        let mut added = false;
        for state in changes.changed {
            match self.uids.position(state.uid) {
                Ok(i) => {
                    if !self.pending.contains(&state.uid) && !self.own.contains(&state.modseq) {
                        updates.push(Update::Flags(i as u32 + 1, state));
                    }
                }
                Err(i) if i == self.uids.len() => {
                    added |= self.uids.push(state.uid);
                }
                // A UID below the highest known that the client never saw cannot be new
                // (UIDs only grow); it would break the numbering, so it is ignored.
                Err(_) => tracing::debug!(uid = state.uid, "ignoring an out-of-order UID"),
            }
        }
        if allow_expunge {
            updates.extend(self.flush_expunges());
        }
        if added {
            updates.push(Update::Exists(self.exists()));
            if self.report_recent {
                updates.push(Update::Recent(self.recent_count()));
            }
        }
        self.highestmodseq = self.highestmodseq.max(changes.highestmodseq);
        let seen = self.highestmodseq;
        self.own.retain(|&m| m > seen);
        updates
    }

    /// Marks UIDs expunged (by this session) and reports every pending expunge.
    pub fn expunge(&mut self, uids: &[u32]) -> Vec<Update> {
        for &uid in uids {
            if self.uids.contains(uid) {
                self.pending.insert(uid);
            }
        }
        self.flush_expunges()
    }

    /// Reports pending expunges, highest sequence number first so each number is right at
    /// the moment it is sent, and drops them from the map.
    fn flush_expunges(&mut self) -> Vec<Update> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut updates = Vec::with_capacity(self.pending.len());
        for uid in self.pending.iter().rev() {
            if let Ok(i) = self.uids.position(*uid) {
                updates.push(Update::Expunge {
                    seq: i as u32 + 1,
                    uid: *uid,
                });
            }
        }
        let pending = std::mem::take(&mut self.pending);
        self.held_since = None;
        self.uids.remove_where(|u| pending.contains(&u));
        updates
    }

    /// While expunges are held back (during FETCH, STORE, SEARCH), MODSEQs sent in FETCH
    /// responses may be above theirs; a client that saved such a MODSEQ and resynchronized
    /// from it would never learn of those expunges. This is the MODSEQ it may safely resume
    /// from meanwhile (RFC 7162 §3.2: sent as `OK [HIGHESTMODSEQ n]` to QRESYNC clients).
    pub fn held_modseq(&self) -> Option<u64> {
        self.held_since.filter(|_| !self.pending.is_empty())
    }

    /// Whether expunges are waiting to be reported.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Flags;

    fn state(uid: u32, modseq: u64) -> FlagState {
        FlagState {
            uid,
            flags: Flags::SEEN,
            keywords: Vec::new(),
            modseq,
        }
    }

    fn selected(uids: &[u32]) -> Selected {
        Selected::new(
            Mailbox::for_test(1, 1, "INBOX"),
            "INBOX".into(),
            false,
            10,
            uids.to_vec(),
            5,
        )
    }

    #[test]
    fn resolves_sets() {
        let s = selected(&[3, 5, 9]);
        assert_eq!(s.resolve(&[(1, 2)], false), Ok(vec![(1, 3), (2, 5)]));
        assert_eq!(
            s.resolve(&[(3, 3), (1, 1)], false),
            Ok(vec![(1, 3), (3, 9)])
        );
        assert_eq!(s.resolve(&[(2, 4)], false), Err(4));
        assert_eq!(s.resolve(&[(4, 9)], true), Ok(vec![(2, 5), (3, 9)]));
        assert_eq!(s.resolve(&[(10, u32::MAX)], true), Ok(vec![]));
        assert_eq!(s.uid(0), None);
        assert_eq!(s.seq(9), Some(3));
    }

    #[test]
    fn new_messages_and_flag_changes() {
        let mut s = selected(&[3, 5]);
        // The session claimed 10 and 11 when it learned of them.
        s.add_recent(10, 12);
        let u = s.apply(
            MailboxChanges {
                highestmodseq: 8,
                changed: vec![state(5, 6), state(10, 7), state(11, 8)],
                expunged: vec![],
            },
            true,
        );
        assert_eq!(
            u,
            vec![
                Update::Flags(2, state(5, 6)),
                Update::Exists(4),
                Update::Recent(2)
            ]
        );
        assert_eq!(s.highestmodseq, 8);
        assert!(s.is_recent(10) && !s.is_recent(5));
    }

    #[test]
    fn own_changes_are_not_reported_twice() {
        let mut s = selected(&[3, 5]);
        s.note_own(6);
        let u = s.apply(
            MailboxChanges {
                highestmodseq: 6,
                changed: vec![state(3, 6)],
                expunged: vec![],
            },
            true,
        );
        assert!(u.is_empty());
    }

    #[test]
    fn expunges_wait_until_allowed() {
        let mut s = Selected::new(
            Mailbox::for_test(1, 1, "INBOX"),
            "INBOX".into(),
            false,
            13,
            vec![3, 5, 9, 12],
            5,
        );
        let changes = MailboxChanges {
            highestmodseq: 9,
            changed: vec![state(13, 9)],
            expunged: vec![5, 12, 40],
        };
        // During FETCH: the new message is announced, the expunged ones keep their numbers.
        s.add_recent(13, 14);
        let u = s.apply(changes, false);
        assert_eq!(u, vec![Update::Exists(5), Update::Recent(1)]);
        assert!(s.is_expunged(5));
        assert_eq!(s.seq(9), Some(3));
        assert_eq!(s.held_modseq(), Some(5), "the MODSEQ before the expunges");
        // At the next NOOP: highest first, then the map shrinks.
        let u = s.apply(
            MailboxChanges {
                highestmodseq: 9,
                ..MailboxChanges::default()
            },
            true,
        );
        assert_eq!(
            u,
            vec![
                Update::Expunge { seq: 4, uid: 12 },
                Update::Expunge { seq: 2, uid: 5 }
            ]
        );
        assert_eq!(s.uids(), &[3, 9, 13]);
        assert_eq!(s.exists(), 3);
        assert_eq!(s.held_modseq(), None);
    }

    #[test]
    fn recent_ranges() {
        // Recent from 5 at SELECT; 8 and 9 claimed later, 7 by another session.
        let mut s = selected(&[2, 5, 6]);
        let mut s2 = Selected::new(
            Mailbox::for_test(1, 1, "INBOX"),
            "INBOX".into(),
            false,
            5,
            vec![2, 5, 6],
            5,
        );
        assert_eq!(s.recent_count(), 0);
        assert_eq!(s2.recent_count(), 2);
        s2.add_recent(8, 10);
        s2.apply(
            MailboxChanges {
                highestmodseq: 9,
                changed: vec![state(7, 7), state(8, 8), state(9, 9)],
                expunged: vec![],
            },
            true,
        );
        assert_eq!(s2.recent_count(), 4);
        assert!(s2.is_recent(5) && s2.is_recent(6) && s2.is_recent(9));
        assert!(!s2.is_recent(2) && !s2.is_recent(7) && !s2.is_recent(10));
        // IMAP4rev2: nothing is recent, no RECENT report.
        s = s.without_recent();
        s.add_recent(1, 100);
        let u = s.apply(
            MailboxChanges {
                highestmodseq: 9,
                changed: vec![state(7, 7)],
                expunged: vec![],
            },
            true,
        );
        assert_eq!(u, vec![Update::Exists(4)]);
        assert!(!s.is_recent(7));
    }

    #[test]
    fn new_keywords_are_announced_first() {
        let mut s = selected(&[3, 5]);
        assert!(s.learn_keywords(&["$Junk".to_string()]));
        assert!(!s.learn_keywords(&["$junk".to_string()]));
        let mut changed = state(5, 6);
        changed.keywords = vec!["$JUNK".into(), "Work".into()];
        let u = s.apply(
            MailboxChanges {
                highestmodseq: 6,
                changed: vec![changed.clone()],
                expunged: vec![],
            },
            true,
        );
        assert_eq!(u, vec![Update::Keywords, Update::Flags(2, changed)]);
        assert_eq!(s.keywords(), ["$Junk", "Work"]);
    }

    #[test]
    fn own_expunge() {
        let mut s = selected(&[1, 2, 3]);
        assert_eq!(
            s.expunge(&[1, 3, 8]),
            vec![
                Update::Expunge { seq: 3, uid: 3 },
                Update::Expunge { seq: 1, uid: 1 }
            ]
        );
        assert_eq!(s.uids(), &[2]);
        assert!(!s.has_pending());
    }
}
