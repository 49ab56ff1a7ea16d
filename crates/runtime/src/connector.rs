//! A configured connector: its bundle, its resolved config and limits, and the
//! instance that serves its calls.
//!
//! The instance is made on first use (top level, then `setupPlugin(meta)`),
//! kept across calls so `meta.global` and top-level state persist, and dropped
//! after any error that poisons it; the next call makes a fresh one (and runs
//! `setupPlugin` again). `teardownPlugin` runs when the connector is dropped.

use crate::bundle::{Bundle, BundleKind};
use crate::error::CallError;
use crate::event_text::EventText;
use crate::instance::Instance;
use crate::limits::Limits;
use crate::log::{LogEntry, LogSink, StderrLogs};
use crate::plugin::Plugin;
use crate::services::fetch::FetchPolicy;
use crate::services::geoip::GeoIpDatabase;
use crate::services::storage::Storage;
use crate::services::{ConnectorCache, ConnectorServices, ServiceConfig};
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

/// One connector of a chain.
pub struct Connector {
    plugin: Arc<Plugin>,
    bundle: Arc<Bundle>,
    position: usize,
    label: String,
    setup_input: Vec<u8>,
    limits: Limits,
    logs: Arc<dyn LogSink>,
    instance: Option<Instance>,
    /// The special functions, known once an instance has loaded.
    functions: Option<Vec<String>>,
    /// The last call's record, until the chain takes it.
    last_call: Option<CallRecord>,
    /// Cache, storage, geoip and fetch, shared by the connector's successive instances.
    services: Arc<ConnectorServices>,
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
            instance: None,
            functions: None,
            last_call: None,
            services: Arc::new(services),
        }
    }

    /// `"<name> (<position>)"`, as PostHog lists connectors in `$plugins_failed`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The connector's bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the connector can run `call`: it defines the function, or the
    /// one that stands in for it (instantiating it if needed).
    pub fn defines(&mut self, call: Call) -> Result<bool, CallError> {
        Ok(crate::instance::provides(self.functions()?, call))
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
                format!("{what} returned invalid JSON: {e}"),
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
    /// `RetryError` included) or a trap is an error, logged for this connector.
    /// Nothing happens when the connector defines no `onEvent`.
    pub fn on_event(&mut self, event: &[u8]) -> Result<(), CallError> {
        if !self.defines(Call::OnEvent)? {
            return Ok(());
        }
        self.call(Call::OnEvent, event).map(drop)
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
            Err(e) => Err(self.invalid(call, format!("{what} returned invalid JSON: {e}"))),
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
        self.instance.is_some()
    }

    fn log(&self, level: LogLevel, message: String) {
        self.logs.record(LogEntry {
            connector: self.label.clone(),
            level,
            message,
            time: SystemTime::now(),
        });
    }

    fn forward_console(&self, instance: &mut Instance) {
        let (lines, dropped) = instance.take_console();
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
                    "{dropped} console lines dropped (over {} per call)",
                    self.limits.max_log_lines
                ),
            );
        }
    }

    /// Events `posthog.capture` produced since the last time they were taken,
    /// each `{event, distinct_id, properties}` with `properties.$sandpipe_connector`
    /// naming this connector.
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
                properties.insert("$sandpipe_connector".into(), origin.clone());
                captured["distinct_id"] = distinct_id;
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

    /// The live instance, made (and set up) if there is none.
    fn instance(&mut self) -> Result<&mut Instance, CallError> {
        if self.instance.is_none() {
            let made = Instance::new(
                &self.plugin,
                &self.bundle,
                &self.limits,
                self.services.clone(),
            );
            let mut instance = match made {
                Ok(instance) => instance,
                Err(error) => {
                    let error = CallError::Setup(Box::new(error));
                    self.log(
                        LogLevel::Error,
                        format!("loading failed: {}", describe(&error)),
                    );
                    return Err(error);
                }
            };
            self.functions = Some(instance.functions().to_vec());
            let setup = instance.call(Call::Setup, &self.setup_input, &self.limits);
            self.forward_console(&mut instance);
            if let Err(error) = setup {
                let error = CallError::Setup(Box::new(error));
                self.log(
                    LogLevel::Error,
                    format!("setupPlugin failed: {}", describe(&error)),
                );
                return Err(error);
            }
            self.instance = Some(instance);
        }
        Ok(self.instance.as_mut().expect("just made"))
    }

    /// Calls into the connector. Errors are logged for this connector; an
    /// error that poisons the instance drops it.
    pub(crate) fn call(&mut self, call: Call, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let (result, fuel) = self.call_instance(call, input);
        self.last_call = Some(CallRecord {
            connector: self.label.clone(),
            position: self.position,
            call,
            duration: started.elapsed(),
            fuel,
            ok: result.is_ok(),
        });
        result
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
        let limits = self.limits.clone();
        let instance = match self.instance() {
            Ok(instance) => instance,
            Err(error) => return (Err(error), 0),
        };
        let result = instance.call(call, input, &limits);
        let fuel = instance.fuel_used(&limits);
        let mut instance = self.instance.take().expect("instance() made one");
        self.forward_console(&mut instance);
        match &result {
            Err(error) => {
                self.report(call, error);
                if !error.poisons_instance() {
                    self.instance = Some(instance);
                }
            }
            Ok(_) => self.instance = Some(instance),
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
            .instance
            .as_ref()
            .is_some_and(|i| i.defines(Call::Teardown));
        if defines_teardown {
            let _ = self.call(Call::Teardown, b"null");
        }
    }
}
