//! A configured connector: its bundle, its resolved config and limits, and the
//! instance that serves its calls.
//!
//! The instance is made on first use (top level, then `setupPlugin(meta)`),
//! kept across calls so `meta.global` and top-level state persist, and dropped
//! after any error that poisons it; the next call makes a fresh one (and runs
//! `setupPlugin` again). `teardownPlugin` runs when the connector is dropped.

use crate::bundle::Bundle;
use crate::error::CallError;
use crate::instance::Instance;
use crate::limits::Limits;
use crate::log::{LogEntry, LogSink};
use crate::runtime::Inner;
use crate::services::fetch::FetchPolicy;
use crate::services::geoip::GeoIpDatabase;
use crate::services::storage::Storage;
use crate::services::{ConnectorCache, ConnectorServices, ServiceConfig};
use sandpipe_abi::{Call, LogLevel};
use sandpipe_manifest::ResolvedConfig;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One connector of a chain.
pub struct Connector {
    runtime: Arc<Inner>,
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
    /// Cache, storage and geoip, shared by the connector's successive instances.
    services: Arc<ConnectorServices>,
    service_config: ServiceConfig,
}

impl Connector {
    pub(crate) fn new(
        runtime: Arc<Inner>,
        bundle: Arc<Bundle>,
        position: usize,
        config: ResolvedConfig,
        limits: Limits,
        logs: Arc<dyn LogSink>,
    ) -> Connector {
        let label = format!("{} ({position})", bundle.manifest().name);
        let setup_input = crate::json::to_vec(&serde_json::json!({
            "config": config.config,
            "attachments": config.attachments,
        }))
        .expect("config values serialise");
        Connector {
            runtime,
            bundle,
            position,
            label,
            setup_input,
            limits,
            logs,
            instance: None,
            functions: None,
            last_call: None,
            services: Arc::new(ConnectorServices::new(ServiceConfig::default())),
            service_config: ServiceConfig::default(),
        }
    }

    /// Gives `meta.storage` a persistent backend, partitioned by `scope`
    /// (one scope per connector config). Call before the first event.
    pub fn with_storage(
        mut self,
        storage: Arc<dyn Storage>,
        scope: impl Into<String>,
    ) -> Connector {
        self.service_config.storage = Some((storage, scope.into()));
        self.service_config.storage_quota = (&self.limits).into();
        self.rebuild_services()
    }

    /// Makes `meta.cache` the one `cache` other connectors (instances of the
    /// same configured connector, elsewhere) share. Call before the first event.
    pub fn with_cache(mut self, cache: ConnectorCache) -> Connector {
        self.service_config.cache = cache;
        self.rebuild_services()
    }

    /// Gives `meta.geoip` a database. Call before the first event.
    pub fn with_geoip(mut self, database: Arc<GeoIpDatabase>) -> Connector {
        self.service_config.geoip = Some(database);
        self.rebuild_services()
    }

    /// Lets `fetch` reach what `policy` allows (by default: nothing). Call before the first event.
    pub fn with_fetch(mut self, policy: FetchPolicy) -> Connector {
        self.service_config.fetch = policy;
        self.rebuild_services()
    }

    fn rebuild_services(mut self) -> Connector {
        self.services = Arc::new(ConnectorServices::new(self.service_config.clone()));
        self
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

    /// Whether the connector defines the special function `name` (instantiating it if needed).
    pub fn defines(&mut self, name: &str) -> Result<bool, CallError> {
        if self.functions.is_none() {
            self.instance()?;
        }
        Ok(self
            .functions
            .as_ref()
            .is_some_and(|f| f.iter().any(|n| n == name)))
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

    /// Logs an error of `what` for this connector.
    pub fn report(&self, what: &str, error: &CallError) {
        self.log(LogLevel::Error, format!("{what}: {}", describe(error)));
    }

    /// The live instance, made (and set up) if there is none.
    fn instance(&mut self) -> Result<&mut Instance, CallError> {
        if self.instance.is_none() {
            let made = Instance::new(
                &self.runtime.engine,
                &self.runtime.plugin,
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

    /// Calls into the connector; `what` names the call in logs. Errors are
    /// logged for this connector; an error that poisons the instance drops it.
    pub fn call(
        &mut self,
        call: Call,
        input: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let (result, fuel) = self.call_instance(call, input, what);
        self.last_call = Some(CallRecord {
            connector: self.label.clone(),
            position: self.position,
            stage: what,
            duration: started.elapsed(),
            fuel,
            ok: result.is_ok(),
        });
        result
    }

    /// Takes the record of the last call (for metrics and quarantine).
    pub fn take_last_call(&mut self) -> Option<CallRecord> {
        self.last_call.take()
    }

    fn call_instance(
        &mut self,
        call: Call,
        input: &[u8],
        what: &str,
    ) -> (Result<Vec<u8>, CallError>, u64) {
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
                self.report(what, error);
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
    /// `processEvent`, `composeWebhook`, …
    pub stage: &'static str,
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
            .is_some_and(|i| i.defines("teardownPlugin"));
        if defines_teardown {
            let _ = self.call(Call::Teardown, b"null", "teardownPlugin");
        }
    }
}
