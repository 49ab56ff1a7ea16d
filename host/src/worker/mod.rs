//! `sandpipe worker`: the service's event pipeline fed from NATS JetStream
//! instead of HTTP. A worker owns no state of its own: it pulls events from
//! the stream `SANDPIPE_EVENTS` through the durable consumer `sandpipe-workers`
//! that every worker shares, runs each through its team's chain exactly as
//! `serve` does ([`crate::serve::events`]: the same registry, limits,
//! quarantine, logs, `meta.storage` and webhook rows, in the same PostgreSQL
//! and Redis), publishes the result on `SANDPIPE_RESULTS`, and only then acks.
//! Modules: [`stream`] (the streams' and consumer's names and set-up),
//! [`publish`] (events in, shared with `sandpipe publish` and `serve`'s
//! `?async=true`), [`consume`] (the pull / process / publish / ack loop).

mod consume;
mod publish;
mod stream;

pub use consume::{Worker, WorkerOptions};
pub use publish::{Outgoing, Publisher};
pub use stream::{CONSUMER, EVENTS, events_subject};

/// What went wrong talking to NATS JetStream.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("connecting to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("JetStream stream {stream}: {reason}")]
    Stream {
        stream: &'static str,
        reason: String,
    },
    #[error("JetStream consumer {}: {reason}", stream::CONSUMER)]
    Consumer { reason: String },
    #[error("publishing to {subject}: {reason}")]
    Publish { subject: String, reason: String },
    #[error("pulling from consumer {}: {reason}", stream::CONSUMER)]
    Pull { reason: String },
}
