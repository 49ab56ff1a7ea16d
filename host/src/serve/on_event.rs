//! The `onEvent` calls the delivery worker makes: a queued call runs the
//! team's connector with that stable id, on a pooled chain of the team's
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
use super::webhooks::{AttemptError, OnEventRunner};
use sandpipe_runtime::CallError;
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
    ) -> Pin<Box<dyn Future<Output = Result<(), AttemptError>> + Send>> {
        let state = self.0.clone();
        Box::pin(async move {
            let id = connector_id.clone();
            let ran = in_team_slot(state.clone(), team, move |state, chain| {
                Ok(call(state, chain, &connector_id, &event))
            })
            .await;
            match ran {
                Ok((outcome, captured)) => {
                    // Outside the attempt, whose time is the call's: the
                    // call is made either way, so a slow chain never
                    // makes it again (at most once, as a capture is).
                    if !captured.is_empty() {
                        let function = sandpipe_abi::Call::OnEvent.function();
                        tokio::spawn(async move {
                            ingest_captured(&state, team, &id, function, captured, of_captured)
                                .await;
                        });
                    }
                    outcome
                }
                Err(EventsError::NoChain { .. }) => {
                    Err(AttemptError::NoConnector("the team has no chain".into()))
                }
                Err(error) => Err(AttemptError::OnEvent(error.to_string())),
            }
        })
    }
}

/// One `onEvent` call of the connector `id` of `chain` on `event`, and the
/// events it captured.
fn call(
    state: &AppState,
    chain: &Arc<TeamChain>,
    id: &str,
    event: &str,
) -> (Result<(), AttemptError>, Vec<Value>) {
    let Some(label) = chain.label_of(id) else {
        let gone = format!("connector {id:?} is no longer in the team's chain, or is disabled");
        return (Err(AttemptError::NoConnector(gone)), Vec::new());
    };
    let mut running = match chain.checkout(&state.connectors) {
        Ok(running) => running,
        Err(error) => return (Err(AttemptError::OnEvent(error.to_string())), Vec::new()),
    };
    let mut outcome = running.on_event(&label, event.as_bytes());
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
        (Some(Err(error)), _) => Err(AttemptError::OnEvent(chain.redact(&error.to_string()))),
        (Some(Ok(())), Err(why)) => Err(AttemptError::OnEvent(format!(
            "its log lines or storage writes could not be kept: {why}"
        ))),
        (Some(Ok(())), Ok(())) => Ok(()),
    };
    (outcome, captured)
}
