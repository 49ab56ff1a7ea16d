-- Version 5: each team's chain version (bumped by every PUT of its chain) and
-- health version (bumped by every quarantine change), which every process
-- polls to install what another process stored.
ALTER TABLE teams ADD COLUMN chain_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN health_version BIGINT NOT NULL DEFAULT 0;
