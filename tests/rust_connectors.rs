//! Connectors written in Rust (issue 20): standalone bundles built from
//! `guest-rust` connectors with cargo for wasm32-wasip1 (Debian's toolchain
//! here, as the plugin's build uses), admitted by their own rules and run in
//! the same chains as JavaScript connectors. Every Rust connector of the tests
//! builds into one shared target directory, `target/rust-guests`, so the
//! standard library and the SDK's dependencies are compiled once.

mod common;

use common::*;
use sandpipe_runtime::BundleKind;
use std::path::Path;
use std::sync::Arc;

/// `sandpipe ARGS` in the repository root.
fn sandpipe_in_root(args: &[&str]) -> std::process::Output {
    sandpipe(args, &root())
}

/// The lines a `sandpipe test` that succeeded printed on stdout, but its
/// `cost:` lines (its stdout and stderr are the panic's message on failure).
fn test_report(output: &std::process::Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with("cost: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_rust_geoip_enricher_is_a_standalone_bundle_importing_only_host_functions_and_wasi() {
    let bundle = bundle_at(&root().join("examples/rust-geoip-enricher"));
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
    let lines = test_report(&sandpipe_in_root(&["test", "examples/rust-geoip-enricher"]));
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
    assert_eq!(
        lines,
        [
            "PASS enriches.json: enriches events from event.ip and properties.$ip with real GeoLite2 records",
            "PASS skips.json: skips events with $geoip_disable, without an IP, or with an IP not in the database",
            "2 passed, 0 failed",
        ]
    );
}

/// The benchmark's event generator (what `sandpipe-bench events N` prints).
#[path = "../bench/src/events.rs"]
#[allow(dead_code)]
mod events;

/// The first `count` timed events of the benchmark, as NDJSON in `file`.
fn benchmark_events(count: usize, file: &Path) {
    let reader = maxminddb::Reader::open_readfile(root().join("data/GeoLite2-City.mmdb"))
        .expect("data/GeoLite2-City.mmdb (run `cargo xtask geoip`)");
    let lines = events::generate(count, events::TIMED, &reader);
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
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
    if let Some((line, (a, b))) = js
        .lines()
        .zip(mixed.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "the mixed chain's output differs from the all-JS chain's at line {}:\n{a}\n{b}\n{mixed_log}",
            line + 1
        );
    }
    assert!(
        mixed == js,
        "the mixed chain's output differs from the all-JS chain's"
    );
    // Nothing is logged but, on a machine slow enough to take a second, the
    // progress and a summary of no failures.
    let summary = "sandpipe: summary: 2000 events in, 2000 out, 0 dropped, 0 lines skipped, 0 webhooks; failures: none";
    for log in [&js_log, &mixed_log] {
        assert!(untimed(log).iter().all(|line| line == summary), "{log}");
    }
}

#[test]
fn a_logs_progress_and_summary_timings_are_set_aside_and_nothing_else() {
    let log = "sandpipe: 1478 events, 1478 events/s\n\
        sandpipe: summary: 2000 events in, 2000 out, 0 dropped, 0 lines skipped, 0 webhooks; failures: none; 1.4 s, 1476 events/s; peak RSS 90 MiB\n\
        sandpipe: 12 events, x events/s\n\
        sandpipe: summary: 2 events in, 1 out, 1 dropped, 0 lines skipped, 0 webhooks; failures: 1 in processEvent; 1.0 s, 2 events/s; peak RSS unknown; shared instance\n\
        sandpipe: summary: 2 events in; 1.0 s, 2 events/s; peak RSS 9 GiB\n";
    assert_eq!(
        untimed(log),
        [
            "sandpipe: summary: 2000 events in, 2000 out, 0 dropped, 0 lines skipped, 0 webhooks; failures: none",
            "sandpipe: 12 events, x events/s",
            "sandpipe: summary: 2 events in, 1 out, 1 dropped, 0 lines skipped, 0 webhooks; failures: 1 in processEvent; shared instance",
            "sandpipe: summary: 2 events in; 1.0 s, 2 events/s; peak RSS 9 GiB",
        ]
    );
}

/// A standalone connector in WAT: `sandpipe_call` runs `body` for
/// `processEvent` (setup answers `null`), then echoes its input.
fn standalone_wat(body: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "sandpipe_host_v1" "log" (func $log (param i32 i32 i32)))
  (import "sandpipe_host_v1" "request" (func $request (param i32 i32 i32) (result i32)))
  (import "sandpipe_host_v1" "response" (func $response (param i32 i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[\"setupPlugin\",\"processEvent\"]")
  (data (i32.const 64) "null")
  (data (i32.const 128) "{{\"op\":\"locate\",\"ip\":\"127.0.0.1\"}}")
  (func (export "sandpipe_reserve") (param i32) (result i32) i32.const 1024)
  (func (export "sandpipe_start") (result i64) i64.const 30)
  (func (export "sandpipe_call") (param $call i32) (param $len i32) (result i64)
    (if (i32.eq (local.get $call) (i32.const 1))
      (then (return (i64.const 0x0000004000000004))))
    {body}
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))"#
    );
    let module = wat::parse_str(wat).unwrap();
    sandpipe_compiler::rust::wrap(&module, r#"{"name": "Bad Pointers", "config": []}"#)
        .unwrap()
        .0
}

#[test]
fn a_loop_of_wasi_calls_that_burns_little_fuel_is_stopped_by_the_deadline() {
    // Each `random_get` of 60,000 bytes costs the host tens of microseconds
    // and the guest a few units of fuel: fuel's yields alone would look at
    // the clock only after tens of seconds. Every entry into the host does.
    let looping = "(loop $spin
        (drop (call $random_get (i32.const 2048) (i32.const 60000)))
        (br $spin))";
    let logs = Arc::new(sandpipe_runtime::MemoryLogs::default());
    let limits = sandpipe_runtime::Limits {
        fuel: 1 << 50,
        deadline: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let looping = runtime().admit(standalone_wat(looping)).expect("admitted");
    let looping = connector_with(looping, 0, serde_json::json!({}), limits, &logs);
    let mut chain = sandpipe_runtime::Chain::new(vec![looping]);
    let started = std::time::Instant::now();
    let out = chain.process(serde_json::json!({"event": "e", "properties": {}}));
    let took = started.elapsed();
    assert_eq!(
        out.event.expect("the event goes on")["properties"]["$plugins_failed"],
        serde_json::json!(["Bad Pointers (0)"])
    );
    assert_eq!(
        logs.lines(),
        vec!["error: processEvent: exceeded its 300 ms deadline".to_string()]
    );
    // Stopped at the first host call past the deadline, not seconds later.
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
}

#[test]
fn random_bytes_are_given_up_to_web_cryptos_quota_at_once() {
    let logs = Arc::new(sandpipe_runtime::MemoryLogs::default());
    let event = serde_json::json!({"event": "e", "properties": {}});
    for (len, failed) in [(65_536, false), (65_537, true)] {
        // Into two pages grown for it, past the connector's input and data.
        let body = format!(
            "(drop (memory.grow (i32.const 2)))
             (if (call $random_get (i32.const 65536) (i32.const {len})) (then unreachable))"
        );
        let bundle = runtime().admit(standalone_wat(&body)).expect("admitted");
        let connector = connector_with(bundle, 0, serde_json::json!({}), Default::default(), &logs);
        let out = sandpipe_runtime::Chain::new(vec![connector]).process(event.clone());
        let properties = &out.event.expect("the event goes on")["properties"];
        let expected: &[&str] = if failed { &["Bad Pointers (0)"] } else { &[] };
        assert_eq!(
            properties["$plugins_failed"],
            serde_json::json!(expected),
            "{len}"
        );
    }
    assert_eq!(
        logs.lines(),
        vec![
            "error: processEvent: trapped: failed to call `get-random-bytes`: \
             requested len 65537 exceeds limit 65536"
                .to_string()
        ]
    );
}

#[test]
fn bad_pointers_and_lengths_given_to_host_functions_trap_the_call_and_nothing_else() {
    let cases = [
        (
            "(call $log (i32.const 2) (i32.const 0xFFFFFFF0) (i32.const 100))",
            "trapped: console: guest range 4294967280+100 is outside its 65536-byte memory",
        ),
        (
            "(drop (call $request (i32.const 4) (i32.const 65530) (i32.const 100)))",
            "trapped: request: guest range 65530+100 is outside its 65536-byte memory",
        ),
        (
            "(drop (call $request (i32.const 4) (i32.const 0) (i32.const 0x7FFFFFFF)))",
            "trapped: request: 2147483647 bytes is over the 1048576-byte limit",
        ),
        (
            "(call $response (i32.const 0) (i32.const 5))",
            "trapped: response: asked for 5 bytes, 0 are pending",
        ),
        (
            "(call $response (i32.const 0xFFFFFF00)
               (call $request (i32.const 4) (i32.const 128) (i32.const 32)))",
            "trapped: response: guest range 4294967040+11 is outside its memory",
        ),
        (
            "(return (i64.const 0x0000FFFF00000100))",
            "result: guest range 65535+256 is outside its 65536-byte memory",
        ),
    ];
    let event =
        serde_json::json!({"event": "pageview", "distinct_id": "d", "properties": {"a": 1}});
    for (body, reason) in cases {
        let logs = Arc::new(sandpipe_runtime::MemoryLogs::default());
        let bad = runtime().admit(standalone_wat(body)).expect("admitted");
        let bad = connector_with_options(
            bad,
            0,
            Default::default(),
            ConnectorOptions {
                logs: logs.clone(),
                geoip: Some(Arc::new(sandpipe_runtime::GeoIpDatabase::new(
                    root().join("data/GeoLite2-City.mmdb"),
                ))),
                ..ConnectorOptions::default()
            },
        );
        let hello = connector_with(
            example("hello-world"),
            1,
            serde_json::json!({"name": "Ada"}),
            Default::default(),
            &logs,
        );
        let mut chain = sandpipe_runtime::Chain::new(vec![bad, hello]);
        for _ in 0..2 {
            // Twice: the trapped instance is dropped, and the next one traps the same way.
            let out = chain.process(event.clone());
            let properties = &out.event.expect("the event goes on")["properties"];
            assert_eq!(properties["hello"], "Hello Ada", "{body}");
            assert_eq!(
                properties["$plugins_failed"],
                serde_json::json!(["Bad Pointers (0)"])
            );
            assert_eq!(
                properties["$plugins_succeeded"],
                serde_json::json!(["Hello World (1)"])
            );
        }
        assert_eq!(
            logs.lines(),
            vec![format!("error: processEvent: {reason}"); 2],
            "{body}"
        );
    }
}

#[test]
fn a_standalone_bundle_is_admitted_only_with_the_guest_abi_and_allowed_imports() {
    let plugin = r#"{"name": "x", "config": []}"#;
    let refusal = |wat: &str| {
        let module = wat::parse_str(wat).unwrap();
        let bytes = sandpipe_compiler::rust::wrap(&module, plugin).unwrap().0;
        runtime().admit(bytes).unwrap_err().to_string()
    };
    let abi = r#"(memory (export "memory") 1)
        (func (export "sandpipe_reserve") (param i32) (result i32) i32.const 0)
        (func (export "sandpipe_call") (param i32 i32) (result i64) i64.const 0)
        (func (export "sandpipe_start") (result i64) i64.const 0)"#;
    let wasi_rule = "which is not allowed (a standalone bundle may import only sandpipe_host_v1's log, request and response functions and the WASI preview 1 functions the plugin imports: clock_time_get, environ_get, environ_sizes_get, fd_close, fd_fdstat_get, fd_seek, fd_write, proc_exit, random_get)";
    assert_eq!(
        refusal(&format!(
            r#"(module (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))) {abi})"#
        )),
        format!("standalone bundle imports \"wasi_snapshot_preview1\".\"path_open\", {wasi_rule}")
    );
    assert_eq!(
        refusal(&format!(
            r#"(module (import "sandpipe_plugin_v1" "sandpipe_load" (func (param i32) (result i64))) {abi})"#
        )),
        format!("standalone bundle imports \"sandpipe_plugin_v1\".\"sandpipe_load\", {wasi_rule}")
    );
    assert_eq!(
        refusal(&format!(
            r#"(module (import "env" "memory" (memory 1)) {})"#,
            abi.replace(r#"(memory (export "memory") 1)"#, "")
        )),
        format!("standalone bundle imports \"env\".\"memory\", {wasi_rule}")
    );
    assert_eq!(
        refusal(r#"(module (func (export "sandpipe_start") (result i64) i64.const 0))"#),
        "standalone bundle defines 0 memories; it must define exactly one (and export it as `memory`)"
    );
    assert_eq!(
        refusal(&format!("(module {abi} (func $boot) (start $boot))")),
        "standalone bundle defines a start function, which would run outside any call"
    );
    assert_eq!(
        refusal(&format!(
            "(module {})",
            abi.replace(
                "(param i32 i32) (result i64) i64.const 0",
                "(param i32) (result i64) i64.const 0"
            )
        )),
        "standalone bundle exports `sandpipe_call` as (i32) -> (i64); the guest ABI wants (i32, i32) -> (i64)"
    );
    assert_eq!(
        refusal(&format!(
            r#"(module (import "sandpipe_host_v1" "log" (func (param i64))) {abi})"#
        )),
        "standalone bundle does not link against the host: incompatible import type for `sandpipe_host_v1::log`: types incompatible: expected type `(func (param i64))`, found type `(func (param i32 i32 i32))`"
    );
    // A 4 GiB initial memory: refused when it is compiled, by the engine's memory ceiling.
    assert_eq!(
        refusal(&format!(
            "(module {})",
            abi.replace(
                r#"(memory (export "memory") 1)"#,
                r#"(memory (export "memory") 65536)"#
            )
        )),
        "bundle failed to compile: module memory does not fit in pooling allocator requirements: memory index 0 is unsupported in this pooling allocator configuration: memory has a minimum byte size of 4294967296 which exceeds the limit of 0x10000000 bytes"
    );
}

#[test]
fn sandpipe_new_lang_rust_scaffolds_a_connector_whose_fixture_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let output = sandpipe(&["new", "--lang", "rust", "greeter"], tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cargo_toml = std::fs::read_to_string(tmp.path().join("greeter/Cargo.toml")).unwrap();
    let sdk = std::fs::canonicalize(root().join("guest-rust")).unwrap();
    assert!(
        cargo_toml.contains(&format!(
            "sandpipe-connector = {{ path = {:?} }}",
            sdk.display().to_string()
        )),
        "{cargo_toml}"
    );
    assert_eq!(
        test_report(&sandpipe(&["test", "greeter"], tmp.path())),
        [
            "PASS greeting.json: adds the configured greeting",
            "1 passed, 0 failed"
        ]
    );
    // And `sandpipe build` writes a standalone bundle.
    let output = sandpipe(&["build", "greeter", "-o", "greeter.wasm"], tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bundle = runtime()
        .admit(std::fs::read(tmp.path().join("greeter.wasm")).unwrap())
        .unwrap();
    assert_eq!(bundle.kind(), BundleKind::Standalone);
}

#[test]
fn a_rust_connector_that_reads_files_is_refused_at_admission() {
    // std::fs pulls in WASI's file functions, which the plugin does not import.
    let built = build_dir(&root().join("tests/hostile/rust-reads-files")).unwrap();
    let refusal = runtime().admit(built.bytes).unwrap_err().to_string();
    let rule = "which is not allowed (a standalone bundle may import only sandpipe_host_v1's log, request and response functions and the WASI preview 1 functions the plugin imports: clock_time_get, environ_get, environ_sizes_get, fd_close, fd_fdstat_get, fd_seek, fd_write, proc_exit, random_get)";
    let forbidden = [
        "path_open",
        "fd_read",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_filestat_get",
    ];
    assert!(
        forbidden.iter().any(|name| refusal
            == format!("standalone bundle imports \"wasi_snapshot_preview1\".\"{name}\", {rule}")),
        "{refusal}"
    );
}

/// `sandpipe run` of a chain of the one connector in `dir` on `events`, with
/// the webhooks it composes: (stdout, stderr, webhooks).
fn run_one(dir: &Path, events: &Path) -> (String, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(events, tmp.path().join("events.ndjson")).unwrap();
    let output = run_one_connector(tmp.path(), dir);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{}: {stderr}", dir.display());
    let webhooks = std::fs::read_to_string(tmp.path().join("webhooks.ndjson")).unwrap();
    (String::from_utf8(output.stdout).unwrap(), stderr, webhooks)
}

#[test]
fn a_rust_on_event_is_handed_the_reduced_event_and_retried_as_the_javascript_one_is() {
    let case = root().join("tests/compat/cases/on-event-retry");
    let events = case.join("events.ndjson");
    let (js, js_log, js_webhooks) = run_one(&case.join("exporter"), &events);
    let (rust, rust_log, rust_webhooks) = run_one(&root().join("tests/rust/exporter"), &events);
    assert_eq!(rust, js);
    // The JavaScript exporter composes no webhooks; the Rust one's get the reduced event.
    assert_eq!(js_webhooks, "");
    let hook = |body: &str| {
        let body = serde_json::to_string(body).unwrap();
        format!(
            r#"{{"connector":"exporter (0)","url":"https://example.com/hook","method":"POST","headers":{{"Content-Type":"application/json"}},"body":{body}}}"#
        )
    };
    assert_eq!(
        rust_webhooks.lines().collect::<Vec<_>>(),
        [
            hook(
                r#"{"event":"pageview","team_id":4,"distinct_id":"a","properties":{"path":"/","$plugins_succeeded":["exporter (0)"],"$plugins_failed":[]},"timestamp":"2024-10-27T00:59:59.999Z"}"#
            ),
            hook(
                r#"{"event":"always","team_id":4,"distinct_id":"c","properties":{"$plugins_succeeded":["exporter (0)"],"$plugins_failed":[]},"timestamp":"2024-10-27T01:00:00.000Z"}"#
            ),
            hook(
                r#"{"event":"broken","team_id":4,"distinct_id":"d","properties":{"$plugins_succeeded":["exporter (0)"],"$plugins_failed":[]},"timestamp":"2024-10-27T02:00:00.000Z"}"#
            ),
        ]
    );
    // Its setup ran once (one instance); every other line is the JavaScript
    // one's, but for the stack frames JavaScript's errors carry.
    let setup = "[exporter (0)] debug: set up";
    assert_eq!(rust_log.lines().filter(|l| *l == setup).count(), 1);
    let rust_log: Vec<&str> = rust_log.lines().filter(|l| *l != setup).collect();
    let js_log: Vec<&str> = js_log
        .lines()
        .filter(|l| !l.starts_with("    at "))
        .collect();
    assert_eq!(rust_log, js_log);
    // Not vacuous: the retries and their outcomes are there.
    for line in [
        r#"[exporter (0)] log: attempt 1 {"event":"pageview","team_id":4,"distinct_id":"a","properties":{"path":"/","$plugins_succeeded":["exporter (0)"],"$plugins_failed":[]},"timestamp":"2024-10-27T00:59:59.999Z"}"#,
        "events.ndjson:1: [exporter (0)] error: onEvent: RetryError: destination busy (1)",
        "[exporter (0)] log: exported a",
        "sandpipe: events.ndjson:1: onEvent of exporter (0) succeeded on attempt 3",
        "sandpipe: events.ndjson:3: onEvent of exporter (0) failed 5 times; given up",
        "events.ndjson:4: [exporter (0)] error: onEvent: Error: cannot export this one (1)",
        "sandpipe: events.ndjson:4: onEvent of exporter (0) failed; not called again (only a RetryError is)",
    ] {
        assert!(rust_log.contains(&line), "no {line:?} in {rust_log:#?}");
    }
}

#[test]
fn a_hook_of_the_wrong_shape_is_refused_at_compile_time_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wrong");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = root().join("guest-rust");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"wrong\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nsandpipe-connector = {{ path = {:?} }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("plugin.json"),
        r#"{"name": "Wrong", "config": []}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        r#"use sandpipe_connector::{Error, Event, Meta};

#[sandpipe_connector::process_event]
fn one_parameter(event: Event) -> Result<Option<Event>, Error> {
    Ok(Some(event))
}

#[sandpipe_connector::setup]
async fn asynchronous(_meta: &Meta) -> Result<(), Error> {
    Ok(())
}

#[sandpipe_connector::on_event]
fn returns_an_event(event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    Ok(Some(event))
}

sandpipe_connector::export!();
"#,
    )
    .unwrap();
    // Copied from the enricher, so the build resolves the same (offline) versions.
    std::fs::copy(
        root().join("examples/rust-geoip-enricher/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let output = sandpipe(&["build", "wrong", "-o", "wrong.wasm"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "error: #[sandpipe_connector::process_event] takes 2 parameters, not 1; a process_event hook is `fn(event: Event, meta: &Meta) -> Result<Option<Event>, Error>`",
        "error: #[sandpipe_connector::setup] cannot be async; a setup hook is `fn(meta: &Meta) -> Result<(), Error>`",
        // rustc's own, at the hook's name, naming the type the hook must have.
        "error[E0308]: mismatched types\n   --> src/lib.rs:14:4\n",
        "= note: expected fn pointer `for<'a> fn(Event, &'a Meta) -> Result<(), _>`",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in {stderr}");
    }
}
