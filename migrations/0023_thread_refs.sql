-- Threading without reading bodies (issue 24, the webmail's conversations): what RFC 5256
-- REFERENCES needs of a message besides its Message-ID, computed at delivery by
-- `thread::stored_refs` (the kept References ids, or In-Reply-To's first; '' when none).
-- NULL: not computed yet (bodies stored before this migration); `store::threads::fill_thread_refs`
-- fills them at open, found through this partial index, which is empty once done.
ALTER TABLE blobs ADD COLUMN thread_refs TEXT;
CREATE INDEX blobs_thread_refs_pending ON blobs(id) WHERE thread_refs IS NULL;
