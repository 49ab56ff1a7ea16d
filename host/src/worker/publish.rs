//! Events into `SANDPIPE_EVENTS`: one JSON object per message on
//! `sandpipe.events.<team>`, its `uuid` as the `Nats-Msg-Id` when it has one
//! (JetStream then drops a copy published again inside the duplicate
//! window). Shared by `sandpipe publish` and `serve`'s `?async=true`; each
//! published event's id is the one a worker puts on its result.

use super::NatsError;
use super::stream::{self, EVENTS, MSG_ID};
use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use serde_json::Value;

/// Publish acks awaited at once: enough to keep the connection busy.
const WINDOW: usize = 256;

use super::MAX_ID_LEN;

/// What a publish did: every event's id, in order, and the ids of those
/// JetStream dropped as duplicates (their first copy is the one that runs).
#[derive(Debug, Default)]
pub struct Published {
    pub ids: Vec<String>,
    pub duplicates: Vec<String>,
}

/// A connection to JetStream that publishes events.
pub struct Publisher {
    jetstream: jetstream::Context,
    /// The largest event the server carries ([`super::largest_payload`]).
    largest: usize,
}

/// One event ready to publish: its JSON text and its id, if it has one.
pub struct Outgoing {
    payload: Bytes,
    id: Option<String>,
}

impl Outgoing {
    /// `event` written as the host writes JSON (JavaScript's numbers).
    pub fn event(event: &Value) -> Outgoing {
        let payload = sandpipe_runtime::json::to_vec(event).expect("a Value serializes");
        Outgoing {
            id: message_id(event).map(str::to_string),
            payload: payload.into(),
        }
    }

    /// One NDJSON line, sent as written; or why it is not an event (not
    /// JSON, not an object, or an item `serve` refuses), as `serve` says it.
    pub fn line(line: &str) -> Result<Outgoing, String> {
        let event: Value = serde_json::from_str(line)
            .map_err(|error| format!("not JSON: {}", sandpipe_runtime::json::explained(&error)))?;
        if let Some(reason) = crate::event_rule::refusal_of_one(&event) {
            return Err(reason.to_string());
        }
        Ok(Outgoing {
            id: message_id(&event).map(str::to_string),
            payload: Bytes::copy_from_slice(line.trim().as_bytes()),
        })
    }
}

/// The event's `uuid` when it can be a header value: a string of at most
/// 200 visible ASCII characters. Other events are told apart by their
/// place in the stream.
fn message_id(event: &Value) -> Option<&str> {
    let uuid = event.get("uuid")?.as_str()?;
    (!uuid.is_empty() && uuid.len() <= MAX_ID_LEN && uuid.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(uuid)
}

/// The id of a message in `SANDPIPE_EVENTS` without a `Nats-Msg-Id`.
pub fn sequence_id(stream: &str, sequence: u64) -> String {
    format!("{stream}:{sequence}")
}

impl Publisher {
    /// Connects and makes sure the streams exist.
    pub async fn connect(url: &str) -> Result<Publisher, NatsError> {
        let client = super::connect(url).await?;
        let largest = super::largest_payload(&client)?;
        let jetstream = jetstream::new(client);
        stream::ensure_streams(&jetstream).await?;
        Ok(Publisher { jetstream, largest })
    }

    /// Publishes `events` for `team` in order, each acknowledged by
    /// JetStream; their ids (the `uuid`, or `SANDPIPE_EVENTS:<sequence>`),
    /// and those of them JetStream dropped as copies of a message it had
    /// inside its duplicate window.
    pub async fn publish(&self, team: i64, events: Vec<Outgoing>) -> Result<Published, NatsError> {
        let subject = stream::events_subject(team);
        let failed = |error: &dyn std::fmt::Display| NatsError::Publish {
            subject: subject.clone(),
            reason: error.to_string(),
        };
        // Checked before any is sent: one the server cannot carry would
        // never be, however often it is tried.
        if let Some((index, event)) = events
            .iter()
            .enumerate()
            .find(|(_, event)| event.payload.len() > self.largest)
        {
            return Err(NatsError::TooLarge {
                index,
                bytes: event.payload.len(),
                limit: self.largest,
            });
        }
        let mut published = Published::default();
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut pending = Vec::with_capacity(WINDOW);
            for event in events.by_ref().take(WINDOW) {
                let mut headers = HeaderMap::new();
                if let Some(id) = &event.id {
                    headers.insert(MSG_ID, id.as_str());
                }
                let ack = self
                    .jetstream
                    .publish_with_headers(subject.clone(), headers, event.payload)
                    .await
                    .map_err(|e| failed(&e))?;
                pending.push((event.id, ack));
            }
            for (id, ack) in pending {
                let ack = ack.await.map_err(|e| failed(&e))?;
                let id = id.unwrap_or_else(|| sequence_id(EVENTS, ack.sequence));
                if ack.duplicate {
                    published.duplicates.push(id.clone());
                }
                published.ids.push(id);
            }
        }
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_uuid_is_the_message_id_only_when_it_fits_a_header() {
        assert_eq!(message_id(&json!({"uuid": "0190-ab"})), Some("0190-ab"));
        assert_eq!(message_id(&json!({"uuid": "a\r\nX-Other: 1"})), None);
        assert_eq!(message_id(&json!({"uuid": "a b"})), None);
        assert_eq!(message_id(&json!({"uuid": ""})), None);
        assert_eq!(message_id(&json!({"uuid": 7})), None);
        assert_eq!(message_id(&json!({"uuid": "x".repeat(201)})), None);
        assert_eq!(message_id(&json!({"event": "e"})), None);
    }

    #[test]
    fn a_line_is_sent_as_written_when_it_is_an_object() {
        let line = Outgoing::line(" {\"event\":\"e\",\"n\":1.50,\"uuid\":\"u1\"} ").unwrap();
        assert_eq!(
            &line.payload[..],
            b"{\"event\":\"e\",\"n\":1.50,\"uuid\":\"u1\"}"
        );
        assert_eq!(line.id.as_deref(), Some("u1"));
        assert_eq!(
            Outgoing::line("[1]").err().as_deref(),
            Some("not a JSON object; one event object is expected")
        );
        assert_eq!(
            Outgoing::line("{\"properties\": {}}").err().as_deref(),
            Some(
                "an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}"
            )
        );
        assert_eq!(
            Outgoing::line("{\"event\": \"e\", \"n\": 1e400}")
                .err()
                .as_deref(),
            Some(
                "not JSON: number out of range at line 1 column 25 (beyond the largest double, where JavaScript reads Infinity: sandpipe does not carry it)"
            )
        );
    }
}
