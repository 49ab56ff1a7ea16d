-- Version 5: each team's chain version (bumped by every PUT of its chain) and
-- health version (bumped by every quarantine change); a PostgreSQL store's
-- processes poll them. A health change made for an older chain version is not stored.
ALTER TABLE teams ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN health_version INTEGER NOT NULL DEFAULT 0;
