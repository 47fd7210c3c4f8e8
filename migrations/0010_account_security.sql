-- Account security (issue 19): app passwords, second factors for the web, the sign-in history
-- and the admin audit log. One migration for the whole feature so its parts share one schema;
-- a part that needs more adds its own migration after this one.

-- App passwords for mail clients: named per device, shown once, at least 128 random bits, so
-- they are checked with a keyed hash (`tag`, HMAC-SHA256 under a server key, hex) instead of
-- argon2id. `scopes` is a bit set: 1 IMAP, 2 POP3, 4 SMTP submission, 8 ManageSieve, 16 DAV.
CREATE TABLE app_passwords (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    tag                TEXT NOT NULL UNIQUE,
    scopes             INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER,
    last_used_ip       TEXT,
    last_used_protocol TEXT
);
CREATE INDEX app_passwords_account ON app_passwords(account_id);

-- TOTP (RFC 6238), at most one per account. The shared secret must be kept as is to check
-- codes. `confirmed_at` is NULL while the user is setting it up (it counts once confirmed);
-- `last_step` is the last time step accepted, so one code signs in once.
CREATE TABLE totp (
    account_id   INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

-- One-time recovery codes, stored hashed; `used_at` set when one is spent.
CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    INTEGER
);
CREATE INDEX recovery_codes_account ON recovery_codes(account_id);

-- WebAuthn credentials (passkeys): the public key as a COSE_Key, the signature counter.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    public_key    BLOB NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_account ON passkeys(account_id);

-- Who must sign in to the web with a second factor: every account of a domain (this column),
-- and every admin when the meta key 'require_two_factor_admins' is '1'.
ALTER TABLE domains ADD COLUMN require_two_factor INTEGER NOT NULL DEFAULT 0;

-- Sign-ins of existing accounts on every protocol, successful or not (the Security page shows
-- the last 20); kept bounded per account.
CREATE TABLE sign_ins (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    ip         TEXT NOT NULL,
    protocol   TEXT NOT NULL,  -- 'imap', 'pop3', 'smtp', 'web', 'managesieve'
    method     TEXT NOT NULL,  -- 'password', 'app password <name>', 'totp', 'passkey', 'recovery code'
    success    INTEGER NOT NULL
);
CREATE INDEX sign_ins_account ON sign_ins(account_id, at);

-- Web sessions: the device and address they were opened from, shown on the Security page.
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';

-- The admin audit log: who created, changed or removed which domain, account, alias, quota,
-- password or second factor, and when. `actor` is the admin's address, or 'cli'.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    ip     TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,  -- 'account.create', 'account.password', 'second_factor.reset', ...
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
