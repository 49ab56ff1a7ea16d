//! The event a hook gets, and the webhook request `compose_webhook` returns.
//!
//! An [`Event`] is the event's JSON object itself, its keys in the order they
//! came: what a hook does not touch leaves exactly as it arrived, and a key it
//! adds goes last, as in JavaScript (except that JavaScript puts integer-like
//! keys first; here they keep their place).

use serde::Serialize;
use serde_json::{Map, Value};

/// A PostHog event: `event`, `distinct_id`, `properties` and whatever else it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub Map<String, Value>);

impl Event {
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Event, crate::Error> {
        match serde_json::from_slice(bytes)? {
            Value::Object(map) => Ok(Event(map)),
            _ => Err(crate::Error::new("the host sent an event that is not an object")),
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a JSON map serialises")
    }

    /// The event's name (`event`), if it is a string.
    pub fn name(&self) -> Option<&str> {
        self.0.get("event").and_then(Value::as_str)
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets a top-level field (in place when it exists, last otherwise).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(key.into(), value.into());
    }

    /// `properties`, if it is an object.
    pub fn properties(&self) -> Option<&Map<String, Value>> {
        self.0.get("properties").and_then(Value::as_object)
    }

    /// `properties`, made an empty object first when it is missing or is not one.
    pub fn properties_mut(&mut self) -> &mut Map<String, Value> {
        let slot = self
            .0
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot.as_object_mut().expect("just made an object")
    }
}

/// What `compose_webhook` returns: the host checks it and fills defaults
/// (`method` POST, `Content-Type: application/json`) as for JavaScript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl Webhook {
    /// A POST of `body` to `url`.
    pub fn post(url: impl Into<String>, body: impl Into<String>) -> Webhook {
        Webhook {
            url: url.into(),
            method: None,
            headers: Map::new(),
            body: Some(body.into()),
        }
    }
}
