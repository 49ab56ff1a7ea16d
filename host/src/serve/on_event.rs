//! The `onEvent` calls and `exportEvents` batches the delivery worker makes:
//! a queued call runs the team's connector with that stable id, on a pooled chain of the team's
//! current configuration and in one of the team's slots, as an events request
//! does; the call is counted in the connector metrics and fed to its
//! quarantine window as an event's calls are, and its log lines (quarantine's
//! included) and `meta.storage` writes are stored before the attempt is
//! recorded. A connector that left the chain (or is disabled, by the operator
//! or by quarantine), or whose input limit the event passes, is not called:
//! its row is dead at once. The events a call sends with `posthog.capture`
//! run through the team's chain once it has returned
//! ([`super::events::ingest_captured`]).

use super::events::{EventsError, in_team_slot, ingest_captured, log_lines, quarantine};
use super::state::AppState;
use super::teams::TeamChain;
use super::webhooks::{AttemptError, AttemptWindow, OnEventRunner};
use sandpipe_abi::Call;
use sandpipe_runtime::{CallError, Chain, OnEventCall};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Runs queued `onEvent` calls on the service's team chains.
pub struct TeamExports(pub AppState);

impl OnEventRunner for TeamExports {
    fn run(
        &self,
        team: i64,
        connector_id: String,
        event: String,
        of_captured: bool,
        queued_before_batches: bool,
        window: AttemptWindow,
    ) -> Pin<Box<dyn Future<Output = Result<(), AttemptError>> + Send>> {
        Box::pin(attempt(
            self.0.clone(),
            (team, connector_id, of_captured),
            window,
            Call::OnEvent,
            move |running, label| match queued_before_batches {
                false => running.on_event(label, event.as_bytes()),
                true => export_then_on_event(running, label, event.as_bytes()),
            },
        ))
    }

    fn export(
        &self,
        team: i64,
        connector_id: String,
        events: Vec<String>,
        of_captured: bool,
        window: AttemptWindow,
    ) -> Pin<Box<dyn Future<Output = Result<(), AttemptError>> + Send>> {
        Box::pin(attempt(
            self.0.clone(),
            (team, connector_id, of_captured),
            window,
            Call::ExportEvents,
            move |running, label| running.export_events(label, &events),
        ))
    }
}

/// What an `onEvent` row queued before `exportEvents` had batches stood for:
/// `exportEvents([event])` when the connector defines it and does not ignore
/// the event, then `onEvent(event)`; the first failure is the attempt's.
fn export_then_on_event(running: &mut Chain, label: &str, event: &[u8]) -> Option<OnEventCall> {
    let exports = running
        .batch_exporters()
        .into_iter()
        .any(|(exporter, settings)| exporter == label && !settings.ignores_event(event));
    if !exports {
        return running.on_event(label, event);
    }
    let exported = running.export_events(label, &[event])?;
    if exported.result.is_err() {
        return Some(exported);
    }
    let mut called = running.on_event(label, event)?;
    let mut captured = exported.captured;
    captured.append(&mut called.captured);
    Some(OnEventCall {
        result: called.result,
        record: called.record.or(exported.record),
        captured,
    })
}

/// One queued call (`function`, made by `make`) of the team's connector
/// `connector_id`, in one of the team's slots, unless it could only start
/// after its window; what it captured is then ingested.
async fn attempt(
    state: AppState,
    (team, connector_id, of_captured): (i64, String, bool),
    window: AttemptWindow,
    function: Call,
    make: impl FnOnce(&mut Chain, &str) -> Option<OnEventCall> + Send + 'static,
) -> Result<(), AttemptError> {
    let id = connector_id.clone();
    let ran = in_team_slot(state.clone(), team, move |state, chain| {
        // The attempt may have timed out while this waited for its thread
        // (a pool runs what it was given even then): its retry is then the
        // only call, never one beside it.
        if !window.start() {
            return Ok((Err(AttemptError::TimedOut), Vec::new()));
        }
        Ok(call(state, chain, &connector_id, function, make))
    })
    .await;
    match ran {
        Ok((outcome, captured)) => {
            // Outside the attempt, whose time is the call's: the call is
            // made either way, so a slow chain never makes it again (at
            // most once, as a capture is).
            if !captured.is_empty() {
                let function = function.function();
                tokio::spawn(async move {
                    ingest_captured(&state, team, &id, function, captured, of_captured).await;
                });
            }
            outcome
        }
        Err(EventsError::NoChain { .. }) => {
            Err(AttemptError::NoConnector("the team has no chain".into()))
        }
        Err(error) => Err(AttemptError::Call {
            function: function.function(),
            error: error.to_string(),
        }),
    }
}

/// One call (`function`, made by `make`) of the connector `id` of `chain`,
/// and the events it captured.
fn call(
    state: &AppState,
    chain: &Arc<TeamChain>,
    id: &str,
    function: Call,
    make: impl FnOnce(&mut Chain, &str) -> Option<OnEventCall>,
) -> (Result<(), AttemptError>, Vec<Value>) {
    let Some(label) = chain.label_of(id) else {
        let gone = format!("connector {id:?} is no longer in the team's chain, or is disabled");
        return (Err(AttemptError::NoConnector(gone)), Vec::new());
    };
    let mut running = match chain.checkout(&state.connectors) {
        Ok(running) => running,
        Err(error) => {
            let error = AttemptError::Call {
                function: function.function(),
                error: error.to_string(),
            };
            return (Err(error), Vec::new());
        }
    };
    let mut outcome = make(&mut running, &label);
    chain.checkin(running);
    let captured = outcome
        .as_mut()
        .map(|call| std::mem::take(&mut call.captured))
        .unwrap_or_default();
    let calls: Vec<_> = outcome
        .as_ref()
        .and_then(|call| call.record.clone())
        .into_iter()
        .collect();
    super::trace::connector_calls(&calls);
    for call in &calls {
        state.metrics.record_call(&chain.team.to_string(), call);
    }
    let mut lines = log_lines(chain);
    let kept = quarantine(state, chain, &calls)
        .map(|changes| lines.extend(changes))
        .and_then(|()| state.store.append_logs(chain.team, &lines))
        .map_err(|e| e.to_string())
        .and_then(|()| state.connectors.storage.sync().map_err(|e| e.to_string()));
    let outcome = match (outcome.map(|call| call.result), kept) {
        (None, _) => Err(AttemptError::NoConnector(format!(
            "connector {id:?} is not in the team's chain"
        ))),
        (Some(Err(error @ CallError::InputTooLarge { .. })), _) => {
            Err(AttemptError::TooLarge(error.to_string()))
        }
        (Some(Err(error)), _) if !error.calls_again() => Err(AttemptError::Failed {
            function: function.function(),
            error: chain.redact(&error.to_string()),
        }),
        (Some(Err(error)), _) => Err(AttemptError::Call {
            function: function.function(),
            error: chain.redact(&error.to_string()),
        }),
        (Some(Ok(())), Err(why)) => Err(AttemptError::Call {
            function: function.function(),
            error: format!("its log lines or storage writes could not be kept: {why}"),
        }),
        (Some(Ok(())), Ok(())) => Ok(()),
    };
    (outcome, captured)
}
