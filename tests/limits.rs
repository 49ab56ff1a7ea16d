//! Fuel, deadline, memory, stack and size limits: each one stops a hostile
//! connector, the error is recorded for it, and the chain goes on.

mod common;

use common::*;
use sandpipe_runtime::{CallError, Chain, Limits, MemoryLogs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A chain of `hostile` (position 0) then a well-behaved connector (position 1).
fn chain_with(hostile: &str, limits: Limits, logs: &Arc<MemoryLogs>) -> Chain {
    Chain::new(vec![
        connector_with(bundle("hostile", hostile), 0, Value::Null, limits, logs),
        connector(
            "polite",
            "function processEvent(e) { e.properties.polite = true; return e }",
            1,
            logs,
        ),
    ])
}

/// Runs `event` and checks the hostile connector failed with `expected`, the
/// polite one still ran, and the whole thing took under a second.
fn assert_contained(chain: &mut Chain, event: Value, expected: &CallError) {
    let started = Instant::now();
    let out = chain.process(event);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert_eq!(&out.failures[0].error, expected);
    let properties = &out.event.expect("the event continues")["properties"];
    assert_eq!(properties["polite"], json!(true));
    assert_eq!(properties["$plugins_failed"], json!(["hostile (0)"]));
    assert_eq!(properties["$plugins_succeeded"], json!(["polite (1)"]));
}

#[test]
fn an_infinite_loop_is_stopped_by_fuel() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_with(
        "function processEvent(e) { if (e.event === 'spin') while (true) {} ; return e }",
        Limits::default(),
        &logs,
    );
    let expected = CallError::Trapped(format!(
        "ran out of fuel ({} units per call)",
        Limits::default().fuel
    ));
    assert_contained(
        &mut chain,
        json!({"event": "spin", "properties": {}}),
        &expected,
    );
    assert!(
        logs.lines()
            .iter()
            .any(|l| l.starts_with("error: processEvent: ran out of fuel"))
    );
    // A fresh instance serves the next event.
    let out = chain.process(json!({"event": "ok", "properties": {}}));
    assert!(out.failures.is_empty());
}

#[test]
fn an_infinite_loop_inside_a_promise_job_is_stopped_by_fuel() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_with(
        "async function processEvent(e) { await null; while (true) {} }",
        Limits::default(),
        &logs,
    );
    let expected = CallError::Trapped(format!(
        "ran out of fuel ({} units per call)",
        Limits::default().fuel
    ));
    assert_contained(&mut chain, json!({"properties": {}}), &expected);
}

#[test]
fn a_loop_of_host_calls_is_stopped_by_the_deadline() {
    let logs = Arc::new(MemoryLogs::default());
    // Fuel is effectively unlimited here, so only the wall-clock deadline can stop it.
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut chain = chain_with(
        "function processEvent(e) { while (true) console.log('spinning') }",
        limits,
        &logs,
    );
    assert_contained(
        &mut chain,
        json!({"properties": {}}),
        &CallError::Trapped("exceeded its 200 ms deadline".into()),
    );
    let lines = logs.lines();
    assert_eq!(
        lines.iter().filter(|l| *l == "log: spinning").count(),
        1_000,
        "console lines are bounded per call"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("warn: ")
            && l.ends_with("console lines dropped (over 1000 per call)"))
    );
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_cap() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: u64::MAX / 2,
        memory: 32 << 20,
        ..Limits::default()
    };
    let mut chain = chain_with(
        "const keep = []; function processEvent(e) { while (true) keep.push(new ArrayBuffer(4 << 20)) }",
        limits,
        &logs,
    );
    assert_contained(
        &mut chain,
        json!({"properties": {}}),
        &CallError::Trapped("reached its memory limit of 32 MiB".into()),
    );
}

#[test]
fn deep_recursion_is_stopped() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_with(
        "function down(n) { return down(n + 1) + 1 } function processEvent(e) { if (e.event === 'deep') down(0); return e }",
        Limits::default(),
        &logs,
    );
    let started = Instant::now();
    let out = chain.process(json!({"event": "deep", "properties": {}}));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        out.event.unwrap()["properties"]["$plugins_failed"],
        json!(["hostile (0)"])
    );
    match &out.failures[0].error {
        CallError::Threw(e) => assert_eq!(
            (e.name.as_deref(), e.message.as_str()),
            (Some("RangeError"), "Maximum call stack size exceeded")
        ),
        CallError::Trapped(reason) => assert_eq!(reason, "overflowed the wasm stack"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        chain
            .process(json!({"event": "shallow", "properties": {}}))
            .failures
            .is_empty()
    );
}

#[test]
fn oversized_input_is_refused_before_the_call() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        max_input: 1_000,
        ..Limits::default()
    };
    let mut chain = chain_with(
        "function processEvent(e) { console.log('called'); return e }",
        limits,
        &logs,
    );
    let big = "x".repeat(2_000);
    let out = chain.process(json!({"properties": {"big": big}}));
    assert_eq!(
        out.failures[0].error,
        CallError::InputTooLarge {
            size: 2_025,
            limit: 1_000
        }
    );
    assert!(!logs.lines().contains(&"log: called".to_string()));
    assert_eq!(
        out.event.unwrap()["properties"]["big"]
            .as_str()
            .unwrap()
            .len(),
        2_000
    );
}

#[test]
fn oversized_output_is_refused() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        max_output: 10_000,
        ..Limits::default()
    };
    let mut chain = chain_with(
        "function processEvent(e) { e.properties.pad = 'y'.repeat(20000); return e }",
        limits,
        &logs,
    );
    let out = chain.process(json!({"properties": {}}));
    assert_eq!(
        out.failures[0].error,
        CallError::OutputTooLarge {
            size: 20_025,
            limit: 10_000
        }
    );
    assert_eq!(out.event.unwrap()["properties"].get("pad"), None);
}

#[test]
fn an_oversized_error_result_is_cut_before_it_is_read() {
    // A bundle's entry returns what it likes: here a well-formed error JSON of
    // 2 MiB (the plugin itself bounds the errors it describes to a few KiB).
    let section = json!({"abi_version": sandpipe_abi::ABI_VERSION, "main": "index.js",
        "source_sha256": "0".repeat(64), "plugin_json": r#"{"name": "huge-error"}"#});
    let len: u64 = 27 + (2 << 20) + 2;
    let wat = format!(
        r#"(module
            (import "sandpipe_plugin_v1" "memory" (memory 0))
            (data $prefix "{{\"name\":\"Error\",\"message\":\"")
            (func (export "sandpipe_start") (result i64) (local $base i32)
                (local.set $base (i32.mul (memory.grow (i32.const 48)) (i32.const 65536)))
                (memory.init $prefix (local.get $base) (i32.const 0) (i32.const 27))
                (memory.fill (i32.add (local.get $base) (i32.const 27)) (i32.const 120) (i32.const {x}))
                (i32.store16 (i32.add (local.get $base) (i32.const {end})) (i32.const 0x7d22))
                (i64.or (i64.shl (i64.extend_i32_u (local.get $base)) (i64.const 32)) (i64.const {low})))
            (@custom "sandpipe.manifest" "{section}"))"#,
        x = 2 << 20,
        end = 27 + (2 << 20),
        low = len | (1 << 31),
        section = section
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
    );
    let bundle = runtime().admit(wat::parse_str(wat).unwrap()).unwrap();
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector_with(bundle, 0, Value::Null, Limits::default(), &logs);
    let error = c
        .call(sandpipe_abi::Call::ProcessEvent, b"{}", "processEvent")
        .unwrap_err();
    let message = format!(
        r#"{{"name":"Error","message":"{}… [truncated 2,093,085 bytes]"#,
        "x".repeat(4096 - 27)
    );
    assert_eq!(
        error,
        CallError::Setup(Box::new(CallError::Threw(sandpipe_runtime::JsError {
            name: Some("Error".into()),
            message,
            stack: String::new(),
        })))
    );
}
