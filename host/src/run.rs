//! `sandpipe run CHAIN.json [--events FILE] [--webhooks FILE]`: NDJSON events
//! in, one JSON line per input line out, so output line N answers input line
//! N: the event after the chain, `null` when a connector dropped it, or
//! `{"error": "...", "line": N}` for a line that is not an event. Connector
//! console output, errors, progress, the summary and the cost per call go to
//! stderr; `--strict` exits non-zero when any connector call failed.

use crate::chain_file;
use anyhow::Context;
use sandpipe_runtime::{Chain, Export, LazySqliteStorage, StderrLogs};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Tally {
    events_in: u64,
    events_out: u64,
    dropped: u64,
    skipped_lines: u64,
    webhooks: u64,
    captured: u64,
    failures: BTreeMap<String, u64>,
}

/// An NDJSON output file.
struct NdjsonFile {
    path: std::path::PathBuf,
    out: BufWriter<File>,
}

impl NdjsonFile {
    fn create(path: &Path) -> anyhow::Result<NdjsonFile> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(NdjsonFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    fn write_all<T: serde::Serialize>(&mut self, items: &[T]) -> anyhow::Result<()> {
        for item in items {
            sandpipe_runtime::json::to_writer(&mut self.out, item)?;
            self.out
                .write_all(b"\n")
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// `sandpipe run`'s arguments.
#[derive(clap::Args)]
pub struct Args {
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
    geoip: crate::GeoIpArg,
    /// Write events connectors emit with `posthog.capture` to this file as NDJSON.
    #[arg(long)]
    captured: Option<PathBuf>,
    /// Print the summary even when the run takes under a second, and the cost
    /// of each connector's calls (fuel and µs per event, p50/p99).
    #[arg(long)]
    summary: bool,
    /// Exit non-zero when any connector call failed (the output is still complete).
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    metering: crate::MeteringArg,
}

/// Calls of one connector's `onEvent` for one event before `run` gives up
/// (as many as `serve` makes by default, `--webhook-max-attempts`); `run`
/// makes them at once, without serve's backoff.
const ON_EVENT_ATTEMPTS: u32 = 5;

/// The outcome of an `onEvent` that did not succeed at once, on stderr (each
/// failed call is already logged for its connector); a final failure counts
/// as the connector's failure.
fn report_export(source: &str, line: usize, export: &Export, tally: &mut Tally) {
    match &export.error {
        None if export.attempts > 1 => eprintln!(
            "sandpipe: {source}:{line}: onEvent of {} succeeded on attempt {}",
            export.connector, export.attempts
        ),
        None => {}
        Some(_) => {
            eprintln!(
                "sandpipe: {source}:{line}: onEvent of {} failed {} times; given up",
                export.connector, export.attempts
            );
            *tally.failures.entry(export.connector.clone()).or_default() += 1;
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let strict = args.strict;
    let chain = args.chain.as_path();
    let events = args.events.as_deref();
    let webhooks = args.webhooks.as_deref();
    let storage = args.storage.as_deref();
    let geoip = args.geoip.database();
    let captured = args.captured.as_deref();
    let always_summarise = args.summary;
    let runtime = args.metering.runtime()?;
    let storage_path =
        storage.map_or_else(|| chain_file::default_storage(chain), Path::to_path_buf);
    let storage = Arc::new(LazySqliteStorage::new(storage_path));
    let mut chain = Chain::new(chain_file::load(
        &runtime,
        chain,
        Arc::new(StderrLogs),
        storage,
        geoip,
    )?);
    let (input, source): (Box<dyn BufRead>, String) = match events {
        Some(path) => (
            Box::new(BufReader::new(
                File::open(path).with_context(|| format!("reading {}", path.display()))?,
            )),
            path.display().to_string(),
        ),
        None => (
            Box::new(BufReader::new(std::io::stdin().lock())),
            "stdin".into(),
        ),
    };
    let mut webhook_out = webhooks.map(NdjsonFile::create).transpose()?;
    let mut captured_out = captured.map(NdjsonFile::create).transpose()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let started = Instant::now();
    let mut next_progress = started + PROGRESS_EVERY;
    let mut tally = Tally::default();

    let mut costs = crate::cost::Costs::default();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("{source}:{number}: reading"))?;
        let event = match parse_line(&line) {
            Ok(event) => event,
            Err(why) => {
                eprintln!("sandpipe: {source}:{number}: skipped: {why}");
                tally.skipped_lines += 1;
                // Still one output line, so output line N answers input line N.
                let placeholder = serde_json::json!({ "error": why, "line": number });
                sandpipe_runtime::json::to_writer(&mut out, &placeholder)?;
                out.write_all(b"\n")?;
                continue;
            }
        };
        tally.events_in += 1;
        let result = chain.process(event);
        if always_summarise {
            costs.add(&result.calls);
        }
        for failure in &result.failures {
            *tally.failures.entry(failure.connector.clone()).or_default() += 1;
        }
        match &result.event {
            Some(event) => {
                tally.events_out += 1;
                sandpipe_runtime::json::to_writer(&mut out, event)?;
                for export in chain.export(event, ON_EVENT_ATTEMPTS) {
                    report_export(&source, number, &export, &mut tally);
                }
            }
            None => {
                tally.dropped += 1;
                out.write_all(b"null")?;
            }
        }
        out.write_all(b"\n")?;
        tally.webhooks += result.webhooks.len() as u64;
        tally.captured += result.captured.len() as u64;
        if let Some(file) = webhook_out.as_mut() {
            file.write_all(&result.webhooks)?;
        }
        if let Some(file) = captured_out.as_mut() {
            file.write_all(&result.captured)?;
        }
        if Instant::now() >= next_progress {
            out.flush()?;
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "sandpipe: {} events, {:.0} events/s",
                tally.events_in,
                tally.events_in as f64 / elapsed
            );
            next_progress += PROGRESS_EVERY;
        }
    }
    out.flush()?;
    for file in [webhook_out, captured_out].into_iter().flatten() {
        file.finish()?;
    }
    let elapsed = started.elapsed();
    if webhooks.is_none() && tally.webhooks > 0 {
        eprintln!(
            "sandpipe: {} webhook requests composed and not sent; pass --webhooks FILE to write them",
            tally.webhooks
        );
    }
    if captured.is_none() && tally.captured > 0 {
        eprintln!(
            "sandpipe: {} events captured with posthog.capture; pass --captured FILE to write them",
            tally.captured
        );
    }
    if always_summarise || elapsed >= PROGRESS_EVERY {
        eprintln!("{}", summary(&tally, elapsed));
    }
    for line in costs.lines() {
        eprintln!("sandpipe: {line}");
    }
    if strict && !tally.failures.is_empty() {
        anyhow::bail!("--strict: connector calls failed ({})", failures(&tally));
    }
    Ok(())
}

/// One input line as an event, or why it is not one.
fn parse_line(line: &str) -> Result<Value, String> {
    if line.trim().is_empty() {
        return Err("empty line".into());
    }
    match serde_json::from_str(line) {
        Ok(event @ Value::Object(_)) => Ok(event),
        Ok(_) => Err("an event must be a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// `NAME (i): N, …`, or `none`.
fn failures(tally: &Tally) -> String {
    if tally.failures.is_empty() {
        return "none".to_string();
    }
    tally
        .failures
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(tally: &Tally, elapsed: Duration) -> String {
    let failures = failures(tally);
    format!(
        "sandpipe: summary: {} events in, {} out, {} dropped, {} lines skipped, {} webhooks; failures: {}; {:.1} s, {:.0} events/s; peak RSS {}",
        tally.events_in,
        tally.events_out,
        tally.dropped,
        tally.skipped_lines,
        tally.webhooks,
        failures,
        elapsed.as_secs_f64(),
        tally.events_in as f64 / elapsed.as_secs_f64(),
        peak_rss().map_or("unknown".to_string(), |kib| format!("{} MiB", kib / 1024)),
    )
}

/// The process's peak resident set size in KiB (Linux: `VmHWM` in /proc/self/status).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
