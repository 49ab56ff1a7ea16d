//! `sandpipe serve`: the HTTP service. Operators upload bundles, configure each
//! team's chain, and their services POST events; state lives in one SQLite
//! file, or in a PostgreSQL database (and `meta.cache` in Redis) that several
//! processes share. Modules: [`api`] (the `/v1` routes), [`http`] (state, callers, error
//! responses), [`chains`] (configuring a team's chain), [`events`] (a team's
//! batch), [`store`] (database and migrations), [`auth`] (tokens), [`teams`]
//! and [`registry`] (each team's running chains), [`quarantine`],
//! [`fairness`], [`metrics`], [`webhooks`] (durable delivery), [`dry_run`]
//! (one event's trace), [`admin_page`] (the web page at `/`).

mod admin_page;
mod api;
mod auth;
mod chains;
mod dry_run;
mod events;
mod fairness;
mod http;
mod json;
mod metrics;
mod on_event;
mod propagation;
mod quarantine;
mod redis_cache;
mod registry;
mod state;
mod store;
mod teams;
mod trace;
mod webhooks;

pub use fairness::TeamGates;
pub use webhooks::DeliveryOptions;

use anyhow::Context;
use sandpipe_runtime::services::storage::{Durability, StorageError};
use sandpipe_runtime::{GeoIpDatabase, SqliteStorage, Storage};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the service keeps its state (`--db`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file: one process.
    Sqlite(PathBuf),
    /// A PostgreSQL database, which several processes may share.
    Postgres(store::PgUrl),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL, or else a SQLite path.
    pub fn parse(text: &str) -> Database {
        if store::PgUrl::is_postgres(text) {
            Database::Postgres(store::PgUrl::new(text))
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }
}

/// `sandpipe serve` options.
pub struct ServeArgs {
    pub listen: SocketAddr,
    pub db: Database,
    /// A `redis://` URL for `meta.cache` (else each process keeps its own in memory).
    pub cache: Option<String>,
    pub admin_token: Option<String>,
    /// A token that may read `/metrics` besides the admin token.
    pub metrics_token: Option<String>,
    pub geoip: Arc<GeoIpDatabase>,
    /// The engine and plugin every connector runs on (with or without fuel).
    pub runtime: sandpipe_runtime::Runtime,
    /// Limits for every connector call, checked against `runtime`.
    pub limits: sandpipe_runtime::Limits,
    /// Event requests one team may run at once.
    pub team_concurrency: usize,
    /// Most events one events request may carry.
    pub max_batch_events: usize,
    pub delivery: webhooks::DeliveryOptions,
}

const ADMIN_HASH: &str = "admin_token_sha256";

/// The admin token's hash: the given token, or the one stored, or a new one printed once.
fn admin_hash(store: &dyn store::Store, given: Option<String>) -> anyhow::Result<String> {
    if let Some(token) = given.filter(|t| !t.is_empty()) {
        return Ok(auth::hash(&token));
    }
    if let Some(hash) = store.setting(ADMIN_HASH)? {
        return Ok(hash);
    }
    let token = auth::generate("sp_admin_");
    let hash = auth::hash(&token);
    // Another process starting on the same database may have stored its own first.
    let stored = store.insert_setting(ADMIN_HASH, &hash)?;
    if stored == hash {
        announce(format_args!(
            "generated admin token (shown once, store it): {token}"
        ));
    }
    Ok(stored)
}

/// This installation's id, which namespaces its keys in a shared Redis: made once, stored.
fn installation(store: &dyn store::Store) -> anyhow::Result<String> {
    Ok(store.insert_setting("installation_id", &auth::generate("")[..16])?)
}

/// `meta.storage` of the service: in its database, with group commit — each
/// events request syncs its writes once before it answers, so an acknowledged
/// event's storage writes survive power loss.
fn open_storage(db: &std::path::Path) -> Result<SqliteStorage, StorageError> {
    SqliteStorage::open_with(db, Durability::Group)
}

/// What the service keeps its state in.
struct Opened {
    store: Arc<dyn store::Store>,
    storage: Arc<dyn Storage>,
    /// Whether other processes may share it (PostgreSQL): their changes are polled.
    shared: bool,
}

/// The store and `meta.storage` of `db`, migrated; a one-line error when the
/// database cannot be opened or reached.
fn open(db: &Database) -> anyhow::Result<Opened> {
    Ok(match db {
        Database::Sqlite(path) => Opened {
            store: Arc::new(store::SqliteStore::open(path)?),
            storage: Arc::new(open_storage(path)?),
            shared: false,
        },
        Database::Postgres(url) => {
            let pg = Arc::new(store::PgStore::connect(url)?);
            Opened {
                store: pg.clone(),
                storage: Arc::new(store::PgStorage::new(pg)),
                shared: true,
            }
        }
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    trace::init();
    let Opened {
        store,
        storage,
        shared,
    } = open(&args.db)?;
    let admin_hash = admin_hash(store.as_ref(), args.admin_token)?;
    let cache = match &args.cache {
        Some(url) => Some(redis_cache::RedisCache::connect(
            url,
            &installation(store.as_ref())?,
        )?),
        None => None,
    };
    let metrics = Arc::new(metrics::Metrics::new());
    let delivery = Arc::new(webhooks::Delivery::new(
        store.clone(),
        args.delivery,
        metrics.clone(),
    ));
    let state = state::AppState {
        store: store.clone(),
        cache,
        delivery: delivery.clone(),
        metrics,
        teams: Arc::new(registry::Teams::default()),
        connectors: teams::ConnectorDefaults {
            runtime: args.runtime,
            storage,
            geoip: args.geoip,
            limits: args.limits,
        },
        admin_hash: Arc::new(admin_hash),
        metrics_hash: args
            .metrics_token
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(auth::hash(&t))),
        gates: Arc::new(fairness::TeamGates::new(args.team_concurrency)),
        max_batch_events: args.max_batch_events,
        background: Arc::new(fairness::BackgroundPool::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )?),
    };
    for team in store.teams_with_chains()? {
        restore(&state, team)?;
    }
    let watched = state.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        announce(format_args!(
            "listening on http://{}",
            listener.local_addr()?
        ));
        tokio::spawn(delivery.run(Arc::new(on_event::TeamExports(watched.clone()))));
        // Other processes share the database: take in what they change.
        if shared {
            tokio::spawn(propagation::run(watched));
        }
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving")
    })
}

/// Installs `team`'s stored chain. A chain this sandpipe cannot run — a
/// bundle refused by its admission, as after an upgrade whose engine reads
/// other bytecode — leaves that team without a chain until it PUTs one (its
/// events answer 409, and its logs say why); every other team is served. Only
/// a failure of the store itself stops the start.
fn restore(state: &state::AppState, team: i64) -> anyhow::Result<()> {
    match chains::load(state, team) {
        Ok(()) => Ok(()),
        Err(chains::ChainError::Store(error)) => {
            Err(error).with_context(|| format!("team {team}'s stored chain"))
        }
        Err(error) => {
            tracing::error!(team, %error, "stored chain not started");
            let line = store::LogLine {
                connector: "sandpipe".into(),
                connector_id: None,
                level: sandpipe_abi::LogLevel::Error,
                message: format!(
                    "the stored chain was not started: {error}; upload rebuilt bundles and PUT the chain again"
                ),
                time: std::time::SystemTime::now(),
            };
            state
                .store
                .append_logs(team, &[line])
                .with_context(|| format!("team {team}'s logs"))
        }
    }
}

/// Resolves on SIGINT or SIGTERM: the server stops accepting and finishes in-flight requests.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// One line for the operator on stderr, outside the log: the address the
/// service listens on (scripts and tests read it, and no `RUST_LOG` may hide
/// it) and a generated admin token (a secret, so never a log event, which
/// may be shipped and kept).
fn announce(line: std::fmt::Arguments<'_>) {
    eprintln!("sandpipe: {line}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn storage_writes_are_group_committed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = super::open_storage(&dir.path().join("s.db")).unwrap();
        sandpipe_runtime::Storage::set(
            &storage,
            "s",
            "k",
            &serde_json::json!(1),
            Default::default(),
        )
        .unwrap();
        assert!(storage.sync_writes().unwrap());
    }
}
