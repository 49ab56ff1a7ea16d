//! A team's batch of events: wait for one of the team's slots, check out a
//! chain from its pool, run every event, then — before the answer — record
//! metrics, store the connectors' log lines, apply quarantine changes, sync
//! the batch's storage writes and store its composed webhooks, so whatever an
//! acknowledged event did survives power loss.

use super::quarantine::Health;
use super::state::AppState;
use super::store::{Buffering, LogLine, OnEventJob, StoreError};
use super::teams::{HealthChange, TeamChain};
use sandpipe_abi::LogLevel;
use sandpipe_runtime::services::storage::StorageError;
use sandpipe_runtime::{
    CallRecord, Chain, ChainOutput, ExportSettings, LimitError, WebhookRequest,
};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Why a batch was not processed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// An item `event_rule` refuses, where the request stops at it.
    #[error("event {index}: {reason}")]
    NotAnEvent { index: usize, reason: String },
    #[error("a trace runs one event: send a JSON object, not a list")]
    TraceOfList,
    #[error("a batch holds at most {limit} events, got {got}; send it in smaller batches")]
    TooMany { limit: usize, got: usize },
    #[error("team {team} has no chain: PUT /v1/teams/{team}/chain first")]
    NoChain { team: i64 },
    #[error("team {team} has too many event requests waiting; retry later")]
    TooManyWaiting { team: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch's storage writes could not be made durable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The operator's limits do not fit the engine (checked at start, so never expected here).
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// The shared `meta.cache` could not be reached before or during the batch.
    #[error("meta.cache is unavailable: {0}")]
    CacheUnavailable(String),
    #[error("the background pool stopped")]
    BackgroundStopped,
    #[error("the batch's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a batch did: the body of the events response.
#[derive(Debug, Serialize)]
pub struct Batch {
    /// Each event as the chain left it (the JSON text the chain wrote), or
    /// null where a connector dropped it (or the item was refused: see `failures`).
    pub results: Vec<Box<RawValue>>,
    pub failures: Vec<Failure>,
    /// How many webhook requests were composed (and stored).
    pub webhooks: usize,
    /// Events the connectors emitted with `posthog.capture`, in order.
    pub captured: Vec<Value>,
}

/// What failed in a batch: an item that is not an event, or a connector call.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Failure {
    Item(ItemFailure),
    Connector(EventFailure),
}

/// An item of the batch that is not an event; the rest are processed.
#[derive(Debug, Serialize)]
pub struct ItemFailure {
    /// Its index in the batch.
    pub index: usize,
    pub error: String,
}

/// A connector call that failed on one event.
#[derive(Debug, Serialize)]
pub struct EventFailure {
    /// The event's index in the batch.
    pub event: usize,
    pub connector: String,
    pub stage: &'static str,
    /// Secret config values redacted.
    pub error: String,
}

/// The team's buffered connector log lines, taken, as they are stored
/// (secret config values redacted, each with its connector's id).
pub fn log_lines(chain: &TeamChain) -> Vec<LogLine> {
    chain
        .logs
        .take()
        .into_iter()
        .map(|entry| LogLine {
            message: chain.redact(&entry.message),
            connector_id: chain.id_of(&entry.connector).map(str::to_string),
            connector: entry.connector,
            level: entry.level,
            time: entry.time,
        })
        .collect()
}

/// Where the events of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client sent them (an events request, a NATS message).
    Client,
    /// A connector sent them with `posthog.capture` ([`ingest_captured`]).
    Capture,
}

/// A log line of the service's own about the connector `label` (`id`).
pub fn line(label: &str, id: &str, level: LogLevel, message: String) -> LogLine {
    LogLine {
        connector: label.to_string(),
        connector_id: Some(id.to_string()),
        level,
        message,
        time: SystemTime::now(),
    }
}

/// Stores `lines` in the team's log, for work no request waits on (a
/// scheduled task, what a call captured): a store that fails is traced,
/// the work has run either way.
pub fn keep_logs(state: &AppState, chain: &TeamChain, lines: Vec<LogLine>) {
    if let Err(error) = state.store.append_logs(chain.team, &lines) {
        tracing::warn!(team = chain.team, %error, "storing log lines");
    }
}

/// The connectors of a chain that are called after it: those that define
/// `onEvent`, and those that define `exportEvents` with how their batches go.
pub struct Exporters {
    pub on_event: Vec<String>,
    pub batch: Vec<(String, ExportSettings)>,
}

impl Exporters {
    /// The exporters of `chain`.
    pub fn of(chain: &mut Chain) -> Exporters {
        Exporters {
            on_event: chain.exporters(),
            batch: chain.batch_exporters(),
        }
    }
}

/// For every event the chain kept: one `onEvent` call per connector that
/// defines it, and the event for the `exportEvents` buffer of each connector
/// that defines that and does not ignore it (`exportEventsToIgnore`).
fn on_event_jobs(
    chain: &TeamChain,
    exporters: &Exporters,
    outputs: &[Option<ChainOutput<Vec<u8>>>],
    origin: Origin,
) -> Vec<OnEventJob> {
    if exporters.on_event.is_empty() && exporters.batch.is_empty() {
        return Vec::new();
    }
    let mut jobs = Vec::new();
    for event in outputs.iter().flatten().filter_map(|o| o.event.as_ref()) {
        let text = String::from_utf8(event.clone()).expect("the chain writes UTF-8");
        let job = |label: &str, id: &str, buffer| OnEventJob {
            connector: label.to_string(),
            connector_id: id.to_string(),
            event: text.clone(),
            of_captured: origin == Origin::Capture,
            buffer,
        };
        for label in &exporters.on_event {
            if let Some(id) = chain.id_of(label) {
                jobs.push(job(label, id, None));
            }
        }
        for (label, settings) in &exporters.batch {
            if let Some(id) = chain.id_of(label)
                && !settings.ignores_event(event)
            {
                let buffer = Buffering {
                    wait_ms: settings.wait.as_millis() as i64,
                    bytes: settings.bytes as i64,
                };
                jobs.push(job(label, id, Some(buffer)));
            }
        }
    }
    jobs
}

/// One item of an events batch: its JSON, or why its text is not JSON
/// sandpipe can carry (the rest of the list was).
pub type Item = Result<Value, String>;

/// Processes `items` (at most `limit`, from `origin`) for `team`. Items that
/// are not events fail alone; the others run.
pub async fn process(
    state: AppState,
    team: i64,
    events: Vec<Item>,
    limit: usize,
    origin: Origin,
) -> Result<Batch, EventsError> {
    if events.len() > limit {
        return Err(EventsError::TooMany {
            limit,
            got: events.len(),
        });
    }
    in_team_slot(state, team, move |state, chain| {
        run(state, chain, events, origin)
    })
    .await
}

/// Runs `work` on `team`'s current chain in one of the team's slots: on a
/// blocking thread, or on the background pool when the team's events have
/// been slow.
pub async fn in_team_slot<T: Send + 'static>(
    state: AppState,
    team: i64,
    work: impl FnOnce(&AppState, &Arc<TeamChain>) -> Result<T, EventsError> + Send + 'static,
) -> Result<T, EventsError> {
    let chain = state.teams.get(team).ok_or(EventsError::NoChain { team })?;
    // The team's share of the machine: wait for one of its slots.
    let slot = state
        .gates
        .enter(team)
        .await
        .ok_or(EventsError::TooManyWaiting { team })?;
    // A team whose events have been slow runs at background priority.
    let background = state.gates.is_slow(team).then(|| state.background.clone());
    let span = tracing::Span::current();
    let work = move || {
        let _slot = slot;
        span.in_scope(|| work(&state, &chain))
    };
    match background {
        Some(pool) => pool
            .run(work)
            .await
            .unwrap_or(Err(EventsError::BackgroundStopped)),
        None => tokio::task::spawn_blocking(work).await?,
    }
}

/// Runs `events` through one of `chain`'s pooled chains and makes what they did durable.
fn run(
    state: &AppState,
    chain: &Arc<TeamChain>,
    events: Vec<Item>,
    origin: Origin,
) -> Result<Batch, EventsError> {
    let team = chain.team;
    let count = events.len();
    // A cache call of this batch that could not reach Redis makes it answer
    // 503 (the caller retries); the batch runs on this thread alone.
    let cache_failures = super::redis_cache::failures_here();
    let started = Instant::now();
    let mut running = chain.checkout(&state.connectors)?;
    let mut refused = Vec::new();
    // Quarantine as the batch goes: a connector its calls disable is passed
    // over for the rest of the batch, not only from the next request on; each
    // transition installed and logged as it is seen, so the log has a
    // connector's transitions in the order its window saw them, whichever
    // concurrent request's calls made them.
    let mut quarantine_failed = None;
    let outputs: Vec<Option<ChainOutput<Vec<u8>>>> = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let error = match &event {
                Ok(event) => match crate::event_rule::refusal(event) {
                    None => match process_one(&mut running, event) {
                        Ok(output) => {
                            let changes = chain.observe(&output.calls);
                            if !changes.is_empty() {
                                for change in &changes {
                                    if change.health == Health::Disabled {
                                        running.pass_over(change.position);
                                    }
                                }
                                match apply_quarantine(state, chain, changes) {
                                    Ok(lines) => keep_logs(state, chain, lines),
                                    Err(error) => {
                                        quarantine_failed.get_or_insert(error);
                                    }
                                }
                            }
                            return Some(output);
                        }
                        Err(error) => error.to_string(),
                    },
                    Some(error) => error.to_owned(),
                },
                Err(unread) => unread.clone(),
            };
            refused.push(ItemFailure { index, error });
            None
        })
        .collect();
    let exporters = Exporters::of(&mut running);
    chain.checkin(running);
    // Lost during the batch: nothing of it is acknowledged, so nothing is kept
    // but what the connectors already wrote (at-least-once, as a retry runs it again).
    if let Some(redis) = &state.cache
        && super::redis_cache::failures_here() != cache_failures
    {
        let reason = redis.lost().unwrap_or_else(|| "a call failed".into());
        return Err(EventsError::CacheUnavailable(reason));
    }
    state.gates.record(team, started.elapsed(), count);
    super::trace::connector_calls(outputs.iter().flatten().flat_map(|o| &o.calls));
    let lines = log_lines(chain);
    for output in outputs.iter().flatten() {
        state.metrics.record(team, output);
    }
    if let Some(error) = quarantine_failed {
        return Err(error.into());
    }
    state.store.append_logs(team, &lines)?;
    // The storage writes of these events, synced once (group commit) before the answer.
    state.connectors.storage.sync()?;
    // Stored before the response returns: an acknowledged event's webhooks are durable.
    let webhooks: Vec<WebhookRequest> = outputs
        .iter()
        .flatten()
        .flat_map(|o| o.webhooks.iter().cloned())
        .collect();
    state.store.enqueue_webhooks(team, &webhooks)?;
    // The onEvent calls of every kept event, stored the same way: the worker
    // makes them, retried until they succeed or are dead.
    let on_events = on_event_jobs(chain, &exporters, &outputs, origin);
    state.store.enqueue_on_events(team, &on_events)?;
    if !webhooks.is_empty() || !on_events.is_empty() {
        state.delivery.wake.notify_one();
    }
    let mut batch = Batch {
        results: Vec::with_capacity(outputs.len()),
        failures: refused.into_iter().map(Failure::Item).collect(),
        webhooks: webhooks.len(),
        captured: Vec::new(),
    };
    for (index, output) in outputs.into_iter().enumerate() {
        let Some(output) = output else {
            batch.results.push(RawValue::NULL.to_owned());
            continue;
        };
        batch.results.push(match output.event {
            Some(text) => json_text(text),
            None => RawValue::NULL.to_owned(),
        });
        batch.captured.extend(output.captured);
        batch
            .failures
            .extend(output.failures.into_iter().map(|failure| {
                Failure::Connector(EventFailure {
                    event: index,
                    connector: failure.connector,
                    stage: failure.call.function(),
                    error: chain.redact(&failure.error.to_string()),
                })
            }));
    }
    tracing::debug!(
        events = count,
        failures = batch.failures.len(),
        webhooks = batch.webhooks,
        micros = super::trace::micros(started),
        "batch"
    );
    Ok(batch)
}

/// One event (an object, from the request's body) through the chain, as
/// the JSON text the chain writes: no `Value` built for the result. Refused
/// only when its text is not an event serde_json reads again, which only
/// serde_json's raw-value token (`json::RAW_VALUE_KEY`) can make: an event
/// nested deeper than it reads.
fn process_one(
    chain: &mut sandpipe_runtime::Chain,
    event: &Value,
) -> Result<ChainOutput<Vec<u8>>, sandpipe_runtime::rewrite::RewriteError> {
    let text = sandpipe_runtime::json::to_string(event).expect("a JSON value serialises");
    chain.process_json(&text)
}

/// The JSON text a chain wrote, to embed in the answer as it is. (Checked
/// again by `RawValue`: a scan of the text, about a microsecond an event, for
/// a constructor that needs no `unsafe`.)
fn json_text(text: Vec<u8>) -> Box<RawValue> {
    let text = String::from_utf8(text).expect("the chain writes UTF-8");
    RawValue::from_string(text).expect("the chain writes JSON text")
}

/// Applies quarantine transitions: persisted, and the team's chain rebuilt
/// without (or with) a disabled (or re-enabled) connector; returns their log
/// lines. The windows are the configuration's, so they carry on across the
/// rebuild; a PUT made since `chain` was taken is never undone.
pub(super) fn quarantine(
    state: &AppState,
    chain: &TeamChain,
    calls: &[CallRecord],
) -> Result<Vec<LogLine>, StoreError> {
    apply_quarantine(state, chain, chain.observe(calls))
}

/// [`quarantine`]'s transitions once observed.
fn apply_quarantine(
    state: &AppState,
    chain: &TeamChain,
    changes: Vec<HealthChange>,
) -> Result<Vec<LogLine>, StoreError> {
    // Logged only when installed: a PUT made since `chain` was taken wins,
    // and then nothing changed.
    let applied = !changes.is_empty()
        && state.teams.apply_health(chain, |position, health| {
            state
                .store
                .set_connector_health(chain.team, chain.versions.chain, position, health)
        })?;
    if !applied {
        return Ok(Vec::new());
    }
    let time = SystemTime::now();
    Ok(changes
        .into_iter()
        .map(|change| LogLine {
            connector: sandpipe_runtime::connector::label(
                &chain.specs[change.position].bundle.manifest().name,
                change.position,
            ),
            connector_id: Some(chain.specs[change.position].id.clone()),
            level: if change.health == Health::Healthy {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            message: format!(
                "quarantine: now {} ({})",
                change.health.as_str(),
                change.reason
            ),
            time,
        })
        .collect())
}

/// Runs the events a call with no caller to answer (a scheduled task, a
/// queued `onEvent`) sent with `posthog.capture` through the team's chain,
/// as PostHog ingested them: each with a `uuid`, a `timestamp` (now) and
/// the team's `team_id` unless the connector gave them. Their webhooks and
/// `onEvent` calls are stored and sent as an events request's are; what the
/// chain makes of them goes nowhere else, and what they capture in turn is
/// dropped (a connector cannot feed itself), with a line in the log of the
/// connector `id` that captured them, whose call was `function`. So are
/// those of an `onEvent` call on an event that was itself captured
/// (`from_captured`, which the queued call's row holds, not the event, which
/// a connector may change): an exporter that captures on every event would
/// otherwise feed itself for ever.
pub async fn ingest_captured(
    state: &AppState,
    team: i64,
    id: &str,
    function: &str,
    captured: Vec<Value>,
    from_captured: bool,
) {
    if from_captured {
        let message = format!(
            "{function}: {} captured event(s) dropped: the event it ran on was itself captured",
            captured.len()
        );
        log_for(state, team, id, LogLevel::Warn, message).await;
        return;
    }
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let events: Vec<Item> = captured
        .into_iter()
        .map(|mut event| {
            if let Some(object) = event.as_object_mut() {
                object
                    .entry("uuid")
                    .or_insert_with(|| uuid::Uuid::now_v7().to_string().into());
                object
                    .entry("timestamp")
                    .or_insert_with(|| now.clone().into());
                object.entry("team_id").or_insert(team.into());
            }
            Ok(event)
        })
        .collect();
    let count = events.len();
    let message = match process(state.clone(), team, events, usize::MAX, Origin::Capture).await {
        Ok(batch) => {
            let refused = batch
                .failures
                .iter()
                .filter(|failure| matches!(failure, Failure::Item(_)))
                .count();
            let mut message =
                format!("{function}: {count} captured event(s) ran through the chain");
            if refused > 0 {
                message.push_str(&format!(
                    "; {refused} refused (an event needs a non-empty string \"event\")"
                ));
            }
            if !batch.captured.is_empty() {
                message.push_str(&format!(
                    "; {} event(s) they captured in turn were dropped",
                    batch.captured.len()
                ));
            }
            (LogLevel::Info, message)
        }
        Err(error) => (
            LogLevel::Error,
            format!("{function}: its {count} captured event(s) could not run: {error}"),
        ),
    };
    let (level, message) = message;
    log_for(state, team, id, level, message).await;
}

/// Stores a line of the service's own in the log of `team`'s connector `id`.
async fn log_for(state: &AppState, team: i64, id: &str, level: LogLevel, message: String) {
    if let Some(chain) = state.teams.get(team) {
        let label = chain.label_of(id).unwrap_or_else(|| "sandpipe".into());
        let state = state.clone();
        let line = line(&label, id, level, message);
        let _ = tokio::task::spawn_blocking(move || {
            keep_logs(&state, &chain, vec![line]);
        })
        .await;
    }
}
