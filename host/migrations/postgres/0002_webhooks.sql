-- Version 2: composed webhook requests, claimed by any process's delivery worker.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    team_id BIGINT NOT NULL,
    connector TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);
CREATE INDEX webhooks_due ON webhooks (status, next_attempt_ms);
CREATE INDEX webhooks_by_team ON webhooks (team_id, id);
