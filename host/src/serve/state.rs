//! [`AppState`]: what every handler and every piece of work a request starts
//! shares — the store, the running chains, the connectors' defaults, the
//! delivery worker, metrics, tokens and the fairness gates.

use super::store::Store;
use super::teams::ConnectorDefaults;
use std::sync::Arc;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// `meta.cache` in Redis (`--cache`), shared by every process; else in memory.
    pub cache: Option<Arc<super::redis_cache::RedisCache>>,
    pub delivery: Arc<super::webhooks::Delivery>,
    pub metrics: Arc<super::metrics::Metrics>,
    pub teams: Arc<super::registry::Teams>,
    pub connectors: ConnectorDefaults,
    pub admin_hash: Arc<String>,
    /// The hash of `--metrics-token`, if one was given.
    pub metrics_hash: Option<Arc<String>>,
    pub gates: Arc<super::fairness::TeamGates>,
    /// Most events one events request may carry (`--max-batch-events`).
    pub max_batch_events: usize,
    pub background: Arc<super::fairness::BackgroundPool>,
    /// `--nats`: where `POST …/events?async=true` publishes.
    pub publisher: Option<Arc<crate::worker::Publisher>>,
    /// `/healthz`'s last answer.
    pub health: Arc<std::sync::Mutex<Option<Health>>>,
}

/// When `/healthz` asked the database, and why it did not answer, if it did not.
pub type Health = (std::time::Instant, Option<String>);
