//! `meta`: the connector's config, and the host services a JavaScript
//! connector reaches as `meta.cache`, `meta.storage`, `meta.geoip` and
//! `console`, through the same host function and the same JSON requests.

use crate::Error;
use crate::host;
use sandpipe_abi::{LogLevel, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::cell::Cell;

/// What every hook is given.
#[derive(Debug)]
pub struct Meta {
    config: Value,
    attachments: Value,
    /// `meta.cache`: Redis-like, per configured connector.
    pub cache: Cache,
    /// `meta.storage`: persistent key/value store, per configured connector.
    pub storage: Storage,
    /// `meta.geoip`: MaxMind City lookups.
    pub geoip: GeoIp,
    /// `console`: lines in the connector's log.
    pub console: Console,
}

impl Meta {
    /// From the setup call's input, `{"config": …, "attachments": …}`.
    pub(crate) fn from_setup(input: Value) -> Meta {
        let field = |name: &str| input.get(name).cloned().unwrap_or(Value::Null);
        Meta {
            config: field("config"),
            attachments: field("attachments"),
            cache: Cache(()),
            storage: Storage(()),
            geoip: GeoIp(()),
            console: Console(()),
        }
    }

    /// The resolved config (plugin.json's `config`, with defaults) as `T`.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.config).map_err(|e| Error::new(format!("config: {e}")))
    }

    /// The resolved config as JSON.
    pub fn config_json(&self) -> &Value {
        &self.config
    }

    /// Attachments as the host sends them: `{key: {content_type, file_name, contents_base64}}`.
    pub fn attachments(&self) -> &Value {
        &self.attachments
    }
}

thread_local! {
    /// The buffer requests are written to and answers read from, kept
    /// from one request to the next.
    static EXCHANGE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The exchange buffer's capacity kept from one request to the next (1 MiB).
const KEPT_EXCHANGE_CAPACITY: usize = 1 << 20;

/// Sends `payload` to a host service and reads its answer with `read`.
fn exchange<R>(
    service: Service,
    payload: &impl Serialize,
    read: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    // Taken out while in use, so that a request made meanwhile (none is)
    // would only find it empty.
    let mut buffer = EXCHANGE.take();
    buffer.clear();
    let result = serde_json::to_writer(&mut buffer, payload)
        .map_err(Error::from)
        .and_then(|()| {
            host::request_in(service, &mut buffer);
            read(&buffer)
        });
    if buffer.capacity() <= KEPT_EXCHANGE_CAPACITY {
        EXCHANGE.set(buffer);
    }
    result
}

/// One request to a host service: its `ok` value, or its `error` as an [`Error`].
fn request(service: Service, payload: Value) -> Result<Value, Error> {
    let answer: Value = exchange(service, &payload, |answer| {
        Ok(serde_json::from_slice(answer)?)
    })?;
    match answer {
        Value::Object(mut answer) => match answer.remove("error") {
            Some(Value::String(error)) => Err(Error::new(error)),
            Some(other) => Err(Error::new(other.to_string())),
            None => Ok(answer.remove("ok").unwrap_or(Value::Null)),
        },
        _ => Err(Error::new(
            "the host answered something other than an object",
        )),
    }
}

/// A service's answer read straight into `T` (`None` for `{"ok": null}`):
/// what `T` does not name is skipped by the parser, never built.
fn request_as<T: DeserializeOwned>(
    service: Service,
    payload: &impl Serialize,
) -> Result<Option<T>, Error> {
    #[derive(serde::Deserialize)]
    struct Answer<T> {
        ok: Option<T>,
        error: Option<Value>,
    }
    let answer: Answer<T> = exchange(service, payload, |answer| {
        Ok(serde_json::from_slice(answer)?)
    })?;
    match answer.error {
        Some(Value::String(error)) => Err(Error::new(error)),
        Some(other) => Err(Error::new(other.to_string())),
        None => Ok(answer.ok),
    }
}

fn value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(Error::from)
}

/// `meta.cache`.
#[derive(Debug)]
pub struct Cache(());

impl Cache {
    /// Stores `value` (as JSON) under `key`, for `ttl_seconds` if given.
    pub fn set(
        &self,
        key: &str,
        value: &impl Serialize,
        ttl_seconds: Option<f64>,
    ) -> Result<(), Error> {
        let value = serde_json::to_value(value)?;
        request(
            Service::Cache,
            json!({"op": "set", "key": key, "value": value, "ttl": ttl_seconds}),
        )?;
        Ok(())
    }

    /// The value under `key`, or `None`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match request(Service::Cache, json!({"op": "get", "key": key}))? {
            Value::Null => Ok(None),
            mut found => value(found["value"].take()).map(Some),
        }
    }

    /// Adds one to the integer under `key` (0 when missing); the new value.
    pub fn incr(&self, key: &str) -> Result<i64, Error> {
        value(request(Service::Cache, json!({"op": "incr", "key": key}))?)
    }

    /// Sets `key` to expire in `ttl_seconds`; whether it existed.
    pub fn expire(&self, key: &str, ttl_seconds: f64) -> Result<bool, Error> {
        value(request(
            Service::Cache,
            json!({"op": "expire", "key": key, "ttl": ttl_seconds}),
        )?)
    }

    /// Pushes `elements` on the front of the list under `key`; its new length.
    pub fn lpush(&self, key: &str, elements: &[&str]) -> Result<u64, Error> {
        value(request(
            Service::Cache,
            json!({"op": "lpush", "key": key, "elements": elements}),
        )?)
    }

    /// Elements `start..=stop` of the list under `key` (negative counts from the end).
    pub fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, Error> {
        value(request(
            Service::Cache,
            json!({"op": "lrange", "key": key, "start": start, "stop": stop}),
        )?)
    }

    /// The length of the list under `key`.
    pub fn llen(&self, key: &str) -> Result<u64, Error> {
        value(request(Service::Cache, json!({"op": "llen", "key": key}))?)
    }
}

/// `meta.storage`.
#[derive(Debug)]
pub struct Storage(());

impl Storage {
    /// The value under `key`, or `None`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match request(Service::Storage, json!({"op": "get", "key": key}))? {
            Value::Null => Ok(None),
            mut found => value(found["value"].take()).map(Some),
        }
    }

    /// Stores `value` (as JSON) under `key`.
    pub fn set(&self, key: &str, value: &impl Serialize) -> Result<(), Error> {
        let value = serde_json::to_value(value)?;
        request(
            Service::Storage,
            json!({"op": "set", "key": key, "value": value}),
        )?;
        Ok(())
    }

    /// Deletes `key`.
    pub fn del(&self, key: &str) -> Result<(), Error> {
        request(Service::Storage, json!({"op": "del", "key": key}))?;
        Ok(())
    }
}

/// `meta.geoip`.
#[derive(Debug)]
pub struct GeoIp(());

impl GeoIp {
    /// The MaxMind City record for `ip`, keys camelCased as Node's reader
    /// gives them (`country.isoCode`, `location.timeZone`), or `None`.
    pub fn locate(&self, ip: &str) -> Result<Option<Value>, Error> {
        match request(Service::GeoIp, json!({"op": "locate", "ip": ip}))? {
            Value::Null => Ok(None),
            record => Ok(Some(record)),
        }
    }

    /// The record for `ip` read straight into `T`, or `None`: a type naming
    /// only the fields a connector uses (`#[derive(Deserialize)]`, with
    /// `#[serde(rename_all = "camelCase")]`) skips the rest of the record's
    /// ~2.5 KB (names in eight languages) without building it.
    pub fn locate_as<T: DeserializeOwned>(&self, ip: &str) -> Result<Option<T>, Error> {
        /// `{"op": "locate", "ip": …}`, written without a map.
        #[derive(Serialize)]
        struct Locate<'a> {
            op: &'static str,
            ip: &'a str,
        }
        request_as(Service::GeoIp, &Locate { op: "locate", ip })
    }
}

/// `console`: each line goes to the connector's log at its level.
#[derive(Debug)]
pub struct Console(());

impl Console {
    pub fn debug(&self, line: &str) {
        host::log(LogLevel::Debug, line);
    }
    pub fn info(&self, line: &str) {
        host::log(LogLevel::Info, line);
    }
    pub fn log(&self, line: &str) {
        host::log(LogLevel::Log, line);
    }
    pub fn warn(&self, line: &str) {
        host::log(LogLevel::Warn, line);
    }
    pub fn error(&self, line: &str) {
        host::log(LogLevel::Error, line);
    }
}
