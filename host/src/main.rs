//! `sandpipe`: build, inspect and run PostHog-style connectors as WebAssembly.
//!
//! The CLI only parses arguments and calls the crates: `sandpipe-compiler`
//! builds bundles, `sandpipe-runtime` admits and runs them.

mod attachments;
mod build;
mod chain_file;
mod inspect;
mod new_cmd;
mod run;
mod serve;
mod test_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sandpipe",
    version,
    about = "Run PostHog-style data connectors as sandboxed WebAssembly"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scaffold a connector: index.ts, plugin.json, typings and a passing fixture.
    New {
        /// The directory to create.
        name: PathBuf,
    },
    /// Compile a connector directory (index.js + plugin.json) to a bundle.
    Build {
        /// The connector directory.
        dir: PathBuf,
        /// Where to write the bundle (default: `<dir name>.wasm`).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a connector's fixtures (DIR/tests/*.json) and report pass/fail.
    Test {
        /// The connector directory.
        dir: PathBuf,
        #[command(flatten)]
        geoip: GeoIpArg,
    },
    /// Show a bundle's manifest, ABI version, source hash, imports and size.
    Inspect {
        /// The bundle.
        file: PathBuf,
    },
    /// Run the HTTP service: bundles, team chains, events, logs (SQLite, no other set-up).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SANDPIPE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The SQLite database file.
        #[arg(long, env = "SANDPIPE_DB", default_value = "sandpipe.db")]
        db: PathBuf,
        /// The admin token (default: the stored one, or a new one printed once).
        #[arg(long, env = "SANDPIPE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Deliver webhooks to private, loopback and link-local addresses too.
        #[arg(long, env = "SANDPIPE_ALLOW_PRIVATE_WEBHOOKS")]
        allow_private_webhooks: bool,
        /// First retry delay of a failed webhook (doubles per attempt, plus jitter).
        #[arg(long, env = "SANDPIPE_WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
        webhook_retry_base_ms: u64,
        /// Attempts before a webhook is marked dead.
        #[arg(long, env = "SANDPIPE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 5)]
        webhook_max_attempts: i64,
        /// Hours delivered and dead webhook rows are kept (0: removed once finished).
        #[arg(long, env = "SANDPIPE_WEBHOOK_RETENTION_HOURS", default_value_t = 168)]
        webhook_retention_hours: u64,
        /// A token that may read `GET /metrics` (besides the admin token).
        #[arg(long, env = "SANDPIPE_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        #[command(flatten)]
        geoip: GeoIpArg,
        #[command(flatten)]
        limits: LimitsArgs,
        /// Event requests one team may run at once (default: half the cores, at least 1).
        #[arg(long, env = "SANDPIPE_TEAM_CONCURRENCY")]
        team_concurrency: Option<usize>,
    },
    /// Run NDJSON events through a chain of connectors; print one JSON line per event.
    Run {
        /// The chain file: {"connectors": [{"path": "DIR or FILE.wasm", "config": {...}}, ...]}.
        chain: PathBuf,
        /// Read events from this file instead of stdin.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Write composed webhook requests to this file as NDJSON.
        #[arg(long)]
        webhooks: Option<PathBuf>,
        /// The SQLite file behind `meta.storage` (default: `.sandpipe/storage.db` next to CHAIN.json).
        #[arg(long)]
        storage: Option<PathBuf>,
        #[command(flatten)]
        geoip: GeoIpArg,
        /// Write events connectors emit with `posthog.capture` to this file as NDJSON.
        #[arg(long)]
        captured: Option<PathBuf>,
        /// Print the summary even when the run takes under a second.
        #[arg(long)]
        summary: bool,
    },
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
    /// The limits, each checked against its maximum (an error names the flag).
    fn limits(&self) -> anyhow::Result<sandpipe_runtime::Limits> {
        let limits = sandpipe_runtime::limits::OperatorLimits {
            fuel: Some(self.fuel),
            deadline_ms: Some(self.deadline_ms),
            memory_mib: Some(self.memory_mib),
            storage_max_keys: Some(self.storage_max_keys),
            storage_max_bytes: Some(self.storage_max_bytes),
            ..Default::default()
        }
        .apply(
            sandpipe_runtime::Limits::default(),
            sandpipe_runtime::RuntimeOptions::default()
                .engine
                .max_memory,
            |field| format!("--{}", field.replace('_', "-")),
        )?;
        Ok(limits)
    }
}

/// Where `meta.geoip` reads its database.
#[derive(clap::Args)]
struct GeoIpArg {
    /// The GeoLite2-City database behind `meta.geoip` (read only when a connector uses it;
    /// `cargo xtask geoip` downloads one).
    #[arg(
        long = "geoip",
        env = "SANDPIPE_GEOIP_DB",
        default_value = "data/GeoLite2-City.mmdb"
    )]
    path: PathBuf,
}

impl GeoIpArg {
    fn database(&self) -> std::sync::Arc<sandpipe_runtime::GeoIpDatabase> {
        std::sync::Arc::new(sandpipe_runtime::GeoIpDatabase::new(&self.path))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::New { name } => new_cmd::run(&name),
        Command::Serve {
            listen,
            db,
            admin_token,
            allow_private_webhooks,
            webhook_retry_base_ms,
            webhook_max_attempts,
            webhook_retention_hours,
            metrics_token,
            geoip,
            limits,
            team_concurrency,
        } => limits.limits().and_then(|limits| {
            if webhook_retention_hours > MAX_RETENTION_HOURS {
                anyhow::bail!(
                    "--webhook-retention-hours {webhook_retention_hours} is over the maximum of {MAX_RETENTION_HOURS}"
                );
            }
            serve::run(serve::ServeArgs {
            limits,
            metrics_token,
            team_concurrency: team_concurrency.unwrap_or_else(serve::TeamGates::default_per_team),
            listen,
            db,
            admin_token,
            geoip: geoip.database(),
            delivery: serve::DeliveryOptions {
                allow_private: allow_private_webhooks,
                retry_base: std::time::Duration::from_millis(webhook_retry_base_ms),
                max_attempts: webhook_max_attempts.max(1),
                retention: std::time::Duration::from_secs(webhook_retention_hours * 3600),
            },
        })
        }),
        Command::Build { dir, output } => build::run(&dir, output),
        Command::Inspect { file } => inspect::run(&file),
        Command::Test { dir, geoip } => test_cmd::run(&dir, geoip.database()),
        Command::Run {
            chain,
            events,
            webhooks,
            storage,
            geoip,
            captured,
            summary,
        } => run::run(run::RunArgs {
            chain: &chain,
            events: events.as_deref(),
            webhooks: webhooks.as_deref(),
            storage: storage.as_deref(),
            geoip: geoip.database(),
            captured: captured.as_deref(),
            always_summarise: summary,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sandpipe: error: {}", one_line(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Longest `--webhook-retention-hours`: ten years.
const MAX_RETENTION_HOURS: u64 = 87_600;

/// Errors are one line: any newline in a message becomes a space.
fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runtime every command shares (the module cache makes it cheap).
fn runtime() -> anyhow::Result<sandpipe_runtime::Runtime> {
    Ok(sandpipe_runtime::Runtime::new(
        sandpipe_runtime::RuntimeOptions::default(),
    )?)
}
