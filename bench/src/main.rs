//! `sandpipe-bench`: sandpipe against Node's `vm` (PostHog's plugin server),
//! isolated-vm and native Rust, on the same events and GeoIP database, in one
//! run. Checks that every implementation computed the same outputs before it
//! reports any time, then writes `BENCHMARKS.md` and `bench/throughput.svg`.
//!
//! Run it with `cargo xtask bench` (which fetches the GeoIP database and the
//! Node packages first); `--events N` changes the event count.
//! `sandpipe-bench durability [--requests N]` only measures what
//! `synchronous = FULL` costs the service's commits ([`durability`]).

mod durability;
mod events;
mod native;
mod node;
mod report;
mod sandpipe;
mod shares;

use anyhow::{Context, bail};
use report::Run;
use sandpipe_runtime::{Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command] if command == "durability" => return durability::run(500),
        [command, flag, n] if command == "durability" && flag == "--requests" => {
            return durability::run(n.parse().context("--requests takes a number")?);
        }
        _ => {}
    }
    let count = match args.as_slice() {
        [] => 100_000,
        [flag, n] if flag == "--events" => n.parse().context("--events takes a number")?,
        _ => bail!("usage: sandpipe-bench [--events N]"),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is in the repository")
        .to_path_buf();
    let geoip = root.join("data/GeoLite2-City.mmdb");
    let reader = maxminddb::Reader::open_readfile(&geoip)
        .with_context(|| format!("{}: run `cargo xtask geoip` first", geoip.display()))?;
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();

    eprintln!("bench: generating {count} events");
    let lines = events::generate(count, &reader);
    let events_file = work.join("events.ndjson");
    std::fs::write(&events_file, lines.join("\n") + "\n")?;
    let bytes: usize = lines.iter().map(String::len).sum();

    let examples = root.join("examples");
    let dirs: Vec<PathBuf> = sandpipe::chain_spec()
        .iter()
        .map(|(name, _)| examples.join(name))
        .collect();
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(work.join("module-cache")),
        ..Default::default()
    })?;

    let mut runs: Vec<Run> = Vec::new();
    let mut outputs: Vec<(String, Vec<String>)> = Vec::new();
    let mut record =
        |name: &str, threads: usize, (out, took): (Vec<String>, std::time::Duration)| {
            // Times are shown only once every output has been checked.
            eprintln!("bench: ran {name} on {threads} thread(s)");
            runs.push(Run {
                name: name.into(),
                threads,
                seconds: took.as_secs_f64(),
                events: count,
            });
            outputs.push((format!("{name} ({threads} thread)"), out));
        };
    let native_run = |threads: usize| {
        shares::run(&lines, vec![(); threads], |(), line| {
            native::process(line, &reader)
        })
    };
    for threads in [1, 2] {
        record("native Rust", threads, native_run(threads));
        record(
            "sandpipe",
            threads,
            sandpipe::run_chain(&runtime, &examples, &geoip, &lines, threads)?,
        );
        record(
            "Node vm",
            threads,
            node::run(
                &root.join("bench"),
                "vm",
                threads,
                &events_file,
                &geoip,
                &dirs,
            )?,
        );
        record(
            "Node isolated-vm",
            threads,
            node::run(
                &root.join("bench"),
                "ivm",
                threads,
                &events_file,
                &geoip,
                &dirs,
            )?,
        );
    }

    // A benchmark that computes something else is void: every output must match.
    let (reference_name, reference) = &outputs[0];
    for (name, out) in &outputs[1..] {
        if out.len() != reference.len() {
            bail!(
                "{name} gave {} outputs, {reference_name} {}",
                out.len(),
                reference.len()
            );
        }
        if let Some(index) = (0..out.len()).find(|&i| out[i] != reference[i]) {
            bail!(
                "{name} differs from {reference_name} at event {index}:\n  {}\n  {}",
                out[index],
                reference[index]
            );
        }
    }
    eprintln!("bench: all {} runs gave identical outputs", outputs.len());
    for run in &runs {
        eprintln!(
            "bench: {} on {} thread(s): {:.0} events/s",
            run.name,
            run.threads,
            run.per_second()
        );
    }

    eprintln!("bench: micro-benchmarks");
    let cache = tempfile::tempdir()?;
    let micro = sandpipe::micro(&examples, cache.path().to_path_buf())?;

    let report = report::Report {
        count,
        bytes,
        runs,
        micro,
        implementations: outputs.len(),
        node: node::version(),
        total: started.elapsed(),
    };
    std::fs::write(root.join("BENCHMARKS.md"), report.markdown())?;
    report.chart(&root.join("bench/throughput.svg"))?;
    eprintln!(
        "bench: wrote BENCHMARKS.md and bench/throughput.svg in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
