//! A dry run of one event (`POST /v1/teams/{team}/events?trace=true`): the
//! team's saved chain runs it on new instances, in one of the team's slots,
//! and the answer shows what each connector's `processEvent` did, where the
//! event was dropped, what failed, the webhook requests it would send and the
//! connectors' log lines.
//!
//! Nothing of the run is kept by the service: the webhook requests are not
//! stored or sent, the log lines are in the answer and not in the team's log,
//! metrics and quarantine do not see the calls. The connectors' own state is
//! theirs as in any run: what one writes to `meta.storage` or `meta.cache`
//! stays. Every string of the answer has the chain's secret config values
//! replaced, so a secret a connector copies into an event, a header or a log
//! line does not reach the caller.

use super::events::EventsError;
use super::state::AppState;
use super::teams::TeamChain;
use sandpipe_runtime::{MemoryLogs, StepOutcome};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// The answer of a dry run.
#[derive(Debug, Serialize)]
pub struct Trace {
    /// Each connector that ran `processEvent` on the event, in order.
    pub steps: Vec<TraceStep>,
    /// The event after the chain (with `$plugins_succeeded` / `$plugins_failed`),
    /// or null when a connector dropped it.
    pub result: Value,
    /// The connector that dropped the event, if one did.
    pub dropped_by: Option<String>,
    pub failures: Vec<TraceFailure>,
    /// The requests `composeWebhook` made, neither stored nor sent.
    pub webhooks: Vec<Value>,
    /// Events the connectors emitted with `posthog.capture`.
    pub captured: Vec<Value>,
    /// What the connectors logged, in order.
    pub logs: Vec<Value>,
}

/// One connector's `processEvent` in a [`Trace`].
#[derive(Debug, Serialize)]
pub struct TraceStep {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// `kept`, `skipped` (no `processEvent`), `dropped` or `failed`.
    pub outcome: &'static str,
    /// The event it returned (`kept` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

/// A connector call that failed in a [`Trace`].
#[derive(Debug, Serialize)]
pub struct TraceFailure {
    pub connector: String,
    /// `processEvent` or `composeWebhook`.
    pub stage: &'static str,
    pub error: String,
}

/// Runs `event` through `team`'s saved chain without keeping anything; the
/// [`Trace`] as JSON, secrets redacted.
pub async fn trace(state: AppState, team: i64, event: Value) -> Result<Value, EventsError> {
    match &event {
        Value::Array(_) => return Err(EventsError::TraceOfList),
        Value::Object(_) => {}
        _ => {
            let reason = "not a JSON object; a trace runs one event object".to_owned();
            return Err(EventsError::NotAnEvent { index: 0, reason });
        }
    }
    // Refused as a batch refuses it: a trace shows what a real run would do.
    if let Some(reason) = crate::event_rule::refusal(&event) {
        let reason = reason.to_owned();
        return Err(EventsError::NotAnEvent { index: 0, reason });
    }
    super::events::in_team_slot(state, team, move |state, chain| run(state, chain, event)).await
}

fn run(state: &AppState, chain: &Arc<TeamChain>, event: Value) -> Result<Value, EventsError> {
    let started = Instant::now();
    let logs = Arc::new(MemoryLogs::default());
    let mut running = chain.build_logging_to(&state.connectors, logs.clone())?;
    let (output, steps) = running.trace(event);
    drop(running);
    state.gates.record(chain.team, started.elapsed(), 1);
    // What the connectors wrote to meta.storage is theirs, as in any run.
    state.connectors.storage.sync()?;
    let steps: Vec<TraceStep> = steps
        .into_iter()
        .map(|step| {
            let (outcome, event) = match step.outcome {
                StepOutcome::Kept(event) => ("kept", Some(event)),
                StepOutcome::Skipped => ("skipped", None),
                StepOutcome::Dropped => ("dropped", None),
                StepOutcome::Failed => ("failed", None),
            };
            TraceStep {
                connector: step.connector,
                outcome,
                event,
            }
        })
        .collect();
    let dropped_by = steps
        .iter()
        .find(|step| step.outcome == "dropped")
        .map(|step| step.connector.clone());
    let trace = Trace {
        dropped_by,
        steps,
        result: output.event.unwrap_or(Value::Null),
        failures: output
            .failures
            .into_iter()
            .map(|failure| TraceFailure {
                connector: failure.connector,
                stage: failure.call.function(),
                error: failure.error.to_string(),
            })
            .collect(),
        webhooks: output
            .webhooks
            .into_iter()
            .map(|request| {
                Value::Object(Map::from_iter([
                    ("connector".into(), request.connector.into()),
                    ("method".into(), request.method.into()),
                    ("url".into(), request.url.into()),
                    ("headers".into(), Value::Object(request.headers)),
                    ("body".into(), request.body.into()),
                ]))
            })
            .collect(),
        captured: output.captured,
        logs: logs
            .take()
            .into_iter()
            .map(|entry| {
                Value::Object(Map::from_iter([
                    ("connector".into(), entry.connector.into()),
                    ("level".into(), entry.level.as_str().into()),
                    ("message".into(), entry.message.into()),
                ]))
            })
            .collect(),
    };
    let mut shown = serde_json::to_value(trace).expect("a trace serialises");
    redact_trace(chain, &mut shown);
    Ok(shown)
}

/// Replaces every secret in what the trace carries — events, requests,
/// errors, log lines, keys included — but not in the trace's own keys
/// (`steps`, `result`, a step's `event`, …), which are the API's, not a
/// connector's: a secret that is a common word must not rename them.
fn redact_trace(chain: &TeamChain, trace: &mut Value) {
    let Value::Object(fields) = trace else {
        return redact(chain, trace);
    };
    for (field, value) in fields.iter_mut() {
        match (field.as_str(), value) {
            ("steps" | "failures" | "webhooks" | "logs", Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::Object(parts) => {
                            parts.values_mut().for_each(|part| redact(chain, part));
                        }
                        other => redact(chain, other),
                    }
                }
            }
            (_, value) => redact(chain, value),
        }
    }
}

/// Replaces every secret in every string of `value`, keys included.
fn redact(chain: &TeamChain, value: &mut Value) {
    match value {
        Value::String(text) => *text = chain.redact(text),
        Value::Array(items) => items.iter_mut().for_each(|item| redact(chain, item)),
        Value::Object(map) => {
            let mut redacted = Map::new();
            for (key, mut item) in std::mem::take(map) {
                redact(chain, &mut item);
                let key = chain.redact(&key);
                // Two keys that read the same once redacted both stay.
                let mut shown = key.clone();
                let mut n = 1;
                while redacted.contains_key(&shown) {
                    n += 1;
                    shown = format!("{key} ({n})");
                }
                redacted.insert(shown, item);
            }
            *map = redacted;
        }
        _ => {}
    }
}
