//! The service's own diagnostics, through `tracing`: the subscriber (stderr,
//! filtered by `RUST_LOG`), a span per request and a record per connector
//! call. Fields are ids, names (escaped, `?`), counts and times — never a
//! token, a config value, an event, a log message or a URL, so secrets stay
//! out of them.
//!
//! | what | level | fields |
//! |---|---|---|
//! | span `request` | info | `method`, `route` (the template), `team` |
//! | event `request` (its end) | debug | `status`, `outcome`, `micros` |
//! | event `connector call` | debug | `connector`, `stage`, `outcome`, `micros`, `fuel` |
//! | event `batch` | debug | `events`, `failures`, `webhooks`, `micros` |
//! | span `webhook` + event `attempt` | info / debug | `id`, `team`, `connector`; `attempt`, `outcome`, `micros` |

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sandpipe_runtime::CallRecord;
use std::io::IsTerminal;
use std::time::Instant;
use tracing::Instrument;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Libraries whose own lines may carry what the service never logs, and the
/// most they may log whatever `RUST_LOG` asks: the HTTP libraries' text may
/// quote a request's URL (a webhook URL may hold a secret); PostgreSQL's
/// client logs each statement's parameters at `debug` (config values,
/// events, token hashes); the Redis and NATS clients' debug lines may quote
/// keys, subjects and payloads.
const CAPPED: [(&str, LevelFilter); 8] = [
    ("hyper", LevelFilter::ERROR),
    ("hyper_util", LevelFilter::ERROR),
    ("reqwest", LevelFilter::ERROR),
    ("h2", LevelFilter::ERROR),
    ("rustls", LevelFilter::ERROR),
    ("tokio_postgres", LevelFilter::INFO),
    ("redis", LevelFilter::INFO),
    // It logs every connection event at info, one a reconnection attempt
    // while the server is away; `worker::connect` says what matters once.
    ("async_nats", LevelFilter::WARN),
];

/// Installs the subscriber: lines on stderr, filtered by `RUST_LOG` (targets
/// and levels, e.g. `info`, `sandpipe=debug`, `sandpipe=debug,hyper=warn`);
/// `info` when it is unset; the libraries of [`CAPPED`] never past their cap.
/// A value that is not such a filter is reported and that default used, so a
/// stray `RUST_LOG` never stops the service.
pub fn init() {
    let given = std::env::var("RUST_LOG")
        .ok()
        .filter(|text| !text.trim().is_empty());
    let parsed = given.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(targets)) => targets.clone(),
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    // A line passes both: what was asked for, and the caps.
    let caps = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .with(caps)
        .init();
    if let Some(Err(error)) = parsed {
        tracing::warn!(%error, "RUST_LOG is not a target filter (such as sandpipe=debug,info); logging at info");
    }
}

/// How often an operation that still fails is logged again.
pub const RELOG_FAILING: std::time::Duration = std::time::Duration::from_secs(30);

/// A repeated operation's failures (a poll of the store), logged when they
/// start, then every [`RELOG_FAILING`] rather than at every try, and once
/// when it succeeds again.
#[derive(Debug, Default)]
pub struct Outage {
    /// Since when it fails, and when that was last logged.
    failing: Option<(Instant, Instant)>,
}

impl Outage {
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// A failure of `what` (`reading due webhooks`), at `error` level or else `warn`.
    pub fn failed(&mut self, what: &str, error: &dyn std::fmt::Display, as_error: bool) {
        let now = Instant::now();
        let seconds = match &mut self.failing {
            Some((_, logged)) if now.duration_since(*logged) < RELOG_FAILING => return,
            Some((since, logged)) => {
                *logged = now;
                Some(now.duration_since(*since).as_secs())
            }
            None => {
                self.failing = Some((now, now));
                None
            }
        };
        match (as_error, seconds) {
            (true, None) => tracing::error!(%error, "{what}"),
            (true, Some(seconds)) => tracing::error!(%error, seconds, "{what}, still failing"),
            (false, None) => tracing::warn!(%error, "{what}"),
            (false, Some(seconds)) => tracing::warn!(%error, seconds, "{what}, still failing"),
        }
    }

    /// A success of `what`: logged when it ends an outage.
    pub fn succeeded(&mut self, what: &str) {
        if let Some((since, _)) = self.failing.take() {
            let seconds = since.elapsed().as_secs();
            tracing::info!(seconds, "{what} again");
        }
    }
}

/// How a status ends a request: `ok`, `refused` (4xx) or `failed` (5xx).
fn outcome(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "failed"
    } else if status.is_client_error() {
        "refused"
    } else {
        "ok"
    }
}

/// Middleware: runs the request inside its `request` span and records how it
/// ended. The caller's team is recorded on the span once it is known.
pub async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        team = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            outcome = outcome(status),
            micros = micros(started),
            "request"
        );
    });
    response
}

/// Records the caller's team on the current request span.
pub fn record_team(team: i64) {
    tracing::Span::current().record("team", team);
}

/// One record per connector call of a batch (in the request's span).
pub fn connector_calls<'a>(calls: impl IntoIterator<Item = &'a CallRecord>) {
    for call in calls {
        tracing::debug!(
            connector = ?call.connector,
            stage = call.call.function(),
            outcome = if call.ok { "ok" } else { "error" },
            micros = u64::try_from(call.duration.as_micros()).unwrap_or(u64::MAX),
            fuel = call.fuel,
            "connector call"
        );
    }
}

/// Microseconds since `started`.
pub fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(outcome(StatusCode::OK), "ok");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "refused");
        assert_eq!(outcome(StatusCode::TOO_MANY_REQUESTS), "refused");
        assert_eq!(outcome(StatusCode::INTERNAL_SERVER_ERROR), "failed");
    }
}
