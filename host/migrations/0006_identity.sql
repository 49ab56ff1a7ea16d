-- Version 6: each chain connector's stable identity (its id: by default the
-- plugin's name, `NAME#2`, `NAME#3`, … for later entries of the same plugin),
-- which meta.storage is scoped to instead of the bundle's sha256 and position.
ALTER TABLE chain_connectors ADD COLUMN connector_id TEXT;
UPDATE chain_connectors SET connector_id = (
    SELECT CASE WHEN n = 1 THEN name ELSE name || '#' || n END FROM (
        SELECT c.team_id AS team, c.position AS position, b.name AS name,
               ROW_NUMBER() OVER (PARTITION BY c.team_id, b.name ORDER BY c.position) AS n
        FROM chain_connectors c JOIN bundles b ON b.sha256 = c.bundle
    ) AS numbered
    WHERE numbered.team = chain_connectors.team_id AND numbered.position = chain_connectors.position
);
CREATE UNIQUE INDEX chain_connector_ids ON chain_connectors (team_id, connector_id);

-- meta.storage written under the old scopes (`team:T#POSITION:SHA256`) moves to
-- the connector's id (`team:T/ID`). The table's owner is sandpipe-runtime's
-- SqliteStorage (same definition); its usage table is dropped so that
-- SqliteStorage rebuilds it from the values when the service opens it.
CREATE TABLE IF NOT EXISTS connector_storage (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
UPDATE connector_storage SET scope = (
    SELECT 'team:' || c.team_id || '/' || c.connector_id FROM chain_connectors c
    WHERE 'team:' || c.team_id || '#' || c.position || ':' || c.bundle = connector_storage.scope
)
WHERE scope IN (
    SELECT 'team:' || team_id || '#' || position || ':' || bundle FROM chain_connectors
);
DROP TABLE IF EXISTS connector_storage_usage;

-- Log lines carry the connector's id, so `logs?connector=` finds them by id.
ALTER TABLE logs ADD COLUMN connector_id TEXT;
