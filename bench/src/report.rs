//! `BENCHMARKS.md` and the throughput chart, from one run's figures.

use crate::sandpipe::Micro;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One timed chain run.
pub struct Run {
    pub name: String,
    pub threads: usize,
    pub seconds: f64,
    pub events: usize,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

pub struct Report {
    pub count: usize,
    pub bytes: usize,
    pub runs: Vec<Run>,
    pub micro: Micro,
    pub implementations: usize,
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

impl Report {
    fn run(&self, name: &str, threads: usize) -> &Run {
        self.runs
            .iter()
            .find(|r| r.name == name && r.threads == threads)
            .expect("every run is measured")
    }

    fn ratio(&self, a: &str, b: &str, threads: usize) -> f64 {
        self.run(a, threads).per_second() / self.run(b, threads).per_second()
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.micro;
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
            "- Input: {} generated events (deterministic), {:.2} KB on average; chain geoip-enricher → hello-world → property-filter (examples/geoip-chain.json) with the GeoLite2-City database",
            self.count,
            self.bytes as f64 / self.count as f64 / 1000.0
        );
        let _ = writeln!(
            md,
            "- Equality: all {} runs produced identical output for every event before any time was reported",
            self.implementations
        );
        let _ = writeln!(md, "- Whole run: {:.0} s\n", self.total.as_secs_f64());

        let _ = writeln!(md, "## Chain throughput\n");
        let _ = writeln!(
            md,
            "| implementation | threads | events/s | µs/event | vs Node vm | vs isolated-vm | vs native |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for run in &self.runs {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.1} | {:.2}× | {:.2}× | {:.2}× |",
                run.name,
                run.threads,
                run.per_second(),
                1e6 / run.per_second(),
                self.ratio(&run.name, "Node vm", run.threads),
                self.ratio(&run.name, "Node isolated-vm", run.threads),
                self.ratio(&run.name, "native Rust", run.threads)
            );
        }
        let _ = writeln!(md, "\n![throughput](bench/throughput.svg)\n");

        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| target | measured | met |\n|---|---:|:---:|");
        let yes = |ok: bool| if ok { "yes" } else { "**no**" };
        let targets: Vec<(String, String, bool)> = vec![
            (
                "sandpipe ≥ 1.5× Node vm, 2 threads".into(),
                format!("{:.2}×", self.ratio("sandpipe", "Node vm", 2)),
                self.ratio("sandpipe", "Node vm", 2) >= 1.5,
            ),
            (
                "sandpipe ≥ 2× isolated-vm, 2 threads".into(),
                format!("{:.2}×", self.ratio("sandpipe", "Node isolated-vm", 2)),
                self.ratio("sandpipe", "Node isolated-vm", 2) >= 2.0,
            ),
            (
                "sandpipe ≥ 1.0× Node vm, 1 thread".into(),
                format!("{:.2}×", self.ratio("sandpipe", "Node vm", 1)),
                self.ratio("sandpipe", "Node vm", 1) >= 1.0,
            ),
            (
                "sandpipe within 4× of native (1 thread)".into(),
                format!(
                    "{:.1}× slower",
                    1.0 / self.ratio("sandpipe", "native Rust", 1)
                ),
                1.0 / self.ratio("sandpipe", "native Rust", 1) <= 4.0,
            ),
            (
                "≤ 10 µs to instantiate a cached module".into(),
                format!(
                    "{:.1} µs (the module); {:.1} µs with the connector loaded",
                    micros(m.instantiate_module),
                    micros(m.instantiate)
                ),
                micros(m.instantiate_module) <= 10.0,
            ),
            (
                "≤ 5 µs boundary cost, 1 KB event".into(),
                format!("{:.1} µs", micros(m.boundary[1].1)),
                micros(m.boundary[1].1) <= 5.0,
            ),
            (
                "≤ 2 MiB resident per warm instance".into(),
                format!("{:.2} MiB", m.rss_per_instance as f64 / (1 << 20) as f64),
                m.rss_per_instance <= 2 << 20,
            ),
        ];
        for (target, measured, ok) in &targets {
            let _ = writeln!(md, "| {target} | {measured} | {} |", yes(*ok));
        }

        let _ = writeln!(md, "\n## Micro-benchmarks (sandpipe)\n");
        let _ = writeln!(md, "| what | figure |\n|---|---:|");
        let _ = writeln!(
            md,
            "| instantiate the cached plugin module from the pool (copy-on-write), alone | {:.1} µs |\n| a connector ready to call: plugin instance + bundle linked + connector top level run | {:.1} µs |",
            micros(m.instantiate_module),
            micros(m.instantiate)
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
                "| empty connector call, {:.1} KB event | {:.1} µs |",
                *size as f64 / 1000.0,
                micros(*took)
            );
        }
        let _ = writeln!(
            md,
            "| resident memory per warm instance (1,000 instances) | {:.2} MiB |",
            m.rss_per_instance as f64 / (1 << 20) as f64
        );
        for (length, took) in &m.chain_length {
            let _ = writeln!(
                md,
                "| chain of {length} × hello-world, 1 KB event | {:.1} µs/event |",
                micros(*took)
            );
        }
        md.push_str(include_str!("analysis.md"));
        md
    }

    /// A horizontal bar chart of events per second, per implementation and thread count.
    pub fn chart(&self, path: &Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = self.runs.iter().map(Run::per_second).fold(0.0, f64::max) * 1.1;
        let labels: Vec<String> = self
            .runs
            .iter()
            .map(|r| format!("{} ×{}", r.name, r.threads))
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Chain throughput, {} events (events/s, higher is better)",
                    self.count
                ),
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..max, (0..self.runs.len()).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(self.runs.iter().enumerate().map(|(i, run)| {
            let colour = match run.name.as_str() {
                "sandpipe" => RGBColor(0x1d, 0x4a, 0xff),
                "native Rust" => RGBColor(0x55, 0x55, 0x55),
                "Node vm" => RGBColor(0x3c, 0x87, 0x3a),
                _ => RGBColor(0xe0, 0x8a, 0x00),
            };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (run.per_second(), SegmentValue::Exact(i + 1)),
                ],
                colour.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        root.present()?;
        Ok(())
    }
}
