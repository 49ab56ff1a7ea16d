//! Connector log lines per team: console lines, errors and quarantine
//! changes, trimmed to the last [`LOG_RETENTION`] per team.

use super::{Result, SqliteStore};
use rusqlite::params;
use sandpipe_abi::LogLevel;
use std::time::SystemTime;

/// Log lines kept per team (older ones are deleted).
pub const LOG_RETENTION: i64 = 10_000;

/// One line to store for a connector (its message already redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// The connector's id in the chain (none for the service's own lines).
    pub connector_id: Option<String>,
    pub level: LogLevel,
    pub message: String,
    pub time: SystemTime,
}

/// One stored log line, as `GET /v1/teams/{team}/logs` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogRow {
    pub id: i64,
    pub connector: String,
    pub level: String,
    pub message: String,
    /// RFC 3339, milliseconds.
    pub time: String,
}

/// Log lines.
pub trait LogStore: Send + Sync {
    /// Appends `lines` and trims the team's to [`LOG_RETENTION`].
    fn append_logs(&self, team: i64, lines: &[LogLine]) -> Result<()>;
    /// Up to 1,000 lines after id `since`, optionally of one connector (its
    /// label `"<name> (<position>)"`, its name or its id) and level.
    fn logs(
        &self,
        team: i64,
        connector: Option<&str>,
        level: Option<&str>,
        since: i64,
    ) -> Result<Vec<LogRow>>;
}

impl LogStore for SqliteStore {
    fn append_logs(&self, team: i64, lines: &[LogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            for line in lines {
                let time = humantime::format_rfc3339_millis(line.time).to_string();
                tx.execute(
                    "INSERT INTO logs (team_id, connector, connector_id, level, message, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![team, line.connector, line.connector_id, line.level.as_str(), line.message, time],
                )?;
            }
            tx.execute(
                "DELETE FROM logs WHERE team_id = ?1 AND id <= (SELECT id FROM logs WHERE team_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![team, LOG_RETENTION],
            )?;
            tx.commit()
        })
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
                 WHERE team_id = ?1 AND id > ?2 AND (?4 IS NULL OR level = ?4)
                   AND (?3 IS NULL OR connector = ?3 OR connector_id = ?3
                        OR substr(connector, 1, length(?3) + 2) = ?3 || ' (')
                 ORDER BY id LIMIT 1000",
            )?;
            let rows = statement.query_map(params![team, since, connector, level], |r| {
                Ok(LogRow {
                    id: r.get(0)?,
                    connector: r.get(1)?,
                    level: r.get(2)?,
                    message: r.get(3)?,
                    time: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn lines_are_stored_with_their_level_and_time_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let line = |connector: &str, level, message: &str| LogLine {
            connector: connector.into(),
            connector_id: Some(format!("{connector}-id")),
            level,
            message: message.into(),
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        store
            .append_logs(
                1,
                &[
                    line("a (0)", LogLevel::Warn, "careful"),
                    line("b (1)", LogLevel::Log, "hello"),
                ],
            )
            .unwrap();
        let warnings = store.logs(1, None, Some("warn"), 0).unwrap();
        assert_eq!(
            warnings,
            [LogRow {
                id: 1,
                connector: "a (0)".into(),
                level: "warn".into(),
                message: "careful".into(),
                time: "2023-11-14T22:13:20.123Z".into(),
            }]
        );
        assert_eq!(store.logs(1, Some("b (1)"), None, 0).unwrap().len(), 1);
        // A connector is found by its label, its name or its id.
        assert_eq!(store.logs(1, Some("b"), None, 0).unwrap().len(), 1);
        assert_eq!(store.logs(1, Some("b (1)-id"), None, 0).unwrap().len(), 1);
        assert!(store.logs(1, Some("b (2)"), None, 0).unwrap().is_empty());
        assert_eq!(store.logs(1, None, None, 1).unwrap()[0].message, "hello");
        assert!(store.logs(2, None, None, 0).unwrap().is_empty());
    }
}
