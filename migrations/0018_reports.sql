-- Issue 23, reports: DMARC aggregate reports (RFC 7489 §7.2) and TLS reports (RFC 8460)
-- received at postmaster@ one of our domains, what we saw of other domains' mail for the
-- DMARC reports we send them, and the reports we sent.

-- A DMARC aggregate report received: one per reporting organisation and report id.
CREATE TABLE dmarc_reports (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL COLLATE NOCASE,   -- the policy domain the report is about (ours)
    org         TEXT NOT NULL,                  -- org_name, at most 200 characters
    report_id   TEXT NOT NULL,                  -- at most 200 characters
    email       TEXT NOT NULL,
    begin       INTEGER NOT NULL,               -- unix time
    end         INTEGER NOT NULL,
    policy      TEXT NOT NULL,                  -- the policy published, e.g. "p=reject sp=reject adkim=r aspf=r"
    received    INTEGER NOT NULL,
    rows_total  INTEGER NOT NULL,               -- rows in the report (at most MAX_ROWS are kept)
    UNIQUE (org, report_id)
);
CREATE INDEX dmarc_reports_domain ON dmarc_reports(domain, begin);

CREATE TABLE dmarc_report_rows (
    report      INTEGER NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,
    source_ip   TEXT NOT NULL,
    count       INTEGER NOT NULL,
    disposition TEXT NOT NULL,                  -- none, quarantine, reject
    dkim        TEXT NOT NULL,                  -- the DMARC-aligned DKIM result: pass or fail
    spf         TEXT NOT NULL,                  -- the DMARC-aligned SPF result: pass or fail
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    dkim_auth   TEXT NOT NULL,                  -- "domain=result" per signature, space-separated
    spf_auth    TEXT NOT NULL                   -- "domain=result" per SPF check, space-separated
);
CREATE INDEX dmarc_report_rows_report ON dmarc_report_rows(report);

-- A TLS report received (RFC 8460): one per organisation and report id, its policies as rows.
CREATE TABLE tls_reports (
    id          INTEGER PRIMARY KEY,
    org         TEXT NOT NULL,
    report_id   TEXT NOT NULL,
    contact     TEXT NOT NULL,
    begin       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    UNIQUE (org, report_id)
);

CREATE TABLE tls_report_policies (
    report      INTEGER NOT NULL REFERENCES tls_reports(id) ON DELETE CASCADE,
    domain      TEXT NOT NULL COLLATE NOCASE,   -- the policy domain (ours)
    policy_type TEXT NOT NULL,                  -- sts, tlsa, no-policy-found
    mx_hosts    TEXT NOT NULL,                  -- space-separated
    successes   INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    details     TEXT NOT NULL                   -- one "result-type count receiving-ip" per line
);
CREATE INDEX tls_report_policies_domain ON tls_report_policies(domain);

-- What we saw of mail received on port 25 from domains that ask for aggregate reports: one
-- row per UTC day and distinct combination, with a count. `policy` is the policy published
-- ("p=… sp=… adkim=… aspf=… pct=… fo=…"), `rua` the report addresses (space-separated),
-- `auth` the DKIM and SPF results as the report writes them (see reports::observe).
CREATE TABLE dmarc_seen (
    day         INTEGER NOT NULL,               -- unix time of the day's start (UTC)
    domain      TEXT NOT NULL COLLATE NOCASE,   -- the policy domain
    policy      TEXT NOT NULL,
    rua         TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    disposition TEXT NOT NULL,
    dkim        TEXT NOT NULL,
    spf         TEXT NOT NULL,
    reason      TEXT NOT NULL,                  -- a policy override reason, or ''
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    auth        TEXT NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (day, domain, policy, rua, source_ip, disposition, dkim, spf, reason,
                 header_from, envelope_from, auth)
) WITHOUT ROWID;

-- The reports we sent (DMARC and TLS), for the admin page; at most a year is kept.
CREATE TABLE reports_sent (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,                  -- dmarc, tls
    domain      TEXT NOT NULL,                  -- the policy domain reported on
    recipients  TEXT NOT NULL,                  -- space-separated
    rows        INTEGER NOT NULL,
    day         INTEGER NOT NULL,               -- the day reported on
    sent        INTEGER NOT NULL,
    note        TEXT NOT NULL                   -- what was not sent and why, or ''
);
CREATE INDEX reports_sent_sent ON reports_sent(sent);
