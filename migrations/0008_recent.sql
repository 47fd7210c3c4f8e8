-- \Recent (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to be told
-- of it (at SELECT, or while it has the mailbox selected). Messages get UIDs in ascending order,
-- so what has been claimed is one number per mailbox: the UIDs below `recent_uid` belong to a
-- session already (or to none), those at or above it are recent to whoever claims them next.
-- Mail that was there before this migration counts as seen by a session already.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uidnext;
