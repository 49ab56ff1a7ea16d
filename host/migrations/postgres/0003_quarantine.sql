-- Version 3: quarantine state of each chain connector (healthy, degraded, disabled).
ALTER TABLE chain_connectors ADD COLUMN status TEXT NOT NULL DEFAULT 'healthy';
