-- Text search (store/search.rs) finds candidate bodies in the trigram index, then their copies
-- in the mailbox searched. With `messages_blob` on (blob_id) alone, each candidate cost a read
-- of its message row to learn its mailbox, so a search cost what the whole server holds: 15 ms
-- for a 100-message mailbox on a 310,000-message server whose other accounts held 3,100
-- candidates. With the mailbox and UID in the index a candidate elsewhere costs one probe of
-- the index (4 ms), and a hit is answered from the index alone. Every other use of the index
-- (a body's copies, by blob_id) reads its first column as before.
DROP INDEX messages_blob;
CREATE INDEX messages_blob ON messages(blob_id, mailbox_id, uid);
