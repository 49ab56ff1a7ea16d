//! An event as the JSON text a connector wrote, checked without being built.
//!
//! Between connectors the host only needs to know that a result is JSON it
//! accepts — an object or null — and what its `team_id` is; the text itself is
//! what the next connector reads. [`shape`] answers that with serde_json's own
//! parser driven by a visitor that keeps nothing: the same syntax, the same
//! string checks (UTF-8, escapes, lone surrogates), the same number parsing and
//! the same nesting limit as `serde_json::from_slice::<Value>`, so a text it
//! accepts always parses into a `Value` later (the `result_shape` fuzz target
//! checks both agree). Text with an object whose first key is serde_json's
//! raw-value token ([`crate::json::RAW_VALUE_KEY`]), which a `Value` reads
//! specially, is read as a `Value` to agree with it.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::fmt;

/// What a result is, read the way `serde_json::from_slice::<Value>` reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Null,
    /// An object, with its `team_id` (the last one, when the key repeats).
    Object {
        team_id: Option<Value>,
    },
    /// Any other JSON value.
    Other,
}

impl Shape {
    /// The shape of a value serde_json built: what [`shape`] finds in its text.
    pub fn of(value: &Value) -> Shape {
        match value {
            Value::Null => Shape::Null,
            Value::Object(object) => Shape::Object {
                team_id: object.get("team_id").cloned(),
            },
            _ => Shape::Other,
        }
    }
}

/// Reads `bytes` as one JSON value (whitespace around it allowed), building
/// nothing but the top-level `team_id`.
pub fn shape(bytes: &[u8]) -> serde_json::Result<Shape> {
    // One check of the whole text is cheaper than one per string; text that
    // fails it is read as bytes, for serde_json's own error and position.
    let read = match std::str::from_utf8(bytes) {
        Ok(text) => shape_of(serde_json::de::StrRead::new(text)),
        Err(_) => shape_of(serde_json::de::SliceRead::new(bytes)),
    };
    match read? {
        Some(shape) => Ok(shape),
        None => Ok(Shape::of(&serde_json::from_slice(bytes)?)),
    }
}

/// The shape, or `None` when the text must be read as a `Value` (an
/// object starts with the raw-value token).
fn shape_of<'de, R: serde_json::de::Read<'de>>(read: R) -> serde_json::Result<Option<Shape>> {
    let needs_value = Cell::new(false);
    let mut reader = serde_json::Deserializer::new(read);
    let read = (&mut reader)
        .deserialize_any(TopLevel(Checked(&needs_value)))
        .and_then(|shape| reader.end().map(|()| shape));
    match read {
        Err(_) if needs_value.get() => Ok(None),
        read => read.map(Some),
    }
}

/// The JSON text of an event object a connector returned, checked by [`shape`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventText {
    text: Vec<u8>,
    team_id: Option<Value>,
}

impl EventText {
    /// `text` if it is a JSON object the host accepts; `Ok(None)` for `null`;
    /// `Err(Some(error))` for text that is not JSON, `Err(None)` for another value.
    pub(crate) fn check(text: Vec<u8>) -> Result<Option<EventText>, Option<serde_json::Error>> {
        match shape(&text) {
            Ok(Shape::Null) => Ok(None),
            Ok(Shape::Object { team_id }) => Ok(Some(EventText { text, team_id })),
            Ok(Shape::Other) => Err(None),
            Err(error) => Err(Some(error)),
        }
    }

    /// The text, as the connector wrote it.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The event's `team_id`, if it has one.
    pub fn team_id(&self) -> Option<&Value> {
        self.team_id.as_ref()
    }

    pub fn into_text(self) -> Vec<u8> {
        self.text
    }

    /// The event built as an object. [`shape`] accepted the text, so this
    /// parse succeeds; it stays fallible so guest output never panics the host.
    pub fn to_object(&self) -> serde_json::Result<Map<String, Value>> {
        serde_json::from_slice(&self.text)
    }
}

/// The top-level value: its kind, and `team_id` when it is an object.
struct TopLevel<'a>(Checked<'a>);

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shape, A::Error> {
        self.0.visit_seq(seq)?;
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let checked = self.0;
        let mut team_id = None;
        let mut first = true;
        while let Some(key) = map.next_key_seed(checked.key(first))? {
            first = false;
            if key {
                team_id = Some(map.next_value::<Value>()?);
            } else {
                map.next_value_seed(checked)?;
            }
        }
        Ok(Shape::Object { team_id })
    }
}

/// Any value, read in full and kept nowhere; the flag is set when an object
/// starts with the raw-value token (the reading then stops).
#[derive(Clone, Copy)]
struct Checked<'a>(&'a Cell<bool>);

impl<'a> Checked<'a> {
    fn key(self, first: bool) -> Key<'a> {
        Key {
            needs_value: self.0,
            first,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<(), D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while map.next_key_seed(self.key(first))?.is_some() {
            first = false;
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object key, read as `Value` reads keys (a string); whether it is `team_id`.
struct Key<'a> {
    needs_value: &'a Cell<bool>,
    /// Whether it is the object's first key (where the raw-value token counts).
    first: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<bool, D::Error> {
        reader.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        if self.first && key == crate::json::RAW_VALUE_KEY {
            self.needs_value.set(true);
            return Err(E::custom("serde_json's raw-value token"));
        }
        Ok(key == "team_id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shape` accepts exactly what `Value` accepts, and finds the same kind and `team_id`.
    fn agrees(text: &[u8]) {
        let shaped = shape(text);
        let valued = serde_json::from_slice::<Value>(text);
        match (&shaped, &valued) {
            (Ok(shape), Ok(value)) => {
                assert_eq!(
                    shape,
                    &Shape::of(value),
                    "{}",
                    String::from_utf8_lossy(text)
                );
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!(
                "shape {shaped:?} but Value {valued:?} for {}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    #[test]
    fn shape_accepts_what_a_value_accepts() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases: Vec<Vec<u8>> = [
            r#"{"team_id":1,"event":"a","properties":{"x":[1,2.5,{"y":null}]}}"#,
            r#"{"team_id":1,"team_id":2}"#,
            r#"{"a":{"team_id":3}}"#,
            r#"null"#,
            r#" null "#,
            r#"[1,2]"#,
            r#""text""#,
            r#"true"#,
            r#"12"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00\ud800"}"#,
            r#"{"\ud800":1}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":-1e400}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":1.}"#,
            r#"{"a":01}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"{"team_id":{"nested":[1,"\u0000"]}}"#,
            r#""#,
            r#"{"a":"tab	inside"}"#,
            r#"{"$serde_json::private::RawValue":"{\"team_id\":5}"}"#,
            r#"{"$serde_json::private::RawValue":"[1]"}"#,
            r#"{"a":{"\u0024serde_json::private::RawValue":"[1"}}"#,
            r#"{"a":1,"$serde_json::private::RawValue":"[1]"}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            deep(127).into_bytes(),
            deep(128).into_bytes(),
            deep(129).into_bytes(),
            format!(r#"{{"a":{}}}"#, deep(127)).into_bytes(),
            format!(r#"{{"a":{}}}"#, deep(128)).into_bytes(),
            b"{\"a\":\"\xff\"}".to_vec(),
            b"{\"\xc3\":1}".to_vec(),
        ])
        .collect();
        for case in &cases {
            agrees(case);
        }
    }

    #[test]
    fn an_event_text_keeps_the_text_and_its_team_id() {
        let text = br#"{"event":"a","team_id":7}"#.to_vec();
        let event = EventText::check(text.clone()).unwrap().unwrap();
        assert_eq!(event.text(), text.as_slice());
        assert_eq!(event.team_id(), Some(&Value::from(7)));
        assert_eq!(event.to_object().unwrap()["event"], "a");
        assert!(matches!(EventText::check(b"null".to_vec()), Ok(None)));
        assert!(matches!(EventText::check(b"[]".to_vec()), Err(None)));
        assert!(matches!(EventText::check(b"{".to_vec()), Err(Some(_))));
    }
}
