-- Version 6: each chain connector's stable identity (its id: by default the
-- plugin's name, `NAME#2`, `NAME#3`, … for later entries of the same plugin),
-- which meta.storage is scoped to instead of the bundle's sha256 and position.
ALTER TABLE chain_connectors ADD COLUMN connector_id TEXT;
UPDATE chain_connectors SET connector_id = numbered.id
FROM (
    SELECT c.team_id AS team, c.position AS position,
           CASE WHEN ROW_NUMBER() OVER (PARTITION BY c.team_id, b.name ORDER BY c.position) = 1
                THEN b.name
                ELSE b.name || '#' || ROW_NUMBER() OVER (PARTITION BY c.team_id, b.name ORDER BY c.position)
           END AS id
    FROM chain_connectors c JOIN bundles b ON b.sha256 = c.bundle
) AS numbered
WHERE numbered.team = chain_connectors.team_id AND numbered.position = chain_connectors.position;
CREATE UNIQUE INDEX chain_connector_ids ON chain_connectors (team_id, connector_id);

-- meta.storage written under the old scopes (`team:T#POSITION:SHA256`) moves to
-- the connector's id (`team:T/ID`), and the usage rows are counted again from
-- the values.
UPDATE connector_storage SET scope = 'team:' || c.team_id || '/' || c.connector_id
FROM chain_connectors c
WHERE connector_storage.scope = 'team:' || c.team_id || '#' || c.position || ':' || c.bundle;
DELETE FROM connector_storage_usage;
INSERT INTO connector_storage_usage (scope, keys, bytes)
SELECT scope, COUNT(*), SUM(octet_length(key) + octet_length(value))
FROM connector_storage GROUP BY scope;

-- Log lines carry the connector's id, so `logs?connector=` finds them by id.
ALTER TABLE logs ADD COLUMN connector_id TEXT;
