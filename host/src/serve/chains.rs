//! A team's chain configuration: stored (or PUT) rows made into running
//! specs (each bundle admitted from the store, each config resolved against
//! its manifest), installed in [`super::registry::Teams`] once stored.
//!
//! A PUT may give a secret or attachment field as [`REDACTED`], what `GET
//! …/chain` shows for a secret: the field keeps the value it has in the
//! current chain's connector with the same id (see [`crate::identity`]), so a
//! client that never saw a secret can save the chain without it. A connector whose `enabled` changed
//! by the PUT gets a log line.

use super::quarantine::Health;
use super::state::AppState;
use super::store::{ChainRow, LogLine, StoreError};
use super::teams::{ConnectorSpec, TeamChain};
use sandpipe_abi::LogLevel;
use sandpipe_manifest::{ConfigError, FieldType, REDACTED};
use sandpipe_runtime::services::storage::StorageError;
use sandpipe_runtime::{AdmissionError, Bundle, ConnectorCache};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// Connectors a team's chain may hold: each keeps its own instances,
/// `meta.cache` (up to 16 MiB) and per-call buffers in the service, so the
/// chain's length bounds what one team can make the service hold. Checked
/// when a chain is set (a chain stored before the bound loads as it is).
pub const MAX_CONNECTORS: usize = 50;

/// Why a chain configuration was not installed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("a chain holds at most {MAX_CONNECTORS} connectors, got {0}")]
    TooLong(usize),
    #[error("connector {position}: bundle {sha256} is not uploaded")]
    NotUploaded { position: usize, sha256: String },
    /// Every config error of the configuration, each naming its connector.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<ConfigProblem>),
    /// A bundle in the store that admission now refuses.
    #[error("stored bundle {sha256}: {source}")]
    StoredBundle {
        sha256: String,
        source: AdmissionError,
    },
    #[error(transparent)]
    Id(#[from] crate::identity::IdError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A removed or reset connector's storage could not be cleared.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A reset connector's `meta.cache` could not be cleared.
    #[error("meta.cache: {0}")]
    Cache(#[from] sandpipe_runtime::services::cache::CacheError),
}

/// One config error of one connector.
#[derive(Debug, thiserror::Error)]
#[error("connector {position} ({name}): {source}")]
pub struct ConfigProblem {
    position: usize,
    name: String,
    source: ConfigError,
}

impl ConfigProblem {
    /// The connector's position in the chain.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The config key the error is about.
    pub fn field(&self) -> &str {
        self.source.key()
    }

    /// The error without the connector it is about.
    pub fn reason(&self) -> String {
        self.source.to_string()
    }
}

/// The specs, or every config error of them all.
fn all_specs(
    specs: impl Iterator<Item = Result<ConnectorSpec, ChainError>>,
) -> Result<Vec<ConnectorSpec>, ChainError> {
    let mut made = Vec::new();
    let mut problems = Vec::new();
    for spec in specs {
        match spec {
            Ok(spec) => made.push(spec),
            Err(ChainError::InvalidConfig(found)) => problems.extend(found),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        Ok(made)
    } else {
        Err(ChainError::InvalidConfig(problems))
    }
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
fn specs(
    state: &AppState,
    team: i64,
    rows: &[ChainRow],
    previous: Option<&TeamChain>,
) -> Result<Vec<ConnectorSpec>, ChainError> {
    all_specs(rows.iter().enumerate().map(|(position, row)| {
        let bundle = stored_bundle(state, position, &row.bundle)?;
        spec(state, team, position, row, bundle, previous)
    }))
}

/// The spec of `row` at `position`, its config resolved against `bundle`'s
/// manifest. Its `meta.cache` is the service's Redis under the connector's
/// id when there is one; else the one `previous` (the configuration it
/// replaces) had under the same id, or a new one.
fn spec(
    state: &AppState,
    team: i64,
    position: usize,
    row: &ChainRow,
    bundle: Arc<Bundle>,
    previous: Option<&TeamChain>,
) -> Result<ConnectorSpec, ChainError> {
    let config = bundle
        .manifest()
        .resolve_config_all(&row.config)
        .map_err(|errors| {
            ChainError::InvalidConfig(
                errors
                    .into_iter()
                    .map(|source| ConfigProblem {
                        position,
                        name: bundle.manifest().name.clone(),
                        source,
                    })
                    .collect(),
            )
        })?;
    let cache = match &state.cache {
        Some(redis) => redis.for_connector(&crate::identity::scope(Some(team), &row.id)),
        None => previous
            .and_then(|chain| chain.spec(&row.id))
            .map_or_else(ConnectorCache::default, |spec| spec.cache.clone()),
    };
    Ok(ConnectorSpec {
        id: row.id.clone(),
        bundle,
        config,
        enabled: row.enabled,
        health: row.health,
        cache,
    })
}

/// Loads a team's stored chain into the running service: at start-up, and
/// when another process stored a newer one. The versions are read before the
/// rows, so the entry never claims a newer version than its rows are.
pub fn load(state: &AppState, team: i64) -> Result<(), ChainError> {
    let versions = state.store.chain_versions(team)?;
    let rows = state.store.chain(team)?;
    let chain = TeamChain::new(team, specs(state, team, &rows, None)?);
    state
        .teams
        .replace(chain, || Ok::<_, ChainError>(versions))?;
    Ok(())
}

/// One connector of a new configuration (a PUT).
pub struct NewConnector {
    /// Its id, if the request gives one (otherwise from its plugin's name).
    pub id: Option<String>,
    pub bundle: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
}

/// Validates a new configuration of `team`'s chain, stores it and installs it
/// (every connector healthy); returns what now runs. Each connector's id is
/// the one given or its plugin's name ([`crate::identity::assign`]); it keeps
/// its `meta.storage` and `meta.cache` while its id stays in the chain, and the
/// storage of an id the new configuration no longer has is cleared.
pub fn put(
    state: &AppState,
    team: i64,
    connectors: Vec<NewConnector>,
) -> Result<Arc<TeamChain>, ChainError> {
    if connectors.len() > MAX_CONNECTORS {
        return Err(ChainError::TooLong(connectors.len()));
    }
    let bundles = connectors
        .iter()
        .enumerate()
        .map(|(position, c)| stored_bundle(state, position, &c.bundle))
        .collect::<Result<Vec<_>, _>>()?;
    let ids = crate::identity::assign(
        connectors
            .iter()
            .zip(&bundles)
            .map(|(c, bundle)| (c.id.as_deref(), bundle.manifest().name.as_str())),
    )?;
    let mut rows: Vec<ChainRow> = connectors
        .into_iter()
        .zip(ids)
        .map(|(c, id)| ChainRow {
            id,
            bundle: c.bundle,
            config: c.config,
            enabled: c.enabled,
            health: Health::Healthy,
        })
        .collect();
    let previous = state.teams.get(team);
    if let Some(previous) = previous.as_deref() {
        let mut problems = Vec::new();
        for (position, (row, bundle)) in rows.iter_mut().zip(&bundles).enumerate() {
            let stored = previous.spec(&row.id).map(|spec| &spec.config);
            problems.extend(keep_stored(position, bundle, &mut row.config, stored));
        }
        if !problems.is_empty() {
            return Err(ChainError::InvalidConfig(problems));
        }
    }
    let specs = all_specs(rows.iter().zip(bundles).enumerate().map(
        |(position, (row, bundle))| spec(state, team, position, row, bundle, previous.as_deref()),
    ))?;
    let chain = TeamChain::new(team, specs);
    // Computed before the swap: `replace` may answer with a newer chain
    // another process stored meanwhile.
    let switched = previous
        .as_deref()
        .map(|previous| switched(previous, &chain));
    let mut removed = Vec::new();
    let chain = state.teams.replace(chain, || {
        // Under the registry's change lock: what the store held until now.
        let before = state.store.chain(team)?;
        let versions = state.store.set_chain(team, &rows)?;
        removed = before
            .into_iter()
            .filter(|old| !rows.iter().any(|row| row.id == old.id))
            .map(|old| old.id)
            .collect();
        Ok::<_, ChainError>(versions)
    })?;
    for id in removed {
        clear_storage(state, team, &id)?;
        clear_shared_cache(state, team, &id)?;
    }
    if let Some(lines) = switched {
        state.store.append_logs(team, &lines)?;
    }
    Ok(chain)
}

/// Empties connector `id`'s `meta.cache` in the service's Redis, if there is
/// one (a cache in this process's memory goes with the connector's spec).
fn clear_shared_cache(state: &AppState, team: i64, id: &str) -> Result<(), ChainError> {
    if let Some(redis) = &state.cache {
        redis
            .for_connector(&crate::identity::scope(Some(team), id))
            .clear()?;
    }
    Ok(())
}

/// Deletes connector `id`'s `meta.storage`.
fn clear_storage(state: &AppState, team: i64, id: &str) -> Result<(), ChainError> {
    let scope = crate::identity::scope(Some(team), id);
    state.connectors.storage.clear(&scope)?;
    state.connectors.storage.sync()?;
    tracing::info!(team, connector = id, "storage cleared");
    Ok(())
}

/// Deletes `team`: its chain stops, and its connectors' storage, chain, logs
/// and webhooks are deleted. Whether it existed.
pub fn delete_team(state: &AppState, team: i64) -> Result<bool, ChainError> {
    let rows = state.store.chain(team)?;
    state.teams.remove(team);
    if !state.store.delete_team(team)? {
        return Ok(false);
    }
    state.metrics.forget_team(team);
    for row in rows {
        clear_storage(state, team, &row.id)?;
        clear_shared_cache(state, team, &row.id)?;
    }
    Ok(true)
}

/// Resets connector `id` of `team`'s chain: its `meta.storage` and
/// `meta.cache` are emptied. Whether the chain has it.
pub fn reset(state: &AppState, team: i64, id: &str) -> Result<bool, ChainError> {
    if !state.store.chain(team)?.iter().any(|row| row.id == id) {
        return Ok(false);
    }
    clear_storage(state, team, id)?;
    if let Some(spec) = state.teams.get(team).as_deref().and_then(|c| c.spec(id)) {
        spec.cache.clear()?;
    }
    Ok(true)
}

/// Replaces each secret or attachment value given as [`REDACTED`] by the
/// stored one, or removes it when nothing is stored (then a required field
/// is reported missing). The placeholder given for a field that was a stored
/// secret and is not one in `bundle` is refused: keeping the secret would
/// show it, and storing the placeholder would lose it.
fn keep_stored(
    position: usize,
    bundle: &Bundle,
    config: &mut serde_json::Map<String, Value>,
    stored: Option<&sandpipe_manifest::ResolvedConfig>,
) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for field in bundle.manifest().fields() {
        if config.get(&field.key).and_then(Value::as_str) != Some(REDACTED) {
            continue;
        }
        let kept = field.secret || field.kind == FieldType::Attachment;
        if !kept {
            if stored.is_some_and(|stored| stored.secrets.contains(&field.key)) {
                problems.push(ConfigProblem {
                    position,
                    name: bundle.manifest().name.clone(),
                    source: ConfigError::Invalid {
                        key: field.key.clone(),
                        reason: format!(
                            "{REDACTED} stands for the stored secret, but this bundle does not keep the field secret: give its value"
                        ),
                    },
                });
            }
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
    problems
}

/// A log line for each connector the new configuration enabled or disabled.
fn switched(previous: &TeamChain, chain: &TeamChain) -> Vec<LogLine> {
    let time = SystemTime::now();
    chain
        .specs
        .iter()
        .enumerate()
        .filter_map(|(position, spec)| {
            let before = previous.spec(&spec.id)?;
            (before.enabled != spec.enabled).then(|| LogLine {
                connector: sandpipe_runtime::connector::label(
                    &spec.bundle.manifest().name,
                    position,
                ),
                connector_id: Some(spec.id.clone()),
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
