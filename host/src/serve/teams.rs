//! Each team's chain as the service runs it: the connectors' specs (bundle,
//! resolved config, enabled, health) and a pool of ready chains, so concurrent
//! requests run in parallel, each on its own chain and instances.
//! [`super::registry::Teams`] holds every team's current entry.
//!
//! Quarantine windows belong to a configuration, not to an entry: a health
//! change installs a new entry (a new pool, without or with the connector) that
//! shares the windows of the one it replaces, so a connector's count of failing
//! calls goes on across the change.

use super::quarantine::{Health, Watcher};
use super::store::ChainVersions;
use sandpipe_manifest::ResolvedConfig;
use sandpipe_runtime::{
    Bundle, CallRecord, Chain, ConnectorCache, ConnectorOptions, FetchPolicy, GeoIpDatabase,
    LimitError, Limits, LogEntry, LogSink, Runtime, Storage,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One configured connector of a team's chain.
#[derive(Clone)]
pub struct ConnectorSpec {
    /// Its stable identity in the team's chain ([`crate::identity`]), which
    /// `meta.storage` and `meta.cache` are scoped to.
    pub id: String,
    pub bundle: Arc<Bundle>,
    pub config: ResolvedConfig,
    pub enabled: bool,
    pub health: Health,
    /// Its `meta.cache`, shared by every chain of the pool; kept by a new
    /// configuration (PUT) that keeps the connector's id, and by a quarantine change.
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

/// A connector whose quarantine window moved it to another health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// Its position in the chain.
    pub position: usize,
    pub health: Health,
    /// Why, for its log: the errors and time in its window.
    pub reason: String,
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
    /// The stored chain and health versions this entry shows (set when it is installed).
    pub versions: ChainVersions,
    /// Quarantine windows, by position: one set per configuration, shared by
    /// the entries its health changes install.
    watchers: Arc<Mutex<Vec<Watcher>>>,
}

/// Configuration generations, unique in the process.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// What every connector the service makes is given, besides its own bundle,
/// config and `meta.cache`: the runtime, `meta.storage`'s backend, the GeoIP
/// database, the operator's limits and fetch policy.
#[derive(Clone)]
pub struct ConnectorDefaults {
    pub runtime: Runtime,
    pub storage: Arc<dyn Storage>,
    pub geoip: Arc<GeoIpDatabase>,
    pub limits: Limits,
    /// The operator's fetch policy, the same for every connector.
    pub fetch: FetchPolicy,
    /// Teams whose chains run at the shared-instance level ([`Chain::shared`]).
    pub shared_teams: Arc<std::collections::BTreeSet<i64>>,
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
            .flat_map(|secret| {
                // Also as it reads inside JSON text (a thrown object, a
                // logged config, an error the host writes as JSON): `"`, `\`
                // and control characters escaped.
                let quoted = serde_json::Value::String(secret.clone()).to_string();
                let inside = quoted[1..quoted.len() - 1].to_string();
                let escaped = (inside != secret).then_some(inside);
                std::iter::once(secret).chain(escaped)
            })
            .collect();
        TeamChain {
            team,
            specs,
            pool: Mutex::new(Vec::new()),
            logs: Arc::new(TeamLogs::default()),
            secrets,
            generation,
            versions: ChainVersions {
                team,
                ..ChainVersions::default()
            },
            watchers,
        }
    }

    fn build(&self, defaults: &ConnectorDefaults) -> Result<Chain, LimitError> {
        self.build_logging_to(defaults, self.logs.clone())
    }

    /// A new chain of this configuration, outside the pool, whose connectors
    /// log to `logs` (a dry run keeps its lines apart from the team's).
    pub fn build_logging_to(
        &self,
        defaults: &ConnectorDefaults,
        logs: Arc<dyn LogSink>,
    ) -> Result<Chain, LimitError> {
        let connectors = self
            .specs
            .iter()
            .enumerate()
            .filter(|(_, spec)| spec.runs())
            .map(|(position, spec)| {
                let scope = crate::identity::scope(Some(self.team), &spec.id);
                let options = ConnectorOptions {
                    limits: defaults.limits.clone(),
                    logs: logs.clone(),
                    storage: Some((defaults.storage.clone(), scope)),
                    cache: Some(spec.cache.clone()),
                    geoip: Some(defaults.geoip.clone()),
                    fetch: defaults.fetch.clone(),
                };
                defaults.runtime.connector(
                    spec.bundle.clone(),
                    position,
                    spec.config.clone(),
                    options,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(match defaults.shared_teams.contains(&self.team) {
            true => Chain::shared(connectors),
            false => Chain::new(connectors),
        })
    }

    /// A chain for one request: from the pool, or new.
    pub fn checkout(&self, defaults: &ConnectorDefaults) -> Result<Chain, LimitError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.map_or_else(|| self.build(defaults), Ok)
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
    pub fn observe(&self, calls: &[CallRecord]) -> Vec<HealthChange> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let mut changes = Vec::new();
        for call in calls {
            if let Some(watcher) = watchers.get_mut(call.position)
                && let Some(health) = watcher.observe(call.ok, call.duration)
            {
                changes.push(HealthChange {
                    position: call.position,
                    health,
                    reason: watcher.reason(),
                });
            }
        }
        changes
    }

    /// Why each connector is in its state: the errors and time in its window.
    pub fn reasons(&self) -> Vec<String> {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.iter().map(Watcher::reason).collect()
    }

    /// The health each connector's window gives now.
    pub(super) fn healths(&self) -> Vec<Health> {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.iter().map(|watcher| watcher.health).collect()
    }

    /// This configuration with its connectors' health as their windows give
    /// it (a new pool; in-flight requests keep theirs; the windows are shared).
    pub(super) fn with_healths(&self, healths: &[Health]) -> TeamChain {
        let mut specs = self.specs.clone();
        for (spec, health) in specs.iter_mut().zip(healths) {
            spec.health = *health;
        }
        let mut chain =
            TeamChain::with_watchers(self.team, specs, self.generation, self.watchers.clone());
        chain.versions = self.versions;
        chain
    }

    /// This configuration with the healths another process stored: the
    /// windows take them too, so this process goes on from there.
    pub(super) fn adopt_healths(&self, healths: &[Health]) -> TeamChain {
        {
            let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
            for (watcher, health) in watchers.iter_mut().zip(healths) {
                if watcher.health != *health {
                    *watcher = Watcher::new(*health);
                }
            }
        }
        self.with_healths(healths)
    }

    /// The id of the connector labelled `label` (`"<name> (<position>)"`).
    pub fn id_of(&self, label: &str) -> Option<&str> {
        self.specs
            .iter()
            .enumerate()
            .find(|(position, spec)| {
                sandpipe_runtime::connector::label(&spec.bundle.manifest().name, *position) == label
            })
            .map(|(_, spec)| spec.id.as_str())
    }

    /// Whether a connector the chain runs may define a scheduled task
    /// (`Bundle::may_define_tasks`); when none does, the chain need not be
    /// readied to find out.
    pub fn may_have_tasks(&self) -> bool {
        self.specs
            .iter()
            .any(|spec| spec.runs() && spec.bundle.may_define_tasks())
    }

    /// The label (`"<name> (<position>)"`) of the connector with `id`, if the chain runs it.
    pub fn label_of(&self, id: &str) -> Option<String> {
        self.specs
            .iter()
            .enumerate()
            .find(|(_, spec)| spec.id == id && spec.runs())
            .map(|(position, spec)| {
                sandpipe_runtime::connector::label(&spec.bundle.manifest().name, position)
            })
    }

    /// The spec of the connector with `id`.
    pub fn spec(&self, id: &str) -> Option<&ConnectorSpec> {
        self.specs.iter().find(|spec| spec.id == id)
    }

    /// `message` with every secret config value replaced.
    pub fn redact(&self, message: &str) -> String {
        redact(message, &self.secrets)
    }
}

/// `text` with every stretch that is part of an occurrence of a secret
/// replaced: the occurrences of all the secrets are found first (a secret
/// inside another, or overlapping it, included), and each run of covered text
/// becomes one placeholder, so no part of any secret is left.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        let mut from = 0;
        while let Some(at) = text[from..].find(secret.as_str()) {
            let start = from + at;
            covered.push((start, start + secret.len()));
            // The next occurrence may overlap this one.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if covered.is_empty() {
        return text.to_string();
    }
    covered.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut written = 0;
    let mut runs = covered.into_iter().peekable();
    while let Some((start, mut end)) = runs.next() {
        while let Some(&(next, next_end)) = runs.peek()
            && next <= end
        {
            end = end.max(next_end);
            runs.next();
        }
        out.push_str(&text[written..start]);
        out.push_str(sandpipe_manifest::REDACTED);
        written = end;
    }
    out.push_str(&text[written..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_part_of_any_secret_is_left() {
        let stars = sandpipe_manifest::REDACTED;
        // A secret inside a longer one, in either order.
        for list in [["tok_live", "tok_live_9f8e"], ["tok_live_9f8e", "tok_live"]] {
            assert_eq!(
                redact("a=tok_live b=tok_live_9f8e!", &secrets(&list)),
                format!("a={stars} b={stars}!")
            );
        }
        // Overlapping secrets, and a secret overlapping itself.
        assert_eq!(
            redact("xabcdefx", &secrets(&["abcd", "cdef"])),
            format!("x{stars}x")
        );
        assert_eq!(redact("aaa", &secrets(&["aa"])), stars);
        assert_eq!(redact("é-é-é", &secrets(&["é-é"])), stars);
        assert_eq!(
            redact("nothing here", &secrets(&["", "x1"])),
            "nothing here"
        );
    }
}
