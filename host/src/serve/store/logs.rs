//! Connector log lines per team: console lines, errors and quarantine
//! changes, trimmed to the last [`LOG_RETENTION`] per team.

use super::{Result, SqliteStore};
use rusqlite::params;
use sandpipe_abi::LogLevel;
use std::time::SystemTime;

/// SQL true when the row's `connector` label or `connector_id` is the
/// connector `?3` names: its label (`Name (0)`), its id, or its name (a label
/// of that name and a position, so `c` is not `c (beta) (0)`'s name).
pub(crate) const CONNECTOR_IS: &str = "(?3 IS NULL OR connector = ?3 OR connector_id = ?3
    OR (substr(connector, 1, length(?3) + 2) = ?3 || ' ('
        AND substr(connector, length(?3) + 3) GLOB '[0-9]*)'
        AND substr(connector, length(?3) + 3) NOT GLOB '*[^0-9)]*'))";

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

/// Which of a team's log lines to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// A connector's label `"<name> (<position>)"`, its name or its id.
    pub connector: Option<String>,
    /// `debug`, `info`, `log`, `warn` or `error`.
    pub level: Option<LogLevel>,
    /// Only lines after this one.
    pub since: Since,
}

/// Where reading starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Since {
    /// After the line with this id (0: from the oldest kept).
    Id(i64),
    /// Lines logged at or after this time.
    Time(SystemTime),
}

impl Default for Since {
    fn default() -> Self {
        Since::Id(0)
    }
}

/// Log lines.
pub trait LogStore: Send + Sync {
    /// Appends `lines` and trims the team's to [`LOG_RETENTION`].
    fn append_logs(&self, team: i64, lines: &[LogLine]) -> Result<()>;
    /// Up to 1,000 of the team's lines `filter` selects, oldest first.
    fn logs(&self, team: i64, filter: &LogFilter) -> Result<Vec<LogRow>>;
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

    fn logs(&self, team: i64, filter: &LogFilter) -> Result<Vec<LogRow>> {
        let (after, from) = match &filter.since {
            Since::Id(id) => (*id, None),
            // Times are stored as RFC 3339 with milliseconds, which sort as text.
            Since::Time(time) => (0, Some(humantime::format_rfc3339_millis(*time).to_string())),
        };
        let level = filter.level.map(LogLevel::as_str);
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT id, connector, level, message, time FROM logs
                 WHERE team_id = ?1 AND id > ?2 AND (?4 IS NULL OR level = ?4)
                   AND {CONNECTOR_IS} AND (?5 IS NULL OR time >= ?5)
                 ORDER BY id LIMIT 1000"
            ))?;
            let rows =
                statement.query_map(params![team, after, filter.connector, level, from], |r| {
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
        let filter = |connector: Option<&str>, level, since| LogFilter {
            connector: connector.map(str::to_string),
            level,
            since,
        };
        let warnings = store
            .logs(1, &filter(None, Some(LogLevel::Warn), Since::Id(0)))
            .unwrap();
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
        let count = |team, f: LogFilter| store.logs(team, &f).unwrap().len();
        assert_eq!(count(1, filter(Some("b (1)"), None, Since::Id(0))), 1);
        // A connector is found by its label, its name or its id.
        assert_eq!(count(1, filter(Some("b"), None, Since::Id(0))), 1);
        assert_eq!(count(1, filter(Some("b (1)-id"), None, Since::Id(0))), 1);
        assert_eq!(count(1, filter(Some("b (2)"), None, Since::Id(0))), 0);
        assert_eq!(
            store.logs(1, &filter(None, None, Since::Id(1))).unwrap()[0].message,
            "hello"
        );
        assert_eq!(count(2, LogFilter::default()), 0);
        // A name is a label's name before its position only: `b` is not the
        // name of `b (beta) (2)`, whose name is `b (beta)`.
        store
            .append_logs(
                3,
                &[
                    line("b (beta) (2)", LogLevel::Log, "one"),
                    line("b (3)", LogLevel::Log, "two"),
                    line("b (4x)", LogLevel::Log, "three"),
                ],
            )
            .unwrap();
        assert_eq!(count(3, filter(Some("b"), None, Since::Id(0))), 1);
        assert_eq!(count(3, filter(Some("b (beta)"), None, Since::Id(0))), 1);
        // Since a time: lines at or after it.
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(count(1, filter(None, None, Since::Time(at))), 2);
        assert_eq!(
            count(
                1,
                filter(None, None, Since::Time(at + Duration::from_millis(1)))
            ),
            0
        );
    }
}
