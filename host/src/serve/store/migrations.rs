//! The store's schema: the SQL files of `host/migrations/`, in order.
//! `PRAGMA user_version` records how many have run; each runs in its own
//! transaction with the version bump, so a crash leaves either version.

use super::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// Migrations in order.
const MIGRATIONS: [&str; 4] = [
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_webhooks.sql"),
    include_str!("../../../migrations/0003_quarantine.sql"),
    include_str!("../../../migrations/0004_retention.sql"),
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
                "{}: database schema version 5 is newer than this sandpipe (4)",
                path.display()
            )
        );
    }
}
