//! Each team's chain as the service runs it: the connectors' specs (bundle,
//! resolved config, enabled) and a pool of ready chains, so concurrent
//! requests run in parallel, each on its own chain and instances. A new chain
//! configuration replaces the whole entry; requests in flight finish on the
//! chains they hold.

use super::quarantine::{Health, Watcher};
use sandpipe_manifest::ResolvedConfig;
use sandpipe_runtime::{
    Bundle, CallRecord, Chain, ConnectorCache, GeoIpDatabase, Limits, LogEntry, LogSink, Runtime,
    Storage,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// One configured connector of a team's chain.
#[derive(Clone)]
pub struct ConnectorSpec {
    pub bundle: Arc<Bundle>,
    pub config: ResolvedConfig,
    pub enabled: bool,
    pub health: Health,
    /// Its `meta.cache`, shared by every chain of the pool; a new configuration
    /// (PUT) starts empty, a quarantine change keeps it.
    pub cache: ConnectorCache,
}

impl ConnectorSpec {
    /// Whether the chain runs it: enabled by the team and not disabled by quarantine.
    pub fn runs(&self) -> bool {
        self.enabled && self.health != Health::Disabled
    }
}

/// Log entries of a team's chains, buffered until the request flushes them.
#[derive(Default)]
pub struct TeamLogs(Mutex<Vec<LogEntry>>);

impl TeamLogs {
    pub fn take(&self) -> Vec<LogEntry> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl LogSink for TeamLogs {
    fn record(&self, entry: LogEntry) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
}

/// A team's chain configuration and its pool of chains.
pub struct TeamChain {
    pub team: i64,
    pub specs: Vec<ConnectorSpec>,
    pool: Mutex<Vec<Chain>>,
    pub logs: Arc<TeamLogs>,
    /// Secret config values, to redact from log lines.
    pub secrets: Vec<String>,
    /// Quarantine windows, by position.
    watchers: Mutex<Vec<Watcher>>,
}

/// What every chain's connectors are given.
#[derive(Clone)]
pub struct Services {
    pub runtime: Runtime,
    pub storage: Arc<dyn Storage>,
    pub geoip: Arc<GeoIpDatabase>,
    pub limits: Limits,
}

impl TeamChain {
    pub fn new(team: i64, specs: Vec<ConnectorSpec>) -> TeamChain {
        let secrets = specs
            .iter()
            .flat_map(|s| {
                s.config
                    .secrets
                    .iter()
                    .filter_map(|key| s.config.config.get(key))
                    .filter_map(|v| match v {
                        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
                        serde_json::Value::Null => None,
                        other => Some(other.to_string()),
                    })
            })
            .collect();
        let watchers = specs.iter().map(|spec| Watcher::new(spec.health)).collect();
        TeamChain {
            team,
            specs,
            pool: Mutex::new(Vec::new()),
            logs: Arc::new(TeamLogs::default()),
            secrets,
            watchers: Mutex::new(watchers),
        }
    }

    fn build(&self, services: &Services) -> Chain {
        let connectors = self
            .specs
            .iter()
            .enumerate()
            .filter(|(_, spec)| spec.runs())
            .map(|(position, spec)| {
                let scope = format!("team:{}#{position}:{}", self.team, spec.bundle.sha256());
                services
                    .runtime
                    .connector(
                        spec.bundle.clone(),
                        position,
                        spec.config.clone(),
                        services.limits.clone(),
                        self.logs.clone(),
                    )
                    .with_storage(services.storage.clone(), scope)
                    .with_geoip(services.geoip.clone())
                    .with_cache(spec.cache.clone())
            })
            .collect();
        Chain::new(connectors)
    }

    /// A chain for one request: from the pool, or new.
    pub fn checkout(&self, services: &Services) -> Chain {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| self.build(services))
    }

    /// Returns a chain to the pool.
    pub fn checkin(&self, chain: Chain) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(chain);
    }

    /// Feeds the calls of a request to the quarantine windows; returns the
    /// connectors whose health changed, with the reason.
    pub fn observe(&self, calls: &[CallRecord]) -> Vec<(usize, Health, String)> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let mut changes = Vec::new();
        for call in calls {
            if let Some(watcher) = watchers.get_mut(call.position)
                && let Some(health) = watcher.observe(call.ok, call.duration)
            {
                changes.push((call.position, health, watcher.reason()));
            }
        }
        changes
    }

    /// This chain with one connector's health changed (a new pool; in-flight requests keep theirs).
    pub fn with_health(&self, position: usize, health: Health) -> TeamChain {
        let mut specs = self.specs.clone();
        if let Some(spec) = specs.get_mut(position) {
            spec.health = health;
        }
        TeamChain::new(self.team, specs)
    }

    /// `message` with every secret config value replaced.
    pub fn redact(&self, message: &str) -> String {
        self.secrets
            .iter()
            .fold(message.to_string(), |text, secret| {
                text.replace(secret.as_str(), sandpipe_manifest::REDACTED)
            })
    }
}

/// Every team's current chain.
#[derive(Default)]
pub struct Teams(RwLock<HashMap<i64, Arc<TeamChain>>>);

impl Teams {
    pub fn get(&self, team: i64) -> Option<Arc<TeamChain>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&team)
            .cloned()
    }

    pub fn set(&self, chain: TeamChain) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chain.team, Arc::new(chain));
    }
}
