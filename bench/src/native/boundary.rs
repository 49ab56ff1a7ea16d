//! The boundary-bound chain natively: tagger → counter → filter
//! (`bench/connectors/`). The counter's state is one [`Counter`] per chain, as
//! each chain has its own connector instances.

use super::{bookkeeping, truthy};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The chain's labels, as sandpipe and the Node baselines record them.
pub const LABELS: [&str; 3] = ["Tagger (0)", "Counter (1)", "Filter (2)"];
/// The tagger's config.
pub const SOURCE: &str = "web-shop";
pub const ENVIRONMENT: &str = "production";
/// The filter's config, as the connector's comma-separated strings.
pub const DROP_EVENTS: &str = "$pageleave, feature_flag_called";
pub const REMOVE_PROPERTIES: &str = "$session_id, $lib_version, experiment";

/// The counter connector's top-level state.
#[derive(Default)]
pub struct Counter {
    seen: u64,
    /// By the event's name as JSON text (`None` for a missing name).
    counts: HashMap<Option<String>, u64>,
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn tag(event: &mut Map<String, Value>) {
    let day = match event.get("timestamp") {
        Some(Value::String(timestamp)) => Value::String(timestamp.chars().take(10).collect()),
        _ => Value::Null,
    };
    // `event.properties || {}`, assigned back: an existing key keeps its place.
    if !matches!(event.get("properties"), Some(Value::Object(_))) {
        event.insert("properties".into(), Value::Object(Map::new()));
    }
    let Some(Value::Object(properties)) = event.get_mut("properties") else {
        unreachable!("just made an object")
    };
    let identified = truthy(properties.get("$set")) && truthy(properties["$set"].get("email"));
    properties.insert("$source".into(), SOURCE.into());
    properties.insert("$environment".into(), ENVIRONMENT.into());
    properties.insert("$day".into(), day);
    properties.insert("$identified".into(), identified.into());
}

fn count(event: &mut Map<String, Value>, counter: &mut Counter) {
    counter.seen += 1;
    let name = event.get("event").map(Value::to_string);
    let count = counter.counts.entry(name).or_default();
    *count += 1;
    if let Some(Value::Object(properties)) = event.get_mut("properties") {
        properties.insert("$sequence".into(), counter.seen.into());
        properties.insert("$event_number".into(), (*count).into());
    }
}

/// Whether the filter keeps the event; removes its configured properties.
fn filter(event: &mut Map<String, Value>) -> bool {
    if let Some(Value::String(name)) = event.get("event")
        && list(DROP_EVENTS).any(|dropped| dropped == name)
    {
        return false;
    }
    if let Some(Value::Object(properties)) = event.get_mut("properties") {
        for key in list(REMOVE_PROPERTIES) {
            properties.shift_remove(key);
        }
    }
    true
}

/// The whole chain on one event, serialised as the hosts serialise it
/// (`null` for a dropped event).
pub fn process(line: &str, counter: &mut Counter) -> String {
    let mut value: Value = serde_json::from_str(line).expect("generated events are JSON");
    let event = value.as_object_mut().expect("generated events are objects");
    tag(event);
    count(event, counter);
    if !filter(event) {
        return "null".into();
    }
    bookkeeping(event, &LABELS);
    value.to_string()
}
