-- Version 8: scheduled tasks (runEveryMinute/Hour/Day). One row per
-- connector and task: the last period claimed (its number since the Unix
-- epoch, in the task's period), whether that run is still going, and until
-- when its claim holds (a process that died mid-run gives it up then).
CREATE TABLE scheduled_tasks (
    team_id INTEGER NOT NULL,
    connector_id TEXT NOT NULL,
    task TEXT NOT NULL,
    period INTEGER NOT NULL,
    running INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    PRIMARY KEY (team_id, connector_id, task)
);
