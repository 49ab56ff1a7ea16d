//! `meta.geoip.locate(ip)`: a MaxMind City lookup on the host, shaped as the
//! MaxMind Node reader returns it (camelCase keys over the database's
//! snake_case ones: `country.isoCode`, `location.timeZone`, …), which is what
//! PostHog's enrichers read. An address not in the database gives `null`.

use super::{RequestError, string};
use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// A GeoLite2/GeoIP2 City database, opened on first use: the one file given,
/// or the first of several places that holds one.
pub struct GeoIpDatabase {
    /// Where to look, in order (one path when the operator named the file).
    paths: Vec<PathBuf>,
    /// The reader, or why it could not be opened (kept: every lookup reports it).
    reader: OnceLock<Result<Reader<Vec<u8>>, Unavailable>>,
}

/// Why a geoip request has no answer.
#[derive(Debug, Error)]
pub enum GeoIpError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("unknown geoip operation \"{0}\"")]
    UnknownOperation(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("meta.geoip.locate: \"{0}\" is not an IP address")]
    NotAnAddress(String),
    #[error("meta.geoip.locate: {0}")]
    Lookup(MaxMindDbError),
}

/// Why there is no database to read (kept: every lookup reports it).
#[derive(Debug, Clone, Error)]
pub enum Unavailable {
    #[error(
        "meta.geoip is not available: cannot read the GeoLite2-City database {} ({source}); pass --geoip FILE, set SANDPIPE_GEOIP_DB, or run `cargo xtask geoip`",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        source: Arc<MaxMindDbError>,
    },
    #[error(
        "meta.geoip is not available: no GeoLite2-City database at {}; pass --geoip FILE, set SANDPIPE_GEOIP_DB, or run `cargo xtask geoip`",
        places(.0)
    )]
    NotFound(Vec<PathBuf>),
}

/// `a, b or c`.
fn places(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => shown.join(""),
    }
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

/// A record decoded with every object key camelCased as it is read (name
/// maps keep their language tags): one pass, the tree built once.
struct CamelCased(Value);

impl<'de> Deserialize<'de> for CamelCased {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Camel { keep_keys: false }
            .deserialize(deserializer)
            .map(CamelCased)
    }
}

/// Reads one value as `serde_json::Value` reads it, its object keys
/// camelCased unless `keep_keys` (inside a `names` map).
#[derive(Clone, Copy)]
struct Camel {
    keep_keys: bool,
}

impl<'de> DeserializeSeed<'de> for Camel {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Camel {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a MaxMind record value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| E::custom(format!("{v} does not fit a JSON number")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let keep_keys = self.keep_keys || key == "names";
            let value = map.next_value_seed(Camel { keep_keys })?;
            let key = if self.keep_keys { key } else { camel(&key) };
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl GeoIpDatabase {
    /// A database at `path`, read when first needed.
    pub fn new(path: impl Into<PathBuf>) -> GeoIpDatabase {
        GeoIpDatabase::first_of(vec![path.into()])
    }

    /// The database in the first of `paths` that holds a file, read when
    /// first needed; when none does, every lookup names them all.
    pub fn first_of(paths: Vec<PathBuf>) -> GeoIpDatabase {
        GeoIpDatabase {
            paths,
            reader: OnceLock::new(),
        }
    }

    /// Where it is looked for, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn reader(&self) -> Result<&Reader<Vec<u8>>, GeoIpError> {
        let opened = self.reader.get_or_init(|| {
            let path = match &self.paths[..] {
                [only] => only,
                many => many
                    .iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| Unavailable::NotFound(many.to_vec()))?,
            };
            Reader::open_readfile(path).map_err(|source| Unavailable::Unreadable {
                path: path.clone(),
                source: Arc::new(source),
            })
        });
        opened.as_ref().map_err(|why| why.clone().into())
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
            .and_then(|result| result.decode::<CamelCased>())
            .map_err(GeoIpError::Lookup)?;
        Ok(record.map(|CamelCased(record)| record))
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
            serde_json::from_value::<CamelCased>(record).unwrap().0,
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

    #[test]
    fn a_database_in_none_of_several_places_names_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let db = GeoIpDatabase::first_of(vec![
            dir.path().join("a/GeoLite2-City.mmdb"),
            dir.path().join("b/GeoLite2-City.mmdb"),
            "data/GeoLite2-City.mmdb".into(),
        ]);
        assert_eq!(
            db.locate("1.2.3.4").unwrap_err().to_string(),
            format!(
                "meta.geoip is not available: no GeoLite2-City database at {0}/a/GeoLite2-City.mmdb, {0}/b/GeoLite2-City.mmdb or data/GeoLite2-City.mmdb; pass --geoip FILE, set SANDPIPE_GEOIP_DB, or run `cargo xtask geoip`",
                dir.path().display()
            )
        );
    }

    #[test]
    fn of_several_places_the_first_that_holds_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let second = dir.path().join("GeoLite2-City.mmdb");
        std::fs::write(&second, b"not a database").unwrap();
        let db = GeoIpDatabase::first_of(vec![dir.path().join("missing.mmdb"), second.clone()]);
        let error = db.locate("1.2.3.4").unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "meta.geoip is not available: cannot read the GeoLite2-City database {} (",
                second.display()
            )),
            "{error}"
        );
    }
}
