//! The host services a connector reaches through the `request` host function:
//! `meta.cache` ([`cache`]), `meta.storage` ([`storage`]), `meta.geoip`
//! ([`geoip`]), `fetch` ([`fetch`]), `posthog.capture` and `Intl`'s
//! formatting ([`intl`]).
//!
//! A request is a JSON object with an `"op"`; the answer is `{"ok": value}` or
//! `{"error": "message"}`, the message a [`ServiceError`]'s. Requests are
//! parsed from guest memory under a size bound; every service bounds what one
//! connector can make the host keep.

pub mod cache;
pub mod fetch;
pub mod geoip;
pub mod intl;
pub mod storage;

use cache::{Cache, CacheError, CacheRequest, SharedCache};
use fetch::{FetchError, FetchPolicy};
use geoip::{GeoIpDatabase, GeoIpError};
use intl::IntlError;
use sandpipe_abi::Service;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use storage::{Storage, StorageError};
use thiserror::Error;

/// Largest request a connector may send to a service.
pub const MAX_REQUEST: usize = 1 << 20;

/// Why the host refused a service request. The message is what the
/// connector's code sees (and what is logged for the connector).
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("malformed request: {0}")]
    Malformed(serde_json::Error),
    #[error("unknown host service {0}")]
    UnknownService(u32),
    #[error("meta.storage is not available: the host runs without a storage backend")]
    NoStorage,
    #[error("meta.geoip is not available: the host runs without a GeoLite2-City database")]
    NoGeoIp,
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Intl(#[from] IntlError),
}

impl ServiceError {
    /// Whether the host refused the request (a policy, a bound, a malformed
    /// or unknown request), as against a request it made that failed (the
    /// network) or an answer that is an error about the value asked about (a
    /// date out of range, an address that is not an IP). Only a refusal is
    /// logged for the connector; its code sees every error either way.
    pub fn is_refusal(&self) -> bool {
        use cache::CacheError as C;
        use storage::StorageError as S;
        match self {
            ServiceError::Fetch(error) => error.is_refusal(),
            ServiceError::Intl(_) | ServiceError::GeoIp(_) => false,
            // The value held is not what the operation needs, or the server
            // behind the service failed.
            ServiceError::Cache(
                C::NotAList(_) | C::NotAnInteger(_) | C::Overflow | C::Unavailable(_),
            ) => false,
            ServiceError::Storage(
                S::Corrupt { .. }
                | S::Open { .. }
                | S::Unavailable(_)
                | S::Sync { .. }
                | S::Sqlite(_)
                | S::Server(_)
                | S::ServerUnavailable(_),
            ) => false,
            _ => true,
        }
    }
}

/// A request without a field its operation needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("request needs a string \"{0}\"")]
    String(&'static str),
    #[error("request needs a number \"{0}\"")]
    Number(&'static str),
}

/// Why `posthog.capture` refused an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaptureError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("posthog.capture: properties must be an object")]
    Properties,
    #[error("posthog.capture: at most {MAX_CAPTURED} events per processed event")]
    TooMany,
    #[error("posthog.capture: at most 1 MiB of events per processed event")]
    TooLarge,
}

/// What a connector's services are made of: its `meta.cache`, persistent
/// storage (with the scope of its config), a GeoIP database, and a fetch policy.
#[derive(Clone, Default)]
pub struct ServiceConfig {
    pub cache: ConnectorCache,
    pub storage: Option<(Arc<dyn Storage>, String)>,
    /// What `meta.storage` may hold for this connector (its limits').
    pub storage_quota: storage::Quota,
    pub geoip: Option<Arc<GeoIpDatabase>>,
    pub fetch: FetchPolicy,
}

/// One configured connector's `meta.cache`, shared by every instance of it: a
/// fresh instance after a trap, and in the service every chain of a team's pool
/// (as PostHog's Redis-backed cache is shared by all its workers). In host
/// memory by default; [`ConnectorCache::shared`] puts it in a [`SharedCache`]
/// every process reaches.
#[derive(Clone)]
pub struct ConnectorCache(CacheKind);

#[derive(Clone)]
enum CacheKind {
    Memory(Arc<Mutex<Cache>>),
    Shared(Arc<dyn SharedCache>),
}

impl Default for ConnectorCache {
    fn default() -> Self {
        ConnectorCache(CacheKind::Memory(Arc::default()))
    }
}

impl ConnectorCache {
    /// A cache kept in `cache` (a connector's namespace of the service's Redis).
    pub fn shared(cache: Arc<dyn SharedCache>) -> ConnectorCache {
        ConnectorCache(CacheKind::Shared(cache))
    }

    /// Answers one cache request as the connector's `meta.cache` would (also
    /// the host seeding or reading it, as `sandpipe test` fixtures do).
    pub fn handle(&self, request: &Value) -> Result<Value, CacheError> {
        match &self.0 {
            CacheKind::Memory(cache) => cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .handle(request),
            CacheKind::Shared(cache) => cache.answer(CacheRequest::parse(request)?),
        }
    }
}

impl ConnectorCache {
    /// Empties it (the connector's state was reset).
    pub fn clear(&self) -> Result<(), CacheError> {
        match &self.0 {
            CacheKind::Memory(cache) => {
                *cache.lock().unwrap_or_else(|e| e.into_inner()) = Cache::default();
                Ok(())
            }
            CacheKind::Shared(cache) => cache.clear(),
        }
    }
}

/// The services of one connector, shared by all its instances (so cache and
/// storage outlive an instance that trapped).
pub struct ConnectorServices {
    config: ServiceConfig,
    /// Events from `posthog.capture` since the connector last took them, and
    /// the bytes of their requests.
    captured: Mutex<(Vec<Value>, usize)>,
}

/// Events one connector may capture while one event passes through the chain.
pub const MAX_CAPTURED: usize = 100;

/// Bytes of events (their requests' JSON) one connector may capture while one
/// event passes through the chain: as much as one result may hold, so a
/// batch's captured events are bounded as its results are.
pub const MAX_CAPTURED_BYTES: usize = crate::limits::MIB;

impl ConnectorServices {
    /// What `config` provides.
    pub fn new(config: ServiceConfig) -> ConnectorServices {
        ConnectorServices {
            config,
            captured: Mutex::new((Vec::new(), 0)),
        }
    }

    /// Takes the events captured since the last call.
    pub fn take_captured(&self) -> Vec<Value> {
        std::mem::take(&mut *self.captured.lock().unwrap_or_else(|e| e.into_inner())).0
    }

    /// Keeps one captured event; `size` is its request's length.
    fn capture(&self, request: &Value, size: usize) -> Result<Value, CaptureError> {
        let event = string(request, "event")?;
        let properties = match request.get("properties") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(properties)) => properties.clone(),
            Some(_) => return Err(CaptureError::Properties),
        };
        let mut captured = self.captured.lock().unwrap_or_else(|e| e.into_inner());
        let (events, bytes) = &mut *captured;
        if events.len() >= MAX_CAPTURED {
            return Err(CaptureError::TooMany);
        }
        if *bytes + size > MAX_CAPTURED_BYTES {
            return Err(CaptureError::TooLarge);
        }
        *bytes += size;
        events.push(json!({ "event": event, "properties": properties }));
        Ok(Value::Null)
    }

    /// Answers one request: a value, or why the host refused it. Never panics
    /// on guest input. `deadline` is the call's: a service that waits (fetch)
    /// stops there.
    pub fn answer(
        &self,
        service: u32,
        request: &[u8],
        deadline: Instant,
    ) -> Result<Answer, ServiceError> {
        let size = request.len();
        let request = serde_json::from_slice::<Value>(request).map_err(ServiceError::Malformed)?;
        let value = match Service::from_u32(service) {
            Some(Service::Cache) => self.config.cache.handle(&request)?,
            Some(Service::Storage) => match &self.config.storage {
                Some((storage, scope)) => {
                    storage::handle(storage.as_ref(), scope, self.config.storage_quota, &request)?
                }
                None => return Err(ServiceError::NoStorage),
            },
            Some(Service::Capture) => self.capture(&request, size)?,
            Some(Service::GeoIp) => match &self.config.geoip {
                Some(database) => return Ok(geoip::handle(database, &request)?),
                None => return Err(ServiceError::NoGeoIp),
            },
            Some(Service::Fetch) => fetch::handle(&self.config.fetch, &request, deadline)?,
            Some(Service::Intl) => intl::handle(&request)?,
            None => return Err(ServiceError::UnknownService(service)),
        };
        Ok(Answer::Value(value))
    }
}

/// What a service answers: a value, or (GeoIP's record) JSON text the
/// service wrote as it read its source, so no tree is built for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Value(Value),
    /// One JSON value, written by [`crate::json`].
    Json(Arc<[u8]>),
}

/// The bytes the guest reads back for an answer: `{"ok": value}` or `{"error": message}`.
pub fn encode_answer(answer: &Result<Answer, ServiceError>) -> Vec<u8> {
    /// Borrows the answer, so a value is not copied first.
    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Response<'a> {
        Ok(&'a Value),
        Error(String),
    }
    let response = match answer {
        Ok(Answer::Json(json)) => return [&b"{\"ok\":"[..], &json[..], b"}"].concat(),
        Ok(Answer::Value(value)) => Response::Ok(value),
        Err(error) => Response::Error(error.to_string()),
    };
    crate::json::to_vec(&response).expect("a JSON value serialises")
}

/// The string field `name` of a request.
pub(crate) fn string<'a>(request: &'a Value, name: &'static str) -> Result<&'a str, RequestError> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or(RequestError::String(name))
}
