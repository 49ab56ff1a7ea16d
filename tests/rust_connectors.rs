//! Connectors written in Rust (issue 20): standalone bundles built from
//! `guest-rust` connectors with cargo for wasm32-wasip1 (Debian's toolchain
//! here, as the plugin's build uses), admitted by their own rules and run in
//! the same chains as JavaScript connectors. Every Rust connector of the tests
//! builds into one shared target directory, `target/rust-guests`, so the
//! standard library and the SDK's dependencies are compiled once.

mod common;

use common::*;
use sandpipe_runtime::{Bundle, BundleKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Where every Rust connector of the tests is built.
fn guests_target() -> PathBuf {
    root().join("target/rust-guests")
}

/// Builds (with the shared target directory) and admits the Rust connector in `dir`.
fn rust_bundle(dir: &Path) -> Arc<Bundle> {
    let built = sandpipe_compiler::rust::build_in(dir, Some(&guests_target()))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    runtime()
        .admit(built.bytes)
        .expect("the bundle is admitted")
}

/// `sandpipe ARGS` in the repository root, Rust connectors built into the shared directory.
fn sandpipe_in_root(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", guests_target())
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .output()
        .expect("sandpipe runs")
}

#[test]
fn the_rust_geoip_enricher_is_a_standalone_bundle_importing_only_host_functions_and_wasi() {
    let bundle = rust_bundle(&root().join("examples/rust-geoip-enricher"));
    assert_eq!(bundle.kind(), BundleKind::Standalone);
    // A drop-in replacement: the same name, so chains record it the same way.
    assert_eq!(bundle.manifest().name, "GeoIP Enricher");
    assert_eq!(bundle.section().main, "src/lib.rs");
    let mut imports: Vec<String> = bundle
        .imports()
        .iter()
        .map(|(module, name)| format!("{module}.{name}"))
        .collect();
    imports.sort();
    assert_eq!(
        imports,
        [
            "sandpipe_host_v1.log",
            "sandpipe_host_v1.request",
            "sandpipe_host_v1.response",
            "wasi_snapshot_preview1.environ_get",
            "wasi_snapshot_preview1.environ_sizes_get",
            "wasi_snapshot_preview1.fd_write",
            "wasi_snapshot_preview1.proc_exit",
            "wasi_snapshot_preview1.random_get",
        ]
    );
}

#[test]
fn the_rust_enricher_passes_the_js_enrichers_fixtures() {
    let output = sandpipe_in_root(&["test", "examples/rust-geoip-enricher"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The fixtures are the JavaScript example's, byte for byte.
    for fixture in ["enriches.json", "skips.json"] {
        assert_eq!(
            std::fs::read(
                root()
                    .join("examples/rust-geoip-enricher/tests")
                    .join(fixture)
            )
            .unwrap(),
            std::fs::read(root().join("examples/geoip-enricher/tests").join(fixture)).unwrap(),
        );
    }
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("cost: "))
        .collect();
    assert_eq!(
        lines,
        [
            "PASS enriches.json: enriches events from event.ip and properties.$ip with real GeoLite2 records",
            "PASS skips.json: skips events with $geoip_disable, without an IP, or with an IP not in the database",
            "2 passed, 0 failed",
        ]
    );
}

/// Events of the benchmark (`sandpipe-bench events N`).
fn benchmark_events(count: usize, file: &Path) {
    let bench = Path::new(env!("CARGO_BIN_EXE_sandpipe")).with_file_name("sandpipe-bench");
    let output = Command::new(&bench)
        .args(["events", &count.to_string()])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo build --release --workspace)",
                bench.display()
            )
        });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(file, &output.stdout).unwrap();
}

#[test]
fn a_chain_mixing_the_rust_enricher_with_js_connectors_gives_the_all_js_chains_output() {
    let tmp = tempfile::tempdir().unwrap();
    let events = tmp.path().join("events.ndjson");
    benchmark_events(2_000, &events);
    let events = events.to_str().unwrap();
    let run = |chain: &str| {
        let output = sandpipe_in_root(&["run", chain, "--events", events]);
        assert!(
            output.status.success(),
            "{chain}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (js, js_log) = run("examples/geoip-chain.json");
    let (mixed, mixed_log) = run("examples/rust-geoip-chain.json");
    assert_eq!(js.lines().count(), 2_000);
    // Not vacuous: the enricher ran (property-filter keeps only the chain's own keys).
    assert!(
        js.lines()
            .filter(|l| l.contains("\"$geoip_city_name\""))
            .count()
            > 1_000
    );
    assert!(
        mixed == js,
        "the mixed chain's output differs from the all-JS chain's"
    );
    assert_eq!(js_log, "");
    assert_eq!(mixed_log, "");
}
