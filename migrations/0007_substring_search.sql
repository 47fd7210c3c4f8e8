-- IMAP SEARCH BODY/TEXT are substring searches (RFC 3501/9051 §6.4.4: `BODY sdfghjk` finds
-- "asdfghjkl"), which a word index cannot answer. The full-text index becomes a trigram index
-- (every 3 characters, case folded as FTS5 folds: simple Unicode case folding, diacritics
-- kept) over every header field (`headers`, for TEXT) and the decoded body text (`body`); rowid
-- = blobs.id as before. `detail=none` keeps only which rows hold a trigram, not where: the
-- index is then smaller than the word index it replaces (see `store/search.rs`), and the rows
-- holding all of a needle's trigrams are checked against their stored text.
DROP TABLE blob_text;
CREATE VIRTUAL TABLE blob_text USING fts5(headers, body,
    tokenize = 'trigram case_sensitive 0', detail = none);

-- The bodies stored before this migration, to be indexed again from their raw text by
-- `store::search::reindex_text` when the store opens (the header text needs the message
-- parsed, which SQL cannot do); empty once that is done, and new bodies never enter it.
CREATE TABLE blob_text_pending (id INTEGER PRIMARY KEY);
INSERT INTO blob_text_pending SELECT id FROM blobs;
