//! What threading needs beyond the search rows: the header blocks, for the References field,
//! which is not kept in a column.

use super::mailboxes::Mailbox;
use super::{Result, Store, StoreError};

impl Store {
    /// The header block (up to the blank line, at most 64 KiB) of every message of a mailbox
    /// (or only of the UIDs `only` names, when given) with its UID, by ascending UID, one at a
    /// time, so a caller that keeps one field holds no more than that. SQLite still reads
    /// each body it cuts a block from.
    pub fn header_blocks<'a>(
        &'a self,
        mailbox: &Mailbox,
        only: Option<&'a [u32]>,
    ) -> futures::stream::BoxStream<'a, Result<(u32, Vec<u8>)>> {
        use futures::TryStreamExt;
        let mailbox_id = mailbox.id();
        // A long UID list costs more as SQL than the rows it saves (as in `search_rows`).
        let only = only.filter(|uids| uids.len() <= 2000);
        let sql = format!(
            "SELECT m.uid, CASE WHEN instr(b.data, X'0D0A0D0A') > 0
                                THEN substr(b.data, 1, min(instr(b.data, X'0D0A0D0A') + 1, 65536))
                                ELSE substr(b.data, 1, 65536) END
             FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? {} ORDER BY m.uid",
            match only {
                // Placeholders only: the UIDs are bound below.
                Some(uids) => format!("AND m.uid IN ({})", vec!["?"; uids.len()].join(", ")),
                None => String::new(),
            }
        );
        let mut query =
            sqlx::query_as::<_, (u32, Vec<u8>)>(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
        for uid in only.unwrap_or_default() {
            query = query.bind(*uid);
        }
        Box::pin(query.fetch(&self.reader).map_err(StoreError::from))
    }
}
