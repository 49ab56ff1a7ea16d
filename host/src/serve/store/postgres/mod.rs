//! [`PgStore`]: the store on a PostgreSQL server, so several `sandpipe serve`
//! processes share teams, bundles, chains, quarantine, logs, `meta.storage`
//! ([`PgStorage`]) and the webhook queue. tokio-postgres connections in a
//! deadpool pool, driven by a small runtime of their own: the store's traits
//! are synchronous (their callers are on blocking threads), so each call
//! blocks on its future there. One file per trait: [`teams`], [`chains`],
//! [`logs`], [`webhooks`], and [`storage`] for `meta.storage`.
//!
//! A server that cannot be reached — at start, or lost while running — is
//! [`StoreError::Unavailable`]: a one-line error at start, a 503 while running;
//! the pool drops broken connections and makes new ones when it returns.

mod chains;
mod logs;
mod storage;
mod tasks;
mod teams;
mod webhooks;

pub use storage::PgStorage;

use super::migrations::MIGRATIONS;
use super::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::NoTls;

/// Connections one process keeps open at most.
const POOL_SIZE: usize = 16;
/// How long making a connection, or waiting for a free one, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A PostgreSQL database, as its URL, shown without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    url: String,
    shown: String,
}

impl PgUrl {
    /// Whether `text` names a PostgreSQL database (else it is a SQLite path).
    pub fn is_postgres(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    pub fn new(url: &str) -> PgUrl {
        PgUrl {
            url: url.to_string(),
            shown: crate::serve::shown_url(url),
        }
    }
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The store on PostgreSQL.
pub struct PgStore {
    pool: Pool,
    /// Drives the pool; `None` only once dropped (shut down in the
    /// background, as the service's own runtime may be what drops it).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A tokio-postgres error as the store reports it: a server that is gone (no
/// answer, a closed connection, a connection exception or shutdown) is
/// [`StoreError::Unavailable`]; an error the server answered is a query's.
pub(super) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    let lost = error.is_closed()
        || match error.as_db_error() {
            None => true,
            Some(db) => {
                let code = db.code().code();
                code.starts_with("08") || code.starts_with("57P")
            }
        };
    if lost {
        StoreError::Unavailable(one_line(&error))
    } else {
        StoreError::Postgres(one_line(&error))
    }
}

/// An error and its causes on one line.
pub(super) fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

impl PgStore {
    /// Connects to `url`, checks the server answers and runs the migrations it has not had.
    pub fn connect(url: &PgUrl) -> Result<PgStore> {
        let at = |e: StoreError| StoreError::Connect {
            url: url.to_string(),
            reason: match e {
                StoreError::Unavailable(reason) | StoreError::Postgres(reason) => reason,
                other => other.to_string(),
            },
        };
        let mut config: tokio_postgres::Config =
            url.url.parse().map_err(|e| StoreError::Connect {
                url: url.to_string(),
                reason: format!("invalid URL: {}", one_line(&e)),
            })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("sandpipe")
            // The server's notices ("already exists, skipping") are not the operator's news.
            .options("-c client_min_messages=warning");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandpipe-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let store = PgStore {
            pool,
            runtime: Some(runtime),
        };
        store.migrate(&url.to_string()).map_err(|e| match e {
            StoreError::NewerSchema { .. } => e,
            other => at(other),
        })?;
        Ok(store)
    }

    /// Runs `work` on a pooled connection, blocking this (non-async) thread until it is done.
    pub(super) fn run<T, F>(&self, work: impl FnOnce(deadpool_postgres::Object) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let runtime = self.runtime.as_ref().expect("taken only when dropped");
        runtime.handle().block_on(async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| StoreError::Unavailable(pool_error(e)))?;
            work(client).await
        })
    }

    /// Runs the migrations the database has not had, under an advisory lock
    /// so processes starting together migrate once; refuses a newer schema.
    fn migrate(&self, location: &str) -> Result<()> {
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            // One migrator at a time (the lock ends with the transaction).
            tx.execute("SELECT pg_advisory_xact_lock(7301265)", &[])
                .await
                .map_err(pg_error)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS sandpipe_schema (version BIGINT NOT NULL);
                 INSERT INTO sandpipe_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sandpipe_schema);",
            )
            .await
            .map_err(pg_error)?;
            let found: i64 = tx
                .query_one("SELECT version FROM sandpipe_schema", &[])
                .await
                .map_err(pg_error)?
                .get(0);
            let version = usize::try_from(found).unwrap_or(usize::MAX);
            if version > MIGRATIONS.len() {
                return Err(StoreError::NewerSchema {
                    location: location.to_string(),
                    found,
                    known: MIGRATIONS.len(),
                });
            }
            for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
                tx.batch_execute(migration.postgres).await.map_err(pg_error)?;
                tx.execute(
                    "UPDATE sandpipe_schema SET version = $1",
                    &[&(index as i64 + 1)],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)
        })
    }
}

/// A pool error on one line (the backend's error with its causes).
fn pool_error(error: deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(e) => one_line(&e),
        other => one_line(&other),
    }
}
