//! Message bodies, stored once per content (SHA-256) with a reference count, together with what
//! was parsed from them at delivery and their full-text index row. Only the delivery and
//! expunge paths touch references, inside their own transactions, so a count never drifts from
//! the rows that hold it.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{Result, Store, StoreError};
use crate::mime::Analysis;

/// A body to reference `refs` more times, stored if new.
pub(super) struct Body<'a> {
    pub hash: &'a str,
    pub raw: &'a [u8],
    pub analysis: &'a Analysis,
    pub refs: i64,
}

/// Adds references to bodies, storing the new ones, with a few statements: one lookup of the known hashes, one
/// insert of the new bodies and one of their index rows. Returns hash -> blob id.
pub(super) async fn acquire_many(
    conn: &mut SqliteConnection,
    bodies: &[Body<'_>],
) -> Result<HashMap<String, i64>> {
    let mut ids: HashMap<String, i64> = HashMap::new();
    for chunk in bodies.chunks(1000) {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT hash, id FROM blobs WHERE hash IN (");
        let mut list = q.separated(", ");
        for b in chunk {
            list.push_bind(b.hash);
        }
        q.push(")");
        ids.extend(
            q.build_query_as::<(String, i64)>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    // Bodies already stored (the same message delivered again): one more reference each.
    for b in bodies {
        if let Some(id) = ids.get(b.hash) {
            sqlx::query("UPDATE blobs SET refcount = refcount + ? WHERE id = ?")
                .bind(b.refs)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let fresh: Vec<&Body> = bodies
        .iter()
        .filter(|b| !ids.contains_key(b.hash))
        .collect();
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    // 15 variables a row: 500 rows stay far below SQLite's limit.
    for chunk in fresh.chunks(500) {
        let mut encoded = Vec::with_capacity(chunk.len());
        for b in chunk {
            encoded.push((
                crate::mime::pack_envelope(&b.analysis.envelope),
                serde_json::to_string(&b.analysis.body).map_err(corrupt)?,
            ));
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO blobs (hash, refcount, size, data, envelope, body_structure, subject,
                                from_display, to_display, cc_display, header_date, message_id,
                                has_attachment, snippet, thread_refs) ",
        );
        q.push_values(
            chunk.iter().zip(&encoded),
            |mut row, (b, (envelope, structure))| {
                let a = b.analysis;
                row.push_bind(b.hash)
                    .push_bind(b.refs)
                    .push_bind(b.raw.len() as i64)
                    .push_bind(b.raw)
                    .push_bind(envelope.as_slice())
                    .push_bind(structure.as_str())
                    .push_bind(a.subject.as_str())
                    .push_bind(a.from.as_str())
                    .push_bind(a.to.as_str())
                    .push_bind(a.cc.as_str())
                    .push_bind(a.date)
                    .push_bind(a.message_id.as_deref())
                    .push_bind(a.has_attachment)
                    .push_bind(a.snippet.as_str())
                    .push_bind(crate::thread::stored_refs(b.raw));
            },
        );
        q.push(" RETURNING hash, id");
        let inserted = q
            .build_query_as::<(String, i64)>()
            .fetch_all(&mut *conn)
            .await?;
        let mut text = QueryBuilder::<Sqlite>::new("INSERT INTO blob_text (rowid, headers, body) ");
        text.push_values(&inserted, |mut row, (hash, id)| {
            let s = chunk
                .iter()
                .find(|b| b.hash == hash)
                .map(|b| &b.analysis.search);
            row.push_bind(*id)
                .push_bind(s.map_or("", |s| s.headers.as_str()))
                .push_bind(s.map_or("", |s| s.body.as_str()));
        });
        if !inserted.is_empty() {
            text.build().execute(&mut *conn).await?;
        }
        ids.extend(inserted);
    }
    Ok(ids)
}

/// Drops references to bodies (blob id, count); a body and its index row go when none are
/// left. Three statements per 500 bodies: how a mailbox of
/// 10,000 messages is expunged in one go (POP3 QUIT, IMAP EXPUNGE, deleting a folder).
pub(super) async fn release_many(conn: &mut SqliteConnection, refs: &[(i64, i64)]) -> Result<()> {
    for chunk in refs.chunks(500) {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE blobs SET refcount = refcount - CASE id");
        for (id, n) in chunk {
            q.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*n);
        }
        q.push(" END WHERE id IN (");
        push_ids(&mut q, &ids);
        let updated = q.build().execute(&mut *conn).await?.rows_affected();
        if updated != ids.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} of {} message bodies are missing",
                ids.len() as u64 - updated,
                ids.len()
            )));
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "DELETE FROM blob_text WHERE rowid IN (SELECT id FROM blobs WHERE refcount <= 0 AND id IN (",
        );
        push_ids(&mut q, &ids);
        q.push(")");
        q.build().execute(&mut *conn).await?;
        let mut q =
            QueryBuilder::<Sqlite>::new("DELETE FROM blobs WHERE refcount <= 0 AND id IN (");
        push_ids(&mut q, &ids);
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends `?, ?, …)` binding `ids`.
fn push_ids(q: &mut QueryBuilder<Sqlite>, ids: &[i64]) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
}

impl Store {
    /// The raw message `uid` of `mailbox`; `NotFound` once it is expunged. By mailbox and UID
    /// in one query, never by a body id kept from an earlier read: that id may have been given
    /// to another account's new message since (POP3 holds its snapshot for the whole session).
    pub async fn message_body(&self, mailbox: &super::Mailbox, uid: u32) -> Result<Vec<u8>> {
        sqlx::query_scalar(
            "SELECT b.data FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? AND m.uid = ?",
        )
        .bind(mailbox.id)
        .bind(uid)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("message {uid}")))
    }

    /// The bodies of the messages with these UIDs in a mailbox, by ascending UID, as many as
    /// fit in `budget` bytes (by their stored sizes; the first always comes): POP3 reads the
    /// messages it will be asked for next in one query, not one each, since handing each query
    /// to SQLite's thread and back cost more than reading the body. UIDs no longer there are
    /// left out. At most a few hundred UIDs (each is a bound variable).
    pub async fn message_bodies_within(
        &self,
        mailbox: &super::Mailbox,
        uids: &[u32],
        budget: u64,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        // The running total of the sizes before each message comes from `messages.size`, so
        // bodies past the budget are never read.
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT w.uid, b.data FROM (
               SELECT uid, blob_id, SUM(size) OVER (ORDER BY uid) - size AS before
               FROM messages WHERE mailbox_id = ",
        );
        q.push_bind(mailbox.id).push(" AND uid IN (");
        let mut list = q.separated(", ");
        for uid in uids {
            list.push_bind(*uid);
        }
        q.push(")) w JOIN blobs b ON b.id = w.blob_id WHERE w.before < ")
            .push_bind(i64::try_from(budget).unwrap_or(i64::MAX))
            .push(" ORDER BY w.uid");
        Ok(q.build_query_as().fetch_all(&self.reader).await?)
    }

    /// How many distinct bodies are stored, and their total size (for the dashboard and tests).
    pub async fn blob_stats(&self) -> Result<(i64, i64)> {
        Ok(
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs")
                .fetch_one(&self.reader)
                .await?,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::store::testing::{small_messages, store_with_accounts};

    /// Bodies come by ascending UID, missing UIDs left out, and stop at the byte budget,
    /// the first always included.
    #[tokio::test]
    async fn bodies_within_a_budget() {
        let (_dir, store, ids) = store_with_accounts(&["pop@example.org"]).await;
        let (raws, uids) = small_messages(&store, ids[0], 5).await;
        let inbox = store.mailbox(ids[0], "INBOX").await.unwrap().unwrap();
        let size = raws[0].len() as u64;
        // UIDs asked in any order, one that does not exist: ascending, present ones only.
        let asked = [uids[3], uids[1], 999_999, uids[2]];
        let got = store
            .message_bodies_within(&inbox, &asked, u64::MAX)
            .await
            .unwrap();
        let want: Vec<(u32, Vec<u8>)> = [1, 2, 3].map(|k| (uids[k], raws[k].clone())).to_vec();
        assert_eq!(got, want);
        // Two and a half bodies' worth: the third starts within the budget, the fourth not.
        let got = store
            .message_bodies_within(&inbox, &uids, size * 2 + size / 2)
            .await
            .unwrap();
        assert_eq!(got.iter().map(|(u, _)| *u).collect::<Vec<_>>(), uids[..3]);
        // A budget smaller than the first body still gives the first.
        let got = store.message_bodies_within(&inbox, &uids, 1).await.unwrap();
        assert_eq!(got, vec![(uids[0], raws[0].clone())]);
        assert!(
            store
                .message_bodies_within(&inbox, &[], 1)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
