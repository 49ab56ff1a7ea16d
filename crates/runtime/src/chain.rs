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

use crate::bundle::BundleKind;
use crate::connector::{CallRecord, Connector, Passed as PassResult, Processed};
use crate::error::CallError;
use crate::event_text::EventText;
use crate::export::{ExportBuffer, ExportSettings};
use crate::plugin::PassInput;
use crate::rewrite::{self, Plugins, RewriteError};
use crate::shared::SharedInstance;
use crate::webhook::WebhookRequest;
use sandpipe_abi::Call;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

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
    /// Whether results are held in the shared instance between connectors
    /// (until a loss no connector could be moved out for).
    holding: bool,
    /// The instance its script connectors share, at the shared-instance level.
    shared: Option<Arc<SharedInstance>>,
    /// [`Chain::process_json`]'s buffer for the input's text, kept between
    /// events (up to [`KEPT_INPUT_CAPACITY`]) so a large event does not make
    /// the allocator fetch fresh pages each time.
    input: Vec<u8>,
    /// The connectors (by label) that could not be readied for the current
    /// event (their loading or `setupPlugin` failed while it was processed):
    /// its `composeWebhook` and `onEvent` stages pass them over rather than
    /// load them again; the next event tries again.
    unready: Vec<String>,
    /// The events [`Chain::export`] holds for each connector's
    /// `exportEvents` (by position), until a batch is full or due.
    export_buffers: Vec<ExportBuffer>,
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

/// Where the event is between connectors, in [`Chain::process_all`].
enum At {
    /// JSON text: the input's, or what the connector at `.0` wrote.
    Text(Option<(usize, Vec<u8>)>),
    /// Held in the shared instance: the last pass's result when `accept`,
    /// else the event before it; the connector at `kept` returned it, and
    /// its text takes at most `budget` bytes; the last result's copy was
    /// made in world `made_for`.
    Held {
        accept: bool,
        kept: usize,
        budget: usize,
        made_for: Option<usize>,
    },
}

/// How [`Chain::process_all`] ended.
enum Flow {
    /// Every connector ran (or was skipped).
    Passed(Passed),
    /// A connector dropped the event.
    Dropped,
    /// The shared instance was lost (a trap) while it held the event.
    Lost,
}

impl Chain {
    /// A chain whose connectors each run in an instance of their own (the
    /// default isolation level).
    pub fn new(connectors: Vec<Connector>) -> Chain {
        Chain {
            connectors,
            holding: false,
            shared: None,
            input: Vec::new(),
            unready: Vec::new(),
            export_buffers: Vec::new(),
        }
    }

    /// A chain at the shared-instance level ([`crate::shared`]): its script
    /// connectors in one instance, each in its own world, an event handed
    /// between them as a copy of its objects. What it gives up is in
    /// SECURITY.md ("Isolation levels").
    pub fn shared(mut connectors: Vec<Connector>) -> Chain {
        let scripts = || {
            connectors
                .iter()
                .filter(|c| c.bundle().kind() == BundleKind::Script)
        };
        let Some(first) = scripts().next() else {
            return Chain::new(connectors);
        };
        let memory = scripts().fold(0usize, |sum, c| sum.saturating_add(c.limits().memory));
        let shared = SharedInstance::new(first.plugin().clone(), scripts().count(), memory);
        let seated = connectors
            .iter_mut()
            .filter(|c| c.bundle().kind() == BundleKind::Script);
        for (world, connector) in seated.enumerate() {
            connector.share(&shared, world);
        }
        Chain {
            connectors,
            holding: true,
            shared: Some(shared),
            input: Vec::new(),
            unready: Vec::new(),
            export_buffers: Vec::new(),
        }
    }

    /// Whether the chain hands events between its connectors inside a
    /// shared instance: at the shared-instance level, until a loss no
    /// connector could be moved out for (which the level's tests and fuzz
    /// target hold never happens).
    pub fn is_holding(&self) -> bool {
        self.holding
    }

    /// The labels of the connectors that left the chain's shared instance
    /// for an instance of their own, in chain order.
    pub fn moved_out(&self) -> impl Iterator<Item = &str> {
        self.connectors
            .iter()
            .filter(|c| c.left_shared())
            .map(Connector::label)
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
        self.unready.clear();
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
        let Some(passed) = self.process_held(input, noted.team_id.as_ref(), &mut out) else {
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
        self.unready.clear();
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
        let Flow::Passed(passed) =
            self.process_all(&text, team_id.as_ref(), steps, false, &mut out)
        else {
            // Without holding, no event is lost.
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

    /// [`Chain::process_all`], holding the event in the shared instance
    /// between its connectors when there is one; an event the shared instance
    /// lost (a connector trapped while it held it) is run through the chain
    /// again from its start, where the connector that trapped has an instance
    /// of its own by then (the connectors before it see the event twice). A
    /// loss no connector moved out for ends holding for this chain. `None`
    /// when a connector dropped the event.
    fn process_held<E>(
        &mut self,
        input: &[u8],
        team_id: Option<&Value>,
        out: &mut ChainOutput<E>,
    ) -> Option<Passed> {
        loop {
            let seated = self.seated();
            let failures = out.failures.len();
            match self.process_all(input, team_id, None, self.holding, out) {
                Flow::Passed(passed) => return Some(passed),
                Flow::Dropped => return None,
                Flow::Lost => {
                    out.failures.truncate(failures);
                    for connector in &self.connectors {
                        drop(connector.take_captured());
                    }
                    if self.seated() == seated {
                        self.holding = false;
                    }
                }
            }
        }
    }

    /// Passes over the connector at `position` of the configured chain for
    /// the events after this one, as a chain built without it would (its
    /// quarantine disabled it while a batch ran); nothing when it has none.
    pub fn pass_over(&mut self, position: usize) {
        if let Some(connector) = self
            .connectors
            .iter_mut()
            .find(|c| c.position() == position)
        {
            connector.pass_over();
        }
    }

    /// How many connectors are seated in the shared instance.
    fn seated(&self) -> usize {
        self.connectors
            .iter()
            .filter(|c| c.seat().is_some())
            .count()
    }

    /// Every connector's `processEvent` on the event whose JSON text is
    /// `input`, in order, but those the event lists as already processed
    /// (in `properties.$plugins_succeeded` or `$plugins_failed`, as an event
    /// a chain ran before does), which PostHog passes over. When `hold`, a
    /// seated connector's plain-data result stays in the shared instance for
    /// the next seated connector.
    fn process_all<E>(
        &mut self,
        input: &[u8],
        team_id: Option<&Value>,
        steps: Option<&mut Vec<Step>>,
        hold: bool,
        out: &mut ChainOutput<E>,
    ) -> Flow {
        let processed = already_processed(input);
        if processed.is_empty() {
            return self.process_each(input, team_id, steps, hold, out);
        }
        for connector in &mut self.connectors {
            connector.set_processed(processed.iter().any(|label| label == connector.label()));
        }
        let flow = self.process_each(input, team_id, steps, hold, out);
        for connector in &mut self.connectors {
            connector.set_processed(false);
        }
        flow
    }

    /// [`Chain::process_all`] once the connectors to pass over are marked.
    fn process_each<E>(
        &mut self,
        input: &[u8],
        team_id: Option<&Value>,
        mut steps: Option<&mut Vec<Step>>,
        hold: bool,
        out: &mut ChainOutput<E>,
    ) -> Flow {
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        let mut at = At::Text(None);
        let shared = self.shared.clone().filter(|_| hold);
        // The instance generation the event is held in, once it is.
        let mut holder = None;
        for position in 0..self.connectors.len() {
            // Loads the connector (once: a failure is this event's failure).
            let defines = self.connectors[position].defines(Call::ProcessEvent);
            let next = match (&shared, &defines) {
                (Some(_), Ok(true)) if self.connectors[position].seat().is_some() => {
                    Some(self.next_seat(position))
                }
                _ => None,
            };
            // A seated connector is loaded before its pass, so a failure to
            // load leaves the held event as it was.
            let unready = match (&defines, &next) {
                (Ok(true), Some(_)) => self.connectors[position].ready().err(),
                _ => None,
            };
            // `Ok(None)`: the result is held in the shared instance.
            let outcome: Result<Option<Outcome>, CallError> = match (defines, next, unready) {
                (Err(error), _, _) => Err(error),
                (Ok(false), _, _) => Ok(Some(Outcome::Skipped)),
                (Ok(true), Some(_), Some(error)) => Err(error),
                (Ok(true), Some(next), None) => {
                    // A held event this connector may not take as it is (copied
                    // within another connector's input limit) goes as text.
                    if let (
                        Some(shared),
                        &At::Held {
                            accept,
                            kept,
                            budget,
                            made_for,
                        },
                    ) = (&shared, &at)
                    {
                        let world = self.connectors[position].seat().map(|seat| seat.world());
                        let fits = accept && made_for == world
                            || self.connectors[position].limits().max_input >= budget;
                        if !fits {
                            match self.write_held(shared, accept, kept) {
                                Some(text) => at = At::Text(Some(text)),
                                None => return Flow::Lost,
                            }
                        }
                    }
                    let connector = &mut self.connectors[position];
                    let pass_input = match &at {
                        At::Text(None) => PassInput::Text(input),
                        At::Text(Some((_, text))) => PassInput::Text(text),
                        &At::Held { accept, .. } => PassInput::Held { accept },
                    };
                    let budget = next.map_or(0, |(_, max_input)| {
                        max_input.min(connector.limits().max_output)
                    });
                    let next = next.map(|(world, _)| world);
                    let result = pass_one(connector, pass_input, next, budget, team_id);
                    if let At::Held { accept, .. } = &mut at {
                        // The pass took the last result, if accepted, as its source.
                        *accept = false;
                    }
                    match result {
                        Ok(Pass::Held) => {
                            at = At::Held {
                                accept: true,
                                kept: position,
                                budget,
                                made_for: next,
                            };
                            holder = shared.as_ref().map(|s| s.generation());
                            Ok(None)
                        }
                        Ok(Pass::Outcome(outcome)) => Ok(Some(outcome)),
                        Err(error) => Err(error),
                    }
                }
                (Ok(true), None, _) => {
                    if let (Some(shared), &At::Held { accept, kept, .. }) = (&shared, &at) {
                        match self.write_held(shared, accept, kept) {
                            Some(text) => at = At::Text(Some(text)),
                            None => return Flow::Lost,
                        }
                    }
                    let text = match &at {
                        At::Text(Some((_, text))) => text,
                        _ => input,
                    };
                    process_one(&mut self.connectors[position], text, team_id).map(Some)
                }
            };
            let connector = &mut self.connectors[position];
            out.calls.extend(connector.take_last_call());
            if matches!(at, At::Held { .. }) && shared.as_ref().map(|s| s.generation()) != holder {
                return Flow::Lost;
            }
            if let Some(steps) = steps.as_deref_mut() {
                steps.push(Step {
                    connector: connector.label().to_string(),
                    outcome: match &outcome {
                        Ok(Some(Outcome::Skipped)) => StepOutcome::Skipped,
                        Ok(Some(Outcome::Dropped)) => StepOutcome::Dropped,
                        Ok(Some(Outcome::Kept(next))) => match next.to_object() {
                            Ok(object) => StepOutcome::Kept(Value::Object(object)),
                            Err(_) => StepOutcome::Failed,
                        },
                        // Tracing never holds.
                        Ok(None) | Err(_) => StepOutcome::Failed,
                    },
                });
            }
            match outcome {
                Ok(None) => succeeded.push(connector.label().to_string()),
                Ok(Some(Outcome::Skipped)) => {}
                Ok(Some(Outcome::Dropped)) => return Flow::Dropped,
                Ok(Some(Outcome::Kept(next))) => {
                    at = At::Text(Some((position, next.into_text())));
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
        let changed = match at {
            At::Text(changed) => changed,
            At::Held { accept, kept, .. } => {
                let shared = shared.expect("only a shared instance holds");
                match self.write_held(&shared, accept, kept) {
                    Some(text) => Some(text),
                    None => return Flow::Lost,
                }
            }
        };
        Flow::Passed(Passed {
            changed,
            succeeded,
            failed,
        })
    }

    /// The event held in `shared` (the last result when `accept`) as the
    /// text the connector at `kept` returned, written under its limits:
    /// `(kept, text)`, or `None` when the instance lost it.
    fn write_held(
        &self,
        shared: &SharedInstance,
        accept: bool,
        kept: usize,
    ) -> Option<(usize, Vec<u8>)> {
        let text = shared.held(accept, self.connectors[kept].limits()).ok()?;
        Some((kept, text))
    }

    /// The next connector after `position` that may process events (one
    /// not loaded yet may), when it is seated in the shared instance: its
    /// world and the most input it takes; `None` when there is none, or it
    /// runs on its own: the result then goes as text. Loads nothing, so
    /// connectors load in chain order as at the default level; a connector
    /// guessed wrongly only costs the copy made for it.
    fn next_seat(&self, position: usize) -> Option<(usize, usize)> {
        let next = self.connectors[position + 1..]
            .iter()
            .find(|connector| connector.may_define(Call::ProcessEvent))?;
        Some((next.seat()?.world(), next.limits().max_input))
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
            RewriteError::Json(e) => format!(
                "processEvent returned invalid JSON: {}",
                crate::json::explained(&e)
            ),
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
        self.unready = out
            .failures
            .iter()
            .filter(|failure| matches!(failure.error, CallError::Setup(_)))
            .map(|failure| failure.connector.clone())
            .collect();
        for connector in &mut self.connectors {
            if self.unready.iter().any(|label| label == connector.label()) {
                continue;
            }
            let outcome = compose_one(connector, event, text);
            out.calls.extend(connector.take_last_call());
            if let Err(CallError::Setup(_)) = &outcome {
                self.unready.push(connector.label().to_string());
            }
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

/// What [`Chain::export`] or [`Chain::flush_exports`] did with one
/// connector's `onEvent` call, or with one of its `exportEvents` batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// [`Call::OnEvent`] or [`Call::ExportEvents`].
    pub call: Call,
    /// The events the call was given (1 for `onEvent`).
    pub events: usize,
    /// Calls made (1 when the first succeeded).
    pub attempts: u32,
    /// The last attempt's error, when every attempt failed.
    pub error: Option<CallError>,
    /// What each attempt cost (none for an attempt that did not run, as
    /// when the connector could not be readied).
    pub calls: Vec<CallRecord>,
}

/// What one [`Chain::on_event`] or [`Chain::export_events`] call (or
/// [`Chain::run_task`]) did.
#[derive(Debug)]
pub struct OnEventCall {
    pub result: Result<(), CallError>,
    /// What the call cost and whether it succeeded, for metrics and
    /// quarantine; `None` when nothing ran (the connector defines no such
    /// function, or could not load).
    pub record: Option<CallRecord>,
    /// The events the call sent with `posthog.capture`.
    pub captured: Vec<Value>,
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

    /// The connectors that define `exportEvents`: each one's label and how
    /// its batches are made.
    pub fn batch_exporters(&mut self) -> Vec<(String, ExportSettings)> {
        let mut found = Vec::new();
        for connector in &mut self.connectors {
            if connector.defines(Call::ExportEvents).unwrap_or(false) {
                let settings = connector.export_settings().clone();
                found.push((connector.label().to_string(), settings));
            }
        }
        found
    }

    /// Makes one call of the connector labelled `label` with `make`, and
    /// takes what it cost and what it captured. `None` when the chain has no
    /// such connector.
    fn call_labelled(
        &mut self,
        label: &str,
        make: impl FnOnce(&mut Connector) -> Result<(), CallError>,
    ) -> Option<OnEventCall> {
        let connector = self.connectors.iter_mut().find(|c| c.label() == label)?;
        // A record or a capture left by an earlier call is not this call's.
        connector.take_last_call();
        let result = make(connector);
        Some(OnEventCall {
            result,
            record: connector.take_last_call(),
            captured: connector.take_captured(),
        })
    }

    /// One `onEvent` call of the connector labelled `label` on `event` (the
    /// final event's JSON text), as a durable queue makes it
    /// ([`CallError::calls_again`] says whether a failure is made again).
    /// `None` when the chain has no such connector.
    pub fn on_event(&mut self, label: &str, event: &[u8]) -> Option<OnEventCall> {
        self.call_labelled(label, |connector| connector.on_event(event))
    }

    /// One `exportEvents` call of the connector labelled `label` on a batch
    /// of `events` (final events' JSON text), as a durable queue makes it;
    /// a failure made again is made for the whole batch. `None` when the
    /// chain has no such connector.
    pub fn export_events<E: AsRef<[u8]>>(
        &mut self,
        label: &str,
        events: &[E],
    ) -> Option<OnEventCall> {
        self.call_labelled(label, |connector| connector.export_events(events))
    }

    /// Runs every connector's `onEvent` on `event`, the final event of
    /// [`Chain::process_json`] (its JSON text), at once, and adds it to the
    /// `exportEvents` buffer of every connector that defines that and does
    /// not ignore it: a buffer goes as a batch when it is full, or when its
    /// first event has waited as long as the connector's settings allow
    /// (checked at each event; [`Chain::flush_exports`] sends the rest).
    /// For each connector in chain order, its batches go before its
    /// `onEvent`, as PostHog's export upgrade made them. A call that threw a
    /// `RetryError` is made again, up to `attempts` calls in all, without
    /// waiting; any other failure ends it, as in PostHog. A connector that
    /// could not be readied for this event is passed over.
    pub fn export(&mut self, event: &[u8], attempts: u32) -> Vec<Export> {
        let mut out = Vec::new();
        self.export_buffers
            .resize_with(self.connectors.len(), ExportBuffer::default);
        for (connector, buffer) in self.connectors.iter_mut().zip(&mut self.export_buffers) {
            if self.unready.iter().any(|label| label == connector.label()) {
                continue;
            }
            if connector.defines(Call::ExportEvents).unwrap_or(false) {
                let settings = connector.export_settings();
                let mut ready: Vec<_> = buffer
                    .is_due(settings)
                    .then(|| buffer.take())
                    .flatten()
                    .into_iter()
                    .collect();
                if !settings.ignores_event(event) {
                    ready.extend(buffer.add(event.to_vec(), settings));
                }
                for batch in ready {
                    out.push(export_batch(connector, &batch, attempts));
                }
            }
            if connector.defines(Call::OnEvent).unwrap_or(false) {
                out.push(with_attempts(connector, Call::OnEvent, 1, attempts, |c| {
                    c.on_event(event)
                }));
            }
        }
        out
    }

    /// Sends what every connector's `exportEvents` buffer holds, as one
    /// batch each (the input has ended), with [`Chain::export`]'s attempts.
    pub fn flush_exports(&mut self, attempts: u32) -> Vec<Export> {
        let mut out = Vec::new();
        for (connector, buffer) in self.connectors.iter_mut().zip(&mut self.export_buffers) {
            if let Some(batch) = buffer.take() {
                out.push(export_batch(connector, &batch, attempts));
            }
        }
        out
    }
}

/// The labels an event's `properties.$plugins_succeeded` and
/// `$plugins_failed` list (strings in arrays; anything else is no label), as
/// PostHog reads them to pass over the plugins that processed it already.
/// Only an event whose text names them is read for them.
fn already_processed(input: &[u8]) -> Vec<String> {
    if memchr::memmem::find(input, b"$plugins_").is_none() {
        return Vec::new();
    }
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(input) else {
        return Vec::new();
    };
    let Some(Value::Object(properties)) = event.get("properties") else {
        return Vec::new();
    };
    ["$plugins_succeeded", "$plugins_failed"]
        .into_iter()
        .filter_map(|key| properties.get(key)?.as_array())
        .flatten()
        .filter_map(|label| Some(label.as_str()?.to_string()))
        .collect()
}

/// One `exportEvents` batch for [`Chain::export`], with its attempts.
fn export_batch(connector: &mut Connector, batch: &[Vec<u8>], attempts: u32) -> Export {
    with_attempts(connector, Call::ExportEvents, batch.len(), attempts, |c| {
        c.export_events(batch)
    })
}

/// Makes `make` until it succeeds, or fails in a way that is not made
/// again ([`CallError::calls_again`]), `attempts` times at most.
fn with_attempts(
    connector: &mut Connector,
    call: Call,
    events: usize,
    attempts: u32,
    mut make: impl FnMut(&mut Connector) -> Result<(), CallError>,
) -> Export {
    let mut made = 0;
    let mut calls = Vec::new();
    let error = loop {
        made += 1;
        let result = make(connector);
        calls.extend(connector.take_last_call());
        match result {
            Ok(()) => break None,
            Err(error) if made >= attempts.max(1) || !error.calls_again() => break Some(error),
            Err(_) => {}
        }
    };
    Export {
        connector: connector.label().to_string(),
        call,
        events,
        attempts: made,
        error,
        calls,
    }
}

/// What [`Chain::tasks`] found.
#[derive(Debug, Default, PartialEq)]
pub struct ChainTasks {
    /// Each connector's label with the tasks it defines, in chain order.
    pub found: Vec<(String, Vec<Call>)>,
    /// Connectors that may define tasks but could not load.
    pub unknown: usize,
}

/// What one [`Chain::run_task`] call did: what the task cost (`None` when
/// nothing ran), and the events it sent with `posthog.capture`, stamped as
/// [`Connector::take_captured`] stamps them.
pub type TaskCall = OnEventCall;

impl Chain {
    /// The scheduled tasks the chain's connectors define: each connector's
    /// label with the tasks (`Call::TASKS`) it defines, in chain order. Only
    /// a connector whose bundle may define one (`Bundle::may_define_tasks`)
    /// is readied to find out (a failed `setupPlugin` is logged and tried
    /// again at the task's call, as at any call). A connector that could not
    /// load defines none here, and is counted in [`ChainTasks::unknown`].
    pub fn tasks(&mut self) -> ChainTasks {
        let mut out = ChainTasks::default();
        for connector in &mut self.connectors {
            if !connector.bundle().may_define_tasks() {
                continue;
            }
            let _ = connector.ready();
            let Some(functions) = connector.known_functions() else {
                out.unknown += 1;
                continue;
            };
            let tasks: Vec<Call> = Call::TASKS
                .into_iter()
                .filter(|&task| crate::instance::provides(functions, task))
                .collect();
            if !tasks.is_empty() {
                out.found.push((connector.label().to_string(), tasks));
            }
        }
        out
    }

    /// Runs the scheduled task `task` of the connector labelled `label`
    /// under `deadline`, and takes what it captured. `None` when the chain
    /// has no such connector.
    pub fn run_task(&mut self, label: &str, task: Call, deadline: Duration) -> Option<TaskCall> {
        self.call_labelled(label, |connector| connector.run_task(task, deadline))
    }
}

impl Chain {
    /// Adds what the connectors captured during this event, in chain order.
    fn with_captured<E>(&self, mut out: ChainOutput<E>) -> ChainOutput<E> {
        out.captured.extend(self.take_captured());
        out
    }

    /// What the connectors captured since it was last taken, in chain order
    /// (after [`Chain::export`], what its `onEvent` calls captured).
    pub fn take_captured(&self) -> Vec<Value> {
        self.connectors
            .iter()
            .flat_map(Connector::take_captured)
            .collect()
    }
}

/// What a seated connector's pass gave.
enum Pass {
    /// Its result is held in the shared instance (its `team_id` checked).
    Held,
    Outcome(Outcome),
}

/// One seated connector's `processEvent` at the shared-instance level, its
/// result checked as [`process_one`] checks it.
fn pass_one(
    connector: &mut Connector,
    input: PassInput<'_>,
    next: Option<usize>,
    budget: usize,
    team_id: Option<&Value>,
) -> Result<Pass, CallError> {
    Ok(match connector.pass(input, next, budget)? {
        PassResult::Processed(Processed::Skipped) => Pass::Outcome(Outcome::Skipped),
        PassResult::Processed(Processed::Dropped) => Pass::Outcome(Outcome::Dropped),
        PassResult::Processed(Processed::Kept(next)) if next.team_id() != team_id => {
            return Err(connector.invalid(Call::ProcessEvent, TEAM_ID_CHANGED.into()));
        }
        PassResult::Processed(Processed::Kept(next)) => Pass::Outcome(Outcome::Kept(next)),
        PassResult::Held(held) if held.as_ref() != team_id => {
            return Err(connector.invalid(Call::ProcessEvent, TEAM_ID_CHANGED.into()));
        }
        PassResult::Held(_) => Pass::Held,
    })
}

/// Why a result whose `team_id` differs from the event's is refused.
const TEAM_ID_CHANGED: &str = "processEvent changed team_id, which a connector may not do";

fn process_one(
    connector: &mut Connector,
    text: &[u8],
    team_id: Option<&Value>,
) -> Result<Outcome, CallError> {
    Ok(match connector.process_event(text)? {
        Processed::Skipped => Outcome::Skipped,
        Processed::Dropped => Outcome::Dropped,
        Processed::Kept(next) if next.team_id() != team_id => {
            return Err(connector.invalid(Call::ProcessEvent, TEAM_ID_CHANGED.into()));
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
