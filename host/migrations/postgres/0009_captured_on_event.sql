-- Version 9: the delivery queue marks an onEvent call on an event a
-- connector captured: what that call captures is dropped, so no connector
-- feeds itself for ever.
ALTER TABLE webhooks ADD COLUMN of_captured INTEGER NOT NULL DEFAULT 0
