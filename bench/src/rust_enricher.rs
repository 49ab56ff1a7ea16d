//! The GeoIP chain with its enricher written in Rust (`examples/rust-geoip-enricher`,
//! a standalone bundle) against the same chain all in JavaScript, and the
//! enricher alone in each language, all in sandpipe on the same events, 1 and
//! 2 threads, rounds interleaved; every round's outputs must be byte-identical
//! to the all-JavaScript chain's. Then each connector's own cost per event
//! in each language (its `processEvent` call's fuel and wall time, median),
//! next to a pass-through connector's: what crossing the boundary costs.

use crate::measure::{Setup, THREADS, compare};
use crate::sandpipe::{self, ChainBundles};
use crate::workload::Workload;
use sandpipe_runtime::Call;
use std::fmt::Write as _;

/// Events per second (median of the rounds) of both chains at one thread count.
pub struct Row {
    /// The enricher alone (a chain of one), or the whole GeoIP chain.
    pub alone: bool,
    pub threads: usize,
    pub all_js: f64,
    pub rust_enricher: f64,
}

/// One connector's `processEvent` call, median over the events.
pub struct CallCost {
    pub fuel: u64,
    pub micros: f64,
}

/// The same connector's call in each language.
pub struct CallRow {
    pub connector: &'static str,
    pub javascript: CallCost,
    pub rust: CallCost,
}

/// The measured rows.
pub struct RustEnricher {
    pub rows: Vec<Row>,
    pub calls: Vec<CallRow>,
}

/// Median fuel and µs of the one connector's `processEvent` calls over
/// `lines` (after `warmup`), in a chain of one on this thread.
fn call_cost(setup: &Setup, bundles: &ChainBundles) -> CallCost {
    let mut chain = bundles.chain(setup.runtime, sandpipe::Isolation::Instance);
    let event = |line: &String| serde_json::from_str(line).expect("valid JSON");
    for line in setup.warmup {
        chain.process(event(line));
    }
    let (mut fuel, mut micros) = (Vec::new(), Vec::new());
    for line in setup.lines {
        for call in chain.process(event(line)).calls {
            if call.call == Call::ProcessEvent {
                fuel.push(call.fuel);
                micros.push(call.duration.as_secs_f64() * 1e6);
            }
        }
    }
    fuel.sort_unstable();
    micros.sort_by(f64::total_cmp);
    CallCost {
        fuel: fuel[fuel.len() / 2],
        micros: micros[micros.len() / 2],
    }
}

type Connectors = Vec<(std::path::PathBuf, serde_json::Value)>;

/// The GeoIP chain's connectors all in JavaScript, and with the Rust
/// enricher first; with `alone`, only the enricher.
fn chains(setup: &Setup, alone: bool) -> (Connectors, Connectors) {
    let mut js = Workload::GeoIp.connectors(setup.root);
    if alone {
        js.truncate(1);
    }
    let mut rust = js.clone();
    rust[0].0 = setup.root.join("examples/rust-geoip-enricher");
    (js, rust)
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Runs both chains `repetitions` times at each thread count, whole and alone.
pub fn measure(setup: &Setup, repetitions: usize) -> anyhow::Result<RustEnricher> {
    let geoip = Some(setup.node.geoip);
    let mut rows = Vec::new();
    for alone in [false, true] {
        let (js, rust) = chains(setup, alone);
        let js = ChainBundles::build(setup.runtime, &js, geoip)?;
        let rust = ChainBundles::build(setup.runtime, &rust, geoip)?;
        let what = if alone {
            "enricher alone"
        } else {
            "GeoIP chain"
        };
        for threads in THREADS {
            let (mut js_rates, mut rust_rates) = (Vec::new(), Vec::new());
            for round in 1..=repetitions {
                let run = |bundles| {
                    sandpipe::run_chain(
                        setup.runtime,
                        bundles,
                        setup.lines,
                        setup.warmup,
                        threads,
                        sandpipe::Isolation::Instance,
                    )
                };
                let (reference, js_took) = run(&js);
                let (out, rust_took) = run(&rust);
                compare(&reference, &out, "all JavaScript", "with the Rust enricher")?;
                eprintln!(
                    "bench: {what}, Rust enricher × {threads} thread(s), round {round}/{repetitions}: outputs equal to all JavaScript"
                );
                js_rates.push(setup.lines.len() as f64 / js_took.as_secs_f64());
                rust_rates.push(setup.lines.len() as f64 / rust_took.as_secs_f64());
            }
            rows.push(Row {
                alone,
                threads,
                all_js: median(js_rates),
                rust_enricher: median(rust_rates),
            });
        }
    }
    let mut calls = Vec::new();
    for (connector, javascript, rust) in [
        (
            "GeoIP enricher",
            setup.root.join("examples/geoip-enricher"),
            setup.root.join("examples/rust-geoip-enricher"),
        ),
        (
            "pass-through (the boundary alone)",
            setup.root.join("bench/connectors/pass-through"),
            setup.root.join("bench/connectors/rust-pass-through"),
        ),
    ] {
        let cost = |dir: std::path::PathBuf| -> anyhow::Result<CallCost> {
            let bundles =
                ChainBundles::build(setup.runtime, &[(dir, serde_json::json!({}))], geoip)?;
            Ok(call_cost(setup, &bundles))
        };
        calls.push(CallRow {
            connector,
            javascript: cost(javascript)?,
            rust: cost(rust)?,
        });
    }
    Ok(RustEnricher { rows, calls })
}

impl RustEnricher {
    /// The report's section.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "\n## GeoIP chain with the enricher in Rust\n");
        let _ = writeln!(
            md,
            "The GeoIP chain with `examples/rust-geoip-enricher` (a standalone Rust bundle) in place of the JavaScript enricher, next to the same JavaScript `hello-world` and `property-filter`, against the chain all in JavaScript; and the enricher alone (a chain of one) in each language. Both in sandpipe on the same events; median events/s of the rounds; every round's outputs byte-identical to the all-JavaScript chain's.\n"
        );
        let _ = writeln!(
            md,
            "| chain | threads | all JavaScript | Rust enricher | speed-up |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.2}× |",
                if row.alone {
                    "enricher alone"
                } else {
                    "GeoIP chain"
                },
                row.threads,
                row.all_js,
                row.rust_enricher,
                row.rust_enricher / row.all_js
            );
        }
        let _ = writeln!(
            md,
            "\nEach connector's own cost per event: its `processEvent` call (fuel, and wall time with the host's work inside the call, such as the GeoIP lookup), median over the same events, one thread, in a chain of one. The pass-through connector returns the event it is given, so its call is the boundary alone: the host writing the event into the instance, the guest reading it into its own values and writing it back, the host checking the result.\n"
        );
        let _ = writeln!(
            md,
            "| connector | JavaScript fuel | Rust fuel | JavaScript µs | Rust µs | speed-up (µs) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for row in &self.calls {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.1} | {:.2}× |",
                row.connector,
                row.javascript.fuel,
                row.rust.fuel,
                row.javascript.micros,
                row.rust.micros,
                row.javascript.micros / row.rust.micros
            );
        }
        md.push_str(&self.bound());
        md
    }

    /// What swapping one connector can give the whole chain (one thread):
    /// only the enricher's own call changes, the other connectors and the
    /// host's work per event stay.
    fn bound(&self) -> String {
        let chain = self.rows.iter().find(|row| !row.alone && row.threads == 1);
        let enricher = self.calls.first();
        let (Some(chain), Some(enricher)) = (chain, enricher) else {
            return String::new();
        };
        let event = 1e6 / chain.all_js;
        let (javascript, rust) = (enricher.javascript.micros, enricher.rust.micros);
        let rest = event - javascript;
        if rest <= 0.0 {
            return String::new();
        }
        format!(
            "
Only the enricher changes in the GeoIP chain: an event of the all-JavaScript chain takes {event:.0} µs (one thread), of which the JavaScript enricher's call is {javascript:.1} µs; the rest ({rest:.0} µs: the JavaScript `hello-world` and `property-filter`, and the host's work per event) stays. With the Rust call's {rust:.1} µs in its place the chain can be at most {expected:.2}× faster ({free:.2}× if the enricher cost nothing); measured: {measured:.2}×.\n",
            expected = event / (rest + rust),
            free = event / rest,
            measured = chain.rust_enricher / chain.all_js,
        )
    }
}
