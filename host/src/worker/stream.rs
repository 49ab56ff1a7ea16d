//! The JetStream names of the contract and their set-up: the streams
//! `SANDPIPE_EVENTS` (`sandpipe.events.<team>`), `SANDPIPE_RESULTS`
//! (`sandpipe.results.<team>`) and `SANDPIPE_DEADLETTER`
//! (`sandpipe.deadletter.<team>`), and the durable pull consumer
//! `sandpipe-workers`, each created when missing and left as it is when
//! present, so any number of workers and publishers may start at once.

use super::NatsError;
use async_nats::jetstream::{self, consumer, stream};
use std::time::Duration;

pub const EVENTS: &str = "SANDPIPE_EVENTS";
pub const RESULTS: &str = "SANDPIPE_RESULTS";
pub const DEAD_LETTERS: &str = "SANDPIPE_DEADLETTER";
/// The durable pull consumer every worker shares.
pub const CONSUMER: &str = "sandpipe-workers";

/// The header that carries a message's id (JetStream drops a repeat inside its duplicate window).
pub const MSG_ID: &str = "Nats-Msg-Id";
/// On a result or dead letter: the input's id.
pub const EVENT_ID: &str = "Sandpipe-Event-Id";
/// On a dead letter: why the input was refused.
pub const ERROR: &str = "Sandpipe-Error";

/// How long JetStream remembers a message id to drop a repeat of it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

pub fn events_subject(team: impl std::fmt::Display) -> String {
    format!("sandpipe.events.{team}")
}

pub fn results_subject(team: impl std::fmt::Display) -> String {
    format!("sandpipe.results.{team}")
}

pub fn dead_letter_subject(team: impl std::fmt::Display) -> String {
    format!("sandpipe.deadletter.{team}")
}

/// The team token of an events subject (`sandpipe.events.<team>`), as sent.
pub fn team_token(subject: &str) -> &str {
    subject.strip_prefix("sandpipe.events.").unwrap_or(subject)
}

/// The three streams, created when missing; the events stream.
pub async fn ensure_streams(jetstream: &jetstream::Context) -> Result<stream::Stream, NatsError> {
    let events = ensure(
        jetstream,
        EVENTS,
        "sandpipe.events.*",
        // An event is removed once a worker acked it.
        stream::RetentionPolicy::WorkQueue,
    )
    .await?;
    ensure(
        jetstream,
        RESULTS,
        "sandpipe.results.*",
        stream::RetentionPolicy::Limits,
    )
    .await?;
    ensure(
        jetstream,
        DEAD_LETTERS,
        "sandpipe.deadletter.*",
        stream::RetentionPolicy::Limits,
    )
    .await?;
    Ok(events)
}

async fn ensure(
    jetstream: &jetstream::Context,
    name: &'static str,
    subjects: &str,
    retention: stream::RetentionPolicy,
) -> Result<stream::Stream, NatsError> {
    jetstream
        .get_or_create_stream(stream::Config {
            name: name.into(),
            subjects: vec![subjects.into()],
            retention,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|error| NatsError::Stream {
            stream: name,
            reason: error.to_string(),
        })
}

/// The shared durable consumer, created when missing with explicit acks and
/// `ack_wait` (a consumer that exists keeps the settings it was made with).
pub async fn ensure_consumer(
    events: &stream::Stream,
    ack_wait: Duration,
) -> Result<consumer::PullConsumer, NatsError> {
    events
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| NatsError::Consumer {
            reason: error.to_string(),
        })
}
