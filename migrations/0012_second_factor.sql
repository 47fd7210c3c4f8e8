-- The web sign-in's second step and the WebAuthn ceremonies (issue 19): state that lives a
-- few minutes between two requests of one browser. The cookie holds a random token; this
-- table keeps its SHA-256 only, like `sessions`, so a copy of the database replays nothing.
--
-- `purpose`: 'second' (the password was right; a second factor is still due), 'enroll' (the
-- password was right, a second factor is required and the account has none: only the setup
-- page), 'passkey-register' (a signed-in user adding a passkey). Each needs a correct password
-- or a session first; the username-less passkey sign-in, which anyone can start, is kept in
-- the server's memory instead (bounded), so a flood of it writes nothing. `challenge` is the WebAuthn challenge (empty until one
-- was issued); `attempts` counts wrong codes, bounded per pending sign-in.
CREATE TABLE pending_sign_ins (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    area       TEXT NOT NULL DEFAULT '',
    next       TEXT NOT NULL DEFAULT '',
    challenge  BLOB NOT NULL DEFAULT x'',
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX pending_sign_ins_created ON pending_sign_ins(created_at);

-- WebAuthn's user handle for discoverable credentials: random, so a passkey does not carry
-- the account's row id to the authenticator.
ALTER TABLE passkeys ADD COLUMN user_handle BLOB NOT NULL DEFAULT x'';
