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
pub const MIGRATIONS: [Migration; 5] = [
    migration!("0001_init"),
    migration!("0002_webhooks"),
    migration!("0003_quarantine"),
    migration!("0004_retention"),
    migration!("0005_chain_versions"),
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
                "{}: database schema version 6 is newer than this sandpipe (5)",
                path.display()
            )
        );
    }
}
