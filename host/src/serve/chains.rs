//! A team's chain configuration: stored (or PUT) rows made into running
//! specs (each bundle admitted from the store, each config resolved against
//! its manifest), installed in [`super::registry::Teams`] once stored.

use super::quarantine::Health;
use super::state::AppState;
use super::store::{ChainRow, StoreError};
use super::teams::{ConnectorSpec, TeamChain};
use sandpipe_manifest::ConfigError;
use sandpipe_runtime::services::storage::StorageError;
use sandpipe_runtime::{AdmissionError, Bundle, ConnectorCache};
use std::sync::Arc;

/// Why a chain configuration was not installed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
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
}

/// One config error of one connector.
#[derive(Debug, thiserror::Error)]
#[error("connector {position} ({name}): {source}")]
pub struct ConfigProblem {
    position: usize,
    name: String,
    source: ConfigError,
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
    rows: &[ChainRow],
    previous: Option<&TeamChain>,
) -> Result<Vec<ConnectorSpec>, ChainError> {
    all_specs(rows.iter().enumerate().map(|(position, row)| {
        let bundle = stored_bundle(state, position, &row.bundle)?;
        spec(position, row, bundle, previous)
    }))
}

/// The spec of `row` at `position`, its config resolved against `bundle`'s
/// manifest. Its `meta.cache` is the one `previous` (the configuration it
/// replaces) had under the same id, or a new one.
fn spec(
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
    let cache = previous
        .and_then(|chain| chain.spec(&row.id))
        .map_or_else(ConnectorCache::default, |spec| spec.cache.clone());
    Ok(ConnectorSpec {
        id: row.id.clone(),
        bundle,
        config,
        enabled: row.enabled,
        health: row.health,
        cache,
    })
}

/// Loads a team's stored chain into the running service (at start-up).
pub fn load(state: &AppState, team: i64) -> Result<(), ChainError> {
    let rows = state.store.chain(team)?;
    let chain = TeamChain::new(team, specs(state, &rows, None)?);
    state.teams.replace(chain, || Ok(()))
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
    let rows: Vec<ChainRow> = connectors
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
    let specs = all_specs(
        rows.iter()
            .zip(bundles)
            .enumerate()
            .map(|(position, (row, bundle))| spec(position, row, bundle, previous.as_deref())),
    )?;
    let chain = Arc::new(TeamChain::new(team, specs));
    let mut removed = Vec::new();
    state.teams.replace(chain.clone(), || {
        // Under the registry's change lock: what the store held until now.
        let before = state.store.chain(team)?;
        state.store.set_chain(team, &rows)?;
        removed = before
            .into_iter()
            .filter(|old| !rows.iter().any(|row| row.id == old.id))
            .map(|old| old.id)
            .collect();
        Ok::<_, ChainError>(())
    })?;
    for id in removed {
        clear_storage(state, team, &id)?;
    }
    Ok(chain)
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
    for row in rows {
        clear_storage(state, team, &row.id)?;
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
        spec.cache.clear();
    }
    Ok(true)
}
