//! The native limit: each benchmark chain's transformations hand-written in
//! Rust over serde_json values, with the same results byte for byte as the
//! connectors, and PostHog's `$plugins_succeeded`/`$plugins_failed`
//! bookkeeping after them.

pub mod boundary;
pub mod geoip;

use serde_json::{Map, Value, json};

/// PostHog's bookkeeping after a chain in which every connector ran fine.
fn bookkeeping(event: &mut Map<String, Value>, labels: &[&str]) {
    let properties = event
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties.insert("$plugins_succeeded".into(), json!(labels));
        properties.insert("$plugins_failed".into(), json!([]));
    }
}

/// JavaScript's truthiness of a JSON value (`None` is `undefined`).
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}
