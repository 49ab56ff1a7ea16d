//! The Node.js baselines: `bench/node/chain.js` in `vm` contexts (PostHog's
//! plugin server) and in isolated-vm isolates, run as a child process.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs the Node chain in `mode` (`vm` or `ivm`) on `threads` worker threads.
pub fn run(
    bench: &Path,
    mode: &str,
    threads: usize,
    events: &Path,
    geoip: &Path,
    dirs: &[std::path::PathBuf],
) -> anyhow::Result<(Vec<String>, Duration)> {
    let out = events.with_file_name(format!("node-{mode}-{threads}.ndjson"));
    let output = Command::new("node")
        .arg(bench.join("node/chain.js"))
        .args([mode, &threads.to_string()])
        .args([events, &out, geoip])
        .args(dirs)
        .output()
        .context("running node (Node.js 20 is required)")?;
    if !output.status.success() {
        bail!(
            "node chain.js {mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("node's report")?;
    let seconds = report["seconds"]
        .as_f64()
        .context("node reported no time")?;
    let lines = std::fs::read_to_string(&out)?
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
