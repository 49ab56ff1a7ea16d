//! sandpipe's side of the benchmark: a chain on 1 and N threads (each
//! thread its own chain of instances, as the service runs them), and the
//! micro-benchmarks of the runtime.

use sandpipe_runtime::{
    Bundle, Call, Chain, Connector, ConnectorOptions, GeoIpDatabase, Limits, MemoryLogs, Runtime,
    RuntimeOptions,
};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds the connector in `dir` and admits it.
/// A Rust connector is built by cargo into `target/rust-guests`, as the tests build them.
pub fn build(runtime: &Runtime, dir: &Path) -> anyhow::Result<Arc<Bundle>> {
    let built = match sandpipe_compiler::rust::is_rust(dir) {
        true => {
            let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rust-guests");
            sandpipe_compiler::rust::build_in(dir, Some(&target))?
        }
        false => sandpipe_compiler::build(runtime, dir)?,
    };
    Ok(runtime.admit(built.bytes)?)
}

/// A built bundle from inline JavaScript (for the micro-benchmarks).
pub fn inline(runtime: &Runtime, js: &str) -> anyhow::Result<Arc<Bundle>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("index.js"), js)?;
    std::fs::write(
        dir.path().join("plugin.json"),
        r#"{"name": "Bench", "config": []}"#,
    )?;
    build(runtime, dir.path())
}

/// The benchmark's one construction site: `bundle` at `position` with
/// `config`, default limits, logs kept in memory, `meta.geoip` from `geoip`.
pub fn connector(
    runtime: &Runtime,
    bundle: &Arc<Bundle>,
    position: usize,
    config: &Value,
    geoip: Option<Arc<GeoIpDatabase>>,
) -> Connector {
    let config: Map<String, Value> = config.as_object().cloned().unwrap_or_default();
    let resolved = bundle
        .manifest()
        .resolve_config(&config)
        .expect("bench config resolves");
    let options = ConnectorOptions {
        logs: Arc::new(MemoryLogs::default()),
        geoip,
        ..ConnectorOptions::default()
    };
    runtime
        .connector(bundle.clone(), position, resolved, options)
        .expect("default limits are within the engine's")
}

/// A chain's connectors, built and admitted once, with their config.
pub struct ChainBundles {
    bundles: Vec<(Arc<Bundle>, Value)>,
    geoip: Option<Arc<GeoIpDatabase>>,
}

impl ChainBundles {
    /// Builds the connectors (directory, config); `geoip` backs `meta.geoip`.
    pub fn build(
        runtime: &Runtime,
        connectors: &[(PathBuf, Value)],
        geoip: Option<&Path>,
    ) -> anyhow::Result<ChainBundles> {
        let bundles = connectors
            .iter()
            .map(|(dir, config)| Ok((build(runtime, dir)?, config.clone())))
            .collect::<anyhow::Result<_>>()?;
        Ok(ChainBundles {
            bundles,
            geoip: geoip.map(|path| Arc::new(GeoIpDatabase::new(path))),
        })
    }

    /// A chain of fresh connectors (their instances are made on first use).
    pub fn chain(&self, runtime: &Runtime, isolation: Isolation) -> Chain {
        let connectors = self
            .bundles
            .iter()
            .enumerate()
            .map(|(position, (bundle, config))| {
                connector(runtime, bundle, position, config, self.geoip.clone())
            })
            .collect();
        match isolation {
            Isolation::Instance => Chain::new(connectors),
            Isolation::Shared => Chain::shared(connectors),
        }
    }
}

/// How a benchmarked chain's connectors are isolated from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// An instance per connector (the default).
    Instance,
    /// One instance per chain (`Chain::shared`).
    Shared,
}

/// Runs `lines` through fresh chains on `threads` threads (contiguous shares),
/// each chain warmed up on `warmup` first; returns the outputs in input order
/// and the processing time.
pub fn run_chain(
    runtime: &Runtime,
    bundles: &ChainBundles,
    lines: &[String],
    warmup: &[String],
    threads: usize,
    isolation: Isolation,
) -> (Vec<String>, Duration) {
    let chains: Vec<Chain> = (0..threads.max(1))
        .map(|_| bundles.chain(runtime, isolation))
        .collect();
    crate::shares::run(lines, warmup, chains, |chain, line| {
        match chain.process_json(line).expect("an event").event {
            Some(event) => String::from_utf8(event).expect("JSON text is UTF-8"),
            None => "null".into(),
        }
    })
}

/// The micro-benchmarks' figures.
pub struct Micro {
    /// Instantiating the cached plugin module from the pool (copy-on-write memory), alone.
    pub instantiate_module: Duration,
    /// A connector ready to call: plugin instance, bundle linked, connector top level run.
    pub instantiate: Duration,
    /// The same connector made, readied and dropped (its memory slot reset).
    pub instance_cycle: Duration,
    /// Upload (admission, Cranelift compile) to first event out.
    pub first_event_cold: Duration,
    /// The same with the compiled module in the disk cache (a restarted host).
    pub first_event_cached: Duration,
    /// An empty connector call on events of these sizes (bytes, time per call),
    /// each event one padded string.
    pub boundary: Vec<(usize, Duration)>,
    /// An empty connector call on the benchmark's own events: their average
    /// size (bytes) and the time per call.
    pub boundary_generated: (usize, Duration),
    /// Resident bytes per warm instance (1,000 instances of one connector).
    pub rss_per_instance: u64,
    /// Time per event for chains of hello-world of these lengths.
    pub chain_length: Vec<(usize, Duration)>,
}

/// The plugin module alone, instantiated from the runtime's pooling engine
/// the way every connector instance starts (median of 500): with fuel on,
/// on wasmtime's async path in a store that yields for the deadline check
/// (nothing yields here: the plugin has no start function).
fn instantiate_module(runtime: &Runtime) -> anyhow::Result<Duration> {
    use sandpipe_runtime::engine::DEADLINE_CHECK_FUEL;
    use sandpipe_runtime::host::{StoreData, linker};
    use sandpipe_runtime::services::{ConnectorServices, ServiceConfig};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let engine = runtime.engine().wasmtime();
    let module = wasmtime::Module::new(engine, sandpipe_runtime::plugin::PLUGIN_WASM)?;
    let pre = linker(engine)?.instantiate_pre(&module)?;
    let limits = Limits::default();
    let services = Arc::new(ConnectorServices::new(ServiceConfig::default()));
    let mut samples = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        let mut store = wasmtime::Store::new(engine, StoreData::new(&limits, services.clone()));
        store.set_fuel(limits.fuel)?;
        store.fuel_async_yield_interval(Some(DEADLINE_CHECK_FUEL))?;
        let instantiated =
            pin!(pre.instantiate_async(&mut store)).poll(&mut Context::from_waker(Waker::noop()));
        match instantiated {
            Poll::Ready(instance) => instance?,
            Poll::Pending => anyhow::bail!("the plugin's instantiation yielded"),
        };
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

/// What [`readying`] times of a connector's first use.
#[derive(Clone, Copy)]
enum Span {
    /// Instantiation from the pool, the bundle linked and its top level run.
    Ready,
    /// The same, with making the connector before and dropping it after: a
    /// fresh instance's whole cost, the pool resetting its memory slot at the drop.
    Cycle,
}

/// The median of 200 connectors made and readied, timed over `span`.
fn readying(
    runtime: &Runtime,
    bundle: &Arc<Bundle>,
    config: &Value,
    span: Span,
) -> anyhow::Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..200 {
        let made = Instant::now();
        let mut connector = connector(runtime, bundle, 0, config, None);
        let started = match span {
            Span::Ready => Instant::now(),
            Span::Cycle => made,
        };
        connector.defines(Call::ProcessEvent)?;
        let readied = started.elapsed();
        drop(connector);
        samples.push(match span {
            Span::Ready => readied,
            Span::Cycle => started.elapsed(),
        });
    }
    Ok(median(samples))
}

/// Resident bytes per warm instance: 1,000 chains of one connector, each
/// having processed one event, against the process's resident set before.
fn resident_per_instance(runtime: &Runtime, bundle: &Arc<Bundle>, config: &Value) -> u64 {
    let before = rss_bytes();
    let mut warm = Vec::with_capacity(1_000);
    for _ in 0..1_000 {
        let mut chain = Chain::new(vec![connector(runtime, bundle, 0, config, None)]);
        chain.process(json!({"event": "warm", "properties": {}}));
        warm.push(chain);
    }
    rss_bytes().saturating_sub(before) / 1_000
}

/// `sandpipe-bench ready`: only the micro-benchmarks' time to a connector
/// ready to call (and the plugin module's instantiation alone) and resident
/// memory per warm instance (hello-world), as the full run measures them, on
/// one line.
pub fn ready_only(examples: &Path) -> anyhow::Result<()> {
    let runtime = micro_runtime()?;
    let hello = build(&runtime, &examples.join("hello-world"))?;
    let config = json!({"name": "Ada"});
    let ready = readying(&runtime, &hello, &config, Span::Ready)?;
    let cycle = readying(&runtime, &hello, &config, Span::Cycle)?;
    let module = instantiate_module(&runtime)?;
    let resident = resident_per_instance(&runtime, &hello, &config);
    println!(
        "ready {:.1} µs (made, readied and dropped {:.1} µs; the module alone {:.1} µs), resident {:.3} MiB per warm instance",
        ready.as_secs_f64() * 1e6,
        cycle.as_secs_f64() * 1e6,
        module.as_secs_f64() * 1e6,
        resident as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// The runtime the micro-benchmarks run on: no disk cache, room for 1,000 warm instances.
fn micro_runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(RuntimeOptions {
        cache_dir: None,
        engine: sandpipe_runtime::engine::EngineOptions {
            max_instances: 1_100,
            ..Default::default()
        },
    })?)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// An event of about `size` bytes of JSON.
/// One event through `chain` as `run` and `serve` run it: JSON text in, the
/// text the host writes out.
fn process_text(chain: &mut Chain, event: &str) {
    let out = chain.process_json(event).expect("an event");
    std::hint::black_box(out.event);
}

fn event_of(size: usize) -> Value {
    let pad = size.saturating_sub(60);
    json!({"event": "$pageview", "distinct_id": "user-1", "properties": {"pad": "x".repeat(pad)}})
}

/// Runs the micro-benchmarks. `cache_dir` is a fresh directory for the
/// cold/cached pair; `events` (JSON lines, at least one) are the benchmark's
/// own events for the boundary.
pub fn micro(examples: &Path, cache_dir: PathBuf, events: &[String]) -> anyhow::Result<Micro> {
    let runtime = micro_runtime()?;
    let hello = build(&runtime, &examples.join("hello-world"))?;
    let config = json!({"name": "Ada"});

    let instantiate = readying(&runtime, &hello, &config, Span::Ready)?;
    let instance_cycle = readying(&runtime, &hello, &config, Span::Cycle)?;
    let instantiate_module = instantiate_module(&runtime)?;

    // Upload to first event: cold compile, then the disk cache of a restarted host.
    let bytes = sandpipe_compiler::build(&runtime, &examples.join("hello-world"))?.bytes;
    let first_event = |dir: &PathBuf| -> anyhow::Result<Duration> {
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(dir.clone()),
            ..Default::default()
        })?;
        let started = Instant::now();
        let bundle = runtime.admit(&bytes)?;
        let mut chain = Chain::new(vec![connector(&runtime, &bundle, 0, &config, None)]);
        chain.process(json!({"event": "first", "properties": {}}));
        Ok(started.elapsed())
    };
    let first_event_cold = first_event(&cache_dir)?;
    let first_event_cached = first_event(&cache_dir)?;

    // The boundary: a connector that returns its event, on growing events.
    let empty = inline(&runtime, "function processEvent(event) { return event }")?;
    let mut boundary = Vec::new();
    // Each event goes in as JSON text, as `run` and `serve` give it
    // (`Chain::process_json`).
    for size in [100, 1_000, 10_000, 100_000] {
        let mut chain = Chain::new(vec![connector(&runtime, &empty, 0, &json!({}), None)]);
        let event = event_of(size).to_string();
        process_text(&mut chain, &event);
        let rounds = (2_000_000 / size).clamp(200, 5_000);
        let started = Instant::now();
        for _ in 0..rounds {
            process_text(&mut chain, &event);
        }
        boundary.push((size, started.elapsed() / rounds as u32));
    }
    let mut chain = Chain::new(vec![connector(&runtime, &empty, 0, &json!({}), None)]);
    process_text(&mut chain, &events[0]);
    let started = Instant::now();
    for event in events {
        process_text(&mut chain, event);
    }
    let boundary_generated = (
        events.iter().map(String::len).sum::<usize>() / events.len(),
        started.elapsed() / events.len() as u32,
    );

    let rss_per_instance = resident_per_instance(&runtime, &hello, &config);

    // Chain length.
    let mut chain_length = Vec::new();
    let event = event_of(1_000).to_string();
    for length in [1, 3, 10] {
        let connectors = (0..length)
            .map(|i| connector(&runtime, &hello, i, &config, None))
            .collect();
        let mut chain = Chain::new(connectors);
        process_text(&mut chain, &event);
        let rounds = 2_000;
        let started = Instant::now();
        for _ in 0..rounds {
            process_text(&mut chain, &event);
        }
        chain_length.push((length, started.elapsed() / rounds));
    }
    Ok(Micro {
        instantiate_module,
        instantiate,
        instance_cycle,
        first_event_cold,
        first_event_cached,
        boundary,
        boundary_generated,
        rss_per_instance,
        chain_length,
    })
}
