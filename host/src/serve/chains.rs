//! A team's chain configuration: stored (or PUT) rows made into running
//! specs (each bundle admitted from the store, each config resolved against
//! its manifest), installed in [`super::registry::Teams`] once stored.
//!
//! A PUT may give a secret or attachment field as [`REDACTED`], what `GET
//! …/chain` shows for a secret: the field keeps the value it has in the
//! current chain's connector of the same bundle (the k-th connector of a
//! bundle is matched with the k-th of it before), so a client that never saw
//! a secret can save the chain without it. A connector whose `enabled` changed
//! by the PUT gets a log line.

use super::quarantine::Health;
use super::state::AppState;
use super::store::{ChainRow, LogLine, StoreError};
use super::teams::{ConnectorSpec, TeamChain};
use sandpipe_abi::LogLevel;
use sandpipe_manifest::{ConfigError, FieldType, REDACTED};
use sandpipe_runtime::{AdmissionError, Bundle, ConnectorCache};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// Why a chain configuration was not installed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("connector {position}: bundle {sha256} is not uploaded")]
    NotUploaded { position: usize, sha256: String },
    #[error("connector {position} ({name}): {source}")]
    InvalidConfig {
        position: usize,
        name: String,
        source: ConfigError,
    },
    /// A bundle in the store that admission now refuses.
    #[error("stored bundle {sha256}: {source}")]
    StoredBundle {
        sha256: String,
        source: AdmissionError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Admits a stored bundle (compiled modules come from the cache).
fn stored_bundle(
    state: &AppState,
    position: usize,
    sha256: &str,
) -> Result<Arc<Bundle>, ChainError> {
    let bytes = state
        .store
        .bundle(sha256)?
        .ok_or_else(|| ChainError::NotUploaded {
            position,
            sha256: sha256.to_string(),
        })?;
    state
        .connectors
        .runtime
        .admit(bytes)
        .map_err(|source| ChainError::StoredBundle {
            sha256: sha256.to_string(),
            source,
        })
}

/// Validated specs for stored rows; errors name the connector and the field.
/// With `previous` (a PUT), a secret or attachment value given as
/// [`REDACTED`] is first replaced by the stored one (see the module's doc).
fn specs(
    state: &AppState,
    team: i64,
    rows: &mut [ChainRow],
    previous: Option<&TeamChain>,
) -> Result<Vec<ConnectorSpec>, ChainError> {
    let matches: Vec<Option<usize>> = match previous {
        Some(previous) => counterparts(rows, &previous.specs),
        None => vec![None; rows.len()],
    };
    rows.iter_mut()
        .enumerate()
        .map(|(position, row)| {
            let bundle = stored_bundle(state, position, &row.bundle)?;
            if let Some(previous) = previous {
                let stored = matches[position].map(|j| &previous.specs[j].config);
                keep_stored(&bundle, &mut row.config, stored);
            }
            let config = bundle
                .manifest()
                .resolve_config(&row.config)
                .map_err(|source| ChainError::InvalidConfig {
                    position,
                    name: bundle.manifest().name.clone(),
                    source,
                })?;
            // In the service's Redis, shared by every process; else in this one's memory.
            let cache = match &state.cache {
                Some(redis) => redis.for_connector(&super::teams::scope(team, position, &bundle)),
                None => ConnectorCache::default(),
            };
            Ok(ConnectorSpec {
                bundle,
                config,
                enabled: row.enabled,
                health: row.health,
                cache,
            })
        })
        .collect()
}

/// For each row, the position of the current connector it continues: the
/// k-th connector of a bundle continues the k-th of that bundle before.
fn counterparts(rows: &[ChainRow], current: &[ConnectorSpec]) -> Vec<Option<usize>> {
    rows.iter()
        .enumerate()
        .map(|(position, row)| {
            let k = rows[..position]
                .iter()
                .filter(|r| r.bundle == row.bundle)
                .count();
            current
                .iter()
                .enumerate()
                .filter(|(_, spec)| spec.bundle.sha256() == row.bundle)
                .nth(k)
                .map(|(j, _)| j)
        })
        .collect()
}

/// Replaces each secret or attachment value given as [`REDACTED`] by the
/// stored one, or removes it when nothing is stored (then a required field
/// is reported missing).
fn keep_stored(
    bundle: &Bundle,
    config: &mut serde_json::Map<String, Value>,
    stored: Option<&sandpipe_manifest::ResolvedConfig>,
) {
    for field in bundle.manifest().fields() {
        let kept = field.secret || field.kind == FieldType::Attachment;
        if !kept || config.get(&field.key).and_then(Value::as_str) != Some(REDACTED) {
            continue;
        }
        let value = stored.and_then(|stored| {
            stored
                .config
                .get(&field.key)
                .or_else(|| stored.attachments.get(&field.key))
        });
        match value {
            Some(value) => config.insert(field.key.clone(), value.clone()),
            None => config.remove(&field.key),
        };
    }
}

/// Loads a team's stored chain into the running service: at start-up, and
/// when another process stored a newer one. The versions are read before the
/// rows, so the entry never claims a newer version than its rows are.
pub fn load(state: &AppState, team: i64) -> Result<(), ChainError> {
    let versions = state.store.chain_versions(team)?;
    let mut rows = state.store.chain(team)?;
    let chain = TeamChain::new(team, specs(state, team, &mut rows, None)?);
    state
        .teams
        .replace(chain, || Ok::<_, ChainError>(versions))?;
    Ok(())
}

/// One connector of a new configuration (a PUT).
pub struct NewConnector {
    pub bundle: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
}

/// Validates a new configuration of `team`'s chain, stores it and installs it
/// (every connector healthy, every cache empty); returns what now runs.
pub fn put(
    state: &AppState,
    team: i64,
    connectors: Vec<NewConnector>,
) -> Result<Arc<TeamChain>, ChainError> {
    let mut rows: Vec<ChainRow> = connectors
        .into_iter()
        .map(|c| ChainRow {
            bundle: c.bundle,
            config: c.config,
            enabled: c.enabled,
            health: Health::Healthy,
        })
        .collect();
    let previous = state.teams.get(team);
    let chain = TeamChain::new(team, specs(state, team, &mut rows, previous.as_deref())?);
    // Computed before the swap: `replace` may answer with a newer chain
    // another process stored meanwhile.
    let switched = previous
        .as_deref()
        .map(|previous| switched(&rows, previous, &chain));
    let chain = state.teams.replace(chain, || {
        Ok::<_, ChainError>(state.store.set_chain(team, &rows)?)
    })?;
    if let Some(lines) = switched {
        state.store.append_logs(team, &lines)?;
    }
    Ok(chain)
}

/// A log line for each connector the new configuration enabled or disabled.
fn switched(rows: &[ChainRow], previous: &TeamChain, chain: &TeamChain) -> Vec<LogLine> {
    let time = SystemTime::now();
    counterparts(rows, &previous.specs)
        .into_iter()
        .enumerate()
        .filter_map(|(position, before)| {
            let spec = &chain.specs[position];
            let before = &previous.specs[before?];
            (before.enabled != spec.enabled).then(|| LogLine {
                connector: sandpipe_runtime::connector::label(
                    &spec.bundle.manifest().name,
                    position,
                ),
                level: LogLevel::Info,
                message: format!(
                    "configuration: now {}",
                    if spec.enabled { "enabled" } else { "disabled" }
                ),
                time,
            })
        })
        .collect()
}
