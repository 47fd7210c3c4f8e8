//! Changing flags, and reading what changed in a mailbox since a MODSEQ.
//!
//! Every change to a message (delivery, copy, flag change) gives it its mailbox's next MODSEQ,
//! and every expunge is remembered with one (`expunged`). That single counter is what lets a
//! reader catch up cheaply: [`Store::changes_since`] returns the messages whose MODSEQ is newer
//! than what the reader last saw and the UIDs expunged since. IMAP sessions use it both for
//! CONDSTORE/QRESYNC and to learn what other sessions did (after a change-bus announcement).
//!
//! A flag change takes one MODSEQ for the whole operation (RFC 7162 allows several messages to
//! share one), and messages whose flags would not change keep theirs.

use sqlx::SqliteConnection;

use super::mailboxes::Mailbox;
use super::messages::Flags;
use super::{Change, Result, Store, StoreError};

/// What a flag change does, as IMAP STORE's `FLAGS`, `+FLAGS`, `-FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// The state of one message's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagState {
    pub uid: u32,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub modseq: u64,
}

/// What SELECT reports of a mailbox ([`Store::select_summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectSummary {
    /// Ascending.
    pub uids: Vec<u32>,
    /// The position (from 0) in `uids` of the first message without `\Seen`.
    pub first_unseen: Option<usize>,
    /// Every keyword some message has, once each.
    pub keywords: Vec<String>,
    pub highest: u64,
}

/// The distinct keywords of a mailbox in the order first met: a set beside the list, as a
/// mailbox may hold many messages and each of them many keywords, all the user's choice.
#[derive(Default)]
struct Keywords {
    list: Vec<String>,
    set: std::collections::HashSet<String>,
}

impl Keywords {
    fn add(&mut self, keyword: &str) {
        if !self.set.contains(keyword) {
            self.set.insert(keyword.to_string());
            self.list.push(keyword.to_string());
        }
    }
}

impl SelectSummary {
    /// The summary of a full snapshot ([`Store::flag_snapshot`], ascending UIDs).
    pub fn of_snapshot(states: &[FlagState], highest: u64) -> SelectSummary {
        let mut keywords = Keywords::default();
        for k in states.iter().flat_map(|s| &s.keywords) {
            keywords.add(k);
        }
        SelectSummary {
            uids: states.iter().map(|s| s.uid).collect(),
            first_unseen: states.iter().position(|s| !s.flags.contains(Flags::SEEN)),
            keywords: keywords.list,
            highest,
        }
    }
}

/// The outcome of [`Store::set_flags`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOutcome {
    /// The MODSEQ given to the changed messages; `None` when nothing changed.
    pub modseq: Option<u64>,
    /// UIDs whose flags changed.
    pub changed: Vec<u32>,
    /// UIDs left alone because their MODSEQ was above `unchanged_since` (RFC 7162 MODIFIED).
    pub modified: Vec<u32>,
    /// The flags of every message of the request that exists, after the change, by UID.
    pub current: Vec<FlagState>,
}

/// What happened in a mailbox after some MODSEQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    pub highestmodseq: u64,
    /// Messages added or changed, by ascending UID.
    pub changed: Vec<FlagState>,
    /// UIDs expunged, ascending.
    pub expunged: Vec<u32>,
}

/// Splits ascending UIDs into inclusive runs, so a request for 1:* is one range query.
pub(crate) fn uid_ranges(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &uid in uids {
        match ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(uid) => *end = uid,
            Some((_, end)) if *end >= uid => {}
            _ => ranges.push((uid, uid)),
        }
    }
    ranges
}

fn keywords_of(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Applies `op` to one message's flags; keywords compare without case, as IMAP flags do.
pub fn apply_flags(
    op: FlagOp,
    flags: Flags,
    keywords: &[String],
    cur_flags: Flags,
    cur_keywords: &[String],
) -> (Flags, Vec<String>) {
    let has = |list: &[String], k: &str| list.iter().any(|x| x.eq_ignore_ascii_case(k));
    match op {
        FlagOp::Replace => {
            let mut out: Vec<String> = Vec::new();
            for k in keywords {
                if !has(&out, k) {
                    out.push(k.clone());
                }
            }
            (flags, out)
        }
        FlagOp::Add => {
            let mut out = cur_keywords.to_vec();
            for k in keywords {
                if !has(&out, k) {
                    out.push(k.clone());
                }
            }
            (cur_flags.union(flags), out)
        }
        FlagOp::Remove => {
            let out = cur_keywords
                .iter()
                .filter(|k| !has(keywords, k))
                .cloned()
                .collect();
            (cur_flags.difference(flags), out)
        }
    }
}

type StateRow = (u32, u8, String, i64);

fn state(row: StateRow) -> FlagState {
    FlagState {
        uid: row.0,
        flags: Flags::from_bits(row.1),
        keywords: keywords_of(&row.2),
        modseq: row.3 as u64,
    }
}

/// The flags of the messages in `ranges`, by ascending UID, packed one row per range (see
/// `packed.rs`): STORE reads them in its write transaction, where each row handed over alone
/// would cost a thread switch.
async fn states(
    conn: &mut SqliteConnection,
    mailbox_id: i64,
    ranges: &[(u32, u32)],
) -> Result<Vec<FlagState>> {
    let mut out = Vec::new();
    for (lo, hi) in ranges {
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(uid || ' ' || flags || ' ' || modseq || ' ' || keywords, char(10))
             FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ?",
        )
        .bind(mailbox_id)
        .bind(lo)
        .bind(hi)
        .fetch_one(&mut *conn)
        .await?;
        out.extend(flag_states(packed.as_deref(), mailbox_id)?);
    }
    out.sort_unstable_by_key(|s| s.uid);
    Ok(out)
}

/// The flag states of packed lines `uid flags modseq keywords…` (see `packed.rs`), in the
/// order of the lines.
fn flag_states(packed: Option<&str>, mailbox_id: i64) -> Result<Vec<FlagState>> {
    let corrupt = || StoreError::Corrupt(format!("flags of mailbox {mailbox_id}"));
    let mut out = Vec::new();
    for line in super::packed::lines::<3>(packed, "a message's flags") {
        let ([uid, flags, modseq], keywords) = line?;
        out.push(FlagState {
            uid: u32::try_from(uid).map_err(|_| corrupt())?,
            flags: Flags::from_bits(u8::try_from(flags).map_err(|_| corrupt())?),
            keywords: super::packed::keywords(keywords),
            modseq: u64::try_from(modseq).map_err(|_| corrupt())?,
        });
    }
    Ok(out)
}

impl Store {
    /// Changes the flags of the messages with these UIDs (ascending) in one transaction.
    /// With `unchanged_since`, messages changed after that MODSEQ are left alone and reported
    /// in `modified`. Announces the change after commit.
    pub async fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[u32],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        let mailbox_id = mailbox.id();
        let ranges = uid_ranges(uids);
        let mut outcome = FlagOutcome::default();
        if ranges.is_empty() {
            return Ok(outcome);
        }
        let mut tx = self.write().await?;
        let account_id: i64 = sqlx::query_scalar("SELECT account_id FROM mailboxes WHERE id = ?")
            .bind(mailbox_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))?;
        let before = states(&mut tx, mailbox_id, &ranges).await?;
        let wanted = |uid: u32| uids.binary_search(&uid).is_ok();
        let mut updates: Vec<(u32, Flags, Vec<String>)> = Vec::new();
        for s in before.iter().filter(|s| wanted(s.uid)) {
            if unchanged_since.is_some_and(|limit| s.modseq > limit) {
                outcome.modified.push(s.uid);
                continue;
            }
            let (f, k) = apply_flags(op, flags, keywords, s.flags, &s.keywords);
            if f != s.flags || k != s.keywords {
                updates.push((s.uid, f, k));
            }
        }
        if updates.is_empty() {
            tx.rollback().await?;
            outcome.current = before.into_iter().filter(|s| wanted(s.uid)).collect();
            return Ok(outcome);
        }
        let modseq: i64 = sqlx::query_scalar(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
        )
        .bind(mailbox_id)
        .fetch_one(&mut *tx)
        .await?;
        let uniform = keywords.is_empty()
            && op != FlagOp::Replace
            && updates.len() > 16
            && unchanged_since.is_none();
        if uniform {
            // Many messages, system flags only: one statement per UID range instead of one per
            // message (STORE +FLAGS on 1:* of a large mailbox).
            let update_ranges = uid_ranges(&updates.iter().map(|u| u.0).collect::<Vec<_>>());
            let bits = i64::from(flags.bits());
            let (set, cond) = match op {
                FlagOp::Add => ("flags = flags | ?", "(flags & ?) != ?"),
                _ => ("flags = flags & ~?", "(flags & ?) != 0 AND ? IS NOT NULL"),
            };
            let sql = format!(
                "UPDATE messages SET {set}, modseq = ? WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND {cond}"
            );
            for (lo, hi) in update_ranges {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(bits)
                    .bind(modseq)
                    .bind(mailbox_id)
                    .bind(lo)
                    .bind(hi)
                    .bind(bits)
                    .bind(bits)
                    .execute(&mut *tx)
                    .await?;
            }
        } else {
            for (uid, f, k) in &updates {
                sqlx::query(
                    "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                )
                .bind(f.bits())
                .bind(k.join(" "))
                .bind(modseq)
                .bind(mailbox_id)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        // What the messages hold now follows from what they held and what was written: the
        // transaction held the write lock throughout, so nothing else changed them.
        outcome.modseq = Some(modseq as u64);
        let mut written = updates.into_iter().peekable();
        for mut s in before.into_iter().filter(|s| wanted(s.uid)) {
            if let Some((_, flags, keywords)) = written.next_if(|u| u.0 == s.uid) {
                (s.flags, s.keywords, s.modseq) = (flags, keywords, modseq as u64);
                outcome.changed.push(s.uid);
            }
            outcome.current.push(s);
        }
        self.bus.announce(Change::FlagsChanged {
            account_id,
            mailbox_id,
            uids: outcome.changed.clone(),
            modseq: modseq as u64,
        });
        Ok(outcome)
    }

    /// Messages added or changed, and UIDs expunged, after `modseq`, read in one snapshot.
    /// `None` when the mailbox no longer exists.
    pub async fn changes_since(
        &self,
        mailbox: &Mailbox,
        modseq: u64,
    ) -> Result<Option<MailboxChanges>> {
        let mailbox_id = mailbox.id();
        let mut tx = self.reader.begin().await?;
        let since = i64::try_from(modseq).unwrap_or(i64::MAX);
        let highest: Option<i64> =
            sqlx::query_scalar("SELECT highestmodseq FROM mailboxes WHERE id = ?")
                .bind(mailbox_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(highest) = highest else {
            return Ok(None);
        };
        if highest as u64 <= modseq {
            return Ok(Some(MailboxChanges {
                highestmodseq: highest as u64,
                ..MailboxChanges::default()
            }));
        }
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT uid, flags, keywords, modseq FROM messages
             WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        )
        .bind(mailbox_id)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let expunged: Vec<u32> = sqlx::query_scalar(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        )
        .bind(mailbox_id)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(MailboxChanges {
            highestmodseq: highest as u64,
            changed: rows.into_iter().map(state).collect(),
            expunged,
        }))
    }

    /// A mailbox's HIGHESTMODSEQ and every message as a line of `columns` (a constant list of
    /// integer columns) and its keywords (store/packed.rs), in one statement, so both come
    /// from the same snapshot without a transaction's extra round trips.
    async fn packed_messages(
        &self,
        mailbox_id: i64,
        columns: &'static str,
    ) -> Result<(i64, Option<String>)> {
        let line = columns.replace(", ", " || ' ' || ");
        let sql = format!(
            "SELECT (SELECT highestmodseq FROM mailboxes WHERE id = ?1),
                    (SELECT group_concat({line} || ' ' || keywords, char(10))
                     FROM messages WHERE mailbox_id = ?1)"
        );
        let (highest, packed): (Option<i64>, Option<String>) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .fetch_one(&self.reader)
                .await?;
        let highest =
            highest.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))?;
        Ok((highest, packed))
    }

    /// What SELECT reports of a mailbox, read in one snapshot: its UIDs, the first unseen
    /// message, the keywords in use and HIGHESTMODSEQ. The same read as [`Store::flag_snapshot`]
    /// without keeping a state per message: a session's SELECT of 10,000 messages made about
    /// 1 MB of short-lived allocations, whose holes the sessions' long-lived memory then
    /// filled (1,000 sessions in IDLE cost 7.5-10.9 KiB each, 5.1 KiB on an empty INBOX).
    pub async fn select_summary(&self, mailbox: &Mailbox) -> Result<SelectSummary> {
        let mailbox_id = mailbox.id();
        let (highest, packed) = self.packed_messages(mailbox_id, "uid, flags").await?;
        let corrupt = || StoreError::Corrupt(format!("flags of mailbox {mailbox_id}"));
        let mut summary = SelectSummary {
            highest: highest as u64,
            ..SelectSummary::default()
        };
        let mut first_unseen: Option<u32> = None;
        let mut seen_keywords = Keywords::default();
        for line in super::packed::lines::<2>(packed.as_deref(), "a message's flags") {
            let ([uid, flags], keywords) = line?;
            let uid = u32::try_from(uid).map_err(|_| corrupt())?;
            let flags = Flags::from_bits(u8::try_from(flags).map_err(|_| corrupt())?);
            summary.uids.push(uid);
            if !flags.contains(Flags::SEEN) && first_unseen.is_none_or(|f| uid < f) {
                first_unseen = Some(uid);
            }
            for k in keywords.split(' ').filter(|k| !k.is_empty()) {
                seen_keywords.add(k);
            }
        }
        summary.keywords = seen_keywords.list;
        summary.uids.sort_unstable();
        summary.first_unseen = first_unseen.and_then(|uid| summary.uids.binary_search(&uid).ok());
        Ok(summary)
    }

    /// The UID and flags of every message of a mailbox, by ascending UID, with the mailbox's
    /// HIGHESTMODSEQ of the same snapshot (what SELECT with QRESYNC needs).
    pub async fn flag_snapshot(&self, mailbox: &Mailbox) -> Result<(Vec<FlagState>, u64)> {
        let mailbox_id = mailbox.id();
        let (highest, packed) = self
            .packed_messages(mailbox_id, "uid, flags, modseq")
            .await?;
        let mut states = flag_states(packed.as_deref(), mailbox_id)?;
        states.sort_unstable_by_key(|s| s.uid);
        Ok((states, highest as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(uid_ranges(&[]), vec![]);
        assert_eq!(
            uid_ranges(&[1, 2, 3, 5, 7, 8]),
            vec![(1, 3), (5, 5), (7, 8)]
        );
        assert_eq!(uid_ranges(&[u32::MAX]), vec![(u32::MAX, u32::MAX)]);
    }

    #[test]
    fn flag_ops() {
        let kw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (f, k) = apply_flags(
            FlagOp::Add,
            Flags::SEEN,
            &kw(&["$Junk"]),
            Flags::FLAGGED,
            &kw(&["$junk"]),
        );
        assert_eq!(f, Flags::SEEN.union(Flags::FLAGGED));
        assert_eq!(k, kw(&["$junk"]));
        let (f, k) = apply_flags(
            FlagOp::Remove,
            Flags::SEEN,
            &kw(&["A"]),
            Flags::SEEN,
            &kw(&["a", "b"]),
        );
        assert_eq!(f, Flags::default());
        assert_eq!(k, kw(&["b"]));
        let (f, k) = apply_flags(
            FlagOp::Replace,
            Flags::DRAFT,
            &kw(&["x", "X"]),
            Flags::SEEN,
            &kw(&["b"]),
        );
        assert_eq!(f, Flags::DRAFT);
        assert_eq!(k, kw(&["x"]));
    }

    /// SELECT's summary says what the full snapshot says: UIDs, the first unseen message's
    /// position, the keywords in use, HIGHESTMODSEQ.
    #[tokio::test]
    #[allow(clippy::unwrap_used)]
    async fn select_summary_agrees_with_the_snapshot() {
        use crate::store::testing::{deliver_to_inbox, store_with_accounts};
        let (_dir, store, ids) = store_with_accounts(&["a@example.org"]).await;
        let inbox = store.mailbox(ids[0], "INBOX").await.unwrap().unwrap();
        let empty = store.select_summary(&inbox).await.unwrap();
        assert_eq!((empty.uids.len(), empty.first_unseen), (0, None));
        for i in 0..5 {
            let raw = format!("Subject: {i}\r\n\r\nhello\r\n");
            deliver_to_inbox(&store, ids[0], raw.as_bytes()).await;
        }
        store
            .set_flags(&inbox, &[1, 2], FlagOp::Add, Flags::SEEN, &[], None)
            .await
            .unwrap();
        store
            .set_flags(
                &inbox,
                &[4],
                FlagOp::Add,
                Flags::default(),
                &["Work".into(), "$Junk".into()],
                None,
            )
            .await
            .unwrap();
        store.expunge(&inbox, &[3]).await.unwrap();
        let summary = store.select_summary(&inbox).await.unwrap();
        let (states, highest) = store.flag_snapshot(&inbox).await.unwrap();
        assert_eq!(summary, SelectSummary::of_snapshot(&states, highest));
        assert_eq!(summary.uids, vec![1, 2, 4, 5]);
        assert_eq!(summary.first_unseen, Some(2), "UID 4, the third message");
        assert_eq!(summary.keywords, vec!["Work".to_string(), "$Junk".into()]);
        assert_eq!(summary.highest, highest);
        store
            .set_flags(&inbox, &[4, 5], FlagOp::Add, Flags::SEEN, &[], None)
            .await
            .unwrap();
        assert_eq!(
            store.select_summary(&inbox).await.unwrap().first_unseen,
            None
        );
    }
}
