-- Deliverability (issue 23): where the required addresses postmaster@ and abuse@ go, MTA-STS
-- publishing per domain, and the smarthost (relay) used instead of MX delivery.

-- postmaster@ and abuse@ (RFC 5321 4.5.1, RFC 2142) are accepted for every domain even when no
-- account or alias has the name; without a row here they go to the first admin account. A row
-- with no domain is the global setting; a domain's row wins over it. An explicit account or
-- alias of that name wins over both.
CREATE TABLE required_address_routes (
    domain_id INTEGER REFERENCES domains(id) ON DELETE CASCADE, -- NULL: every domain
    local     TEXT NOT NULL CHECK (local IN ('postmaster', 'abuse')),
    target    TEXT NOT NULL COLLATE NOCASE,                     -- an address, ours or not
    updated   INTEGER NOT NULL
);
CREATE UNIQUE INDEX required_address_routes_key
    ON required_address_routes(COALESCE(domain_id, 0), local);

-- MTA-STS (RFC 8461) publishing: off, or the policy's mode.
ALTER TABLE domains ADD COLUMN mta_sts_mode TEXT NOT NULL DEFAULT 'off'
    CHECK (mta_sts_mode IN ('off', 'testing', 'enforce'));

-- The relay outbound mail goes through when port 25 is blocked: global (no domain) or per
-- sending domain. The password is kept as given: the data directory is readable only by the
-- service, and the relay needs it in clear text for AUTH.
CREATE TABLE smarthosts (
    domain_id INTEGER REFERENCES domains(id) ON DELETE CASCADE, -- NULL: every domain
    host      TEXT NOT NULL,
    port      INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls       TEXT NOT NULL CHECK (tls IN ('implicit', 'starttls')),
    username  TEXT NOT NULL,
    password  TEXT NOT NULL,
    updated   INTEGER NOT NULL
);
CREATE UNIQUE INDEX smarthosts_key ON smarthosts(COALESCE(domain_id, 0));
