-- Mailroom schema, version 1. Never edit a shipped migration: add a new one.
-- Times are unix seconds (UTC). Sizes are bytes.

CREATE TABLE domains (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- DKIM: selector and PKCS#8 PEM keys, filled when the outbound issue lands.
    dkim_selector TEXT,
    dkim_rsa_key  TEXT,
    dkim_ed25519_key TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    address        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    domain_id      INTEGER NOT NULL REFERENCES domains(id),
    password_hash  TEXT NOT NULL,            -- argon2id PHC string
    display_name   TEXT NOT NULL DEFAULT '',
    quota_bytes    INTEGER NOT NULL DEFAULT 0, -- 0 = unlimited
    used_bytes     INTEGER NOT NULL DEFAULT 0, -- sum of message sizes, kept in the same transaction
    message_count  INTEGER NOT NULL DEFAULT 0,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain_id);

-- One row per (source, target). A source is 'local@domain' or '@domain' (catch-all).
CREATE TABLE aliases (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domains(id),
    source     TEXT NOT NULL COLLATE NOCASE,
    target     TEXT NOT NULL COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    UNIQUE (source, target)
);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,            -- UTF-8, hierarchy separator '/'
    special_use    TEXT,                     -- '\Sent', '\Drafts', ...
    uidvalidity    INTEGER NOT NULL,
    uidnext        INTEGER NOT NULL DEFAULT 1,
    highestmodseq  INTEGER NOT NULL DEFAULT 1,
    subscribed     INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- A message body, stored once however many mailboxes hold it (content-addressed), with what
-- was parsed from it at delivery so FETCH, SEARCH and the webmail never parse again.
CREATE TABLE blobs (
    id              INTEGER PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,    -- SHA-256, hex
    refcount        INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    data            BLOB NOT NULL,
    envelope        TEXT NOT NULL,           -- JSON, mime::Envelope
    body_structure  TEXT NOT NULL,           -- JSON, mime::BodyPart
    subject         TEXT NOT NULL,
    from_display    TEXT NOT NULL,
    to_display      TEXT NOT NULL,
    cc_display      TEXT NOT NULL,
    header_date     INTEGER,
    message_id      TEXT,
    has_attachment  INTEGER NOT NULL,
    snippet         TEXT NOT NULL
);

-- Full-text search over subject, addresses and body text; rowid = blobs.id.
CREATE VIRTUAL TABLE blob_text USING fts5(subject, addresses, body, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid            INTEGER NOT NULL,
    modseq         INTEGER NOT NULL,
    flags          INTEGER NOT NULL DEFAULT 0, -- bit set: 1 Seen, 2 Answered, 4 Flagged, 8 Deleted, 16 Draft
    keywords       TEXT NOT NULL DEFAULT '',   -- space separated
    internal_date  INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    blob_id        INTEGER NOT NULL REFERENCES blobs(id),
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages(blob_id);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);

-- What was expunged and when, for CONDSTORE/QRESYNC.
CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

-- Web sessions (admin panel and webmail): the token is stored hashed.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) WITHOUT ROWID;

-- Small facts about this installation (first start done, last backup, ...).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
