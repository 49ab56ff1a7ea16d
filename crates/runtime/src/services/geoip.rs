//! `meta.geoip.locate(ip)`: a MaxMind City lookup on the host, shaped as the
//! MaxMind Node reader returns it (camelCase keys over the database's
//! snake_case ones: `country.isoCode`, `location.timeZone`, …), which is what
//! PostHog's enrichers read. An address not in the database gives `null`.
//!
//! A record is written as JSON text while it is decoded, and kept by its
//! place in the database's data section (every address of a network shares
//! one record): the next lookup that lands there copies the text. This is
//! the cache the MaxMind Node reader keeps by default (`maxmind.open`'s LRU of
//! decoded records), bounded here by bytes ([`RECORD_CACHE_BYTES`]).

use super::{Answer, RequestError, string};
use maxminddb::{MaxMindDbError, Reader};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// Bytes of record text kept between lookups (about 6,000 City records).
pub const RECORD_CACHE_BYTES: u64 = 16 << 20;

/// A GeoLite2/GeoIP2 City database, opened on first use: the one file given,
/// or the first of several places that holds one.
pub struct GeoIpDatabase {
    /// Where to look, in order (one path when the operator named the file).
    paths: Vec<PathBuf>,
    /// The reader, or why it could not be opened (kept: every lookup reports it).
    reader: OnceLock<Result<Reader<Vec<u8>>, Unavailable>>,
    /// Records already written, by their offset in the data section.
    records: Cache<usize, Record, RecordWeight>,
}

/// One record's JSON text.
type Record = Arc<[u8]>;

/// A cached record weighs its length in bytes.
#[derive(Clone)]
struct RecordWeight;

impl Weighter<usize, Record> for RecordWeight {
    fn weight(&self, _offset: &usize, record: &Record) -> u64 {
        record.len() as u64
    }
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

/// A record written as JSON text while it is decoded, every object key
/// camelCased (name maps keep their language tags): one pass, no tree built.
/// Numbers and strings are written as [`crate::json`] writes them, so the
/// text is what serialising the decoded value would give.
struct CamelText {
    json: Vec<u8>,
}

impl<'de> Deserialize<'de> for CamelText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut json = Vec::with_capacity(2048);
        Camel {
            keep_keys: false,
            out: &mut json,
        }
        .deserialize(deserializer)?;
        Ok(CamelText { json })
    }
}

/// Writes one value to `out` as JSON, its object keys camelCased unless
/// `keep_keys` (inside a `names` map).
struct Camel<'a> {
    keep_keys: bool,
    out: &'a mut Vec<u8>,
}

impl Camel<'_> {
    fn write<T: serde::Serialize + ?Sized, E: serde::de::Error>(self, value: &T) -> Result<(), E> {
        crate::json::to_writer(&mut *self.out, value).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Camel<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Camel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a MaxMind record value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<(), E> {
        let v =
            u64::try_from(v).map_err(|_| E::custom(format!("{v} does not fit a JSON number")))?;
        self.write(&v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // As `Value::from(f64)`: a value JSON cannot hold is null.
        self.write(&v)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.write(v)
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let element = Camel {
                keep_keys: self.keep_keys,
                out: &mut *self.out,
            };
            if seq.next_element_seed(element)?.is_none() {
                self.out.truncate(at);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !first {
                self.out.push(b',');
            }
            first = false;
            let keep_keys = self.keep_keys || key == "names";
            if self.keep_keys {
                crate::json::to_writer(&mut *self.out, &*key)
            } else {
                crate::json::to_writer(&mut *self.out, &camel(&key))
            }
            .map_err(serde::de::Error::custom)?;
            self.out.push(b':');
            map.next_value_seed(Camel {
                keep_keys,
                out: &mut *self.out,
            })?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// An object key, borrowed from the database where the decoder allows.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
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
            // Estimated count: records of about 2.5 KB.
            records: Cache::with_weighter(
                (RECORD_CACHE_BYTES / 2048) as usize,
                RECORD_CACHE_BYTES,
                RecordWeight,
            ),
        }
    }

    /// Where it is looked for, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads the database now rather than in the first lookup, whose call's
    /// deadline would count the reading (tens of milliseconds for 65 MB, far
    /// more on a loaded machine). What it finds, an error included, is what
    /// every lookup then sees.
    pub fn open(&self) {
        let _ = self.reader();
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

    /// The City record for `ip` as JSON text, camelCased, or `None` when the
    /// database has none.
    pub fn locate(&self, ip: &str) -> Result<Option<Record>, GeoIpError> {
        let address: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| GeoIpError::NotAnAddress(ip.to_string()))?;
        let found = self.reader()?.lookup(address).map_err(GeoIpError::Lookup)?;
        let Some(offset) = found.offset() else {
            return Ok(None);
        };
        self.records
            .get_or_insert_with(&offset, || {
                let record = found.decode::<CamelText>().map_err(GeoIpError::Lookup)?;
                // `offset` is a record's, so there is one to decode.
                Ok(record.map_or_else(|| Arc::from(&b"null"[..]), |text| text.json.into()))
            })
            .map(Some)
    }
}

/// Answers one geoip request: the record as JSON text, or `null`.
pub fn handle(database: &GeoIpDatabase, request: &Value) -> Result<Answer, GeoIpError> {
    match string(request, "op")? {
        "locate" => Ok(match database.locate(string(request, "ip")?)? {
            Some(json) => Answer::Json(json),
            None => Answer::Value(Value::Null),
        }),
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
        let text = serde_json::from_value::<CamelText>(record).unwrap().json;
        assert_eq!(
            String::from_utf8(text).unwrap(),
            r#"{"country":{"isoCode":"GB","names":{"zh-CN":"英国","pt-BR":"Reino Unido"}},"location":{"timeZone":"Europe/London","accuracyRadius":10},"subdivisions":[{"isoCode":"ENG"}]}"#
        );
    }

    #[test]
    fn the_text_is_what_writing_the_decoded_value_gives() {
        let record = json!({"location": {"latitude": 51.5142, "longitude": -0.0931, "metro_code": 1e21,
                                         "tiny": 1e-7, "big": 12345678901234567890u64},
                            "is_in_european_union": true, "empty": [], "none": null,
                            "quote": "a \"b\" \\ \u{1} é"});
        let text = serde_json::from_value::<CamelText>(record).unwrap().json;
        assert_eq!(
            String::from_utf8(text).unwrap(),
            r#"{"location":{"latitude":51.5142,"longitude":-0.0931,"metroCode":1e+21,"tiny":1e-7,"big":12345678901234567000},"isInEuropeanUnion":true,"empty":[],"none":null,"quote":"a \"b\" \\ \u0001 é"}"#
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
