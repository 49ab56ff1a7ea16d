//! Durable webhook delivery. Composed requests, the `onEvent` calls of kept
//! events and the events for `exportEvents`, are stored (pending) before the
//! events response returns; this worker sends the requests with a 10 s
//! timeout (PostHog's; a hidden flag changes it for tests) and makes the
//! `onEvent` calls and `exportEvents` batches through an [`OnEventRunner`]
//! (a throw or a trap fails the attempt, of the whole batch for
//! `exportEvents`; only a `RetryError` has the call made again, as in PostHog). An `exportEvents` row
//! waits in its connector's buffer until it is due (the store says when);
//! the due rows of one connector are cut into batches as PostHog's buffer
//! cut them (`sandpipe_runtime::export::batches`) and sent one after the
//! other, a call each; a failed batch is retried as the same batch. The
//! worker retries failures with exponential backoff and jitter, and marks a
//! request `dead` after the last attempt. Destinations that resolve to private,
//! loopback, link-local or metadata addresses are refused unless the operator
//! allows them; at most [`PER_DESTINATION`] requests go to one host at once,
//! and at most as many `onEvent` calls of one team (each call also waits for
//! one of the team's slots, as its events do).
//! Pending requests survive a restart: they are in the database. Delivered
//! and dead rows are deleted once they are older than the retention period
//! (checked every [`PRUNE_EVERY`]).

use super::metrics::Metrics;
use super::store::{LogLine, ON_EVENT, Store, WebhookRow, now_ms};
use super::trace::Outage;
use sandpipe_abi::LogLevel;
use sandpipe_runtime::export;
use sandpipe_runtime::services::fetch::refused_address;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;

/// Requests in flight to one host, or `onEvent` calls of one team.
pub const PER_DESTINATION: usize = 4;
/// Destinations whose limits are kept while idle; past this, the idle ones
/// are forgotten (a limit in use is kept by its holders).
const DESTINATIONS_KEPT: usize = 1_024;
/// `exportEvents` rows leased at a poll, at most: enough for a batch of
/// PostHog's default 900 KiB of small events.
const EXPORT_ROWS: i64 = 5_000;
/// Timeout of one attempt (PostHog's), unless the operator's
/// [`DeliveryOptions::attempt_timeout`] says otherwise; a row is leased for
/// twice as long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often finished rows past their retention are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What a row's in-flight limit is kept by: its URL's host, or for an
/// `onEvent` row (no URL) its team, as a key no host name can spell, so one
/// team's slow exporter holds back that team's calls and not every team's.
/// (Per team, not per connector: a team's calls share its slots anyway, and
/// more of them waiting there would only spend their attempts' time.)
fn destination(row: &WebhookRow) -> String {
    if row.kind == ON_EVENT {
        return format!("onEvent {}", row.team);
    }
    reqwest::Url::parse(&row.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// The in-flight limits ([`PER_DESTINATION`] each) of the destinations in use.
#[derive(Default)]
struct Destinations(Mutex<HashMap<String, Arc<Semaphore>>>);

impl Destinations {
    /// `destination`'s limit. Once [`DESTINATIONS_KEPT`] are known, the
    /// idle ones (no attempt holds or waits on them) are forgotten.
    fn limit(&self, destination: &str) -> Arc<Semaphore> {
        let mut limits = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if limits.len() >= DESTINATIONS_KEPT && !limits.contains_key(destination) {
            limits.retain(|_, limit| Arc::strong_count(limit) > 1);
        }
        limits
            .entry(destination.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_DESTINATION)))
            .clone()
    }
}

/// Why an attempt did not deliver. The message is the row's `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    // Refused by policy: dead at once, logged for the connector.
    #[error("invalid URL: {0}")]
    InvalidUrl(url::ParseError),
    #[error("{0} URLs are not allowed")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL has no port")]
    NoPort,
    #[error("{host} resolves to {ip}, {why}; refused{hint}")]
    RefusedAddress {
        host: String,
        ip: IpAddr,
        why: &'static str,
        /// Where the operator may allow it: ` (see --allow-private-webhooks)`
        /// while that flag is off, nothing when it is on (what it still
        /// refuses, metadata addresses, no flag allows).
        hint: &'static str,
    },
    // Failed: retried with backoff.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("{0}")]
    Client(reqwest::Error),
    #[error("invalid method {0}")]
    InvalidMethod(String),
    #[error("timed out")]
    TimedOut,
    #[error("{0}")]
    Send(reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// An onEvent call or exportEvents batch that threw a `RetryError`, or
    /// failed for a passing reason (its connector not ready, the store).
    #[error("{function} failed: {error}")]
    Call {
        function: &'static str,
        error: String,
    },
    /// The call failed without asking for a retry (a throw that is not a
    /// `RetryError`, a trap, a timeout): PostHog makes such a call once, and
    /// so does the worker: dead at once.
    #[error("{function} failed: {error} (not called again: only a RetryError is)")]
    Failed {
        function: &'static str,
        error: String,
    },
    /// The connector left the team's chain (or was disabled): dead at once.
    #[error("{0}")]
    NoConnector(String),
    /// The event is over the connector's input limit, so no attempt can
    /// succeed: dead at once.
    #[error("{0}")]
    TooLarge(String),
}

/// One attempt's end, and whether its call has started: a call may only
/// start before the end (one started later could run beside the row's
/// retry), and one that started is never made again after the attempt timed
/// out (it may have done its work; it did not ask for a retry).
#[derive(Debug, Clone)]
pub struct AttemptWindow {
    expires: Instant,
    started: Arc<AtomicBool>,
}

impl AttemptWindow {
    fn new(expires: Instant) -> AttemptWindow {
        AttemptWindow {
            expires,
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the call started; `false`, and not marked, once the attempt has ended.
    pub fn start(&self) -> bool {
        if Instant::now() >= self.expires {
            return false;
        }
        self.started.store(true, Ordering::SeqCst);
        true
    }

    /// What an attempt that ran out of time comes to: a call that started
    /// failed (not made again), one that never started may be tried again.
    fn timed_out(&self, function: &'static str) -> AttemptError {
        match self.started.load(Ordering::SeqCst) {
            true => AttemptError::Failed {
                function,
                error: "the attempt timed out while the call ran".into(),
            },
            false => AttemptError::TimedOut,
        }
    }
}

/// Makes a queued `onEvent` call: the team's connector with the stable id
/// `connector_id`, on `event` (JSON text). `Err(NoConnector)` when the team's
/// chain no longer runs it; `Err(Call)` when it failed for a passing reason
/// or threw a `RetryError`, `Err(Failed)` when it failed otherwise;
/// `Err(TimedOut)`, without a call, when it could not start inside `window`.
pub trait OnEventRunner: Send + Sync + 'static {
    /// `queued_before_batches`: the row was queued before `exportEvents` had
    /// batches, when one `onEvent` row stood for `exportEvents([event])`
    /// (unless `exportEventsToIgnore` named it) and then `onEvent(event)`;
    /// it is made as it was meant.
    fn run(
        &self,
        team: i64,
        connector_id: String,
        event: String,
        of_captured: bool,
        queued_before_batches: bool,
        window: AttemptWindow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AttemptError>> + Send>>;

    /// Makes one `exportEvents` call of that connector on a batch of
    /// `events` (JSON texts), as [`OnEventRunner::run`] makes an `onEvent` call.
    fn export(
        &self,
        team: i64,
        connector_id: String,
        events: Vec<String>,
        of_captured: bool,
        window: AttemptWindow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AttemptError>> + Send>>;
}

impl AttemptError {
    /// Whether no later attempt can be made: a refusal, or a call that
    /// failed without asking for a retry.
    fn is_final(&self) -> bool {
        self.is_refusal() || matches!(self, AttemptError::Failed { .. })
    }

    /// Whether the destination is one the policy refuses: no retries.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            AttemptError::InvalidUrl(_)
                | AttemptError::Scheme(_)
                | AttemptError::NoHost
                | AttemptError::NoPort
                | AttemptError::RefusedAddress { .. }
                | AttemptError::NoConnector(_)
                | AttemptError::TooLarge(_)
        )
    }
}

/// Delivery settings, from `sandpipe serve` flags.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub allow_private: bool,
    pub retry_base: Duration,
    pub max_attempts: i64,
    /// How long delivered and dead rows are kept once finished.
    pub retention: Duration,
    /// One attempt's budget ([`ATTEMPT_TIMEOUT`] by default).
    pub attempt_timeout: Duration,
}

pub struct Delivery {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    options: DeliveryOptions,
    destinations: Destinations,
    /// Woken when new requests are stored.
    pub wake: Notify,
}

impl Delivery {
    pub fn new(store: Arc<dyn Store>, options: DeliveryOptions, metrics: Arc<Metrics>) -> Delivery {
        Delivery {
            store,
            metrics,
            options,
            destinations: Destinations::default(),
            wake: Notify::new(),
        }
    }

    /// Delay before attempt `attempts + 1`: base × 2^(attempts−1), plus up to 50 % jitter.
    fn backoff(&self, attempts: i64) -> Duration {
        let exponential = self
            .options
            .retry_base
            .saturating_mul(1 << (attempts - 1).clamp(0, 16));
        let mut random = [0u8; 2];
        let _ = getrandom::fill(&mut random);
        let jitter =
            exponential.mul_f64(f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX) / 2.0);
        exponential + jitter
    }

    /// Polls for due requests and delivers them (`onEvent` calls through
    /// `runner`), forever.
    pub async fn run(self: Arc<Self>, runner: Arc<dyn OnEventRunner>) {
        let mut pruned_at = i64::MIN;
        const WHAT: &str = "reading due webhooks";
        let mut outage = Outage::default();
        loop {
            let store = self.store.clone();
            let now = now_ms();
            if now.saturating_sub(pruned_at) >= PRUNE_EVERY.as_millis() as i64 {
                pruned_at = now;
                let before = now.saturating_sub(self.options.retention.as_millis() as i64);
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.prune_webhooks(before)).await {
                    Ok(Err(error)) => tracing::error!(%error, "pruning finished webhooks"),
                    Ok(Ok(0)) | Err(_) => {}
                    Ok(Ok(count)) => tracing::info!(count, "pruned finished webhooks"),
                }
            }
            // The lease starts here (`leased`, as this process measures it),
            // after the pruning above.
            let leased = Instant::now();
            let now = now_ms();
            let lease = now + self.lease().as_millis() as i64;
            let due = tokio::task::spawn_blocking(move || {
                let rows = store.lease_due_webhooks(now, lease, 64)?;
                let exports = store.lease_due_exports(now, lease, EXPORT_ROWS)?;
                Ok::<_, super::store::StoreError>((rows, exports))
            })
            .await;
            match due {
                Ok(Ok((rows, exports))) => {
                    outage.succeeded(WHAT);
                    let any_exports = !exports.is_empty();
                    for batches in export_batches(exports) {
                        let first = &batches[0][0];
                        let span = tracing::info_span!(
                            "export",
                            team = first.team,
                            connector = ?first.connector,
                        );
                        tokio::spawn(
                            self.clone()
                                .deliver_batches(batches, leased, runner.clone())
                                .instrument(span),
                        );
                    }
                    if !rows.is_empty() || any_exports {
                        for row in rows {
                            // No URL: it may carry a secret (a token in its path).
                            let span = tracing::info_span!(
                                "webhook",
                                id = row.id,
                                team = row.team,
                                connector = ?row.connector
                            );
                            tokio::spawn(
                                self.clone()
                                    .deliver(row, leased, runner.clone())
                                    .instrument(span),
                            );
                        }
                        continue;
                    }
                }
                // Logged as an outage, not on every poll; polled every
                // second until it recovers.
                Ok(Err(error)) => outage.failed(WHAT, &error, true),
                Err(_) => {}
            }
            let wait = if outage.is_failing() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100)
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// What follows attempt `attempts` on `rows` rows: when to try again
    /// (`None`: delivered, or dead), and the outcome counted for each row.
    fn judge(
        &self,
        outcome: &Result<(), AttemptError>,
        attempts: i64,
        rows: usize,
    ) -> (Option<i64>, &'static str) {
        let next = match outcome {
            // A destination the policy refuses stays refused, and a call
            // that did not ask for a retry is not made again.
            Err(error) if error.is_final() => None,
            Err(_) if attempts < self.options.max_attempts => {
                Some(now_ms() + self.backoff(attempts).as_millis() as i64)
            }
            _ => None,
        };
        let label = match (outcome, next) {
            (Ok(()), _) => "delivered",
            (Err(_), Some(_)) => "retry",
            (Err(_), None) => "dead",
        };
        self.metrics
            .webhooks
            .with_label_values(&[label])
            .inc_by(rows as u64);
        (next, label)
    }

    /// How long a leased row is the leasing process's.
    fn lease(&self) -> Duration {
        self.options.attempt_timeout * 2
    }

    /// Whether an attempt started now, on rows leased at `leased`, would end
    /// inside their lease with a quarter of an attempt to spare (for the
    /// outcome's write, a late timer, another process's clock). If not, it
    /// is not made and the rows are given back to be leased again.
    fn fits_lease(&self, leased: Instant) -> bool {
        let budget = self.options.attempt_timeout;
        leased.elapsed() + budget + budget / 4 <= self.lease()
    }

    /// One attempt at `row`, leased at `leased`.
    async fn deliver(
        self: Arc<Self>,
        row: WebhookRow,
        leased: Instant,
        runner: Arc<dyn OnEventRunner>,
    ) {
        let limit = self.destinations.limit(&destination(&row));
        let _permit = limit.acquire().await;
        // The wait for a permit may have taken much of the lease.
        if !self.fits_lease(leased) {
            drop(_permit);
            self.release(vec![row.id]).await;
            return;
        }
        let attempts = row.attempts + 1;
        let started = Instant::now();
        let window = AttemptWindow::new(started + self.options.attempt_timeout);
        // One budget for the whole attempt (lookup, connection, response),
        // inside the row's lease, so a slow attempt is never leased twice.
        let attempt = async {
            if row.kind == ON_EVENT {
                let id = row.connector_id.clone().unwrap_or_default();
                runner
                    .run(
                        row.team,
                        id,
                        row.body.clone().unwrap_or_default(),
                        row.of_captured,
                        row.batch_bytes < 0,
                        window.clone(),
                    )
                    .await
            } else {
                self.send(&row).await
            }
        };
        let outcome = tokio::time::timeout(self.options.attempt_timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(window.timed_out("onEvent")));
        let store = self.store.clone();
        let (next, outcome_label) = self.judge(&outcome, attempts, 1);
        tracing::debug!(
            attempt = attempts,
            outcome = outcome_label,
            micros = super::trace::micros(started),
            "attempt"
        );
        let id = row.id;
        let saved = tokio::task::spawn_blocking(move || {
            let Err(error) = outcome else {
                return store.webhook_delivered(id, attempts);
            };
            // The outcome first: a line that could not be stored must not
            // leave the row to be sent again.
            store.webhook_failed(id, attempts, &error.to_string(), next)?;
            // Logged for the connector it is for, as its other errors are:
            // a refusal, or the last attempt's failure.
            let message = match (error.is_refusal(), row.kind == ON_EVENT) {
                (true, true) => format!("onEvent not called: {error}"),
                (true, false) => format!("webhook to {} refused: {error}", origin(&row.url)),
                (false, _) if next.is_some() => return Ok(()),
                (false, true) => gave_up(&format!("onEvent call {id}"), attempts, &error, id),
                (false, false) => {
                    let what = format!("webhook {id} to {}", origin(&row.url));
                    gave_up(&what, attempts, &error, id)
                }
            };
            warn_connector(&*store, row.team, row.connector, row.connector_id, message);
            Ok(())
        })
        .await;
        if let Ok(Err(error)) = saved {
            tracing::error!(%error, id, "recording a webhook attempt");
        }
    }

    /// One connector's `exportEvents` batches, leased at `leased`, one after
    /// the other. A batch that could not finish inside the lease is left for
    /// the lease to expire (its rows are leased again then), never sent
    /// beside a second lease of it.
    async fn deliver_batches(
        self: Arc<Self>,
        batches: Vec<Vec<WebhookRow>>,
        leased: Instant,
        runner: Arc<dyn OnEventRunner>,
    ) {
        let mut left = Vec::new();
        for batch in batches {
            // Once one batch cannot fit, none after it can.
            if left.is_empty() && self.fits_lease(leased) {
                self.clone().deliver_batch(batch, runner.clone()).await;
            } else {
                left.extend(batch.iter().map(|row| row.id));
            }
        }
        if !left.is_empty() {
            self.release(left).await;
        }
    }

    /// Gives back rows whose lease could not cover an attempt: due again
    /// at once, to be leased anew (by any process).
    async fn release(&self, ids: Vec<i64>) {
        tracing::debug!(rows = ids.len(), "no time left in the lease; released");
        self.metrics
            .webhooks
            .with_label_values(&["released"])
            .inc_by(ids.len() as u64);
        let store = self.store.clone();
        let released = tokio::task::spawn_blocking(move || store.release_leases(&ids)).await;
        if let Ok(Err(error)) = released {
            // The lease expires by itself: the rows are only later.
            tracing::warn!(%error, "releasing leased webhooks");
        }
    }

    /// One attempt at an `exportEvents` batch (rows of one connector, in id
    /// order), recorded for every row of it.
    async fn deliver_batch(
        self: Arc<Self>,
        batch: Vec<WebhookRow>,
        runner: Arc<dyn OnEventRunner>,
    ) {
        let first = &batch[0];
        let (team, connector, of_captured) =
            (first.team, first.connector.clone(), first.of_captured);
        let id = first.connector_id.clone().unwrap_or_default();
        let events = batch
            .iter()
            .map(|row| row.body.clone().unwrap_or_default())
            .collect();
        let started = Instant::now();
        let window = AttemptWindow::new(started + self.options.attempt_timeout);
        let outcome = tokio::time::timeout(
            self.options.attempt_timeout,
            runner.export(team, id, events, of_captured, window.clone()),
        )
        .await
        .unwrap_or_else(|_| Err(window.timed_out("exportEvents")));
        // The batch's next attempt is counted from its most tried row.
        let attempts = batch.iter().map(|row| row.attempts).max().unwrap_or(0) + 1;
        let (next, outcome_label) = self.judge(&outcome, attempts, batch.len());
        tracing::debug!(
            attempt = attempts,
            outcome = outcome_label,
            micros = super::trace::micros(started),
            "attempt"
        );
        let rows: Vec<(i64, i64)> = batch.iter().map(|row| (row.id, row.attempts + 1)).collect();
        let store = self.store.clone();
        let connector_id = first.connector_id.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let Err(error) = outcome else {
                return store.batch_finished(&rows, None, None);
            };
            store.batch_finished(&rows, Some(&error.to_string()), next)?;
            let message = if error.is_refusal() {
                format!("exportEvents not called: {error}")
            } else if next.is_none() {
                let events = match rows.len() {
                    1 => "1 event".to_string(),
                    n => format!("{n} events"),
                };
                let first = rows.first().map_or(0, |(id, _)| *id);
                gave_up(
                    &format!("exportEvents batch of {events}"),
                    attempts,
                    &error,
                    first,
                )
            } else {
                return Ok(());
            };
            warn_connector(&*store, team, connector, connector_id, message);
            Ok(())
        })
        .await;
        if let Ok(Err(error)) = saved {
            tracing::error!(%error, team, "recording an exportEvents attempt");
        }
    }

    /// One attempt: the destination is checked after resolution and the
    /// connection pinned to the checked address.
    async fn send(&self, row: &WebhookRow) -> Result<(), AttemptError> {
        let url = reqwest::Url::parse(&row.url).map_err(AttemptError::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AttemptError::Scheme(url.scheme().to_string()));
        }
        let host = url
            .host_str()
            .ok_or(AttemptError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().ok_or(AttemptError::NoPort)?;
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| AttemptError::Resolve {
                host: host.clone(),
                source,
            })?
            .collect();
        let address = *addresses
            .first()
            .ok_or_else(|| AttemptError::NoAddress(host.clone()))?;
        for candidate in &addresses {
            if let Some(why) = refused_address(candidate.ip(), self.options.allow_private) {
                let hint = match self.options.allow_private {
                    false => " (see --allow-private-webhooks)",
                    true => "",
                };
                return Err(AttemptError::RefusedAddress {
                    host,
                    ip: candidate.ip(),
                    why,
                    hint,
                });
            }
        }
        self.post(url, &host, address, row).await
    }

    /// Sends the request to the checked address; a failure here is retried.
    async fn post(
        &self,
        url: reqwest::Url,
        host: &str,
        address: SocketAddr,
        row: &WebhookRow,
    ) -> Result<(), AttemptError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, address)
            .timeout(self.options.attempt_timeout)
            .build()
            .map_err(|e| AttemptError::Client(e.without_url()))?;
        let method = reqwest::Method::from_bytes(row.method.as_bytes())
            .map_err(|_| AttemptError::InvalidMethod(row.method.clone()))?;
        let mut request = client.request(method, url);
        for (name, value) in &row.headers {
            // Checked when the request was composed.
            if let Some(value) =
                sandpipe_runtime::webhook::header_value(value.as_str().unwrap_or_default())
            {
                request = request.header(name, value);
            }
        }
        if let Some(body) = &row.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                AttemptError::TimedOut
            } else {
                // The row shows its URL; a log line or an error shows no
                // more than its origin (a path or query may hold a token).
                AttemptError::Send(e.without_url())
            }
        })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AttemptError::Status(response.status()))
        }
    }
}

/// Leased `exportEvents` rows (in order of team, connector, `of_captured`,
/// batch and id) as the batches they make, by connector: a failed batch's
/// rows (one `batch_id`) as that batch again, the others cut by their
/// connector's batch size, as its buffer would have cut them.
fn export_batches(rows: Vec<WebhookRow>) -> Vec<Vec<Vec<WebhookRow>>> {
    let key = |row: &WebhookRow| (row.team, row.connector_id.clone(), row.of_captured);
    let mut out: Vec<Vec<Vec<WebhookRow>>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let (connector, batch_id) = (key(&first), first.batch_id);
        let mut group = vec![first];
        while let Some(row) = rows.next_if(|row| key(row) == connector && row.batch_id == batch_id)
        {
            group.push(row);
        }
        let batches: Vec<Vec<WebhookRow>> = match batch_id {
            0 => {
                let limit = usize::try_from(group[0].batch_bytes).unwrap_or(1).max(1);
                let sizes: Vec<usize> = group
                    .iter()
                    .map(|row| export::size_of(row.body.as_deref().unwrap_or_default().as_bytes()))
                    .collect();
                let mut group = group.into_iter();
                export::batches(sizes, limit)
                    .into_iter()
                    .map(|range| group.by_ref().take(range.len()).collect())
                    .collect()
            }
            _ => vec![group],
        };
        match out.last_mut() {
            Some(last) if key(&last[0][0]) == connector => last.extend(batches),
            _ => out.push(batches),
        }
    }
    out
}

/// Writes `message` as a warning in `connector`'s log, after its row's
/// outcome is recorded: a line that cannot be stored is only traced.
fn warn_connector(
    store: &dyn Store,
    team: i64,
    connector: String,
    connector_id: Option<String>,
    message: String,
) {
    let line = LogLine {
        connector,
        connector_id,
        level: LogLevel::Warn,
        message,
        time: SystemTime::now(),
    };
    if let Err(error) = store.append_logs(team, &[line]) {
        tracing::warn!(%error, team, "logging the end of a delivery");
    }
}

/// What a connector's log says when `what` (a composed request, an `onEvent`
/// call, an `exportEvents` batch) failed its last attempt and is dead, so the
/// team sees it without listing its webhooks; `row` is the webhook row to
/// redeliver (a batch's first: each of its rows is redelivered on its own).
fn gave_up(what: &str, attempts: i64, error: &AttemptError, row: i64) -> String {
    let tries = if attempts == 1 { "attempt" } else { "attempts" };
    format!(
        "{what} is dead after {attempts} {tries}: {error} (POST …/webhooks/{row}/redeliver sends it again)"
    )
}

/// The scheme, host and port of `url`, then `/…` when it has more: what a
/// log line shows of a webhook's destination. A connector may put a secret
/// config value in the path, query or user info (an API key); log lines never
/// carry secrets, and the delivery worker does not know the team's.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let more =
                parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some();
            format!(
                "{}://{host}{port}{}",
                parsed.scheme(),
                if more { "/…" } else { "" }
            )
        }
        Err(_) => "an unparsable URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        DESTINATIONS_KEPT, Destinations, ON_EVENT, PER_DESTINATION, WebhookRow, destination,
        export_batches, origin,
    };

    /// An export row of connector `connector` with a body of `len` bytes.
    fn row(id: i64, connector: &str, batch_id: i64, len: usize) -> WebhookRow {
        WebhookRow {
            id,
            team: 1,
            kind: "export".into(),
            connector_id: Some(connector.into()),
            of_captured: false,
            batch_bytes: 10,
            batch_id,
            connector: format!("{connector} (0)"),
            url: String::new(),
            method: String::new(),
            headers: Default::default(),
            body: Some("x".repeat(len)),
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn a_failed_batch_is_retried_as_itself_and_fresh_rows_are_cut() {
        // As leased: by connector, then batch (0, fresh, first), then id.
        let rows = vec![
            row(1, "a", 0, 3),
            row(2, "a", 0, 3),
            row(3, "a", 0, 3),
            row(7, "a", 7, 19),
            row(8, "a", 7, 19),
            row(9, "b", 0, 3),
        ];
        let ids: Vec<Vec<Vec<i64>>> = export_batches(rows)
            .iter()
            .map(|batches| {
                batches
                    .iter()
                    .map(|batch| batch.iter().map(|row| row.id).collect())
                    .collect()
            })
            .collect();
        // Each event counts 4 bytes with its comma: two fit in 10. The
        // failed batch stays whole though it is over the size now, and no
        // fresh row joins it.
        assert_eq!(ids, [vec![vec![1, 2], vec![3], vec![7, 8]], vec![vec![9]]]);
    }

    #[test]
    fn on_event_rows_are_keyed_by_team_and_requests_by_host() {
        // The keys only: `tests/serve.rs` shows that `deliver` limits by them.
        let on_event = |team, connector: &str| WebhookRow {
            kind: ON_EVENT.into(),
            team,
            ..row(1, connector, 0, 1)
        };
        let request = |url: &str| WebhookRow {
            kind: "request".into(),
            url: url.into(),
            connector_id: None,
            ..row(1, "a", 0, 1)
        };
        assert_eq!(destination(&on_event(1, "a")), "onEvent 1");
        assert_eq!(
            destination(&on_event(1, "a")),
            destination(&on_event(1, "b"))
        );
        assert_ne!(
            destination(&on_event(1, "a")),
            destination(&on_event(2, "a"))
        );
        assert_eq!(
            destination(&request("https://example.com/a?x=1")),
            destination(&request("http://example.com:8080/b"))
        );
        assert_eq!(destination(&request("https://example.com/")), "example.com");
    }

    #[test]
    fn idle_destination_limits_are_forgotten_once_many_are_known() {
        let destinations = Destinations::default();
        let held = destinations.limit("held.example");
        let permit = held.clone().try_acquire_owned().unwrap();
        drop(held);
        // An attempt waiting for a permit holds only the limit.
        let waiting = destinations.limit("waiting.example");
        for n in 2..DESTINATIONS_KEPT {
            destinations.limit(&format!("{n}.example"));
        }
        assert_eq!(destinations.0.lock().unwrap().len(), DESTINATIONS_KEPT);
        // A new one makes room: the idle ones go; the one in use stays with
        // its permit taken, and the one waited on stays the same limit.
        destinations.limit("new.example");
        let limits = destinations.0.lock().unwrap();
        assert_eq!(limits.len(), 3);
        assert!(std::sync::Arc::ptr_eq(&limits["waiting.example"], &waiting));
        assert!(limits.contains_key("new.example"));
        assert_eq!(
            limits["held.example"].available_permits(),
            PER_DESTINATION - 1
        );
        drop(permit);
    }

    #[test]
    fn a_refused_destination_is_logged_by_its_origin_only() {
        assert_eq!(
            origin("https://user:key@api.example.com:8443/v1/x?token=s3cret#f"),
            "https://api.example.com:8443/…"
        );
        assert_eq!(origin("http://169.254.169.254/"), "http://169.254.169.254");
        assert_eq!(origin("not a url"), "an unparsable URL");
    }
}
