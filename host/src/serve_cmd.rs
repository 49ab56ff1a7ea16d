//! `sandpipe serve`'s flags (each also from a `SANDPIPE_*` variable), checked
//! and turned into the service's [`serve::ServeArgs`]; [`PipelineArgs`], the
//! ones `sandpipe worker` shares with it.

use crate::serve;
use sandpipe_runtime::{FetchPolicy, OperatorLimits, Runtime};
use std::net::SocketAddr;
use std::time::Duration;

/// `sandpipe serve`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "SANDPIPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The admin token (default: the stored one, or a new one printed once).
    #[arg(long, env = "SANDPIPE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A token that may read `GET /metrics` (besides the admin token).
    #[arg(long, env = "SANDPIPE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// NATS JetStream (`nats://host:port`): adds `POST …/events?async=true`,
    /// which publishes the events for `sandpipe worker`s and answers 202.
    #[arg(long, env = "SANDPIPE_NATS", hide_env_values = true)]
    nats: Option<String>,
    /// Seconds a client may take to send a request's head (line and headers);
    /// past them the connection is closed.
    #[arg(long, env = "SANDPIPE_HEADER_TIMEOUT_SECS", default_value_t = serve::listen::Deadlines::default().head.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3_600))]
    header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body once its head is
    /// in; past them the request is answered 408.
    #[arg(long, env = "SANDPIPE_BODY_TIMEOUT_SECS", default_value_t = serve::listen::Deadlines::default().body.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3_600))]
    body_timeout_secs: u64,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// The flags `serve` and `worker` share: where the state is, and the
/// operator's limits on the connectors, their `fetch`, webhooks and batches.
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The database: a SQLite file, or a `postgres://user:password@host:port/name`
    /// URL that several `sandpipe serve` processes share.
    #[arg(
        long,
        env = "SANDPIPE_DB",
        default_value = "sandpipe.db",
        hide_env_values = true
    )]
    db: String,
    /// `meta.cache` in Redis (`redis://host:port/`), shared by every process;
    /// without it each process keeps its own cache in memory.
    #[arg(long, env = "SANDPIPE_CACHE", hide_env_values = true)]
    cache: Option<String>,
    /// Deliver webhooks to private, loopback and link-local addresses too.
    #[arg(long, env = "SANDPIPE_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
    /// First retry delay of a failed webhook (doubles per attempt, plus jitter).
    #[arg(long, env = "SANDPIPE_WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
    webhook_retry_base_ms: u64,
    /// Attempts before a webhook is marked dead.
    #[arg(long, env = "SANDPIPE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=1_000))]
    webhook_max_attempts: i64,
    /// One delivery attempt's budget (PostHog's 10 s); a row is leased for
    /// twice as long. For tests.
    #[arg(long, env = "SANDPIPE_WEBHOOK_ATTEMPT_TIMEOUT_MS", default_value_t = serve::ATTEMPT_TIMEOUT.as_millis() as u64, hide = true, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    webhook_attempt_timeout_ms: u64,
    /// Hours delivered and dead webhook rows are kept (0: removed once finished).
    #[arg(long, env = "SANDPIPE_WEBHOOK_RETENTION_HOURS", default_value_t = 168)]
    webhook_retention_hours: u64,
    #[command(flatten)]
    geoip: crate::GeoIpArg,
    #[command(flatten)]
    limits: LimitsArgs,
    #[command(flatten)]
    fetch: FetchArgs,
    /// Event requests one team may run at once (default: half the cores, at least 1).
    #[arg(long, env = "SANDPIPE_TEAM_CONCURRENCY", value_parser = clap::value_parser!(u64).range(1..=1_024))]
    team_concurrency: Option<u64>,
    /// Most events one `POST …/events` may carry (more: 413).
    #[arg(long, env = "SANDPIPE_MAX_BATCH_EVENTS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_batch_events: u64,
    #[command(flatten)]
    metering: crate::MeteringArg,
    /// Teams (by id, comma-separated) whose chains run at the shared-instance
    /// level: a team's JavaScript connectors in one instance, each in its own
    /// QuickJS context, faster, with less isolation between them (SECURITY.md,
    /// "Isolation levels"). Every other team: an instance per connector.
    #[arg(long, env = "SANDPIPE_SHARED_INSTANCE_TEAMS", value_parser = team_ids)]
    shared_instance_teams: Option<std::collections::BTreeSet<i64>>,
    /// Do not call the teams' scheduled tasks (`runEveryMinute`,
    /// `runEveryHour`, `runEveryDay`) in this process; the other processes
    /// sharing the database still call each once per period.
    #[arg(long, env = "SANDPIPE_NO_SCHEDULED_TASKS")]
    no_scheduled_tasks: bool,
    /// Wall-clock deadline of a scheduled task's call (in place of
    /// `--deadline-ms`; fuel and memory as for any call).
    #[arg(long, env = "SANDPIPE_TASK_DEADLINE_MS", default_value_t = serve::schedule::TaskOptions::default().deadline.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..=sandpipe_runtime::limits::MAX_DEADLINE_MS))]
    task_deadline_ms: u64,
    /// The periods of the three tasks, `MINUTE,HOUR,DAY` (`300ms,2s,1m`):
    /// for tests, which cannot wait a minute.
    #[arg(long, env = "SANDPIPE_TASK_PERIODS", hide = true, value_parser = task_periods)]
    task_periods: Option<[Duration; 3]>,
}

/// `MINUTE,HOUR,DAY` periods, each at least 50 ms.
fn task_periods(text: &str) -> Result<[Duration; 3], String> {
    let periods = text
        .split(',')
        .map(|period| {
            humantime::parse_duration(period.trim())
                .map_err(|e| format!("{period:?}: {e}"))
                .and_then(|period| match period >= Duration::from_millis(50) {
                    true => Ok(period),
                    false => Err(format!("{period:?} is under 50ms")),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    periods.try_into().map_err(|periods: Vec<_>| {
        format!("three periods (MINUTE,HOUR,DAY), got {}", periods.len())
    })
}

/// `--shared-instance-teams`: team ids separated by commas, spaces around
/// them and empty items allowed (an empty value names no team).
fn team_ids(text: &str) -> Result<std::collections::BTreeSet<i64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| format!("{id:?} is not a team id (a whole number above 0)"))
        })
        .collect()
}

impl PipelineArgs {
    /// The database `--db` names.
    pub fn database(&self) -> anyhow::Result<serve::Database> {
        serve::Database::parse(&self.db).map_err(anyhow::Error::msg)
    }

    /// The pipeline these flags describe, each checked (an error names the flag).
    pub fn pipeline(self) -> anyhow::Result<serve::Pipeline> {
        let db = self.database()?;
        let runtime = self.metering.runtime()?;
        let limits = self.limits.limits(&runtime)?;
        if self.webhook_retention_hours > MAX_RETENTION_HOURS {
            anyhow::bail!(
                "--webhook-retention-hours {} is over the maximum of {MAX_RETENTION_HOURS}",
                self.webhook_retention_hours
            );
        }
        Ok(serve::Pipeline {
            runtime,
            limits,
            max_batch_events: self.max_batch_events as usize,
            shared_teams: self.shared_instance_teams.unwrap_or_default(),
            team_concurrency: self
                .team_concurrency
                .map_or_else(serve::TeamGates::default_per_team, |n| n as usize),
            db,
            cache: self.cache,
            geoip: self.geoip.database(),
            fetch: self.fetch.policy()?,
            delivery: serve::DeliveryOptions {
                allow_private: self.allow_private_webhooks,
                retry_base: Duration::from_millis(self.webhook_retry_base_ms),
                max_attempts: self.webhook_max_attempts,
                retention: Duration::from_secs(self.webhook_retention_hours * 3600),
                attempt_timeout: Duration::from_millis(self.webhook_attempt_timeout_ms),
            },
            tasks: (!self.no_scheduled_tasks).then(|| serve::schedule::TaskOptions {
                periods: self
                    .task_periods
                    .unwrap_or(serve::schedule::TaskOptions::default().periods),
                deadline: Duration::from_millis(self.task_deadline_ms),
            }),
        })
    }
}

/// The operator's limits for every connector the service runs.
#[derive(clap::Args)]
struct LimitsArgs {
    /// Fuel per call (about 11–15 M is a millisecond of QuickJS work).
    #[arg(long, env = "SANDPIPE_FUEL", default_value_t = sandpipe_runtime::Limits::default().fuel)]
    fuel: u64,
    /// Wall-clock deadline per call, host calls included.
    #[arg(long, env = "SANDPIPE_DEADLINE_MS", default_value_t = 1_000)]
    deadline_ms: u64,
    /// Linear memory cap per connector instance.
    #[arg(long, env = "SANDPIPE_MEMORY_MIB", default_value_t = 64)]
    memory_mib: u64,
    /// Keys `meta.storage` may hold per connector.
    #[arg(long, env = "SANDPIPE_STORAGE_MAX_KEYS", default_value_t = sandpipe_runtime::Limits::default().storage_max_keys as u64)]
    storage_max_keys: u64,
    /// Bytes (keys and JSON values) `meta.storage` may hold per connector.
    #[arg(long, env = "SANDPIPE_STORAGE_MAX_BYTES", default_value_t = sandpipe_runtime::Limits::default().storage_max_bytes as u64)]
    storage_max_bytes: u64,
}

impl LimitsArgs {
    /// The limits, each checked against what `runtime` can give (an error names the flag).
    fn limits(&self, runtime: &Runtime) -> anyhow::Result<sandpipe_runtime::Limits> {
        let overrides = OperatorLimits {
            fuel: Some(self.fuel),
            deadline_ms: Some(self.deadline_ms),
            memory_mib: Some(self.memory_mib),
            storage_max_keys: Some(self.storage_max_keys),
            storage_max_bytes: Some(self.storage_max_bytes),
            ..Default::default()
        };
        Ok(
            runtime
                .operator_limits(&overrides, |field| format!("--{}", field.replace('_', "-")))?,
        )
    }
}

/// The operator's fetch policy for every connector of every team (as a chain
/// file's `fetch` is for one connector of `sandpipe run`): by default no host.
#[derive(clap::Args)]
struct FetchArgs {
    /// A host connectors may `fetch` (`api.example.com`, or `*.example.com` for
    /// its subdomains); repeatable, or comma-separated in the variable. None: fetch is refused.
    #[arg(
        long = "fetch-allow",
        value_name = "HOST",
        env = "SANDPIPE_FETCH_ALLOW",
        value_delimiter = ','
    )]
    allow: Vec<String>,
    /// Let `fetch` reach private, loopback and link-local addresses (never cloud metadata).
    #[arg(long, env = "SANDPIPE_FETCH_ALLOW_PRIVATE")]
    fetch_allow_private: bool,
    /// Largest `fetch` response body a connector may read.
    #[arg(long, env = "SANDPIPE_FETCH_MAX_RESPONSE_BYTES", default_value_t = FetchPolicy::default().max_response as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_FETCH_RESPONSE_BYTES))]
    fetch_max_response_bytes: u64,
    /// Longest one `fetch` may take (the call's deadline applies too).
    #[arg(long, env = "SANDPIPE_FETCH_TIMEOUT_MS", default_value_t = FetchPolicy::default().timeout.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_FETCH_TIMEOUT_MS))]
    fetch_timeout_ms: u64,
}

/// Largest `--fetch-max-response-bytes`: 64 MiB.
const MAX_FETCH_RESPONSE_BYTES: u64 = 64 << 20;
/// Longest `--fetch-timeout-ms`: ten minutes.
const MAX_FETCH_TIMEOUT_MS: u64 = 600_000;

impl FetchArgs {
    /// The policy, each host checked (an error names the flag and the value).
    fn policy(&self) -> anyhow::Result<FetchPolicy> {
        for host in &self.allow {
            check_fetch_host(host)?;
        }
        Ok(FetchPolicy {
            allow_hosts: self.allow.clone(),
            allow_private: self.fetch_allow_private,
            max_response: self.fetch_max_response_bytes as usize,
            timeout: Duration::from_millis(self.fetch_timeout_ms),
        })
    }
}

/// A `--fetch-allow` value is a host name, an IP address (`[…]` for IPv6) or
/// `*.` and a domain: a scheme, port, path or wildcard elsewhere would never
/// match a URL's host, so it is refused instead of silently allowing nothing.
fn check_fetch_host(host: &str) -> anyhow::Result<()> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let literal_v6 = name
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok());
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if literal_v6 || plain {
        Ok(())
    } else {
        anyhow::bail!(
            "--fetch-allow {host:?}: not a host name (give `api.example.com`, `*.example.com`, `127.0.0.1` or `[::1]`, without scheme, port or path)"
        )
    }
}

/// Longest `--webhook-retention-hours`: ten years.
const MAX_RETENTION_HOURS: u64 = 87_600;

pub fn run(args: Args) -> anyhow::Result<()> {
    serve::run(serve::ServeArgs {
        listen: args.listen,
        admin_token: args.admin_token,
        metrics_token: args.metrics_token,
        nats: args.nats,
        deadlines: serve::listen::Deadlines {
            head: Duration::from_secs(args.header_timeout_secs),
            body: Duration::from_secs(args.body_timeout_secs),
        },
        pipeline: args.pipeline.pipeline()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shared_instance_teams_are_ids_with_commas_spaces_and_empty_items_allowed() {
        let ids = |text: &str| super::team_ids(text).map(|ids| ids.into_iter().collect::<Vec<_>>());
        assert_eq!(ids("2"), Ok(vec![2]));
        assert_eq!(ids(" 3, 1,,2 "), Ok(vec![1, 2, 3]));
        assert_eq!(ids(""), Ok(vec![]));
        assert_eq!(
            ids("1, x"),
            Err("\"x\" is not a team id (a whole number above 0)".to_string())
        );
        assert_eq!(
            ids("0"),
            Err("\"0\" is not a team id (a whole number above 0)".to_string())
        );
    }

    use super::check_fetch_host;

    #[test]
    fn fetch_allow_takes_host_names_addresses_and_subdomain_wildcards_only() {
        for host in [
            "api.example.com",
            "*.example.com",
            "127.0.0.1",
            "[::1]",
            "localhost",
        ] {
            assert!(check_fetch_host(host).is_ok(), "{host}");
        }
        for host in [
            "",
            "*.",
            "*",
            "::1",
            "[not-v6]",
            "http://api.example.com",
            "api.example.com:443",
            "api.example.com/v1",
            "api.*.com",
            "user@api.example.com",
        ] {
            assert_eq!(
                check_fetch_host(host).unwrap_err().to_string(),
                format!(
                    "--fetch-allow {host:?}: not a host name (give `api.example.com`, `*.example.com`, `127.0.0.1` or `[::1]`, without scheme, port or path)"
                ),
            );
        }
    }
}
