-- The outbound queue: what submission (and forwarding) hands over for other servers.
-- A message is stored once; each recipient carries its own retry state and is deleted when
-- it is delivered or bounced. The message goes when its last recipient does.
CREATE TABLE queue_messages (
    id          INTEGER PRIMARY KEY,
    -- The envelope sender ('' for the null sender: never bounced to).
    sender      TEXT NOT NULL,
    -- The message as it leaves (trace and DKIM signatures included).
    raw         BLOB NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Needs SMTPUTF8 from the receiving server (non-ASCII envelope addresses).
    smtputf8    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE queue_recipients (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    domain       TEXT NOT NULL COLLATE NOCASE,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    -- Set while a worker holds it (next_attempt is then the lease's end); cleared on start,
    -- so attempts cut short by a crash or a restart are retried at once.
    claimed      INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX queue_recipients_due ON queue_recipients(next_attempt);
CREATE INDEX queue_recipients_message ON queue_recipients(message_id);
