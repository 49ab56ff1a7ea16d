//! The event a hook gets, and the webhook request `compose_webhook` returns.
//!
//! An [`Event`] is the event's JSON object itself, its keys in the order they
//! came: what a hook does not touch leaves exactly as it arrived, and a key it
//! adds goes last, as in JavaScript (except that JavaScript puts integer-like
//! keys first; here they keep their place). `compose_webhook` and `on_event`
//! get [`Event::reduced`], the copy PostHog hands those hooks.

use serde::Serialize;
use serde_json::{Map, Value};

/// A PostHog event: `event`, `distinct_id`, `properties` and whatever else it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub Map<String, Value>);

impl Event {
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Event, crate::Error> {
        // Checked as UTF-8 once, whole (the parser then takes each string as
        // it is), rather than string by string; bytes that are not UTF-8 are
        // refused by the parser, with its message, as before.
        let value = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text)?,
            Err(_) => serde_json::from_slice(bytes)?,
        };
        match value {
            Value::Object(map) => Ok(Event(map)),
            _ => Err(crate::Error::new(
                "the host sent an event that is not an object",
            )),
        }
    }

    /// Appends the event's JSON to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, &self.0).expect("a JSON map serialises");
    }

    /// The reduced copy of the event PostHog gives `composeWebhook` and
    /// `onEvent`: `uuid`, `event`, `team_id`, `distinct_id` (each when
    /// present), `properties` (`{}` when missing or null) and `timestamp`:
    /// the first of the event's `timestamp`, `now` and `sent_at` that is a
    /// string or a number (milliseconds), written as `toISOString` writes
    /// it, else the time of the call. A string in ECMAScript's date-time form
    /// (`2024-10-27`, `2024-10-27T01:00:00Z`, `…T01:00:00.5+02:00`; without
    /// an offset, UTC, the sandbox's zone) is normalised as JavaScript's `Date`
    /// does; any other string is kept as it is, where JavaScript's `Date`
    /// would parse more forms.
    pub fn reduced(&self) -> Event {
        let mut reduced = Map::new();
        for key in ["uuid", "event", "team_id", "distinct_id"] {
            if let Some(value) = self.0.get(key) {
                reduced.insert(key.into(), value.clone());
            }
        }
        let properties = match self.0.get("properties") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(properties) => properties.clone(),
        };
        reduced.insert("properties".into(), properties);
        let time = ["timestamp", "now", "sent_at"]
            .iter()
            .find_map(|key| match self.0.get(*key) {
                Some(Value::String(text)) => Some(
                    parse_iso(text)
                        .and_then(iso_time)
                        .unwrap_or_else(|| text.clone()),
                ),
                Some(Value::Number(ms)) => ms.as_f64().and_then(iso_time),
                _ => None,
            })
            .unwrap_or_else(now);
        reduced.insert("timestamp".into(), Value::String(time));
        Event(reduced)
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

/// The current time as `toISOString` writes it.
fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_millis() as f64);
    iso_time(ms).unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

/// Milliseconds since the epoch of a date in ECMAScript's date-time string
/// form (`YYYY[-MM[-DD]][THH:mm[:ss[.s…]]][Z|±HH:mm]`, years 0000 to 9999;
/// no offset: UTC), or `None`.
pub(crate) fn parse_iso(text: &str) -> Option<f64> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = cursor.number(4)?;
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut millis, mut offset) = (0, 0, 0, 0, 0);
    if cursor.eat(b'-') {
        month = cursor.number(2)?;
        if cursor.eat(b'-') {
            day = cursor.number(2)?;
        }
    }
    if cursor.eat(b'T') {
        hour = cursor.number(2)?;
        cursor.eat(b':').then_some(())?;
        minute = cursor.number(2)?;
        if cursor.eat(b':') {
            second = cursor.number(2)?;
            if cursor.eat(b'.') {
                let digits = cursor.digits();
                if digits.is_empty() {
                    return None;
                }
                millis = format!("{:0<3}", &digits[..digits.len().min(3)])
                    .parse()
                    .ok()?;
            }
        }
        let sign = match () {
            _ if cursor.eat(b'Z') => None,
            _ if cursor.eat(b'+') => Some(1),
            _ if cursor.eat(b'-') => Some(-1),
            _ => None,
        };
        if let Some(sign) = sign {
            let hours = cursor.number(2)?;
            cursor.eat(b':').then_some(())?;
            let minutes = cursor.number(2)?;
            offset = sign * (hours * 60 + minutes);
        }
    }
    let valid = cursor.at == cursor.bytes.len()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (hour < 24 || (hour == 24 && minute == 0 && second == 0 && millis == 0))
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let minutes = days * 1_440 + hour * 60 + minute - offset;
    Some((minutes * 60_000 + second * 1_000 + millis) as f64)
}

/// A position in a date string being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Skips `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&byte);
        self.at += usize::from(next);
        next
    }

    /// The ASCII digits from here on (possibly none).
    fn digits(&mut self) -> &str {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).expect("ASCII digits")
    }

    /// Exactly `count` digits, as a number.
    fn number(&mut self, count: usize) -> Option<i64> {
        let part = self.bytes.get(self.at..self.at + count)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += count;
        std::str::from_utf8(part).ok()?.parse().ok()
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch as `toISOString` writes them, for the years
/// 0000 to 9999 (`None` outside them, or for a fraction of a millisecond
/// JavaScript would truncate differently).
pub(crate) fn iso_time(ms: f64) -> Option<String> {
    if !ms.is_finite() || ms.fract() != 0.0 {
        return None;
    }
    let ms = ms as i64;
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1_000 % 60, in_day % 1_000);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_written_as_to_iso_string_writes_them() {
        assert_eq!(iso_time(0.0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_time(1_709_251_199_999.0).unwrap(),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(iso_time(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_time(253_402_300_800_000.0), None);
        assert_eq!(iso_time(1.5), None);
    }

    #[test]
    fn dates_in_ecmascripts_form_parse_as_date_parses_them() {
        let iso = |text: &str| parse_iso(text).and_then(iso_time);
        assert_eq!(
            iso("2024-10-27T01:00:00Z").unwrap(),
            "2024-10-27T01:00:00.000Z"
        );
        assert_eq!(
            iso("2024-10-27T00:59:59.999Z").unwrap(),
            "2024-10-27T00:59:59.999Z"
        );
        assert_eq!(
            iso("2024-10-27T03:00:00.5+02:00").unwrap(),
            "2024-10-27T01:00:00.500Z"
        );
        assert_eq!(
            iso("2024-10-27T01:00-00:30").unwrap(),
            "2024-10-27T01:30:00.000Z"
        );
        assert_eq!(iso("2024-02-29").unwrap(), "2024-02-29T00:00:00.000Z");
        assert_eq!(iso("2024").unwrap(), "2024-01-01T00:00:00.000Z");
        assert_eq!(
            iso("2024-12-31T24:00:00Z").unwrap(),
            "2025-01-01T00:00:00.000Z"
        );
        for refused in [
            "2023-02-29",
            "2024-13-01",
            "2024-10-27T25:00Z",
            "2024-10-27 01:00",
            "yesterday",
            "2024-10-27T01:00:00.Z",
            "",
        ] {
            assert_eq!(parse_iso(refused), None, "{refused}");
        }
    }

    #[test]
    fn the_reduced_event_keeps_what_posthog_hands_webhooks() {
        let event = |value| match value {
            Value::Object(map) => Event(map),
            _ => unreachable!(),
        };
        let full = event(json!({
            "distinct_id": "d", "event": "e", "ip": "1.2.3.4", "uuid": "u", "team_id": 2,
            "now": "2024-01-01T00:00:00.000Z", "sent_at": 0, "properties": {"a": 1}
        }));
        assert_eq!(
            Value::Object(full.reduced().0),
            json!({"uuid": "u", "event": "e", "team_id": 2, "distinct_id": "d",
                   "properties": {"a": 1}, "timestamp": "2024-01-01T00:00:00.000Z"})
        );
        let bare = event(json!({"event": "e", "properties": null, "sent_at": 86_400_000}));
        assert_eq!(
            Value::Object(bare.reduced().0),
            json!({"event": "e", "properties": {}, "timestamp": "1970-01-02T00:00:00.000Z"})
        );
    }
}
