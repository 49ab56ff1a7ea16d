-- sandpipe service store on PostgreSQL, version 1: teams, content-addressed bundles,
-- team chains, connector logs, settings, and meta.storage (which SQLite keeps in
-- tables sandpipe-runtime's SqliteStorage owns; here the store owns them).
CREATE TABLE teams (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);

-- Each bundle once, by the sha256 of its bytes.
CREATE TABLE bundles (
    sha256 TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);

CREATE TABLE chain_connectors (
    team_id BIGINT NOT NULL REFERENCES teams(id),
    position BIGINT NOT NULL,
    bundle TEXT NOT NULL REFERENCES bundles(sha256),
    config TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (team_id, position)
);

CREATE TABLE logs (
    id BIGSERIAL PRIMARY KEY,
    team_id BIGINT NOT NULL,
    connector TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX logs_by_team ON logs (team_id, id);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- meta.storage: one row per key, and each scope's usage kept in step in the
-- transaction that writes, for the per-connector quota.
CREATE TABLE connector_storage (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE connector_storage_usage (
    scope TEXT PRIMARY KEY,
    keys BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
