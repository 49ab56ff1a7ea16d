//! A team's chain configuration: stored (or PUT) rows made into running
//! specs (each bundle admitted from the store, each config resolved against
//! its manifest), installed in [`super::registry::Teams`] once stored.

use super::quarantine::Health;
use super::state::AppState;
use super::store::{ChainRow, StoreError};
use super::teams::{ConnectorSpec, TeamChain};
use sandpipe_manifest::ConfigError;
use sandpipe_runtime::{AdmissionError, Bundle, ConnectorCache};
use std::sync::Arc;

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
fn specs(state: &AppState, team: i64, rows: &[ChainRow]) -> Result<Vec<ConnectorSpec>, ChainError> {
    rows.iter()
        .enumerate()
        .map(|(position, row)| {
            let bundle = stored_bundle(state, position, &row.bundle)?;
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

/// Loads a team's stored chain into the running service: at start-up, and
/// when another process stored a newer one. The versions are read before the
/// rows, so the entry never claims a newer version than its rows are.
pub fn load(state: &AppState, team: i64) -> Result<(), ChainError> {
    let versions = state.store.chain_versions(team)?;
    let rows = state.store.chain(team)?;
    let chain = TeamChain::new(team, specs(state, team, &rows)?);
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
    let rows: Vec<ChainRow> = connectors
        .into_iter()
        .map(|c| ChainRow {
            bundle: c.bundle,
            config: c.config,
            enabled: c.enabled,
            health: Health::Healthy,
        })
        .collect();
    let chain = TeamChain::new(team, specs(state, team, &rows)?);
    state.teams.replace(chain, || {
        Ok::<_, ChainError>(state.store.set_chain(team, &rows)?)
    })
}
