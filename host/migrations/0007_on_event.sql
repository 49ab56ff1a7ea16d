-- Version 7: the delivery queue also holds onEvent calls: `kind` is 'request'
-- (an HTTP request composeWebhook returned) or 'on_event' (the connector with
-- `connector_id`, its stable id, is to be called with the event in `body`).
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'request';
ALTER TABLE webhooks ADD COLUMN connector_id TEXT;
