//! `sandpipe worker`'s flags (each also from a `SANDPIPE_*` variable): NATS,
//! the pull's batch and concurrency, and every operator flag `serve` takes
//! ([`crate::serve_cmd::PipelineArgs`]), checked and handed to
//! [`crate::worker`].

use crate::serve;
use crate::serve_cmd::PipelineArgs;
use crate::worker::{Worker, WorkerOptions};
use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;

/// `sandpipe worker`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// NATS JetStream server (`nats://host:port`).
    #[arg(long, env = "SANDPIPE_NATS", hide_env_values = true)]
    nats: String,
    /// Messages one pull takes at once.
    #[arg(long, env = "SANDPIPE_WORKER_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// Batches processed at once (default: the number of cores).
    #[arg(long, env = "SANDPIPE_WORKER_CONCURRENCY", value_parser = clap::value_parser!(u64).range(1..=1_000))]
    concurrency: Option<u64>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (no token: bind it privately).
    #[arg(long, env = "SANDPIPE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// How long JetStream waits for an ack before it redelivers (set when the
    /// consumer `sandpipe-workers` is created; an existing one keeps its own).
    #[arg(long, env = "SANDPIPE_ACK_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    ack_wait: Duration,
    /// Largest event in bytes; a larger one goes to the dead letters. At most
    /// what a message of the NATS server may carry, less 4 KiB for headers
    /// (the default: that).
    #[arg(long, env = "SANDPIPE_MAX_EVENT_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_event_bytes: Option<u64>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::worker::MIN_ACK_WAIT;
    if !matches!(args.pipeline.database()?, serve::Database::Postgres(_)) {
        anyhow::bail!(
            "--db: a worker shares its state with `serve` and the other workers; give a postgres:// URL"
        );
    }
    if args.ack_wait < MIN_ACK_WAIT {
        anyhow::bail!(
            "--ack-wait {} is under the minimum of 1s",
            humantime::format_duration(args.ack_wait)
        );
    }
    let options = WorkerOptions {
        batch: args.batch as usize,
        concurrency: args.concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n as usize,
        ),
        ack_wait: args.ack_wait,
        max_event_bytes: args
            .max_event_bytes
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    serve::trace::init();
    let opened = serve::open(args.pipeline.pipeline()?, serve::Admin::None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ran = runtime.block_on(async move {
        let worker = Worker::connect(&args.nats, opened.state.clone(), options).await?;
        opened.spawn_background();
        if let Some(address) = args.metrics_listen {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("--metrics-listen {address}"))?;
            serve::announce(format_args!(
                "metrics on http://{}/metrics",
                listener.local_addr()?
            ));
            let metrics = opened.state.metrics.clone();
            let router = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || async move { metrics.render() }),
            );
            let deadlines = serve::listen::Deadlines::default();
            tokio::spawn(serve::listen::serve(
                listener,
                router,
                deadlines,
                std::future::pending(),
            ));
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            serve::shutdown().await;
            tracing::info!("worker stopping: each loop finishes its batch");
            let _ = stop.send(true);
        });
        serve::announce(format_args!(
            "worker pulling from {} through consumer {}",
            crate::worker::EVENTS,
            crate::worker::CONSUMER
        ));
        // Asked to stop, the loops finish their batches; a batch that cannot
        // finish (its NATS server gone, say) does not hold the exit past
        // DRAIN_LIMIT: unacknowledged, it is delivered again after ack_wait.
        let mut asked = stopped.clone();
        let limit = async move {
            let _ = asked.wait_for(|stop| *stop).await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        };
        tokio::select! {
            () = worker.run(stopped) => Ok(()),
            () = limit => anyhow::bail!(
                "stopped with batches unfinished after {} s (is NATS reachable?); JetStream delivers them again",
                DRAIN_LIMIT.as_secs()
            ),
        }
    });
    // Every batch is finished and acked; a webhook attempt still running
    // (a slow DNS answer, say) keeps its lease, which expires for another
    // process to retry, rather than holding up the exit.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    ran
}

/// How long the exit waits for background work once the batches are done.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long the batches may take to finish once the worker is asked to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
