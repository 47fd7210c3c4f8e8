-- IMAP subscriptions are a list of names of their own (RFC 3501 §6.3.6, RFC 9051 §6.3.7), not
-- a property of mailboxes: a name stays subscribed when its mailbox is deleted or renamed,
-- one can subscribe to a name that does not exist, and CREATE subscribes nothing. The flags
-- the mailboxes had become rows here, and the column goes.
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,                -- UTF-8, as mailbox names; INBOX in capitals
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;

ALTER TABLE mailboxes DROP COLUMN subscribed;
