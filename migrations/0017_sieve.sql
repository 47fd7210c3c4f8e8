-- Sieve (issue 22): each account's scripts, uploaded by ManageSieve or written by the webmail's
-- rules pages (the script named 'mailroom'), at most one of them active; the vacation replies
-- sent, for RFC 5230's once-per-period rule; the last runtime error of an account's active
-- script, which the rules page shows; and per domain whether users may forward mail to
-- addresses outside our domains.

CREATE TABLE sieve_scripts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,            -- 1 to 128 characters, no control characters
    source     TEXT NOT NULL,
    compiled   TEXT NOT NULL,            -- the compiled form (sieve::Script::to_stored)
    active     INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL,         -- unix time of the last upload
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
-- At most one active script per account, kept by the database itself.
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts(account_id) WHERE active = 1;

-- A vacation reply sent to `sender` for the `handle` (RFC 5230 :handle) silences further
-- replies to that sender until `until`.
CREATE TABLE sieve_vacation (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    handle     TEXT NOT NULL,
    sender     TEXT NOT NULL COLLATE NOCASE,
    until      INTEGER NOT NULL,
    PRIMARY KEY (account_id, handle, sender)
) WITHOUT ROWID;
CREATE INDEX sieve_vacation_until ON sieve_vacation(until);

-- The last runtime error of an account's script (the message was kept in the INBOX).
CREATE TABLE sieve_errors (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    script     TEXT NOT NULL,
    message    TEXT NOT NULL
);

ALTER TABLE domains ADD COLUMN allow_external_forward INTEGER NOT NULL DEFAULT 1;
