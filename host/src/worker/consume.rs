//! The pull / process / publish / ack loop. Each of `--concurrency` loops
//! pulls a batch of up to `--batch` messages from `sandpipe-workers`, sorts
//! out the bad ones (not JSON, not an event, over the size cap, a team
//! without a chain), runs each team's events through
//! [`events::process`] — the `serve` pipeline, which stores logs, quarantine
//! changes, `meta.storage` writes and webhook rows before it returns — then
//! publishes every result and dead letter, waits for JetStream's publish
//! acks, and only then acks (or, for a bad message, terminates) the inputs.
//! A batch that takes long keeps its messages with progress acks; one whose
//! work failed for a passing reason (a lost database or cache) is nak'd and
//! comes back. On SIGTERM a loop stops pulling and finishes its batch.

use super::NatsError;
use super::publish::sequence_id;
use super::stream::{self, ERROR, EVENT_ID, MSG_ID};
use crate::serve::events::{self, EventsError};
use crate::serve::state::AppState;
use crate::serve::store::LogLine;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// The shortest `ack_wait` a worker keeps to: the flag's minimum, and the
/// existing consumer's (its progress acks go every half of it).
pub const MIN_ACK_WAIT: Duration = Duration::from_secs(1);

/// Longest a pull waits for its batch to fill (and so a lone event's wait).
const PULL_WAIT: Duration = Duration::from_millis(200);
/// How long a batch whose work failed for a passing reason waits before it comes back.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// How a worker pulls and what it accepts.
pub struct WorkerOptions {
    /// Messages pulled at once by one loop.
    pub batch: usize,
    /// Loops pulling and processing at once.
    pub concurrency: usize,
    /// The consumer's `ack_wait`, when this worker creates it (one that
    /// exists keeps its own, which the worker then keeps to).
    pub ack_wait: Duration,
    /// Largest event, in bytes; a larger one is a dead letter (`None`: the
    /// largest the server carries, [`super::largest_payload`]).
    pub max_event_bytes: Option<usize>,
}

/// A worker: the service's state and a connection to the shared consumer.
pub struct Worker {
    state: AppState,
    jetstream: jetstream::Context,
    consumer: PullConsumer,
    options: WorkerOptions,
    /// The largest result the server carries ([`super::largest_payload`]).
    largest: usize,
    /// Largest event, in bytes: the option, or `largest`.
    max_event_bytes: usize,
}

/// Why a message for `team` is a dead letter when no chain runs it: the
/// team may have none, or not exist at all (a subject any publisher chose).
fn no_chain(team: i64) -> String {
    format!(
        "team {team} has no chain, or there is no team {team}: PUT /v1/teams/{team}/chain, to a team that exists"
    )
}

/// What becomes of one input message.
enum Fate {
    /// Its result (the event after the chain, or null) goes to `SANDPIPE_RESULTS`.
    Result { team: i64, body: Vec<u8> },
    /// A copy goes to `SANDPIPE_DEADLETTER` and the input is terminated.
    DeadLetter { team: String, reason: String },
    /// Its batch failed for a passing reason: nak'd, to come back.
    Retry,
}

/// One pulled message and what is known of it.
struct Input {
    message: jetstream::Message,
    /// `Nats-Msg-Id`, or `SANDPIPE_EVENTS:<sequence>`.
    id: String,
    fate: Fate,
}

impl Worker {
    /// Connects, makes sure the streams and the consumer exist.
    pub async fn connect(
        url: &str,
        state: AppState,
        options: WorkerOptions,
    ) -> Result<Worker, NatsError> {
        let client = super::connect(url).await?;
        let largest = super::largest_payload(&client)?;
        // An event the limit lets in must fit a dead letter's message.
        let max_event_bytes = options.max_event_bytes.unwrap_or(largest);
        if max_event_bytes > largest {
            return Err(NatsError::Config(format!(
                "--max-event-bytes {max_event_bytes} is over the {largest} bytes a message of this NATS server may carry (max_payload {}, less {} for headers)",
                client.server_info().max_payload,
                super::HEADROOM
            )));
        }
        let jetstream = jetstream::new(client);
        let events = stream::ensure_streams(&jetstream).await?;
        let consumer = stream::ensure_consumer(&events, options.ack_wait).await?;
        // A consumer that existed keeps its own ack_wait, and the progress
        // acks must beat that one, not the flag's.
        let ack_wait = consumer.cached_info().config.ack_wait;
        if ack_wait < MIN_ACK_WAIT {
            return Err(NatsError::Config(format!(
                "the consumer {} exists with ack_wait {}, under the minimum of {}: delete it, and a worker makes it again with --ack-wait",
                stream::CONSUMER,
                humantime::format_duration(ack_wait),
                humantime::format_duration(MIN_ACK_WAIT),
            )));
        }
        if ack_wait != options.ack_wait {
            tracing::warn!(
                "--ack-wait {} not applied: the consumer {} exists with ack_wait {} (delete it to change that); this worker keeps to it",
                humantime::format_duration(options.ack_wait),
                stream::CONSUMER,
                humantime::format_duration(ack_wait),
            );
        }
        let options = WorkerOptions {
            ack_wait,
            ..options
        };
        Ok(Worker {
            state,
            jetstream,
            consumer,
            options,
            largest,
            max_event_bytes,
        })
    }

    /// Runs the loops until `stop` turns true, then lets each finish its batch.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let loops: Vec<_> = (0..worker.options.concurrency.max(1))
            .map(|_| tokio::spawn(worker.clone().pull_loop(stop.clone())))
            .collect();
        for handle in loops {
            if let Err(error) = handle.await {
                tracing::error!(%error, "a worker loop failed");
            }
        }
        // The acks are sent before the process exits.
        if let Err(error) = worker.jetstream.client().flush().await {
            tracing::warn!(%error, "flushing the last acks");
        }
    }

    async fn pull_loop(self: Arc<Self>, stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.pull().await {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => self.handle(messages).await,
                Err(error) => {
                    tracing::warn!(%error, "pull failed; trying again");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// Up to `--batch` messages, waiting at most [`PULL_WAIT`] for them.
    async fn pull(&self) -> Result<Vec<jetstream::Message>, NatsError> {
        let pull_failed = |error: &dyn std::fmt::Display| NatsError::Pull {
            reason: error.to_string(),
        };
        let mut batch = self
            .consumer
            .batch()
            .max_messages(self.options.batch)
            .expires(PULL_WAIT)
            .messages()
            .await
            .map_err(|e| pull_failed(&e))?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => messages.push(message),
                // What arrived is processed; the rest comes with the next pull.
                Err(error) if messages.is_empty() => return Err(pull_failed(&error)),
                Err(_) => break,
            }
        }
        Ok(messages)
    }

    /// One pulled batch, from classification to acks.
    #[tracing::instrument(name = "batch", skip_all, fields(messages = messages.len()))]
    async fn handle(&self, messages: Vec<jetstream::Message>) {
        let started = Instant::now();
        tracing::debug!("batch pulled");
        let mut inputs: Vec<Input> = Vec::with_capacity(messages.len());
        let mut events: BTreeMap<i64, Vec<(usize, Value)>> = BTreeMap::new();
        let mut redelivered = 0;
        for message in messages {
            let (id, delivered) = identify(&message);
            if delivered > 1 {
                redelivered += 1;
            }
            let index = inputs.len();
            let fate = match self.classify(&message) {
                Ok((team, event)) => {
                    events.entry(team).or_default().push((index, event));
                    // Until its team's batch has run: what is not decided then comes back.
                    Fate::Retry
                }
                Err(fate) => fate,
            };
            inputs.push(Input { message, id, fate });
        }
        if redelivered > 0 {
            self.state
                .metrics
                .worker_redelivered
                .inc_by(redelivered as u64);
            tracing::info!(redelivered, "batch holds redelivered messages");
        }
        let work = self.process(events);
        tokio::pin!(work);
        // Longer than half of ack_wait: tell JetStream the batch is still being worked on.
        let mut progress = tokio::time::interval_at(
            tokio::time::Instant::now() + self.options.ack_wait / 2,
            self.options.ack_wait / 2,
        );
        let processed = loop {
            tokio::select! {
                processed = &mut work => break processed,
                _ = progress.tick() => {
                    for input in &inputs {
                        let _ = input.message.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        for (index, fate) in processed {
            inputs[index].fate = fate;
        }
        self.store_refusals(&inputs).await;
        self.publish_and_ack(inputs).await;
        tracing::debug!(micros = crate::serve::trace::micros(started), "batch done");
    }

    /// The team and event of a message a chain can run, or what becomes of it.
    fn classify(&self, message: &jetstream::Message) -> Result<(i64, Value), Fate> {
        let token = stream::team_token(message.subject.as_str());
        let refuse = |reason: String| Fate::DeadLetter {
            team: token.to_string(),
            reason,
        };
        let limit = self.max_event_bytes;
        if message.payload.len() > limit {
            return Err(refuse(format!(
                "the event is {} bytes, over the limit of {limit} (--max-event-bytes)",
                message.payload.len()
            )));
        }
        let Ok(team) = token.parse::<i64>() else {
            return Err(refuse(format!(
                "subject {} does not name a team by its number",
                message.subject
            )));
        };
        let event: Value = serde_json::from_slice(&message.payload).map_err(|error| {
            refuse(format!(
                "not JSON: {}",
                sandpipe_runtime::json::explained(&error)
            ))
        })?;
        if let Some(reason) = crate::event_rule::refusal_of_one(&event) {
            return Err(refuse(reason.to_owned()));
        }
        if self.state.teams.get(team).is_none() {
            return Err(refuse(no_chain(team)));
        }
        Ok((team, event))
    }

    /// Runs each team's events through its chain, the teams at once; each
    /// input's fate by its index.
    async fn process(&self, teams: BTreeMap<i64, Vec<(usize, Value)>>) -> Vec<(usize, Fate)> {
        let largest = self.largest;
        let runs = teams.into_iter().map(|(team, inputs)| {
            let state = self.state.clone();
            async move {
                let (indices, events): (Vec<usize>, Vec<Value>) = inputs.into_iter().unzip();
                let count = events.len();
                let batch = events.into_iter().map(Ok).collect();
                match events::process(state, team, batch, count, events::Origin::Client).await {
                    Ok(batch) => indices
                        .into_iter()
                        .zip(batch.results)
                        .map(|(index, body)| {
                            let body = String::from(Box::<str>::from(body)).into_bytes();
                            // A result the server cannot carry would come back
                            // for ever: its input is a dead letter instead.
                            let fate = if body.len() > largest {
                                Fate::DeadLetter {
                                    team: team.to_string(),
                                    reason: format!(
                                        "its result is {} bytes, over the {largest} bytes a message of the NATS server may carry",
                                        body.len()
                                    ),
                                }
                            } else {
                                Fate::Result { team, body }
                            };
                            (index, fate)
                        })
                        .collect(),
                    // The chain was removed since the message was classified.
                    Err(EventsError::NoChain { .. }) => {
                        let reason = no_chain(team);
                        indices
                            .into_iter()
                            .map(|index| {
                                let fate = Fate::DeadLetter {
                                    team: team.to_string(),
                                    reason: reason.clone(),
                                };
                                (index, fate)
                            })
                            .collect()
                    }
                    Err(error) => {
                        tracing::warn!(team, %error, "batch not processed; its messages come back");
                        indices
                            .into_iter()
                            .map(|index| (index, Fate::Retry))
                            .collect::<Vec<_>>()
                    }
                }
            }
        });
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Each refusal's log line: on stderr, and in its team's log when the team has one.
    async fn store_refusals(&self, inputs: &[Input]) {
        let mut lines: BTreeMap<i64, Vec<LogLine>> = BTreeMap::new();
        for input in inputs {
            let Fate::DeadLetter { team, reason } = &input.fate else {
                continue;
            };
            tracing::warn!(team = %team, id = %input.id, %reason, "event refused: dead letter");
            let Ok(team) = team.parse::<i64>() else {
                continue;
            };
            if self.state.teams.get(team).is_some() {
                lines.entry(team).or_default().push(LogLine {
                    connector: "sandpipe".into(),
                    connector_id: None,
                    level: sandpipe_abi::LogLevel::Warn,
                    message: format!(
                        "event {:?} refused and sent to {}: {reason}",
                        input.id,
                        stream::dead_letter_subject(team)
                    ),
                    time: SystemTime::now(),
                });
            }
        }
        if lines.is_empty() {
            return;
        }
        let store = self.state.store.clone();
        let stored = tokio::task::spawn_blocking(move || {
            for (team, lines) in lines {
                store.append_logs(team, &lines)?;
            }
            Ok::<_, crate::serve::store::StoreError>(())
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "refusals' log lines not stored"),
            Err(error) => tracing::warn!(%error, "refusals' log lines not stored"),
        }
    }

    /// Publishes every result and dead letter, then acks or terminates each
    /// input whose publish JetStream acknowledged; naks the rest.
    async fn publish_and_ack(&self, inputs: Vec<Input>) {
        let mut pending = Vec::with_capacity(inputs.len());
        for input in inputs {
            let published = match &input.fate {
                Fate::Retry => None,
                Fate::Result { team, body } => Some(
                    self.send(
                        stream::results_subject(team),
                        headers(&input.id, "result", None),
                        body.clone().into(),
                    )
                    .await,
                ),
                Fate::DeadLetter { team, reason } => {
                    // Another client may have published up to max_payload:
                    // a copy that would not fit beside its headers goes
                    // without its body (the reason says so), rather than
                    // failing, and coming back, for ever.
                    let payload = &input.message.payload;
                    let (body, reason) = if payload.len() > self.largest {
                        let left_out = format!(
                            "{reason} (its {} bytes are left out of this copy: over the {} a message may carry beside its headers)",
                            payload.len(),
                            self.largest
                        );
                        (Bytes::new(), left_out)
                    } else {
                        (payload.clone(), reason.clone())
                    };
                    Some(
                        self.send(
                            stream::dead_letter_subject(team),
                            headers(&input.id, "deadletter", Some(&reason)),
                            body,
                        )
                        .await,
                    )
                }
            };
            pending.push((input, published));
        }
        let metrics = &self.state.metrics.worker_messages;
        for (input, published) in pending {
            let acked = match published {
                None => Ok(()),
                Some(Err(error)) => Err(error),
                Some(Ok(ack)) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            };
            let (kind, outcome) = match (&input.fate, acked) {
                (Fate::Result { .. }, Ok(())) => (AckKind::Ack, "result"),
                (Fate::DeadLetter { .. }, Ok(())) => (AckKind::Term, "dead_letter"),
                (Fate::Retry, _) => (AckKind::Nak(Some(RETRY_DELAY)), "retry"),
                (_, Err(error)) => {
                    tracing::warn!(id = %input.id, %error, "not published; the message comes back");
                    (AckKind::Nak(Some(RETRY_DELAY)), "retry")
                }
            };
            metrics.with_label_values(&[outcome]).inc();
            if let Err(error) = input.message.ack_with(kind).await {
                tracing::warn!(id = %input.id, %error, "ack not sent; the message comes back");
            }
        }
    }

    async fn send(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<jetstream::context::PublishAckFuture, String> {
        self.jetstream
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|error| error.to_string())
    }
}

/// A message's id (its `Nats-Msg-Id`, or `SANDPIPE_EVENTS:<sequence>`) and
/// how many times it has been delivered.
fn identify(message: &jetstream::Message) -> (String, i64) {
    let info = message.info().ok();
    // An id the publisher chose is at most 200 characters (`sandpipe
    // publish` takes no longer uuid); a longer one is not copied into the
    // result's headers, whose room is bounded.
    let given = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(MSG_ID))
        .map(|value| value.as_str().to_string())
        .filter(|id| !id.is_empty() && id.len() <= super::MAX_ID_LEN);
    let id = given.unwrap_or_else(|| match &info {
        Some(info) => sequence_id(info.stream, info.stream_sequence),
        None => sequence_id(stream::EVENTS, 0),
    });
    (id, info.map_or(1, |info| info.delivered))
}

/// The headers of a result or dead letter of input `id`: its id, and its own
/// (`<prefix>:<id>`, so a second copy inside the duplicate window is dropped).
fn headers(id: &str, prefix: &str, error: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(EVENT_ID, id);
    headers.insert(MSG_ID, format!("{prefix}:{id}").as_str());
    if let Some(error) = error {
        headers.insert(ERROR, one_line(error).as_str());
    }
    headers
}

/// A header value: one line, of at most [`MAX_REASON`] bytes (a message
/// keeps [`super::HEADROOM`] for its headers).
fn one_line(text: &str) -> String {
    let mut line = text.replace(['\r', '\n'], " ");
    if line.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// Longest dead-letter reason in a header, in bytes.
const MAX_REASON: usize = 1024;
