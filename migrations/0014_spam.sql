-- The spam filter's memory per account (issue 21): in how many trained spam and ham messages
-- each token appeared, how many of each were trained, and what each message was trained as
-- (by the SHA-256 of its text), so moving it back untrains it instead of counting it twice.

CREATE TABLE spam_tokens (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    token      INTEGER NOT NULL,   -- spam::tokens::hash, as a signed 64-bit integer
    spam       INTEGER NOT NULL DEFAULT 0,
    ham        INTEGER NOT NULL DEFAULT 0,
    seen       INTEGER NOT NULL,   -- unix day last trained, for pruning rare old tokens
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;

CREATE TABLE spam_totals (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    spam       INTEGER NOT NULL DEFAULT 0,
    ham        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE spam_trained (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message    TEXT NOT NULL,      -- SHA-256 of the message, hex
    as_spam    INTEGER NOT NULL,
    PRIMARY KEY (account_id, message)
) WITHOUT ROWID;
