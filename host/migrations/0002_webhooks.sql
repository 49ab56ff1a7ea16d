-- Version 2: composed webhook requests, stored before the events response
-- returns and delivered (with retries) by the service's delivery worker.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    connector TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX webhooks_due ON webhooks (status, next_attempt_ms);
CREATE INDEX webhooks_by_team ON webhooks (team_id, id);
