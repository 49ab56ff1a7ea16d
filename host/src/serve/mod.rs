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
pub(crate) mod events;
mod fairness;
mod http;
mod json;
pub(crate) mod listen;
pub(crate) mod metrics;
mod on_event;
mod propagation;
mod quarantine;
mod redis_cache;
mod registry;
pub(crate) mod schedule;
pub(crate) mod state;
pub(crate) mod store;
mod teams;
pub(crate) mod trace;
mod webhooks;

pub use fairness::TeamGates;
pub use webhooks::{ATTEMPT_TIMEOUT, DeliveryOptions};

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

/// A server URL (`--db`, `--cache`) as messages show it: a password in its
/// user info, or in a query parameter whose name holds `password`, replaced
/// by `***`. Read by the text's shape, so a URL that does not parse (a bad
/// port) is shown without its password too; otherwise as it was given.
pub(crate) fn shown_url(text: &str) -> String {
    // The user info ends at the last `@` (a password may hold `/`, `?` or
    // `@`): what precedes it loses all after its first `:`. An `@` in the
    // query may hide more than the password, never less.
    let text = match text.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user_info, after)) => {
                let user = match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None => user_info.to_string(),
                };
                format!("{scheme}://{user}@{after}")
            }
            None => text.to_string(),
        },
        None => text.to_string(),
    };
    let Some((head, query)) = text.split_once('?') else {
        return text;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

/// libpq's connection keywords: a `--db` value that begins with one and `=`
/// is a keyword string, not a file name.
const LIBPQ_KEYWORDS: [&str; 20] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslpassword",
    "service",
    "target_session_attrs",
    "channel_binding",
    "require_auth",
];

impl Database {
    /// A `postgres://` or `postgresql://` URL, or else a SQLite path; a URL
    /// of any other scheme, or a libpq keyword string (`host=… port=…`), is
    /// refused rather than taken for a file name.
    pub fn parse(text: &str) -> Result<Database, String> {
        let first = text.trim_start();
        let key = first
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        if LIBPQ_KEYWORDS.contains(&key) && first[key.len()..].trim_start().starts_with('=') {
            // Not echoed: such a string may hold `password=…`.
            return Err("--db: a libpq keyword string (host=… dbname=…) is not accepted: give a postgres:// URL or a SQLite file path".into());
        }
        if store::PgUrl::is_postgres(text) {
            Ok(Database::Postgres(store::PgUrl::new(text)))
        } else if let Some((scheme, _)) = text.split_once("://") {
            Err(format!(
                "--db: {scheme}:// is not a database sandpipe keeps its state in: give a postgres:// URL or a SQLite file path"
            ))
        } else {
            Ok(Database::Sqlite(PathBuf::from(text)))
        }
    }
}

/// `sandpipe serve` options.
pub struct ServeArgs {
    pub listen: SocketAddr,
    pub admin_token: Option<String>,
    /// A token that may read `/metrics` besides the admin token.
    pub metrics_token: Option<String>,
    /// A `nats://` URL: `POST …/events?async=true` publishes there.
    pub nats: Option<String>,
    /// How long a client may take to send a request's head and body.
    pub deadlines: listen::Deadlines,
    pub pipeline: Pipeline,
}

/// What runs teams' chains, in `serve` and in `worker` alike: the state, the
/// connectors' engine and limits, and the webhook delivery.
pub struct Pipeline {
    pub db: Database,
    /// A `redis://` URL for `meta.cache` (else each process keeps its own in memory).
    pub cache: Option<String>,
    pub geoip: Arc<GeoIpDatabase>,
    /// The engine and plugin every connector runs on (with or without fuel).
    pub runtime: sandpipe_runtime::Runtime,
    /// Limits for every connector call, checked against `runtime`.
    pub limits: sandpipe_runtime::Limits,
    /// What every connector may `fetch` (processEvent, composeWebhook and onEvent calls alike).
    pub fetch: sandpipe_runtime::FetchPolicy,
    /// Event requests one team may run at once.
    pub team_concurrency: usize,
    /// Most events one events request may carry.
    pub max_batch_events: usize,
    /// Teams whose chains run at the shared-instance level.
    pub shared_teams: std::collections::BTreeSet<i64>,
    pub delivery: webhooks::DeliveryOptions,
    /// When the teams' scheduled tasks run (`None`: not in this process).
    pub tasks: Option<schedule::TaskOptions>,
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
struct Backing {
    store: Arc<dyn store::Store>,
    storage: Arc<dyn Storage>,
    /// Whether other processes may share it (PostgreSQL): their changes are polled.
    shared: bool,
}

/// The store and `meta.storage` of `db`, migrated; a one-line error when the
/// database cannot be opened or reached.
fn open_backing(db: &Database) -> anyhow::Result<Backing> {
    Ok(match db {
        Database::Sqlite(path) => Backing {
            store: Arc::new(store::SqliteStore::open(path)?),
            storage: Arc::new(open_storage(path)?),
            shared: false,
        },
        Database::Postgres(url) => {
            let pg = Arc::new(store::PgStore::connect(url)?);
            Backing {
                store: pg.clone(),
                storage: Arc::new(store::PgStorage::new(pg)),
                shared: true,
            }
        }
    })
}

/// A pipeline opened: the state its work shares, and what runs beside it.
pub(crate) struct Opened {
    pub state: state::AppState,
    /// Whether other processes share the database (PostgreSQL): their changes are polled.
    pub shared: bool,
    /// When the teams' scheduled tasks run (`None`: not in this process).
    pub tasks: Option<schedule::TaskOptions>,
}

impl Opened {
    /// Runs the webhook delivery and, on a shared database, the propagation
    /// of other processes' changes; on the current tokio runtime.
    pub fn spawn_background(&self) {
        tokio::spawn(
            self.state
                .delivery
                .clone()
                .run(Arc::new(on_event::TeamExports(self.state.clone()))),
        );
        if self.shared {
            tokio::spawn(propagation::run(self.state.clone()));
        }
        if let Some(options) = self.tasks {
            tokio::spawn(schedule::run(self.state.clone(), options));
        }
    }
}

/// Who may call the admin routes: `serve`'s admin token; a worker has none.
pub(crate) enum Admin {
    /// The given token, or the stored one, or a new one printed once.
    Token(Option<String>),
    /// No admin routes are served.
    None,
}

/// Opens `pipeline`'s database and cache and installs every stored chain.
pub(crate) fn open(pipeline: Pipeline, admin: Admin) -> anyhow::Result<Opened> {
    let Backing {
        store,
        storage,
        shared,
    } = open_backing(&pipeline.db)?;
    let cache = match &pipeline.cache {
        Some(url) => Some(redis_cache::RedisCache::connect(
            url,
            &installation(store.as_ref())?,
        )?),
        None => None,
    };
    // After every server is reached: a start that fails stores no generated
    // admin token, which would then never be shown again.
    let admin_hash = match admin {
        Admin::Token(token) => admin_hash(store.as_ref(), token)?,
        // Matches no token: every token's hash is 64 hex digits.
        Admin::None => String::new(),
    };
    if !pipeline.shared_teams.is_empty() {
        let teams: Vec<String> = pipeline.shared_teams.iter().map(i64::to_string).collect();
        announce(format_args!(
            "chains of teams {} run at the shared-instance level (SECURITY.md, \"Isolation levels\")",
            teams.join(", ")
        ));
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let delivery = Arc::new(webhooks::Delivery::new(
        store.clone(),
        pipeline.delivery,
        metrics.clone(),
    ));
    let state = state::AppState {
        store: store.clone(),
        cache,
        delivery,
        metrics,
        teams: Arc::new(registry::Teams::default()),
        connectors: teams::ConnectorDefaults {
            runtime: pipeline.runtime,
            storage,
            geoip: pipeline.geoip,
            limits: pipeline.limits,
            fetch: pipeline.fetch,
            shared_teams: Arc::new(pipeline.shared_teams),
        },
        admin_hash: Arc::new(admin_hash),
        metrics_hash: None,
        gates: Arc::new(fairness::TeamGates::new(pipeline.team_concurrency)),
        max_batch_events: pipeline.max_batch_events,
        background: Arc::new(fairness::BackgroundPool::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )?),
        publisher: None,
        health: Arc::default(),
    };
    for team in store.teams_with_chains()? {
        restore(&state, team)?;
    }
    Ok(Opened {
        state,
        shared,
        tasks: pipeline.tasks,
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    trace::init();
    // The address first: a start that cannot listen stores nothing (a new
    // admin token included, which would then never be shown again).
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // NATS too before the store is opened, for the same reason.
    let publisher = match &args.nats {
        Some(url) => Some(Arc::new(
            runtime.block_on(crate::worker::Publisher::connect(url))?,
        )),
        None => None,
    };
    let mut opened = open(args.pipeline, Admin::Token(args.admin_token))?;
    opened.state.publisher = publisher;
    opened.state.metrics_hash = args
        .metrics_token
        .filter(|t| !t.is_empty())
        .map(|t| Arc::new(auth::hash(&t)));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        announce(format_args!(
            "listening on http://{}",
            listener.local_addr()?
        ));
        opened.spawn_background();
        listen::serve(listener, api::router(opened.state), args.deadlines, async {
            shutdown().await;
            tracing::info!("shutting down: finishing the requests in flight");
        })
        .await;
        Ok(())
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

/// Resolves on SIGINT or SIGTERM: the server stops accepting and finishes
/// in-flight requests (a worker stops pulling and finishes its batch).
pub(crate) async fn shutdown() {
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
}

/// One line for the operator on stderr, outside the log: the address the
/// service listens on (scripts and tests read it, and no `RUST_LOG` may hide
/// it) and a generated admin token (a secret, so never a log event, which
/// may be shipped and kept).
pub(crate) fn announce(line: std::fmt::Arguments<'_>) {
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

    /// A password never shows in a message about `--db` or `--cache`: in the
    /// user info, in a query parameter, or in a URL that does not parse.
    #[test]
    fn server_urls_are_shown_without_passwords() {
        for (given, shown) in [
            (
                "postgres://u:hunter2@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "postgres://u:hunter2@h:notaport/db",
                "postgres://u:***@h:notaport/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h:1/db?password=hunter2&user=x",
                "postgres://h:1/db?password=***&user=x",
            ),
            (
                "redis://:hunter2@127.0.0.1:1/?sslpassword=hunter2",
                "redis://:***@127.0.0.1:1/?sslpassword=***",
            ),
            ("redis://127.0.0.1:1/", "redis://127.0.0.1:1/"),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?password=x@y",
                "postgres://h/db?password=***",
            ),
        ] {
            assert_eq!(super::shown_url(given), shown);
        }
    }

    /// A libpq keyword string is refused, not taken for a SQLite file name
    /// (which put its password in a file's name), and not echoed.
    #[test]
    fn a_libpq_keyword_string_is_refused() {
        for given in [
            "host=127.0.0.1 port=1 password=hunter2",
            "host = h password='a hunter2'",
            "dbname=x",
        ] {
            let error = super::Database::parse(given).unwrap_err();
            assert!(error.starts_with("--db: a libpq keyword string"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        for path in ["state/sandpipe.db", "runs/id=3.db"] {
            assert!(matches!(
                super::Database::parse(path),
                Ok(super::Database::Sqlite(_))
            ));
        }
    }
}
