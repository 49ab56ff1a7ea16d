-- Version 10: the delivery queue also holds events for a connector's
-- exportEvents: `kind` 'export', one row per event, delivered in batches.
-- `buffered` is 1 while a row waits in its connector's buffer (all of a
-- buffer's rows are due when its oldest has waited long enough, or at once
-- when they make full batches); a lease clears it. `batch_bytes` is the size
-- past which its batch is cut; `batch_id`, once a batch has failed, the id
-- its rows keep so they are retried as that batch (0 before).
ALTER TABLE webhooks ADD COLUMN buffered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN batch_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX webhooks_buffered ON webhooks (team_id, connector_id, buffered);
-- An onEvent call queued before this version, for a connector that defines
-- exportEvents, also stood for exportEvents([event]): marked (whatever its
-- status, as a dead one may be delivered again), it still does.
UPDATE webhooks SET batch_bytes = -1 WHERE kind = 'on_event';
