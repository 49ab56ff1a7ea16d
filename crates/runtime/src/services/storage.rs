//! `meta.storage`: a persistent key/value store per connector config, behind
//! the [`Storage`] trait. [`SqliteStorage`] keeps it in an embedded SQLite
//! file (WAL mode). Each scope (connector config) is held to the operator's
//! [`Quota`] of keys and bytes, checked in the transaction that writes.

use super::{RequestError, string};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;

/// Largest value one key may hold (JSON bytes).
pub const MAX_VALUE: usize = 1 << 20;

/// What one scope (a connector config) may hold: keys, and bytes of keys and
/// JSON values together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub keys: usize,
    pub bytes: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota::from(&crate::Limits::default())
    }
}

impl From<&crate::Limits> for Quota {
    fn from(limits: &crate::Limits) -> Self {
        Quota {
            keys: limits.storage_max_keys,
            bytes: limits.storage_max_bytes,
        }
    }
}

/// Why a storage request or operation failed. The messages of the first
/// five are the connector's to see; the others are the host's.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("unknown storage operation \"{0}\"")]
    UnknownOperation(String),
    #[error("storage values are limited to {} MiB", MAX_VALUE >> 20)]
    ValueTooLarge,
    #[error("storage quota exceeded: at most {0} keys per connector")]
    TooManyKeys(usize),
    #[error("storage quota exceeded: at most {0} bytes of keys and values per connector")]
    TooManyBytes(usize),
    #[error("storage: corrupt value for \"{key}\": {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    /// The database could not be opened (or its directory created).
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database of a [`LazySqliteStorage`] could not be opened (each use says so).
    #[error(transparent)]
    Unavailable(Arc<StorageError>),
    #[error("storage: syncing {}: {source}", wal.display())]
    Sync {
        wal: PathBuf,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A storage server (the service's PostgreSQL) answered with an error.
    #[error("storage: {0}")]
    Server(String),
    /// The storage server cannot be reached; the operation may succeed once it returns.
    #[error("meta.storage is unavailable: {0}")]
    ServerUnavailable(String),
}

/// A persistent JSON key/value store, partitioned by scope.
pub trait Storage: Send + Sync {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, StorageError>;
    /// Stores `value` unless the scope would then hold more than `quota`
    /// allows (the error says which bound).
    fn set(&self, scope: &str, key: &str, value: &Value, quota: Quota) -> Result<(), StorageError>;
    fn del(&self, scope: &str, key: &str) -> Result<(), StorageError>;
    /// Deletes every key of `scope` (a connector removed from its chain, or reset).
    fn clear(&self, scope: &str) -> Result<(), StorageError>;
    /// Makes every write made before it durable. A no-op where each commit
    /// already is ([`Durability::Full`]) or need not be ([`Durability::Normal`]).
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Quota {
    /// Whether a scope holding `keys` keys and `bytes` bytes fits: the error says which bound it passes.
    pub fn check(self, keys: u64, bytes: u64) -> Result<(), StorageError> {
        if keys > self.keys as u64 {
            return Err(StorageError::TooManyKeys(self.keys));
        }
        if bytes > self.bytes as u64 {
            return Err(StorageError::TooManyBytes(self.bytes));
        }
        Ok(())
    }
}

/// How SQLite commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit survives a process crash; the last
    /// ones may be lost to power loss (`sandpipe run`).
    Normal,
    /// `synchronous = FULL`: the WAL is synced at every commit, so a commit
    /// survives power loss.
    Full,
    /// Group commit (the service): commits at `NORMAL`, and
    /// [`Storage::sync`] syncs the WAL once for every write before it, shared
    /// by the requests that call it at the same time. Every write a request
    /// made survives power loss once its `sync` returns, and the connection
    /// all teams share is never held for a disk sync.
    Group,
}

/// The writes a [`Durability::Group`] storage has committed and synced.
struct GroupCommit {
    /// The database's write-ahead log, which holds every commit not yet checkpointed.
    wal: PathBuf,
    /// Commits so far.
    written: AtomicU64,
    /// Commits made durable so far; held while syncing, so callers queue
    /// behind one sync instead of each running their own.
    synced: Mutex<u64>,
}

/// Answers one storage request for `scope`, holding it to `quota`.
pub fn handle(
    storage: &dyn Storage,
    scope: &str,
    quota: Quota,
    request: &Value,
) -> Result<Value, StorageError> {
    let key = string(request, "key")?;
    match string(request, "op")? {
        "get" => Ok(storage
            .get(scope, key)?
            .map_or(Value::Null, |value| json!({ "value": value }))),
        "set" => {
            let value = request.get("value").cloned().unwrap_or(Value::Null);
            if serde_json::to_string(&value).map_or(0, |s| s.len()) > MAX_VALUE {
                return Err(StorageError::ValueTooLarge);
            }
            storage.set(scope, key, &value, quota)?;
            Ok(Value::Null)
        }
        "del" => {
            storage.del(scope, key)?;
            Ok(Value::Null)
        }
        other => Err(StorageError::UnknownOperation(other.to_string())),
    }
}

/// Storage in an embedded SQLite database.
pub struct SqliteStorage {
    connection: Mutex<Connection>,
    group: Option<GroupCommit>,
}

/// The usage table: one row per scope, kept in step with `connector_storage`
/// in every write's transaction; filled from the values when it is created.
const USAGE: &str = "
    CREATE TABLE IF NOT EXISTS connector_storage_usage (
        scope TEXT PRIMARY KEY,
        keys INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );";

/// Bytes a row holds (SQLite's `length` of TEXT counts characters).
const ROW_BYTES: &str = "length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))";

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`, `synchronous = NORMAL`.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::open_with(path, Durability::Normal)
    }

    /// Opens (creating if needed) the database at `path`, committing as `durability` says.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStorage, StorageError> {
        let fail = |e: rusqlite::Error| StorageError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Open {
                path: dir.to_path_buf(),
                source: Box::new(e),
            })?;
        }
        let mut connection = Connection::open(path).map_err(fail)?;
        let synchronous = match durability {
            Durability::Normal | Durability::Group => "NORMAL",
            Durability::Full => "FULL",
        };
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = {synchronous};
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS connector_storage (
                     scope TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value TEXT NOT NULL,
                     PRIMARY KEY (scope, key)
                 );"
            ))
            .map_err(fail)?;
        let tx = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let has_usage = tx
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'connector_storage_usage'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map_err(fail)?
            .is_some();
        if !has_usage {
            tx.execute_batch(&format!(
                "{USAGE}
                 INSERT INTO connector_storage_usage (scope, keys, bytes)
                 SELECT scope, count(*), sum({ROW_BYTES}) FROM connector_storage GROUP BY scope;"
            ))
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        let group = (durability == Durability::Group).then(|| GroupCommit {
            wal: PathBuf::from(format!("{}-wal", path.display())),
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
        });
        Ok(SqliteStorage {
            connection: Mutex::new(connection),
            group,
        })
    }

    /// Counts a commit for [`Durability::Group`].
    fn committed(&self) {
        if let Some(group) = &self.group {
            group.written.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// [`Durability::Group`]'s sync: one `fsync` of the WAL for every commit
    /// made before it, unless another caller's sync already covered them.
    /// Whether this call synced.
    pub fn sync_writes(&self) -> Result<bool, StorageError> {
        let Some(group) = &self.group else {
            return Ok(false);
        };
        let wanted = group.written.load(Ordering::Acquire);
        let mut synced = group.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= wanted {
            return Ok(false);
        }
        // Every commit counted by now has its frames in the WAL (a commit is
        // counted after it returns); syncing the file makes them all durable.
        let covered = group.written.load(Ordering::Acquire);
        std::fs::File::open(&group.wal)
            .and_then(|wal| wal.sync_all())
            .map_err(|source| StorageError::Sync {
                wal: group.wal.clone(),
                source,
            })?;
        *synced = covered;
        Ok(true)
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StorageError> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut connection)?)
    }

    /// `PRAGMA synchronous` on the connection that commits writes (2 is FULL).
    pub fn synchronous(&self) -> Result<i64, StorageError> {
        self.with(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
    }

    /// Keys and bytes `scope` holds.
    pub fn usage(&self, scope: &str) -> Result<(i64, i64), StorageError> {
        self.with(|c| {
            c.query_row(
                "SELECT keys, bytes FROM connector_storage_usage WHERE scope = ?1",
                [scope],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map(Option::unwrap_or_default)
    }
}

/// Adds `keys` and `bytes` (either may be negative) to `scope`'s usage.
fn add_usage(
    tx: &rusqlite::Transaction<'_>,
    scope: &str,
    keys: i64,
    bytes: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO connector_storage_usage (scope, keys, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope) DO UPDATE SET keys = keys + excluded.keys, bytes = bytes + excluded.bytes",
        params![scope, keys, bytes],
    )?;
    Ok(())
}

/// Bytes the row `(scope, key)` holds now, if there is one.
fn row_bytes(
    tx: &rusqlite::Transaction<'_>,
    scope: &str,
    key: &str,
) -> rusqlite::Result<Option<i64>> {
    tx.query_row(
        &format!("SELECT {ROW_BYTES} FROM connector_storage WHERE scope = ?1 AND key = ?2"),
        params![scope, key],
        |r| r.get(0),
    )
    .optional()
}

impl Storage for SqliteStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, StorageError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT value FROM connector_storage WHERE scope = ?1 AND key = ?2",
                params![scope, key],
                |row| row.get(0),
            )
            .optional()
        })?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|source| StorageError::Corrupt {
                key: key.to_string(),
                source,
            })
        })
        .transpose()
    }

    fn set(&self, scope: &str, key: &str, value: &Value, quota: Quota) -> Result<(), StorageError> {
        let text = serde_json::to_string(value).expect("a JSON value serialises");
        let bytes = (key.len() + text.len()) as i64;
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let old = row_bytes(&tx, scope, key)?;
            let (keys_now, bytes_now): (i64, i64) = tx
                .query_row(
                    "SELECT keys, bytes FROM connector_storage_usage WHERE scope = ?1",
                    [scope],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .unwrap_or_default();
            let added_keys = i64::from(old.is_none());
            let added_bytes = bytes - old.unwrap_or(0);
            if let Err(refusal) = quota.check(
                (keys_now + added_keys).max(0) as u64,
                (bytes_now + added_bytes).max(0) as u64,
            ) {
                return Ok(Err(refusal));
            }
            tx.execute(
                "INSERT INTO connector_storage (scope, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                params![scope, key, text],
            )?;
            add_usage(&tx, scope, added_keys, added_bytes)?;
            tx.commit()?;
            Ok(Ok(()))
        })??;
        self.committed();
        Ok(())
    }

    fn del(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(old) = row_bytes(&tx, scope, key)? {
                tx.execute(
                    "DELETE FROM connector_storage WHERE scope = ?1 AND key = ?2",
                    params![scope, key],
                )?;
                add_usage(&tx, scope, -1, -old)?;
            }
            tx.commit()
        })?;
        self.committed();
        Ok(())
    }

    fn clear(&self, scope: &str) -> Result<(), StorageError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM connector_storage WHERE scope = ?1", [scope])?;
            tx.execute(
                "DELETE FROM connector_storage_usage WHERE scope = ?1",
                [scope],
            )?;
            tx.commit()
        })?;
        self.committed();
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.sync_writes().map(drop)
    }
}

/// A [`SqliteStorage`] opened on first use, so a run whose connectors never
/// touch `meta.storage` creates no file.
pub struct LazySqliteStorage {
    path: PathBuf,
    opened: OnceLock<Result<SqliteStorage, Arc<StorageError>>>,
}

impl LazySqliteStorage {
    pub fn new(path: impl Into<PathBuf>) -> LazySqliteStorage {
        LazySqliteStorage {
            path: path.into(),
            opened: OnceLock::new(),
        }
    }

    fn storage(&self) -> Result<&SqliteStorage, StorageError> {
        self.opened
            .get_or_init(|| SqliteStorage::open(&self.path).map_err(Arc::new))
            .as_ref()
            .map_err(|error| StorageError::Unavailable(error.clone()))
    }
}

impl Storage for LazySqliteStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, StorageError> {
        self.storage()?.get(scope, key)
    }
    fn set(&self, scope: &str, key: &str, value: &Value, quota: Quota) -> Result<(), StorageError> {
        self.storage()?.set(scope, key, value, quota)
    }
    fn del(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        self.storage()?.del(scope, key)
    }
    fn clear(&self, scope: &str) -> Result<(), StorageError> {
        self.storage()?.clear(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_across_reopen_and_scopes_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.db");
        {
            let s = SqliteStorage::open(&path).unwrap();
            let q = Quota::default();
            s.set("a", "k", &json!({"n": 1}), q).unwrap();
            s.set("b", "k", &json!("other"), q).unwrap();
            s.set("a", "gone", &json!(true), q).unwrap();
            s.del("a", "gone").unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.get("a", "k").unwrap(), Some(json!({"n": 1})));
        assert_eq!(s.get("b", "k").unwrap(), Some(json!("other")));
        assert_eq!(s.get("a", "gone").unwrap(), None);
        // Clearing a scope empties it and its usage, and only it.
        s.set("c", "k", &json!(1), Quota::default()).unwrap();
        s.clear("c").unwrap();
        assert_eq!(s.get("c", "k").unwrap(), None);
        assert_eq!(s.usage("c").unwrap(), (0, 0));
        assert_eq!(s.get("b", "k").unwrap(), Some(json!("other")));
        assert_eq!(
            handle(&s, "a", Quota::default(), &json!({"op": "get", "key": "k"})).unwrap(),
            json!({"value": {"n": 1}})
        );
        assert_eq!(
            handle(
                &s,
                "a",
                Quota::default(),
                &json!({"op": "drop", "key": "k"})
            )
            .unwrap_err()
            .to_string(),
            "unknown storage operation \"drop\""
        );
    }

    #[test]
    fn each_scope_is_held_to_its_quota_of_keys_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.db");
        let s = SqliteStorage::open(&path).unwrap();
        let quota = Quota { keys: 2, bytes: 20 };
        s.set("a", "k1", &json!(1), quota).unwrap();
        s.set("a", "k2", &json!(2), quota).unwrap();
        // Overwriting a key adds no key.
        s.set("a", "k2", &json!(22), quota).unwrap();
        assert_eq!(
            s.set("a", "k3", &json!(3), quota).unwrap_err().to_string(),
            "storage quota exceeded: at most 2 keys per connector"
        );
        // Another scope has its own quota.
        s.set("b", "k3", &json!(3), quota).unwrap();
        assert_eq!(
            s.set("a", "k2", &json!("a longer value"), quota)
                .unwrap_err()
                .to_string(),
            "storage quota exceeded: at most 20 bytes of keys and values per connector"
        );
        assert_eq!(s.usage("a").unwrap(), (2, 7));
        s.del("a", "k1").unwrap();
        s.del("a", "never-set").unwrap();
        assert_eq!(s.usage("a").unwrap(), (1, 4));
        s.set("a", "k3", &json!(3), quota).unwrap();
        assert_eq!(s.get("a", "k2").unwrap(), Some(json!(22)));
        drop(s);
        // Usage survives a reopen, and is computed for a database written before it was kept.
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.usage("a").unwrap(), (2, 7));
        s.with(|c| c.execute_batch("DROP TABLE connector_storage_usage"))
            .unwrap();
        drop(s);
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.usage("a").unwrap(), (2, 7));
        assert_eq!(s.usage("b").unwrap(), (1, 3));
    }

    #[test]
    fn durability_sets_the_synchronous_pragma() {
        let dir = tempfile::tempdir().unwrap();
        let normal = SqliteStorage::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(normal.synchronous().unwrap(), 1);
        let full = SqliteStorage::open_with(&dir.path().join("b.db"), Durability::Full).unwrap();
        assert_eq!(full.synchronous().unwrap(), 2);
        let group = SqliteStorage::open_with(&dir.path().join("c.db"), Durability::Group).unwrap();
        assert_eq!(group.synchronous().unwrap(), 1);
    }

    #[test]
    fn group_commit_syncs_once_for_the_writes_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SqliteStorage::open_with(&dir.path().join("g.db"), Durability::Group).unwrap();
        assert!(!storage.sync_writes().unwrap(), "nothing written yet");
        storage.set("s", "a", &json!(1), Quota::default()).unwrap();
        storage.set("s", "b", &json!(2), Quota::default()).unwrap();
        assert!(storage.sync_writes().unwrap(), "two writes, one sync");
        assert!(!storage.sync_writes().unwrap(), "already durable");
        storage.del("s", "a").unwrap();
        assert!(storage.sync_writes().unwrap());
        // Without group commit there is nothing to sync.
        let normal = SqliteStorage::open(&dir.path().join("n.db")).unwrap();
        normal.set("s", "a", &json!(1), Quota::default()).unwrap();
        assert!(!normal.sync_writes().unwrap());
    }
}
