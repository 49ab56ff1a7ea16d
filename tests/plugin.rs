//! The guest plugin, exercised from Rust: one runtime per instance, every way
//! an author exports the special functions, sloppy mode, errors as values.

mod common;

use common::*;
use sandpipe_runtime::{CallError, MemoryLogs};
use serde_json::{Value, json};
use std::sync::Arc;

fn process(connector: &mut sandpipe_runtime::Connector, event: Value) -> Result<Value, CallError> {
    Ok(
        match connector.process_event(&serde_json::to_vec(&event).unwrap())? {
            Processed::Kept(kept) => Value::Object(kept.to_object().unwrap()),
            Processed::Dropped => Value::Null,
            Processed::Skipped => panic!("the connector defines no processEvent"),
        },
    )
}

#[test]
fn top_level_code_runs_once_across_calls() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "counter",
        r#"
        console.log('top level ran')
        let calls = 0
        export function processEvent(event) {
            calls += 1
            event.calls = calls
            return event
        }"#,
        0,
        &logs,
    );
    for expected in 1..=5 {
        assert_eq!(
            process(&mut c, json!({"event": "e"})).unwrap(),
            json!({"event": "e", "calls": expected})
        );
    }
    assert_eq!(logs.lines(), ["log: top level ran"]);
}

fn exports_process_event(js: &str) {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector("style", js, 0, &logs);
    assert!(
        c.defines(Call::ProcessEvent).unwrap(),
        "processEvent not found in:\n{js}"
    );
    assert_eq!(
        process(&mut c, json!({"event": "e"})).unwrap(),
        json!({"event": "e", "seen": true})
    );
}

#[test]
fn esm_named_export_is_found() {
    exports_process_event(
        "export function processEvent(event) { event.seen = true; return event }",
    );
}

#[test]
fn esm_const_arrow_export_is_found() {
    exports_process_event("export const processEvent = (event) => ({ ...event, seen: true })");
}

#[test]
fn commonjs_module_exports_object_is_found() {
    exports_process_event(
        "module.exports = { processEvent(event) { event.seen = true; return event } }",
    );
}

#[test]
fn commonjs_exports_property_is_found() {
    exports_process_event(
        "exports.processEvent = function (event) { event.seen = true; return event }",
    );
}

#[test]
fn default_exported_object_is_found() {
    exports_process_event(
        "export default { processEvent: (event) => { event.seen = true; return event } }",
    );
}

#[test]
fn plain_top_level_declaration_is_found() {
    exports_process_event("function processEvent(event) { event.seen = true; return event }");
}

#[test]
fn a_global_given_a_name_the_source_never_spells_is_found() {
    // The footer lists only the names the source spells; the rest are looked
    // up on the global object, where `typeof` would have found them.
    exports_process_event(
        "globalThis['process' + 'Event'] = function (event) { event.seen = true; return event }",
    );
}

#[test]
fn a_lexical_declaration_spelled_with_an_escape_is_found() {
    // `const` lives in the global lexical scope, not on the global object:
    // only the footer's `typeof` can see it, so a `\u` escape lists every name.
    exports_process_event(
        "const process\\u0045vent = (event) => { event.seen = true; return event }",
    );
}

#[test]
fn a_top_level_binding_that_is_not_a_function_hides_the_global() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "shadowed",
        "let processEvent = 5\nglobalThis.processEvent = (event) => event",
        0,
        &logs,
    );
    assert!(!c.defines(Call::ProcessEvent).unwrap());
}

#[test]
fn an_export_whose_getter_throws_counts_as_absent() {
    exports_process_event(
        r#"
        module.exports = { get processEvent() { throw new Error('not this one') } }
        function processEvent(event) { event.seen = true; return event }"#,
    );
}

#[test]
fn a_global_read_as_the_footer_reads_it() {
    // Names the source never spells are read from the global object as the
    // footer's `typeof` would: when the top level has run and before any job
    // (so a job's later assignment is not seen), with the footer's object as
    // the receiver, and a getter that throws failing the load.
    let logs = Arc::new(MemoryLogs::default());
    let mut receiver = connector(
        "receiver",
        "globalThis['process' + 'Event'] = function (event) { event.global = this === globalThis; return event }",
        0,
        &logs,
    );
    assert_eq!(
        process(&mut receiver, json!({"event": "e"})).unwrap(),
        json!({"event": "e", "global": false})
    );
    let mut late = connector(
        "late",
        "Promise.resolve().then(() => { globalThis['process' + 'Event'] = (event) => event })",
        0,
        &logs,
    );
    assert!(!late.defines(Call::ProcessEvent).unwrap());
    let mut throws = connector(
        "throws",
        "Object.defineProperty(globalThis, 'on' + 'Event', { get() { throw new Error('no onEvent here') } })\nfunction processEvent(event) { return event }",
        0,
        &logs,
    );
    let error = throws.defines(Call::ProcessEvent).unwrap_err().to_string();
    assert!(error.contains("no onEvent here"), "{error}");
}

#[test]
fn connector_code_runs_sloppy() {
    // Assigning to an undeclared variable, `with` and a sloppy `this` are all
    // errors or different in strict mode; PostHog ran connectors non-strict.
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "sloppy",
        r#"
        export function processEvent(event) {
            counter = (typeof counter === 'number' ? counter : 0) + 1
            with (event) { properties = { counter: counter } }
            event.sloppyThis = (function () { return this === globalThis })()
            return event
        }"#,
        0,
        &logs,
    );
    for n in 1..=2 {
        assert_eq!(
            process(&mut c, json!({"properties": {}})).unwrap(),
            json!({"properties": {"counter": n}, "sloppyThis": true})
        );
    }
}

#[test]
fn thrown_error_comes_back_with_its_message_and_stack() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "thrower",
        "function processEvent(event) {\n  throw new TypeError('bad event ' + event.event)\n}",
        0,
        &logs,
    );
    let CallError::Threw(error) = process(&mut c, json!({"event": "x"})).unwrap_err() else {
        panic!("expected a JS error")
    };
    assert_eq!(error.name.as_deref(), Some("TypeError"));
    assert_eq!(error.message, "bad event x");
    assert!(error.stack.contains("index.js:2"), "stack: {}", error.stack);
    // The instance survives a throw.
    assert!(c.is_live());
}

#[test]
fn thrown_non_error_values_are_described() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "odd",
        "function processEvent(e) { if (e.kind === 's') throw 'plain string'; if (e.kind === 'o') throw {code: 7}; throw Symbol('sym') }",
        0,
        &logs,
    );
    let message =
        |kind: &str, c: &mut sandpipe_runtime::Connector| match process(c, json!({"kind": kind})) {
            Err(CallError::Threw(e)) => (e.name, e.message),
            other => panic!("unexpected {other:?}"),
        };
    assert_eq!(message("s", &mut c), (None, "plain string".into()));
    assert_eq!(message("o", &mut c), (None, r#"{"code":7}"#.into()));
    assert_eq!(message("y", &mut c), (None, "Symbol(sym)".into()));
}

#[test]
fn async_process_event_is_awaited_and_rejections_are_errors() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "async",
        r#"
        async function later(value) { return value }
        export async function processEvent(event) {
            if (event.fail) throw new Error('rejected')
            event.awaited = await later(42)
            return event
        }"#,
        0,
        &logs,
    );
    assert_eq!(process(&mut c, json!({})).unwrap(), json!({"awaited": 42}));
    let CallError::Threw(error) = process(&mut c, json!({"fail": true})).unwrap_err() else {
        panic!()
    };
    assert_eq!(error.message, "rejected");
}

#[test]
fn setup_plugin_runs_once_with_meta_config() {
    let logs = Arc::new(MemoryLogs::default());
    let dir = connector_dir(
        "setup",
        r#"
        export function setupPlugin({ config, global }) {
            console.log('setup with', config.greeting)
            global.greeting = config.greeting.toUpperCase()
        }
        export function processEvent(event, { global }) { event.greeting = global.greeting; return event }"#,
        r#"{"key": "greeting", "default": "hi"}"#,
    );
    let bundle = bundle_at(dir.path());
    let mut c = connector_with(
        bundle,
        0,
        json!({"greeting": "hello"}),
        Default::default(),
        &logs,
    );
    for _ in 0..3 {
        assert_eq!(
            process(&mut c, json!({})).unwrap(),
            json!({"greeting": "HELLO"})
        );
    }
    assert_eq!(logs.lines(), ["log: setup with hello"]);
}

#[test]
fn deprecated_meta_apis_fail_with_a_clear_message() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "jobs",
        "function processEvent(e, meta) { meta.jobs.retry(e).runIn(1, 'seconds') }",
        0,
        &logs,
    );
    let CallError::Threw(error) = process(&mut c, json!({})).unwrap_err() else {
        panic!()
    };
    assert_eq!(
        error.message,
        "meta.jobs.retry() is not supported by sandpipe: jobs were removed from PostHog plugins"
    );
}

#[test]
fn console_levels_reach_the_log_sink() {
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector(
        "chatty",
        "function processEvent(e) { console.debug('d', 1); console.info({a: [1]}); console.warn('w'); console.error(new Error('boom')); return e }",
        3,
        &logs,
    );
    process(&mut c, json!({})).unwrap();
    let entries = logs.take();
    assert!(entries.iter().all(|e| e.connector == "chatty (3)"));
    let lines: Vec<String> = entries
        .iter()
        .map(|e| format!("{}: {}", e.level.as_str(), e.message))
        .collect();
    assert_eq!(lines[..3], ["debug: d 1", "info: {\"a\":[1]}", "warn: w"]);
    assert!(lines[3].starts_with("error: Error: boom\n"), "{}", lines[3]);
}

/// The error a connector's `processEvent` throws for `{"kind": kind}`.
fn thrown(c: &mut sandpipe_runtime::Connector, kind: &str) -> sandpipe_runtime::JsError {
    match process(c, json!({"kind": kind})) {
        Err(CallError::Threw(e)) => e,
        other => panic!("{kind}: expected a JS error, got {other:?}"),
    }
}

#[test]
fn thrown_values_are_bounded_with_a_marker() {
    let logs = Arc::new(MemoryLogs::default());
    // Building a 50 MB string takes more than the default fuel; the point here
    // is what happens to it once thrown.
    let limits = sandpipe_runtime::Limits {
        fuel: sandpipe_runtime::limits::MAX_FUEL,
        deadline: std::time::Duration::from_secs(10),
        ..sandpipe_runtime::Limits::default()
    };
    let mut c = connector_with(
        bundle(
            "huge-errors",
            r#"
        function processEvent(e) {
            switch (e.kind) {
                case 'error': throw new Error('x'.repeat(50e6))
                case 'string': throw 'y'.repeat(5e6)
                case 'object': throw { big: 'z'.repeat(1e6) }
                case 'name': { const err = new TypeError('short'); err.name = 'N'.repeat(10000); throw err }
                case 'stack': { const err = new Error('short'); err.stack = 's'.repeat(1e6); throw err }
                case 'surrogate': throw new Error('a'.repeat(4095) + '\u{1F600}b')
                case 'lone': throw new Error('lone \ud800 surrogate')
                case 'slice': {
                    // Replacing the methods the plugin cuts with changes nothing.
                    String.prototype.slice = function () { return String(this) }
                    String.prototype.substring = String.prototype.slice
                    throw new RangeError('w'.repeat(10000))
                }
            }
        }"#,
        ),
        0,
        Value::Null,
        limits,
        &logs,
    );
    let error = thrown(&mut c, "error");
    assert_eq!(error.name.as_deref(), Some("Error"));
    assert_eq!(
        error.message,
        format!("{}… [truncated 49,995,904 characters]", "x".repeat(4096))
    );
    assert!(error.stack.contains("index.js:4"), "{}", error.stack);
    assert!(error.stack.len() < 200, "{}", error.stack);

    let error = thrown(&mut c, "string");
    assert_eq!(error.name, None);
    assert_eq!(
        error.message,
        format!("{}… [truncated 4,995,904 characters]", "y".repeat(4096))
    );

    let error = thrown(&mut c, "object");
    assert_eq!(error.name, None);
    assert_eq!(
        error.message,
        format!(
            "{{\"big\":\"{}… [truncated 995,914 characters]",
            "z".repeat(4088)
        )
    );

    let error = thrown(&mut c, "name");
    assert_eq!(
        error.name.as_deref(),
        Some(format!("{}… [truncated 9,744 characters]", "N".repeat(256)).as_str())
    );
    assert_eq!(error.message, "short");

    let error = thrown(&mut c, "stack");
    assert_eq!(
        error.stack,
        format!("{}… [truncated 995,904 characters]", "s".repeat(4096))
    );

    // Never cut inside a surrogate pair; lone surrogates become U+FFFD.
    let error = thrown(&mut c, "surrogate");
    assert_eq!(
        error.message,
        format!("{}… [truncated 3 characters]", "a".repeat(4095))
    );
    assert_eq!(thrown(&mut c, "lone").message, "lone \u{FFFD} surrogate");

    let error = thrown(&mut c, "slice");
    assert_eq!(error.name.as_deref(), Some("RangeError"));
    assert_eq!(
        error.message,
        format!("{}… [truncated 5,904 characters]", "w".repeat(4096))
    );
    // Each was a throw: the instance lives on.
    assert!(c.is_live());
}

#[test]
fn the_cycle_collector_counts_large_allocations() {
    // Each call leaves a cycle (only the cycle collector frees it) holding a
    // 256 KiB buffer, an allocation QuickJS takes from the C allocator rather
    // than its small-block arenas. QuickJS books such a block at the size
    // malloc_usable_size reports; if that were 0 (as it was on WASI), each
    // would count as 8 bytes, the collector would wait for thousands of calls
    // and the instance would reach its 16 MiB cap in about 60 (seen: 6 traps in
    // these 400 calls).
    let logs = Arc::new(MemoryLogs::default());
    let mut c = connector_with(
        bundle(
            "cycles",
            r#"
            export function processEvent(event) {
                const holder = { bytes: new ArrayBuffer(256 * 1024) }
                holder.self = holder
                return event
            }"#,
        ),
        0,
        Value::Null,
        sandpipe_runtime::Limits {
            memory: 16 << 20,
            ..sandpipe_runtime::Limits::default()
        },
        &logs,
    );
    for call in 0..400 {
        if let Err(e) = process(&mut c, json!({"event": "e"})) {
            panic!("call {call}: {e}");
        }
    }
    assert!(logs.lines().is_empty(), "{:?}", logs.lines());
}
