//! What the host takes as an event, the one rule `run`, `serve` and the
//! workers apply before a chain sees an item: a JSON object with a non-empty
//! string `"event"`. (Its `team_id`, if it has one, is its own: events
//! exported from PostHog carry PostHog's team numbers, which are not the
//! service's, and a value is passed on as it came.)

use serde::Deserialize;
use serde_json::Value;

/// Why an item without an event name is refused.
const UNNAMED: &str = "an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}";

/// Why `item` is not an event, if it is not.
pub fn refusal(item: &Value) -> Option<&'static str> {
    let Value::Object(event) = item else {
        return Some("not a JSON object; send an event object or a list of them");
    };
    (!is_name(event.get("event"))).then_some(UNNAMED)
}

/// Why `item`, which must be one event (an NDJSON line to publish, a NATS
/// message), is not one: as [`refusal`], a list being no event here.
pub fn refusal_of_one(item: &Value) -> Option<&'static str> {
    match item {
        Value::Object(_) => refusal(item),
        _ => Some("not a JSON object; one event object is expected"),
    }
}

/// Why the JSON text `line` is not an event, if it is an object without a
/// name; anything else (not JSON, not an object) is left to the chain's own
/// reading, which says what is wrong with it. Reads the line once more,
/// keeping only its `"event"`.
pub fn line_refusal(line: &str) -> Option<&'static str> {
    #[derive(Deserialize)]
    struct Named {
        event: Option<Value>,
    }
    // (A struct reads from an array too: only an object is looked at.)
    if !line.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Named>(line) {
        Ok(Named { event }) => (!is_name(event.as_ref())).then_some(UNNAMED),
        // A repeated key (`"event"` among them): the last one counts, as in
        // the `Value` `serve` reads the item into.
        Err(_) => match serde_json::from_str::<Value>(line) {
            Ok(item @ Value::Object(_)) => refusal(&item),
            _ => None,
        },
    }
}

fn is_name(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::String(name)) if !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_is_an_object_with_a_name() {
        assert_eq!(refusal(&json!({"event": "e"})), None);
        // Its team_id is its own (PostHog's number, say).
        assert_eq!(refusal(&json!({"event": "e", "team_id": 2})), None);
        assert_eq!(refusal(&json!({"event": ""})), Some(UNNAMED));
        assert_eq!(refusal(&json!({"event": 5})), Some(UNNAMED));
        assert_eq!(refusal(&json!({"properties": {}})), Some(UNNAMED));
        assert_eq!(
            refusal(&json!([{"event": "e"}])),
            Some("not a JSON object; send an event object or a list of them")
        );
    }

    #[test]
    fn a_line_is_refused_only_when_it_is_an_object_without_a_name() {
        assert_eq!(
            line_refusal(r#"{"event":"e","properties":{"x":[1,{"event":1}]}}"#),
            None
        );
        assert_eq!(
            line_refusal(r#"{"properties":{"event":"e"}}"#),
            Some(UNNAMED)
        );
        assert_eq!(line_refusal(r#"{"event":null}"#), Some(UNNAMED));
        assert_eq!(line_refusal(r#"{"event":""}"#), Some(UNNAMED));
        // Left to the chain, which names what is wrong.
        assert_eq!(line_refusal("not json"), None);
        assert_eq!(line_refusal("[1]"), None);
        assert_eq!(line_refusal(r#"["a"]"#), None);
        assert_eq!(line_refusal(r#"{"event":"a","event":"b"}"#), None);
        // The last of a repeated key counts, as in serve's reading.
        assert_eq!(line_refusal(r#"{"event":"a","event":""}"#), Some(UNNAMED));
        assert_eq!(line_refusal(r#"{"event":"","event":"a"}"#), None);
    }
}
