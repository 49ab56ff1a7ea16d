//! Adds geographical properties from the event's IP address, as PostHog's
//! GeoIP enricher does, and exactly as `examples/geoip-enricher/index.js`
//! does: `$geoip_*` on the event, the same on the person with `$set`, and
//! `$initial_geoip_*` with `$set_once`.
//!
//! The MaxMind record is read into [`City`], which names only the fields
//! used: the parser skips the rest (names in eight languages) unbuilt.

use sandpipe_connector::{Error, Event, Map, Meta, Value};
use serde::Deserialize;
use std::borrow::Cow;

/// The fields of a MaxMind City record this connector uses (the host
/// camelCases the record's keys, as Node's reader does).
#[derive(Deserialize)]
struct City {
    city: Option<Place>,
    country: Option<Place>,
    continent: Option<Place>,
    postal: Option<Place>,
    location: Option<Location>,
    subdivisions: Option<Vec<Place>>,
}

/// A city, country, continent, postcode or subdivision.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Place {
    names: Option<Names>,
    iso_code: Option<Value>,
    code: Option<Value>,
}

#[derive(Deserialize)]
struct Names {
    en: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Location {
    latitude: Option<Value>,
    longitude: Option<Value>,
    accuracy_radius: Option<Value>,
    time_zone: Option<Value>,
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// The `$geoip_*` properties (their names without the prefix) of a City
/// record, in the JavaScript enricher's order; missing values left out (a
/// null in the record reads as `None`).
fn location_of(city: City) -> Vec<(Cow<'static, str>, Value)> {
    let english = |names: Option<Names>| names.and_then(|names| names.en);
    let place = city.city.unwrap_or_default();
    let country = city.country.unwrap_or_default();
    let continent = city.continent.unwrap_or_default();
    let postal = city.postal.unwrap_or_default();
    let location = city.location.unwrap_or_default();
    let fields = [
        ("city_name", english(place.names)),
        ("country_name", english(country.names)),
        ("country_code", country.iso_code),
        ("continent_name", english(continent.names)),
        ("continent_code", continent.code),
        ("postal_code", postal.code),
        ("latitude", location.latitude),
        ("longitude", location.longitude),
        ("accuracy_radius", location.accuracy_radius),
        ("time_zone", location.time_zone),
    ];
    let mut out: Vec<(Cow<'static, str>, Value)> = fields
        .into_iter()
        .filter_map(|(key, value)| Some((key.into(), value?)))
        .collect();
    for (index, subdivision) in city.subdivisions.into_iter().flatten().enumerate() {
        let n = index + 1;
        let code = subdivision.iso_code;
        let name = english(subdivision.names);
        out.extend(code.map(|code| (format!("subdivision_{n}_code").into(), code)));
        out.extend(name.map(|name| (format!("subdivision_{n}_name").into(), name)));
    }
    out
}

/// JavaScript's `String(value)` for the values an IP field holds.
fn js_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `{ ...first, ...second }` for objects: `first`'s keys in order, values from
/// `second` where it has them, then `second`'s other keys.
fn spread(first: Map<String, Value>, second: Option<Value>) -> Value {
    let mut merged = first;
    if let Some(Value::Object(second)) = second {
        merged.extend(second);
    }
    Value::Object(merged)
}

#[sandpipe_connector::process_event]
fn process_event(mut event: Event, meta: &Meta) -> Result<Option<Event>, Error> {
    let none = Map::new();
    let properties = event.properties().unwrap_or(&none);
    if truthy(properties.get("$geoip_disable")) {
        return Ok(Some(event));
    }
    let ip = match event.get("ip") {
        ip if truthy(ip) => ip,
        _ => properties.get("$ip"),
    };
    let Some(ip) = ip.filter(|ip| truthy(Some(ip))).map(js_string) else {
        return Ok(Some(event));
    };
    let Some(city) = meta.geoip.locate_as::<City>(&ip)? else {
        return Ok(Some(event));
    };
    let location = location_of(city);
    let properties = event.properties_mut();
    let mut set = Map::with_capacity(location.len());
    let mut set_once = Map::with_capacity(location.len());
    for (key, value) in location {
        // Three maps each own a copy: the event's, `$set`'s and `$set_once`'s.
        let name = ["$geoip_", &key].concat();
        set_once.insert(["$initial_geoip_", &key].concat(), value.clone());
        set.insert(name.clone(), value.clone());
        properties.insert(name, value);
    }
    // `{ ...set, ...properties.$set }`, put back in `$set`'s place (or last).
    let merged_set = spread(set, properties.get_mut("$set").map(Value::take));
    properties.insert("$set".into(), merged_set);
    let merged_set_once = spread(set_once, properties.get_mut("$set_once").map(Value::take));
    properties.insert("$set_once".into(), merged_set_once);
    Ok(Some(event))
}

sandpipe_connector::export!();
