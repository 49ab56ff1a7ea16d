//! `meta.cache` on Redis (`--cache redis://…`), so every process sees one cache
//! per connector. Each operation is one Lua script (`cache.lua`), atomic on the
//! server: `incr` from any number of processes counts without a gap or a
//! repeat, and the per-connector bounds of the in-memory cache
//! ([`MAX_KEYS`], [`MAX_BYTES`]) hold, with TTLs kept by Redis itself. Keys are
//! `sandpipe:<installation>:<connector scope>:…`, the installation's id being
//! stored in its database, so deployments sharing a Redis never meet.
//!
//! A Redis that cannot be reached fails the operation with
//! [`CacheError::Unavailable`] and is remembered ([`RedisCache::lost`]): an
//! events request one of whose cache calls failed answers 503 (a batch runs
//! on one thread and compares [`failures_here`] before and after it, so a
//! team whose connectors made no cache call is served). For
//! [`RETRY_AFTER`] after a failure, calls fail at once rather than each
//! waiting out the timeout; the connection manager reconnects when Redis
//! returns.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sandpipe_runtime::ConnectorCache;
use sandpipe_runtime::services::cache::{
    CacheError, CacheRequest, MAX_BYTES, MAX_KEYS, SharedCache,
};
use serde_json::{Value, json};
use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long connecting, or one answer, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How long after a failure calls fail without trying Redis.
const RETRY_AFTER: Duration = Duration::from_secs(1);

thread_local! {
    /// Cache calls made on this thread that could not reach Redis.
    static FAILED_HERE: Cell<u64> = const { Cell::new(0) };
}

/// How many cache calls made on this thread could not reach Redis so far:
/// a batch, which runs on one thread, compares the count before and after it.
pub fn failures_here() -> u64 {
    FAILED_HERE.with(Cell::get)
}

/// Why `--cache` cannot be used at start.
#[derive(Debug, thiserror::Error)]
#[error("--cache {url}: {reason}")]
pub struct CacheConnectError {
    url: String,
    reason: String,
}

/// The service's Redis.
pub struct RedisCache {
    connection: ConnectionManager,
    /// Runs the connection; `None` only once dropped (shut down in the
    /// background, as the service's own runtime may be what drops it).
    runtime: Option<tokio::runtime::Runtime>,
    script: redis::Script,
    /// `sandpipe:<installation>:`.
    prefix: String,
    /// Why the last operation could not reach Redis, and when, until one does.
    lost: Mutex<Option<(String, Instant)>>,
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl RedisCache {
    /// Connects to `url` and checks the server answers.
    pub fn connect(url: &str, installation: &str) -> Result<Arc<RedisCache>, CacheConnectError> {
        let fail = |reason: String| CacheConnectError {
            url: super::shown_url(url),
            reason,
        };
        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
            return Err(fail("expected a redis:// URL".into()));
        }
        let client =
            redis::Client::open(url).map_err(|e| fail(format!("invalid URL: {}", one_line(&e))))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sandpipe-redis")
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = runtime
            .block_on(async {
                let mut connection = ConnectionManager::new_with_config(client, config).await?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await?;
                Ok::<_, redis::RedisError>(connection)
            })
            .map_err(|e| fail(format!("cannot connect: {}", one_line(&e))))?;
        Ok(Arc::new(RedisCache {
            connection,
            runtime: Some(runtime),
            script: redis::Script::new(include_str!("cache.lua")),
            prefix: format!("sandpipe:{installation}:"),
            lost: Mutex::new(None),
        }))
    }

    /// Runs `work` on the connection's runtime, blocking this thread.
    fn block_on<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("taken only when dropped")
            .handle()
            .block_on(work)
    }

    /// The `meta.cache` of the connector whose scope is `scope`.
    pub fn for_connector(self: &Arc<Self>, scope: &str) -> ConnectorCache {
        ConnectorCache::shared(Arc::new(Namespace {
            redis: self.clone(),
            prefix: format!("{}{scope}:", self.prefix),
        }))
    }

    /// Why Redis is unreachable, if the last operation found it so.
    pub fn lost(&self) -> Option<String> {
        self.lock_lost().as_ref().map(|(reason, _)| reason.clone())
    }

    fn lock_lost(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why Redis was unreachable, when that was found under [`RETRY_AFTER`] ago.
    fn lately_lost(&self) -> Option<String> {
        match &*self.lock_lost() {
            Some((reason, at)) if at.elapsed() < RETRY_AFTER => Some(reason.clone()),
            _ => None,
        }
    }

    /// Remembers whether an operation reached Redis.
    fn record<T>(&self, result: Result<T, String>) -> Result<T, String> {
        let mut lost = self.lock_lost();
        match &result {
            Ok(_) => *lost = None,
            Err(reason) => {
                FAILED_HERE.with(|failed| failed.set(failed.get() + 1));
                *lost = Some((reason.clone(), Instant::now()));
            }
        }
        result
    }
}

/// Why the server is out of reach, as a one-line reason.
fn unreachable(error: redis::RedisError) -> String {
    one_line(&error)
}

/// Whether `error` says the server could not be reached (rather than that it refused a call).
fn out_of_reach(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

fn one_line(error: &dyn std::error::Error) -> String {
    error.to_string().replace('\n', " ")
}

/// One connector's keys in the service's Redis.
struct Namespace {
    redis: Arc<RedisCache>,
    /// `sandpipe:<installation>:<scope>:`.
    prefix: String,
}

/// Milliseconds of a TTL, as the script takes them.
fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Namespace {
    /// Runs the script for `op` on `key` with `args`.
    fn call(&self, op: &str, key: &str, args: Vec<String>) -> Result<redis::Value, CacheError> {
        let mut invocation = self.redis.script.prepare_invoke();
        invocation
            .key(format!("{}k:{key}", self.prefix))
            .key(format!("{}index", self.prefix))
            .key(format!("{}sizes", self.prefix))
            .key(format!("{}bytes", self.prefix))
            .arg(op)
            .arg(key)
            .arg(MAX_KEYS)
            .arg(MAX_BYTES)
            .arg(format!("{}k:", self.prefix));
        for arg in args {
            invocation.arg(arg);
        }
        if let Some(reason) = self.redis.lately_lost() {
            FAILED_HERE.with(|failed| failed.set(failed.get() + 1));
            return Err(CacheError::Unavailable(reason));
        }
        let mut connection = self.redis.connection.clone();
        let answer = self.redis.block_on(async move {
            invocation
                .invoke_async::<redis::Value>(&mut connection)
                .await
        });
        match answer {
            Ok(value) => {
                self.redis.record(Ok(())).map_err(CacheError::Unavailable)?;
                Ok(value)
            }
            Err(error) => match error.code() {
                Some("SANDPIPE_KEYS") => Err(CacheError::TooManyKeys),
                Some("SANDPIPE_BYTES") => Err(CacheError::TooManyBytes),
                Some("SANDPIPE_NOTLIST") => Err(CacheError::NotAList(key.to_string())),
                Some("SANDPIPE_NOTINT") => Err(CacheError::NotAnInteger(key.to_string())),
                Some("SANDPIPE_OVERFLOW") => Err(CacheError::Overflow),
                // The server out of reach: lost until a call reaches it.
                _ if out_of_reach(&error) => Err(CacheError::Unavailable(
                    self.redis
                        .record::<()>(Err(unreachable(error)))
                        .unwrap_err(),
                )),
                // Any other refusal (out of memory, busy, a script error)
                // fails this call only, not every team's for a while.
                _ => Err(CacheError::Unavailable(one_line(&error))),
            },
        }
    }
}

/// A Redis reply as JSON: integers, strings, arrays of them, nil as null.
fn to_json(value: redis::Value) -> Value {
    match value {
        redis::Value::Nil => Value::Null,
        redis::Value::Int(n) => json!(n),
        redis::Value::BulkString(bytes) => json!(String::from_utf8_lossy(&bytes)),
        redis::Value::SimpleString(text) => json!(text),
        redis::Value::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        _ => Value::Null,
    }
}

impl SharedCache for Namespace {
    fn clear(&self) -> Result<(), CacheError> {
        self.call("clear", "", vec![])?;
        Ok(())
    }

    fn answer(&self, request: CacheRequest) -> Result<Value, CacheError> {
        Ok(match request {
            CacheRequest::Set { key, value, ttl } => {
                let ttl = ttl.map_or(-1, |ttl| millis(ttl) as i64);
                let text = serde_json::to_string(&value).expect("a JSON value serialises");
                self.call("set", &key, vec![text, ttl.to_string()])?;
                Value::Null
            }
            CacheRequest::Get { key } => match to_json(self.call("get", &key, vec![])?) {
                Value::Array(mut answer) if answer.len() == 2 => {
                    let payload = answer.pop().unwrap_or_default();
                    match (answer.pop(), payload) {
                        (Some(kind), Value::String(text)) if kind == "value" => {
                            json!({ "value": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null) })
                        }
                        (_, list) => json!({ "value": list }),
                    }
                }
                _ => Value::Null,
            },
            CacheRequest::Incr { key } => match to_json(self.call("incr", &key, vec![])?) {
                Value::String(text) => text
                    .parse::<i64>()
                    .map(|n| json!(n))
                    .map_err(|_| CacheError::NotAnInteger(key))?,
                other => other,
            },
            CacheRequest::Expire { key, ttl } => {
                let answer = self.call("expire", &key, vec![millis(ttl).to_string()])?;
                json!(to_json(answer) == json!(1))
            }
            CacheRequest::Lpush { key, elements } => to_json(self.call("lpush", &key, elements)?),
            CacheRequest::Lrange { key, start, stop } => {
                to_json(self.call("lrange", &key, vec![start.to_string(), stop.to_string()])?)
            }
            CacheRequest::Llen { key } => to_json(self.call("llen", &key, vec![])?),
            CacheRequest::Lrem {
                key,
                count,
                element,
            } => to_json(self.call("lrem", &key, vec![count.to_string(), element])?),
            CacheRequest::Lpop { key, count } => {
                to_json(self.call("lpop", &key, vec![count.to_string()])?)
            }
        })
    }
}
