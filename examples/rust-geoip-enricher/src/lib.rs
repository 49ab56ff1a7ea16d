//! Adds geographical properties from the event's IP address, as PostHog's
//! GeoIP enricher does, and exactly as `examples/geoip-enricher/index.js`
//! does: `$geoip_*` on the event, the same on the person with `$set`, and
//! `$initial_geoip_*` with `$set_once`.

use sandpipe_connector::{Error, Event, Map, Meta, Value};

/// JavaScript's truthiness of a JSON value.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// `record.names.en` when the record and its names exist.
fn english_name(record: Option<&Value>) -> Option<&Value> {
    let names = record.filter(|r| truthy(Some(r)))?.get("names");
    names.filter(|n| truthy(Some(n)))?.get("en")
}

/// `record.field` when the record exists.
fn field<'a>(record: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    record.filter(|r| truthy(Some(r)))?.get(name)
}

/// The `$geoip_*` properties (without the prefix) of a MaxMind City record.
fn location_of(response: &Value) -> Map<String, Value> {
    let location = response.get("location");
    let mut out: Vec<(String, Option<&Value>)> = vec![
        ("city_name".into(), english_name(response.get("city"))),
        ("country_name".into(), english_name(response.get("country"))),
        ("country_code".into(), field(response.get("country"), "isoCode")),
        ("continent_name".into(), english_name(response.get("continent"))),
        ("continent_code".into(), field(response.get("continent"), "code")),
        ("postal_code".into(), field(response.get("postal"), "code")),
        ("latitude".into(), field(location, "latitude")),
        ("longitude".into(), field(location, "longitude")),
        ("accuracy_radius".into(), field(location, "accuracyRadius")),
        ("time_zone".into(), field(location, "timeZone")),
    ];
    if let Some(subdivisions) = response.get("subdivisions").and_then(Value::as_array) {
        for (index, subdivision) in subdivisions.iter().enumerate() {
            let n = index + 1;
            out.push((format!("subdivision_{n}_code"), subdivision.get("isoCode")));
            out.push((format!("subdivision_{n}_name"), english_name(Some(subdivision))));
        }
    }
    out.into_iter()
        .filter_map(|(key, value)| match value {
            None | Some(Value::Null) => None,
            Some(value) => Some((key, value.clone())),
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
fn spread(first: Map<String, Value>, second: Option<&Value>) -> Value {
    let mut merged = first;
    if let Some(Value::Object(second)) = second {
        for (key, value) in second {
            merged.insert(key.clone(), value.clone());
        }
    }
    Value::Object(merged)
}

#[sandpipe_connector::process_event]
fn process_event(mut event: Event, meta: &Meta) -> Result<Option<Event>, Error> {
    let properties = event.properties().cloned().unwrap_or_default();
    if truthy(properties.get("$geoip_disable")) {
        return Ok(Some(event));
    }
    let ip = match event.get("ip") {
        ip if truthy(ip) => ip,
        _ => properties.get("$ip"),
    };
    let Some(ip) = ip.filter(|ip| truthy(Some(ip))) else {
        return Ok(Some(event));
    };
    let Some(response) = meta.geoip.locate(&js_string(ip))? else {
        return Ok(Some(event));
    };
    let location = location_of(&response);
    let mut properties = properties;
    let mut set = Map::new();
    let mut set_once = Map::new();
    for (key, value) in location {
        properties.insert(format!("$geoip_{key}"), value.clone());
        set.insert(format!("$geoip_{key}"), value.clone());
        set_once.insert(format!("$initial_geoip_{key}"), value);
    }
    let merged_set = spread(set, properties.get("$set"));
    properties.insert("$set".into(), merged_set);
    let merged_set_once = spread(set_once, properties.get("$set_once"));
    properties.insert("$set_once".into(), merged_set_once);
    event.set("properties", properties);
    Ok(Some(event))
}

sandpipe_connector::export!();
