//! `exportEvents` in batches, as PostHog's export upgrade buffered them: a
//! connector's buffer settings (read from its config), the rule that cuts a
//! run of events into batches, and the buffer `sandpipe run` keeps in memory
//! ([`Chain::export`](crate::Chain::export)). The service keeps its buffers in
//! its delivery queue instead and cuts them with the same rule.
//!
//! PostHog read three config values, when the connector declares them:
//! `exportEventsBufferBytes` (default 900 KiB, between 1 byte and 100 MiB),
//! `exportEventsBufferSeconds` (default 10, between 1 and 600) and
//! `exportEventsToIgnore` (event names, comma-separated). An event's size is
//! the length of its JSON text plus one (the comma that joins it to the
//! others in the batch's array), and a batch is also held to the connector's
//! input limit, so a batch of more than one event always fits it.

use serde_json::{Map, Value};
use std::ops::Range;
use std::time::{Duration, Instant};

/// `exportEventsBufferBytes` when the config gives none (PostHog's).
pub const DEFAULT_BUFFER_BYTES: usize = 900 * 1024;
const MAX_BUFFER_BYTES: usize = 100 * 1024 * 1024;
/// `exportEventsBufferSeconds` when the config gives none (PostHog's).
pub const DEFAULT_BUFFER_SECONDS: u64 = 10;
const MAX_BUFFER_SECONDS: u64 = 600;

/// How a connector's `exportEvents` batches are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// A batch goes once its events' sizes add up to more than this.
    pub bytes: usize,
    /// A batch goes once its first event has waited this long.
    pub wait: Duration,
    /// Event names never exported (`exportEventsToIgnore`), trimmed.
    ignored: Vec<String>,
}

impl Default for ExportSettings {
    fn default() -> ExportSettings {
        ExportSettings {
            bytes: DEFAULT_BUFFER_BYTES,
            wait: Duration::from_secs(DEFAULT_BUFFER_SECONDS),
            ignored: Vec::new(),
        }
    }
}

impl ExportSettings {
    /// The settings `config` (a connector's `meta.config`) gives, read as
    /// PostHog read them: each number with JavaScript's `parseInt`, the
    /// default when that is not a number, then held to its range.
    pub fn from_config(config: &Map<String, Value>) -> ExportSettings {
        let number = |key: &str| config.get(key).and_then(parse_int);
        let bytes = number("exportEventsBufferBytes")
            .unwrap_or(DEFAULT_BUFFER_BYTES as i64)
            .clamp(1, MAX_BUFFER_BYTES as i64) as usize;
        let seconds = number("exportEventsBufferSeconds")
            .unwrap_or(DEFAULT_BUFFER_SECONDS as i64)
            .clamp(1, MAX_BUFFER_SECONDS as i64) as u64;
        let ignored = match config.get("exportEventsToIgnore") {
            Some(value) if truthy(value) => text_of(value)
                .split(',')
                .map(|name| name.trim().to_string())
                .collect(),
            _ => Vec::new(),
        };
        ExportSettings {
            bytes,
            wait: Duration::from_secs(seconds),
            ignored,
        }
    }

    /// These settings with batches held to fit an input of `max_input` bytes.
    pub fn within(mut self, max_input: usize) -> ExportSettings {
        self.bytes = self.bytes.min(max_input.saturating_sub(1)).max(1);
        self
    }

    /// Whether an event named `name` (its `event`) is never exported.
    pub fn ignores(&self, name: Option<&str>) -> bool {
        name.is_some_and(|name| self.ignored.iter().any(|ignored| ignored == name))
    }

    /// Whether an event (its JSON text) is never exported.
    pub fn ignores_event(&self, event: &[u8]) -> bool {
        if self.ignored.is_empty() {
            return false;
        }
        #[derive(serde::Deserialize)]
        struct Named<'a> {
            #[serde(borrow, default)]
            event: Option<std::borrow::Cow<'a, str>>,
        }
        match serde_json::from_slice::<Named<'_>>(event) {
            Ok(named) => self.ignores(named.event.as_deref()),
            // An event whose `event` is not a string has no name to ignore.
            Err(_) => false,
        }
    }
}

/// An event's size in a batch: its JSON text and the comma that joins it.
pub fn size_of(event: &[u8]) -> usize {
    event.len() + 1
}

/// Cuts events of `sizes` (in order) into batches as PostHog's buffer did:
/// an event that would take a non-empty batch over `limit` starts a new one,
/// and a batch that an event took over `limit` (one larger than `limit` on
/// its own) goes at once.
pub fn batches(sizes: impl IntoIterator<Item = usize>, limit: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut end, mut points) = (0, 0, 0usize);
    for size in sizes {
        if end > start && points.saturating_add(size) > limit {
            out.push(start..end);
            (start, points) = (end, 0);
        }
        end += 1;
        points = points.saturating_add(size);
        if points > limit {
            out.push(start..end);
            (start, points) = (end, 0);
        }
    }
    // What is left goes as the last batch (its time has come, or it is all there is).
    if end > start {
        out.push(start..end);
    }
    out
}

/// The events `sandpipe run` holds for one connector's `exportEvents`.
#[derive(Debug, Default)]
pub(crate) struct ExportBuffer {
    events: Vec<Vec<u8>>,
    bytes: usize,
    /// When the first of `events` came.
    since: Option<Instant>,
}

impl ExportBuffer {
    /// Adds `event`; returns the batches it made ready (at most two: the
    /// events before it, when it would take them over the limit, and itself
    /// when it is over the limit alone), as PostHog's `add` flushed.
    pub(crate) fn add(&mut self, event: Vec<u8>, settings: &ExportSettings) -> Vec<Vec<Vec<u8>>> {
        let mut ready = Vec::new();
        let size = size_of(&event);
        if self.bytes > 0 && self.bytes.saturating_add(size) > settings.bytes {
            ready.extend(self.take());
        }
        self.bytes = self.bytes.saturating_add(size);
        self.events.push(event);
        self.since.get_or_insert_with(Instant::now);
        if self.bytes > settings.bytes {
            ready.extend(self.take());
        }
        ready
    }

    /// Whether the first event held has waited as long as `settings` allow.
    pub(crate) fn is_due(&self, settings: &ExportSettings) -> bool {
        self.since
            .is_some_and(|since| since.elapsed() >= settings.wait)
    }

    /// Everything held, as one batch (`None` when empty).
    pub(crate) fn take(&mut self) -> Option<Vec<Vec<u8>>> {
        self.bytes = 0;
        self.since = None;
        (!self.events.is_empty()).then(|| std::mem::take(&mut self.events))
    }
}

/// A config value's truth as JavaScript's `if` would see it.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A config value as `String(value)` would write it (for the values a
/// config holds: strings, numbers and booleans).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => crate::json::to_string(other).unwrap_or_default(),
    }
}

/// JavaScript's `parseInt(String(value))`: leading white space, a sign, and
/// the decimal digits that follow (hexadecimal ones after `0x`); `None`
/// (NaN) when there are none.
fn parse_int(value: &Value) -> Option<i64> {
    let text = text_of(value);
    let text = text.trim_start();
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = match text.get(..2) {
        Some("0x" | "0X") => (16, &text[2..]),
        _ => (10, text),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    // Held to a range later: a number too long for an i64 is as good as its most.
    let magnitude = i64::from_str_radix(&digits[..end], radix).unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(config: Value) -> ExportSettings {
        ExportSettings::from_config(config.as_object().unwrap())
    }

    #[test]
    fn settings_are_read_as_posthog_read_them() {
        assert_eq!(settings(json!({})), ExportSettings::default());
        let read = settings(json!({
            "exportEventsBufferBytes": " 2048 bytes",
            "exportEventsBufferSeconds": 3,
            "exportEventsToIgnore": "$pageleave, skipped ,",
        }));
        assert_eq!(read.bytes, 2048);
        assert_eq!(read.wait, Duration::from_secs(3));
        assert!(read.ignores(Some("$pageleave")) && read.ignores(Some("skipped")));
        assert!(
            read.ignores(Some("")),
            "a trailing comma names the empty event"
        );
        assert!(!read.ignores(Some("pageview")) && !read.ignores(None));
        // Out of range, or not a number: held to the range, or the default.
        let held = settings(json!({
            "exportEventsBufferBytes": "0",
            "exportEventsBufferSeconds": "9999",
        }));
        assert_eq!((held.bytes, held.wait.as_secs()), (1, 600));
        let default = settings(json!({
            "exportEventsBufferBytes": "lots",
            "exportEventsBufferSeconds": "",
            "exportEventsToIgnore": "",
        }));
        assert_eq!(default, ExportSettings::default());
        assert_eq!(
            settings(json!({"exportEventsBufferBytes": "1e9"})).bytes,
            1,
            "parseInt stops at the e"
        );
        assert_eq!(
            settings(json!({"exportEventsBufferBytes": "0x10"})).bytes,
            16
        );
        assert_eq!(
            settings(json!({"exportEventsBufferBytes": "0x"})).bytes,
            DEFAULT_BUFFER_BYTES
        );
        assert_eq!(settings(json!({"exportEventsBufferBytes": 2.5})).bytes, 2);
        assert_eq!(
            settings(json!({"exportEventsBufferBytes": "999999999999999999999999"})).bytes,
            MAX_BUFFER_BYTES
        );
    }

    #[test]
    fn a_batch_fits_the_input_limit() {
        let read = settings(json!({"exportEventsBufferBytes": 5000})).within(1000);
        assert_eq!(read.bytes, 999);
        let sizes = [400, 400, 199, 1];
        let cut = batches(sizes, read.bytes);
        assert_eq!(cut, [0..3, 3..4]);
        // The array of the first batch: its events, a comma between each, brackets.
        assert_eq!(sizes[..3].iter().sum::<usize>() + 1, 1000);
        assert_eq!(
            settings(json!({})).within(1 << 20).bytes,
            DEFAULT_BUFFER_BYTES
        );
    }

    #[test]
    fn an_event_is_ignored_by_its_name() {
        let read = settings(json!({"exportEventsToIgnore": "skipped"}));
        assert!(read.ignores_event(br#"{"event":"skipped","properties":{}}"#));
        assert!(read.ignores_event(br#"{"properties":{"event":"x"},"event":"sk\u0069pped"}"#));
        assert!(!read.ignores_event(br#"{"event":"kept"}"#));
        assert!(!read.ignores_event(br#"{"event":7}"#));
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one batch of events, not a range of numbers
    fn batches_are_cut_as_posthogs_buffer_flushed() {
        // Under the limit: one batch; an event that would pass it starts the next.
        assert_eq!(batches([4, 4, 4, 4], 10), [0..2, 2..4]);
        // Exactly at the limit does not flush; passing it does.
        assert_eq!(batches([5, 5], 10), [0..2]);
        assert_eq!(batches([5, 5, 1], 10), [0..2, 2..3]);
        assert_eq!(batches([5, 6], 10), [0..1, 1..2]);
        // An event larger than the limit goes alone.
        assert_eq!(batches([3, 20, 3], 10), [0..1, 1..2, 2..3]);
        assert_eq!(batches([20], 10), [0..1]);
        // A limit of one byte: every event alone.
        assert_eq!(batches([7, 7, 7], 1), [0..1, 1..2, 2..3]);
        assert_eq!(batches([], 10), Vec::<Range<usize>>::new());
    }

    #[test]
    fn run_buffer_flushes_as_the_rule_cuts() {
        let limit = settings(json!({"exportEventsBufferBytes": 10}));
        let mut buffer = ExportBuffer::default();
        let mut made = Vec::new();
        // Sizes of 4, 4, 4, 20 and 3 with their commas.
        for size in [3, 3, 3, 19, 2] {
            for batch in buffer.add(vec![b'x'; size], &limit) {
                made.push(batch.iter().map(Vec::len).collect::<Vec<_>>());
            }
        }
        made.extend(buffer.take().map(|b| b.iter().map(Vec::len).collect()));
        assert_eq!(made, [vec![3, 3], vec![3], vec![19], vec![2]]);
        assert_eq!(
            batches([4, 4, 4, 20, 3], 10),
            [0..2, 2..3, 3..4, 4..5],
            "the service's cut of the same events"
        );
        assert!(buffer.take().is_none());
    }
}
