//! `sandpipe-bench`: sandpipe against Node's `vm` (PostHog's plugin server),
//! isolated-vm (called synchronously and asynchronously) and native Rust, on
//! two chains ([`workload`]), the same events and GeoIP database, in one run.
//! Checks that every implementation computed the same outputs before it
//! reports any time, then writes `BENCHMARKS.md` and `bench/throughput.svg`.
//!
//! Run it with `cargo xtask bench` (which fetches the GeoIP database and the
//! Node packages first). `--events N` (timed events, default 30,000),
//! `--warmup N` (events every implementation runs before the clock starts,
//! default 2,000) and `--repetitions N` (interleaved rounds, default 3) change
//! the run. `sandpipe-bench durability [--requests N]` only measures what
//! `synchronous = FULL` costs the service's commits ([`durability`]).
//! `sandpipe-bench rust-enricher [--events N …]` measures only the GeoIP
//! chain with the Rust enricher against the chain all in JavaScript
//! ([`rust_enricher`]; the full run reports it too) and prints its section.
//! `sandpipe-bench events N` prints the first N timed events, to profile a
//! chain by hand (`sandpipe run bench/connectors/chain.json`).
//! `sandpipe-bench ready` only measures a connector's time to ready and the
//! resident memory per warm instance, as the full run's micro-benchmarks do.

mod durability;
mod events;
mod measure;
mod native;
mod node;
mod report;
mod rust_enricher;
mod sandpipe;
mod shares;
mod workload;

use anyhow::{Context, bail};
use sandpipe_runtime::{Runtime, RuntimeOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one benchmark run does.
struct Options {
    events: usize,
    warmup: usize,
    repetitions: usize,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        events: 30_000,
        warmup: 2_000,
        repetitions: 3,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} takes a number"))?;
        let number: usize = value
            .parse()
            .with_context(|| format!("{flag} takes a number, not {value}"))?;
        match flag.as_str() {
            "--events" if number > 0 => options.events = number,
            "--warmup" => options.warmup = number,
            "--repetitions" if number > 0 => options.repetitions = number,
            _ => bail!("usage: sandpipe-bench [--events N] [--warmup N] [--repetitions N]"),
        }
    }
    Ok(options)
}

/// `sandpipe-bench events N`: the first N timed events, as NDJSON on stdout
/// (for profiling a chain by hand with `sandpipe run`).
fn print_events(count: usize) -> anyhow::Result<()> {
    let reader = maxminddb::Reader::open_readfile(geoip_database())?;
    let mut out = std::io::stdout().lock();
    for line in events::generate(count, events::TIMED, &reader) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is in the repository")
        .to_path_buf()
}

fn geoip_database() -> PathBuf {
    repository().join("data/GeoLite2-City.mmdb")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command] if command == "durability" => return durability::run(500),
        [command, flag, n] if command == "durability" && flag == "--requests" => {
            return durability::run(n.parse().context("--requests takes a number")?);
        }
        [command] if command == "ready" => {
            return sandpipe::ready_only(&repository().join("examples"));
        }
        [command, n] if command == "events" => {
            return print_events(n.parse().context("events takes a number")?);
        }
        _ => {}
    }
    // `sandpipe-bench rust-enricher [--events N] …`: only the Rust-enricher rows.
    let rust_only = args.first().is_some_and(|a| a == "rust-enricher");
    let args = &args[usize::from(rust_only)..];
    let options = options(args)?;
    let root = repository();
    let geoip = geoip_database();
    let reader = maxminddb::Reader::open_readfile(&geoip)
        .with_context(|| format!("{}: run `cargo xtask geoip` first", geoip.display()))?;
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();

    eprintln!(
        "bench: generating {} events and {} warm-up events",
        options.events, options.warmup
    );
    let lines = events::generate(options.events, events::TIMED, &reader);
    let warmup = events::generate(options.warmup, events::WARMUP, &reader);
    let events_file = work.join("events.ndjson");
    let warmup_file = work.join("warmup.ndjson");
    std::fs::write(&events_file, lines.join("\n") + "\n")?;
    std::fs::write(&warmup_file, warmup.join("\n") + "\n")?;
    let bytes: usize = lines.iter().map(String::len).sum();

    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(work.join("module-cache")),
        ..Default::default()
    })?;
    let setup = measure::Setup {
        root: &root,
        runtime: &runtime,
        reader: &reader,
        lines: &lines,
        warmup: &warmup,
        node: node::Inputs {
            events: &events_file,
            warmup: &warmup_file,
            geoip: &geoip,
        },
    };
    if rust_only {
        let rust = rust_enricher::measure(&setup, options.repetitions)?;
        print!("{}", rust.markdown());
        return Ok(());
    }
    let measured = measure::run(&setup, options.repetitions)?;
    eprintln!("bench: the GeoIP chain with the Rust enricher");
    let rust = rust_enricher::measure(&setup, options.repetitions)?;
    eprintln!(
        "bench: all {} runs gave identical outputs",
        measured.compared
    );
    for m in &measured.measurements {
        eprintln!(
            "bench: {} × {} thread(s), {}: {:.0} events/s (median; {:.0}–{:.0})",
            m.workload.title(),
            m.threads,
            m.implementation.name(),
            m.median(),
            m.slowest(),
            m.fastest()
        );
    }

    eprintln!("bench: micro-benchmarks");
    let cache = tempfile::tempdir()?;
    let micro = sandpipe::micro(
        &root.join("examples"),
        cache.path().to_path_buf(),
        &lines[..lines.len().min(2_000)],
    )?;

    let report = report::Report {
        count: options.events,
        warmup: options.warmup,
        repetitions: options.repetitions,
        bytes,
        measured,
        micro,
        rust,
        node: node::version(),
        total: started.elapsed(),
    };
    std::fs::write(root.join("BENCHMARKS.md"), report.markdown())?;
    report.chart(&root.join("bench/throughput.svg"))?;
    std::fs::remove_file(&events_file)?;
    std::fs::remove_file(&warmup_file)?;
    eprintln!(
        "bench: wrote BENCHMARKS.md and bench/throughput.svg in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
