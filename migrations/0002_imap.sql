-- IMAP, version 2. Covering indexes over what was parsed at delivery, so FETCH ENVELOPE and
-- SEARCH read it without touching the message body: a blob row stores `data` (the message,
-- usually several KB) before these columns, so reading them from the table walks the body's
-- overflow pages. With 10,000 messages that made UID FETCH 1:* ENVELOPE take ~775 ms.
CREATE INDEX blobs_envelope ON blobs(id, envelope);
CREATE INDEX blobs_search ON blobs(id, header_date, subject, from_display, to_display, cc_display);
