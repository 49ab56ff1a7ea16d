//! The `sandpipe` command as users run it: build, inspect, run, and the
//! one-line errors they see.

mod common;

use common::{root, sandpipe, untimed, write_connector};
use serde_json::json;
use std::path::Path;
use std::process::Output;

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A failed command: exit code 1 and exactly one line on stderr.
fn one_line_error(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    text.trim_end().to_string()
}

/// Writes `chain` to `dir/chain.json` and `events` to `dir/events.ndjson`, then
/// runs `sandpipe run chain.json --events events.ndjson` and `flags` in `dir`.
/// `sandpipe ARGS` in `dir`, its stdin, stdout and stderr piped to the test.
fn spawn_piped(args: &[&str], dir: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(args)
        .current_dir(dir)
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_chain(dir: &Path, chain: serde_json::Value, events: &str, flags: &[&str]) -> Output {
    std::fs::write(dir.join("chain.json"), chain.to_string()).unwrap();
    std::fs::write(dir.join("events.ndjson"), events).unwrap();
    let run = ["run", "chain.json", "--events", "events.ndjson"];
    sandpipe(&[&run[..], flags].concat(), dir)
}

#[test]
fn build_is_deterministic_small_and_inspectable() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = root().join("examples/hello-world");
    let hello = hello.to_str().unwrap();
    for name in ["a.wasm", "b.wasm"] {
        let output = sandpipe(&["build", hello, "-o", name], tmp.path());
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let a = std::fs::read(tmp.path().join("a.wasm")).unwrap();
    assert_eq!(
        a,
        std::fs::read(tmp.path().join("b.wasm")).unwrap(),
        "two builds differ"
    );
    assert!(a.len() <= 64 * 1024, "bundle is {} bytes", a.len());

    let output = sandpipe(&["inspect", "a.wasm"], tmp.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.contains("name:          Hello World\n"), "{report}");
    assert!(
        report.contains(&format!("abi version:   {}\n", sandpipe_abi::ABI_VERSION)),
        "{report}"
    );
    assert!(
        report.contains(&format!("size:          {} bytes\n", a.len())),
        "{report}"
    );
    assert!(report.contains("imports:       sandpipe_plugin_v1.memory, sandpipe_plugin_v1.sandpipe_reserve, sandpipe_plugin_v1.sandpipe_load\n"), "{report}");
    assert!(
        report.contains("\n  name (string) — Person to greet\n"),
        "{report}"
    );
    assert!(report.contains("source sha256: "), "{report}");
    assert!(
        report.contains("\nhooks:         processEvent\n"),
        "{report}"
    );
    assert!(report.contains("\nnpm modules:   (none)\n"), "{report}");
}

/// `inspect` finds the hooks of a connector whose setupPlugin reads a
/// defaulted field, even when another field is required and has no default.
#[test]
fn inspect_readies_a_connector_with_its_defaults_when_a_required_field_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("needs"),
        "function setupPlugin({ config, global }) { global.keys = config.keys.split(',') }\n\
         function processEvent(e) { return e }",
        r#"{"name": "Needs", "config": [
            {"key": "keys", "type": "string", "default": "a,b"},
            {"key": "token", "type": "string", "required": true, "secret": true}
        ]}"#,
    );
    let built = sandpipe(&["build", "needs", "-o", "needs.wasm"], tmp.path());
    assert!(built.status.success(), "{}", stderr(&built));
    let output = sandpipe(&["inspect", "needs.wasm"], tmp.path());
    let report = stdout(&output);
    assert!(
        report.contains("\nhooks:         setupPlugin, processEvent\n"),
        "{report}"
    );
}

#[test]
fn a_syntax_error_fails_the_build_with_its_location() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("broken"),
        "export function processEvent(event) {\n  const a = {\n  return event\n}\n",
        r#"{"name": "broken"}"#,
    );
    let error = one_line_error(&sandpipe(&["build", "broken"], tmp.path()));
    assert_eq!(
        error,
        "sandpipe: error: index.js:3:10: SyntaxError: Expected `:` but found `Identifier`"
    );
    // In a chain, where every connector may have an index.js, the file is
    // named by its path.
    let hello = root().join("examples/hello-world");
    let chain = json!({"connectors": [{"path": hello}, {"path": "broken"}]});
    let error = one_line_error(&run_chain(tmp.path(), chain, "", &[]));
    assert_eq!(
        error,
        "sandpipe: error: chain.json: connector 1: broken/index.js:3:10: SyntaxError: Expected `:` but found `Identifier`"
    );
}

#[test]
fn plugin_json_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, json, expected) in [
        (
            "bad-json",
            "{\"name\": \"x\",}",
            "not valid JSON: trailing comma at line 1 column 14",
        ),
        (
            "bad-type",
            r#"{"name": "x", "config": [{"key": "n", "type": "number"}]}"#,
            "config[0] (key \"n\"): unknown type \"number\" (expected string, json, attachment or choice)",
        ),
        (
            "no-choices",
            r#"{"name": "x", "config": [{"key": "m", "type": "choice"}]}"#,
            "config[0] (key \"m\"): type \"choice\" needs a non-empty \"choices\" list",
        ),
        (
            "no-key",
            r#"{"name": "x", "config": [{"name": "Name", "type": "string"}]}"#,
            "config[0]: missing \"key\" (only a pure markdown block may omit it)",
        ),
    ] {
        write_connector(
            &tmp.path().join(name),
            "function processEvent(e) { return e }",
            json,
        );
        let error = one_line_error(&sandpipe(&["build", name], tmp.path()));
        assert_eq!(
            error,
            format!("sandpipe: error: {name}/plugin.json: {expected}")
        );
    }
    // A chain entry that is a source file is told what `path` takes.
    let chain = json!({"connectors": [{"path": "no-key/index.js"}]});
    assert_eq!(
        one_line_error(&run_chain(tmp.path(), chain, "", &[])),
        "sandpipe: error: chain.json: connector 0: no-key/index.js is neither a connector directory nor a .wasm bundle (`path` names the directory with plugin.json, or a built bundle)"
    );
    // A directory without one is told what a connector directory holds.
    std::fs::create_dir(tmp.path().join("no-manifest")).unwrap();
    std::fs::write(tmp.path().join("no-manifest/index.js"), "").unwrap();
    assert_eq!(
        one_line_error(&sandpipe(&["build", "no-manifest"], tmp.path())),
        "sandpipe: error: no-manifest: no plugin.json (a connector directory holds plugin.json and its index.js or index.ts; `sandpipe new NAME` makes one)"
    );
}

#[test]
fn run_processes_the_example_chain() {
    let examples = root().join("examples");
    let tmp = tempfile::tempdir().unwrap();
    let webhooks = tmp.path().join("webhooks.ndjson");
    let output = sandpipe(
        &[
            "run",
            "chain.json",
            "--events",
            "events.ndjson",
            "--webhooks",
            webhooks.to_str().unwrap(),
        ],
        &examples,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["properties"]["hello"], "Hello Ada");
    assert_eq!(
        lines[0]["properties"]["$plugins_succeeded"],
        serde_json::json!(["Hello World (0)"])
    );
    assert_eq!(
        lines[1]["properties"],
        serde_json::json!({"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []})
    );
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&webhooks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The $autocapture event composes no request.
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["connector", "url", "method", "headers", "body"]
    );
    assert_eq!(requests[0]["connector"], "Webhook (1)");
    assert_eq!(requests[0]["url"], "https://hooks.example.com/events");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(
        requests[0]["headers"],
        serde_json::json!({"Content-Type": "application/json"})
    );
    let body: serde_json::Value =
        serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["timestamp"], "2024-05-01T12:00:00.000Z");
    assert_eq!(body["properties"]["hello"], "Hello Ada");
}

#[test]
fn malformed_lines_are_reported_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = root().join("examples/hello-world");
    let output = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": hello}]}),
        "{\"event\":\"a\",\"properties\":{}}\n{not json\n\n[1,2]\n{\"event\":\"b\"}\n{\"properties\":{\"event\":\"c\"}}\n{\"event\":\"\"}\n",
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // One output line per input line: output line N answers input line N.
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"event": "a", "properties": {"hello": "Hello world", "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}}),
            json!({"error": "invalid JSON: key must be a string at line 1 column 2", "line": 2}),
            json!({"error": "empty line", "line": 3}),
            json!({"error": "an event must be a JSON object", "line": 4}),
            json!({"event": "b", "properties": {"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}}),
            // Refused as `serve` refuses them.
            json!({"error": UNNAMED, "line": 6}),
            json!({"error": UNNAMED, "line": 7}),
        ]
    );
    let errors = stderr(&output);
    assert!(
        errors.contains(&format!("sandpipe: events.ndjson:7: skipped: {UNNAMED}\n")),
        "{errors}"
    );
    assert!(errors.contains("sandpipe: events.ndjson:2: skipped: invalid JSON: key must be a string at line 1 column 2\n"), "{errors}");
    assert!(
        errors.contains("sandpipe: events.ndjson:4: skipped: an event must be a JSON object\n"),
        "{errors}"
    );
}

#[test]
fn a_line_that_is_not_utf8_is_refused_alone_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = root().join("examples/hello-world");
    std::fs::write(
        tmp.path().join("chain.json"),
        json!({"connectors": [{"path": hello}]}).to_string(),
    )
    .unwrap();
    // Latin-1 `é` (0xE9) on line 2, CRLF endings on lines 1 and 3.
    let events: &[u8] = b"{\"event\":\"a\"}\r\n{\"event\":\"b\xe9\"}\n{\"event\":\"c\"}\r\n";
    std::fs::write(tmp.path().join("events.ndjson"), events).unwrap();
    let expected = [
        json!({"event": "a", "properties": {"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}}),
        json!({"error": "not UTF-8: byte 12 of the line does not begin a character", "line": 2}),
        json!({"event": "c", "properties": {"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}}),
    ];
    let lines = |output: &Output| -> Vec<serde_json::Value> {
        stdout(output)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    for threads in ["1", "2"] {
        let output = sandpipe(
            &[
                "run",
                "chain.json",
                "--events",
                "events.ndjson",
                "--threads",
                threads,
            ],
            tmp.path(),
        );
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(lines(&output), expected, "{threads} threads");
        assert_eq!(
            untimed(&stderr(&output)),
            [
                "sandpipe: events.ndjson:2: skipped: not UTF-8: byte 12 of the line does not begin a character"
            ],
            "{threads} threads"
        );
    }
    // The same from stdin, named `-`.
    let mut child = spawn_piped(&["run", "chain.json", "--events", "-"], tmp.path());
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(events).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(lines(&output), expected);
    assert_eq!(
        untimed(&stderr(&output)),
        ["sandpipe: stdin:2: skipped: not UTF-8: byte 12 of the line does not begin a character"]
    );
}

/// Why `run` and `serve` refuse an object without an event name.
const UNNAMED: &str = "an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}";

#[test]
fn run_sends_export_batches_when_full_and_what_is_left_at_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("exporter"),
        r#"function exportEvents(events) {
            const names = events.map((e) => e.event).join(',')
            console.log('batch', names)
            if (names.includes('down')) throw new RetryError('destination down')
            if (names.includes('dn-')) throw new TypeError('cannot send ' + names)
        }"#,
        r#"{"name": "Exporter", "config": [{"key": "exportEventsBufferBytes", "type": "string"}]}"#,
    );
    // Each line's event is 15 bytes of JSON, 16 with its comma: two fit in 40, three do not.
    let chain =
        json!({"connectors": [{"path": "exporter", "config": {"exportEventsBufferBytes": "40"}}]});
    let events = "{\"event\":\"a-1\"}\n{\"event\":\"a-2\"}\n{\"event\":\"a-3\"}\n{\"event\":\"dn-\"}\n{\"event\":\"down\"}\n";
    let output = run_chain(tmp.path(), chain, events, &["--summary"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let errors = stderr(&output);
    let reports: Vec<&str> = errors
        .lines()
        .filter(|l| l.starts_with("[Exporter (0)] log:") || l.starts_with("sandpipe: events"))
        .collect();
    // Only a RetryError has a batch sent again, as in PostHog.
    let mut expected = vec![
        "[Exporter (0)] log: batch a-1,a-2",
        "[Exporter (0)] log: batch a-3,dn-",
        "sandpipe: events.ndjson:5: exportEvents of Exporter (0) (a batch of 2 events) failed; not called again (only a RetryError is)",
    ];
    expected.extend(["[Exporter (0)] log: batch down"; 5]);
    expected.push(
        "sandpipe: events.ndjson: at the end of the input: exportEvents of Exporter (0) (a batch of 1 event) failed 5 times; given up",
    );
    assert_eq!(reports, expected, "{errors}");
    // Every event went through the chain unchanged, and the failure is counted.
    assert_eq!(stdout(&output).lines().count(), 5);
    assert!(
        errors.contains("[Exporter (0)] error: exportEvents: RetryError: destination down"),
        "{errors}"
    );
    // Every call is costed: the two batches sent on the way and the five
    // attempts at the end of the input.
    let costs: Vec<&str> = errors
        .lines()
        .filter_map(|l| l.strip_prefix("sandpipe: cost: "))
        .map(|l| l.split("; fuel").next().unwrap())
        .collect();
    assert_eq!(costs, ["Exporter (0) exportEvents: 7 calls"], "{errors}");
}

/// A retry is asked for by throwing a `RetryError`, as PostHog tests it
/// (`instanceof`): a subclass with its own name asks; an error that only
/// takes the name does not.
#[test]
fn run_calls_on_event_again_for_an_instance_of_retry_error_only() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("exporter"),
        r#"class Busy extends RetryError { constructor(m) { super(m); this.name = 'Busy' } }
        function onEvent(e) {
            if (e.event === 'sub') throw new Busy('busy')
            throw Object.assign(new Error('not really'), { name: 'RetryError' })
        }"#,
        r#"{"name": "Exporter"}"#,
    );
    let chain = json!({"connectors": [{"path": "exporter"}]});
    let output = run_chain(
        tmp.path(),
        chain,
        "{\"event\":\"sub\"}\n{\"event\":\"named\"}\n",
        &[],
    );
    let errors = stderr(&output);
    let reports: Vec<&str> = errors
        .lines()
        .filter(|l| l.starts_with("sandpipe: events"))
        .collect();
    assert_eq!(
        reports,
        [
            "sandpipe: events.ndjson:1: onEvent of Exporter (0) failed 5 times; given up",
            "sandpipe: events.ndjson:2: onEvent of Exporter (0) failed; not called again (only a RetryError is)",
        ],
        "{errors}"
    );
}

#[test]
fn run_sends_an_export_buffer_whose_first_event_has_waited_when_the_next_line_comes() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("exporter"),
        "function processEvent(e) { console.log('saw', e.event); return e }
         function exportEvents(events) { console.log('batch', events.map((e) => e.event).join(',')) }",
        r#"{"name": "Exporter", "config": [{"key": "exportEventsBufferSeconds", "type": "string"}]}"#,
    );
    let chain =
        json!({"connectors": [{"path": "exporter", "config": {"exportEventsBufferSeconds": "1"}}]});
    std::fs::write(tmp.path().join("chain.json"), chain.to_string()).unwrap();
    let mut child = spawn_piped(&["run", "chain.json"], tmp.path());
    let mut input = child.stdin.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let reader = {
        let errors = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(errors)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    input.write_all(b"{\"event\":\"a\"}\n").unwrap();
    input.flush().unwrap();
    // However long start-up takes, `a` is in the buffer before the clock matters.
    while !seen
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("`a` processed within 60 s")
        .ends_with("log: saw a")
    {}
    // Longer than the buffer's second: the next line finds it due.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    input
        .write_all(b"{\"event\":\"b\"}\n{\"event\":\"c\"}\n")
        .unwrap();
    drop(input);
    let status = child.wait().unwrap();
    let errors = reader.join().unwrap();
    assert!(status.success(), "{errors}");
    let batches: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("log: batch"))
        .collect();
    assert_eq!(
        batches,
        [
            "[Exporter (0)] log: batch a",
            "[Exporter (0)] log: batch b,c"
        ],
        "{errors}"
    );
}

#[test]
fn a_connector_error_names_the_input_line_it_happened_on() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("picky"),
        "function processEvent(e) { console.log('saw', e.event); if (e.event === 'bad') throw new Error('no ' + e.event); return e }",
        r#"{"name": "Picky"}"#,
    );
    let chain = json!({"connectors": [{"path": "picky"}]});
    let events = "{\"event\":\"good\"}\n{\"event\":\"bad\"}\n";
    // On one thread and on two (where lines run on whichever thread is free).
    for threads in ["1", "2"] {
        let output = run_chain(tmp.path(), chain.clone(), events, &["--threads", threads]);
        assert!(output.status.success(), "{}", stderr(&output));
        let errors = stderr(&output);
        let mut lines: Vec<&str> = errors.lines().collect();
        lines.sort_unstable();
        // Console output as the connector wrote it; the error after its line.
        assert_eq!(
            lines,
            [
                "    at processEvent (index.js:1:104)",
                "[Picky (0)] log: saw bad",
                "[Picky (0)] log: saw good",
                "events.ndjson:2: [Picky (0)] error: processEvent: Error: no bad",
            ],
            "{threads} threads"
        );
    }
}

#[test]
fn strict_fails_the_run_when_a_connector_failed_and_summary_shows_costs() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("picky"),
        "function processEvent(e) { if (e.event === 'bad') throw new Error('no'); return e }",
        r#"{"name": "Picky"}"#,
    );
    let chain = json!({"connectors": [{"path": "picky"}]});
    let events = "{\"event\":\"good\"}\n{\"event\":\"bad\"}\n";
    let lenient = run_chain(tmp.path(), chain.clone(), events, &[]);
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    let strict = run_chain(
        tmp.path(),
        chain.clone(),
        events,
        &["--strict", "--summary"],
    );
    assert_eq!(strict.status.code(), Some(1));
    // The output is complete, and the failed event carries the bookkeeping.
    assert_eq!(
        stdout(&strict),
        "{\"event\":\"good\",\"properties\":{\"$plugins_succeeded\":[\"Picky (0)\"],\"$plugins_failed\":[]}}\n\
         {\"event\":\"bad\",\"properties\":{\"$plugins_succeeded\":[],\"$plugins_failed\":[\"Picky (0)\"]}}\n"
    );
    let errors = stderr(&strict);
    let last: Vec<&str> = errors.lines().rev().take(2).collect();
    assert_eq!(
        last[0],
        "sandpipe: error: --strict: connector calls failed (Picky (0): 1)"
    );
    assert!(
        last[1].starts_with("sandpipe: cost: Picky (0) processEvent: 2 calls; fuel p50 "),
        "{errors}"
    );
    let passing = run_chain(tmp.path(), chain, "{\"event\":\"good\"}\n", &["--strict"]);
    assert!(passing.status.success(), "{}", stderr(&passing));
}

#[test]
fn console_output_goes_to_stderr_prefixed_by_connector() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("talker"),
        "function processEvent(e) { console.log('hi'); console.warn('saw', e.event); return e }",
        r#"{"name": "Talker"}"#,
    );
    let output = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "talker"}]}),
        "{\"event\":\"e1\"}\n",
        &[],
    );
    assert!(output.status.success());
    // A warning, as an error, names the input line it happened on.
    assert_eq!(
        stderr(&output),
        "[Talker (0)] log: hi\nevents.ndjson:1: [Talker (0)] warn: saw e1\n"
    );
}

#[test]
fn a_forbidden_import_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(r#"(module (import "env" "system" (func (param i32))))"#).unwrap();
    std::fs::write(tmp.path().join("evil.wasm"), wasm).unwrap();
    let error = one_line_error(&run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "evil.wasm"}]}),
        "",
        &[],
    ));
    assert_eq!(
        error,
        "sandpipe: error: chain.json: connector 0: evil.wasm: bundle imports \"env\".\"system\", which is not allowed (a bundle may import only sandpipe_plugin_v1's memory, sandpipe_reserve and sandpipe_load)"
    );
}

#[test]
fn config_errors_are_reported_before_any_event_runs() {
    let examples = root().join("examples");
    let tmp = tempfile::tempdir().unwrap();
    let error = one_line_error(&run_chain(
        tmp.path(),
        json!({"connectors": [{"path": examples.join("webhook"), "config": {}}]}),
        "",
        &[],
    ));
    assert_eq!(
        error,
        "sandpipe: error: chain.json: connector 0 (Webhook): config field \"url\" is required but has no value"
    );
    // Every error of the connector's config on the one line.
    let error = one_line_error(&run_chain(
        tmp.path(),
        json!({"connectors": [{"path": examples.join("webhook"), "config": {"method": "PUSH", "extra": "x"}}]}),
        "",
        &[],
    ));
    assert_eq!(
        error,
        "sandpipe: error: chain.json: connector 0 (Webhook): config field \"extra\" is not declared in plugin.json (declared: url, method, bodyTemplate, headers, authorization); config field \"url\" is required but has no value; config field \"method\": \"PUSH\" is not one of \"POST\", \"PUT\", \"PATCH\""
    );
}

#[test]
fn a_memory_hog_is_contained_and_the_host_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("hog"),
        "const keep = []; function processEvent(e) { while (true) keep.push(new ArrayBuffer(1 << 20)) }",
        r#"{"name": "Hog"}"#,
    );
    let events: String = (0..20)
        .map(|i| format!("{{\"event\":\"e{i}\",\"properties\":{{}}}}\n"))
        .collect();
    let output = run_chain(
        tmp.path(),
        json!({"connectors": [
            {"path": "hog", "limits": {"fuel": 100_000_000_000_u64}},
            {"path": root().join("examples/hello-world")}
        ]}),
        &events,
        &["--summary"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 20);
    assert!(out.lines().all(|l| l.contains("\"hello\":\"Hello world\"")
        && l.contains("\"$plugins_failed\":[\"Hog (0)\"]")));
    let errors = stderr(&output);
    assert_eq!(
        errors
            .matches("[Hog (0)] error: processEvent: reached its memory limit of 64 MiB")
            .count(),
        20,
        "{errors}"
    );
    let summary = errors
        .lines()
        .find(|l| l.starts_with("sandpipe: summary: "))
        .unwrap();
    let rss: u64 = summary
        .rsplit("peak RSS ")
        .next()
        .unwrap()
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!(
        rss < 64 + 64,
        "peak RSS {rss} MiB is over the 64 MiB cap + 64 MiB: {summary}"
    );
}

#[test]
fn a_long_run_prints_a_summary_with_throughput_and_only_progress_besides() {
    let tmp = tempfile::tempdir().unwrap();
    let mut events = String::with_capacity(100_000 * 120);
    for i in 0..100_000 {
        events.push_str(&format!(
            "{{\"event\":\"e{}\",\"distinct_id\":\"user-{}\",\"team_id\":1,\"properties\":{{\"n\":{i},\"$current_url\":\"https://example.com/{}\"}}}}\n",
            i % 7,
            i % 1000,
            i % 13
        ));
    }
    std::fs::write(tmp.path().join("events.ndjson"), events).unwrap();
    let examples = root().join("examples");
    let output = sandpipe(
        &[
            "run",
            examples.join("chain.json").to_str().unwrap(),
            "--events",
            "events.ndjson",
            "--webhooks",
            "w.ndjson",
            // The summary however fast the machine: without it, only a run of a second or more has one.
            "--summary",
        ],
        tmp.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 100_000);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("w.ndjson"))
            .unwrap()
            .lines()
            .count(),
        100_000
    );
    let errors = stderr(&output);
    let lines: Vec<&str> = errors.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("sandpipe: summary: "))
        .unwrap_or_else(|| panic!("no summary: {errors}"));
    let summary = &lines[at]["sandpipe: summary: ".len()..];
    assert!(
        summary.starts_with("100000 events in, 100000 out, 0 dropped, 0 lines skipped, 100000 webhooks; failures: none; "),
        "{summary}"
    );
    assert!(summary.contains(" events/s; peak RSS "), "{summary}");
    // Before it, only progress (one line a second, as many as the machine's speed makes).
    assert_eq!(
        untimed(&lines[..at].join("\n")),
        Vec::<String>::new(),
        "{errors}"
    );
}

#[test]
fn storage_survives_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("visits"),
        "async function processEvent(e, { storage }) { const n = (await storage.get('visits', 0)) + 1; await storage.set('visits', n); e.visits = n; return e }",
        r#"{"name": "Visits"}"#,
    );
    let run = |flags: &[&str]| {
        run_chain(
            tmp.path(),
            json!({"connectors": [{"path": "visits"}]}),
            "{\"event\":\"a\"}\n{\"event\":\"b\"}\n",
            flags,
        )
    };
    let visits = |output: &Output| -> Vec<u64> {
        stdout(output)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["visits"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(visits(&first), [1, 2]);
    let second = run(&[]);
    assert_eq!(visits(&second), [3, 4]);
    assert!(tmp.path().join(".sandpipe/storage.db").is_file());
    // Another storage file starts empty.
    let other = run(&["--storage", "other.db"]);
    assert_eq!(visits(&other), [1, 2]);
    // The scope is the connector's id, not the chain file or the position: a
    // moved, renamed and reordered chain file with the same storage file keeps it.
    std::fs::create_dir(tmp.path().join("moved")).unwrap();
    std::fs::write(
        tmp.path().join("moved/events.ndjson"),
        "{\"event\":\"c\"}\n",
    )
    .unwrap();
    write_connector(
        &tmp.path().join("moved/first"),
        "function processEvent(e) { return e }",
        r#"{"name": "First"}"#,
    );
    let chain = json!({"connectors": [{"path": "first"}, {"path": "../visits"}]});
    std::fs::write(tmp.path().join("moved/renamed.json"), chain.to_string()).unwrap();
    let moved = sandpipe(
        &[
            "run",
            "renamed.json",
            "--events",
            "events.ndjson",
            "--storage",
            "../.sandpipe/storage.db",
        ],
        &tmp.path().join("moved"),
    );
    assert!(moved.status.success(), "{}", stderr(&moved));
    assert_eq!(visits(&moved), [5]);
}

#[test]
fn every_example_passes_its_fixtures() {
    for example in [
        "hello-world",
        "webhook",
        "property-filter",
        "schema-enforcer",
        // Reads data/GeoLite2-City.mmdb, which `cargo xtask test` fetches first.
        "geoip-enricher",
    ] {
        let dir = root().join("examples").join(example);
        let output = sandpipe(&["test", dir.to_str().unwrap()], &root());
        assert!(
            output.status.success(),
            "{example}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let report = stdout(&output);
        assert!(
            report
                .lines()
                .last()
                .unwrap()
                .ends_with(" passed, 0 failed"),
            "{report}"
        );
        assert!(!report.contains("FAIL"), "{report}");
    }
}

/// `sandpipe test`'s report without its cost lines (their times vary),
/// which are checked for their form.
fn report_without_costs(output: &Output) -> String {
    let text = stdout(output);
    let (costs, rest): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|line| line.starts_with("cost: "));
    for line in costs {
        // `cost: NAME (i) FUNCTION: N calls; fuel p50 X, p99 Y; µs p50 X, p99 Y`
        let (_, figures) = line
            .split_once(": ")
            .and_then(|(_, r)| r.split_once(": "))
            .unwrap();
        let words: Vec<&str> = figures.split(' ').collect();
        assert_eq!(
            words
                .iter()
                .filter(|w| !w
                    .trim_end_matches([',', ';'])
                    .chars()
                    .all(|c| c.is_ascii_digit()))
                // `1 call`, `2 calls`.
                .map(|w| if *w == "call;" { "calls;" } else { w })
                .collect::<Vec<_>>(),
            ["calls;", "fuel", "p50", "p99", "µs", "p50", "p99"],
            "{line}"
        );
    }
    rest.iter().map(|line| format!("{line}\n")).collect()
}

#[test]
fn a_failing_fixture_shows_every_difference_and_a_malformed_one_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("greeter");
    write_connector(
        &dir,
        "function processEvent(e) { e.properties.hi = 'there'; e.properties.n = 2; return e }",
        r#"{"name": "Greeter"}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("tests/a.json"),
        r#"{"name": "says hello", "input": {"properties": {}}, "expected": {"properties": {"hi": "hello", "n": 1}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/b.json"),
        r#"{"name": "keeps", "input": {"properties": {}}, "expected": {"properties": {"hi": "there", "n": 2}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/c.json"),
        r#"{"name": "no input", "expected": null}"#,
    )
    .unwrap();
    std::fs::write(dir.join("tests/d.json"), "{not json").unwrap();
    let output = sandpipe(&["test", "greeter"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        report_without_costs(&output),
        "FAIL a.json: says hello:\n  event 0: properties.hi: expected \"hello\", got \"there\"\n  event 0: properties.n: expected 1, got 2\n\
         PASS b.json: keeps\n\
         FAIL c.json: not a fixture: missing field `input`\n\
         FAIL d.json: not a fixture: key must be a string at line 1 column 2\n\
         1 passed, 3 failed\n"
    );
    assert!(stdout(&output).contains("cost: Greeter (0) processEvent: 2 calls; fuel p50 "));
    assert_eq!(
        stderr(&output),
        "sandpipe: error: 3 of 4 fixtures failed in greeter\n"
    );
}

#[test]
fn a_stateful_fixture_seeds_and_checks_storage_and_cache_and_update_rewrites_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("counter");
    write_connector(
        &dir,
        "async function processEvent(e, { storage, cache }) { const n = ((await storage.get('n')) || 0) + 1; await storage.set('n', n); e.properties.n = n; e.properties.hits = await cache.incr('hits'); return e }",
        r#"{"name": "Counter"}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let fixture = json!({
        "name": "counts on from the seed",
        "storage": {"n": 41},
        "cache": {"hits": 9},
        "input": [{"properties": {}}, {"properties": {}}],
        "expected": [{"properties": {"n": 42, "hits": 10}}, {"properties": {"n": 43, "hits": 11}}],
        "expected_storage": {"n": 43}
    });
    std::fs::write(dir.join("tests/count.json"), fixture.to_string()).unwrap();
    let output = sandpipe(&["test", "counter"], tmp.path());
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(
        report_without_costs(&output),
        "PASS count.json: counts on from the seed\n1 passed, 0 failed\n"
    );
    // The seed changes: the fixture fails with every difference, and
    // --update writes what the connector did.
    let mut stale = fixture.clone();
    stale["storage"] = json!({"n": 1});
    std::fs::write(dir.join("tests/count.json"), stale.to_string()).unwrap();
    let output = sandpipe(&["test", "counter"], tmp.path());
    assert_eq!(
        report_without_costs(&output),
        "FAIL count.json: counts on from the seed:\n  event 0: properties.n: expected 42, got 2\n  event 1: properties.n: expected 43, got 3\n  storage.n: expected 43, got 3\n0 passed, 1 failed\n"
    );
    let output = sandpipe(&["test", "counter", "--update"], tmp.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        report_without_costs(&output),
        "UPDATED count.json: counts on from the seed\n0 passed, 1 updated, 0 failed\n"
    );
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tests/count.json")).unwrap())
            .unwrap();
    let mut expected = stale.clone();
    expected["expected"] =
        json!([{"properties": {"n": 2, "hits": 10}}, {"properties": {"n": 3, "hits": 11}}]);
    expected["expected_storage"] = json!({"n": 3});
    assert_eq!(rewritten, expected);
    let output = sandpipe(&["test", "counter"], tmp.path());
    assert_eq!(
        report_without_costs(&output),
        "PASS count.json: counts on from the seed\n1 passed, 0 failed\n"
    );
    // A connector that throws: --update writes nothing, the FAIL says what
    // run would do with the event.
    let before = std::fs::read_to_string(dir.join("tests/count.json")).unwrap();
    std::fs::write(
        dir.join("index.js"),
        "function processEvent(e) { throw new Error('broken') }",
    )
    .unwrap();
    let output = sandpipe(&["test", "counter", "--update"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    let report = report_without_costs(&output);
    assert!(
        report.starts_with("FAIL count.json: counts on from the seed:\n  event 0: processEvent failed: Error: broken (run and serve pass the event on unchanged, with \"Counter (0)\" in properties.$plugins_failed)\n"),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tests/count.json")).unwrap(),
        before
    );
}

/// A fixture's config is checked as `run` checks a chain file's: every
/// error at once.
#[test]
fn a_fixture_with_config_errors_reports_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("typed");
    write_connector(
        &dir,
        "function processEvent(e) { return e }",
        r#"{"name": "Typed", "config": [{"key": "url", "type": "string", "required": true}]}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let fixture = json!({"name": "typed", "config": {"extra": 1}, "input": {"event": "a"}, "expected": {"event": "a"}});
    std::fs::write(dir.join("tests/typed.json"), fixture.to_string()).unwrap();
    let output = sandpipe(&["test", "typed"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        report_without_costs(&output),
        "FAIL typed.json: typed: config field \"extra\" is not declared in plugin.json (declared: url); config field \"url\" is required but has no value\n0 passed, 1 failed\n"
    );
}

#[test]
fn a_fixture_without_expected_fails_until_update_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tagger");
    write_connector(
        &dir,
        "function processEvent(e) { e.properties.tagged = true; return e }",
        r#"{"name": "Tagger"}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let fixture = json!({"name": "tags", "input": {"event": "a", "properties": {}}});
    std::fs::write(dir.join("tests/tags.json"), fixture.to_string()).unwrap();
    let output = sandpipe(&["test", "tagger"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        report_without_costs(&output),
        "FAIL tags.json: tags: no \"expected\" yet: `sandpipe test --update` records what the connector did\n0 passed, 1 failed\n"
    );
    let output = sandpipe(&["test", "tagger", "--update"], tmp.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tests/tags.json")).unwrap())
            .unwrap();
    // One event in, one event recorded (not a list of one).
    assert_eq!(
        recorded,
        json!({"name": "tags", "input": {"event": "a", "properties": {}}, "expected": {"event": "a", "properties": {"tagged": true}}})
    );
    let output = sandpipe(&["test", "tagger"], tmp.path());
    assert_eq!(
        report_without_costs(&output),
        "PASS tags.json: tags\n1 passed, 0 failed\n"
    );
    // `null` is an expectation (the event dropped), not a missing one.
    std::fs::write(
        dir.join("index.js"),
        "function processEvent(e) { return e.event === 'drop' ? null : e }",
    )
    .unwrap();
    let dropped = json!({"name": "drops", "input": {"event": "drop"}, "expected": null});
    std::fs::write(dir.join("tests/tags.json"), dropped.to_string()).unwrap();
    let output = sandpipe(&["test", "tagger"], tmp.path());
    assert_eq!(
        report_without_costs(&output),
        "PASS tags.json: drops\n1 passed, 0 failed\n"
    );
}

#[test]
fn a_fixture_that_states_the_bookkeeping_gets_the_event_as_run_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("picky");
    write_connector(
        &dir,
        "function processEvent(e) { if (e.properties.bad) throw new Error('bad event'); e.properties.seen = true; return e }\n\
         function composeWebhook(e) { return { url: 'https://hooks.example.com/in', body: JSON.stringify(e.properties) } }",
        r#"{"name": "Picky"}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    // Stated: compared with run's output, bookkeeping and all; the webhook is
    // composed on that event, as run composes it.
    let stated = json!({
        "name": "as run writes it",
        "input": [{"properties": {}}, {"properties": {"bad": 1}}],
        "expected": [
            {"properties": {"seen": true, "$plugins_succeeded": ["Picky (0)"], "$plugins_failed": []}},
            {"properties": {"bad": 1, "$plugins_succeeded": [], "$plugins_failed": ["Picky (0)"]}}
        ],
        "webhooks": [
            {"url": "https://hooks.example.com/in", "method": "POST", "headers": {"Content-Type": "application/json"},
             "body": "{\"seen\":true,\"$plugins_succeeded\":[\"Picky (0)\"],\"$plugins_failed\":[]}"},
            {"url": "https://hooks.example.com/in", "method": "POST", "headers": {"Content-Type": "application/json"},
             "body": "{\"bad\":1,\"$plugins_succeeded\":[],\"$plugins_failed\":[\"Picky (0)\"]}"}
        ]
    });
    std::fs::write(dir.join("tests/a.json"), stated.to_string()).unwrap();
    // Not stated: what processEvent returned, as PostHog's harness gives it.
    std::fs::write(
        dir.join("tests/b.json"),
        json!({"name": "as processEvent returns it", "input": {"properties": {}}, "expected": {"properties": {"seen": true}}}).to_string(),
    )
    .unwrap();
    // Stated wrongly: the failure is a difference like any other.
    let mut wrong = stated.clone();
    wrong["name"] = json!("says it succeeded");
    wrong["expected"][1]["properties"] =
        json!({"bad": 1, "$plugins_succeeded": ["Picky (0)"], "$plugins_failed": []});
    wrong.as_object_mut().unwrap().remove("webhooks");
    std::fs::write(dir.join("tests/c.json"), wrong.to_string()).unwrap();
    let output = sandpipe(&["test", "picky"], tmp.path());
    assert_eq!(
        report_without_costs(&output),
        "PASS a.json: as run writes it
\
         PASS b.json: as processEvent returns it
\
         FAIL c.json: says it succeeded:
  \
         event 1: properties.$plugins_succeeded: expected 1 items, got 0
  \
         event 1: properties.$plugins_failed: expected 0 items, got 1
\
         2 passed, 1 failed
"
    );
    // --update keeps each event's form: c.json is rewritten to what run wrote.
    let output = sandpipe(&["test", "picky", "--update"], tmp.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tests/c.json")).unwrap()).unwrap();
    assert_eq!(rewritten["expected"], stated["expected"]);
}

#[test]
fn attachments_reach_the_connector_as_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("blocklist"),
        r#"
        export function setupPlugin({ attachments, global }) {
            const file = attachments.blocked
            global.blocked = new Set(file.contents.toString().split('\n').map((l) => l.trim()).filter(Boolean))
            global.info = `${file.file_name} ${file.content_type} ${Buffer.isBuffer(file.contents)}`
        }
        export function processEvent(event, { global }) {
            if (global.blocked.has(event.distinct_id)) return null
            event.info = global.info
            return event
        }"#,
        r#"{"name": "Blocklist", "config": [{"key": "blocked", "type": "attachment", "required": true}]}"#,
    );
    std::fs::write(tmp.path().join("blocked.csv"), "bot-1\nbot-2\n").unwrap();
    let output = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "blocklist", "config": {"blocked": "blocked.csv"}}]}),
        "{\"event\":\"e\",\"distinct_id\":\"bot-2\"}\n{\"event\":\"e\",\"distinct_id\":\"human\"}\n",
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "null");
    let kept: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(kept["info"], "blocked.csv text/csv true");
}

/// A name with a space is a PostHog plugin's name like any other; the
/// command `new` suggests quotes it, so pasting it runs the fixture.
#[test]
fn new_suggests_a_command_that_names_the_directory_as_one_word() {
    let tmp = tempfile::tempdir().unwrap();
    let created = sandpipe(&["new", "two words"], tmp.path());
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(
        stderr(&created),
        "created two words: edit index.ts, then `sandpipe test 'two words'` (`npm install && npm run typecheck` in it checks the types)\n"
    );
    let tested = sandpipe(&["test", "two words"], tmp.path());
    assert!(tested.status.success(), "{}", stderr(&tested));
}

#[test]
fn new_scaffolds_a_typescript_connector_whose_fixture_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let created = sandpipe(&["new", "my-connector"], tmp.path());
    assert!(created.status.success(), "{}", stderr(&created));
    for file in [
        "plugin.json",
        "index.ts",
        "sandpipe.d.ts",
        "tests/greeting.json",
        "tsconfig.json",
        "package.json",
    ] {
        assert!(
            tmp.path().join("my-connector").join(file).is_file(),
            "{file} missing"
        );
    }
    let tested = sandpipe(&["test", "my-connector"], tmp.path());
    assert!(
        tested.status.success(),
        "{}{}",
        stdout(&tested),
        stderr(&tested)
    );
    assert_eq!(
        report_without_costs(&tested),
        "PASS greeting.json: adds the configured greeting\n1 passed, 0 failed\n"
    );
    let again = one_line_error(&sandpipe(&["new", "my-connector"], tmp.path()));
    assert_eq!(again, "sandpipe: error: my-connector: already exists");
    typecheck_with_tsc(&tmp.path().join("my-connector"));
}

/// `tsc --strict` (TypeScript from npm, the version `package.json` pins) on
/// a `sandpipe new` project with a file that uses every global the typings
/// declare, with and without the DOM library; and `sandpipe build
/// --typecheck` refusing a type error. Skipped, saying so, when npm cannot
/// install TypeScript (no network).
fn typecheck_with_tsc(project: &Path) {
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("package.json")).unwrap())
            .unwrap();
    let version = package["devDependencies"]["typescript"].as_str().unwrap();
    assert_eq!(package["scripts"]["typecheck"], "tsc -p .");
    let tools = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("typescript-{version}"));
    let tsc = tools.join("node_modules/.bin/tsc");
    if !tsc.is_file() {
        std::fs::create_dir_all(&tools).unwrap();
        let installed = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .arg(format!("typescript@{version}"))
            .current_dir(&tools)
            .status();
        if !matches!(installed, Ok(status) if status.success()) || !tsc.is_file() {
            eprintln!("skipped: npm could not install typescript@{version}");
            return;
        }
    }
    std::fs::write(
        project.join("uses.ts"),
        "/// <reference path=\"./sandpipe.d.ts\" />\n\
         export async function processEvent(event: PluginEvent, meta: Meta): Promise<PluginEvent> {\n\
             const found = await meta.geoip.locate('1.2.3.4')\n\
             const country: string | undefined = found?.country?.isoCode\n\
             const bytes: Buffer = Buffer.from('aGk=', 'base64')\n\
             const hex: string = crypto.createHash('sha256').update(bytes).digest('hex')\n\
             console.log(country, hex, crypto.randomUUID(), bytes.toString('hex'))\n\
             const response = await fetch('https://api.example.com/x', { method: 'POST', body: '{}' })\n\
             posthog.capture('seen', { body: await response.text(), ok: response.ok })\n\
             await meta.storage.set('k', await meta.cache.get('k', 0))\n\
             await new Promise<void>((resolve) => setTimeout(resolve, 10))\n\
             const ticking = setInterval((label: string) => console.log(label), 5, 'tick')\n\
             clearInterval(ticking)\n\
             clearTimeout(setTimeout(() => undefined))\n\
             queueMicrotask(() => console.log('later'))\n\
             return event\n\
         }\n",
    )
    .unwrap();
    // The web globals come from the WebWorker library the project's tsconfig names.
    std::fs::write(
        project.join("web.ts"),
        "/// <reference path=\"./sandpipe.d.ts\" />\n\
         export function processEvent(event: PluginEvent): PluginEvent {\n\
             const url = new URL('https://a.example/x?y=1')\n\
             const y = new URLSearchParams(url.search).get('y') ?? ''\n\
             const text = new TextDecoder().decode(new TextEncoder().encode(y))\n\
             const mac = crypto.createHmac('sha256', 'key').update(text).digest('hex')\n\
             console.log(btoa(text), atob('aGk='), structuredClone(event).event, mac)\n\
             return event\n\
         }\n",
    )
    .unwrap();
    for lib in [&[][..], &["--lib", "ES2022,DOM"][..]] {
        let checked = std::process::Command::new(&tsc)
            .args(["-p", "."])
            .args(lib)
            .current_dir(project)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "tsc {lib:?}: {}{}",
            stdout(&checked),
            stderr(&checked)
        );
    }
    // `build --typecheck` runs the project's tsc and refuses a type error.
    std::fs::create_dir_all(project.join("node_modules/.bin")).unwrap();
    std::os::unix::fs::symlink(&tsc, project.join("node_modules/.bin/tsc")).unwrap();
    let built = sandpipe(&["build", "--typecheck", "."], project);
    assert!(built.status.success(), "{}", stderr(&built));
    std::fs::write(project.join("wrong.ts"), "export const n: number = 'one'\n").unwrap();
    let refused = sandpipe(&["build", "--typecheck", "."], project);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("wrong.ts(1,14): error TS2322"),
        "{}",
        stdout(&refused)
    );
    assert_eq!(
        stderr(&refused),
        "sandpipe: error: .: type errors (tsc -p .)\n"
    );
}

#[test]
fn the_geoip_chain_enriches_greets_and_filters() {
    let output = sandpipe(
        &[
            "run",
            "examples/geoip-chain.json",
            "--events",
            "examples/events.ndjson",
        ],
        &root(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let events: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    let first = &events[0];
    assert_eq!(
        first.get("ip"),
        None,
        "property-filter removes the ip for $ip"
    );
    let properties = &first["properties"];
    assert_eq!(properties["$geoip_country_code"], "GB");
    assert_eq!(properties["$geoip_time_zone"], "Europe/London");
    assert_eq!(properties["hello"], "Hello Ada");
    assert_eq!(properties.get("$geoip_latitude"), None);
    assert_eq!(properties["$set"].get("$geoip_longitude"), None);
    assert_eq!(
        properties["$plugins_succeeded"],
        serde_json::json!([
            "GeoIP Enricher (0)",
            "Hello World (1)",
            "Property Filter (2)"
        ])
    );
    assert_eq!(events[2]["properties"]["$geoip_country_code"], "SE");
    assert_eq!(events[2]["properties"].get("$ip"), None);
}

#[test]
fn run_on_threads_writes_what_one_thread_writes_in_input_order_and_shares_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("tagger"),
        "function processEvent(e) { if (e.event === 'drop') return null; if (e.event === 'boom') throw new Error('boom'); e.properties = { ...e.properties, tag: e.event.toUpperCase() }; return e }\n\
         function composeWebhook(e) { return { url: 'https://hooks.example.com/' + e.event, body: String(e.properties.n) } }",
        r#"{"name": "Tagger"}"#,
    );
    let mut events = String::new();
    for n in 0..1000 {
        let name = ["view", "drop", "boom", "click"][n % 4];
        if n % 97 == 0 {
            events.push_str("{not json\n");
        }
        events.push_str(&format!(
            "{{\"event\":\"{name}\",\"properties\":{{\"n\":{n}}}}}\n"
        ));
    }
    let chain = json!({"connectors": [{"path": "tagger"}]});
    let one = run_chain(
        tmp.path(),
        chain.clone(),
        &events,
        &["--webhooks", "one.ndjson"],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    let three = run_chain(
        tmp.path(),
        chain,
        &events,
        &["--threads", "3", "--webhooks", "three.ndjson"],
    );
    assert!(three.status.success(), "{}", stderr(&three));
    assert_eq!(stdout(&three), stdout(&one));
    assert_eq!(stdout(&one).lines().count(), events.lines().count());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("three.ndjson")).unwrap(),
        std::fs::read_to_string(tmp.path().join("one.ndjson")).unwrap()
    );
    // Each chain has its own instances, but meta.cache is the configured
    // connector's: every increment is seen once across the threads.
    write_connector(
        &tmp.path().join("counter"),
        "async function processEvent(e, { cache }) { e.properties.seen = await cache.incr('seen'); return e }",
        r#"{"name": "Counter"}"#,
    );
    let chain = json!({"connectors": [{"path": "counter"}]});
    let events = "{\"event\":\"e\",\"properties\":{}}\n".repeat(600);
    let output = run_chain(tmp.path(), chain, &events, &["--threads", "4"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut seen: Vec<u64> = stdout(&output)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["properties"]["seen"]
                .as_u64()
                .unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=600).collect::<Vec<u64>>());
    let zero = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "counter"}]}),
        "",
        &["--threads", "0"],
    );
    assert_eq!(zero.status.code(), Some(2));
    // Each thread readies its own connectors first: a number past the cap is refused, not tried.
    let many = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "counter"}]}),
        "",
        &["--threads", "100000"],
    );
    assert_eq!(many.status.code(), Some(2));
    assert!(
        stderr(&many)
            .contains("invalid value '100000' for '--threads <THREADS>': at most 256 threads"),
        "{}",
        stderr(&many)
    );
    assert!(
        stderr(&zero).contains("invalid value '0' for '--threads <THREADS>'"),
        "{}",
        stderr(&zero)
    );
}

#[test]
fn run_on_threads_ends_when_its_output_is_closed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("tagger"),
        "function processEvent(e) { e.properties.tag = 'x'.repeat(200); return e }",
        r#"{"name": "Tagger"}"#,
    );
    std::fs::write(
        tmp.path().join("chain.json"),
        json!({"connectors": [{"path": "tagger"}]}).to_string(),
    )
    .unwrap();
    let events = "{\"event\":\"e\",\"properties\":{}}\n".repeat(20_000);
    std::fs::write(tmp.path().join("events.ndjson"), events).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args([
            "run",
            "chain.json",
            "--events",
            "events.ndjson",
            "--threads",
            "2",
        ])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader of its output goes away, as `| head -1` does.
    drop(child.stdout.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("sandpipe run --threads 2 hung after its output closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn without_fuel_a_loop_is_stopped_by_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("looper"),
        "function processEvent(e) { if (e.event === 'spin') while (true) {} return e }",
        r#"{"name": "Looper"}"#,
    );
    let chain = json!({"connectors": [{"path": "looper", "limits": {"fuel": 1_000_000, "deadline_ms": 100}}]});
    let events = "{\"event\":\"spin\"}\n{\"event\":\"after\"}\n";
    // Metered: the loop runs out of fuel long before its deadline.
    let metered = run_chain(tmp.path(), chain.clone(), events, &[]);
    assert!(metered.status.success(), "{}", stderr(&metered));
    assert!(
        stderr(&metered).contains(
            "[Looper (0)] error: processEvent: ran out of fuel (1000000 units per call)\n"
        ),
        "{}",
        stderr(&metered)
    );
    // --no-fuel: the same loop is stopped by the wall-clock deadline, and the chain goes on.
    let unmetered = run_chain(tmp.path(), chain, events, &["--no-fuel"]);
    assert!(unmetered.status.success(), "{}", stderr(&unmetered));
    assert!(
        stderr(&unmetered)
            .contains("[Looper (0)] error: processEvent: exceeded its 100 ms deadline\n"),
        "{}",
        stderr(&unmetered)
    );
    let names: Vec<String> = stdout(&unmetered)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(names, ["\"spin\"", "\"after\""]);
    // The environment form, as SECURITY.md writes it.
    let from_env = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(["run", "chain.json", "--events", "events.ndjson"])
        .current_dir(tmp.path())
        .env("SANDPIPE_NO_FUEL", "1")
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .output()
        .unwrap();
    assert!(
        stderr(&from_env)
            .contains("[Looper (0)] error: processEvent: exceeded its 100 ms deadline\n"),
        "{}",
        stderr(&from_env)
    );
}

#[test]
fn a_typescript_throw_reports_its_own_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.json"),
        r#"{"name": "Typed", "main": "index.ts"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("index.ts"),
        "// A connector whose types take lines the JavaScript does not have.\ninterface Event {\n    event: string\n    properties: Record<string, unknown>\n}\n\nexport function processEvent(event: Event): Event {\n    const name: string = event.event\n    throw new Error(`no ${name}`)\n}\n",
    )
    .unwrap();
    let output = run_chain(
        tmp.path(),
        json!({"connectors": [{"path": "ts"}]}),
        "{\"event\":\"e\"}\n",
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let errors = stderr(&output);
    assert!(errors.contains("Error: no e"), "{errors}");
    assert!(errors.contains("(index.ts:9:"), "{errors}");
}

/// `marked` with its ⟨marked⟩ parts kept (TypeScript) or blanked (the same
/// program as JavaScript, every other character in its column).
fn typed_and_blanked(marked: &str) -> (String, String) {
    let (mut typed, mut blanked, mut inside) = (String::new(), String::new(), false);
    for c in marked.chars() {
        match c {
            '⟨' => inside = true,
            '⟩' => inside = false,
            c => {
                typed.push(c);
                blanked.push(if inside { ' ' } else { c });
            }
        }
    }
    (typed, blanked)
}

#[test]
fn a_typescript_throw_reports_the_line_and_column_its_javascript_twin_reports() {
    let marked = "⟨interface Ev { event: string; properties: Record<string, number> }⟩\n\
        function check⟨<T>⟩(value⟨: T | undefined⟩, name⟨: string⟩)⟨: T⟩ { if (!value) throw new Error(`missing ${name}`); return value }\n\
        \n\
        export function processEvent(event⟨: Ev⟩)⟨: Ev⟩ {\n\
        \x20   const n⟨: number⟩ = check(event.properties.n, 'n'); const m⟨: number⟩ = n * 2; if (event.event === 'b') throw new TypeError('b ' + m)\n\
        \x20   const o⟨: { x: number }⟩ = { x: m }; if (event.event === 'c') (o.x ⟨as any⟩).go()\n\
        \x20   return event\n\
        }\n";
    let (typed, blanked) = typed_and_blanked(marked);
    let tmp = tempfile::tempdir().unwrap();
    for (dir, main, source) in [("ts", "index.ts", &typed), ("js", "index.js", &blanked)] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::write(
            tmp.path().join(dir).join("plugin.json"),
            format!(r#"{{"name": "Twin", "main": "{main}"}}"#),
        )
        .unwrap();
        std::fs::write(tmp.path().join(dir).join(main), source).unwrap();
    }
    let events = "{\"event\":\"a\",\"properties\":{}}\n{\"event\":\"b\",\"properties\":{\"n\":2}}\n{\"event\":\"c\",\"properties\":{\"n\":3}}\n";
    let positions = |dir: &str, main: &str| {
        let output = run_chain(
            tmp.path(),
            json!({"connectors": [{"path": dir}]}),
            events,
            &[],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let errors = stderr(&output);
        let found: Vec<String> = errors
            .split(&format!("{main}:"))
            .skip(1)
            .map(|rest| rest.split(')').next().unwrap().to_string())
            .collect();
        (errors, found)
    };
    let (ts_errors, ts) = positions("ts", "index.ts");
    let (js_errors, js) = positions("js", "index.js");
    // Three throws, each with at least the processEvent frame.
    assert!(ts.len() >= 4, "{ts_errors}");
    assert_eq!(ts, js, "{ts_errors}\n{js_errors}");
    for message in [
        "Error: missing n",
        "TypeError: b 4",
        "TypeError: not a function",
    ] {
        assert!(ts_errors.contains(message), "{message}: {ts_errors}");
    }
}

#[test]
fn dev_reruns_the_fixtures_when_a_file_changes() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("greeter");
    write_connector(
        &dir,
        "function processEvent(e) { e.properties.hi = 'there'; return e }",
        r#"{"name": "Greeter"}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("tests/a.json"),
        r#"{"name": "greets", "input": {"properties": {}}, "expected": {"properties": {"hi": "there"}}}"#,
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(["dev", "greeter"])
        .current_dir(tmp.path())
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Lines until one that starts with `until` (at most 20 s), cost lines left out.
    let read_until = |until: &str| -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = received
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {until:?} after {seen:?}"));
            if line.starts_with("cost: ") {
                continue;
            }
            let done = line.starts_with(until);
            seen.push(line);
            if done {
                return seen;
            }
        }
    };
    let first = read_until("sandpipe: watching ");
    assert_eq!(first[..2], ["PASS a.json: greets", "1 passed, 0 failed"]);
    std::fs::write(
        dir.join("index.js"),
        "function processEvent(e) { e.properties.hi = 'hello'; e.properties.n = 1; return e }",
    )
    .unwrap();
    let second = read_until("sandpipe: watching ");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        second[..second.len() - 1],
        [
            "sandpipe: changed: index.js",
            "FAIL a.json: greets:",
            "  event 0: properties.hi: expected \"there\", got \"hello\"",
            "  event 0: properties.n: not expected, got 1",
            "0 passed, 1 failed"
        ]
    );
}

/// `sandpipe run CHAIN` of the GeoIP example from `cwd`, with `HOME` and
/// `XDG_DATA_HOME` as given and no `SANDPIPE_GEOIP_DB`.
fn run_geoip_example(cwd: &Path, home: &Path, data_home: Option<&Path>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"));
    command
        .args(["run", "--strict"])
        .arg(root().join("examples/geoip-chain.json"))
        .arg("--events")
        .arg(root().join("examples/events.ndjson"))
        .current_dir(cwd)
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .env("HOME", home)
        .env_remove("SANDPIPE_GEOIP_DB")
        .env_remove("XDG_DATA_HOME");
    if let Some(dir) = data_home {
        command.env("XDG_DATA_HOME", dir);
    }
    command.output().unwrap()
}

#[test]
fn run_from_an_unrelated_directory_reads_the_users_geoip_database() {
    // Reads data/GeoLite2-City.mmdb, which `cargo xtask test` fetches first.
    let checkout = root().join("data/GeoLite2-City.mmdb");
    let expected = sandpipe(
        &[
            "run",
            "examples/geoip-chain.json",
            "--events",
            "examples/events.ndjson",
            "--geoip",
            checkout.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(expected.status.success(), "{}", stderr(&expected));
    assert!(stdout(&expected).contains("\"$geoip_country_code\""));

    let elsewhere = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data_home = tempfile::tempdir().unwrap();
    for dir in [
        home.path().join(".local/share"),
        data_home.path().to_path_buf(),
    ] {
        std::fs::create_dir_all(dir.join("sandpipe")).unwrap();
        std::os::unix::fs::symlink(&checkout, dir.join("sandpipe/GeoLite2-City.mmdb")).unwrap();
    }
    // ~/.local/share/sandpipe when XDG_DATA_HOME is unset, $XDG_DATA_HOME/sandpipe when set.
    let from_home = run_geoip_example(elsewhere.path(), home.path(), None);
    assert!(from_home.status.success(), "{}", stderr(&from_home));
    assert_eq!(stdout(&from_home), stdout(&expected));
    let empty_home = tempfile::tempdir().unwrap();
    let from_xdg = run_geoip_example(elsewhere.path(), empty_home.path(), Some(data_home.path()));
    assert!(from_xdg.status.success(), "{}", stderr(&from_xdg));
    assert_eq!(stdout(&from_xdg), stdout(&expected));
}

#[test]
fn without_a_geoip_database_the_error_names_every_place_looked() {
    let elsewhere = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let output = run_geoip_example(elsewhere.path(), home.path(), None);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "{}:1: [GeoIP Enricher (0)] error: processEvent: Error: meta.geoip is not available: no GeoLite2-City database at {}/.local/share/sandpipe/GeoLite2-City.mmdb or data/GeoLite2-City.mmdb; pass --geoip FILE, set SANDPIPE_GEOIP_DB, or run `cargo xtask geoip`",
        root().join("examples/events.ndjson").display(),
        home.path().display()
    );
    let errors = stderr(&output);
    assert!(
        errors.lines().any(|line| line == expected),
        "no line {expected:?} in:\n{errors}"
    );
}

#[test]
fn run_at_the_shared_level_writes_what_the_default_level_writes() {
    let examples = root().join("examples");
    let tmp = tempfile::tempdir().unwrap();
    let chain = serde_json::json!({"connectors": [
        {"path": examples.join("hello-world"), "config": {"name": "Ada"}},
        {"path": examples.join("property-filter"), "config": {"properties": "$ip, hello"}},
        {"path": examples.join("webhook"), "config": {"url": "https://hooks.example.com/e"}},
    ]});
    let events = std::fs::read_to_string(examples.join("events.ndjson")).unwrap();
    let at = |flags: &[&str]| {
        let output = run_chain(tmp.path(), chain.clone(), &events, flags);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let default = at(&[]);
    assert_eq!(default.lines().count(), events.lines().count());
    assert_eq!(at(&["--isolation", "shared"]), default);
    assert_eq!(at(&["--isolation", "instance"]), default);
    let summary = |flags: &[&str]| {
        let output = run_chain(tmp.path(), chain.clone(), &events, flags);
        stderr(&output)
            .lines()
            .find(|line| line.starts_with("sandpipe: summary:"))
            .map(str::to_string)
            .unwrap()
    };
    assert!(summary(&["--summary", "--isolation", "shared"]).ends_with("; shared instance"));
    assert!(summary(&["--summary"]).ends_with(" MiB"));
    let refused = run_chain(tmp.path(), chain.clone(), &events, &["--isolation", "one"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("invalid value 'one' for '--isolation <ISOLATION>'"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_chain_files_isolation_is_refused_by_what_was_expected_and_a_moved_connector_is_summarised() {
    let tmp = tempfile::tempdir().unwrap();
    write_connector(
        &tmp.path().join("looper"),
        "export function processEvent(e) { if (e.event === 'loop') { for (;;) {} } return e }",
        r#"{"name": "Looper"}"#,
    );
    let hello = root().join("examples/hello-world");
    let events = "{\"event\":\"a\",\"properties\":{}}\n{\"event\":\"loop\",\"properties\":{}}\n";
    for (isolation, expected) in [
        (
            json!(1),
            r#"invalid type: integer `1`, expected the isolation level "instance" or "shared" at line 1 column"#,
        ),
        (
            json!("sharde"),
            r#"invalid value: string "sharde", expected the isolation level "instance" or "shared" at line 1 column"#,
        ),
    ] {
        let chain = json!({"connectors": [{"path": "looper"}], "isolation": isolation});
        let refused = run_chain(tmp.path(), chain, events, &[]);
        assert_eq!(refused.status.code(), Some(1));
        let line = stderr(&refused);
        assert!(
            line.starts_with(&format!(
                "sandpipe: error: chain.json: not a chain file: {expected}"
            )),
            "{line}"
        );
    }
    let chain = json!({"connectors": [
        {"path": hello},
        {"path": "looper", "limits": {"fuel": 50_000_000}},
    ], "isolation": "shared"});
    for threads in ["1", "2"] {
        let output = run_chain(
            tmp.path(),
            chain.clone(),
            events,
            &["--summary", "--threads", threads],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let errors = stderr(&output);
        let summary = errors
            .lines()
            .find(|line| line.starts_with("sandpipe: summary:"))
            .unwrap();
        assert!(
            summary.ends_with(
                "; shared instance, but on instances of their own after an error there: Looper (1)"
            ),
            "{summary}"
        );
    }
}
