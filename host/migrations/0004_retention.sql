-- Version 4: when a webhook row finished (delivered or dead), so finished rows
-- are pruned after the retention period (`--webhook-retention-hours`).
ALTER TABLE webhooks ADD COLUMN finished_ms INTEGER;
UPDATE webhooks SET finished_ms = CAST((julianday(created_at) - 2440587.5) * 86400000 AS INTEGER)
    WHERE status != 'pending';
CREATE INDEX webhooks_finished ON webhooks (finished_ms) WHERE status != 'pending';
