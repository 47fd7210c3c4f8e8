-- The spam filter's decision (issue 21): thresholds per domain and per account, each account's
-- always-allow and always-block lists, sender reputation per account, the DNS block and allow
-- lists, and greylisting. Server-wide switches (greylisting on, the default thresholds) are
-- meta keys. Thresholds are points on the scale of `spam::verdict`.

CREATE TABLE spam_domain_policy (
    domain_id        INTEGER PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    enabled          INTEGER NOT NULL DEFAULT 1,
    junk_threshold   REAL,      -- NULL: the server's default
    reject_threshold REAL       -- NULL: the server's default
);

CREATE TABLE spam_account_policy (
    account_id     INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    junk_threshold REAL         -- NULL: the domain's
);

CREATE TABLE spam_lists (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    entry      TEXT NOT NULL,   -- a lower-case address (a@b) or domain (b)
    allow      INTEGER NOT NULL, -- 1: always allow, 0: always block
    PRIMARY KEY (account_id, entry)
) WITHOUT ROWID;

-- How mail from one sender key fared with one account: classified at delivery and judged by the
-- user (a user's move counts more, see spam::reputation). Keys carry their kind:
-- 'from:a@b', 'domain:b', 'dkim:b', 'spf:b', 'ip:<network>/<prefix>', 'sent:a@b' (written to).
CREATE TABLE spam_reputation (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    ham        INTEGER NOT NULL DEFAULT 0,
    spam       INTEGER NOT NULL DEFAULT 0,
    seen       INTEGER NOT NULL,  -- unix day last counted, for pruning
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;

-- DNSBL (positive weight) and DNSWL (negative weight) zones asked at SMTP time.
CREATE TABLE spam_zones (
    zone   TEXT PRIMARY KEY COLLATE NOCASE,
    weight REAL NOT NULL
);

-- Greylisting triplets: (client network, envelope sender, recipient), first seen and when a
-- retry was accepted; rows expire (see store/greylist.rs).
CREATE TABLE greylist (
    network   TEXT NOT NULL,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    first     INTEGER NOT NULL,
    passed    INTEGER,
    PRIMARY KEY (network, sender, recipient)
) WITHOUT ROWID;
CREATE INDEX greylist_passed ON greylist(network, passed);
