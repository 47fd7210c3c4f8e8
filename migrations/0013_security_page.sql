-- The Security page (issue 19): each web session gets an opaque public id, so the page can name
-- a session in a "sign out" form without showing its token hash (the table is WITHOUT ROWID, so
-- there is no rowid to use). Random, 128 bits, as hex; sessions open before this get one too.
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
UPDATE sessions SET public_id = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX sessions_public_id ON sessions(public_id);
-- The page lists an account's sessions; "sign out everywhere" deletes them.
CREATE INDEX sessions_account ON sessions(account_id);
