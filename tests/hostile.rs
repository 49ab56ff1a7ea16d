//! The hostile suite: one connector per attack (`tests/hostile/<case>/`), each
//! run between two well-behaved connectors, through both `sandpipe run` and the
//! HTTP service. For every case: the host keeps serving, the well-behaved
//! connectors' outputs are byte-identical to a clean run (the chain's
//! `$plugins_succeeded`/`$plugins_failed` bookkeeping aside, which is checked on
//! its own), the attack is logged for its connector with a reason, and the
//! time taken is bounded. Bundles that must not load (forbidden imports, huge
//! memories and sections, broken bytes) are refused with a reason by both.
//! Each case runs through `sandpipe run` at the shared-instance level too,
//! where the three connectors share one instance: the same holds there (a
//! trap there runs the event again with the hostile connector on an
//! instance of its own, so its failure is the default level's, beside the
//! shared instance's own line).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest a whole `sandpipe run` of one case may take (it builds three connectors).
const RUN_BOUND: Duration = Duration::from_secs(20);
/// Longest one events request to the service may take.
const REQUEST_BOUND: Duration = Duration::from_secs(5);
/// The label the hostile connector has in every chain.
const HOSTILE: &str = "Hostile (1)";
const PLUGINS: [&str; 2] = ["$plugins_succeeded", "$plugins_failed"];

fn dir(name: &str) -> PathBuf {
    root().join("tests/hostile").join(name)
}

/// The suite's events, read once.
fn events() -> &'static [Value] {
    static EVENTS: OnceLock<Vec<Value>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        std::fs::read_to_string(dir("events.ndjson"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    })
}

/// The events as one request body.
fn events_body() -> Value {
    Value::Array(events().to_vec())
}

/// Index of the event the hostile connectors attack.
fn attack_index() -> usize {
    events()
        .iter()
        .position(|e| e["event"] == "attack")
        .unwrap()
}

/// An event without the chain's bookkeeping, serialised: what the well-behaved
/// connectors produced, byte for byte.
fn work(event: &Value) -> String {
    let mut event = event.clone();
    if let Some(properties) = event.get_mut("properties").and_then(Value::as_object_mut) {
        for key in PLUGINS {
            properties.remove(key);
        }
    }
    serde_json::to_string(&event).unwrap()
}

/// One attack and what the host must make of it.
struct Case {
    name: &'static str,
    /// The hostile connector's error on the attack event (a prefix), or `None`
    /// when the attack is refused without failing the call.
    failure: Option<&'static str>,
    /// A line the hostile connector's log must contain (a substring).
    logged: &'static str,
    /// The same two for the service when they differ from `sandpipe run`.
    serve: Option<(Option<&'static str>, &'static str)>,
    /// Lines (`level: message`) the hostile connector must log, each exactly:
    /// one per thing it tried, so each is asserted on its own.
    lines: Vec<String>,
    /// The same for the service, when it differs from `sandpipe run`.
    serve_lines: Option<Vec<String>>,
    /// Webhooks the hostile connector composes (the service stores, then refuses them).
    composes: u64,
    /// The hostile connector's `composeWebhook` error on the attack event.
    compose_failure: Option<&'static str>,
    /// Operator limits (chain file `limits`), also given to the service.
    limits: Option<(u64, u64)>,
    /// The operator's fetch policy in the chain file.
    fetch: Option<Value>,
    config: Value,
}

impl Case {
    fn new(name: &'static str, failure: Option<&'static str>, logged: &'static str) -> Case {
        Case {
            name,
            failure,
            logged,
            lines: Vec::new(),
            serve_lines: None,
            serve: None,
            compose_failure: None,
            composes: 0,
            limits: None,
            fetch: None,
            config: json!({}),
        }
    }

    /// Checks one chain's outputs for the events against the clean run's.
    fn check_outputs(&self, outputs: &[Value], clean: &[Value], failure: Option<&str>) {
        assert_eq!(outputs.len(), clean.len(), "{}: {outputs:?}", self.name);
        for (index, (out, clean)) in outputs.iter().zip(clean).enumerate() {
            assert_eq!(
                work(out),
                work(clean),
                "{}: event {index} differs from the clean run",
                self.name
            );
            let properties = &out["properties"];
            if index == attack_index() && failure.is_some() {
                assert_eq!(
                    properties["$plugins_failed"],
                    json!([HOSTILE]),
                    "{}",
                    self.name
                );
                assert_eq!(
                    properties["$plugins_succeeded"],
                    json!(["Polite Before (0)", "Polite After (2)"]),
                    "{}",
                    self.name
                );
            } else {
                assert_eq!(
                    properties["$plugins_failed"],
                    json!([]),
                    "{}: {out}",
                    self.name
                );
                assert_eq!(
                    properties["$plugins_succeeded"],
                    json!(["Polite Before (0)", HOSTILE, "Polite After (2)"]),
                    "{}",
                    self.name
                );
            }
        }
    }

    /// Through `sandpipe run`, at the shared-instance level when `shared`.
    fn run_cli(&self, shared: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let mut hostile = json!({"path": dir(self.name), "config": self.config});
        if let Some((fuel, deadline_ms)) = self.limits {
            hostile["limits"] = json!({"fuel": fuel, "deadline_ms": deadline_ms});
        }
        if let Some(fetch) = &self.fetch {
            hostile["fetch"] = fetch.clone();
        }
        let isolation = if shared { "shared" } else { "instance" };
        let chain = json!({"connectors": [
            {"path": dir("polite-before")}, hostile, {"path": dir("polite-after")}
        ], "isolation": isolation});
        std::fs::write(tmp.path().join("chain.json"), chain.to_string()).unwrap();
        // A Rust connector is built first, untimed: the bound is the run's, not
        // that of cargo's first build of the standard library (cold, in CI).
        if sandpipe_compiler::rust::is_rust(&dir(self.name)) {
            build_dir(&dir(self.name)).expect("the Rust connector builds");
        }
        let started = Instant::now();
        let output = sandpipe(&run_args(), tmp.path());
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", self.name);
        assert!(took < RUN_BOUND, "{}: took {took:?}", self.name);
        let outputs: Vec<Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let (clean, clean_webhooks) = clean_cli();
        self.check_outputs(&outputs, &clean, self.failure);
        let webhooks = std::fs::read_to_string(tmp.path().join("webhooks.ndjson")).unwrap();
        let polite: Vec<&str> = webhooks
            .lines()
            .filter(|l| !l.starts_with(&format!(r#"{{"connector":"{HOSTILE}""#)))
            .collect();
        assert_eq!(
            polite,
            clean_webhooks.lines().collect::<Vec<_>>(),
            "{}: composed webhooks differ",
            self.name
        );
        // (An error line starts with the input line it happened on, `FILE:N: `.)
        let prefix = format!("[{HOSTILE}] ");
        let lines: Vec<&str> = stderr
            .lines()
            .map(|l| match l.split_once(": [") {
                Some((place, _)) if place.ends_with(|c: char| c.is_ascii_digit()) => {
                    &l[place.len() + 2..]
                }
                _ => l,
            })
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        if let Some(failure) = self.failure {
            let expected = format!("error: processEvent: {failure}");
            assert!(
                lines.iter().any(|l| l.starts_with(&expected)),
                "{}: no {expected:?} in {stderr}",
                self.name
            );
        }
        assert!(
            self.logged.is_empty() || lines.iter().any(|l| l.contains(self.logged)),
            "{}: no {:?} in {stderr}",
            self.name,
            self.logged
        );
        for line in &self.lines {
            assert!(
                lines.contains(&line.as_str()),
                "{}: no line {line:?} in {stderr}",
                self.name
            );
        }
        if let Some(error) = self.compose_failure {
            let expected = format!("error: composeWebhook: {error}");
            assert!(
                lines.contains(&expected.as_str()),
                "{}: {stderr}",
                self.name
            );
        }
        // Nothing is logged for the well-behaved connectors.
        assert!(!stderr.contains("[Polite"), "{}: {stderr}", self.name);
    }

    /// Through the HTTP service, next to a clean team that must not notice.
    fn run_service(&self) {
        let tmp = tempfile::tempdir().unwrap();
        let mut flags = vec!["--webhook-max-attempts".to_string(), "1".to_string()];
        if let Some((fuel, deadline_ms)) = self.limits {
            flags.extend([
                "--fuel".into(),
                fuel.to_string(),
                "--deadline-ms".into(),
                deadline_ms.to_string(),
            ]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = Server::start_with(&tmp.path().join("sandpipe.db"), &flags);
        let (clean_team, clean_token) = server.team("clean");
        let (team, token) = server.team("attacked");
        // Bundles are shared across teams; any team's token may upload.
        let [before, after, hostile, stand_in] =
            ["polite-before", "polite-after", self.name, "pass-through"]
                .map(|name| upload(&server, &token, name));
        let clean_chain =
            json!({"connectors": [{"bundle": before}, {"bundle": stand_in}, {"bundle": after}]});
        assert_eq!(
            server.put_chain(clean_team, &clean_token, clean_chain).0,
            200
        );
        let chain = json!({"connectors": [
            {"bundle": before}, {"bundle": hostile, "config": self.config}, {"bundle": after}
        ]});
        assert_eq!(server.put_chain(team, &token, chain).0, 200);

        let (status, clean) = server.events(clean_team, &clean_token, events_body());
        assert_eq!(status, 200, "{clean}");
        let started = Instant::now();
        let (status, attacked) = server.events(team, &token, events_body());
        let took = started.elapsed();
        assert_eq!(status, 200, "{}: {attacked}", self.name);
        assert!(took < REQUEST_BOUND, "{}: took {took:?}", self.name);
        let (failure, logged) = self.serve.unwrap_or((self.failure, self.logged));
        self.check_outputs(
            attacked["results"].as_array().unwrap(),
            clean["results"].as_array().unwrap(),
            failure,
        );
        assert_eq!(
            attacked["webhooks"].as_u64().unwrap(),
            clean["webhooks"].as_u64().unwrap() + self.composes,
            "{}",
            self.name
        );
        let failures = attacked["failures"].as_array().unwrap();
        let expected: Vec<(&str, &str)> = failure
            .map(|f| ("processEvent", f))
            .into_iter()
            .chain(self.compose_failure.map(|f| ("composeWebhook", f)))
            .collect();
        assert_eq!(
            failures.len(),
            expected.len(),
            "{}: {failures:?}",
            self.name
        );
        for (got, (stage, error)) in failures.iter().zip(expected) {
            assert_eq!(got["connector"], HOSTILE);
            assert_eq!(got["stage"], stage, "{}: {got}", self.name);
            let message = got["error"].as_str().unwrap();
            assert!(message.starts_with(error), "{}: {message}", self.name);
        }
        // The host keeps serving, and the clean team sees exactly what it saw.
        assert_eq!(server.call("GET", "/healthz", None, None).0, 200);
        let (_, again) = server.events(clean_team, &clean_token, events_body());
        assert_eq!(again, clean, "{}", self.name);
        let query = format!("connector={}", HOSTILE.replace(' ', "%20"));
        let messages = wait_for_log(&server, team, &token, &query, logged);
        assert!(
            logged.is_empty() || messages.iter().any(|m| m.contains(logged)),
            "{}: no {logged:?} in {messages:?}",
            self.name
        );
        let lines = log_lines(&server, team, &token, &query);
        for line in self.serve_lines.as_ref().unwrap_or(&self.lines) {
            assert!(
                lines.contains(line),
                "{}: no line {line:?} in {lines:?}",
                self.name
            );
        }
        // The polite connectors' logs hold nothing of the hostile one's:
        // only, when the delivery worker got to them, their own webhooks'
        // ends (the example destination does not resolve here).
        for polite in ["Polite%20Before%20(0)", "Polite%20After%20(2)"] {
            let query = format!("connector={polite}");
            let own_webhook = |m: &String| {
                m.starts_with("webhook ")
                    && m.contains(" to https://hooks.example.com/… is dead after 1 attempt: ")
            };
            let messages: Vec<String> = server
                .log_messages(team, &token, &query)
                .into_iter()
                .filter(|m| !own_webhook(m))
                .collect();
            assert_eq!(messages, Vec::<String>::new());
        }
    }

    fn run(&self) {
        self.run_cli(false);
        self.run_cli(true);
        self.run_service();
    }
}

/// The hostile connector's log, polled until `logged` shows (webhook refusals
/// are logged by the delivery worker, after the response).
fn wait_for_log(server: &Server, team: i64, token: &str, query: &str, logged: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let messages = server.log_messages(team, token, query);
        if messages.iter().any(|m| m.contains(logged))
            || started.elapsed() > Duration::from_secs(10)
        {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of `GET /v1/teams/{team}/logs?{query}` as `level: message`, oldest first.
fn log_lines(server: &Server, team: i64, token: &str, query: &str) -> Vec<String> {
    server
        .log_entries(team, token, query)
        .into_iter()
        .map(|(level, message)| format!("{level}: {message}"))
        .collect()
}

/// Builds a connector of the suite once per test binary.
fn bundle_bytes(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    if let Some(bytes) = built.lock().unwrap().get(name) {
        return bytes.clone();
    }
    let bytes = built_bytes(&dir(name));
    built.lock().unwrap().insert(name.into(), bytes.clone());
    bytes
}

fn built_bytes(dir: &Path) -> Vec<u8> {
    sandpipe_compiler::build(runtime(), dir).unwrap().bytes
}

fn upload(server: &Server, token: &str, name: &str) -> String {
    let (status, body) = server.upload(token, bundle_bytes(name));
    assert_eq!(status, 200, "{name}: {body}");
    body["id"].as_str().unwrap().to_string()
}

/// Uploads any bytes over a plain HTTP/1.1 connection: the service answers an
/// oversized body before reading it, so writing stops when it does.
fn upload_raw(server: &Server, token: &str, bytes: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /v1/bundles HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    for chunk in bytes.chunks(64 << 10) {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

/// `sandpipe run` over the suite's events, composed webhooks to a file.
fn run_args() -> Vec<String> {
    let events = dir("events.ndjson");
    [
        "run",
        "chain.json",
        "--events",
        events.to_str().unwrap(),
        "--webhooks",
        "webhooks.ndjson",
    ]
    .map(String::from)
    .to_vec()
}

/// The clean run (the well-behaved connectors around the pass-through stand-in),
/// through `sandpipe run`: its events and composed webhooks.
fn clean_cli() -> (Vec<Value>, String) {
    static CLEAN: OnceLock<(Vec<Value>, String)> = OnceLock::new();
    CLEAN
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let chain = json!({"connectors": [
                {"path": dir("polite-before")}, {"path": dir("pass-through")}, {"path": dir("polite-after")}
            ]});
            std::fs::write(tmp.path().join("chain.json"), chain.to_string()).unwrap();
            let output = sandpipe(&run_args(), tmp.path());
            assert!(output.status.success());
            let events: Vec<Value> = String::from_utf8(output.stdout)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            let webhooks = std::fs::read_to_string(tmp.path().join("webhooks.ndjson")).unwrap();
            assert_eq!(webhooks.lines().count(), 3);
            // Nothing logged (a machine slow enough to take a second prints
            // its progress, and a summary of this run with no failures).
            let summary = format!(
                "sandpipe: summary: 3 events in, {} out, {} dropped, 0 lines skipped, 3 webhooks; failures: none",
                events.len(),
                3 - events.len()
            );
            let log = String::from_utf8_lossy(&output.stderr);
            assert!(untimed(&log).iter().all(|line| *line == summary), "{log}");
            (events, webhooks)
        })
        .clone()
}

const NO_FETCH: &str =
    "host refused: fetch is not allowed for this connector (the operator allows no hosts)";
const FUEL: &str = "ran out of fuel (500000000 units per call)";
const MEMORY: &str = "reached its memory limit of 64 MiB";

#[test]
fn a_sync_infinite_loop() {
    Case::new("loop-sync", Some(FUEL), FUEL).run();
}

#[test]
fn an_infinite_loop_in_a_promise_job() {
    Case::new("loop-promise-job", Some(FUEL), FUEL).run();
}

#[test]
fn a_loop_of_cache_calls_that_burns_no_fuel() {
    let mut case = Case::new(
        "cache-call-loop",
        Some("exceeded its 300 ms deadline"),
        "exceeded its 300 ms deadline",
    );
    case.limits = Some((1 << 50, 300));
    case.run();
}

#[test]
fn a_loop_of_storage_calls_that_burns_no_fuel() {
    let mut case = Case::new(
        "storage-call-loop",
        Some("exceeded its 300 ms deadline"),
        "exceeded its 300 ms deadline",
    );
    case.limits = Some((1 << 50, 300));
    case.run();
}

#[test]
fn a_rust_infinite_loop() {
    // The same attack written in Rust (a standalone bundle): the same fuel.
    Case::new("rust-loop", Some(FUEL), FUEL).run();
}

#[test]
fn rust_memory_growth() {
    let mut case = Case::new("rust-memory-growth", Some(MEMORY), MEMORY);
    case.limits = Some((1 << 50, 2_000));
    case.run();
}

#[test]
fn rust_deep_recursion() {
    let error = "overflowed the wasm stack";
    Case::new("rust-deep-recursion", Some(error), error).run();
}

#[test]
fn string_doubling() {
    // QuickJS concatenates into ropes, so the length limit comes before memory.
    let error = "InternalError: string too long";
    Case::new("string-doubling", Some(error), error).run();
}

#[test]
fn array_growth() {
    // Fuel (tens of milliseconds of compute) would stop it first; with fuel
    // out of the way, the memory cap does.
    let mut case = Case::new("array-growth", Some(MEMORY), MEMORY);
    case.limits = Some((1 << 50, 2_000));
    case.run();
}

#[test]
fn a_huge_array_buffer() {
    Case::new("huge-arraybuffer", Some(MEMORY), MEMORY).run();
}

#[test]
fn deep_recursion() {
    // QuickJS's own stack check would throw a RangeError; the wasm stack
    // (512 KiB) runs out first and traps.
    let error = "overflowed the wasm stack";
    Case::new("deep-recursion", Some(error), error).run();
}

#[test]
fn returning_a_100_mb_string() {
    Case::new("huge-string-result", Some(MEMORY), MEMORY).run();
}

#[test]
fn returning_a_cyclic_object() {
    let error = "TypeError: circular reference";
    Case::new("cyclic-result", Some(error), error).run();
}

#[test]
fn returning_a_number() {
    let error = "TypeError: processEvent returned a number, expected an event object or null";
    Case::new("number-result", Some(error), error).run();
}

#[test]
fn returning_an_array() {
    let error = "TypeError: processEvent returned an array, expected an event object or null";
    Case::new("array-result", Some(error), error).run();
}

#[test]
fn returning_a_symbol() {
    let error = "TypeError: processEvent returned a symbol, expected an event object or null";
    Case::new("symbol-result", Some(error), error).run();
}

#[test]
fn throwing_null() {
    Case::new("throw-null", Some("threw null"), "threw null").run();
}

#[test]
fn throwing_a_plain_object() {
    let error = r#"threw {"message":"not an Error"}"#;
    Case::new("throw-object", Some(error), error).run();
}

#[test]
fn rejecting_with_a_number() {
    Case::new("throw-promise-rejection", Some("threw 42"), "threw 42").run();
}

#[test]
fn changing_team_id() {
    let error = "processEvent changed team_id, which a connector may not do";
    Case::new("team-id", Some(error), error).run();
}

#[test]
fn polluting_prototypes_then_trapping() {
    // The trap discards the instance; the next event's instance is clean
    // (else the hostile connector adds `leaked` and the outputs differ).
    Case::new("prototype-pollution", Some(FUEL), FUEL).run();
}

#[test]
fn polluting_prototypes_does_not_reach_other_connectors() {
    // Succeeds for itself; the well-behaved connectors' prototype checks see nothing.
    let mut case = Case::new("prototype-pollution-kept", None, "");
    case.serve = Some((None, ""));
    case.run();
}

#[test]
fn reading_files_and_env() {
    // Nothing it probed exists; the last door, `require('fs')`, throws. Each
    // probe logs what it found, and each line is expected on its own.
    let error = "Error: Cannot find module 'fs'";
    let mut case = Case::new("wasi-files-env", Some(error), error);
    case.lines = [
        "probe process.env: no process",
        "probe Javy.IO: no Javy",
        "probe quickjs std/os: no std; no os; no scriptArgs",
        "probe WebAssembly: no WebAssembly",
        "probe other runtime: no Deno; no Bun",
        "probe fs: threw Error: Cannot find module 'fs'",
    ]
    .map(|probe| format!("log: {probe}"))
    .to_vec();
    case.run();
}

/// The fetch-private case for one of its lists of `targets`: (URL, host as the
/// host names it, the address it resolves to, why that address is refused).
fn fetch_private(targets: &str, refusals: &[(&str, &str, String, &str)]) -> Case {
    let mut case = Case::new("fetch-private", None, "");
    case.config = json!({ "targets": targets });
    case.fetch = Some(json!({
        "allow_hosts": refusals.iter().map(|(_, host, _, _)| *host).collect::<Vec<_>>()
    }));
    // Each target refused on its own, with its reason: the error the connector
    // caught, and the host's line for the connector.
    for (url, host, address, why) in refusals {
        let reason =
            format!("fetch: {host} resolves to {address}, {why}, which connectors may not reach");
        case.lines
            .push(format!("log: refused {url}: TypeError: {reason}"));
        case.lines.push(format!("warn: host refused: {reason}"));
    }
    // The service gives connectors no fetch at all.
    let no_fetch = NO_FETCH.trim_start_matches("host refused: ");
    let mut serve_lines: Vec<String> = refusals
        .iter()
        .map(|(url, ..)| format!("log: refused {url}: TypeError: {no_fetch}"))
        .collect();
    serve_lines.push(format!("warn: {NO_FETCH}"));
    case.serve = Some((None, NO_FETCH));
    case.serve_lines = Some(serve_lines);
    case
}

#[test]
fn fetching_private_addresses() {
    use std::net::ToSocketAddrs;
    // `localhost` is refused at the first address it resolves to (127.0.0.1 or ::1).
    let localhost = ("localhost", 9)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
        .ip()
        .to_string();
    let loopback = "a loopback address";
    let metadata = "a cloud metadata address";
    let mut case = fetch_private(
        "direct",
        &[
            (
                "http://127.0.0.1:9/",
                "127.0.0.1",
                "127.0.0.1".into(),
                loopback,
            ),
            ("http://localhost:9/", "localhost", localhost, loopback),
            ("http://[::1]:9/", "[::1]", "::1".into(), loopback),
            (
                "http://0.0.0.0:9/",
                "0.0.0.0",
                "0.0.0.0".into(),
                "an unspecified address",
            ),
            (
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "169.254.169.254",
                "169.254.169.254".into(),
                metadata,
            ),
            (
                "http://169.254.10.10/",
                "169.254.10.10",
                "169.254.10.10".into(),
                "a link-local address",
            ),
            (
                "http://100.100.100.200/latest/meta-data/",
                "100.100.100.200",
                "100.100.100.200".into(),
                metadata,
            ),
            (
                "http://10.0.0.8/",
                "10.0.0.8",
                "10.0.0.8".into(),
                "a private address",
            ),
            (
                "http://192.168.1.1/admin",
                "192.168.1.1",
                "192.168.1.1".into(),
                "a private address",
            ),
            (
                "http://[fd00:ec2::254]/",
                "[fd00:ec2::254]",
                "fd00:ec2::254".into(),
                metadata,
            ),
            // IPv4-mapped: the URL parser writes the host in hex.
            (
                "http://[::ffff:127.0.0.1]:9/",
                "[::ffff:7f00:1]",
                "::ffff:127.0.0.1".into(),
                loopback,
            ),
            (
                "http://[::ffff:169.254.169.254]/",
                "[::ffff:a9fe:a9fe]",
                "::ffff:169.254.169.254".into(),
                metadata,
            ),
        ],
    );
    case.logged = "host refused: fetch: 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address";
    case.run();
}

#[test]
fn fetching_private_addresses_inside_ipv6_translations() {
    // NAT64 (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible (::/96)
    // addresses carry an IPv4 address the host must check as such.
    // These refusals come with fetch.rs's checks of the embedded address;
    // without them the host takes these for public addresses and connects
    // (the first attempt then runs out the call's deadline).
    let case = fetch_private(
        "translated",
        &[
            (
                "http://[64:ff9b::a9fe:a9fe]/",
                "[64:ff9b::a9fe:a9fe]",
                "64:ff9b::a9fe:a9fe".into(),
                "a cloud metadata address",
            ),
            (
                "http://[2002:7f00:1::]:9/",
                "[2002:7f00:1::]",
                "2002:7f00:1::".into(),
                "a loopback address",
            ),
            // The URL parser writes ::127.0.0.1 in hex.
            (
                "http://[::127.0.0.1]:9/",
                "[::7f00:1]",
                "::7f00:1".into(),
                "a loopback address",
            ),
        ],
    );
    case.run();
}

#[test]
fn fetching_through_a_redirect_to_the_metadata_address() {
    let port = redirector();
    let mut case = Case::new(
        "fetch-redirect",
        Some(
            "TypeError: fetch: 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address",
        ),
        "a cloud metadata address, which connectors may not reach",
    );
    case.config = json!({"redirector_port": port.to_string()});
    // The operator trusts loopback (and even lists the metadata host): the
    // metadata address is refused at the redirect hop all the same.
    case.fetch =
        Some(json!({"allow_hosts": ["127.0.0.1", "169.254.169.254"], "allow_private": true}));
    case.serve = Some((Some("TypeError: fetch is not allowed"), NO_FETCH));
    case.run();
}

#[test]
fn a_webhook_to_the_metadata_address() {
    // `sandpipe run` only writes composed webhooks; the service refuses to send it.
    let mut case = Case::new("webhook-private", None, "");
    case.composes = 1;
    case.serve = Some((
        None,
        "webhook to http://169.254.169.254/… refused: 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address",
    ));
    case.run();
}

#[test]
fn ten_thousand_webhooks_and_captures_from_one_event() {
    // One webhook per connector per event, whatever composeWebhook returns;
    // captured events are capped per processed event.
    let mut case = Case::new(
        "webhook-flood",
        None,
        "host refused: posthog.capture: at most 100 events per processed event",
    );
    case.compose_failure =
        Some("TypeError: composeWebhook returned an array, expected a request object or null");
    case.run();
}

/// An HTTP server on 127.0.0.1 whose every answer redirects to the metadata address.
fn redirector() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

// Bundles that must not load.

fn bundle_with(plugin_json: &str, body: &str) -> Vec<u8> {
    let section = json!({"abi_version": sandpipe_abi::ABI_VERSION, "main": "index.js",
        "source_sha256": "0".repeat(64), "plugin_json": plugin_json});
    let wat = format!(
        r#"(module {body} (func (export "sandpipe_start")) (@custom "sandpipe.manifest" "{}"))"#,
        section
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    wat::parse_str(wat).unwrap()
}

fn with_custom_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name.as_bytes());
    section.extend_from_slice(payload);
    wasm.push(0);
    leb128(section.len(), &mut wasm);
    wasm.extend_from_slice(&section);
    wasm
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Each refused bundle: a name, its bytes, and the exact reason.
fn refused_bundles() -> Vec<(&'static str, Vec<u8>, String)> {
    let plugin = r#"{"name": "Hostile", "config": []}"#;
    let good = bundle_bytes("loop-sync");
    let mut random = vec![0u8; 4096];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for byte in &mut random {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let huge_data = bundle_with(plugin, &format!(r#"(data "{}")"#, "\\00".repeat(5 << 20)));
    let entry_only = wat::parse_str(r#"(module (func (export "sandpipe_start")))"#).unwrap();
    let huge_manifest = with_custom_section(
        entry_only.clone(),
        "sandpipe.manifest",
        &vec![b' '; 100 << 20],
    );
    let import_rule = "which is not allowed (a bundle may import only sandpipe_plugin_v1's memory, sandpipe_reserve and sandpipe_load)";
    let standalone_rule = "which is not allowed (a standalone bundle may import only sandpipe_host_v1's log, request and response functions and the WASI preview 1 functions the plugin imports: clock_time_get, environ_get, environ_sizes_get, fd_close, fd_fdstat_get, fd_seek, fd_write, proc_exit, random_get)";
    // The Rust connector that reads /etc/passwd: std::fs makes its module
    // import WASI's file functions, the first of which is refused.
    let reads_files = build_dir(&dir("rust-reads-files"))
        .expect("the Rust connector builds")
        .bytes;
    vec![
        (
            "rust-reads-files.wasm",
            reads_files,
            format!("standalone bundle imports \"wasi_snapshot_preview1\".\"fd_filestat_get\", {standalone_rule}"),
        ),
        (
            "wasi-path-open.wasm",
            bundle_with(plugin, r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#),
            format!("bundle imports \"wasi_snapshot_preview1\".\"path_open\", {import_rule}"),
        ),
        (
            "wasi-environ.wasm",
            bundle_with(plugin, r#"(import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))"#),
            format!("bundle imports \"wasi_snapshot_preview1\".\"environ_get\", {import_rule}"),
        ),
        (
            "host-import.wasm",
            bundle_with(plugin, r#"(import "sandpipe_host_v1" "request" (func (param i32 i32 i32) (result i32)))"#),
            format!("bundle imports \"sandpipe_host_v1\".\"request\", {import_rule}"),
        ),
        (
            "own-4gib-memory.wasm",
            bundle_with(plugin, "(memory 65536)"),
            "bundle defines a memory, which a bundle may not (it runs in the plugin's memory)".into(),
        ),
        (
            "imported-4gib-memory.wasm",
            bundle_with(plugin, r#"(import "sandpipe_plugin_v1" "memory" (memory 65536))"#),
            "bundle imports sandpipe_plugin_v1's memory as 65536 pages minimum, maximum None; a bundle must import it with no minimum, no maximum, 32-bit and unshared".into(),
        ),
        (
            "active-data.wasm",
            bundle_with(plugin, r#"(import "sandpipe_plugin_v1" "memory" (memory 0)) (data (i32.const 1024) "overwrite the plugin")"#),
            "bundle defines an active data segment, which a bundle may not (it runs in the plugin's memory)".into(),
        ),
        (
            "start-function.wasm",
            bundle_with(plugin, "(func $boot) (start $boot)"),
            "bundle defines a start function, which a bundle may not (it runs in the plugin's memory)".into(),
        ),
        (
            "huge-data.wasm",
            huge_data.clone(),
            format!("bundle is {} bytes, over the 4194304-byte limit", huge_data.len()),
        ),
        (
            "truncated.wasm",
            good[..good.len() / 2].to_vec(),
            String::new(),
        ),
        ("random.wasm", random, String::new()),
        (
            "non-utf8-manifest.wasm",
            with_custom_section(entry_only, "sandpipe.manifest", &[0xff, 0xfe, 0x80]),
            String::new(),
        ),
        (
            "100mb-manifest.wasm",
            huge_manifest.clone(),
            format!("bundle is {} bytes, over the 4194304-byte limit", huge_manifest.len()),
        ),
    ]
}

#[test]
fn bundles_that_must_not_load_are_refused_by_run_and_by_the_service() {
    let (tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let [before, stand_in, after] =
        ["polite-before", "pass-through", "polite-after"].map(|name| upload(&server, &token, name));
    let chain =
        json!({"connectors": [{"bundle": before}, {"bundle": stand_in}, {"bundle": after}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (_, clean) = server.events(team, &token, events_body());
    for (name, bytes, reason) in refused_bundles() {
        // `sandpipe run`: the chain does not start; one line names the file and the reason.
        std::fs::write(tmp.path().join(name), &bytes).unwrap();
        let chain = json!({"connectors": [
            {"path": dir("polite-before")}, {"path": name}, {"path": dir("polite-after")}
        ]});
        std::fs::write(tmp.path().join("chain.json"), chain.to_string()).unwrap();
        let started = Instant::now();
        let output = sandpipe(&["run", "chain.json", "--events", "/dev/null"], tmp.path());
        std::fs::remove_file(tmp.path().join(name)).unwrap();
        assert!(started.elapsed() < RUN_BOUND, "{name}");
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        let line = stderr.trim_end();
        let prefix = format!("sandpipe: error: chain.json: connector 1: {name}: ");
        assert!(line.starts_with(&prefix), "{name}: {line}");
        // The service: refused with the same reason; the team's chain serves on.
        let (status, body) = upload_raw(&server, &token, &bytes);
        let message = body["error"].as_str().unwrap_or_default().to_string();
        assert!(status == 400 || status == 413, "{name}: {status} {body}");
        if reason.is_empty() {
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{name}: {message:?}"
            );
        } else {
            assert_eq!(line, format!("{prefix}{reason}"), "{name}");
            assert_eq!(message, reason, "{name}");
        }
        let (_, again) = server.events(team, &token, events_body());
        assert_eq!(again, clean, "{name}");
    }
}
