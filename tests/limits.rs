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
fn a_loop_whose_fuel_outlasts_its_deadline_is_stopped_by_the_deadline() {
    // Fuel for seconds of work (11–15 M units a millisecond) under a 100 ms
    // deadline: while fuel is on, the deadline is kept by the host looking at
    // the clock each time the guest yields for fuel, not by epochs.
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: 40_000_000_000,
        deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let mut chain = chain_with(
        "function processEvent(e) { if (e.event === 'spin') while (true) {} ; return e }",
        limits,
        &logs,
    );
    assert_contained(
        &mut chain,
        json!({"event": "spin", "properties": {}}),
        &CallError::Trapped("exceeded its 100 ms deadline".into()),
    );
    // A fresh instance serves the next event.
    let out = chain.process(json!({"event": "ok", "properties": {}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
}

#[test]
fn a_loop_of_host_calls_is_stopped_by_the_deadline() {
    let logs = Arc::new(MemoryLogs::default());
    // Fuel is effectively unlimited here, so only the wall-clock deadline can stop it.
    let limits = Limits {
        fuel: sandpipe_runtime::limits::MAX_FUEL,
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
    assert!(lines.iter().any(|l| l.starts_with("warn: ")
        && l.ends_with("console lines dropped (over 1000 lines or 256 KiB per call)")));
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_cap() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: sandpipe_runtime::limits::MAX_FUEL,
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

// The deadline check in each host function, on its own. The engine below has
// neither fuel nor epoch interruption, so nothing but a host function's
// `check_deadline` can stop a call, and its error reaches the test unmapped
// (through a connector both give "exceeded its N ms deadline").

/// What a host function's deadline check answers once the call's deadline has passed.
const HOST_CALL_DEADLINE: &str = "deadline exceeded during a host call";

/// A guest that makes one host call per export: `log()` logs the line at 1024,
/// `request(service, len)` sends the request at 0, `response(len)` fetches the
/// answer to 4096.
const HOST_CALLER: &str = r#"(module
    (import "sandpipe_host_v1" "log" (func $log (param i32 i32 i32)))
    (import "sandpipe_host_v1" "request" (func $request (param i32 i32 i32) (result i32)))
    (import "sandpipe_host_v1" "response" (func $response (param i32 i32)))
    (memory (export "memory") 1)
    (data (i32.const 1024) "a console line")
    (func (export "log") (call $log (i32.const 2) (i32.const 1024) (i32.const 14)))
    (func (export "request") (param i32 i32) (result i32)
        (call $request (local.get 0) (i32.const 0) (local.get 1)))
    (func (export "response") (param i32) (call $response (i32.const 4096) (local.get 0))))"#;

/// One instance of [`HOST_CALLER`] linked to the real host functions, in a
/// store whose deadline is `deadline` from now.
struct HostCaller {
    store: wasmtime::Store<sandpipe_runtime::host::StoreData>,
    instance: wasmtime::Instance,
    services: Arc<sandpipe_runtime::services::ConnectorServices>,
}

impl HostCaller {
    fn new(deadline: Duration, fetch: sandpipe_runtime::FetchPolicy) -> HostCaller {
        use sandpipe_runtime::host::{StoreData, linker};
        use sandpipe_runtime::services::{ConnectorServices, ServiceConfig};
        // Neither fuel nor epochs: only the host functions' own checks.
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(HOST_CALLER).unwrap()).unwrap();
        let linker = linker(&engine).unwrap();
        let services = Arc::new(ConnectorServices::new(ServiceConfig {
            fetch,
            ..ServiceConfig::default()
        }));
        let limits = Limits {
            deadline,
            ..Limits::default()
        };
        let mut store = wasmtime::Store::new(&engine, StoreData::new(&limits, services.clone()));
        let instance = linker.instantiate(&mut store, &module).unwrap();
        HostCaller {
            store,
            instance,
            services,
        }
    }

    fn log(&mut self) -> wasmtime::Result<()> {
        let log = self
            .instance
            .get_typed_func::<(), ()>(&mut self.store, "log")
            .unwrap();
        log.call(&mut self.store, ())
    }

    /// `request(service, body)`: the answer's length.
    fn request(&mut self, service: sandpipe_abi::Service, body: &str) -> wasmtime::Result<u32> {
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.write(&mut self.store, 0, body.as_bytes()).unwrap();
        let request = self
            .instance
            .get_typed_func::<(u32, u32), u32>(&mut self.store, "request")
            .unwrap();
        request.call(&mut self.store, (service as u32, body.len() as u32))
    }

    /// `response(len)`: the answer.
    fn response(&mut self, len: u32) -> wasmtime::Result<String> {
        let response = self
            .instance
            .get_typed_func::<u32, ()>(&mut self.store, "response")
            .unwrap();
        response.call(&mut self.store, len)?;
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        let answer = &memory.data(&self.store)[4096..4096 + len as usize];
        Ok(String::from_utf8(answer.to_vec()).unwrap())
    }
}

/// The root cause of a host call's error: the host function's own message.
fn root_cause(error: wasmtime::Error) -> String {
    error.root_cause().to_string()
}

#[test]
fn log_checks_the_deadline_before_logging() {
    let mut guest = HostCaller::new(Duration::from_millis(100), Default::default());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(root_cause(guest.log().unwrap_err()), HOST_CALL_DEADLINE);
}

#[test]
fn request_checks_the_deadline_before_the_service_runs() {
    let mut guest = HostCaller::new(Duration::from_millis(100), Default::default());
    std::thread::sleep(Duration::from_millis(200));
    let error = guest
        .request(sandpipe_abi::Service::Capture, r#"{"event":"late"}"#)
        .unwrap_err();
    assert_eq!(root_cause(error), HOST_CALL_DEADLINE);
    // The check comes before the service: nothing was captured.
    assert_eq!(guest.services.take_captured(), Vec::<Value>::new());
}

#[test]
fn request_checks_the_deadline_after_a_service_that_outlasts_it() {
    // A local HTTP server that reads the request and never answers; fetch gives
    // up at the call's deadline, and the check after the service stops the call.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some((path, _)) = read_request(&stream) else {
                continue;
            };
            seen.lock().unwrap().push(path);
            // Hold the connection without answering until the client gives up.
            let _ = std::io::copy(&mut &stream, &mut std::io::sink());
        }
    });
    let policy = sandpipe_runtime::FetchPolicy {
        allow_hosts: vec!["127.0.0.1".into()],
        allow_private: true,
        ..Default::default()
    };
    let mut guest = HostCaller::new(Duration::from_millis(300), policy);
    let error = guest
        .request(
            sandpipe_abi::Service::Fetch,
            &format!(r#"{{"url":"http://127.0.0.1:{port}/slow"}}"#),
        )
        .unwrap_err();
    assert_eq!(root_cause(error), HOST_CALL_DEADLINE);
    // The check before the service passed: the request reached the server.
    assert_eq!(*requests.lock().unwrap(), ["/slow"]);
}

#[test]
fn response_checks_the_deadline() {
    let mut guest = HostCaller::new(Duration::from_millis(1_000), Default::default());
    let len = guest
        .request(sandpipe_abi::Service::Capture, r#"{"event":"in time"}"#)
        .unwrap();
    assert_eq!(
        guest.services.take_captured(),
        [json!({"event": "in time", "properties": {}})]
    );
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        root_cause(guest.response(len).unwrap_err()),
        HOST_CALL_DEADLINE
    );
}

#[test]
fn host_calls_within_the_deadline_are_answered() {
    // The same guest and calls as the deadline tests above, in time: each answers.
    let mut guest = HostCaller::new(Duration::from_secs(30), Default::default());
    guest.log().unwrap();
    let len = guest
        .request(sandpipe_abi::Service::Capture, r#"{"event":"in time"}"#)
        .unwrap();
    assert_eq!(guest.response(len).unwrap(), r#"{"ok":null}"#);
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
    let error = c.process_event(b"{}").unwrap_err();
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
            retry: None,
        })))
    );
}

#[test]
fn console_output_is_bounded_in_bytes_per_call() {
    let logs = Arc::new(MemoryLogs::default());
    // Twenty lines of 16 KiB: sixteen fill the call's 256 KiB.
    let mut chain = chain_with(
        "function processEvent(e) { for (let i = 0; i < 20; i++) console.log('x'.repeat(16 * 1024)); return e }",
        Limits::default(),
        &logs,
    );
    for _ in 0..2 {
        chain.process(json!({"properties": {}}));
        let lines = logs.lines();
        logs.take();
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("log: xxx")).count(),
            16
        );
        // Each call has its own budget.
        assert_eq!(
            lines.last().unwrap(),
            "warn: 4 console lines dropped (over 1000 lines or 256 KiB per call)"
        );
    }
}
