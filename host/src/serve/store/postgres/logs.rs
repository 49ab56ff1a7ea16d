//! [`LogStore`] on PostgreSQL: connector log lines, trimmed per team.

use super::{PgStore, pg_error};

use crate::serve::store::{LOG_RETENTION, LogFilter, LogLine, LogRow, LogStore, Result, Since};
use sandpipe_abi::LogLevel;

/// PostgreSQL's form of [`crate::serve::store::logs::CONNECTOR_IS`]: the
/// row's connector is the one `$3` names (its label, id, or name).
pub(crate) const CONNECTOR_IS: &str = r"($3::TEXT IS NULL OR connector = $3 OR connector_id = $3
    OR (left(connector, length($3) + 2) = $3 || ' ('
        AND substr(connector, length($3) + 3) ~ '^[0-9]+\)$'))";

impl LogStore for PgStore {
    fn append_logs(&self, team: i64, lines: &[LogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let insert = tx
                .prepare(
                    "INSERT INTO logs (team_id, connector, connector_id, level, message, time) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(pg_error)?;
            for line in lines {
                let time = humantime::format_rfc3339_millis(line.time).to_string();
                tx.execute(
                    &insert,
                    &[
                        &team,
                        &line.connector,
                        &line.connector_id,
                        &line.level.as_str(),
                        &line.message,
                        &time,
                    ],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.execute(
                "DELETE FROM logs WHERE team_id = $1 AND id <= (SELECT id FROM logs WHERE team_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&team, &LOG_RETENTION],
            )
            .await
            .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    fn logs(&self, team: i64, filter: &LogFilter) -> Result<Vec<LogRow>> {
        let (after, from) = match &filter.since {
            Since::Id(id) => (*id, None),
            // Times are stored as RFC 3339 with milliseconds, which sort as text.
            Since::Time(time) => (0, Some(humantime::format_rfc3339_millis(*time).to_string())),
        };
        let level = filter.level.map(LogLevel::as_str);
        let connector = filter.connector.clone();
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!(
                        "SELECT id, connector, level, message, time FROM logs
                         WHERE team_id = $1 AND id > $2 AND ($4::TEXT IS NULL OR level = $4)
                           AND {CONNECTOR_IS} AND ($5::TEXT IS NULL OR time >= $5)
                         ORDER BY id LIMIT 1000"
                    ),
                    &[&team, &after, &connector, &level, &from],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| LogRow {
                    id: r.get(0),
                    connector: r.get(1),
                    level: r.get(2),
                    message: r.get(3),
                    time: r.get(4),
                })
                .collect())
        })
    }
}
