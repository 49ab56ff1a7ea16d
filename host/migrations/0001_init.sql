-- sandpipe service store, version 1: teams, content-addressed bundles, team chains,
-- connector logs, and meta.storage values.
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE bundles (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- A team's chain: an ordered list of connectors. `config` holds the values as
-- given, secrets included; responses show them redacted.
CREATE TABLE chain_connectors (
    team_id INTEGER NOT NULL REFERENCES teams(id),
    position INTEGER NOT NULL,
    bundle TEXT NOT NULL REFERENCES bundles(sha256),
    config TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (team_id, position)
);

CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    connector TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX logs_by_team ON logs (team_id, id);

-- meta.storage's tables (connector_storage, connector_storage_usage) live in this
-- file too, but their schema has one owner: sandpipe-runtime's SqliteStorage,
-- which creates them when the service opens it. (Databases made before this
-- note already have connector_storage from here, with the same definition.)

-- Service settings, e.g. the hash of a generated admin token.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
