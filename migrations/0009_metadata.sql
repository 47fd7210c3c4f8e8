-- IMAP METADATA (RFC 5464): annotations on mailboxes and on the server.
--
-- Entry names are kept in lower case (RFC 5464 entry names are case-insensitive, and
-- Dovecot does the same) and start with '/private/' or '/shared/'. Values are octets.
--
-- A mailbox has one owner and no other account can open it, so its private and shared
-- entries are both the owner's; they go with the mailbox (ON DELETE CASCADE) and follow a
-- RENAME, which keeps the mailbox's id.
CREATE TABLE mailbox_metadata (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, name)
) WITHOUT ROWID;

-- Server entries: '/private/...' rows belong to one account; '/shared/...' rows have no
-- account (account_id NULL), every account reads them and only administrators write them.
CREATE TABLE server_metadata (
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      BLOB NOT NULL
);
CREATE UNIQUE INDEX server_metadata_key ON server_metadata (ifnull(account_id, 0), name);
