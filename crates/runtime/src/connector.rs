//! A configured connector: its bundle, its resolved config and limits, and the
//! instance that serves its calls.
//!
//! The instance is made on first use (top level, then `setupPlugin(meta)`),
//! kept across calls so `meta.global` and top-level state persist, and dropped
//! after any error that poisons it; the next call makes a fresh one (and runs
//! `setupPlugin` again). `teardownPlugin` runs when the connector is dropped.
//! At the shared-instance level ([`crate::shared`]) the connector is a world
//! of its chain's instance instead, until its loading, setup or a call traps
//! or its loading or setup throws: then it moves to an instance of its own.

use crate::bundle::{Bundle, BundleKind};
use crate::error::CallError;
use crate::event_text::EventText;
use crate::export::ExportSettings;
use crate::instance::Instance;
use crate::limits::Limits;
use crate::log::{LogEntry, LogSink, StderrLogs};
use crate::plugin::{PassInput, PassOutput, Plugin};
use crate::services::fetch::FetchPolicy;
use crate::services::geoip::GeoIpDatabase;
use crate::services::storage::Storage;
use crate::services::{ConnectorCache, ConnectorServices, ServiceConfig};
use crate::shared::{Occupant, Seat};
use crate::webhook::WebhookRequest;
use sandpipe_abi::{Call, LogLevel};
use sandpipe_manifest::ResolvedConfig;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// `"<name> (<position>)"`: how PostHog names a connector of a chain in
/// `$plugins_failed`, and how logs and metrics name it.
pub fn label(name: &str, position: usize) -> String {
    format!("{name} ({position})")
}

/// What a configured connector is given besides its bundle and config: the
/// operator's limits, where its logs go, and its host services.
#[derive(Clone)]
pub struct ConnectorOptions {
    /// Checked against the engine when the connector is made.
    pub limits: Limits,
    pub logs: Arc<dyn LogSink>,
    /// `meta.storage`: the backend and this connector's scope in it (one scope
    /// per connector config). Without it, `meta.storage` is refused.
    pub storage: Option<(Arc<dyn Storage>, String)>,
    /// `meta.cache`, when it is shared with other instances of the same
    /// configured connector; without it the connector gets its own.
    pub cache: Option<ConnectorCache>,
    /// `meta.geoip`'s database; without it, lookups are refused.
    pub geoip: Option<Arc<GeoIpDatabase>>,
    /// What `fetch` may reach (by default: nothing).
    pub fetch: FetchPolicy,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions {
            limits: Limits::default(),
            logs: Arc::new(StderrLogs),
            storage: None,
            cache: None,
            geoip: None,
            fetch: FetchPolicy::default(),
        }
    }
}

/// What `processEvent` did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// The connector defines no `processEvent`: the event passes unchanged.
    Skipped,
    /// It returned an event: the JSON text it wrote, checked.
    Kept(EventText),
    /// It returned a falsy value.
    Dropped,
}

/// Where a connector runs.
enum Home {
    /// An instance of its own (the default level), once made.
    Own(Option<Box<Instance>>),
    /// A world of its chain's shared instance.
    Shared(Seat),
}

/// What a connector's `processEvent` gave at the shared-instance level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Passed {
    /// As [`Connector::process_event`] gives it.
    Processed(Processed),
    /// It returned plain data with this `team_id` (`None`: it has none),
    /// held in the shared instance, copied into the next connector's world.
    Held(Option<Value>),
}

/// One connector of a chain.
pub struct Connector {
    plugin: Arc<Plugin>,
    bundle: Arc<Bundle>,
    position: usize,
    label: String,
    setup_input: Vec<u8>,
    limits: Limits,
    logs: Arc<dyn LogSink>,
    home: Home,
    /// The special functions, known once an instance has loaded.
    functions: Option<Vec<String>>,
    /// The last call's record, until the chain takes it.
    last_call: Option<CallRecord>,
    /// Cache, storage, geoip and fetch, shared by the connector's successive instances.
    services: Arc<ConnectorServices>,
    /// Whether it left its chain's shared instance for an instance of its own.
    left_shared: bool,
    /// How its `exportEvents` batches are made (from its config).
    export: ExportSettings,
    /// Passed over by its chain from now on ([`Connector::pass_over`]).
    passed_over: bool,
    /// Its `processEvent` passed over for the current event, which lists it
    /// as already processed ([`Connector::set_processed`]).
    processed: bool,
}

impl Connector {
    /// Made by [`Runtime::connector`](crate::Runtime::connector), which checks
    /// the limits first.
    pub(crate) fn new(
        plugin: Arc<Plugin>,
        bundle: Arc<Bundle>,
        position: usize,
        config: ResolvedConfig,
        options: ConnectorOptions,
    ) -> Connector {
        let label = label(&bundle.manifest().name, position);
        // A script bundle gets `attachments` only when there are some: the
        // plugin's world reads its absence as none, and a new instance's setup
        // then parses and walks less. A standalone bundle always gets it.
        let export = ExportSettings::from_config(&config.config).within(options.limits.max_input);
        let mut setup = serde_json::Map::new();
        setup.insert("config".into(), config.config.into());
        if !config.attachments.is_empty() || bundle.kind() == BundleKind::Standalone {
            setup.insert("attachments".into(), config.attachments.into());
        }
        setup.insert(
            "deadline_ms".into(),
            u64::try_from(options.limits.deadline.as_millis())
                .unwrap_or(u64::MAX)
                .into(),
        );
        let setup_input = crate::json::to_vec(&setup).expect("config values serialise");
        let services = ConnectorServices::new(ServiceConfig {
            cache: options.cache.unwrap_or_default(),
            storage: options.storage,
            storage_quota: (&options.limits).into(),
            geoip: options.geoip,
            fetch: options.fetch,
        });
        Connector {
            plugin,
            bundle,
            position,
            label,
            setup_input,
            limits: options.limits,
            logs: options.logs,
            home: Home::Own(None),
            functions: None,
            last_call: None,
            services: Arc::new(services),
            left_shared: false,
            export,
            passed_over: false,
            processed: false,
        }
    }

    /// Whether the current event already lists it in `$plugins_succeeded`
    /// or `$plugins_failed`: PostHog does not run a plugin's `processEvent`
    /// again on such an event (its other functions still run).
    pub(crate) fn set_processed(&mut self, processed: bool) {
        self.processed = processed;
    }

    /// Has its chain pass it over from now on, as a chain without it would
    /// (quarantine disabled it part-way through a batch): it defines nothing,
    /// so nothing of it is called and it is listed nowhere.
    pub(crate) fn pass_over(&mut self) {
        self.passed_over = true;
    }

    /// Its place in the configured chain (its label's number).
    pub fn position(&self) -> usize {
        self.position
    }

    /// `"<name> (<position>)"`, as PostHog lists connectors in `$plugins_failed`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The connector's bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The plugin it runs on.
    pub(crate) fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the connector can run `call`: it defines the function, or the
    /// one that stands in for it (instantiating it if needed).
    pub fn defines(&mut self, call: Call) -> Result<bool, CallError> {
        if self.passes_over(call) {
            return Ok(false);
        }
        Ok(crate::instance::provides(self.functions()?, call))
    }

    /// Makes or loads the connector's instance if it has none (or, seated,
    /// is not loaded in the shared instance's current generation).
    pub(crate) fn ready(&mut self) -> Result<(), CallError> {
        self.instance()
    }

    /// Whether the connector defines the function `call` runs, as far as is
    /// known without loading it (`true` before it has loaded).
    pub(crate) fn may_define(&self, call: Call) -> bool {
        !self.passes_over(call)
            && self
                .functions
                .as_deref()
                .is_none_or(|functions| crate::instance::provides(functions, call))
    }

    /// Whether its chain passes over its function `call` now, whatever it
    /// defines ([`Connector::pass_over`], [`Connector::set_processed`]).
    fn passes_over(&self, call: Call) -> bool {
        self.passed_over || self.processed && call == Call::ProcessEvent
    }

    /// The special functions the connector defines, if it has loaded (its
    /// `setupPlugin` may have failed since).
    pub(crate) fn known_functions(&self) -> Option<&[String]> {
        self.functions.as_deref()
    }

    /// The special functions the connector defines (instantiating it if needed).
    pub fn functions(&mut self) -> Result<&[String], CallError> {
        if self.functions.is_none() {
            self.instance()?;
        }
        Ok(self.functions.as_deref().unwrap_or_default())
    }

    /// Runs `processEvent` on `event` (its JSON text). The result must be an
    /// object or null; anything else is an error, logged for this connector.
    pub fn process_event(&mut self, event: &[u8]) -> Result<Processed, CallError> {
        if !self.defines(Call::ProcessEvent)? {
            return Ok(Processed::Skipped);
        }
        let output = self.call(Call::ProcessEvent, event)?;
        self.processed(output)
    }

    /// A `processEvent` result, checked.
    fn processed(&self, output: Vec<u8>) -> Result<Processed, CallError> {
        let what = Call::ProcessEvent.function();
        match EventText::check(output) {
            Ok(Some(event)) => Ok(Processed::Kept(event)),
            Ok(None) => Ok(Processed::Dropped),
            Err(None) => Err(self.invalid(
                Call::ProcessEvent,
                format!("{what} returned something other than an object or null"),
            )),
            Err(Some(e)) => Err(self.invalid(
                Call::ProcessEvent,
                format!(
                    "{what} returned invalid JSON: {}",
                    crate::json::explained(&e)
                ),
            )),
        }
    }

    /// Runs `composeWebhook` on `event` (its JSON text): the request it
    /// returned, checked and with defaults, or `None` when it returned null or
    /// is not defined. An invalid request is an error, logged for this connector.
    pub fn compose_webhook(&mut self, event: &[u8]) -> Result<Option<WebhookRequest>, CallError> {
        if !self.defines(Call::ComposeWebhook)? {
            return Ok(None);
        }
        let output = self.call(Call::ComposeWebhook, event)?;
        let Some(request) = self.result_object(Call::ComposeWebhook, &output)? else {
            return Ok(None);
        };
        WebhookRequest::from_result(&self.label, request)
            .map(Some)
            .map_err(|reason| self.invalid(Call::ComposeWebhook, reason.to_string()))
    }

    /// Runs `onEvent` on `event` (its JSON text; the connector sees PostHog's
    /// reduced copy of it) and ignores what it returns. A throw (a
    /// `RetryError` included) or a trap is an error, logged for this connector
    /// ([`CallError::asks_for_retry`] says whether to call it again).
    /// Nothing happens when the connector defines no `onEvent`.
    pub fn on_event(&mut self, event: &[u8]) -> Result<(), CallError> {
        if !self.defines(Call::OnEvent)? {
            return Ok(());
        }
        self.call(Call::OnEvent, event).map(drop)
    }

    /// How its `exportEvents` batches are made, from its config.
    pub fn export_settings(&self) -> &ExportSettings {
        &self.export
    }

    /// Runs `exportEvents` on `events` (each its JSON text; the connector
    /// sees PostHog's reduced copy of each, in one array) and ignores what it
    /// returns. A throw (a `RetryError` included) or a trap is an error for
    /// the whole batch, logged for this connector. Nothing happens when the
    /// connector defines no `exportEvents` or `events` is empty.
    pub fn export_events<E: AsRef<[u8]>>(&mut self, events: &[E]) -> Result<(), CallError> {
        if events.is_empty() || !self.defines(Call::ExportEvents)? {
            return Ok(());
        }
        let size = events.iter().map(|e| e.as_ref().len() + 1).sum::<usize>() + 1;
        let mut input = Vec::with_capacity(size);
        input.push(b'[');
        for (index, event) in events.iter().enumerate() {
            if index > 0 {
                input.push(b',');
            }
            input.extend_from_slice(event.as_ref());
        }
        input.push(b']');
        self.call(Call::ExportEvents, &input).map(drop)
    }

    /// Runs the scheduled task `task` (`runEveryMinute`, …) with `deadline`
    /// in place of the connector's own deadline for this call only (fuel,
    /// memory and logs as for any call), and ignores what it returns. An
    /// error is logged for this connector. Nothing happens when the
    /// connector does not define the task.
    pub fn run_task(&mut self, task: Call, deadline: Duration) -> Result<(), CallError> {
        debug_assert!(task.is_task(), "{task:?} is not a scheduled task");
        if !self.defines(task)? {
            return Ok(());
        }
        let input = format!(r#"{{"deadline_ms":{}}}"#, deadline.as_millis());
        // Readied first, under the connector's own limits (setup included).
        self.instance()?;
        let own = std::mem::replace(
            &mut self.limits.deadline,
            deadline.min(Duration::from_millis(crate::limits::MAX_DEADLINE_MS)),
        );
        let result = self.call(task, input.as_bytes()).map(drop);
        self.limits.deadline = own;
        result
    }

    /// Parses a call's JSON result: `None` for `null`, the object otherwise.
    fn result_object(
        &self,
        call: Call,
        bytes: &[u8],
    ) -> Result<Option<Map<String, Value>>, CallError> {
        let what = call.function();
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Null) => Ok(None),
            Ok(Value::Object(object)) => Ok(Some(object)),
            Ok(_) => Err(self.invalid(
                call,
                format!("{what} returned something other than an object or null"),
            )),
            Err(e) => Err(self.invalid(
                call,
                format!(
                    "{what} returned invalid JSON: {}",
                    crate::json::explained(&e)
                ),
            )),
        }
    }

    /// An [`CallError::InvalidResult`] of `call`, logged for this connector.
    pub fn invalid(&self, call: Call, reason: String) -> CallError {
        let error = CallError::InvalidResult(reason);
        self.report(call, &error);
        error
    }

    /// Whether an instance is alive now.
    pub fn is_live(&self) -> bool {
        match &self.home {
            Home::Own(instance) => instance.is_some(),
            Home::Shared(seat) => seat.is_live(),
        }
    }

    /// Seats the connector in world `world` of a shared instance (before
    /// its first use; a standalone bundle keeps its own instance).
    pub(crate) fn share(&mut self, shared: &Arc<crate::shared::SharedInstance>, world: usize) {
        if self.bundle.kind() == BundleKind::Script && matches!(self.home, Home::Own(None)) {
            self.home = Home::Shared(shared.seat(world));
        }
    }

    /// Drops its instance (the next call makes one); a connector seated in
    /// a shared instance leaves it for an instance of its own, for good.
    fn drop_instance(&mut self) {
        if matches!(self.home, Home::Shared(_)) {
            self.left_shared = true;
        }
        self.home = Home::Own(None);
    }

    /// Whether it was seated in its chain's shared instance and moved to an
    /// instance of its own (its loading, setup or a call failed there).
    pub fn left_shared(&self) -> bool {
        self.left_shared
    }

    /// Its world in a shared instance, while it has one.
    pub(crate) fn seat(&self) -> Option<&Seat> {
        match &self.home {
            Home::Shared(seat) => Some(seat),
            Home::Own(_) => None,
        }
    }

    /// `processEvent` at the shared-instance level: on `input`, or on the
    /// event held from the last pass; a plain-data result whose text would
    /// take at most `budget` bytes is held and copied into world `next`, the
    /// next connector's, when there is one. Only for a connector with a seat
    /// that defines `processEvent`.
    pub(crate) fn pass(
        &mut self,
        input: PassInput<'_>,
        next: Option<usize>,
        budget: usize,
    ) -> Result<Passed, CallError> {
        if self.seat().is_none() {
            return Err(CallError::InvalidResult(
                "a connector on its own instance was passed a held event".into(),
            ));
        }
        let started = Instant::now();
        let (result, fuel) = self.call_with(Call::ProcessEvent, |guest, limits| {
            guest.pass(input, next, budget, limits)
        });
        self.keep_record(Call::ProcessEvent, started, fuel, &result);
        match result? {
            PassOutput::Text(output) => self.processed(output).map(Passed::Processed),
            PassOutput::Held { team_id } if team_id.is_empty() => Ok(Passed::Held(None)),
            PassOutput::Held { team_id } => match serde_json::from_slice(&team_id) {
                Ok(team_id) => Ok(Passed::Held(Some(team_id))),
                Err(e) => Err(self.invalid(
                    Call::ProcessEvent,
                    format!(
                        "processEvent returned invalid JSON: {}",
                        crate::json::explained(&e)
                    ),
                )),
            },
        }
    }

    fn log(&self, level: LogLevel, message: String) {
        self.logs.record(LogEntry {
            connector: self.label.clone(),
            level,
            message,
            time: SystemTime::now(),
        });
    }

    fn forward(&self, (lines, dropped): (Vec<crate::host::ConsoleLine>, usize)) {
        for line in lines {
            self.logs.record(LogEntry {
                connector: self.label.clone(),
                level: line.level,
                message: line.message,
                time: line.time,
            });
        }
        if dropped > 0 {
            self.log(
                LogLevel::Warn,
                format!(
                    "{dropped} console lines dropped (over {} lines or {} KiB per call)",
                    self.limits.max_log_lines,
                    crate::limits::LOG_BYTES_PER_CALL / 1024
                ),
            );
        }
    }

    /// Events `posthog.capture` produced since the last time they were taken,
    /// each `{event, distinct_id, properties}` with `properties.$sandpipe_connector`
    /// naming this connector. As PostHog's `capture`: the event's `distinct_id`
    /// is `properties.distinct_id` (which stays), and a `properties.timestamp`
    /// moves out to be the event's `timestamp`.
    pub fn take_captured(&self) -> Vec<serde_json::Value> {
        let captured = self.services.take_captured();
        if captured.is_empty() {
            return captured;
        }
        let origin = serde_json::Value::from(self.label.clone());
        let fallback_id = format!("connector-{}", self.bundle.manifest().name);
        captured
            .into_iter()
            .map(|mut captured| {
                let properties = captured["properties"]
                    .as_object_mut()
                    .expect("captured properties are an object");
                let distinct_id = properties
                    .get("distinct_id")
                    .cloned()
                    .unwrap_or_else(|| fallback_id.clone().into());
                let timestamp = properties.shift_remove("timestamp");
                properties.insert("$sandpipe_connector".into(), origin.clone());
                captured["distinct_id"] = distinct_id;
                if let Some(timestamp) = timestamp {
                    captured["timestamp"] = timestamp;
                }
                captured
            })
            .collect()
    }

    /// Logs an error of `call` for this connector.
    pub fn report(&self, call: Call, error: &CallError) {
        self.log(
            LogLevel::Error,
            format!("{}: {}", call.function(), describe(error)),
        );
    }

    /// Makes the connector's instance (and sets it up) if there is none, or
    /// loads it into its world of the shared instance.
    fn instance(&mut self) -> Result<(), CallError> {
        if let Home::Shared(seat) = &mut self.home {
            let occupant = Occupant {
                bundle: &self.bundle,
                limits: &self.limits,
                services: &self.services,
                setup_input: &self.setup_input,
            };
            let loaded = match seat.load(&occupant) {
                Ok(None) => return Ok(()),
                Ok(Some(loaded)) => loaded,
                Err(error) => {
                    self.drop_instance();
                    return Err(self.failed_loading(error));
                }
            };
            self.forward(loaded.console);
            let functions = serde_json::from_slice::<Vec<String>>(&loaded.names).map_err(|e| {
                CallError::InvalidResult(format!("plugin returned unreadable function names: {e}"))
            });
            let functions = match functions {
                Ok(functions) => functions,
                Err(error) => {
                    self.drop_instance();
                    return Err(self.failed_loading(error));
                }
            };
            self.functions = Some(functions);
            if let Err(error) = loaded.setup {
                self.drop_instance();
                return Err(self.failed_setup(error));
            }
            return Ok(());
        }
        let Home::Own(None) = &self.home else {
            return Ok(());
        };
        let made = Instance::new(
            &self.plugin,
            &self.bundle,
            &self.limits,
            self.services.clone(),
        );
        let mut instance = match made {
            Ok(instance) => instance,
            Err(error) => return Err(self.failed_loading(error)),
        };
        self.functions = Some(instance.functions().to_vec());
        let setup = instance.call(Call::Setup, &self.setup_input, &self.limits);
        self.forward(instance.take_console());
        if let Err(error) = setup {
            return Err(self.failed_setup(error));
        }
        self.home = Home::Own(Some(Box::new(instance)));
        Ok(())
    }

    /// A loading error, logged.
    fn failed_loading(&self, error: CallError) -> CallError {
        self.failed("loading", error)
    }

    /// A `setupPlugin` error, logged.
    fn failed_setup(&self, error: CallError) -> CallError {
        self.failed("setupPlugin", error)
    }

    /// `error` of readying the connector's instance (`what` failed), logged.
    fn failed(&self, what: &str, error: CallError) -> CallError {
        self.log(
            LogLevel::Error,
            format!("{what} failed: {}", describe(&error)),
        );
        CallError::Setup(Box::new(error))
    }

    /// Calls into the connector. Errors are logged for this connector; an
    /// error that poisons the instance drops it.
    pub(crate) fn call(&mut self, call: Call, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let (result, fuel) = self.call_instance(call, input);
        self.keep_record(call, started, fuel, &result);
        result
    }

    /// Keeps the record of a call for metrics and quarantine. An input
    /// refused for its size was never called, and says nothing of the
    /// connector's health: it leaves no record (the event's failure and the
    /// log line still name it).
    fn keep_record<T>(
        &mut self,
        call: Call,
        started: Instant,
        fuel: u64,
        result: &Result<T, CallError>,
    ) {
        self.last_call = match result {
            Err(CallError::InputTooLarge { .. }) => None,
            _ => Some(CallRecord {
                connector: self.label.clone(),
                position: self.position,
                call,
                duration: started.elapsed(),
                fuel,
                ok: result.is_ok(),
            }),
        };
    }

    /// `call` on `input`, its result text returned as the guest wrote it,
    /// unchecked: only for tests of the boundary itself.
    #[cfg(feature = "raw-calls")]
    pub fn call_raw(&mut self, call: Call, input: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call(call, input)
    }

    /// Takes the record of the last call (for metrics and quarantine).
    pub fn take_last_call(&mut self) -> Option<CallRecord> {
        self.last_call.take()
    }

    fn call_instance(&mut self, call: Call, input: &[u8]) -> (Result<Vec<u8>, CallError>, u64) {
        self.call_with(call, |guest, limits| guest.call(call, input, limits))
    }

    /// Runs `f` on the connector's instance (made or loaded first) for
    /// `call`; its result and the fuel it used. Errors are logged; one that
    /// poisons the instance drops it (at the shared level, the connector
    /// then leaves the shared instance).
    fn call_with<T>(
        &mut self,
        call: Call,
        f: impl FnOnce(&mut crate::plugin::Guest, &Limits) -> Result<T, CallError>,
    ) -> (Result<T, CallError>, u64) {
        if let Err(error) = self.instance() {
            return (Err(error), 0);
        }
        let (result, fuel, console) = match &mut self.home {
            Home::Shared(seat) => {
                let occupant = Occupant {
                    bundle: &self.bundle,
                    limits: &self.limits,
                    services: &self.services,
                    setup_input: &self.setup_input,
                };
                seat.run(&occupant, f)
            }
            Home::Own(slot) => {
                let instance = slot.as_mut().expect("instance() made one");
                let result = instance.with_guest(|guest| f(guest, &self.limits));
                let fuel = instance.fuel_used(&self.limits);
                (result, fuel, instance.take_console())
            }
        };
        self.forward(console);
        if let Err(error) = &result {
            let seated = self.seat().is_some();
            if seated && error.poisons_instance() {
                // Said apart from the same error on the connector's own
                // instance, which a held event's second run may log.
                self.log(
                    LogLevel::Error,
                    format!(
                        "{}: {} (in the chain's shared instance, which starts again; this connector moves to an instance of its own)",
                        call.function(),
                        describe(error)
                    ),
                );
            } else {
                self.report(call, error);
            }
            if error.poisons_instance() {
                self.drop_instance();
            }
        }
        (result, fuel)
    }
}

/// What one call into a connector cost, and whether it succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// `"<name> (<position>)"`.
    pub connector: String,
    /// The connector's position in its chain.
    pub position: usize,
    /// Which function ran: `processEvent`, `composeWebhook`, …
    pub call: Call,
    /// Wall time, instance set-up included when the call made one.
    pub duration: Duration,
    /// Fuel the call used.
    pub fuel: u64,
    pub ok: bool,
}

/// An error with its JS stack, when it has one.
fn describe(error: &CallError) -> String {
    let thrown = match error {
        CallError::Threw(js) => Some(js),
        CallError::Setup(inner) => match inner.as_ref() {
            CallError::Threw(js) => Some(js),
            _ => None,
        },
        _ => None,
    };
    match thrown {
        Some(js) if !js.stack.trim().is_empty() => format!("{error}\n{}", js.stack.trim_end()),
        _ => error.to_string(),
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let defines_teardown = self
            .functions
            .as_deref()
            .is_some_and(|functions| crate::instance::provides(functions, Call::Teardown));
        if !defines_teardown {
            return;
        }
        if self.is_live() {
            let _ = self.call(Call::Teardown, b"null");
        } else if self.seat().is_some_and(Seat::was_loaded) {
            // Its state went with the shared instance (a connector's trap, in
            // teardownPlugin or before, ended it): said, not silently skipped.
            self.log(
                LogLevel::Warn,
                format!(
                    "{}: not run: the chain's shared instance that held this connector's state ended before it (another connector's error reset it)",
                    Call::Teardown.function()
                ),
            );
        }
    }
}
