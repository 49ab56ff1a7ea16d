//! The service's store, behind the [`Store`] trait, on one of two back ends
//! with one list of versioned migrations ([`migrations`]): [`SqliteStore`],
//! an embedded SQLite database (WAL mode, one connection behind a mutex, the
//! zero-set-up default for one process), and [`PgStore`] ([`postgres`]), a
//! PostgreSQL server several processes share. Calls are short and run on
//! blocking threads. Commits are durable when they return (SQLite's
//! `synchronous = FULL`): the webhooks of an acknowledged event survive power
//! loss, not only a crash.
//!
//! What it keeps is split by owner, one trait (and its implementation on each
//! back end) each: [`TeamStore`] (settings, teams and their token hashes),
//! [`ChainStore`] (content-addressed bundles, each team's chain and its
//! versions), [`LogStore`] (connector log lines), [`WebhookStore`]
//! (composed requests and their delivery) and [`TaskStore`] (scheduled task
//! runs claimed).

mod chains;
mod logs;
mod migrations;
pub mod postgres;
mod tasks;
mod teams;
mod webhooks;

pub use chains::{BundleRow, ChainRow, ChainStore, ChainVersions};
pub use logs::{LOG_RETENTION, LogFilter, LogLine, LogRow, LogStore, Since};
pub use postgres::{PgStorage, PgStore, PgUrl};
pub use tasks::{TaskClaim, TaskStore};
pub use teams::{TeamRow, TeamStore};
pub use webhooks::{
    Buffering, ON_EVENT, OnEventJob, Redelivery, WebhookFilter, WebhookPage, WebhookRow,
    WebhookStore,
};

use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Everything the service keeps: [`SqliteStore`] or [`PgStore`].
pub trait Store: TeamStore + ChainStore + LogStore + WebhookStore + TaskStore {}

impl<T: TeamStore + ChainStore + LogStore + WebhookStore + TaskStore> Store for T {}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{location}: database schema version {found} is newer than this sandpipe ({known})")]
    NewerSchema {
        location: String,
        found: i64,
        known: usize,
    },
    #[error("a team named {0:?} already exists")]
    TeamNameTaken(String),
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server could not be used at start (a bad URL, no answer, refused).
    #[error("--db {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The PostgreSQL server answered a query with an error.
    #[error("store: {0}")]
    Postgres(String),
    /// The database server cannot be reached now (lost or restarting):
    /// requests answer 503 with this reason until it returns.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the database is unreachable (rather than refusing a query):
    /// answered with 503, and retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )?;
        // `meta.storage` writes to the same file on a connection of its own.
        // A transaction that began by reading and then writes would fail at
        // once ("database is locked") had that connection committed in
        // between, since its snapshot is no longer the newest; one that takes
        // the write lock when it begins waits for the other instead.
        connection.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations::migrate(&connection, path)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut connection)?)
    }

    /// The first column of the one row `sql` selects, if there is a row.
    fn value<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>> {
        self.with(|c| c.query_row(sql, params, |r| r.get(0)).optional())
    }

    /// Runs one statement that returns no rows.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.with(|c| c.execute(sql, params)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction of the store takes the write lock as it begins: a
    /// writer on another connection of the same file (`meta.storage`'s)
    /// cannot commit between its first read and its first write, which would
    /// make that write fail with SQLITE_BUSY rather than wait.
    #[test]
    fn transactions_take_the_write_lock_as_they_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("PRAGMA busy_timeout = 0; CREATE TABLE other (x INTEGER)")
            .unwrap();
        let other_wrote = store
            .with(|c| {
                let tx = c.transaction()?;
                let _: i64 = tx.query_row("SELECT count(*) FROM webhooks", [], |r| r.get(0))?;
                let other_wrote = other.execute("INSERT INTO other VALUES (1)", []);
                tx.execute("DELETE FROM webhooks WHERE id = -1", [])?;
                tx.commit()?;
                Ok(other_wrote)
            })
            .unwrap();
        assert!(
            matches!(
                other_wrote,
                Err(rusqlite::Error::SqliteFailure(ref e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy
            ),
            "{other_wrote:?}"
        );
        // Once the store committed, the other writer goes on.
        other.execute("INSERT INTO other VALUES (1)", []).unwrap();
    }

    /// The connection that commits an events request's webhooks syncs at every
    /// commit: they survive power loss, not only a crash.
    #[test]
    fn commits_are_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(
            store.value::<i64>("PRAGMA synchronous", []).unwrap(),
            Some(2)
        );
    }
}
