//! The host services a connector reaches through the `request` host function:
//! `meta.cache` ([`cache`]), `meta.storage` ([`storage`]), `meta.geoip`
//! ([`geoip`]), `fetch` ([`fetch`]) and `posthog.capture`.
//!
//! A request is a JSON object with an `"op"`; the answer is `{"ok": value}` or
//! `{"error": "message"}`. Requests are parsed from guest memory under a size
//! bound; every service bounds what one connector can make the host keep.

pub mod cache;
pub mod fetch;
pub mod geoip;
pub mod storage;

use cache::Cache;
use fetch::FetchPolicy;
use geoip::GeoIpDatabase;
use sandpipe_abi::Service;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use storage::Storage;

/// Largest request a connector may send to a service.
pub const MAX_REQUEST: usize = 1 << 20;

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
/// (as PostHog's Redis-backed cache is shared by all its workers).
#[derive(Clone, Default)]
pub struct ConnectorCache(Arc<Mutex<Cache>>);

/// The services of one connector, shared by all its instances (so cache and
/// storage outlive an instance that trapped).
pub struct ConnectorServices {
    config: ServiceConfig,
    /// Events from `posthog.capture` since the connector last took them.
    captured: Mutex<Vec<Value>>,
}

/// Events one connector may capture while one event passes through the chain.
pub const MAX_CAPTURED: usize = 100;

impl ConnectorServices {
    /// What `config` provides.
    pub fn new(config: ServiceConfig) -> ConnectorServices {
        ConnectorServices {
            config,
            captured: Mutex::new(Vec::new()),
        }
    }

    /// Takes the events captured since the last call.
    pub fn take_captured(&self) -> Vec<Value> {
        std::mem::take(&mut *self.captured.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn capture(&self, request: &Value) -> Result<Value, String> {
        let event = string(request, "event")?;
        let properties = match request.get("properties") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(properties)) => properties.clone(),
            Some(_) => return Err("posthog.capture: properties must be an object".into()),
        };
        let mut captured = self.captured.lock().unwrap_or_else(|e| e.into_inner());
        if captured.len() >= MAX_CAPTURED {
            return Err(format!(
                "posthog.capture: at most {MAX_CAPTURED} events per processed event"
            ));
        }
        captured.push(json!({ "event": event, "properties": properties }));
        Ok(Value::Null)
    }

    /// Answers one request: a value, or why the host refused it. Never panics
    /// on guest input. `deadline` is the call's: a service that waits (fetch)
    /// stops there.
    pub fn answer(&self, service: u32, request: &[u8], deadline: Instant) -> Result<Value, String> {
        match serde_json::from_slice::<Value>(request) {
            Err(e) => Err(format!("malformed request: {e}")),
            Ok(request) => match Service::from_u32(service) {
                Some(Service::Cache) => self
                    .config
                    .cache
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .handle(&request),
                Some(Service::Storage) => match &self.config.storage {
                    Some((storage, scope)) => storage::handle(
                        storage.as_ref(),
                        scope,
                        self.config.storage_quota,
                        &request,
                    ),
                    None => Err(
                        "meta.storage is not available: the host runs without a storage backend"
                            .into(),
                    ),
                },
                Some(Service::Capture) => self.capture(&request),
                Some(Service::GeoIp) => match &self.config.geoip {
                    Some(database) => geoip::handle(database, &request),
                    None => Err("meta.geoip is not available: the host runs without a GeoLite2-City database".into()),
                },
                Some(Service::Fetch) => fetch::handle(&self.config.fetch, &request, deadline),
                None => Err(format!("unknown host service {service}")),
            },
        }
    }
}

/// The bytes the guest reads back for an answer: `{"ok": value}` or `{"error": message}`.
pub fn encode_answer(answer: &Result<Value, String>) -> Vec<u8> {
    /// Borrows the answer, so a large value (a GeoIP record) is not copied first.
    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Response<'a> {
        Ok(&'a Value),
        Error(&'a str),
    }
    let response = match answer {
        Ok(value) => Response::Ok(value),
        Err(message) => Response::Error(message),
    };
    crate::json::to_vec(&response).expect("a JSON value serialises")
}

/// The string field `name` of a request.
pub(crate) fn string<'a>(request: &'a Value, name: &str) -> Result<&'a str, String> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("request needs a string \"{name}\""))
}
