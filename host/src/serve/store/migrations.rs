//! The store's schema: one list of versioned migrations for both back ends,
//! each with its SQLite text (`host/migrations/`) and its PostgreSQL text
//! (`host/migrations/postgres/`), in order. SQLite's `PRAGMA user_version`
//! records how many have run, and each runs in its own transaction with the
//! version bump, so a crash leaves either version; PostgreSQL's
//! `sandpipe_schema` row does, and `PgStore` runs the missing ones in one
//! transaction under an advisory lock, so processes starting together migrate once.

use super::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// One version of the schema, as each back end spells it.
pub struct Migration {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// `Migration` from the two files named `$name.sql`.
macro_rules! migration {
    ($name:literal) => {
        Migration {
            sqlite: include_str!(concat!("../../../migrations/", $name, ".sql")),
            postgres: include_str!(concat!("../../../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Migrations in order: version N is `MIGRATIONS[N - 1]`.
pub const MIGRATIONS: [Migration; 10] = [
    migration!("0001_init"),
    migration!("0002_webhooks"),
    migration!("0003_quarantine"),
    migration!("0004_retention"),
    migration!("0005_chain_versions"),
    migration!("0006_identity"),
    migration!("0007_on_event"),
    migration!("0008_scheduled_tasks"),
    migration!("0009_captured_on_event"),
    migration!("0010_export_batches"),
];

/// Runs the migrations `connection` (the database at `path`) has not had;
/// refuses a database a newer sandpipe wrote.
pub fn migrate(connection: &Connection, path: &Path) -> Result<()> {
    let found: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(found).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema {
            location: path.display().to_string(),
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        connection.execute_batch(&format!(
            "BEGIN; {}; PRAGMA user_version = {}; COMMIT;",
            migration.sqlite,
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
                "{}: database schema version {} is newer than this sandpipe ({})",
                path.display(),
                MIGRATIONS.len() + 1,
                MIGRATIONS.len()
            )
        );
    }

    /// A database at `path` with the first `version` migrations run.
    fn at_version(path: &Path, version: usize) -> Connection {
        let connection = Connection::open(path).unwrap();
        for (index, migration) in MIGRATIONS[..version].iter().enumerate() {
            connection
                .execute_batch(&format!(
                    "{}; PRAGMA user_version = {}",
                    migration.sqlite,
                    index + 1
                ))
                .unwrap();
        }
        connection
    }

    /// A version-9 database's queued onEvent rows are marked as standing for
    /// `exportEvents([event])` too, as they did then; its requests are not.
    #[test]
    fn version_10_marks_the_on_event_rows_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let connection = at_version(&path, 9);
        connection
            .execute_batch(
                "INSERT INTO teams (id, name, token_hash) VALUES (1, 't', 'h');
                 INSERT INTO webhooks (team_id, connector, url, method, headers, body, kind, connector_id, status)
                     VALUES (1, 'x (0)', '', '', '{}', '{}', 'on_event', 'x', 'pending'),
                            (1, 'x (0)', '', '', '{}', '{}', 'on_event', 'x', 'dead'),
                            (1, 'x (0)', 'http://a/', 'POST', '{}', NULL, 'request', NULL, 'pending');",
            )
            .unwrap();
        migrate(&connection, &path).unwrap();
        let marks: Vec<(String, i64, i64, i64)> = connection
            .prepare("SELECT kind, batch_bytes, buffered, batch_id FROM webhooks ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            marks,
            [
                ("on_event".to_string(), -1, 0, 0),
                ("on_event".to_string(), -1, 0, 0),
                ("request".to_string(), 0, 0, 0),
            ]
        );
    }

    /// A version-5 database: chain connectors get ids (the plugin's name,
    /// numbered for repeats) and their meta.storage moves from the old
    /// bundle-and-position scope to the id's.
    #[test]
    fn version_6_gives_ids_and_moves_storage_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let connection = at_version(&path, 5);
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
