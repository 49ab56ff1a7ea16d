//! Scheduled tasks: each connector's `runEveryMinute`, `runEveryHour` and
//! `runEveryDay`, called as PostHog's plugin server called them — at the
//! start of every UTC minute, hour and day, once across all the processes
//! that share the store, never while the task's previous run is still going,
//! and not made up for after a time no process ran (a period whose start is
//! past by more than a minute, or half the period, is skipped).
//!
//! Every process with tasks on runs [`run`]: it finds which connectors of
//! each team's current chain define tasks (readying the chain once per
//! configuration, in one of the team's slots), and at each period's start
//! claims the period in the store ([`TaskStore::claim_task`]); the process
//! that wins it calls the task in one of the team's slots under the task
//! deadline, stores its log lines, and runs the events it sent with
//! `posthog.capture` through the team's chain, as PostHog ingested them.
//! A failed task is logged for its connector and feeds no quarantine
//! window (PostHog never disabled a connector for one).

use super::events::{self, in_team_slot, log_lines};
use super::state::AppState;
use super::store::{self, LogLine, TaskClaim};
use super::teams::TeamChain;
use sandpipe_abi::{Call, LogLevel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// When tasks run, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskOptions {
    /// The periods of `runEveryMinute`, `runEveryHour` and `runEveryDay`
    /// (a minute, an hour and a day; shorter only in tests).
    pub periods: [Duration; 3],
    /// The deadline of one task's call (PostHog's was 30 s), in place of
    /// the connector's own for other calls.
    pub deadline: Duration,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            periods: [
                Duration::from_secs(60),
                Duration::from_secs(3_600),
                Duration::from_secs(86_400),
            ],
            deadline: Duration::from_secs(30),
        }
    }
}

impl TaskOptions {
    /// The period of `task`.
    fn period(&self, task: Call) -> Duration {
        match task {
            Call::RunEveryHour => self.periods[1],
            Call::RunEveryDay => self.periods[2],
            _ => self.periods[0],
        }
    }
}

/// How long after its start a period may still begin its run, at most
/// (and at most half the period).
const LATEST_START: Duration = Duration::from_secs(60);

/// The number of the period (of `period_ms`, counted from the Unix epoch)
/// that `now_ms` falls in, while it is less than `grace_ms` into it.
pub fn due(now_ms: i64, period_ms: i64, grace_ms: i64) -> Option<i64> {
    let number = now_ms.div_euclid(period_ms);
    (now_ms - number * period_ms < grace_ms).then_some(number)
}

/// Each connector's id with the tasks it defines.
type Tasks = Arc<Vec<(String, Vec<Call>)>>;

/// What each team's chain defines: the configuration (generation) it was
/// found for, and its [`Tasks`] (`None` while being found).
type Found = HashMap<i64, (u64, Option<Tasks>)>;

/// Calls the teams' scheduled tasks as their periods start, until the
/// process ends.
pub async fn run(state: AppState, options: TaskOptions) {
    let shortest = options.periods.iter().min().copied().unwrap_or_default();
    let tick = (shortest / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let found: Arc<Mutex<Found>> = Arc::default();
    // The last period this process tried to claim, by team, connector and task.
    let mut tried: HashMap<(i64, String, u32), i64> = HashMap::new();
    loop {
        ticks.tick().await;
        let now_ms = store::now_ms();
        let chains = state.teams.all();
        for chain in &chains {
            let Some(tasks) = tasks_of(&state, chain, &found) else {
                continue;
            };
            for (id, calls) in tasks.iter() {
                for &task in calls {
                    let period = millis(options.period(task));
                    let grace = millis((options.period(task) / 2).min(LATEST_START));
                    let Some(number) = due(now_ms, period, grace) else {
                        continue;
                    };
                    let last = tried
                        .entry((chain.team, id.clone(), task as u32))
                        .or_insert(i64::MIN);
                    if *last >= number {
                        continue;
                    }
                    *last = number;
                    let claim = Claimed {
                        team: chain.team,
                        id: id.clone(),
                        task,
                        period: number,
                    };
                    tokio::spawn(claim_and_run(state.clone(), claim, options.deadline));
                }
            }
        }
        // Forget teams that are gone.
        let teams: std::collections::HashSet<i64> = chains.iter().map(|chain| chain.team).collect();
        found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|team, _| teams.contains(team));
        tried.retain(|(team, _, _), _| teams.contains(team));
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The tasks `chain`'s configuration defines, if known; else starts
/// finding them (once) and answers `None`.
fn tasks_of(state: &AppState, chain: &Arc<TeamChain>, found: &Arc<Mutex<Found>>) -> Option<Tasks> {
    let mut known = found.lock().unwrap_or_else(|e| e.into_inner());
    match known.get(&chain.team) {
        Some((generation, tasks)) if *generation == chain.generation => tasks.clone(),
        _ => {
            known.insert(chain.team, (chain.generation, None));
            tokio::spawn(find(state.clone(), chain.team, found.clone()));
            None
        }
    }
}

/// Finds which connectors of `team`'s current chain define tasks, in one of
/// the team's slots (a connector that cannot load is logged and defines none).
async fn find(state: AppState, team: i64, found: Arc<Mutex<Found>>) {
    let tasks = in_team_slot(state, team, move |state, chain| {
        let mut running = chain.checkout(&state.connectors)?;
        let tasks: Vec<(String, Vec<Call>)> = running
            .tasks()
            .into_iter()
            .filter_map(|(label, calls)| Some((chain.id_of(&label)?.to_string(), calls)))
            .collect();
        chain.checkin(running);
        keep_logs(state, chain, log_lines(chain));
        Ok((chain.generation, tasks))
    })
    .await;
    let mut known = found.lock().unwrap_or_else(|e| e.into_inner());
    match tasks {
        Ok((generation, tasks)) => {
            known.insert(team, (generation, Some(Arc::new(tasks))));
        }
        Err(error) => {
            // Tried again at the next tick.
            tracing::warn!(team, %error, "finding the chain's scheduled tasks");
            known.remove(&team);
        }
    }
}

/// One period of one connector's task.
#[derive(Debug, Clone)]
struct Claimed {
    team: i64,
    /// The connector's id.
    id: String,
    task: Call,
    /// The period's number.
    period: i64,
}

/// Claims the period and, if this process won it, runs the task and the
/// events it captured, then ends the claim.
async fn claim_and_run(state: AppState, claimed: Claimed, deadline: Duration) {
    let now_ms = store::now_ms();
    // Long enough for the call, for waiting on a slot and for the events it
    // captured; a process that dies mid-run holds the task no longer.
    let lease_until_ms = now_ms + 2 * millis(deadline) + 30_000;
    let won = {
        let state = state.clone();
        let claimed = claimed.clone();
        tokio::task::spawn_blocking(move || {
            state.store.claim_task(&TaskClaim {
                team: claimed.team,
                connector_id: &claimed.id,
                task: claimed.task.function(),
                period: claimed.period,
                now_ms,
                lease_until_ms,
            })
        })
        .await
    };
    match won {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return,
        Ok(Err(error)) => {
            tracing::warn!(team = claimed.team, %error, "claiming a scheduled task");
            return;
        }
        Err(error) => {
            tracing::warn!(team = claimed.team, %error, "claiming a scheduled task");
            return;
        }
    }
    let ran = {
        let claimed = claimed.clone();
        in_team_slot(state.clone(), claimed.team, move |state, chain| {
            Ok(call(state, chain, &claimed, deadline, lease_until_ms))
        })
        .await
    };
    match ran {
        Ok(captured) if !captured.is_empty() => {
            let (team, function) = (claimed.team, claimed.task.function());
            events::ingest_captured(&state, team, &claimed.id, function, captured, false).await;
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(team = claimed.team, %error, "running a scheduled task"),
    }
    let finished = tokio::task::spawn_blocking(move || {
        state.store.finish_task(
            claimed.team,
            &claimed.id,
            claimed.task.function(),
            claimed.period,
        )
    })
    .await;
    if let Ok(Err(error)) = finished {
        // The claim then holds until its lease ends.
        tracing::warn!(%error, "ending a scheduled task's claim");
    }
}

/// Calls the task on a pooled chain of the team's current configuration;
/// the events it captured. Nothing runs when the connector has left the
/// chain or is disabled, or when the claim ran out while waiting for a slot.
fn call(
    state: &AppState,
    chain: &Arc<TeamChain>,
    claimed: &Claimed,
    deadline: Duration,
    lease_until_ms: i64,
) -> Vec<Value> {
    let Some(label) = chain.label_of(&claimed.id) else {
        return Vec::new();
    };
    if store::now_ms() >= lease_until_ms {
        let message = format!(
            "{}: not run for this period: the team's slots were busy until its claim ran out",
            claimed.task.function()
        );
        keep_logs(
            state,
            chain,
            vec![line(&label, &claimed.id, LogLevel::Warn, message)],
        );
        return Vec::new();
    }
    let mut running = match chain.checkout(&state.connectors) {
        Ok(running) => running,
        Err(error) => {
            tracing::warn!(team = chain.team, %error, "a chain for a scheduled task");
            return Vec::new();
        }
    };
    let outcome = running.run_task(&label, claimed.task, deadline);
    chain.checkin(running);
    let Some(outcome) = outcome else {
        return Vec::new();
    };
    let calls: Vec<_> = outcome.record.into_iter().collect();
    super::trace::connector_calls(&calls);
    for call in &calls {
        state.metrics.record_call(&chain.team.to_string(), call);
    }
    keep_logs(state, chain, log_lines(chain));
    if let Err(error) = state.connectors.storage.sync() {
        tracing::warn!(team = chain.team, %error, "syncing a scheduled task's storage writes");
    }
    outcome.captured
}

/// A log line of the service's own about the connector `label` (`id`).
pub(super) fn line(label: &str, id: &str, level: LogLevel, message: String) -> LogLine {
    LogLine {
        connector: label.to_string(),
        connector_id: Some(id.to_string()),
        level,
        message,
        time: SystemTime::now(),
    }
}

/// Stores `lines` in the team's log (a store that fails is traced: the
/// call has run either way).
pub(super) fn keep_logs(state: &AppState, chain: &TeamChain, lines: Vec<LogLine>) {
    if let Err(error) = state.store.append_logs(chain.team, &lines) {
        tracing::warn!(team = chain.team, %error, "storing a scheduled task's log lines");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_due_from_its_start_for_its_grace() {
        let minute = 60_000;
        // 2026-11-30T12:00:00Z.
        let noon = 1_796_040_000_000;
        assert_eq!(due(noon, minute, minute), Some(noon / minute));
        assert_eq!(due(noon + 59_999, minute, minute), Some(noon / minute));
        assert_eq!(due(noon + 60_000, minute, minute), Some(noon / minute + 1));
        let hour = 3_600_000;
        assert_eq!(due(noon, hour, minute), Some(noon / hour));
        assert_eq!(due(noon + 59_999, hour, minute), Some(noon / hour));
        // Later in the hour: not made up for.
        assert_eq!(due(noon + 60_000, hour, minute), None);
        assert_eq!(due(noon + hour - 1, hour, minute), None);
        // Before 1970 too (a clock set wrong is no panic).
        assert_eq!(due(-1, minute, minute), Some(-1));
    }
}
