//! `meta.storage`: a persistent key/value store per connector config, behind
//! the [`Storage`] trait. [`SqliteStorage`] keeps it in an embedded SQLite
//! file (WAL mode); the HTTP service will provide its own implementation.

use super::string;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Mutex;

/// Largest value one key may hold (JSON bytes).
pub const MAX_VALUE: usize = 1 << 20;

/// A persistent JSON key/value store, partitioned by scope.
pub trait Storage: Send + Sync {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, String>;
    fn set(&self, scope: &str, key: &str, value: &Value) -> Result<(), String>;
    fn del(&self, scope: &str, key: &str) -> Result<(), String>;
}

/// Answers one storage request for `scope`.
pub fn handle(storage: &dyn Storage, scope: &str, request: &Value) -> Result<Value, String> {
    let key = string(request, "key")?;
    match string(request, "op")? {
        "get" => Ok(storage
            .get(scope, key)?
            .map_or(Value::Null, |value| json!({ "value": value }))),
        "set" => {
            let value = request.get("value").cloned().unwrap_or(Value::Null);
            if serde_json::to_string(&value).map_or(0, |s| s.len()) > MAX_VALUE {
                return Err(format!(
                    "storage values are limited to {} MiB",
                    MAX_VALUE >> 20
                ));
            }
            storage.set(scope, key, &value)?;
            Ok(Value::Null)
        }
        "del" => {
            storage.del(scope, key)?;
            Ok(Value::Null)
        }
        other => Err(format!("unknown storage operation \"{other}\"")),
    }
}

/// Storage in an embedded SQLite database.
pub struct SqliteStorage {
    connection: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStorage, String> {
        let fail = |e: rusqlite::Error| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let connection = Connection::open(path).map_err(fail)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS connector_storage (
                     scope TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value TEXT NOT NULL,
                     PRIMARY KEY (scope, key)
                 );",
            )
            .map_err(fail)?;
        Ok(SqliteStorage {
            connection: Mutex::new(connection),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, String> {
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        f(&connection).map_err(|e| format!("storage: {e}"))
    }
}

impl Storage for SqliteStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, String> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT value FROM connector_storage WHERE scope = ?1 AND key = ?2",
                params![scope, key],
                |row| row.get(0),
            )
            .optional()
        })?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| format!("storage: corrupt value for \"{key}\": {e}"))
        })
        .transpose()
    }

    fn set(&self, scope: &str, key: &str, value: &Value) -> Result<(), String> {
        let text = serde_json::to_string(value).expect("a JSON value serialises");
        self.with(|c| {
            c.execute(
                "INSERT INTO connector_storage (scope, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                params![scope, key, text],
            )
        })?;
        Ok(())
    }

    fn del(&self, scope: &str, key: &str) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "DELETE FROM connector_storage WHERE scope = ?1 AND key = ?2",
                params![scope, key],
            )
        })?;
        Ok(())
    }
}

/// A [`SqliteStorage`] opened on first use, so a run whose connectors never
/// touch `meta.storage` creates no file.
pub struct LazySqliteStorage {
    path: std::path::PathBuf,
    opened: std::sync::OnceLock<Result<SqliteStorage, String>>,
}

impl LazySqliteStorage {
    pub fn new(path: impl Into<std::path::PathBuf>) -> LazySqliteStorage {
        LazySqliteStorage {
            path: path.into(),
            opened: std::sync::OnceLock::new(),
        }
    }

    fn storage(&self) -> Result<&SqliteStorage, String> {
        self.opened
            .get_or_init(|| SqliteStorage::open(&self.path))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Storage for LazySqliteStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, String> {
        self.storage()?.get(scope, key)
    }
    fn set(&self, scope: &str, key: &str, value: &Value) -> Result<(), String> {
        self.storage()?.set(scope, key, value)
    }
    fn del(&self, scope: &str, key: &str) -> Result<(), String> {
        self.storage()?.del(scope, key)
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
            s.set("a", "k", &json!({"n": 1})).unwrap();
            s.set("b", "k", &json!("other")).unwrap();
            s.set("a", "gone", &json!(true)).unwrap();
            s.del("a", "gone").unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.get("a", "k").unwrap(), Some(json!({"n": 1})));
        assert_eq!(s.get("b", "k").unwrap(), Some(json!("other")));
        assert_eq!(s.get("a", "gone").unwrap(), None);
        assert_eq!(
            handle(&s, "a", &json!({"op": "get", "key": "k"})),
            Ok(json!({"value": {"n": 1}}))
        );
        assert_eq!(
            handle(&s, "a", &json!({"op": "drop", "key": "k"})),
            Err("unknown storage operation \"drop\"".into())
        );
    }
}
