//! PostHog's chain rules over an ordered list of connectors.
//!
//! - Each connector's `processEvent` gets the previous one's output.
//! - A falsy result drops the event; later connectors never see it.
//! - A throw, trap, timeout or invalid result (including a changed `team_id`)
//!   does not stop the chain: the error is logged for that connector, the event
//!   continues as it was before it, and `"<name> (<position>)"` is appended to
//!   `properties.$plugins_failed`; connectors that ran fine are appended to
//!   `properties.$plugins_succeeded`. Both lists are added once any connector ran.
//! - `$snapshot` events skip the connectors entirely.
//! - `composeWebhook` of every connector runs on the final event; it cannot change it.
//! - `onEvent` is not part of [`Chain::process`]: whoever runs the chain calls
//!   it on a kept final event, at once ([`Chain::export`], `run`) or later
//!   from a durable queue ([`Chain::on_event`], `serve`).
//!
//! Each result is checked as it is read ([`EventText`]: JSON the host accepts,
//! an object or null, with `team_id` unchanged) and the text the connector
//! wrote is what the next connector is given: between connectors the event is
//! neither built nor serialised again. Only the final event becomes a `Value`.
//!
//! [`Chain::trace`] runs an event the same way and also keeps what each
//! connector's `processEvent` did ([`Step`]), for showing one event's way
//! through the chain (it builds each step's event).

use crate::connector::{CallRecord, Connector, Processed};
use crate::error::CallError;
use crate::event_text::EventText;
use crate::webhook::WebhookRequest;
use sandpipe_abi::Call;
use serde_json::{Map, Value};

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutput {
    /// The event after the chain, or `None` when a connector dropped it.
    pub event: Option<Value>,
    /// Requests composed on the final event.
    pub webhooks: Vec<WebhookRequest>,
    /// Every connector error of this event (already logged for its connector).
    pub failures: Vec<Failure>,
    /// Events connectors emitted with `posthog.capture`, in chain order.
    pub captured: Vec<Value>,
    /// Every call made for this event, with its cost.
    pub calls: Vec<CallRecord>,
}

/// One connector error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// Which function failed: `processEvent` or `composeWebhook`.
    pub call: Call,
    pub error: CallError,
}

/// What one connector's `processEvent` did to an event, in a [`Chain::trace`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `"<name> (<position>)"`.
    pub connector: String,
    pub outcome: StepOutcome,
}

/// How a connector's `processEvent` ended, in a [`Step`].
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// It returned this event, which the next connector is given.
    Kept(Value),
    /// It defines no `processEvent`: the event went on unchanged.
    Skipped,
    /// It returned nothing: the chain stops here.
    Dropped,
    /// It failed (see [`ChainOutput::failures`]): the event went on as it was before it.
    Failed,
}

/// An ordered list of connectors.
pub struct Chain {
    connectors: Vec<Connector>,
}

enum Outcome {
    Skipped,
    /// The event the connector returned, as the JSON text it wrote.
    Kept(EventText),
    Dropped,
}

impl Chain {
    pub fn new(connectors: Vec<Connector>) -> Chain {
        Chain { connectors }
    }

    /// The connectors, in order.
    pub fn connectors(&self) -> &[Connector] {
        &self.connectors
    }

    /// Runs one event through the chain.
    pub fn process(&mut self, event: Value) -> ChainOutput {
        self.run(event, None)
    }

    /// Runs one event through the chain, as [`Chain::process`] does, and
    /// returns what each connector that ran did to it, in order (up to the
    /// one that dropped it).
    pub fn trace(&mut self, event: Value) -> (ChainOutput, Vec<Step>) {
        let mut steps = Vec::new();
        let output = self.run(event, Some(&mut steps));
        (output, steps)
    }

    fn run(&mut self, event: Value, mut steps: Option<&mut Vec<Step>>) -> ChainOutput {
        let mut out = ChainOutput {
            event: None,
            webhooks: Vec::new(),
            failures: Vec::new(),
            captured: Vec::new(),
            calls: Vec::new(),
        };
        if event.get("event").and_then(Value::as_str) == Some("$snapshot") {
            out.event = Some(event);
            return out;
        }
        let mut event = event;
        let mut text = crate::json::to_vec(&event).expect("a JSON value serialises");
        let team_id = event.get("team_id").cloned();
        // The last connector whose result is the event now, if any.
        let mut changed_by = None;
        let (mut succeeded, mut failed) = (Vec::new(), Vec::new());
        for (position, connector) in self.connectors.iter_mut().enumerate() {
            let outcome = process_one(connector, &text, team_id.as_ref());
            out.calls.extend(connector.take_last_call());
            if let Some(steps) = steps.as_deref_mut() {
                steps.push(Step {
                    connector: connector.label().to_string(),
                    outcome: match &outcome {
                        Ok(Outcome::Skipped) => StepOutcome::Skipped,
                        Ok(Outcome::Dropped) => StepOutcome::Dropped,
                        Ok(Outcome::Kept(next)) => match next.to_object() {
                            Ok(object) => StepOutcome::Kept(Value::Object(object)),
                            Err(_) => StepOutcome::Failed,
                        },
                        Err(_) => StepOutcome::Failed,
                    },
                });
            }
            match outcome {
                Ok(Outcome::Skipped) => {}
                Ok(Outcome::Dropped) => return self.with_captured(out),
                Ok(Outcome::Kept(next)) => {
                    text = next.into_text();
                    changed_by = Some(position);
                    succeeded.push(connector.label().to_string());
                }
                Err(error) => {
                    failed.push(connector.label().to_string());
                    out.failures.push(Failure {
                        connector: connector.label().to_string(),
                        call: Call::ProcessEvent,
                        error,
                    });
                }
            }
        }
        if let Some(position) = changed_by {
            match serde_json::from_slice::<Value>(&text) {
                Ok(next) => event = next,
                // EventText::check accepted this text with the parser used
                // here, so this does not happen; if it did, the connector's
                // result is refused as any unreadable result is.
                Err(e) => {
                    let connector = &self.connectors[position];
                    let error = connector.invalid(
                        Call::ProcessEvent,
                        format!("processEvent returned invalid JSON: {e}"),
                    );
                    succeeded.retain(|label| label != connector.label());
                    failed.push(connector.label().to_string());
                    out.failures.push(Failure {
                        connector: connector.label().to_string(),
                        call: Call::ProcessEvent,
                        error,
                    });
                    text = crate::json::to_vec(&event).expect("a JSON value serialises");
                }
            }
        }
        // The text composeWebhook reads: serialised again only if the
        // bookkeeping changed the event and some connector composes.
        let mut composed_from = Some(text);
        if !succeeded.is_empty() || !failed.is_empty() {
            record_plugins(&mut event, succeeded, failed);
            composed_from = None;
        }
        for connector in &mut self.connectors {
            let outcome = compose_one(connector, &event, &mut composed_from);
            out.calls.extend(connector.take_last_call());
            match outcome {
                Ok(Some(request)) => out.webhooks.push(request),
                Ok(None) => {}
                Err(error) => out.failures.push(Failure {
                    connector: connector.label().to_string(),
                    call: Call::ComposeWebhook,
                    error,
                }),
            }
        }
        out.event = Some(event);
        self.with_captured(out)
    }
}

/// What [`Chain::export`] did with one connector's `onEvent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// Calls made (1 when the first succeeded).
    pub attempts: u32,
    /// The last attempt's error, when every attempt failed.
    pub error: Option<CallError>,
}

/// What one [`Chain::on_event`] call did.
#[derive(Debug)]
pub struct OnEventCall {
    pub result: Result<(), CallError>,
    /// What the call cost and whether it succeeded, for metrics and
    /// quarantine; `None` when nothing ran (the connector defines no
    /// `onEvent`, or could not load).
    pub record: Option<CallRecord>,
}

impl Chain {
    /// The labels (`"<name> (<position>)"`) of the connectors that define `onEvent`.
    pub fn exporters(&mut self) -> Vec<String> {
        let mut labels = Vec::new();
        for connector in &mut self.connectors {
            // A connector that cannot load has no onEvent to run (its load error is logged).
            if connector.defines(Call::OnEvent).unwrap_or(false) {
                labels.push(connector.label().to_string());
            }
        }
        labels
    }

    /// One `onEvent` call of the connector labelled `label` on `event` (the
    /// final event's JSON text), as a durable queue makes it: an error asks
    /// for a retry. `None` when the chain has no such connector.
    pub fn on_event(&mut self, label: &str, event: &[u8]) -> Option<OnEventCall> {
        let connector = self.connectors.iter_mut().find(|c| c.label() == label)?;
        // A record left by an earlier call is not this call's.
        connector.take_last_call();
        let result = connector.on_event(event);
        Some(OnEventCall {
            result,
            record: connector.take_last_call(),
        })
    }

    /// Runs every connector's `onEvent` on `event`, the final event of
    /// [`Chain::process`], at once: a failed call (a `RetryError` or any other
    /// error) is made again, up to `attempts` calls in all, without waiting.
    pub fn export(&mut self, event: &Value, attempts: u32) -> Vec<Export> {
        let mut text = None;
        let mut out = Vec::new();
        for connector in &mut self.connectors {
            if !connector.defines(Call::OnEvent).unwrap_or(false) {
                continue;
            }
            let text = text.get_or_insert_with(|| {
                crate::json::to_vec(event).expect("a JSON value serialises")
            });
            let mut made = 0;
            let error = loop {
                made += 1;
                match connector.on_event(text) {
                    Ok(()) => break None,
                    Err(error) if made >= attempts.max(1) => break Some(error),
                    Err(_) => {}
                }
            };
            out.push(Export {
                connector: connector.label().to_string(),
                attempts: made,
                error,
            });
        }
        out
    }
}

impl Chain {
    /// Adds what the connectors captured during this event, in chain order.
    fn with_captured(&self, mut out: ChainOutput) -> ChainOutput {
        for connector in &self.connectors {
            out.captured.extend(connector.take_captured());
        }
        out
    }
}

fn process_one(
    connector: &mut Connector,
    text: &[u8],
    team_id: Option<&Value>,
) -> Result<Outcome, CallError> {
    Ok(match connector.process_event(text)? {
        Processed::Skipped => Outcome::Skipped,
        Processed::Dropped => Outcome::Dropped,
        Processed::Kept(next) if next.team_id() != team_id => {
            return Err(connector.invalid(
                Call::ProcessEvent,
                "processEvent changed team_id, which a connector may not do".into(),
            ));
        }
        Processed::Kept(next) => Outcome::Kept(next),
    })
}

/// `text` is `event` as JSON, made on first need (only for a connector that composes).
fn compose_one(
    connector: &mut Connector,
    event: &Value,
    text: &mut Option<Vec<u8>>,
) -> Result<Option<WebhookRequest>, CallError> {
    if !connector.defines(Call::ComposeWebhook)? {
        return Ok(None);
    }
    let input =
        text.get_or_insert_with(|| crate::json::to_vec(event).expect("a JSON value serialises"));
    connector.compose_webhook(input)
}

/// Appends to `properties.$plugins_succeeded` / `$plugins_failed`, creating
/// `properties` (and the lists) when missing.
fn record_plugins(event: &mut Value, succeeded: Vec<String>, failed: Vec<String>) {
    let Value::Object(event) = event else { return };
    let properties = event
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    let Value::Object(properties) = properties else {
        unreachable!("just made an object")
    };
    for (key, names) in [
        ("$plugins_succeeded", succeeded),
        ("$plugins_failed", failed),
    ] {
        let list = properties
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Value::Array(list) = list {
            list.extend(names.into_iter().map(Value::from));
        }
    }
}
