//! Runs sandpipe bundles: PostHog-style connectors compiled to WebAssembly,
//! each in its own wasmtime instance under fuel, deadline and memory limits,
//! chained in order the way PostHog's plugin server chains them.
//!
//! ```no_run
//! use sandpipe_runtime::{Chain, ConnectorOptions, Runtime, RuntimeOptions};
//!
//! let runtime = Runtime::new(RuntimeOptions::default())?;
//! let bundle = runtime.admit(std::fs::read("hello.wasm")?)?;
//! let config = bundle.manifest().resolve_config(&Default::default())?;
//! let connector = runtime.connector(bundle, 0, config, ConnectorOptions::default())?;
//! let mut chain = Chain::new(vec![connector]);
//! let out = chain.process(serde_json::json!({"event": "pageview", "properties": {}}));
//! println!("{}", out.event.unwrap());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Map of the crate, in data-flow order:
//! - [`engine`]: the one wasmtime `Engine` (fuel, pooling, CoW) and, without fuel, its epoch ticker;
//! - [`module_cache`]: compiled modules in memory and on disk, keyed by engine and module hash;
//! - [`plugin`]: the embedded guest plugin, compiled once per process, and the
//!   one copy of the code that crosses its boundary (every guest pointer is read there);
//! - [`bundle`]: the bundle format's manifest section, and admission of untrusted bundles;
//! - [`limits`]: per-connector limits, set by the operator;
//! - [`host`]: the functions the guest imports, and the per-store state they see;
//! - [`instance`]: one live plugin + bundle pair, and the functions the connector defines;
//! - `shared`: the shared-instance level, a chain's script connectors in one instance;
//! - [`connector`]: a configured connector (made by [`Runtime::connector`] from
//!   [`ConnectorOptions`]) with typed calls, that keeps an instance alive and
//!   replaces it after a trap;
//! - [`event_text`]: a connector's result checked as JSON without being built;
//! - [`export`]: `exportEvents` batches, cut as PostHog's export buffer cut them;
//! - [`rewrite`]: an event's JSON text written as the host writes its `Value`, in one pass;
//! - [`chain`]: PostHog's chain rules over a list of connectors;
//! - [`services`]: `meta.cache` and `meta.storage`, answered on the host;
//! - [`webhook`]: the requests `composeWebhook` returns, checked and with defaults;
//! - [`json`]: JSON text with JavaScript's numbers, for everything the host writes;
//! - [`log`]: console lines and errors, per connector.

pub mod bundle;
pub mod chain;
pub mod connector;
pub mod engine;
mod error;
pub mod event_text;
pub mod export;
pub mod host;
pub mod instance;
pub mod json;
pub mod limits;
pub mod log;
pub mod module_cache;
pub mod plugin;
pub mod rewrite;
mod runtime;
pub mod services;
mod shared;
pub mod webhook;

pub use bundle::{AdmissionError, Bundle, BundleKind, BundleManifest};
pub use chain::{
    Chain, ChainOutput, ChainTasks, Export, Failure, OnEventCall, Step, StepOutcome, TaskCall,
};
pub use connector::{CallRecord, Connector, ConnectorOptions, Processed};
pub use error::{CallError, JsError, RuntimeError, ScriptError};
pub use event_text::EventText;
pub use export::ExportSettings;
pub use limits::{LimitError, Limits, OperatorLimits};
pub use log::{LogEntry, LogSink, MemoryLogs, StderrLogs};
pub use runtime::{Runtime, RuntimeOptions};
pub use sandpipe_abi::Call;
pub use services::ConnectorCache;
pub use services::fetch::FetchPolicy;
pub use services::geoip::GeoIpDatabase;
pub use services::storage::{LazySqliteStorage, SqliteStorage, Storage};
pub use webhook::WebhookRequest;
