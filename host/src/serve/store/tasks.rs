//! Scheduled task runs: for each connector's `runEveryMinute`/`Hour`/`Day`,
//! the last period a process claimed and whether that run is still going,
//! so that every process sharing the store runs each period of a task once,
//! and never while the task's previous run holds its claim.

use super::{Result, SqliteStore};
use rusqlite::params;

/// A claim on one period of one connector's task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskClaim<'a> {
    pub team: i64,
    /// The connector's stable id in the team's chain.
    pub connector_id: &'a str,
    /// The task's function name (`runEveryMinute`, …).
    pub task: &'a str,
    /// The period's number: whole periods since the Unix epoch.
    pub period: i64,
    /// When the claim is made.
    pub now_ms: i64,
    /// Until when the claim holds if the run never finishes.
    pub lease_until_ms: i64,
}

/// Scheduled task runs, on either back end (the same statements on both).
pub trait TaskStore {
    /// Claims `claim.period`: true when this caller won it, that is when no
    /// process has claimed it or a later period, and the last claimed run
    /// has finished or its lease ran out by `claim.now_ms`.
    fn claim_task(&self, claim: &TaskClaim<'_>) -> Result<bool>;

    /// Marks the run of `period` finished (a later claim is left alone).
    fn finish_task(&self, team: i64, connector_id: &str, task: &str, period: i64) -> Result<()>;
}

/// The claim, as one statement: the insert of a first claim, or an update
/// of the row that only applies while its `WHERE` holds. On PostgreSQL a
/// concurrent claim waits for the row and checks the `WHERE` again against
/// what won, so of two processes claiming a period one gets it.
pub(super) const CLAIM: &str = "INSERT INTO scheduled_tasks (team_id, connector_id, task, period, running, lease_until_ms) \
     VALUES ($1, $2, $3, $4, 1, $5) \
     ON CONFLICT (team_id, connector_id, task) DO UPDATE \
     SET period = excluded.period, running = 1, lease_until_ms = excluded.lease_until_ms \
     WHERE scheduled_tasks.period < excluded.period \
     AND (scheduled_tasks.running = 0 OR scheduled_tasks.lease_until_ms <= $6)";

/// The end of a claimed run.
pub(super) const FINISH: &str = "UPDATE scheduled_tasks SET running = 0 \
     WHERE team_id = $1 AND connector_id = $2 AND task = $3 AND period = $4";

impl TaskStore for SqliteStore {
    fn claim_task(&self, claim: &TaskClaim<'_>) -> Result<bool> {
        self.with(|c| {
            c.execute(
                CLAIM,
                params![
                    claim.team,
                    claim.connector_id,
                    claim.task,
                    claim.period,
                    claim.lease_until_ms,
                    claim.now_ms
                ],
            )
        })
        .map(|changed| changed == 1)
    }

    fn finish_task(&self, team: i64, connector_id: &str, task: &str, period: i64) -> Result<()> {
        self.with(|c| c.execute(FINISH, params![team, connector_id, task, period]))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::store::TeamStore;

    fn claim(period: i64, now_ms: i64) -> TaskClaim<'static> {
        TaskClaim {
            team: 1,
            connector_id: "poller",
            task: "runEveryMinute",
            period,
            now_ms,
            lease_until_ms: now_ms + 1_000,
        }
    }

    #[test]
    fn a_period_is_claimed_once_and_the_next_only_when_the_last_run_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        assert!(store.claim_task(&claim(10, 0)).unwrap());
        // The same period again, from this process or another: refused.
        assert!(!store.claim_task(&claim(10, 5)).unwrap());
        // The next period while the run still holds its lease: refused.
        assert!(!store.claim_task(&claim(11, 500)).unwrap());
        // Another connector's, or another task's, is its own.
        let other = TaskClaim {
            connector_id: "other",
            ..claim(11, 500)
        };
        assert!(store.claim_task(&other).unwrap());
        let hourly = TaskClaim {
            task: "runEveryHour",
            ..claim(11, 500)
        };
        assert!(store.claim_task(&hourly).unwrap());
        // Finishing another period's run finishes nothing.
        store.finish_task(1, "poller", "runEveryMinute", 9).unwrap();
        assert!(!store.claim_task(&claim(11, 600)).unwrap());
        store
            .finish_task(1, "poller", "runEveryMinute", 10)
            .unwrap();
        assert!(store.claim_task(&claim(11, 600)).unwrap());
        // A run that never finishes gives its claim up when its lease ends.
        assert!(!store.claim_task(&claim(12, 1_599)).unwrap());
        assert!(store.claim_task(&claim(12, 1_600)).unwrap());
        // An earlier period than the last claimed is never run.
        store
            .finish_task(1, "poller", "runEveryMinute", 12)
            .unwrap();
        assert!(!store.claim_task(&claim(11, 2_000)).unwrap());
    }

    #[test]
    fn deleting_a_team_forgets_its_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let team = store.create_team("t", "hash").unwrap();
        let claim = TaskClaim {
            team,
            ..claim(10, 0)
        };
        assert!(store.claim_task(&claim).unwrap());
        assert!(store.delete_team(team).unwrap());
        assert!(store.claim_task(&claim).unwrap());
    }
}
