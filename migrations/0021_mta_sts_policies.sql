-- MTA-STS policies of the domains we send to (RFC 8461 §5, queue/mta_sts.rs, store/mta_sts.rs):
-- the policy as fetched (at most 64 KiB), the TXT record's id it was fetched under, and until
-- when it may be used (fetched_at + max_age). Kept across restarts, so a policy host that is
-- down does not switch a domain's protection off.
CREATE TABLE mta_sts_policies (
    domain TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    policy TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mta_sts_policies_expiry ON mta_sts_policies(expires_at);
