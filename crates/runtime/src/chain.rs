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
//! neither built nor serialised again. [`Chain::process`] builds the final
//! event as a `Value`; [`Chain::process_json`] (used by `run`, `serve`, the
//! workers and the benchmark) takes the input as JSON text and gives the final event as the
//! text the host writes for it, each written in one pass by [`rewrite`] with
//! the bookkeeping spliced in, and builds a `Value` only for an object that
//! repeats a key.
//!
//! [`Chain::trace`] runs an event the same way and also keeps what each
//! connector's `processEvent` did ([`Step`]), for showing one event's way
//! through the chain (it builds each step's event).

use crate::connector::{CallRecord, Connector, Processed};
use crate::error::CallError;
use crate::event_text::EventText;
use crate::rewrite::{self, Plugins, RewriteError};
use crate::webhook::WebhookRequest;
use sandpipe_abi::Call;
use serde_json::Value;

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutput<E = Value> {
    /// The event after the chain, or `None` when a connector dropped it: a
    /// `Value`, or the JSON text the host writes for it ([`Chain::process_json`]).
    pub event: Option<E>,
    /// Requests composed on the final event.
    pub webhooks: Vec<WebhookRequest>,
    /// Every connector error of this event (already logged for its connector).
    pub failures: Vec<Failure>,
    /// Events connectors emitted with `posthog.capture`, in chain order.
    pub captured: Vec<Value>,
    /// Every call made for this event, with its cost.
    pub calls: Vec<CallRecord>,
}

impl<E> ChainOutput<E> {
    fn new() -> ChainOutput<E> {
        ChainOutput {
            event: None,
            webhooks: Vec::new(),
            failures: Vec::new(),
            captured: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// The same output with its event made into another form.
    pub fn map_event<F>(self, f: impl FnOnce(E) -> F) -> ChainOutput<F> {
        ChainOutput {
            event: self.event.map(f),
            webhooks: self.webhooks,
            failures: self.failures,
            captured: self.captured,
            calls: self.calls,
        }
    }
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
    /// [`Chain::process_json`]'s buffer for the input's text, kept between
    /// events (up to [`KEPT_INPUT_CAPACITY`]) so a large event does not make
    /// the allocator fetch fresh pages each time.
    input: Vec<u8>,
}

/// The largest input buffer a chain keeps between events.
const KEPT_INPUT_CAPACITY: usize = 1 << 20;

/// What the connectors' `processEvent` calls made of an event they kept.
struct Passed {
    /// The text the last connector that returned the event wrote, and its position.
    changed: Option<(usize, Vec<u8>)>,
    succeeded: Vec<String>,
    failed: Vec<String>,
}

/// `final_text` rewrites the host's own text of an input, which it wrote itself.
const INPUT_REWRITES: &str = "the host's own text of an event is rewritten";

enum Outcome {
    Skipped,
    /// The event the connector returned, as the JSON text it wrote.
    Kept(EventText),
    Dropped,
}

impl Chain {
    pub fn new(connectors: Vec<Connector>) -> Chain {
        Chain {
            connectors,
            input: Vec::new(),
        }
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

    /// Runs one event, given as JSON text, through the chain, as
    /// [`Chain::process`] does, and gives the event back as the JSON text the
    /// host writes for it: the same bytes `json::to_vec` writes for the
    /// `Value` [`Chain::process`] returns, made without building that
    /// `Value` ([`rewrite`]) unless the text needs one
    /// ([`RewriteError::NeedsValue`], which is never returned).
    pub fn process_json(&mut self, text: &str) -> Result<ChainOutput<Vec<u8>>, RewriteError> {
        let mut input = std::mem::take(&mut self.input);
        input.clear();
        let output = self.process_input(text, &mut input);
        if input.capacity() <= KEPT_INPUT_CAPACITY {
            self.input = input;
        }
        output
    }

    /// [`Chain::process_json`] with `input` as the buffer for the input's
    /// text (left empty when the event leaves the chain as it came in).
    fn process_input(
        &mut self,
        text: &str,
        input: &mut Vec<u8>,
    ) -> Result<ChainOutput<Vec<u8>>, RewriteError> {
        let noted = match rewrite::event_str(text, None, input) {
            Ok(noted) => noted,
            Err(RewriteError::NeedsValue) => {
                let output = self.process(rewrite::parse_event(text.as_bytes())?);
                return Ok(output.map_event(|event| {
                    crate::json::to_vec(&event).expect("a JSON value serialises")
                }));
            }
            Err(error) => return Err(error),
        };
        let mut out = ChainOutput::new();
        if noted.snapshot {
            out.event = Some(std::mem::take(input));
            return Ok(out);
        }
        let Some(passed) = self.process_all(input, noted.team_id.as_ref(), None, &mut out) else {
            return Ok(self.with_captured(out));
        };
        let Passed {
            changed,
            mut succeeded,
            mut failed,
        } = passed;
        let ran = !succeeded.is_empty() || !failed.is_empty();
        let text = match changed {
            Some((position, changed)) => {
                let plugins = ran.then_some(Plugins {
                    succeeded: &succeeded,
                    failed: &failed,
                });
                match final_text(&changed, plugins) {
                    Ok(text) => text,
                    Err(error) => {
                        self.refuse_final(position, error, &mut succeeded, &mut failed, &mut out);
                        let plugins = Plugins {
                            succeeded: &succeeded,
                            failed: &failed,
                        };
                        final_text(input, Some(plugins)).expect(INPUT_REWRITES)
                    }
                }
            }
            None if ran => {
                let plugins = Plugins {
                    succeeded: &succeeded,
                    failed: &failed,
                };
                final_text(input, Some(plugins)).expect(INPUT_REWRITES)
            }
            None => std::mem::take(input),
        };
        let mut text = Some(text);
        self.compose_all(None, &mut text, &mut out);
        out.event = text;
        Ok(self.with_captured(out))
    }

    fn run(&mut self, event: Value, steps: Option<&mut Vec<Step>>) -> ChainOutput {
        let mut out = ChainOutput::new();
        if event.get("event").and_then(Value::as_str) == Some("$snapshot") {
            out.event = Some(event);
            return out;
        }
        let mut event = event;
        let text = crate::json::to_vec(&event).expect("a JSON value serialises");
        // As the connectors read it: `2.0` is the `2` they are given and return.
        // (A `team_id` nested deeper than serde_json reads, which only its
        // raw-value token can build, is kept as it is.)
        let team_id = event.get("team_id").map(|id| {
            crate::json::to_vec(id)
                .ok()
                .and_then(|text| serde_json::from_slice(&text).ok())
                .unwrap_or_else(|| id.clone())
        });
        let Some(passed) = self.process_all(&text, team_id.as_ref(), steps, &mut out) else {
            return self.with_captured(out);
        };
        let Passed {
            changed,
            mut succeeded,
            mut failed,
        } = passed;
        let mut text = Some(text);
        if let Some((position, changed)) = changed {
            match serde_json::from_slice::<Value>(&changed) {
                Ok(next) => {
                    event = next;
                    text = Some(changed);
                }
                // EventText::check accepted this text with the parser used
                // here, so this does not happen; if it did, the connector's
                // result is refused as any unreadable result is.
                Err(e) => self.refuse_final(
                    position,
                    RewriteError::Json(e),
                    &mut succeeded,
                    &mut failed,
                    &mut out,
                ),
            }
        }
        // The text composeWebhook reads: serialised again only if the
        // bookkeeping changed the event and some connector composes.
        if !succeeded.is_empty() || !failed.is_empty() {
            Plugins {
                succeeded: &succeeded,
                failed: &failed,
            }
            .add_to(&mut event);
            text = None;
        }
        self.compose_all(Some(&event), &mut text, &mut out);
        out.event = Some(event);
        self.with_captured(out)
    }

    /// Every connector's `processEvent` on the event whose JSON text is
    /// `input`, in order; `None` when one dropped it.
    fn process_all<E>(
        &mut self,
        input: &[u8],
        team_id: Option<&Value>,
        mut steps: Option<&mut Vec<Step>>,
        out: &mut ChainOutput<E>,
    ) -> Option<Passed> {
        let mut passed = Passed {
            changed: None,
            succeeded: Vec::new(),
            failed: Vec::new(),
        };
        for (position, connector) in self.connectors.iter_mut().enumerate() {
            let text = passed.changed.as_ref().map_or(input, |(_, text)| text);
            let outcome = process_one(connector, text, team_id);
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
                Ok(Outcome::Dropped) => return None,
                Ok(Outcome::Kept(next)) => {
                    passed.changed = Some((position, next.into_text()));
                    passed.succeeded.push(connector.label().to_string());
                }
                Err(error) => {
                    passed.failed.push(connector.label().to_string());
                    out.failures.push(Failure {
                        connector: connector.label().to_string(),
                        call: Call::ProcessEvent,
                        error,
                    });
                }
            }
        }
        Some(passed)
    }

    /// Refuses the final result of the connector at `position`, which could
    /// not be read as an event after all: it counts as failed, and the event
    /// is the one before it.
    fn refuse_final<E>(
        &self,
        position: usize,
        error: RewriteError,
        succeeded: &mut Vec<String>,
        failed: &mut Vec<String>,
        out: &mut ChainOutput<E>,
    ) {
        let connector = &self.connectors[position];
        let reason = match error {
            RewriteError::Json(e) => format!("processEvent returned invalid JSON: {e}"),
            other => format!("processEvent returned an unreadable event: {other}"),
        };
        let error = connector.invalid(Call::ProcessEvent, reason);
        succeeded.retain(|label| label != connector.label());
        failed.push(connector.label().to_string());
        out.failures.push(Failure {
            connector: connector.label().to_string(),
            call: Call::ProcessEvent,
            error,
        });
    }

    /// Every connector's `composeWebhook` on the final event: its JSON text,
    /// made from `event` on first need when not given.
    fn compose_all<E>(
        &mut self,
        event: Option<&Value>,
        text: &mut Option<Vec<u8>>,
        out: &mut ChainOutput<E>,
    ) {
        for connector in &mut self.connectors {
            let outcome = compose_one(connector, event, text);
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
    /// [`Chain::process_json`] (its JSON text), at once: a failed call (a
    /// `RetryError` or any other error) is made again, up to `attempts` calls
    /// in all, without waiting.
    pub fn export(&mut self, event: &[u8], attempts: u32) -> Vec<Export> {
        let mut out = Vec::new();
        for connector in &mut self.connectors {
            if !connector.defines(Call::OnEvent).unwrap_or(false) {
                continue;
            }
            let mut made = 0;
            let error = loop {
                made += 1;
                match connector.on_event(event) {
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
    fn with_captured<E>(&self, mut out: ChainOutput<E>) -> ChainOutput<E> {
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

/// `text` is `event` as JSON, made on first need (only for a connector that
/// composes); one of the two is given.
fn compose_one(
    connector: &mut Connector,
    event: Option<&Value>,
    text: &mut Option<Vec<u8>>,
) -> Result<Option<WebhookRequest>, CallError> {
    if !connector.defines(Call::ComposeWebhook)? {
        return Ok(None);
    }
    let input = text.get_or_insert_with(|| {
        let event = event.expect("the event or its text is given");
        crate::json::to_vec(event).expect("a JSON value serialises")
    });
    connector.compose_webhook(input)
}

/// The host's text of the final event whose JSON text is `text`, with the
/// bookkeeping when given; built as a `Value` when an object repeats a key.
fn final_text(text: &[u8], plugins: Option<Plugins<'_>>) -> Result<Vec<u8>, RewriteError> {
    let mut out = Vec::with_capacity(text.len() + 64);
    match rewrite::event(text, plugins, &mut out) {
        Ok(_) => Ok(out),
        Err(RewriteError::NeedsValue) => rewrite::through_value(text, plugins),
        Err(error) => Err(error),
    }
}
