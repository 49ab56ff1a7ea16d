//! Adds geographical properties from the event's IP address, as PostHog's
//! GeoIP enricher does, and exactly as `examples/geoip-enricher/index.js`
//! does: `$geoip_*` on the event, the same on the person with `$set`, and
//! `$initial_geoip_*` with `$set_once`.
//!
//! The MaxMind record is read into [`City`], which names only the fields
//! used: the parser skips the rest (names in eight languages) unbuilt.

use sandpipe_connector::{Error, Event, Map, Meta, Value};
use serde::Deserialize;

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
#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

/// `place.names.en` when the place and its names exist.
fn english_name(place: &mut Option<Place>) -> Option<Value> {
    place.as_mut()?.names.as_mut()?.en.take()
}

/// The `$geoip_*` properties (without the prefix) of a City record, in the
/// JavaScript enricher's order; missing and null values left out.
fn location_of(mut city: City) -> Vec<(String, Value)> {
    let mut location = city.location.take();
    let mut field = |pick: fn(&mut Location) -> Option<Value>| location.as_mut().and_then(pick);
    let mut out: Vec<(String, Option<Value>)> = vec![
        ("city_name".into(), english_name(&mut city.city)),
        ("country_name".into(), english_name(&mut city.country)),
        (
            "country_code".into(),
            city.country.as_mut().and_then(|c| c.iso_code.take()),
        ),
        ("continent_name".into(), english_name(&mut city.continent)),
        (
            "continent_code".into(),
            city.continent.as_mut().and_then(|c| c.code.take()),
        ),
        (
            "postal_code".into(),
            city.postal.as_mut().and_then(|p| p.code.take()),
        ),
        ("latitude".into(), field(|l| l.latitude.take())),
        ("longitude".into(), field(|l| l.longitude.take())),
        (
            "accuracy_radius".into(),
            field(|l| l.accuracy_radius.take()),
        ),
        ("time_zone".into(), field(|l| l.time_zone.take())),
    ];
    for (index, subdivision) in city.subdivisions.into_iter().flatten().enumerate() {
        let n = index + 1;
        let mut subdivision = Some(subdivision);
        let name = english_name(&mut subdivision);
        out.push((
            format!("subdivision_{n}_code"),
            subdivision.and_then(|s| s.iso_code),
        ));
        out.push((format!("subdivision_{n}_name"), name));
    }
    out.into_iter()
        .filter_map(|(key, value)| match value {
            None | Some(Value::Null) => None,
            Some(value) => Some((key, value)),
        })
        .collect()
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
    let properties = event.properties_mut();
    let mut set = Map::new();
    let mut set_once = Map::new();
    for (key, value) in location_of(city) {
        properties.insert(format!("$geoip_{key}"), value.clone());
        set.insert(format!("$geoip_{key}"), value.clone());
        set_once.insert(format!("$initial_geoip_{key}"), value);
    }
    // `{ ...set, ...properties.$set }`, put back in `$set`'s place (or last).
    let merged_set = spread(set, properties.get_mut("$set").map(Value::take));
    properties.insert("$set".into(), merged_set);
    let merged_set_once = spread(set_once, properties.get_mut("$set_once").map(Value::take));
    properties.insert("$set_once".into(), merged_set_once);
    Ok(Some(event))
}

sandpipe_connector::export!();
