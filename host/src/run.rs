//! `sandpipe run CHAIN.json [--events FILE] [--webhooks FILE]`: NDJSON events
//! in, one JSON line per input line out, so output line N answers input line
//! N: the event after the chain, `null` when a connector dropped it, or
//! `{"error": "...", "line": N}` for a line that is not an event (the rule
//! `serve` applies: `event_rule`). Connector console output, errors (each
//! preceded by its input line), progress, the summary and the cost per call go
//! to stderr; `--strict` exits non-zero when any connector call failed.

use crate::chain_file;
use anyhow::Context;
use sandpipe_abi::LogLevel;
use sandpipe_runtime::{Call, Chain, ChainOutput, Export, LazySqliteStorage, LogEntry, LogSink};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
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

thread_local! {
    /// The input line this thread is running (0: none, as while the chain loads).
    static INPUT_LINE: Cell<usize> = const { Cell::new(0) };
}

/// Connector log lines on stderr, as `StderrLogs` writes them, an error or a
/// warning preceded by the input line it happened on (`events.ndjson:12:
/// [name (0)] error: …`).
struct RunLogs {
    /// The input's name.
    source: String,
}

impl LogSink for RunLogs {
    fn record(&self, entry: LogEntry) {
        match INPUT_LINE.get() {
            line if line > 0 && entry.level >= LogLevel::Warn => {
                eprintln!("{}:{line}: {entry}", self.source)
            }
            _ => eprintln!("{entry}"),
        }
    }
}

/// `sandpipe run`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The chain file: {"connectors": [{"path": "DIR or FILE.wasm", "config": {...}}, ...]}.
    chain: PathBuf,
    /// Read events from this file instead of stdin (`-` is stdin).
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
    /// Run the chain on this many threads, each with its own instances of the
    /// connectors (`meta.cache` and `meta.storage` shared); output stays in input order.
    /// At most 256.
    #[arg(long, default_value = "1", value_parser = threads_arg)]
    threads: NonZeroUsize,
    /// The chain's isolation level, over the chain file's `isolation`:
    /// `instance` (each connector its own instance) or `shared` (its
    /// JavaScript connectors in one instance, faster, less isolated from each
    /// other: SECURITY.md, "Isolation levels").
    #[arg(long, value_enum)]
    isolation: Option<chain_file::Isolation>,
    #[command(flatten)]
    metering: crate::MeteringArg,
}

/// Calls of one connector's `onEvent` for one event, or of its
/// `exportEvents` for one batch, before `run` gives up (as many as `serve`
/// makes by default, `--webhook-max-attempts`); `run` makes them at once,
/// without serve's backoff.
const ON_EVENT_ATTEMPTS: u32 = 5;

/// The outcome of an `onEvent` call or an `exportEvents` batch that did not
/// succeed at once, on stderr (each failed call is already logged for its
/// connector), said of `place` (`SOURCE:LINE`, the line whose event made the
/// call); a final failure counts as the connector's failure.
fn report_export(place: &str, export: &Export, tally: &mut Tally) {
    let what = match export.call {
        Call::ExportEvents => format!(
            "exportEvents of {} (a batch of {} event{})",
            export.connector,
            export.events,
            if export.events == 1 { "" } else { "s" }
        ),
        _ => format!("onEvent of {}", export.connector),
    };
    match &export.error {
        None if export.attempts > 1 => eprintln!(
            "sandpipe: {place}: {what} succeeded on attempt {}",
            export.attempts
        ),
        None => {}
        Some(error) => {
            match (export.attempts, error.calls_again()) {
                (1, false) => eprintln!(
                    "sandpipe: {place}: {what} failed; not called again (only a RetryError is)"
                ),
                (attempts, false) => eprintln!(
                    "sandpipe: {place}: {what} failed on attempt {attempts}, not with a RetryError; given up"
                ),
                (attempts, true) => {
                    eprintln!("sandpipe: {place}: {what} failed {attempts} times; given up")
                }
            }
            *tally.failures.entry(export.connector.clone()).or_default() += 1;
        }
    }
}

/// What a chain's `exportEvents` buffers held when the input ended, sent,
/// and what those calls captured.
type Flushed = (Vec<Export>, Vec<serde_json::Value>);

/// Sends what `chain`'s `exportEvents` buffers hold.
fn flush_exports(chain: &mut Chain) -> Flushed {
    let exports = chain.flush_exports(ON_EVENT_ATTEMPTS);
    (exports, chain.take_captured())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let strict = args.strict;
    let chain = args.chain.as_path();
    let events = args
        .events
        .as_deref()
        .filter(|path| *path != Path::new("-"));
    let webhooks = args.webhooks.as_deref();
    let storage = args.storage.as_deref();
    let geoip = args.geoip.database();
    let captured = args.captured.as_deref();
    let always_summarise = args.summary;
    let threads = args.threads.get();
    let runtime = args.metering.runtime()?;
    let storage_path =
        storage.map_or_else(|| chain_file::default_storage(chain), Path::to_path_buf);
    let storage = Arc::new(LazySqliteStorage::new(storage_path));
    let (input, source): (Box<dyn BufRead + Send>, String) = match events {
        Some(path) => (
            Box::new(BufReader::new(
                File::open(path).with_context(|| format!("reading {}", path.display()))?,
            )),
            path.display().to_string(),
        ),
        None => (Box::new(BufReader::new(std::io::stdin())), "stdin".into()),
    };
    let logs = Arc::new(RunLogs {
        source: source.clone(),
    });
    let mut plan = chain_file::load(&runtime, chain, logs, storage, geoip)?;
    if let Some(isolation) = args.isolation {
        plan.isolate(isolation);
    }
    let mut output = Output {
        out: BufWriter::new(std::io::stdout().lock()),
        webhooks: webhooks.map(NdjsonFile::create).transpose()?,
        captured: captured.map(NdjsonFile::create).transpose()?,
        source,
        started: Instant::now(),
        next_progress: Instant::now() + PROGRESS_EVERY,
        tally: Tally::default(),
        costs: always_summarise.then(crate::cost::Costs::default),
    };
    // Connectors that left a shared instance, in any of the threads' chains.
    let moved_out = if threads == 1 {
        let mut chain = plan.chain(&runtime)?;
        let lines = || -> anyhow::Result<()> {
            for (index, line) in input_lines(input).enumerate() {
                let number = index + 1;
                let line = line.with_context(|| format!("{}:{number}: reading", output.source))?;
                output.write(run_line(&mut chain, number, &line))?;
            }
            Ok(())
        };
        let ran = lines();
        // What the buffers hold goes even when the input could not be read
        // to its end: those events' onEvent calls have been made.
        let flushed = output.flushed(flush_exports(&mut chain));
        ran.and(flushed)?;
        chain.moved_out().map(str::to_string).collect()
    } else {
        run_threads(&runtime, &plan, threads, input, &mut output)?
    };
    let Output {
        mut out,
        webhooks: webhook_out,
        captured: captured_out,
        started,
        tally,
        mut costs,
        ..
    } = output;
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
        eprintln!("{}", summary(&tally, elapsed, plan.isolation(), &moved_out));
    }
    for line in costs.iter_mut().flat_map(crate::cost::Costs::lines) {
        eprintln!("sandpipe: {line}");
    }
    if strict && !tally.failures.is_empty() {
        anyhow::bail!("--strict: connector calls failed ({})", failures(&tally));
    }
    Ok(())
}

/// One input line: its text, or why it is not text (it is not UTF-8),
/// which refuses that line alone.
type InputLine = Result<String, String>;

/// The input's lines, split as `BufRead::lines` splits them (at `\n`, a
/// `\r` before it dropped); a line that is not UTF-8 is an [`InputLine`]
/// refusal, not the end of the input. An error is the reader's own.
fn input_lines(mut input: impl BufRead) -> impl Iterator<Item = std::io::Result<InputLine>> {
    std::iter::from_fn(move || {
        let mut bytes = Vec::new();
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => None,
            Ok(_) => {
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                Some(Ok(String::from_utf8(bytes).map_err(|error| {
                    format!(
                        "not UTF-8: byte {} of the line does not begin a character",
                        error.utf8_error().valid_up_to() + 1
                    )
                })))
            }
            Err(error) => Some(Err(error)),
        }
    })
}

/// The most `--threads` a run takes: each thread readies its own instance
/// of every connector before the first line is read.
const MAX_THREADS: usize = 256;

/// `--threads N`: 1 to [`MAX_THREADS`].
fn threads_arg(value: &str) -> Result<NonZeroUsize, String> {
    let threads: NonZeroUsize = value.parse().map_err(|error| format!("{error}"))?;
    if threads.get() > MAX_THREADS {
        return Err(format!("at most {MAX_THREADS} threads"));
    }
    Ok(threads)
}

/// What one input line became.
enum Ran {
    /// Not an event: skipped, with why.
    Skipped { number: usize, why: String },
    /// The chain's output, and each `onEvent` on the event it kept.
    Event {
        number: usize,
        output: ChainOutput<Vec<u8>>,
        exports: Vec<Export>,
    },
}

/// Runs input line `number` through `chain`, then the connectors' `onEvent`
/// on the event it kept.
fn run_line(chain: &mut Chain, number: usize, line: &InputLine) -> Ran {
    let line = match line {
        Ok(text) => text,
        Err(why) => {
            return Ran::Skipped {
                number,
                why: why.clone(),
            };
        }
    };
    if line.trim().is_empty() {
        return Ran::Skipped {
            number,
            why: "empty line".into(),
        };
    }
    if let Some(why) = crate::event_rule::line_refusal(line) {
        return Ran::Skipped {
            number,
            why: why.into(),
        };
    }
    INPUT_LINE.set(number);
    let ran = run_event(chain, number, line);
    INPUT_LINE.set(0);
    ran
}

/// [`run_line`] for a line that may be an event.
fn run_event(chain: &mut Chain, number: usize, line: &str) -> Ran {
    match chain.process_json(line) {
        Ok(mut output) => {
            let exports = match &output.event {
                Some(event) => chain.export(event, ON_EVENT_ATTEMPTS),
                None => Vec::new(),
            };
            // What `onEvent` captured is this event's too.
            output.captured.extend(chain.take_captured());
            Ran::Event {
                number,
                output,
                exports,
            }
        }
        Err(error) => Ran::Skipped {
            number,
            why: error.to_string(),
        },
    }
}

/// Where results go, in input order, and what is counted on the way.
struct Output<'a> {
    out: BufWriter<std::io::StdoutLock<'a>>,
    webhooks: Option<NdjsonFile>,
    captured: Option<NdjsonFile>,
    /// The input's name, for messages.
    source: String,
    started: Instant,
    next_progress: Instant,
    tally: Tally,
    /// With `--summary`: every call's cost.
    costs: Option<crate::cost::Costs>,
}

impl Output<'_> {
    /// Reports the `exportEvents` batches sent when the input ended, and
    /// writes what they captured.
    fn flushed(&mut self, (exports, captured): Flushed) -> anyhow::Result<()> {
        let place = format!("{}: at the end of the input", self.source);
        for export in &exports {
            report_export(&place, export, &mut self.tally);
            if let Some(costs) = self.costs.as_mut() {
                costs.add(&export.calls);
            }
        }
        self.tally.captured += captured.len() as u64;
        if let Some(file) = self.captured.as_mut() {
            file.write_all(&captured)?;
        }
        Ok(())
    }

    /// Writes the next line's result (output line N answers input line N).
    fn write(&mut self, ran: Ran) -> anyhow::Result<()> {
        let tally = &mut self.tally;
        match ran {
            Ran::Skipped { number, why } => {
                eprintln!("sandpipe: {}:{number}: skipped: {why}", self.source);
                tally.skipped_lines += 1;
                let placeholder = serde_json::json!({ "error": why, "line": number });
                sandpipe_runtime::json::to_writer(&mut self.out, &placeholder)?;
            }
            Ran::Event {
                number,
                output: result,
                exports,
            } => {
                tally.events_in += 1;
                if let Some(costs) = self.costs.as_mut() {
                    costs.add(&result.calls);
                }
                for failure in &result.failures {
                    *tally.failures.entry(failure.connector.clone()).or_default() += 1;
                }
                match &result.event {
                    Some(event) => {
                        tally.events_out += 1;
                        self.out.write_all(event)?;
                        let place = format!("{}:{number}", self.source);
                        for export in &exports {
                            report_export(&place, export, tally);
                            if let Some(costs) = self.costs.as_mut() {
                                costs.add(&export.calls);
                            }
                        }
                    }
                    None => {
                        tally.dropped += 1;
                        self.out.write_all(b"null")?;
                    }
                }
                tally.webhooks += result.webhooks.len() as u64;
                tally.captured += result.captured.len() as u64;
                if let Some(file) = self.webhooks.as_mut() {
                    file.write_all(&result.webhooks)?;
                }
                if let Some(file) = self.captured.as_mut() {
                    file.write_all(&result.captured)?;
                }
            }
        }
        self.out.write_all(b"\n")?;
        if Instant::now() >= self.next_progress {
            self.out.flush()?;
            let elapsed = self.started.elapsed().as_secs_f64();
            eprintln!(
                "sandpipe: {} events, {:.0} events/s",
                tally.events_in,
                tally.events_in as f64 / elapsed
            );
            self.next_progress += PROGRESS_EVERY;
        }
        Ok(())
    }
}

/// Lines handed to a thread at a time: enough to make the hand-over cheap,
/// few enough that the threads stay evenly busy.
const LINES_PER_SHARE: usize = 64;

/// `--threads N`: the input is read here in shares of lines, each share is
/// run by whichever of the `threads` chains is free, and the results are
/// written back in input order.
fn run_threads(
    runtime: &sandpipe_runtime::Runtime,
    plan: &chain_file::ChainPlan,
    threads: usize,
    input: Box<dyn BufRead + Send>,
    output: &mut Output<'_>,
) -> anyhow::Result<BTreeSet<String>> {
    type Share = (usize, Vec<(usize, InputLine)>);
    let chains = (0..threads)
        .map(|_| plan.chain(runtime))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (share_tx, share_rx) = mpsc::sync_channel::<Share>(threads * 2);
    let share_rx = Mutex::new(share_rx);
    let (result_tx, result_rx) = mpsc::sync_channel::<(usize, Vec<Ran>)>(threads * 2);
    // Set when nothing more can be written (stdout closed): the reader stops.
    let stop = AtomicBool::new(false);
    let source = output.source.clone();
    std::thread::scope(|scope| -> anyhow::Result<BTreeSet<String>> {
        let stop = &stop;
        let reader = scope.spawn(move || -> anyhow::Result<()> {
            let mut share = Vec::with_capacity(LINES_PER_SHARE);
            let mut next = 0;
            for (index, line) in input_lines(input).enumerate() {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let number = index + 1;
                let line = line.with_context(|| format!("{source}:{number}: reading"))?;
                share.push((number, line));
                if share.len() == LINES_PER_SHARE {
                    let full = std::mem::replace(&mut share, Vec::with_capacity(LINES_PER_SHARE));
                    if share_tx.send((next, full)).is_err() {
                        return Ok(());
                    }
                    next += 1;
                }
            }
            if !share.is_empty() {
                let _ = share_tx.send((next, share));
            }
            Ok(())
        });
        let workers: Vec<_> = chains
            .into_iter()
            .map(|mut chain| {
                let (share_rx, result_tx) = (&share_rx, result_tx.clone());
                scope.spawn(move || {
                    while let Ok((index, lines)) =
                        share_rx.lock().expect("no thread panics holding it").recv()
                    {
                        let ran = lines
                            .iter()
                            .map(|(number, line)| run_line(&mut chain, *number, line))
                            .collect();
                        if result_tx.send((index, ran)).is_err() {
                            break;
                        }
                    }
                    let flushed = flush_exports(&mut chain);
                    let moved_out = chain.moved_out().map(str::to_string).collect::<Vec<_>>();
                    (flushed, moved_out)
                })
            })
            .collect();
        drop(result_tx);
        let written = write_in_order(result_rx, output);
        if written.is_err() {
            // The chains stop as their results find no receiver; the reader
            // stops at its next line, once what it is sending is taken.
            stop.store(true, Ordering::Relaxed);
            while share_rx
                .lock()
                .expect("no thread panics holding it")
                .recv()
                .is_ok()
            {}
        }
        reader.join().expect("the reader does not panic")?;
        let mut moved_out = BTreeSet::new();
        for worker in workers {
            let (flushed, moved) = worker.join().expect("a chain's thread does not panic");
            if written.is_ok() {
                output.flushed(flushed)?;
            }
            moved_out.extend(moved);
        }
        written.map(|()| moved_out)
    })
}

/// Writes each share's results when its turn comes (they arrive in any order).
fn write_in_order(
    results: mpsc::Receiver<(usize, Vec<Ran>)>,
    output: &mut Output<'_>,
) -> anyhow::Result<()> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    for (index, ran) in results {
        waiting.insert(index, ran);
        while let Some(ran) = waiting.remove(&next) {
            for one in ran {
                output.write(one)?;
            }
            next += 1;
        }
    }
    Ok(())
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

/// The summary line (the isolation level named when it is not the default,
/// with the connectors that left the shared instance).
fn summary(
    tally: &Tally,
    elapsed: Duration,
    isolation: chain_file::Isolation,
    moved_out: &BTreeSet<String>,
) -> String {
    let failures = failures(tally);
    let level = match isolation {
        chain_file::Isolation::Instance => String::new(),
        chain_file::Isolation::Shared if moved_out.is_empty() => "; shared instance".into(),
        chain_file::Isolation::Shared => format!(
            "; shared instance, but on instances of their own after an error there: {}",
            moved_out
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "sandpipe: summary: {} events in, {} out, {} dropped, {} lines skipped, {} webhooks; failures: {}; {:.1} s, {:.0} events/s; peak RSS {}{level}",
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
