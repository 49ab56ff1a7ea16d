//! The GeoIP chain natively: geoip-enricher → hello-world → property-filter.

use super::{bookkeeping, truthy};
use maxminddb::Reader;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

/// Decoded records kept between lookups, as sandpipe's host and MaxMind's
/// Node reader keep theirs.
const CACHED_RECORDS: usize = 10_000;

thread_local! {
    /// Each thread's decoded records by their offset in the database.
    static RECORDS: RefCell<HashMap<usize, Value>> = RefCell::new(HashMap::new());
}

/// The City record for `address`, from the cache when it was decoded before.
fn city(reader: &Reader<Vec<u8>>, address: IpAddr) -> Option<Value> {
    let found = reader.lookup(address).ok()?;
    let offset = found.offset()?;
    RECORDS.with_borrow_mut(|records| {
        if let Some(record) = records.get(&offset) {
            return Some(record.clone());
        }
        let record = found.decode::<Value>().ok().flatten()?;
        if records.len() >= CACHED_RECORDS {
            records.clear();
        }
        records.insert(offset, record.clone());
        Some(record)
    })
}

/// The chain's labels, as sandpipe and the Node baselines record them.
pub const LABELS: [&str; 3] = [
    "GeoIP Enricher (0)",
    "Hello World (1)",
    "Property Filter (2)",
];
/// The property filter's config, as in `examples/geoip-chain.json`.
pub const FILTERED: [&str; 3] = ["$ip", "$geoip_latitude", "$geoip_longitude"];

fn english(record: &Value) -> Option<Value> {
    record.get("names")?.get("en").cloned()
}

/// The `$geoip_*` properties (without the prefix), in the enricher's order.
fn location(city: &Value) -> Vec<(String, Value)> {
    let at = |a: &str, b: &str| city.get(a).and_then(|r| r.get(b)).cloned();
    let mut fields: Vec<(String, Option<Value>)> = vec![
        ("city_name".into(), city.get("city").and_then(english)),
        ("country_name".into(), city.get("country").and_then(english)),
        ("country_code".into(), at("country", "iso_code")),
        (
            "continent_name".into(),
            city.get("continent").and_then(english),
        ),
        ("continent_code".into(), at("continent", "code")),
        ("postal_code".into(), at("postal", "code")),
        ("latitude".into(), at("location", "latitude")),
        ("longitude".into(), at("location", "longitude")),
        ("accuracy_radius".into(), at("location", "accuracy_radius")),
        ("time_zone".into(), at("location", "time_zone")),
    ];
    for (index, subdivision) in city
        .get("subdivisions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        fields.push((
            format!("subdivision_{}_code", index + 1),
            subdivision.get("iso_code").cloned(),
        ));
        fields.push((
            format!("subdivision_{}_name", index + 1),
            english(subdivision),
        ));
    }
    fields
        .into_iter()
        .filter_map(|(key, value)| Some((key, value.filter(|v| !v.is_null())?)))
        .collect()
}

/// `{...first, ...second}`: first's keys in order, then second's new ones; second's values win.
fn spread(first: Map<String, Value>, second: Option<&Value>) -> Value {
    let mut merged = first;
    if let Some(Value::Object(second)) = second {
        for (key, value) in second {
            merged.insert(key.clone(), value.clone());
        }
    }
    Value::Object(merged)
}

fn geoip_enrich(event: &mut Map<String, Value>, reader: &Reader<Vec<u8>>) {
    let mut properties = match event.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    if truthy(properties.get("$geoip_disable")) {
        return;
    }
    let ip = if truthy(event.get("ip")) {
        event.get("ip")
    } else {
        properties.get("$ip")
    };
    let Some(ip) = ip.filter(|ip| truthy(Some(ip))).and_then(Value::as_str) else {
        return;
    };
    let Ok(address) = ip.trim().parse::<IpAddr>() else {
        return;
    };
    let Some(city) = city(reader, address) else {
        return;
    };
    let (mut set, mut set_once) = (Map::new(), Map::new());
    for (key, value) in location(&city) {
        properties.insert(format!("$geoip_{key}"), value.clone());
        set.insert(format!("$geoip_{key}"), value.clone());
        set_once.insert(format!("$initial_geoip_{key}"), value);
    }
    let set = spread(set, properties.get("$set"));
    properties.insert("$set".into(), set);
    let set_once = spread(set_once, properties.get("$set_once"));
    properties.insert("$set_once".into(), set_once);
    event.insert("properties".into(), Value::Object(properties));
}

fn hello(event: &mut Map<String, Value>, name: &str) {
    if let Some(Value::Object(properties)) = event.get_mut("properties") {
        properties.insert("hello".into(), Value::String(format!("Hello {name}")));
    }
}

/// The filter's `without`: a copy without the key at `path`, when present.
fn without(object: &mut Value, path: &[&str]) {
    let Value::Object(map) = object else { return };
    if path.len() == 1 {
        map.shift_remove(path[0]);
    } else if let Some(inner) = map.get_mut(path[0]) {
        without(inner, &path[1..]);
    }
}

fn property_filter(event: &mut Map<String, Value>, paths: &[Vec<&str>]) {
    for path in paths {
        if path.as_slice() == ["$ip"] {
            event.shift_remove("ip");
        }
        if let Some(properties) = event.get_mut("properties") {
            without(properties, path);
            for person in ["$set", "$set_once"] {
                if let Some(inner) = properties.get_mut(person).filter(|v| truthy(Some(v))) {
                    without(inner, path);
                }
            }
        }
    }
}

/// The whole chain on one event, serialised as the hosts serialise it.
pub fn process(line: &str, reader: &Reader<Vec<u8>>) -> String {
    let mut value: Value = serde_json::from_str(line).expect("generated events are JSON");
    let event = value.as_object_mut().expect("generated events are objects");
    let paths: Vec<Vec<&str>> = FILTERED.iter().map(|p| p.split('.').collect()).collect();
    geoip_enrich(event, reader);
    hello(event, "Ada");
    property_filter(event, &paths);
    bookkeeping(event, &LABELS);
    value.to_string()
}
