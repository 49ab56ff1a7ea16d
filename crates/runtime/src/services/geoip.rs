//! `meta.geoip.locate(ip)`: a MaxMind City lookup on the host, shaped as the
//! MaxMind Node reader returns it (camelCase keys over the database's
//! snake_case ones: `country.isoCode`, `location.timeZone`, …), which is what
//! PostHog's enrichers read. An address not in the database gives `null`.

use super::{RequestError, string};
use maxminddb::{MaxMindDbError, Reader};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// A GeoLite2/GeoIP2 City database, opened on first use.
pub struct GeoIpDatabase {
    path: PathBuf,
    /// The reader, or why it could not be opened (kept: every lookup reports it).
    reader: OnceLock<Result<Reader<Vec<u8>>, Arc<MaxMindDbError>>>,
}

/// Why a geoip request has no answer.
#[derive(Debug, Error)]
pub enum GeoIpError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("unknown geoip operation \"{0}\"")]
    UnknownOperation(String),
    #[error(
        "meta.geoip is not available: cannot read the GeoLite2-City database {} ({source}); pass --geoip FILE, set SANDPIPE_GEOIP_DB, or run `cargo xtask geoip`",
        path.display()
    )]
    Unavailable {
        path: PathBuf,
        source: Arc<MaxMindDbError>,
    },
    #[error("meta.geoip.locate: \"{0}\" is not an IP address")]
    NotAnAddress(String),
    #[error("meta.geoip.locate: {0}")]
    Lookup(MaxMindDbError),
}

/// `snake_case` → `camelCase`.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The record with every object key camelCased (name maps keep their language tags).
fn camel_case(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if key == "names" {
                        value
                    } else {
                        camel_case(value)
                    };
                    (camel(&key), value)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case).collect()),
        other => other,
    }
}

impl GeoIpDatabase {
    /// A database at `path`, read when first needed.
    pub fn new(path: impl Into<PathBuf>) -> GeoIpDatabase {
        GeoIpDatabase {
            path: path.into(),
            reader: OnceLock::new(),
        }
    }

    /// Where it is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> Result<&Reader<Vec<u8>>, GeoIpError> {
        self.reader
            .get_or_init(|| Reader::open_readfile(&self.path).map_err(Arc::new))
            .as_ref()
            .map_err(|source| GeoIpError::Unavailable {
                path: self.path.clone(),
                source: source.clone(),
            })
    }

    /// The City record for `ip`, camelCased, or `None` when the database has none.
    pub fn locate(&self, ip: &str) -> Result<Option<Value>, GeoIpError> {
        let address: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| GeoIpError::NotAnAddress(ip.to_string()))?;
        let record = self
            .reader()?
            .lookup(address)
            .and_then(|result| result.decode::<Value>())
            .map_err(GeoIpError::Lookup)?;
        Ok(record.map(camel_case))
    }
}

/// Answers one geoip request.
pub fn handle(database: &GeoIpDatabase, request: &Value) -> Result<Value, GeoIpError> {
    match string(request, "op")? {
        "locate" => Ok(database
            .locate(string(request, "ip")?)?
            .unwrap_or(Value::Null)),
        other => Err(GeoIpError::UnknownOperation(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_camel_cased_except_language_tags() {
        let record = json!({"country": {"iso_code": "GB", "names": {"zh-CN": "英国", "pt-BR": "Reino Unido"}},
                            "location": {"time_zone": "Europe/London", "accuracy_radius": 10},
                            "subdivisions": [{"iso_code": "ENG"}]});
        assert_eq!(
            camel_case(record),
            json!({"country": {"isoCode": "GB", "names": {"zh-CN": "英国", "pt-BR": "Reino Unido"}},
                   "location": {"timeZone": "Europe/London", "accuracyRadius": 10},
                   "subdivisions": [{"isoCode": "ENG"}]})
        );
    }

    #[test]
    fn a_missing_database_is_a_clear_error() {
        let db = GeoIpDatabase::new("/nonexistent/GeoLite2-City.mmdb");
        let error = db.locate("1.2.3.4").unwrap_err().to_string();
        assert!(error.starts_with("meta.geoip is not available: cannot read the GeoLite2-City database /nonexistent/GeoLite2-City.mmdb"), "{error}");
        assert_eq!(
            db.locate("not-an-ip").unwrap_err().to_string(),
            "meta.geoip.locate: \"not-an-ip\" is not an IP address"
        );
    }
}
