//! The GeoIP chain with its enricher written in Rust (`examples/rust-geoip-enricher`,
//! a standalone bundle) against the same chain all in JavaScript, and the
//! enricher alone in each language, all in sandpipe on the same events, 1 and
//! 2 threads, rounds interleaved; every round's outputs must be byte-identical
//! to the all-JavaScript chain's.

use crate::measure::{Setup, THREADS, compare};
use crate::sandpipe::{self, ChainBundles};
use crate::workload::Workload;
use std::fmt::Write as _;

/// Events per second (median of the rounds) of both chains at one thread count.
pub struct Row {
    /// The enricher alone (a chain of one), or the whole GeoIP chain.
    pub alone: bool,
    pub threads: usize,
    pub all_js: f64,
    pub rust_enricher: f64,
}

/// The measured rows.
pub struct RustEnricher {
    pub rows: Vec<Row>,
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
                    sandpipe::run_chain(setup.runtime, bundles, setup.lines, setup.warmup, threads)
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
    Ok(RustEnricher { rows })
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
        md
    }
}
