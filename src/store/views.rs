//! What readers see of messages: metadata with, on request, the envelope and body structure
//! parsed at delivery and the raw bytes. IMAP FETCH reads only the columns it needs, so a
//! FETCH of FLAGS or ENVELOPE never loads a body.

use super::flags::uid_ranges;
use super::mailboxes::Mailbox;
use super::messages::{Flags, MessageMeta};
use super::{Result, Store, StoreError};
use crate::mime::{BodyPart, PackedEnvelope};

/// Which optional parts of a message to load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewParts {
    pub envelope: bool,
    pub structure: bool,
    pub raw: bool,
}

/// One message as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub meta: MessageMeta,
    /// Read in place with [`PackedEnvelope::get`].
    pub envelope: Option<PackedEnvelope>,
    pub structure: Option<BodyPart>,
    pub raw: Option<Vec<u8>>,
}

type ViewRow = (
    i64,
    u32,
    i64,
    u8,
    String,
    i64,
    i64,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
);

impl Store {
    /// The messages of a mailbox with these UIDs (ascending; missing ones are skipped), with
    /// the parts asked for.
    pub async fn message_views(
        &self,
        mailbox: &Mailbox,
        uids: &[u32],
        parts: ViewParts,
    ) -> Result<Vec<MessageView>> {
        if parts == ViewParts::default() {
            return self.meta_views(mailbox.id(), uids).await;
        }
        Ok(self.views(mailbox.id(), uids, parts, None).await?.0)
    }

    /// [`Store::message_views`] for a reader that goes through a long list of UIDs (IMAP
    /// FETCH): with the raw messages, it stops once their sizes reach `budget` bytes (the
    /// first message is always read, whatever its size), so a FETCH of many big messages
    /// holds a bounded amount of them at once. Also returns how many of `uids` were dealt
    /// with; the caller goes on from there.
    pub async fn message_views_within(
        &self,
        mailbox: &Mailbox,
        uids: &[u32],
        parts: ViewParts,
        budget: u64,
    ) -> Result<(Vec<MessageView>, usize)> {
        if !parts.raw {
            return Ok((self.message_views(mailbox, uids, parts).await?, uids.len()));
        }
        self.views(mailbox.id(), uids, parts, Some(budget)).await
    }

    async fn views(
        &self,
        mailbox_id: i64,
        uids: &[u32],
        parts: ViewParts,
        budget: Option<u64>,
    ) -> Result<(Vec<MessageView>, usize)> {
        // Without the body or its structure, the envelope comes from its covering index
        // (see migrations/0002_imap.sql) and FLAGS-only fetches do not touch blobs at all.
        let from = if parts.raw || parts.structure {
            "messages m JOIN blobs b ON b.id = m.blob_id"
        } else if parts.envelope {
            "messages m JOIN blobs b INDEXED BY blobs_envelope ON b.id = m.blob_id"
        } else {
            "messages m"
        };
        let sql = format!(
            "SELECT m.id, m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.size, {}, {}, {}
             FROM {from}
             WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid",
            if parts.envelope { "b.envelope" } else { "NULL" },
            if parts.structure {
                "b.body_structure"
            } else {
                "NULL"
            },
            if parts.raw { "b.data" } else { "NULL" },
        );
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("stored message: {e}"));
        let mut out = Vec::with_capacity(uids.len());
        let mut left = budget.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        for (lo, hi) in uid_ranges(uids) {
            // The budget was spent by the runs of UIDs before this one.
            if left.is_some_and(|l| l <= 0) && !out.is_empty() {
                return Ok((out, uids.partition_point(|u| *u < lo)));
            }
            // With a budget, the sizes come first (`messages.size`, one packed row), so bodies
            // past the budget are never read. A run of one UID needs none: the first message
            // of a run is read whenever some budget is left.
            let (hi, cut) = match left {
                Some(budget) if lo < hi => self.within(mailbox_id, lo, hi, budget).await?,
                _ => (hi, false),
            };
            let rows: Vec<ViewRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(mailbox_id)
                .bind(lo)
                .bind(hi)
                .fetch_all(&self.reader)
                .await?;
            for r in rows {
                if uids.binary_search(&r.1).is_err() {
                    continue;
                }
                if let Some(left) = &mut left {
                    *left -= r.6;
                }
                out.push(MessageView {
                    meta: MessageMeta {
                        id: r.0,
                        uid: r.1,
                        modseq: r.2 as u64,
                        flags: Flags::from_bits(r.3),
                        keywords: r.4.split_whitespace().map(str::to_string).collect(),
                        internal_date: r.5,
                        size: r.6 as u64,
                    },
                    envelope: r
                        .7
                        .map(|bytes| {
                            PackedEnvelope::new(bytes).ok_or_else(|| {
                                StoreError::Corrupt("stored message: bad envelope".into())
                            })
                        })
                        .transpose()?,
                    structure: r
                        .8
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(corrupt)?,
                    raw: r.9,
                });
            }
            // The budget is spent: what was read is the part of `uids` up to `hi`.
            if cut {
                return Ok((out, uids.partition_point(|u| *u <= hi)));
            }
        }
        Ok((out, uids.len()))
    }

    /// The end of the part of `lo..=hi` that fits in `budget` bytes: the last message that
    /// starts within it (at least the first message), and whether that is short of `hi`.
    async fn within(&self, mailbox_id: i64, lo: u32, hi: u32, budget: i64) -> Result<(u32, bool)> {
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(uid || ' ' || size, char(10))
             FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ?",
        )
        .bind(mailbox_id)
        .bind(lo)
        .bind(hi)
        .fetch_one(&self.reader)
        .await?;
        let mut sizes = Vec::new();
        for line in super::packed::lines::<2>(packed.as_deref(), "a message's size") {
            let ([uid, size], _) = line?;
            sizes.push((uid, size));
        }
        sizes.sort_unstable();
        let mut before = 0i64;
        for (k, (uid, size)) in sizes.iter().enumerate() {
            before = before.saturating_add(*size);
            if before >= budget && k + 1 < sizes.len() {
                let uid = u32::try_from(*uid).map_err(|_| {
                    StoreError::Corrupt(format!("UID {uid} in mailbox {mailbox_id}"))
                })?;
                return Ok((uid, true));
            }
        }
        Ok((hi, false))
    }

    /// Metadata only (FETCH FLAGS, UID, RFC822.SIZE, INTERNALDATE, MODSEQ: what a client's
    /// sync asks of every message), as one row per UID range holding every message as a line
    /// `id uid modseq flags internal_date size keywords…`: sqlx hands rows over from its
    /// worker thread one by one, a thread switch each, which made `UID FETCH 1:* (FLAGS)` of
    /// 20,000 messages cost 103 ms against Dovecot's 25. The SELECT snapshot does the same
    /// (`flag_snapshot`); store/packed.rs reads the lines back.
    async fn meta_views(&self, mailbox_id: i64, uids: &[u32]) -> Result<Vec<MessageView>> {
        let corrupt = || StoreError::Corrupt(format!("messages of mailbox {mailbox_id}"));
        let mut out = Vec::with_capacity(uids.len());
        for (lo, hi) in uid_ranges(uids) {
            let packed: Option<String> = sqlx::query_scalar(
                "SELECT group_concat(id || ' ' || uid || ' ' || modseq || ' ' || flags || ' ' ||
                                     internal_date || ' ' || size || ' ' || keywords, char(10))
                 FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ?",
            )
            .bind(mailbox_id)
            .bind(lo)
            .bind(hi)
            .fetch_one(&self.reader)
            .await?;
            for line in super::packed::lines::<6>(packed.as_deref(), "a message's metadata") {
                let ([id, uid, modseq, flags, internal_date, size], keywords) = line?;
                let uid = u32::try_from(uid).map_err(|_| corrupt())?;
                if uids.binary_search(&uid).is_err() {
                    continue;
                }
                out.push(MessageView {
                    meta: MessageMeta {
                        id,
                        uid,
                        modseq: u64::try_from(modseq).map_err(|_| corrupt())?,
                        flags: Flags::from_bits(u8::try_from(flags).map_err(|_| corrupt())?),
                        keywords: super::packed::keywords(keywords),
                        internal_date,
                        size: u64::try_from(size).map_err(|_| corrupt())?,
                    },
                    envelope: None,
                    structure: None,
                    raw: None,
                });
            }
        }
        out.sort_unstable_by_key(|v| v.meta.uid);
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::ViewParts;
    use crate::store::testing::{small_messages, store_with_accounts};

    /// With the raw messages, a read stops at the byte budget (the first message always
    /// read), says how far it got, and the rest follows from there; expunged UIDs are
    /// skipped without counting.
    #[tokio::test]
    async fn views_within_a_budget() {
        let (_dir, store, ids) = store_with_accounts(&["fetch@example.org"]).await;
        let (raws, uids) = small_messages(&store, ids[0], 5).await;
        let inbox = store.mailbox(ids[0], "INBOX").await.unwrap().unwrap();
        store.expunge(&inbox, &[uids[1]]).await.unwrap();
        let size = raws[0].len() as u64;
        let raw = ViewParts {
            raw: true,
            ..ViewParts::default()
        };
        let read = |asked: Vec<u32>, budget: u64| {
            let (store, inbox, uids, raws) = (store.clone(), inbox.clone(), &uids, &raws);
            async move {
                let (views, done) = store
                    .message_views_within(&inbox, &asked, raw, budget)
                    .await
                    .unwrap();
                let got: Vec<u32> = views.iter().map(|v| v.meta.uid).collect();
                for v in &views {
                    let k = uids.iter().position(|u| *u == v.meta.uid).unwrap();
                    assert_eq!(v.raw.as_deref(), Some(raws[k].as_slice()));
                }
                (got, done)
            }
        };
        // Two and a half messages' worth: the third present one starts within the budget.
        let (got, done) = read(uids.clone(), size * 2 + size / 2).await;
        assert_eq!((got, done), (vec![uids[0], uids[2], uids[3]], 4));
        assert_eq!(read(uids[4..].to_vec(), size).await, (vec![uids[4]], 1));
        // Smaller than the first message: the first alone.
        assert_eq!(read(uids.clone(), 1).await, (vec![uids[0]], 1));
        // Across separate runs of UIDs, the budget is one.
        let asked = vec![uids[0], uids[2], uids[4]];
        assert_eq!(
            read(asked.clone(), size + size / 2).await,
            (vec![uids[0], uids[2]], 2)
        );
        assert_eq!(read(asked.clone(), u64::MAX).await, (asked.clone(), 3));
        // Only expunged UIDs: nothing, and all of them dealt with.
        assert_eq!(read(vec![uids[1]], 1).await, (vec![], 1));
        // Without the raw messages there is no budget.
        let (views, done) = store
            .message_views_within(&inbox, &uids, ViewParts::default(), 1)
            .await
            .unwrap();
        assert_eq!((views.len(), done), (4, 5));
    }
}
