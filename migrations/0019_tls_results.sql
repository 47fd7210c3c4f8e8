-- Outbound TLS results (RFC 8460 data, store/tls_results.rs): one row per UTC day, policy
-- domain, policy type, policy strings, MX host, receiving IP and result type, with a count.
-- Success rows have result_type NULL. Written by the queue (MTA-STS, DANE, no policy), read
-- and forgotten by the TLS-RPT reporter. At most 10,000 rows a day (enforced by the store).
CREATE TABLE tls_results (
    id INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,               -- unix seconds of the UTC day's start
    policy_domain TEXT NOT NULL,
    policy_type TEXT NOT NULL,          -- 'sts', 'tlsa', 'no-policy-found'
    policy_strings TEXT NOT NULL,       -- JSON array of strings
    mx_host TEXT NOT NULL,
    receiving_ip TEXT,
    result_type TEXT,                   -- NULL: success
    detail TEXT,                        -- the latest failure's detail, at most 200 characters
    count INTEGER NOT NULL
);
-- Finds a row to count into (the store compares the nullable columns with IS) and a day's rows.
CREATE INDEX tls_results_day ON tls_results(day, policy_domain, mx_host);
