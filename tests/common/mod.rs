//! Helpers shared by the end-to-end tests: one runtime per test binary, and
//! connectors built from inline sources.
#![allow(dead_code)]

pub mod backend;
pub mod server;

#[allow(unused_imports)]
pub use backend::*;
use sandpipe_runtime::{Bundle, Chain, Connector, Limits, MemoryLogs, Runtime, RuntimeOptions};
#[allow(unused_imports)]
pub use sandpipe_runtime::{Call, ConnectorOptions, Processed};
use serde_json::{Map, Value};
#[allow(unused_imports)]
pub use server::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The runtime of this test binary (one engine per process, as in production),
/// with its module cache in cargo's temporary directory.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let options = RuntimeOptions {
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("module-cache")),
            ..RuntimeOptions::default()
        };
        Runtime::new(options).expect("the runtime starts")
    })
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Writes a connector directory: `dir/index.js` and `dir/plugin.json`.
pub fn write_connector(dir: &Path, js: &str, plugin_json: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("index.js"), js).unwrap();
    std::fs::write(dir.join("plugin.json"), plugin_json).unwrap();
}

/// A connector directory with `index.js` and a `plugin.json` named `name`.
pub fn connector_dir(name: &str, js: &str, config_fields: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_connector(
        dir.path(),
        js,
        &format!(r#"{{"name": "{name}", "config": [{config_fields}]}}"#),
    );
    dir
}

/// Where the tests build every Rust connector (`CARGO_TARGET_DIR` of the
/// `sandpipe` processes they start): one target directory, so the standard
/// library and the SDK's dependencies are compiled once.
pub fn rust_guests_target() -> PathBuf {
    root().join("target/rust-guests")
}

/// Builds the connector directory `dir`: JavaScript, or Rust into [`rust_guests_target`].
pub fn build_dir(dir: &Path) -> Result<sandpipe_compiler::Built, sandpipe_compiler::BuildError> {
    match sandpipe_compiler::rust::is_rust(dir) {
        true => sandpipe_compiler::rust::build_in(dir, Some(&rust_guests_target())),
        false => sandpipe_compiler::build(runtime(), dir),
    }
}

/// Builds and admits the connector directory `dir`.
pub fn bundle_at(dir: &Path) -> Arc<Bundle> {
    let built = build_dir(dir).unwrap_or_else(|e| panic!("the connector builds: {e}"));
    runtime()
        .admit(built.bytes)
        .expect("the bundle is admitted")
}

/// Builds and admits a connector from inline JavaScript.
pub fn bundle(name: &str, js: &str) -> Arc<Bundle> {
    bundle_at(connector_dir(name, js, "").path())
}

/// Builds an example connector from `examples/`.
pub fn example(name: &str) -> Arc<Bundle> {
    bundle_at(&root().join("examples").join(name))
}

/// A connector at `position` with `config` resolved against its manifest: the
/// one place the tests construct a connector.
pub fn connector_with(
    bundle: Arc<Bundle>,
    position: usize,
    config: Value,
    limits: Limits,
    logs: &Arc<MemoryLogs>,
) -> Connector {
    let config: Map<String, Value> = config.as_object().cloned().unwrap_or_default();
    let resolved = bundle
        .manifest()
        .resolve_config(&config)
        .expect("config resolves");
    connector_with_options(
        bundle,
        position,
        resolved,
        ConnectorOptions {
            limits,
            logs: logs.clone(),
            ..ConnectorOptions::default()
        },
    )
}

/// A connector at `position`, its config already resolved, made with `options`.
pub fn connector_with_options(
    bundle: Arc<Bundle>,
    position: usize,
    config: sandpipe_manifest::ResolvedConfig,
    options: ConnectorOptions,
) -> Connector {
    runtime()
        .connector(bundle, position, config, options)
        .expect("the limits are within the engine's")
}

/// A connector from inline JavaScript, default limits, no config.
pub fn connector(name: &str, js: &str, position: usize, logs: &Arc<MemoryLogs>) -> Connector {
    connector_with(
        bundle(name, js),
        position,
        Value::Null,
        Limits::default(),
        logs,
    )
}

/// A chain of one connector: the directory `dir` built, with its config
/// defaults and default limits.
pub fn chain_of(dir: &Path, logs: &Arc<MemoryLogs>) -> Chain {
    Chain::new(vec![connector_with(
        bundle_at(dir),
        0,
        Value::Null,
        Limits::default(),
        logs,
    )])
}

/// The event `chain` makes of `event`, which no connector may fail: the
/// failures and `logs`' lines are the panic's message.
pub fn processed_cleanly(chain: &mut Chain, event: Value, logs: &MemoryLogs) -> Value {
    let out = chain.process(event);
    assert!(
        out.failures.is_empty(),
        "{:?} {:?}",
        out.failures,
        logs.lines()
    );
    out.event.expect("the chain keeps the event")
}

/// `sandpipe run` in `dir` of a chain of the one connector at `connector`
/// (written to `dir/chain.json`) on `dir/events.ndjson`, its webhooks written
/// to `dir/webhooks.ndjson`.
pub fn run_one_connector(dir: &Path, connector: &Path) -> std::process::Output {
    let chain = serde_json::json!({"connectors": [{"path": connector}]});
    std::fs::write(dir.join("chain.json"), chain.to_string()).unwrap();
    sandpipe(
        &[
            "run",
            "chain.json",
            "--events",
            "events.ndjson",
            "--webhooks",
            "webhooks.ndjson",
        ],
        dir,
    )
}

/// A run's log without what depends on the clock: progress lines (printed
/// each second, so only on a slow machine) and the summary's timings
/// (`; 1.4 s, 1476 events/s; peak RSS 90 MiB`; what follows them is kept).
pub fn untimed(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| {
            let progress = line
                .strip_prefix("sandpipe: ")
                .and_then(|rest| rest.strip_suffix(" events/s"))
                .and_then(|rest| rest.split_once(" events, "))
                .is_some_and(|(count, rate)| {
                    [count, rate]
                        .iter()
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                });
            !progress
        })
        .map(|line| match summary_timings(line) {
            Some((start, end)) => format!("{}{}", &line[..start], &line[end..]),
            None => line.to_string(),
        })
        .collect()
}

/// Where a summary line's timings are: from the `; ` before its seconds to
/// the end of its peak RSS (`unknown` or `N MiB`).
fn summary_timings(line: &str) -> Option<(usize, usize)> {
    const RSS: &str = " events/s; peak RSS ";
    line.strip_prefix("sandpipe: summary: ")?;
    let rate = line.find(RSS)?;
    let start = line[..rate].rfind("; ")?;
    let value = &line[rate + RSS.len()..];
    let len = match value.strip_prefix("unknown") {
        Some(_) => "unknown".len(),
        None => {
            let digits = value.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0 && value[digits..].starts_with(" MiB")).then_some(digits + " MiB".len())?
        }
    };
    Some((start, rate + RSS.len() + len))
}

/// Runs the `sandpipe` binary in `cwd` with this test binary's module cache.
pub fn sandpipe<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", rust_guests_target())
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .output()
        .expect("sandpipe runs")
}
