//! An event's JSON text written again as the host writes events, in one pass,
//! without building a `Value`.
//!
//! What the host writes for an event is `json::to_vec(&value)` of the `Value`
//! serde_json reads from its text: serde_json's reading (syntax, string
//! checks, numbers, the nesting limit), then JavaScript's numbers. [`event`]
//! drives the same parser with visitors that write each value as it is read,
//! through the same formatter, so it gives the same bytes — the
//! `result_shape` fuzz target holds the two equal — at a fraction of the cost
//! (no maps, no strings, no hashing). It can also add the chain's bookkeeping
//! ([`Plugins`]) on the way, exactly as [`Chain`](crate::Chain) adds it to a
//! `Value`.
//!
//! Two things a single pass cannot write as a `Value` would. An object that
//! repeats a key: a `Value` keeps the key once, in its first place, with its
//! last value, and the pass has written the first value by the time it meets
//! the repeat. And an object whose first key is serde_json's raw-value token
//! ([`json::RAW_VALUE_KEY`](crate::json::RAW_VALUE_KEY)), which a `Value` reads
//! as the value its string holds (a serde_json feature the service's HTTP
//! stack turns on). For both [`event`] answers [`RewriteError::NeedsValue`] and
//! the caller builds the `Value` instead ([`through_value`]).

use crate::json::JsFormatter;
use serde::Serializer as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The chain's bookkeeping, added to `properties` as the chain adds it to a
/// `Value`: each list appended to the array already there (one that is not an
/// array is replaced), or added last; `properties` made an object first.
#[derive(Debug, Clone, Copy)]
pub struct Plugins<'a> {
    /// For `$plugins_succeeded`.
    pub succeeded: &'a [String],
    /// For `$plugins_failed`.
    pub failed: &'a [String],
}

impl Plugins<'_> {
    /// Adds the bookkeeping to an event built as a `Value`: `properties`
    /// created last when missing and made an object when it is not one; each
    /// list created last when missing, made an array when it is not one, and
    /// extended.
    pub fn add_to(&self, event: &mut Value) {
        let Value::Object(event) = event else { return };
        let properties = event
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if !properties.is_object() {
            *properties = Value::Object(Map::new());
        }
        let Value::Object(properties) = properties else {
            unreachable!("just made an object")
        };
        for (key, names) in [(SUCCEEDED, self.succeeded), (FAILED, self.failed)] {
            let list = properties
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            if !list.is_array() {
                *list = Value::Array(Vec::new());
            }
            if let Value::Array(list) = list {
                list.extend(names.iter().cloned().map(Value::from));
            }
        }
    }
}

/// What [`event`] noticed in the event's own keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Noted {
    /// Its `team_id`, read back from the text written.
    pub team_id: Option<Value>,
    /// Whether its `event` is `"$snapshot"`.
    pub snapshot: bool,
}

/// Why [`event`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// Not JSON text a `Value` reads (serde_json's message).
    #[error("invalid JSON: {}", crate::json::explained(.0))]
    Json(serde_json::Error),
    /// JSON, but not an object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// Some object repeats a key, or starts with serde_json's raw-value
    /// token: build the `Value` instead ([`through_value`]).
    #[error("an object repeats a key or starts with serde_json's raw-value token")]
    NeedsValue,
}

/// Appends to `out` what the host writes for the event whose JSON text is
/// `text`, with `plugins` added when given. On an error `out` is as it was.
pub fn event(
    text: &[u8],
    plugins: Option<Plugins<'_>>,
    out: &mut Vec<u8>,
) -> Result<Noted, RewriteError> {
    // One check of the whole text is cheaper than one per string; text that
    // fails it is read as bytes, for serde_json's own error and position.
    match std::str::from_utf8(text) {
        Ok(text) => event_str(text, plugins, out),
        Err(_) => rewrite(serde_json::de::SliceRead::new(text), plugins, out),
    }
}

/// [`event`] for text known to be UTF-8 (its strings are not checked again).
pub fn event_str(
    text: &str,
    plugins: Option<Plugins<'_>>,
    out: &mut Vec<u8>,
) -> Result<Noted, RewriteError> {
    rewrite(serde_json::de::StrRead::new(text), plugins, out)
}

/// What [`event`] writes, made by building the `Value` (with the
/// bookkeeping added by [`Plugins::add_to`]): what [`event`] is held to, and
/// what to use when it answers [`RewriteError::NeedsValue`].
pub fn through_value(text: &[u8], plugins: Option<Plugins<'_>>) -> Result<Vec<u8>, RewriteError> {
    let mut event = parse_event(text)?;
    if let Some(plugins) = plugins {
        plugins.add_to(&mut event);
    }
    Ok(crate::json::to_vec(&event).expect("a JSON value serialises"))
}

/// The event whose JSON text is `text`, built as a `Value`, with
/// [`event`]'s errors.
pub fn parse_event(text: &[u8]) -> Result<Value, RewriteError> {
    match serde_json::from_slice(text).map_err(RewriteError::Json)? {
        event @ Value::Object(_) => Ok(event),
        _ => Err(RewriteError::NotAnObject),
    }
}

fn rewrite<'de, R: serde_json::de::Read<'de>>(
    read: R,
    plugins: Option<Plugins<'_>>,
    out: &mut Vec<u8>,
) -> Result<Noted, RewriteError> {
    let start = out.len();
    let mut writer = Writer {
        out: std::mem::take(out),
        keys: Vec::new(),
        needs_value: false,
    };
    let mut reader = serde_json::Deserializer::new(read);
    let read = (&mut reader)
        .deserialize_any(Any {
            writer: &mut writer,
            role: Role::Event(plugins),
        })
        .and_then(|noted| reader.end().map(|()| noted));
    *out = writer.out;
    let result = match read {
        Ok(Some(noted)) => return Ok(noted),
        Ok(None) => RewriteError::NotAnObject,
        Err(_) if writer.needs_value => RewriteError::NeedsValue,
        Err(error) => RewriteError::Json(error),
    };
    out.truncate(start);
    Err(result)
}

/// serde_json's writer with JavaScript's numbers, into the text being written.
type Serializer<'a> = serde_json::Serializer<&'a mut Vec<u8>, JsFormatter>;

/// The text being written, and the keys of the objects open in it.
struct Writer {
    out: Vec<u8>,
    /// Where each key of the open objects was written (its escaped text).
    keys: Vec<(usize, usize)>,
    /// Set when the text needs a `Value` built (the error that stops the reading).
    needs_value: bool,
}

impl Writer {
    /// Writes one scalar through serde_json's serializer with JavaScript's numbers.
    fn scalar<E: de::Error>(
        &mut self,
        write: impl FnOnce(&mut Serializer<'_>) -> serde_json::Result<()>,
    ) -> Result<(), E> {
        let mut serializer = serde_json::Serializer::with_formatter(&mut self.out, JsFormatter);
        write(&mut serializer).map_err(E::custom)
    }

    fn string<E: de::Error>(&mut self, text: &str) -> Result<(), E> {
        self.scalar(|s| s.serialize_str(text))
    }

    /// A string the parser read with no escape in it: written as it was,
    /// since such text holds nothing JSON escapes (no control character,
    /// quote or backslash can stand unescaped in a JSON string).
    fn unescaped(&mut self, text: &str) {
        self.out.reserve(text.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'"');
    }

    /// `[names…]`.
    fn list<E: de::Error>(&mut self, names: &[String]) -> Result<(), E> {
        self.out.push(b'[');
        self.names(names, true)?;
        self.out.push(b']');
        Ok(())
    }

    /// `names`, comma-separated, after a first element or not.
    fn names<E: de::Error>(&mut self, names: &[String], first: bool) -> Result<(), E> {
        for (index, name) in names.iter().enumerate() {
            if index > 0 || !first {
                self.out.push(b',');
            }
            self.string(name)?;
        }
        Ok(())
    }

    /// `"key":[names…]`, after an earlier member or not.
    fn member<E: de::Error>(&mut self, key: &str, names: &[String], first: bool) -> Result<(), E> {
        if !first {
            self.out.push(b',');
        }
        self.string(key)?;
        self.out.push(b':');
        self.list(names)
    }

    /// `properties` holding only the bookkeeping.
    fn bookkeeping<E: de::Error>(&mut self, plugins: Plugins<'_>) -> Result<(), E> {
        self.out.push(b'{');
        self.member(SUCCEEDED, plugins.succeeded, true)?;
        self.member(FAILED, plugins.failed, false)?;
        self.out.push(b'}');
        Ok(())
    }

    /// Whether two of the keys written since `base` are the same (equal
    /// escaped text is an equal key: escaping is one-to-one).
    fn repeats(&self, base: usize) -> bool {
        let text = |&(start, end): &(usize, usize)| &self.out[start..end];
        let keys = &self.keys[base..];
        if keys.len() <= 16 {
            return keys
                .iter()
                .enumerate()
                .any(|(i, a)| keys[i + 1..].iter().any(|b| text(a) == text(b)));
        }
        let mut sorted: Vec<&[u8]> = keys.iter().map(text).collect();
        sorted.sort_unstable();
        sorted.windows(2).any(|pair| pair[0] == pair[1])
    }
}

const SUCCEEDED: &str = "$plugins_succeeded";
const FAILED: &str = "$plugins_failed";

/// What a value is to the event, which decides how it is written.
#[derive(Clone, Copy)]
enum Role<'p> {
    /// Anything inside the event: written as it is.
    Plain,
    /// The event: an object, whose `team_id` and `event` are noted and whose
    /// `properties` gets the bookkeeping, if any.
    Event(Option<Plugins<'p>>),
    /// The event's `properties`, which gets the bookkeeping.
    Properties(Plugins<'p>),
    /// One bookkeeping list in `properties`, which gets these names.
    List(&'p [String]),
}

/// A key, as the keys the roles look for.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    TeamId,
    Event,
    Properties,
    Succeeded,
    Failed,
    Other,
}

/// One value read and written, in its role. Its result is what the event's
/// own object noted; `None` when the event is not an object.
struct Any<'w, 'p> {
    writer: &'w mut Writer,
    role: Role<'p>,
}

impl Any<'_, '_> {
    /// Ends a value that is not an object (nor, for a list, an array): kept
    /// as written, or replaced as its role says.
    fn other<E: de::Error>(self, start: usize) -> Result<Option<Noted>, E> {
        let writer = self.writer;
        match self.role {
            Role::Plain => return Ok(Some(Noted::default())),
            Role::Event(_) => {
                writer.out.truncate(start);
                return Ok(None);
            }
            Role::Properties(plugins) => {
                writer.out.truncate(start);
                writer.bookkeeping(plugins)?;
            }
            Role::List(names) => {
                writer.out.truncate(start);
                writer.list(names)?;
            }
        }
        Ok(Some(Noted::default()))
    }

    /// Writes one scalar, then ends it as its role says.
    fn scalar<E: de::Error>(
        self,
        write: impl FnOnce(&mut Serializer<'_>) -> serde_json::Result<()>,
    ) -> Result<Option<Noted>, E> {
        let start = self.writer.out.len();
        self.writer.scalar(write)?;
        self.other(start)
    }

    fn plain(writer: &mut Writer) -> Any<'_, 'static> {
        Any {
            writer,
            role: Role::Plain,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Any<'_, '_> {
    type Value = Option<Noted>;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Option<Noted>, D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any<'_, '_> {
    type Value = Option<Noted>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Noted>, E> {
        self.scalar(|s| s.serialize_unit())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Option<Noted>, E> {
        self.scalar(|s| s.serialize_bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Option<Noted>, E> {
        // As a `Value` holds it: a non-negative integer as unsigned.
        match u64::try_from(value) {
            Ok(value) => self.scalar(|s| s.serialize_u64(value)),
            Err(_) => self.scalar(|s| s.serialize_i64(value)),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Option<Noted>, E> {
        self.scalar(|s| s.serialize_u64(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Option<Noted>, E> {
        // JSON text holds no NaN or infinity, so a `Value` would hold this number.
        self.scalar(|s| s.serialize_f64(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<Noted>, E> {
        self.scalar(|s| s.serialize_str(value))
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Option<Noted>, E> {
        let start = self.writer.out.len();
        self.writer.unescaped(value);
        self.other(start)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Noted>, A::Error> {
        let start = self.writer.out.len();
        self.writer.out.push(b'[');
        let mut first = true;
        loop {
            let mark = self.writer.out.len();
            if !first {
                self.writer.out.push(b',');
            }
            if seq.next_element_seed(Any::plain(self.writer))?.is_none() {
                self.writer.out.truncate(mark);
                break;
            }
            first = false;
        }
        if let Role::List(names) = self.role {
            self.writer.names(names, first)?;
            self.writer.out.push(b']');
            return Ok(Some(Noted::default()));
        }
        self.writer.out.push(b']');
        self.other(start)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Noted>, A::Error> {
        let writer = self.writer;
        let start = writer.out.len();
        let base = writer.keys.len();
        writer.out.push(b'{');
        let mut noted = Noted::default();
        let (mut has_properties, mut has_succeeded, mut has_failed) = (false, false, false);
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed {
            writer: &mut *writer,
            first,
        })? {
            first = false;
            let value_start = writer.out.len();
            let role = match (self.role, key) {
                (Role::Event(Some(plugins)), Key::Properties) => {
                    has_properties = true;
                    Role::Properties(plugins)
                }
                (Role::Properties(plugins), Key::Succeeded) => {
                    has_succeeded = true;
                    Role::List(plugins.succeeded)
                }
                (Role::Properties(plugins), Key::Failed) => {
                    has_failed = true;
                    Role::List(plugins.failed)
                }
                _ => Role::Plain,
            };
            map.next_value_seed(Any {
                writer: &mut *writer,
                role,
            })?;
            if let Role::Event(_) = self.role {
                let value = &writer.out[value_start..];
                match key {
                    Key::TeamId => {
                        noted.team_id =
                            Some(serde_json::from_slice(value).map_err(de::Error::custom)?)
                    }
                    Key::Event => noted.snapshot = value == b"\"$snapshot\"",
                    _ => {}
                }
            }
        }
        match self.role {
            Role::Event(Some(plugins)) if !has_properties => {
                if !first {
                    writer.out.push(b',');
                }
                writer.string("properties")?;
                writer.out.push(b':');
                writer.bookkeeping(plugins)?;
            }
            Role::Properties(plugins) => {
                if !has_succeeded {
                    writer.member(SUCCEEDED, plugins.succeeded, first)?;
                    first = false;
                }
                if !has_failed {
                    writer.member(FAILED, plugins.failed, first)?;
                }
            }
            _ => {}
        }
        writer.out.push(b'}');
        if writer.repeats(base) {
            writer.needs_value = true;
            return Err(de::Error::custom("an object repeats a key"));
        }
        writer.keys.truncate(base);
        match self.role {
            Role::List(_) => Any {
                writer,
                role: self.role,
            }
            .other(start),
            _ => Ok(Some(noted)),
        }
    }
}

/// An object key (read as a `Value` reads keys: a string), written with the
/// comma before it and the colon after it; which key the roles look for it is.
struct KeySeed<'w> {
    writer: &'w mut Writer,
    first: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Key, D::Error> {
        reader.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        self.write(key, false)
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key, E> {
        self.write(key, true)
    }
}

impl KeySeed<'_> {
    /// Writes `key`, `unescaped` when the parser read it with no escape in it.
    fn write<E: de::Error>(self, key: &str, unescaped: bool) -> Result<Key, E> {
        let writer = self.writer;
        if self.first && key == crate::json::RAW_VALUE_KEY {
            writer.needs_value = true;
            return Err(de::Error::custom("serde_json's raw-value token"));
        }
        if !self.first {
            writer.out.push(b',');
        }
        let start = writer.out.len();
        if unescaped {
            writer.unescaped(key);
        } else {
            writer.string(key)?;
        }
        writer.keys.push((start, writer.out.len()));
        writer.out.push(b':');
        Ok(match key {
            "team_id" => Key::TeamId,
            "event" => Key::Event,
            "properties" => Key::Properties,
            SUCCEEDED => Key::Succeeded,
            FAILED => Key::Failed,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_value(text: &str, plugins: Option<Plugins<'_>>) -> Result<String, String> {
        super::through_value(text.as_bytes(), plugins)
            .map(|bytes| String::from_utf8(bytes).unwrap())
            .map_err(|error| error.to_string())
    }

    fn rewritten(text: &str, plugins: Option<Plugins<'_>>) -> Result<String, String> {
        let mut out = b"kept".to_vec();
        match event(text.as_bytes(), plugins, &mut out) {
            Ok(_) => Ok(String::from_utf8(out[4..].to_vec()).unwrap()),
            Err(error) => {
                assert_eq!(out, b"kept", "an error leaves the output as it was");
                Err(error.to_string())
            }
        }
    }

    #[test]
    fn events_are_written_as_their_values_are() {
        let succeeded = ["a (0)".to_string(), "b \"1\" (1)".to_string()];
        let failed = ["c (2)".to_string()];
        let plugins = Plugins {
            succeeded: &succeeded,
            failed: &failed,
        };
        let none = Plugins {
            succeeded: &[],
            failed: &[],
        };
        let cases = [
            r#"{"event":"a","team_id":2,"properties":{"x":[1,2.50,{"y":null}],"z":"\u00e9\n"}}"#,
            r#" { "event" : "a" , "n" : [ ] , "o" : { } } "#,
            r#"{"a":1e2,"b":-0,"c":-0.0,"d":12345678901234567890,"e":1e21,"f":1e-7,"g":-9007199254740993}"#,
            r#"{"a":123456789012345678901234567890,"b":0.1,"c":5e-324,"d":true,"e":false}"#,
            r#"{"a":"\ud83d\ude00","b":"\u0000\u001f\u007f","c":"\/"}"#,
            r#"{}"#,
            r#"{"properties":{}}"#,
            r#"{"properties":null,"x":1}"#,
            r#"{"properties":[1,{"a":2}],"x":1}"#,
            r#"{"properties":"text"}"#,
            r#"{"properties":{"$plugins_succeeded":["old (0)"],"k":1}}"#,
            r#"{"properties":{"$plugins_failed":{"a":[1]},"$plugins_succeeded":7}}"#,
            r#"{"properties":{"$plugins_succeeded":[],"$plugins_failed":[]}}"#,
            r#"{"a":{"properties":{"nested":1}},"b":[{"$plugins_failed":1}]}"#,
            r#"{"\u0070roperties":{"x":1}}"#,
        ];
        for case in cases {
            for plugins in [None, Some(plugins), Some(none)] {
                assert_eq!(
                    rewritten(case, plugins),
                    through_value(case, plugins),
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn what_a_value_refuses_is_refused_with_its_message() {
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        for case in [
            r#"{"a":1,}"#.to_string(),
            r#"{"a":01}"#.into(),
            r#"{"a":1e400}"#.into(),
            r#"{"a":"\ud800"}"#.into(),
            r#"{"a":1} x"#.into(),
            r#"[1,2]"#.into(),
            r#"[1,2"#.into(),
            r#"null"#.into(),
            r#""text""#.into(),
            r#""#.into(),
            deep(126),
            deep(127),
            deep(128),
        ] {
            assert_eq!(rewritten(&case, None), through_value(&case, None), "{case}");
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_where_a_value_refuses_it() {
        for case in [&b"{\"a\":\"\xff\"}"[..], b"{\"\xc3\":1}", b"{\"a\":1}\xff"] {
            let mut out = Vec::new();
            let refused = event(case, None, &mut out).unwrap_err().to_string();
            let expected = super::through_value(case, None).unwrap_err().to_string();
            assert_eq!(refused, expected);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn text_without_escapes_is_copied_as_serde_json_would_write_it() {
        for case in [
            "{\"caf\u{e9}\":\"\u{2028}\u{7f}\u{1f600}\",\"\u{7f}\":\"a/b\"}",
            "{\"k\":\"\u{e9}\\u00e9\",\"\u{e9}\\n\":1}",
        ] {
            assert_eq!(rewritten(case, None), through_value(case, None), "{case}");
        }
    }

    #[test]
    fn the_raw_value_token_as_a_first_key_asks_for_the_value() {
        for case in [
            r#"{"$serde_json::private::RawValue":"5"}"#,
            r#"{"a":{"\u0024serde_json::private::RawValue":"[1]"}}"#,
        ] {
            let mut out = Vec::new();
            assert!(
                matches!(
                    event(case.as_bytes(), None, &mut out),
                    Err(RewriteError::NeedsValue)
                ),
                "{case}"
            );
            assert!(out.is_empty());
        }
        // As a later key it is an ordinary key, for a `Value` too.
        let later = r#"{"a":1,"$serde_json::private::RawValue":"5"}"#;
        assert_eq!(rewritten(later, None), through_value(later, None));
    }

    #[test]
    fn a_repeated_key_asks_for_the_value() {
        for case in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"b":{"c":1,"d":2,"c":3}}"#,
            r#"{"properties":{"$plugins_succeeded":[],"$plugins_succeeded":[]}}"#,
            r#"{"a":1,"\u0061":2}"#,
        ] {
            let mut out = Vec::new();
            assert!(
                matches!(
                    event(case.as_bytes(), None, &mut out),
                    Err(RewriteError::NeedsValue)
                ),
                "{case}"
            );
            assert!(out.is_empty());
        }
        let many: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let distinct = format!("{{{}}}", many.join(","));
        let repeated = format!("{{{},\"k7\":0}}", many.join(","));
        assert!(event(distinct.as_bytes(), None, &mut Vec::new()).is_ok());
        assert!(matches!(
            event(repeated.as_bytes(), None, &mut Vec::new()),
            Err(RewriteError::NeedsValue)
        ));
    }

    #[test]
    fn the_event_notes_its_team_id_and_whether_it_is_a_snapshot() {
        let noted = |text: &str| event_str(text, None, &mut Vec::new()).unwrap();
        assert_eq!(
            noted(r#"{"team_id":2.0,"event":"$snapshot","x":{"team_id":3}}"#),
            Noted {
                team_id: Some(Value::from(2)),
                snapshot: true
            }
        );
        assert_eq!(
            noted(r#"{"event":"$snapshots","properties":{"event":"$snapshot"}}"#),
            Noted::default()
        );
        assert_eq!(
            noted(r#"{"event":"\u0024snapshot","team_id":{"a":[1]}}"#),
            Noted {
                team_id: Some(serde_json::json!({"a": [1]})),
                snapshot: true
            }
        );
    }
}
