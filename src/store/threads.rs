//! What threading needs beyond the search rows: the header blocks, for the References field,
//! which is not kept in a column.

use super::mailboxes::Mailbox;
use super::{Result, Store, StoreError};

impl Store {
    /// The header block (up to the blank line, at most 64 KiB) of every message of a mailbox
    /// with its UID, by ascending UID, one at a time, so a caller that keeps one field holds
    /// no more than that. SQLite still reads each body it cuts a block from.
    pub fn header_blocks(
        &self,
        mailbox: &Mailbox,
    ) -> futures::stream::BoxStream<'_, Result<(u32, Vec<u8>)>> {
        use futures::TryStreamExt;
        let mailbox_id = mailbox.id();
        Box::pin(
            sqlx::query_as::<_, (u32, Vec<u8>)>(
                "SELECT m.uid, CASE WHEN instr(b.data, X'0D0A0D0A') > 0
                                    THEN substr(b.data, 1, min(instr(b.data, X'0D0A0D0A') + 1, 65536))
                                    ELSE substr(b.data, 1, 65536) END
                 FROM messages m JOIN blobs b ON b.id = m.blob_id
                 WHERE m.mailbox_id = ? ORDER BY m.uid",
            )
            .bind(mailbox_id)
            .fetch(&self.reader)
            .map_err(StoreError::from),
        )
    }
}
