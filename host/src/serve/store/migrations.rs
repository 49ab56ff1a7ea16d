//! The store's schema: the SQL files of `host/migrations/`, in order.
//! `PRAGMA user_version` records how many have run; each runs in its own
//! transaction with the version bump, so a crash leaves either version.

use super::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// Migrations in order.
const MIGRATIONS: [&str; 5] = [
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_webhooks.sql"),
    include_str!("../../../migrations/0003_quarantine.sql"),
    include_str!("../../../migrations/0004_retention.sql"),
    include_str!("../../../migrations/0005_identity.sql"),
];

/// Runs the migrations `connection` (the database at `path`) has not had;
/// refuses a database a newer sandpipe wrote.
pub fn migrate(connection: &Connection, path: &Path) -> Result<()> {
    let found: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(found).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        connection.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            index + 1
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let connection = Connection::open(&path).unwrap();
        migrate(&connection, &path).unwrap();
        migrate(&connection, &path).unwrap();
        connection
            .execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1))
            .unwrap();
        assert_eq!(
            migrate(&connection, &path).unwrap_err().to_string(),
            format!(
                "{}: database schema version 6 is newer than this sandpipe (5)",
                path.display()
            )
        );
    }

    /// A version-4 database: chain connectors get ids (the plugin's name,
    /// numbered for repeats) and their meta.storage moves from the old
    /// bundle-and-position scope to the id's.
    #[test]
    fn version_5_gives_ids_and_moves_storage_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let connection = Connection::open(&path).unwrap();
        for (index, sql) in MIGRATIONS[..4].iter().enumerate() {
            connection
                .execute_batch(&format!("{sql}; PRAGMA user_version = {}", index + 1))
                .unwrap();
        }
        connection
            .execute_batch(
                "INSERT INTO teams (id, name, token_hash) VALUES (1, 't', 'h');
                 INSERT INTO bundles (sha256, bytes, name) VALUES ('aa', x'00', 'A'), ('bb', x'00', 'B');
                 INSERT INTO chain_connectors (team_id, position, bundle, config, enabled)
                     VALUES (1, 0, 'aa', '{}', 1), (1, 1, 'bb', '{}', 1), (1, 2, 'aa', '{}', 1);
                 CREATE TABLE connector_storage (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (scope, key));
                 CREATE TABLE connector_storage_usage (scope TEXT PRIMARY KEY, keys INTEGER NOT NULL, bytes INTEGER NOT NULL);
                 INSERT INTO connector_storage VALUES ('team:1#2:aa', 'k', '1'), ('team:1#0:zz', 'k', '2');",
            )
            .unwrap();
        migrate(&connection, &path).unwrap();
        let ids: Vec<String> = connection
            .prepare("SELECT connector_id FROM chain_connectors ORDER BY position")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, ["A", "B", "A#2"]);
        let scopes: Vec<String> = connection
            .prepare("SELECT scope FROM connector_storage ORDER BY scope")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // A scope of no current connector stays where it was.
        assert_eq!(scopes, ["team:1#0:zz", "team:1/A#2"]);
        let usage: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'connector_storage_usage'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(usage, 0, "the usage table is rebuilt by SqliteStorage");
    }
}
