//! Each team's chain as the service runs it: the connectors' specs (bundle,
//! resolved config, enabled) and a pool of ready chains, so concurrent
//! requests run in parallel, each on its own chain and instances. A new chain
//! configuration replaces the whole entry; requests in flight finish on the
//! chains they hold.
//!
//! Quarantine windows belong to a configuration, not to an entry: a health
//! change installs a new entry (a new pool, without or with the connector) that
//! shares the windows of the one it replaces, so a connector's count of failing
//! calls goes on across the change. Configuration changes (a PUT, a health
//! change) are serialised by [`Teams::change`], and a health change applies to
//! the team's current entry only while it still has the same configuration: a
//! PUT always wins.

use super::quarantine::{Health, Watcher};
use sandpipe_manifest::ResolvedConfig;
use sandpipe_runtime::{
    Bundle, CallRecord, Chain, ConnectorCache, ConnectorOptions, FetchPolicy, GeoIpDatabase,
    LimitError, Limits, LogEntry, LogSink, Runtime, Storage,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Which configuration this is: new for every PUT (and at start-up), kept
    /// by health changes.
    pub generation: u64,
    /// Quarantine windows, by position: one set per configuration, shared by
    /// the entries its health changes install.
    watchers: Arc<Mutex<Vec<Watcher>>>,
}

/// Configuration generations, unique in the process.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// What every chain's connectors are given.
#[derive(Clone)]
pub struct Services {
    pub runtime: Runtime,
    pub storage: Arc<dyn Storage>,
    pub geoip: Arc<GeoIpDatabase>,
    pub limits: Limits,
}

impl TeamChain {
    /// A new configuration: fresh quarantine windows (from each spec's health).
    pub fn new(team: i64, specs: Vec<ConnectorSpec>) -> TeamChain {
        let watchers = specs.iter().map(|spec| Watcher::new(spec.health)).collect();
        TeamChain::with_watchers(
            team,
            specs,
            GENERATIONS.fetch_add(1, Ordering::Relaxed),
            Arc::new(Mutex::new(watchers)),
        )
    }

    fn with_watchers(
        team: i64,
        specs: Vec<ConnectorSpec>,
        generation: u64,
        watchers: Arc<Mutex<Vec<Watcher>>>,
    ) -> TeamChain {
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
        TeamChain {
            team,
            specs,
            pool: Mutex::new(Vec::new()),
            logs: Arc::new(TeamLogs::default()),
            secrets,
            generation,
            watchers,
        }
    }

    fn build(&self, services: &Services) -> Result<Chain, LimitError> {
        let connectors = self
            .specs
            .iter()
            .enumerate()
            .filter(|(_, spec)| spec.runs())
            .map(|(position, spec)| {
                let scope = format!("team:{}#{position}:{}", self.team, spec.bundle.sha256());
                let options = ConnectorOptions {
                    limits: services.limits.clone(),
                    logs: self.logs.clone(),
                    storage: Some((services.storage.clone(), scope)),
                    cache: Some(spec.cache.clone()),
                    geoip: Some(services.geoip.clone()),
                    fetch: FetchPolicy::default(),
                };
                services.runtime.connector(
                    spec.bundle.clone(),
                    position,
                    spec.config.clone(),
                    options,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Chain::new(connectors))
    }

    /// A chain for one request: from the pool, or new.
    pub fn checkout(&self, services: &Services) -> Result<Chain, LimitError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.map_or_else(|| self.build(services), Ok)
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

    /// The health each connector's window gives now.
    fn healths(&self) -> Vec<Health> {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.iter().map(|watcher| watcher.health).collect()
    }

    /// This configuration with its connectors' health as their windows give
    /// it (a new pool; in-flight requests keep theirs; the windows are shared).
    fn with_healths(&self, healths: &[Health]) -> TeamChain {
        let mut specs = self.specs.clone();
        for (spec, health) in specs.iter_mut().zip(healths) {
            spec.health = *health;
        }
        TeamChain::with_watchers(self.team, specs, self.generation, self.watchers.clone())
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
pub struct Teams {
    current: RwLock<HashMap<i64, Arc<TeamChain>>>,
    /// Held while a configuration change is stored and installed, so the store
    /// and the running chains change in the same order.
    change: Mutex<()>,
}

impl Teams {
    pub fn get(&self, team: i64) -> Option<Arc<TeamChain>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&team)
            .cloned()
    }

    fn install(&self, chain: TeamChain) {
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chain.team, Arc::new(chain));
    }

    /// Installs a new configuration once `persist` has stored it.
    pub fn replace<E>(
        &self,
        chain: TeamChain,
        persist: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        persist()?;
        self.install(chain);
        Ok(())
    }

    /// Brings the team's current entry in line with the health the windows of
    /// `snapshot`'s configuration give now: `persist` is called for each
    /// connector whose health differs from the entry's, then the entry is
    /// replaced. Nothing happens when the team's current entry is another
    /// configuration (a PUT replaced it): the PUT wins. Returns whether it applied.
    pub fn apply_health<E>(
        &self,
        snapshot: &TeamChain,
        mut persist: impl FnMut(usize, Health) -> Result<(), E>,
    ) -> Result<bool, E> {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = self
            .get(snapshot.team)
            .filter(|current| current.generation == snapshot.generation)
        else {
            return Ok(false);
        };
        let healths = current.healths();
        let changed: Vec<usize> = (0..current.specs.len())
            .filter(|&position| current.specs[position].health != healths[position])
            .collect();
        if changed.is_empty() {
            return Ok(true);
        }
        for &position in &changed {
            persist(position, healths[position])?;
        }
        self.install(current.with_healths(&healths));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Feeds `n` failing calls of connector 0 through `chain`'s windows.
    fn fail(chain: &TeamChain, n: usize) -> Vec<(usize, Health, String)> {
        let calls: Vec<CallRecord> = (0..n)
            .map(|_| CallRecord {
                connector: "c (0)".into(),
                position: 0,
                call: sandpipe_runtime::Call::ProcessEvent,
                ok: false,
                duration: Duration::from_millis(1),
                fuel: 0,
            })
            .collect();
        chain.observe(&calls)
    }

    fn chain(team: i64) -> TeamChain {
        let runtime = crate::runtime().expect("the runtime starts");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world");
        let built = sandpipe_compiler::build(&runtime, &dir).expect("hello-world builds");
        let spec = ConnectorSpec {
            bundle: runtime.admit(built.bytes).expect("admitted"),
            config: ResolvedConfig::default(),
            enabled: true,
            health: Health::Healthy,
            cache: ConnectorCache::default(),
        };
        TeamChain::new(team, vec![spec])
    }

    /// Every failing call counts, across the entries health changes install:
    /// one call per request, degraded on the 5th, disabled on the 15th.
    #[test]
    fn windows_outlive_health_changes() {
        let teams = Teams::default();
        teams.replace(chain(7), || Ok::<_, ()>(())).unwrap();
        let mut persisted = Vec::new();
        for call in 1..=20 {
            let snapshot = teams.get(7).unwrap();
            if !fail(&snapshot, 1).is_empty() {
                let applied = teams.apply_health(&snapshot, |position, health| {
                    persisted.push((call, position, health));
                    Ok::<_, ()>(())
                });
                assert_eq!(applied, Ok(true));
            }
        }
        assert_eq!(
            persisted,
            [(5, 0, Health::Degraded), (15, 0, Health::Disabled)]
        );
        assert_eq!(teams.get(7).unwrap().specs[0].health, Health::Disabled);
        assert!(!teams.get(7).unwrap().specs[0].runs());
    }

    /// A health change decided on a snapshot never undoes a PUT made since.
    #[test]
    fn a_put_wins_over_a_health_change() {
        let teams = Teams::default();
        teams.replace(chain(7), || Ok::<_, ()>(())).unwrap();
        let snapshot = teams.get(7).unwrap();
        assert_eq!(fail(&snapshot, 5).len(), 1);
        // A PUT lands between the calls and the health change.
        teams.replace(chain(7), || Ok::<_, ()>(())).unwrap();
        let put = teams.get(7).unwrap();
        let mut persisted = Vec::new();
        let applied = teams.apply_health(&snapshot, |position, health| {
            persisted.push((position, health));
            Ok::<_, ()>(())
        });
        assert_eq!(applied, Ok(false));
        assert!(persisted.is_empty());
        assert!(Arc::ptr_eq(&teams.get(7).unwrap(), &put));
        assert_eq!(put.specs[0].health, Health::Healthy);
    }
}
