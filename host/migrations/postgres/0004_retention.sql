-- Version 4: when a webhook row finished (delivered or dead), for retention.
ALTER TABLE webhooks ADD COLUMN finished_ms BIGINT;
CREATE INDEX webhooks_finished ON webhooks (finished_ms) WHERE status != 'pending';
