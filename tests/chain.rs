//! PostHog's chain rules, end to end through real bundles.

mod common;

use common::*;
use sandpipe_runtime::{CallError, Chain, Limits, MemoryLogs, WebhookRequest};
use serde_json::{Value, json};
use std::sync::Arc;

fn hello(config: Value, logs: &Arc<MemoryLogs>) -> Chain {
    Chain::new(vec![connector_with(
        example("hello-world"),
        0,
        config,
        Limits::default(),
        logs,
    )])
}

#[test]
fn hello_world_greets_by_configured_name() {
    let logs = Arc::new(MemoryLogs::default());
    let out = hello(json!({"name": "Ada"}), &logs)
        .process(json!({"event": "pageview", "properties": {}}));
    assert_eq!(
        out.event.unwrap(),
        json!({"event": "pageview", "properties": {
            "hello": "Hello Ada", "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []
        }})
    );
}

#[test]
fn hello_world_without_config_greets_the_world() {
    let logs = Arc::new(MemoryLogs::default());
    let out = hello(json!({}), &logs).process(json!({"event": "pageview", "properties": {}}));
    assert_eq!(
        out.event.unwrap()["properties"]["hello"],
        json!("Hello world")
    );
}

#[test]
fn event_without_properties_gets_only_the_bookkeeping_lists() {
    let logs = Arc::new(MemoryLogs::default());
    let out = hello(json!({"name": "Ada"}), &logs)
        .process(json!({"event": "$identify", "distinct_id": "u"}));
    assert_eq!(
        out.event.unwrap(),
        json!({"event": "$identify", "distinct_id": "u", "properties": {
            "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []
        }})
    );
}

#[test]
fn falsy_results_drop_the_event_and_stop_the_chain() {
    for falsy in ["null", "undefined", "false", "0", "''"] {
        let logs = Arc::new(MemoryLogs::default());
        let mut chain = Chain::new(vec![
            connector(
                "dropper",
                &format!("function processEvent(e) {{ return {falsy} }}"),
                0,
                &logs,
            ),
            connector(
                "witness",
                "function processEvent(e) { console.log('witness saw', e.event); return e }",
                1,
                &logs,
            ),
        ]);
        let out = chain.process(json!({"event": "x", "properties": {}}));
        assert_eq!(out.event, None, "{falsy} must drop");
        assert!(out.webhooks.is_empty() && out.failures.is_empty());
        assert!(
            logs.lines().is_empty(),
            "the next connector ran after {falsy}: {:?}",
            logs.lines()
        );
    }
    // The same witness does log when the event is kept: the assertion above can fail.
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector("keeper", "function processEvent(e) { return e }", 0, &logs),
        connector(
            "witness",
            "function processEvent(e) { console.log('witness saw', e.event); return e }",
            1,
            &logs,
        ),
    ]);
    assert!(chain.process(json!({"event": "x"})).event.is_some());
    assert_eq!(logs.lines(), ["log: witness saw x"]);
}

#[test]
fn a_throwing_connector_leaves_the_event_as_it_was_and_the_chain_goes_on() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector(
            "first",
            "function processEvent(e) { e.properties.first = true; return e }",
            0,
            &logs,
        ),
        connector(
            "flaky",
            "function processEvent(e) { e.properties.flaky = true; if (e.event === 'bad') throw new Error('flaky failed'); return e }",
            1,
            &logs,
        ),
        connector(
            "last",
            "function processEvent(e) { e.properties.last = true; return e }",
            2,
            &logs,
        ),
    ]);
    let out =
        chain.process(json!({"event": "bad", "properties": {"$plugins_failed": ["earlier (9)"]}}));
    assert_eq!(
        out.event.unwrap(),
        json!({"event": "bad", "properties": {
            "$plugins_failed": ["earlier (9)", "flaky (1)"],
            "first": true, "last": true,
            "$plugins_succeeded": ["first (0)", "last (2)"]
        }})
    );
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].connector, "flaky (1)");
    assert_eq!(out.failures[0].call, Call::ProcessEvent);
    assert!(
        logs.lines()[0].starts_with("error: processEvent: Error: flaky failed\n"),
        "{:?}",
        logs.lines()
    );
    // The same instance keeps serving later events correctly.
    let out = chain.process(json!({"event": "good", "properties": {}}));
    assert_eq!(
        out.event.unwrap()["properties"],
        json!({"first": true, "flaky": true, "last": true,
               "$plugins_succeeded": ["first (0)", "flaky (1)", "last (2)"], "$plugins_failed": []})
    );
    assert!(chain.connectors()[1].is_live());
}

#[test]
fn changing_team_id_is_an_error() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "thief",
        "function processEvent(e) { e.team_id = 2; e.stolen = true; return e }",
        0,
        &logs,
    )]);
    let out = chain.process(json!({"event": "x", "team_id": 1}));
    assert_eq!(
        out.event.unwrap(),
        json!({"event": "x", "team_id": 1, "properties": {"$plugins_succeeded": [], "$plugins_failed": ["thief (0)"]}})
    );
    assert_eq!(
        out.failures[0].error,
        CallError::InvalidResult(
            "processEvent changed team_id, which a connector may not do".into()
        )
    );
}

#[test]
fn non_object_results_are_errors() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "weird",
        "function processEvent(e) { if (e.event === 'n') return 42; if (e.event === 'a') return [e]; const c = {}; c.c = c; return c }",
        0,
        &logs,
    )]);
    for (event, message) in [
        (
            "n",
            "processEvent returned a number, expected an event object or null",
        ),
        (
            "a",
            "processEvent returned an array, expected an event object or null",
        ),
        ("cyclic", "circular reference"),
    ] {
        let out = chain.process(json!({"event": event}));
        assert_eq!(
            out.event.unwrap()["properties"]["$plugins_failed"],
            json!(["weird (0)"])
        );
        let CallError::Threw(error) = &out.failures[0].error else {
            panic!("{:?}", out.failures)
        };
        assert_eq!(error.name.as_deref(), Some("TypeError"));
        assert_eq!(error.message, message);
    }
}

/// Every falsy result drops the event, and every object that is not a plain
/// one (an Error, a class instance, a promise's value) is written as
/// JSON.stringify writes it: the plugin checks results in Rust before it
/// hands the unusual ones to the world's `output`.
#[test]
fn falsy_results_drop_and_unusual_objects_are_written_as_json() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "odd",
        r#"
        class Event { constructor(e) { this.event = e.event; this.kind = 'class' } }
        async function processEvent(e) {
            switch (e.event) {
                case 'false': return false
                case 'zero': return 0
                case 'empty': return ''
                case 'nan': return NaN
                case 'undefined': return undefined
                case 'error': return new Error('boom')
                case 'class': return new Event(e)
                case 'function': return () => e
                default: return e
            }
        }
        "#,
        0,
        &logs,
    )]);
    for falsy in ["false", "zero", "empty", "nan", "undefined"] {
        let out = chain.process(json!({"event": falsy}));
        assert_eq!(out.event, None, "{falsy}");
        assert!(out.failures.is_empty(), "{falsy}: {:?}", out.failures);
    }
    fn chain_event(chain: &mut Chain, event: &str) -> Value {
        chain.process(json!({"event": event})).event.unwrap()
    }
    assert_eq!(
        chain_event(&mut chain, "error"),
        json!({"properties": {"$plugins_succeeded": ["odd (0)"], "$plugins_failed": []}})
    );
    assert_eq!(
        chain_event(&mut chain, "class"),
        json!({"event": "class", "kind": "class", "properties": {"$plugins_succeeded": ["odd (0)"], "$plugins_failed": []}})
    );
    let out = chain.process(json!({"event": "function"}));
    let CallError::Threw(error) = &out.failures[0].error else {
        panic!("{:?}", out.failures)
    };
    assert_eq!(
        error.message,
        "processEvent returned a function, expected an event object or null"
    );
}

#[test]
fn snapshot_events_skip_the_chain() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "c",
        "function processEvent(e) { console.log('ran'); return null }",
        0,
        &logs,
    )]);
    let event = json!({"event": "$snapshot", "properties": {"$snapshot_data": [1]}});
    assert_eq!(chain.process(event.clone()).event, Some(event));
    assert!(logs.lines().is_empty());
}

#[test]
fn webhook_example_composes_with_defaults_and_null_composes_nothing() {
    let logs = Arc::new(MemoryLogs::default());
    let url = json!({"url": "https://hooks.example.com/in"});
    let mut chain = Chain::new(vec![
        connector_with(
            example("hello-world"),
            0,
            json!({"name": "Ada"}),
            Limits::default(),
            &logs,
        ),
        connector_with(example("webhook"), 1, url, Limits::default(), &logs),
        connector(
            "minimal",
            "function composeWebhook(event) { event.mutated = true; return event.event === 'skip' ? null : { url: 'https://min.example/' + event.event } }",
            2,
            &logs,
        ),
    ]);
    let out = chain.process(
        json!({"event": "pageview", "uuid": "u1", "team_id": 7, "distinct_id": "d",
                                   "timestamp": "2024-05-01T12:00:00Z", "properties": {}}),
    );
    let event = out.event.unwrap();
    assert_eq!(
        event.get("mutated"),
        None,
        "composeWebhook must not change the event"
    );
    assert_eq!(
        out.webhooks,
        [
            WebhookRequest {
                connector: "Webhook (1)".into(),
                url: "https://hooks.example.com/in".into(),
                method: "POST".into(),
                headers: json!({"Content-Type": "application/json"}).as_object().unwrap().clone(),
                body: Some(
                    r#"{"uuid":"u1","event":"pageview","team_id":7,"distinct_id":"d","properties":{"hello":"Hello Ada","$plugins_succeeded":["Hello World (0)"],"$plugins_failed":[]},"timestamp":"2024-05-01T12:00:00.000Z"}"#
                        .into()
                ),
            },
            WebhookRequest {
                connector: "minimal (2)".into(),
                url: "https://min.example/pageview".into(),
                method: "POST".into(),
                headers: json!({"Content-Type": "application/json"}).as_object().unwrap().clone(),
                body: None,
            },
        ]
    );
    // The webhook example returns null for $autocapture; `minimal` for 'skip'.
    assert!(
        chain
            .process(json!({"event": "$autocapture", "properties": {}}))
            .webhooks
            .iter()
            .all(|w| w.connector != "Webhook (1)")
    );
    assert!(
        chain
            .process(json!({"event": "skip"}))
            .webhooks
            .iter()
            .all(|w| w.connector != "minimal (2)")
    );
}

#[test]
fn global_and_top_level_state_persist_and_setup_reruns_after_a_trap() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let mut chain = Chain::new(vec![connector_with(
        bundle(
            "stateful",
            r#"
            let topLevel = 0
            export function setupPlugin(meta) { meta.global.setups = (meta.global.setups || 0) + 1; console.log('setup') }
            export function processEvent(event, meta) {
                if (event.event === 'spin') while (true) {}
                topLevel += 1
                event.properties = { topLevel, setups: meta.global.setups }
                return event
            }"#,
        ),
        0,
        Value::Null,
        limits,
        &logs,
    )]);
    let props = |chain: &mut Chain, name: &str| {
        chain.process(json!({"event": name})).event.unwrap()["properties"].clone()
    };
    assert_eq!(props(&mut chain, "a")["topLevel"], json!(1));
    assert_eq!(props(&mut chain, "b")["topLevel"], json!(2));
    assert_eq!(props(&mut chain, "c")["setups"], json!(1));
    let spun = chain.process(json!({"event": "spin"}));
    assert_eq!(
        spun.failures[0].error,
        CallError::Trapped("ran out of fuel (50000000 units per call)".into())
    );
    assert!(!chain.connectors()[0].is_live());
    // A fresh instance: top level and setupPlugin ran again.
    assert_eq!(props(&mut chain, "d")["topLevel"], json!(1));
    assert_eq!(props(&mut chain, "e")["topLevel"], json!(2));
    let setups = logs.lines().iter().filter(|l| *l == "log: setup").count();
    assert_eq!(setups, 2);
}

#[test]
fn a_result_the_host_cannot_read_fails_that_connector_only() {
    // A lone surrogate is written as `\ud800` (as JSON.stringify does), which
    // is not JSON the host accepts: that connector fails, the next one runs on
    // the event as it was.
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector(
            "lone",
            "function processEvent(e) { e.s = '\\ud800'; return e }",
            0,
            &logs,
        ),
        connector(
            "after",
            "function processEvent(e) { e.after = true; return e }",
            1,
            &logs,
        ),
    ]);
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert_eq!(
        out.event.unwrap(),
        json!({"event": "e", "after": true, "properties": {
            "$plugins_succeeded": ["after (1)"], "$plugins_failed": ["lone (0)"]
        }})
    );
    let CallError::InvalidResult(reason) = &out.failures[0].error else {
        panic!("{:?}", out.failures)
    };
    assert_eq!(
        reason,
        "processEvent returned invalid JSON: unexpected end of hex escape at line 1 column 41 (a \\uXXXX escape cut short, or half of a UTF-16 surrogate pair, \\ud800-\\udfff, without the other half, as in a string cut inside an emoji: sandpipe cannot carry such a string)"
    );
}

#[test]
fn a_trace_keeps_each_connectors_event_and_ends_where_the_event_was_dropped() {
    use sandpipe_runtime::{Step, StepOutcome};
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector(
            "tagger",
            "function processEvent(e) { e.properties.tag = 1; delete e.properties.gone; return e }",
            0,
            &logs,
        ),
        connector(
            "thrower",
            "function processEvent(e) { throw new Error('no') }",
            1,
            &logs,
        ),
        connector(
            "composer",
            "function composeWebhook(e) { return null }",
            2,
            &logs,
        ),
        connector(
            "dropper",
            "function processEvent(e) { return null }",
            3,
            &logs,
        ),
        connector(
            "unreached",
            "function processEvent(e) { return e }",
            4,
            &logs,
        ),
    ]);
    let event = json!({"event": "x", "properties": {"gone": true}});
    let (output, steps) = chain.trace(event.clone());
    let step = |connector: &str, outcome| Step {
        connector: connector.into(),
        outcome,
    };
    assert_eq!(
        steps,
        [
            step(
                "tagger (0)",
                StepOutcome::Kept(json!({"event": "x", "properties": {"tag": 1}}))
            ),
            step("thrower (1)", StepOutcome::Failed),
            step("composer (2)", StepOutcome::Skipped),
            step("dropper (3)", StepOutcome::Dropped),
        ]
    );
    // The same output as an untraced run.
    let mut untraced = output.clone();
    untraced.calls.clear();
    let mut again = chain.process(event);
    again.calls.clear();
    assert_eq!(again.event, None);
    assert_eq!(untraced, again);
}

/// `process_json` writes, without building the event, exactly what `process`
/// returns, written as the host writes events: kept, changed, failed, dropped
/// and refused results, the bookkeeping wherever `properties` stands or is
/// not, numbers as JavaScript writes them, repeated keys, snapshots, and
/// input that is not an event.
#[test]
fn process_json_writes_exactly_what_process_returns() {
    let chain = || {
        let logs = Arc::new(MemoryLogs::default());
        Chain::new(vec![
            connector(
                "shape",
                r#"
                function processEvent(e) {
                    switch (e.event) {
                        case 'drop': return null
                        case 'throw': throw new Error('no')
                        case 'team': e.team_id = 99; return e
                        case 'array': return [e]
                        case 'lone': e.s = '\ud800'; return e
                        case 'keep': return e
                        case 'raw': return { '$serde_json::private::RawValue': '[1]' }
                        case 'raw-team': return { '$serde_json::private::RawValue': JSON.stringify({ event: 'x', team_id: 5 }) }
                        default: e.properties = e.properties || {}; e.properties.seen = 1.50; return e
                    }
                }
                "#,
                0,
                &logs,
            ),
            connector(
                "compose",
                r#"
                function processEvent(e) { if (e.event === 'skip-second') throw 1; return e }
                function composeWebhook(e) { return { url: 'https://example.com/' + e.event, body: JSON.stringify(e.properties) } }
                "#,
                1,
                &logs,
            ),
        ])
    };
    let (mut by_value, mut by_text) = (chain(), chain());
    let lines = [
        r#"{"event":"pageview","team_id":2,"properties":{"a":1e2,"b":-0,"c":12345678901234567890,"d":"\u00e9\ud83d\ude00"}}"#,
        r#"{"event":"keep","team_id":2.0,"properties":{"$plugins_succeeded":["earlier (0)"],"x":[]}}"#,
        r#"{"event":"keep","properties":null}"#,
        r#"{"event":"keep","properties":"text","$plugins_failed":1}"#,
        r#"{"event":"keep","properties":{"$plugins_failed":{"not":"a list"}}}"#,
        r#"{"event":"new"}"#,
        r#"{"event":"drop","properties":{}}"#,
        r#"{"event":"throw","properties":{"k":true}}"#,
        r#"{"event":"skip-second","properties":{"k":false}}"#,
        r#"{"event":"team","team_id":1,"properties":{}}"#,
        r#"{"event":"array"}"#,
        r#"{"event":"lone","properties":{}}"#,
        r#"{"event":"keep","a":1,"a":2,"properties":{"b":1,"b":{"c":2}}}"#,
        r#"{"event":"$snapshot","properties":{"n":1.0}}"#,
        r#"{"event":"raw","team_id":2}"#,
        r#"{"event":"raw-team","team_id":2}"#,
        r#"{"event":"keep","x":{"$serde_json::private::RawValue":"[1,2.50]"},"y":{"a":1,"$serde_json::private::RawValue":"2"}}"#,
        r#"  {"event" : "keep" , "properties" : { } }  "#,
    ];
    for line in lines {
        let value = by_value.process(serde_json::from_str(line).unwrap());
        let text = by_text.process_json(line).unwrap();
        let event = text
            .event
            .as_ref()
            .map(|text| String::from_utf8(text.clone()).unwrap());
        let expected = value
            .event
            .as_ref()
            .map(|event| sandpipe_runtime::json::to_string(event).unwrap());
        assert_eq!(event, expected, "{line}");
        assert_eq!(text.webhooks, value.webhooks, "{line}");
        assert_eq!(text.failures, value.failures, "{line}");
        assert_eq!(text.calls.len(), value.calls.len(), "{line}");
    }
    // The bookkeeping is spliced into the text as the chain adds it to a value.
    let out = by_text
        .process_json(
            r#"{"event":"keep","properties":{"$plugins_succeeded":["earlier (0)"],"z":1}}"#,
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(out.event.unwrap()).unwrap(),
        r#"{"event":"keep","properties":{"$plugins_succeeded":["earlier (0)","shape (0)","compose (1)"],"z":1,"$plugins_failed":[]}}"#
    );
    for (line, error) in [
        (r#"[{"event":"a"}]"#, "an event must be a JSON object"),
        (r#"[{"a":1,"a":2}]"#, "an event must be a JSON object"),
        (
            r#"{"a":1,"a":2,}"#,
            "invalid JSON: trailing comma at line 1 column 14",
        ),
        (
            r#"{"event":"a"} x"#,
            "invalid JSON: trailing characters at line 1 column 15",
        ),
        (
            r#"{"event":"a","s":"\udc00"}"#,
            "invalid JSON: lone leading surrogate in hex escape at line 1 column 24 (a \\uXXXX escape cut short, or half of a UTF-16 surrogate pair, \\ud800-\\udfff, without the other half, as in a string cut inside an emoji: sandpipe cannot carry such a string)",
        ),
        (
            r#"{"event":"a","n":1e999}"#,
            "invalid JSON: number out of range at line 1 column 22 (beyond the largest double, where JavaScript reads Infinity: sandpipe does not carry it)",
        ),
    ] {
        let refused = by_text.process_json(line).unwrap_err();
        assert_eq!(refused.to_string(), error, "{line}");
        let valued = serde_json::from_str::<Value>(line).map(|v| v.is_object());
        match valued {
            Err(e) => assert_eq!(
                format!("invalid JSON: {}", sandpipe_runtime::json::explained(&e)),
                error
            ),
            Ok(object) => assert!(!object),
        }
    }
}

#[test]
fn a_connector_that_cannot_load_is_tried_once_an_event_not_again_at_each_stage() {
    let logs = Arc::new(MemoryLogs::default());
    let js = "throw new Error('top')\n\
              export function processEvent(e) { return e }\n\
              export function composeWebhook(e) { return { url: 'https://hooks.example.com/' } }\n\
              export function onEvent(e) {}";
    let mut chain = Chain::new(vec![
        connector("broken", js, 0, &logs),
        connector_with(
            example("hello-world"),
            1,
            json!({}),
            Limits::default(),
            &logs,
        ),
    ]);
    for n in 1..=2 {
        let out = chain
            .process_json(r#"{"event":"e","properties":{}}"#)
            .unwrap();
        let failures: Vec<String> = out
            .failures
            .iter()
            .map(|f| format!("{} {}: {}", f.connector, f.call.function(), f.error))
            .collect();
        assert_eq!(
            failures,
            ["broken (0) processEvent: setup failed: Error: top"]
        );
        assert!(out.webhooks.is_empty());
        assert_eq!(chain.export(&out.event.unwrap(), 5), []);
        let loads: Vec<String> = logs
            .lines()
            .into_iter()
            .filter(|line| line.starts_with("error: loading failed"))
            .collect();
        assert_eq!(loads.len(), n, "{loads:?}");
        assert!(
            loads[0].starts_with("error: loading failed: Error: top\n"),
            "{loads:?}"
        );
    }
}

#[test]
fn webhook_header_values_are_sent_as_fetch_would_send_them() {
    // PostHog handed composeWebhook's headers to fetch, whose Headers writes
    // every value as JavaScript's String(value).
    let logs = Arc::new(MemoryLogs::default());
    let js = "function composeWebhook(e) { return { url: 'https://h.example/', headers: e.properties.headers } }";
    let mut chain = Chain::new(vec![connector("headers", js, 0, &logs)]);
    let out = chain.process(json!({"event": "e", "properties": {"headers": {
        "X-Text": "a", "X-Int": 5, "X-Float": 0.1, "X-Big": 1e21, "X-Yes": true, "X-No": false,
        "X-Null": null, "X-List": [1, null, "a", [2, 3]], "X-Object": {"x": 1}
    }}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // What Node's `new Headers({...})` gives for the same values.
    assert_eq!(
        Value::Object(out.webhooks[0].headers.clone()),
        json!({"X-Text": "a", "X-Int": "5", "X-Float": "0.1", "X-Big": "1e+21", "X-Yes": "true", "X-No": "false",
               "X-Null": "null", "X-List": "1,,a,2,3", "X-Object": "[object Object]"})
    );
}

#[test]
fn a_connector_whose_reload_fails_while_composing_is_not_loaded_again_for_on_event() {
    // processEvent traps, so composeWebhook needs a new instance, whose
    // setupPlugin fails (it succeeds once only): onEvent passes it over for
    // this event instead of setting it up again.
    let logs = Arc::new(MemoryLogs::default());
    let js = "async function setupPlugin({ cache }) { if ((await cache.incr('setups')) > 1) throw new Error('set up again') }\n\
              function processEvent(e) { for (;;) {} }\n\
              function composeWebhook(e) { return { url: 'https://hooks.example.com/' } }\n\
              function onEvent(e) {}";
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let mut chain = Chain::new(vec![connector_with(
        bundle("looper", js),
        0,
        json!({}),
        limits,
        &logs,
    )]);
    let out = chain
        .process_json(r#"{"event":"e","properties":{}}"#)
        .unwrap();
    let failures: Vec<String> = out
        .failures
        .iter()
        .map(|f| format!("{}: {}", f.call.function(), f.error))
        .collect();
    assert_eq!(
        failures,
        [
            "processEvent: ran out of fuel (50000000 units per call)",
            "composeWebhook: setup failed: Error: set up again"
        ]
    );
    assert_eq!(chain.export(&out.event.unwrap(), 5), []);
    let setups = logs
        .lines()
        .into_iter()
        .filter(|line| line.starts_with("error: setupPlugin failed"))
        .count();
    assert_eq!(setups, 1, "{:?}", logs.lines());
}
