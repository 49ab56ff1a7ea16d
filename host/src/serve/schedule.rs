//! Scheduled tasks: each connector's `runEveryMinute`, `runEveryHour` and
//! `runEveryDay`, called as PostHog's plugin server called them — at the
//! start of every UTC minute, hour and day, once across all the processes
//! that share the store, never while the task's previous run is still going,
//! and not made up for after a time no process ran (a period whose start is
//! past by more than a minute, or half the period, is skipped).
//!
//! Every process with tasks on runs [`run`]: it finds which connectors of
//! each team's current chain define tasks (readying a chain once per
//! configuration, only when a connector's bytecode names a task), and at
//! each period's start claims the period in the
//! store ([`super::store::TaskStore::claim_task`]); the process that wins it
//! calls the task on a pooled chain under the task deadline, stores its log
//! lines, and runs the events it sent with `posthog.capture` through the
//! team's chain, as PostHog ingested them. Tasks run beside the teams'
//! event requests, not in their slots (a task waiting on a slow `fetch`
//! would hold a team's events back), a bounded number at once per process,
//! as PostHog ran them on workers of their own. A failed task is logged for
//! its connector and feeds no quarantine window (PostHog never disabled a
//! connector for one).

use super::events::{self, keep_logs, line, log_lines};
use super::state::AppState;
use super::store::{self, TaskClaim};
use super::teams::TeamChain;
use sandpipe_abi::{Call, LogLevel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// What a team's chain defines, as far as this process knows.
enum Known {
    /// Being found for this configuration (generation); meanwhile, the
    /// tasks found before (none the first time).
    Finding(u64, Tasks),
    /// Found for this configuration, and looked for again at `again` when
    /// a connector that may define tasks could not load.
    Found {
        generation: u64,
        tasks: Tasks,
        again: Option<Instant>,
    },
}

/// How long after a finding that was not complete the tasks are looked for again.
const FIND_AGAIN: Duration = Duration::from_secs(60);

/// The last period this process tried to claim, by team, connector and task.
type Tried = HashMap<(i64, String, u32), i64>;

/// The scheduler's state, shared by its loop and the work it starts.
struct Scheduler {
    state: AppState,
    options: TaskOptions,
    known: Mutex<HashMap<i64, Known>>,
    tried: Mutex<Tried>,
    /// Tasks (and findings) running at once in this process: outside the
    /// teams' slots, so a task that waits on a slow `fetch` never holds a
    /// team's events back, and a bounded number of them.
    running: tokio::sync::Semaphore,
}

/// Calls the teams' scheduled tasks as their periods start, until the
/// process ends.
pub async fn run(state: AppState, options: TaskOptions) {
    let shortest = options.periods.iter().min().copied().unwrap_or_default();
    let tick = (shortest / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scheduler = Arc::new(Scheduler {
        state,
        options,
        known: Mutex::default(),
        tried: Mutex::default(),
        running: tokio::sync::Semaphore::new(cores.max(2)),
    });
    loop {
        ticks.tick().await;
        scheduler.tick(store::now_ms());
    }
}

impl Scheduler {
    /// Starts every task whose period has begun and that this process has
    /// not tried to claim yet.
    fn tick(self: &Arc<Self>, now_ms: i64) {
        let chains = self.state.teams.all();
        for chain in &chains {
            let Some(tasks) = self.tasks_of(chain) else {
                continue;
            };
            for (id, calls) in tasks.iter() {
                for &task in calls {
                    let period = self.options.period(task);
                    let grace = millis((period / 2).min(LATEST_START));
                    let Some(number) = due(now_ms, millis(period), grace) else {
                        continue;
                    };
                    {
                        let mut tried = lock(&self.tried);
                        let last = tried
                            .entry((chain.team, id.clone(), task as u32))
                            .or_insert(i64::MIN);
                        if *last >= number {
                            continue;
                        }
                        *last = number;
                    }
                    let claim = Claimed {
                        team: chain.team,
                        id: id.clone(),
                        task,
                        period_ms: millis(period),
                        number,
                    };
                    tokio::spawn(self.clone().claim_and_run(claim));
                }
            }
        }
        // Forget teams that are gone.
        let teams: std::collections::HashSet<i64> = chains.iter().map(|chain| chain.team).collect();
        lock(&self.known).retain(|team, _| teams.contains(team));
        lock(&self.tried).retain(|(team, _, _), _| teams.contains(team));
    }

    /// The tasks `chain`'s configuration defines, if known; else starts
    /// finding them (once, and again [`FIND_AGAIN`] after a failure) and
    /// answers `None`.
    fn tasks_of(self: &Arc<Self>, chain: &Arc<TeamChain>) -> Option<Tasks> {
        let mut known = lock(&self.known);
        let found = match known.get(&chain.team) {
            Some(Known::Found {
                generation,
                tasks,
                again,
            }) if *generation == chain.generation => {
                if again.is_none_or(|again| Instant::now() < again) {
                    return Some(tasks.clone());
                }
                tasks.clone()
            }
            Some(Known::Finding(generation, tasks)) if *generation == chain.generation => {
                return Some(tasks.clone());
            }
            _ if !chain.may_have_tasks() => {
                let none = Tasks::default();
                known.insert(
                    chain.team,
                    Known::Found {
                        generation: chain.generation,
                        tasks: none.clone(),
                        again: None,
                    },
                );
                return Some(none);
            }
            _ => Tasks::default(),
        };
        known.insert(chain.team, Known::Finding(chain.generation, found.clone()));
        tokio::spawn(self.clone().find(chain.clone()));
        Some(found)
    }

    /// Finds which connectors of `chain` define tasks (readying them: a
    /// failed `setupPlugin` is logged and tried again at the task's call).
    async fn find(self: Arc<Self>, chain: Arc<TeamChain>) {
        let Ok(_permit) = self.running.acquire().await else {
            return;
        };
        let state = self.state.clone();
        let found = {
            let chain = chain.clone();
            tokio::task::spawn_blocking(move || -> Result<(Vec<_>, usize), String> {
                let mut running = chain
                    .checkout(&state.connectors)
                    .map_err(|e| e.to_string())?;
                let tasks = running.tasks();
                chain.checkin(running);
                keep_logs(&state, &chain, log_lines(&chain));
                let found = tasks
                    .found
                    .into_iter()
                    .filter_map(|(label, calls)| Some((chain.id_of(&label)?.to_string(), calls)))
                    .collect();
                Ok((found, tasks.unknown))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        // The connectors that loaded have their tasks run; one that could
        // not is looked at again a minute later.
        let (tasks, again) = match found {
            Ok((tasks, unknown)) => (tasks, (unknown > 0).then(|| Instant::now() + FIND_AGAIN)),
            Err(error) => {
                tracing::warn!(team = chain.team, %error, "finding the chain's scheduled tasks");
                (Vec::new(), Some(Instant::now() + FIND_AGAIN))
            }
        };
        let known = Known::Found {
            generation: chain.generation,
            tasks: Arc::new(tasks),
            again,
        };
        lock(&self.known).insert(chain.team, known);
    }

    /// Claims the period and, if this process won it, runs the task and the
    /// events it captured, then ends the claim.
    async fn claim_and_run(self: Arc<Self>, claimed: Claimed) {
        let state = self.state.clone();
        let deadline = self.options.deadline;
        let now_ms = store::now_ms();
        // Long enough for waiting on a turn, the call and the events it
        // captured; a process that dies mid-run holds the task no longer.
        let lease_until_ms = now_ms + 2 * millis(deadline) + 30_000;
        let won = {
            let state = state.clone();
            let claimed = claimed.clone();
            tokio::task::spawn_blocking(move || {
                state.store.claim_task(&TaskClaim {
                    team: claimed.team,
                    connector_id: &claimed.id,
                    task: &claimed.key(),
                    period: claimed.number,
                    now_ms,
                    lease_until_ms,
                })
            })
            .await
            .unwrap_or_else(|e| Err(store::StoreError::Unavailable(e.to_string())))
        };
        match won {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                // Claimed again at the next tick, if the period is still due.
                tracing::warn!(team = claimed.team, %error, "claiming a scheduled task");
                let key = (claimed.team, claimed.id.clone(), claimed.task as u32);
                lock(&self.tried).remove(&key);
                return;
            }
        }
        let captured = match self.running.acquire().await {
            Ok(_permit) => {
                let claimed = claimed.clone();
                let state = state.clone();
                tokio::task::spawn_blocking(move || {
                    let chain = state.teams.get(claimed.team)?;
                    Some(call(&state, &chain, &claimed, deadline, lease_until_ms))
                })
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        if !captured.is_empty() {
            let (team, function) = (claimed.team, claimed.task.function());
            events::ingest_captured(&state, team, &claimed.id, function, captured, false).await;
        }
        let finished = tokio::task::spawn_blocking(move || {
            state
                .store
                .finish_task(claimed.team, &claimed.id, &claimed.key(), claimed.number)
        })
        .await;
        if let Ok(Err(error)) = finished {
            // The claim then holds until its lease ends.
            tracing::warn!(%error, "ending a scheduled task's claim");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One period of one connector's task.
#[derive(Debug, Clone)]
struct Claimed {
    team: i64,
    /// The connector's id.
    id: String,
    task: Call,
    /// The task's period, in milliseconds.
    period_ms: i64,
    /// The period's number.
    number: i64,
}

impl Claimed {
    /// The task as the store names it: its function and its period, so that
    /// periods of another length (a test's) never meet a minute's numbers.
    fn key(&self) -> String {
        format!("{}/{}ms", self.task.function(), self.period_ms)
    }
}

/// Calls the task on a pooled chain of the team's current configuration;
/// the events it captured. Nothing runs when the connector has left the
/// chain or is disabled, or when the claim ran out while waiting for a turn.
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
            "{}: not run for this period: other tasks held every turn until its claim ran out",
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
