-- Web sessions get an absolute expiry, and the dashboard's "last 24 hours" needs counts that
-- outlive a restart: events (deliveries, rejections by reason, failed logins) summed per hour.

CREATE INDEX sessions_last_seen ON sessions(last_seen);

CREATE TABLE event_counts (
    hour   INTEGER NOT NULL,   -- unix seconds, truncated to the hour
    kind   TEXT NOT NULL,      -- 'delivered', 'rejected:relay', 'login_failed', ...
    count  INTEGER NOT NULL,
    PRIMARY KEY (hour, kind)
) WITHOUT ROWID;

-- The webmail's signature, appended to new messages.
ALTER TABLE accounts ADD COLUMN signature TEXT NOT NULL DEFAULT '';
