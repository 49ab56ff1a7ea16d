//! The Node.js baselines: `bench/node/chain.js` as a child process, one per
//! timed run, in one of its three hosts.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How `chain.js` hosts the connectors (its header says how each is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// A `vm` context per connector, as PostHog's plugin server.
    Vm,
    /// An isolated-vm isolate per connector, called synchronously.
    IsolatedSync,
    /// An isolated-vm isolate per connector, called asynchronously.
    IsolatedAsync,
}

impl Host {
    fn mode(self) -> &'static str {
        match self {
            Host::Vm => "vm",
            Host::IsolatedSync => "ivm-sync",
            Host::IsolatedAsync => "ivm-async",
        }
    }
}

/// One run's files: the events, the warm-up events, the GeoIP database.
pub struct Inputs<'a> {
    pub events: &'a Path,
    pub warmup: &'a Path,
    pub geoip: &'a Path,
}

/// Runs `connectors` (directory, config) in `host` on `threads` worker threads;
/// returns the outputs in input order and the time `chain.js` measured.
pub fn run(
    bench: &Path,
    host: Host,
    threads: usize,
    inputs: &Inputs,
    connectors: &[(PathBuf, Value)],
) -> anyhow::Result<(Vec<String>, Duration)> {
    let out = inputs
        .events
        .with_file_name(format!("node-{}-{threads}.ndjson", host.mode()));
    let spec = json!({
        "mode": host.mode(),
        "threads": threads,
        "events": inputs.events,
        "warmup": inputs.warmup,
        "out": out,
        "geoip": inputs.geoip,
        "connectors": connectors
            .iter()
            .map(|(dir, config)| json!({"dir": dir, "config": config}))
            .collect::<Vec<_>>(),
    });
    let output = Command::new("node")
        .arg(bench.join("node/chain.js"))
        .arg(spec.to_string())
        .output()
        .context("running node (Node.js 20 is required)")?;
    if !output.status.success() {
        bail!(
            "node chain.js {} on {threads} thread(s) failed ({}): {}",
            host.mode(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("node's report")?;
    let seconds = report["seconds"]
        .as_f64()
        .context("node reported no time")?;
    let text = std::fs::read_to_string(&out)?;
    std::fs::remove_file(&out)?;
    // Node's JSON text, re-serialised as the Rust implementations write theirs.
    let lines = text
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value) => value.to_string(),
            Err(_) => line.to_string(),
        })
        .collect();
    Ok((lines, Duration::from_secs_f64(seconds)))
}

/// `node --version`.
pub fn version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "not found".into())
}
