-- Contacts (issue 24): each account's address book, in the one database (so backups hold it
-- and deleting the account deletes it). A contact is saved by its owner (the Contacts page, a
-- vCard import) or collected when the owner writes to someone not yet in the book; the
-- webmail's To/Cc/Bcc suggest from it. Bounds (contacts per account, field lengths) are
-- store::contacts'.

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL DEFAULT '',
    -- One address per line, lower-cased, the first the preferred one; a contact has at least one.
    emails     TEXT NOT NULL,
    -- One telephone number per line.
    phones     TEXT NOT NULL DEFAULT '',
    org        TEXT NOT NULL DEFAULT '',
    note       TEXT NOT NULL DEFAULT '',
    -- 1: added automatically from a message sent; 0: saved (typed, edited or imported).
    collected  INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL
);
CREATE INDEX contacts_account ON contacts(account_id, name COLLATE NOCASE);
