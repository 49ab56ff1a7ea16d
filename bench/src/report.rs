//! `BENCHMARKS.md` and the throughput chart, from one run's figures.

use crate::measure::{Implementation, Measured, Measurement, THREADS};
use crate::sandpipe::Micro;
use crate::workload::Workload;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct Report {
    /// Timed events, warm-up events and rounds per chain and thread count.
    pub count: usize,
    pub warmup: usize,
    pub repetitions: usize,
    /// Bytes of the timed events' JSON.
    pub bytes: usize,
    pub measured: Measured,
    pub micro: Micro,
    /// The GeoIP chain with the Rust enricher against all JavaScript.
    pub rust: crate::rust_enricher::RustEnricher,
    pub node: String,
    pub total: Duration,
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or("?".into(), |kib| format!("{} GiB", kib / (1 << 20)));
    format!("{model}, {cores} cores, {memory}")
}

/// The version of `package` in Cargo.lock.
fn locked_version(package: &str) -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .unwrap_or_default();
    let needle = format!("name = \"{package}\"\nversion = \"");
    lock.find(&needle)
        .map(|at| {
            lock[at + needle.len()..]
                .split('"')
                .next()
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn npm_version(package: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node/node_modules")
        .join(package)
        .join("package.json");
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["version"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

impl Report {
    fn find(
        &self,
        workload: Workload,
        implementation: Implementation,
        threads: usize,
    ) -> &Measurement {
        self.measured
            .measurements
            .iter()
            .find(|m| {
                m.workload == workload && m.implementation == implementation && m.threads == threads
            })
            .expect("every implementation runs every chain at every thread count")
    }

    /// Median events/s of `a` over `b`'s, on one chain at one thread count.
    fn ratio(
        &self,
        workload: Workload,
        a: Implementation,
        b: Implementation,
        threads: usize,
    ) -> f64 {
        self.find(workload, a, threads).median() / self.find(workload, b, threads).median()
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        for workload in Workload::ALL {
            self.chain_table(&mut md, workload);
        }
        let _ = writeln!(md, "![throughput](bench/throughput.svg)\n");
        self.targets(&mut md);
        self.micro_table(&mut md);
        md.push_str(&self.rust.markdown());
        md.push_str(include_str!("analysis.md"));
        md
    }

    fn header(&self, md: &mut String) {
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `cargo xtask bench` (bench/src/main.rs) on {}; do not edit by hand.\n",
            command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        );
        let _ = writeln!(md, "- Machine: {}", machine());
        let _ = writeln!(
            md,
            "- Versions: sandpipe {} ({}), {}, wasmtime {}, Node.js {}, isolated-vm {}, @maxmind/geoip2-node {}",
            env!("CARGO_PKG_VERSION"),
            command("git", &["rev-parse", "--short", "HEAD"]),
            command("rustc", &["--version"]),
            locked_version("wasmtime"),
            self.node,
            npm_version("isolated-vm"),
            npm_version("@maxmind/geoip2-node")
        );
        let _ = writeln!(
            md,
            "- Input: {} generated events (deterministic), {:.2} KB on average, through each chain below",
            self.count,
            self.bytes as f64 / self.count as f64 / 1000.0
        );
        let _ = writeln!(
            md,
            "- Warm-up: every implementation first runs the same {} other generated events through each of its chains, untimed",
            self.warmup
        );
        let _ = writeln!(
            md,
            "- Timed window, the same for all: from the start of the threads' work to the last thread's last output string in its vector (parsing each input line, the chain, serialising each output); set-up, warm-up, handing the outputs back and writing them are outside it"
        );
        let _ = writeln!(
            md,
            "- Repetitions: {} rounds per chain and thread count, the implementations interleaved in each round ({}); the figures are the median round, with the slowest and fastest",
            self.repetitions,
            Implementation::ALL.map(Implementation::name).join(", ")
        );
        let _ = writeln!(
            md,
            "- Threads: the events split into contiguous shares, one per thread, each thread with its own chain (Node: worker threads)"
        );
        let _ = writeln!(
            md,
            "- Equality: all {} runs produced identical output for every event (compared with native Rust's for the same chain and thread count) before any time was kept",
            self.measured.compared
        );
        let _ = writeln!(md, "- Whole run: {:.0} s\n", self.total.as_secs_f64());
        let _ = writeln!(
            md,
            "Implementations (`bench/node/chain.js` has the Node hosts):\n"
        );
        for implementation in Implementation::ALL {
            let _ = writeln!(
                md,
                "- **{}**: {}",
                implementation.name(),
                implementation.method()
            );
        }
        let _ = writeln!(md);
    }

    fn chain_table(&self, md: &mut String, workload: Workload) {
        let _ = writeln!(md, "## {}\n", workload.title());
        let _ = writeln!(md, "{}.\n", workload.description());
        let _ = writeln!(
            md,
            "| implementation | threads | events/s (median) | slowest–fastest | µs/event | vs Node vm | vs isolated-vm (sync) | vs native |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for threads in THREADS {
            for implementation in Implementation::ALL {
                let m = self.find(workload, implementation, threads);
                let ratio = |to| self.ratio(workload, implementation, to, threads);
                let _ = writeln!(
                    md,
                    "| {} | {threads} | {:.0} | {:.0}–{:.0} | {:.1} | {:.2}× | {:.2}× | {:.2}× |",
                    implementation.name(),
                    m.median(),
                    m.slowest(),
                    m.fastest(),
                    1e6 / m.median(),
                    ratio(Implementation::NodeVm),
                    ratio(Implementation::IsolatedSync),
                    ratio(Implementation::Native),
                );
            }
        }
        let _ = writeln!(md);
    }

    fn targets(&self, md: &mut String) {
        let m = &self.micro;
        let _ = writeln!(md, "## Targets (issue 15)\n");
        let _ = writeln!(
            md,
            "From this run's medians (default isolation: one instance per connector).\n"
        );
        let _ = writeln!(md, "| target | measured | met |\n|---|---:|:---:|");
        let mut targets: Vec<(String, String, bool)> = Vec::new();
        let mut shared: Vec<String> = Vec::new();
        for (to, at_least) in [
            (Implementation::NodeVm, 1.0),
            (Implementation::IsolatedSync, 2.0),
        ] {
            for workload in Workload::ALL {
                for threads in THREADS {
                    let ratio = self.ratio(workload, Implementation::Sandpipe, to, threads);
                    targets.push((
                        format!(
                            "sandpipe ≥ {at_least:.1}× {}, {}, {threads} thread{}",
                            to.name(),
                            workload.title(),
                            if threads == 1 { "" } else { "s" }
                        ),
                        format!("{ratio:.2}×"),
                        ratio >= at_least,
                    ));
                }
            }
        }
        // The shared-instance level, beside the targets (they are judged on
        // the default level, which isolates connectors from each other as
        // isolated-vm's isolates do; Node vm isolates none).
        for to in [Implementation::NodeVm, Implementation::IsolatedSync] {
            for workload in Workload::ALL {
                let ratios: Vec<String> = THREADS
                    .iter()
                    .map(|&threads| {
                        format!(
                            "{:.2}×",
                            self.ratio(workload, Implementation::SandpipeShared, to, threads)
                        )
                    })
                    .collect();
                shared.push(format!(
                    "{} vs {}, {}: {} (1 / 2 threads)",
                    Implementation::SandpipeShared.name(),
                    to.name(),
                    workload.title(),
                    ratios.join(" / ")
                ));
            }
        }
        for threads in THREADS {
            let slower = 1.0
                / self.ratio(
                    Workload::GeoIp,
                    Implementation::Sandpipe,
                    Implementation::Native,
                    threads,
                );
            targets.push((
                format!(
                    "sandpipe within 4× of native Rust, GeoIP chain, {threads} thread{}",
                    if threads == 1 { "" } else { "s" }
                ),
                format!("{slower:.1}× slower"),
                slower <= 4.0,
            ));
        }
        let (size, generated) = m.boundary_generated;
        targets.push((
            "≤ 5 µs boundary (an empty connector call), 1 KB event".into(),
            format!(
                "{:.1} µs on the benchmark's events ({:.2} KB); {:.1} µs on 1 KB of one string",
                micros(generated),
                size as f64 / 1000.0,
                micros(m.boundary[1].1)
            ),
            micros(generated) <= 5.0 && micros(m.boundary[1].1) <= 5.0,
        ));
        targets.push((
            "≤ 20 µs to a connector ready to call".into(),
            format!(
                "{:.1} µs ({:.1} µs of it the module's instantiation; made, readied and dropped: {:.1} µs)",
                micros(m.instantiate),
                micros(m.instantiate_module),
                micros(m.instance_cycle)
            ),
            micros(m.instantiate) <= 20.0,
        ));
        targets.push((
            "≤ 2 MiB resident per warm instance".into(),
            format!("{:.2} MiB", mib(m.rss_per_instance)),
            m.rss_per_instance <= 2 << 20,
        ));
        for (target, measured, ok) in &targets {
            let _ = writeln!(md, "| {target} | {measured} | {} |", yes(*ok));
        }
        let _ = writeln!(
            md,
            "\nBeside them, not counted (the shared-instance level gives up isolation between a chain's connectors, which isolated-vm's isolates keep and Node vm's contexts do not):\n"
        );
        for line in &shared {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md);
    }

    fn micro_table(&self, md: &mut String) {
        let m = &self.micro;
        let _ = writeln!(md, "## Micro-benchmarks (sandpipe)\n");
        let _ = writeln!(md, "| what | figure |\n|---|---:|");
        let _ = writeln!(
            md,
            "| instantiate the cached plugin module from the pool (copy-on-write), alone | {:.1} µs |\n| a connector ready to call: plugin instance + bundle linked + connector top level run | {:.1} µs |\n| the same connector made, readied and dropped (the pool resets its memory slot) | {:.1} µs |",
            micros(m.instantiate_module),
            micros(m.instantiate),
            micros(m.instance_cycle)
        );
        let _ = writeln!(
            md,
            "| upload → first event out, cold (admission + Cranelift compile) | {:.1} ms |",
            m.first_event_cold.as_secs_f64() * 1e3
        );
        let _ = writeln!(
            md,
            "| upload → first event out, module in the disk cache | {:.1} ms |",
            m.first_event_cached.as_secs_f64() * 1e3
        );
        for (size, took) in &m.boundary {
            let _ = writeln!(
                md,
                "| empty connector call, {:.1} KB event (one padded string) | {:.1} µs |",
                *size as f64 / 1000.0,
                micros(*took)
            );
        }
        let (size, took) = m.boundary_generated;
        let _ = writeln!(
            md,
            "| empty connector call, the benchmark's events ({:.2} KB on average, nested properties) | {:.1} µs |",
            size as f64 / 1000.0,
            micros(took)
        );
        let _ = writeln!(
            md,
            "| resident memory per warm instance (1,000 instances) | {:.2} MiB |",
            mib(m.rss_per_instance)
        );
        for (length, took) in &m.chain_length {
            let _ = writeln!(
                md,
                "| chain of {length} × hello-world, 1 KB event | {:.1} µs/event |",
                micros(*took)
            );
        }
    }

    /// Horizontal bars of events per second (the median round, a line from the
    /// slowest to the fastest), one panel per chain.
    pub fn chart(&self, path: &Path) -> anyhow::Result<()> {
        let rows = THREADS.len() * Implementation::ALL.len();
        let root = SVGBackend::new(path, (960, 2 * (60 + 28 * rows as u32))).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((Workload::ALL.len(), 1));
        for (panel, workload) in panels.iter().zip(Workload::ALL) {
            let bars: Vec<&Measurement> = THREADS
                .iter()
                .flat_map(|&threads| {
                    Implementation::ALL
                        .map(|implementation| self.find(workload, implementation, threads))
                })
                .collect();
            let max = bars.iter().map(|m| m.fastest()).fold(0.0, f64::max) * 1.08;
            let labels: Vec<String> = bars
                .iter()
                .map(|m| format!("{} ×{}", m.implementation.name(), m.threads))
                .collect();
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!(
                        "{}: events/s, median of {} rounds (higher is better)",
                        workload.title(),
                        self.repetitions
                    ),
                    ("sans-serif", 18),
                )
                .margin(10)
                .x_label_area_size(24)
                .y_label_area_size(170)
                .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .draw()?;
            chart.draw_series(bars.iter().enumerate().map(|(i, m)| {
                let colour = match m.implementation {
                    Implementation::Sandpipe => RGBColor(0x1d, 0x4a, 0xff),
                    Implementation::SandpipeShared => RGBColor(0x7a, 0x93, 0xff),
                    Implementation::Native => RGBColor(0x55, 0x55, 0x55),
                    Implementation::NodeVm => RGBColor(0x3c, 0x87, 0x3a),
                    Implementation::IsolatedSync => RGBColor(0xe0, 0x8a, 0x00),
                    Implementation::IsolatedAsync => RGBColor(0xf2, 0xc0, 0x6b),
                };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (m.median(), SegmentValue::Exact(i + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))?;
            // The spread: a line from the slowest round to the fastest.
            chart.draw_series(bars.iter().enumerate().map(|(i, m)| {
                PathElement::new(
                    vec![
                        (m.slowest(), SegmentValue::CenterOf(i)),
                        (m.fastest(), SegmentValue::CenterOf(i)),
                    ],
                    BLACK.stroke_width(2),
                )
            }))?;
        }
        root.present()?;
        Ok(())
    }
}
