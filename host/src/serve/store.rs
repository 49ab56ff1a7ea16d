//! The service's store, behind the [`Store`] trait: [`SqliteStore`] is an
//! embedded SQLite database (WAL mode) with versioned migrations
//! (`host/migrations/`). Teams, content-addressed bundles, team
//! chains, connector logs and settings. One connection behind a mutex; calls
//! are short and run on blocking threads. Commits are `synchronous = FULL`:
//! the webhooks of an acknowledged event survive power loss, not only a crash.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

/// Migrations in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: [&str; 4] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_webhooks.sql"),
    include_str!("../../migrations/0003_quarantine.sql"),
    include_str!("../../migrations/0004_retention.sql"),
];

/// Log lines kept per team (older ones are deleted).
pub const LOG_RETENTION: i64 = 10_000;

pub struct SqliteStore {
    connection: Mutex<Connection>,
}

/// One connector of a stored chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    pub bundle: String,
    pub config: serde_json::Map<String, Value>,
    pub enabled: bool,
    /// Quarantine state: `healthy`, `degraded` or `disabled`.
    pub status: String,
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogRow {
    pub id: i64,
    pub connector: String,
    pub level: String,
    pub message: String,
    pub time: String,
}

/// One stored webhook request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WebhookRow {
    pub id: i64,
    #[serde(skip)]
    pub team: i64,
    pub connector: String,
    pub url: String,
    pub method: String,
    #[serde(skip)]
    pub headers: serde_json::Map<String, Value>,
    #[serde(skip)]
    pub body: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

fn webhook_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookRow> {
    let headers: String = r.get(4)?;
    Ok(WebhookRow {
        id: r.get(0)?,
        connector: r.get(1)?,
        url: r.get(2)?,
        method: r.get(3)?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        body: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        team: r.get(10)?,
    })
}

const WEBHOOK_COLUMNS: &str =
    "id, connector, url, method, headers, body, status, attempts, last_error, created_at, team_id";

pub type Result<T> = std::result::Result<T, String>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn fail(e: rusqlite::Error) -> String {
    format!("store: {e}")
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let connection = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )
            .map_err(fail)?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(format!(
                "{}: database schema version {version} is newer than this sandpipe ({})",
                path.display(),
                MIGRATIONS.len()
            ));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            connection
                .execute_batch(&format!(
                    "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
                    index + 1
                ))
                .map_err(fail)?;
        }
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut connection).map_err(fail)
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

/// What the service keeps. [`SqliteStore`] is the embedded implementation; a
/// PostgreSQL store implements the same trait.
pub trait Store: Send + Sync {
    fn setting(&self, key: &str) -> Result<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64>;
    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>>;
    fn team_exists(&self, team: i64) -> Result<bool>;
    fn put_bundle(&self, sha256: &str, bytes: &[u8], name: &str) -> Result<()>;
    fn bundle(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<()>;
    fn chain(&self, team: i64) -> Result<Vec<ChainRow>>;
    /// Records a connector's quarantine state.
    fn set_connector_status(&self, team: i64, position: usize, status: &str) -> Result<()>;
    /// Teams that have a chain.
    fn teams_with_chains(&self) -> Result<Vec<i64>>;
    /// Appends log lines `(connector, level, message, time)` and trims to [`LOG_RETENTION`].
    fn append_logs(&self, team: i64, lines: &[(String, String, String, String)]) -> Result<()>;
    fn logs(
        &self,
        team: i64,
        connector: Option<&str>,
        level: Option<&str>,
        since: i64,
    ) -> Result<Vec<LogRow>>;
    /// Stores composed requests as pending, in one transaction.
    fn enqueue_webhooks(
        &self,
        team: i64,
        requests: &[sandpipe_runtime::WebhookRequest],
    ) -> Result<()>;
    /// Pending requests due at `now_ms`, leased until `lease_until_ms` so the
    /// next poll does not pick them again while they are in flight.
    fn lease_due_webhooks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>>;
    fn webhook_delivered(&self, id: i64, attempts: i64) -> Result<()>;
    /// Records a failed attempt: retry at `next_attempt_ms`, or `dead` when there is none.
    fn webhook_failed(
        &self,
        id: i64,
        attempts: i64,
        error: &str,
        next_attempt_ms: Option<i64>,
    ) -> Result<()>;
    fn webhooks(&self, team: i64, status: Option<&str>) -> Result<Vec<WebhookRow>>;
    /// Deletes delivered and dead rows that finished at or before `before_ms`;
    /// returns how many.
    fn prune_webhooks(&self, before_ms: i64) -> Result<usize>;
}

impl Store for SqliteStore {
    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.value("SELECT value FROM settings WHERE key = ?1", [key])
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
    }

    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO teams (name, token_hash) VALUES (?1, ?2)",
                params![name, token_hash],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>> {
        self.value("SELECT id FROM teams WHERE token_hash = ?1", [token_hash])
    }

    fn team_exists(&self, team: i64) -> Result<bool> {
        Ok(self
            .value::<i64>("SELECT 1 FROM teams WHERE id = ?1", [team])?
            .is_some())
    }

    fn put_bundle(&self, sha256: &str, bytes: &[u8], name: &str) -> Result<()> {
        self.execute(
            "INSERT INTO bundles (sha256, bytes, name) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
            params![sha256, bytes, name],
        )
    }

    fn bundle(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.value("SELECT bytes FROM bundles WHERE sha256 = ?1", [sha256])
    }

    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM chain_connectors WHERE team_id = ?1", [team])?;
            for (position, row) in rows.iter().enumerate() {
                tx.execute(
                    "INSERT INTO chain_connectors (team_id, position, bundle, config, enabled, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![team, position as i64, row.bundle, Value::Object(row.config.clone()).to_string(), row.enabled, row.status],
                )?;
            }
            tx.commit()
        })
    }

    fn chain(&self, team: i64) -> Result<Vec<ChainRow>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT bundle, config, enabled, status FROM chain_connectors WHERE team_id = ?1 ORDER BY position",
            )?;
            let rows = statement.query_map([team], |r| {
                let config: String = r.get(1)?;
                Ok(ChainRow {
                    bundle: r.get(0)?,
                    config: serde_json::from_str::<serde_json::Map<String, Value>>(&config).unwrap_or_default(),
                    enabled: r.get(2)?,
                    status: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Records a connector's quarantine state.
    fn set_connector_status(&self, team: i64, position: usize, status: &str) -> Result<()> {
        self.execute(
            "UPDATE chain_connectors SET status = ?3 WHERE team_id = ?1 AND position = ?2",
            params![team, position as i64, status],
        )
    }

    /// Teams that have a chain.
    fn teams_with_chains(&self) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT DISTINCT team_id FROM chain_connectors")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Appends log lines `(connector, level, message, time)` and trims to [`LOG_RETENTION`].
    fn append_logs(&self, team: i64, lines: &[(String, String, String, String)]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            for (connector, level, message, time) in lines {
                tx.execute(
                    "INSERT INTO logs (team_id, connector, level, message, time) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![team, connector, level, message, time],
                )?;
            }
            tx.execute(
                "DELETE FROM logs WHERE team_id = ?1 AND id <= (SELECT id FROM logs WHERE team_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![team, LOG_RETENTION],
            )?;
            tx.commit()
        })
    }

    /// Stores composed requests as pending, in one transaction.
    fn enqueue_webhooks(
        &self,
        team: i64,
        requests: &[sandpipe_runtime::WebhookRequest],
    ) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            for request in requests {
                tx.execute(
                    "INSERT INTO webhooks (team_id, connector, url, method, headers, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        team,
                        request.connector,
                        request.url,
                        request.method,
                        Value::Object(request.headers.clone()).to_string(),
                        request.body
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// Pending requests due at `now_ms`, leased until `lease_until_ms` so the
    /// next poll does not pick them again while they are in flight.
    fn lease_due_webhooks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let rows: Vec<WebhookRow> = {
                let mut statement = tx.prepare(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY id LIMIT ?2"
                ))?;
                statement.query_map(params![now_ms, limit], webhook_row)?.collect::<rusqlite::Result<_>>()?
            };
            for row in &rows {
                tx.execute("UPDATE webhooks SET next_attempt_ms = ?2 WHERE id = ?1", params![row.id, lease_until_ms])?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    fn webhook_delivered(&self, id: i64, attempts: i64) -> Result<()> {
        self.execute(
            "UPDATE webhooks SET status = 'delivered', attempts = ?2, last_error = NULL, finished_ms = ?3 WHERE id = ?1",
            params![id, attempts, now_ms()],
        )
    }

    /// Records a failed attempt: retry at `next_attempt_ms`, or `dead` when there is none.
    fn webhook_failed(
        &self,
        id: i64,
        attempts: i64,
        error: &str,
        next_attempt_ms: Option<i64>,
    ) -> Result<()> {
        match next_attempt_ms {
            Some(next) => self.execute(
                "UPDATE webhooks SET attempts = ?2, last_error = ?3, next_attempt_ms = ?4 WHERE id = ?1",
                params![id, attempts, error, next],
            ),
            None => self.execute(
                "UPDATE webhooks SET status = 'dead', attempts = ?2, last_error = ?3, finished_ms = ?4 WHERE id = ?1",
                params![id, attempts, error, now_ms()],
            ),
        }
    }

    fn webhooks(&self, team: i64, status: Option<&str>) -> Result<Vec<WebhookRow>> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE team_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id LIMIT 1000"
            ))?;
            statement.query_map(params![team, status], webhook_row)?.collect()
        })
    }

    fn prune_webhooks(&self, before_ms: i64) -> Result<usize> {
        // In batches, each its own statement, so a large backlog (the first
        // prune after an upgrade) never holds the connection for long.
        const BATCH: i64 = 5_000;
        let mut pruned = 0;
        loop {
            let deleted = self.with(|c| {
                c.execute(
                    "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks \
                     WHERE status != 'pending' AND finished_ms <= ?1 LIMIT ?2)",
                    [before_ms, BATCH],
                )
            })?;
            pruned += deleted;
            if deleted < BATCH as usize {
                return Ok(pruned);
            }
        }
    }

    fn logs(
        &self,
        team: i64,
        connector: Option<&str>,
        level: Option<&str>,
        since: i64,
    ) -> Result<Vec<LogRow>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, connector, level, message, time FROM logs
                 WHERE team_id = ?1 AND id > ?2 AND (?3 IS NULL OR connector = ?3) AND (?4 IS NULL OR level = ?4)
                 ORDER BY id LIMIT 1000",
            )?;
            let rows = statement.query_map(params![team, since, connector, level], |r| {
                Ok(LogRow { id: r.get(0)?, connector: r.get(1)?, level: r.get(2)?, message: r.get(3)?, time: r.get(4)? })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn finished_webhooks_are_pruned_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let request = |url: &str| sandpipe_runtime::WebhookRequest {
            connector: "c (0)".into(),
            url: url.into(),
            method: "POST".into(),
            headers: serde_json::Map::new(),
            body: None,
        };
        store
            .enqueue_webhooks(
                1,
                &[
                    request("http://a/"),
                    request("http://b/"),
                    request("http://c/"),
                ],
            )
            .unwrap();
        let rows = store.webhooks(1, None).unwrap();
        store.webhook_delivered(rows[0].id, 1).unwrap();
        store.webhook_failed(rows[1].id, 1, "down", None).unwrap();
        assert_eq!(store.prune_webhooks(now_ms() - 60_000).unwrap(), 0);
        assert_eq!(store.prune_webhooks(now_ms()).unwrap(), 2);
        let left: Vec<String> = store
            .webhooks(1, None)
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(left, ["pending"]);
    }
}
