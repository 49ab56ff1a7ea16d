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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use consume::{MIN_ACK_WAIT, Worker, WorkerOptions};
pub use publish::{Outgoing, Publisher};
pub use stream::{CONSUMER, EVENTS, events_subject};

/// Bytes of a message's `max_payload` kept for its headers (ids, and a dead
/// letter's reason): an event or result is at most `max_payload` less this.
pub const HEADROOM: usize = 4096;

/// Longest message id (`Nats-Msg-Id`) a worker copies into its output.
pub const MAX_ID_LEN: usize = 200;

/// The most bytes an event or a result may have on `client`'s server; a
/// server whose `max_payload` leaves less than the headers' room again is
/// refused.
pub fn largest_payload(client: &async_nats::Client) -> Result<usize, NatsError> {
    let max_payload = client.server_info().max_payload;
    if max_payload < 2 * HEADROOM {
        return Err(NatsError::Config(format!(
            "the NATS server's max_payload is {max_payload} bytes: at least {} are needed, {HEADROOM} of them for headers",
            2 * HEADROOM
        )));
    }
    Ok(max_payload - HEADROOM)
}

/// Connects to the NATS server at `url`, its connection's events logged by
/// [`note`].
pub async fn connect(url: &str) -> Result<async_nats::Client, NatsError> {
    let shown = crate::serve::shown_url(url);
    let lost = Arc::new(AtomicBool::new(false));
    let logged = shown.clone();
    async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            note(&lost, &logged, event);
            std::future::ready(())
        })
        .connect(url)
        .await
        .map_err(|error| NatsError::Connect {
            url: shown,
            reason: error.to_string(),
        })
}

/// Logs a NATS connection's event. Its loss and its return are said once
/// each; the errors of the reconnection attempts between them (one every few
/// seconds while the server is away: async_nats's own lines, capped in
/// `serve::trace`) and a slow consumer's (one a dropped message) only at debug.
fn note(lost: &AtomicBool, url: &str, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Disconnected => {
            if !lost.swap(true, Ordering::Relaxed) {
                tracing::warn!(nats = url, "lost the NATS connection; reconnecting");
            }
        }
        Event::Connected => {
            if lost.swap(false, Ordering::Relaxed) {
                tracing::info!(nats = url, "NATS connection back");
            }
        }
        Event::ClientError(_) | Event::ServerError(_) if lost.load(Ordering::Relaxed) => {
            tracing::debug!(nats = url, %event, "reconnecting to NATS");
        }
        // One a message a subscription dropped: the pulls' own errors say more.
        Event::SlowConsumer(_) => tracing::debug!(nats = url, %event, "NATS connection event"),
        event => tracing::warn!(nats = url, %event, "NATS connection event"),
    }
}

/// What went wrong talking to NATS JetStream.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// `url` as messages show it (no password).
    #[error("--nats {url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream stream {stream}: {reason}")]
    Stream {
        stream: &'static str,
        reason: String,
    },
    #[error("JetStream consumer {}: {reason}", stream::CONSUMER)]
    Consumer { reason: String },
    #[error("publishing to {subject}: {reason}")]
    Publish { subject: String, reason: String },
    /// An event NATS cannot carry: never retried.
    #[error(
        "event {index} is {bytes} bytes, over the {limit} bytes a message of the NATS server may carry (max_payload, less {HEADROOM} for headers)"
    )]
    TooLarge {
        index: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("pulling from consumer {}: {reason}", stream::CONSUMER)]
    Pull { reason: String },
    /// A setting that cannot work with this server.
    #[error("{0}")]
    Config(String),
}
