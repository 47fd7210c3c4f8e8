-- Greylisting's expiry (store/greylist.rs): triplets never retried go 4 hours after `first`,
-- passed ones 36 days after `passed`. This index finds both kinds of expired row without
-- scanning the table.
CREATE INDEX greylist_expiry ON greylist(passed, first);
