//! `meta.cache` and `meta.storage`: host services behind async APIs.

mod common;

use common::*;
use sandpipe_runtime::{CallError, Chain, Limits, MemoryLogs, SqliteStorage};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn async_cache_incr_counts_across_a_thousand_events() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "counter",
        r#"
        export async function processEvent(event, { cache }) {
            event.properties.seen = await cache.incr(`seen:${event.distinct_id}`)
            return event
        }"#,
        0,
        &logs,
    )]);
    let mut last = std::collections::HashMap::new();
    for i in 0..1_000 {
        let user = format!("u{}", i % 3);
        let out = chain.process(json!({"distinct_id": user, "properties": {}}));
        last.insert(user, out.event.unwrap()["properties"]["seen"].clone());
    }
    assert_eq!(last["u0"], json!(334));
    assert_eq!(last["u1"], json!(333));
    assert_eq!(last["u2"], json!(333));
}

#[test]
fn the_cache_outlives_a_trapped_instance() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector_with(
        bundle(
            "survivor",
            r#"
            async function processEvent(event, { cache }) {
                const n = await cache.incr('n')
                if (event.event === 'spin') while (true) {}
                event.n = n
                return event
            }"#,
        ),
        0,
        Value::Null,
        Limits {
            fuel: 20_000_000,
            ..Limits::default()
        },
        &logs,
    )]);
    assert_eq!(
        chain.process(json!({"event": "a"})).event.unwrap()["n"],
        json!(1)
    );
    assert!(matches!(
        chain.process(json!({"event": "spin"})).failures[0].error,
        CallError::Trapped(_)
    ));
    assert_eq!(
        chain.process(json!({"event": "b"})).event.unwrap()["n"],
        json!(3)
    );
}

#[test]
fn a_posthog_style_connector_runs_unchanged() {
    // CommonJS, async setupPlugin filling meta.global, cache with TTL and lists,
    // storage, config values as strings parsed by the connector.
    let dir = connector_dir(
        "PostHog style",
        r#"
        async function setupPlugin({ config, global, storage }) {
            global.threshold = parseInt(config.threshold)
            global.setupAt = (await storage.get('setups', 0)) + 1
            await storage.set('setups', global.setupAt)
        }

        async function processEvent(event, { global, cache }) {
            if (!event.properties) event.properties = {}
            const key = `count_${event.distinct_id}`
            const count = await cache.incr(key)
            await cache.expire(key, 60)
            await cache.lpush('recent', event.event)
            const recent = await cache.lrange('recent', 0, 1)
            await cache.set('last', { event: event.event, count })
            const last = await cache.get('last', null)
            event.properties.is_power_user = count >= global.threshold
            event.properties.recent = recent
            event.properties.last = last
            event.properties.missing = await cache.get('nothing', 'fallback')
            event.properties.setup = global.setupAt
            return event
        }

        module.exports = { setupPlugin, processEvent }
        "#,
        r#"{"key": "threshold", "type": "string", "default": "2"}"#,
    );
    let bundle = bundle_at(dir.path());
    let storage_dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(&storage_dir.path().join("s.db")).unwrap());
    let logs = Arc::new(MemoryLogs::default());
    let config = bundle
        .manifest()
        .resolve_config(&Default::default())
        .unwrap();
    let connector = connector_with_options(
        bundle,
        0,
        config,
        ConnectorOptions {
            logs: logs.clone(),
            storage: Some((storage, "scope".into())),
            ..ConnectorOptions::default()
        },
    );
    let mut chain = Chain::new(vec![connector]);
    let outputs: Vec<Value> = ["pageview", "click", "pageview"]
        .iter()
        .map(|name| {
            chain
                .process(json!({"event": name, "distinct_id": "d1"}))
                .event
                .unwrap()
        })
        .collect();
    assert_eq!(
        outputs[2],
        json!({"event": "pageview", "distinct_id": "d1", "properties": {
            "is_power_user": true,
            "recent": ["pageview", "click"],
            "last": {"event": "pageview", "count": 3},
            "missing": "fallback",
            "setup": 1,
            "$plugins_succeeded": ["PostHog style (0)"],
            "$plugins_failed": []
        }})
    );
    assert_eq!(outputs[0]["properties"]["is_power_user"], json!(false));
    assert!(logs.lines().is_empty(), "{:?}", logs.lines());
}

#[test]
fn storage_without_a_backend_rejects_with_a_clear_message() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "no storage",
        "async function processEvent(e, { storage }) { await storage.set('k', 1); return e }",
        0,
        &logs,
    )]);
    let out = chain.process(json!({}));
    let CallError::Threw(error) = &out.failures[0].error else {
        panic!("{:?}", out.failures)
    };
    assert_eq!(
        error.message,
        "meta.storage is not available: the host runs without a storage backend"
    );
}

#[test]
fn a_loop_of_cache_calls_is_stopped_by_the_deadline() {
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: sandpipe_runtime::limits::MAX_FUEL,
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut chain = Chain::new(vec![connector_with(
        bundle(
            "spinner",
            "async function processEvent(e, { cache }) { while (true) await cache.incr('k') }",
        ),
        0,
        Value::Null,
        limits,
        &logs,
    )]);
    let started = Instant::now();
    let out = chain.process(json!({}));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        out.failures[0].error,
        CallError::Trapped("exceeded its 200 ms deadline".into())
    );
}

#[test]
fn posthog_capture_emits_events_after_the_chain_marked_with_their_origin() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector(
            "alerts",
            r#"
            function processEvent(event) {
                if (event.properties.amount > 100) {
                    posthog.capture('big purchase', { amount: event.properties.amount, distinct_id: event.distinct_id })
                    posthog.capture('audit')
                    posthog.capture('backfill', { timestamp: '2020-01-01T00:00:00Z', n: 1 })
                }
                return event
            }"#,
            0,
            &logs,
        ),
        connector(
            "dropper",
            "function processEvent(e) { return e.properties.drop ? null : e }",
            1,
            &logs,
        ),
    ]);
    let out = chain
        .process(json!({"event": "purchase", "distinct_id": "d7", "properties": {"amount": 250}}));
    assert_eq!(
        out.captured,
        [
            json!({"event": "big purchase", "distinct_id": "d7", "properties": {"amount": 250, "distinct_id": "d7", "$sandpipe_connector": "alerts (0)"}}),
            json!({"event": "audit", "distinct_id": "connector-alerts", "properties": {"$sandpipe_connector": "alerts (0)"}}),
            // As in PostHog, the timestamp given among the properties is the event's.
            json!({"event": "backfill", "distinct_id": "connector-alerts", "timestamp": "2020-01-01T00:00:00Z", "properties": {"n": 1, "$sandpipe_connector": "alerts (0)"}}),
        ]
    );
    // Captured events are emitted even when a later connector drops the event.
    let out =
        chain.process(json!({"event": "purchase", "properties": {"amount": 101, "drop": true}}));
    assert_eq!(out.event, None);
    assert_eq!(out.captured.len(), 3);
    assert!(
        chain
            .process(json!({"event": "small", "properties": {"amount": 1}}))
            .captured
            .is_empty()
    );
}

#[test]
fn posthog_capture_is_bounded_in_bytes_per_processed_event() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "capturer",
        r#"
        async function processEvent(event) {
            const errors = []
            for (let i = 0; i < 3; i++) {
                try { await posthog.capture('big', { pad: 'x'.repeat(400 * 1024) }) } catch (e) { errors.push(e.message) }
            }
            event.properties.errors = errors
            return event
        }"#,
        0,
        &logs,
    )]);
    // Two of 400 KiB fit in the 1 MiB a processed event may capture; each event has its own.
    for _ in 0..2 {
        let out = chain.process(json!({"event": "e", "properties": {}}));
        assert_eq!(out.captured.len(), 2);
        assert_eq!(
            out.event.unwrap()["properties"]["errors"],
            json!(["posthog.capture: at most 1 MiB of events per processed event"])
        );
    }
}

#[test]
fn a_scheduled_task_runs_under_its_own_deadline_and_gives_what_it_captured() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![
        connector(
            "poller",
            r#"
            async function runEveryMinute(meta) {
                // 2 s into the call: past the connector's 1 s deadline.
                await new Promise((resolve) => setTimeout(resolve, 2000));
                console.log(`polled with ${meta.config === undefined ? 'no' : 'a'} config`);
                posthog.capture('polled', { page: 1 });
                return 'ignored';
            }
            function runEveryHour() {
                return new Promise(() => {});
            }
            async function processEvent(event) {
                // Within the connector's own 1 s deadline.
                await new Promise((resolve) => setTimeout(resolve, 800));
                return event;
            }"#,
            0,
            &logs,
        ),
        connector("plain", "function processEvent(e) { return e }", 1, &logs),
    ]);
    // Known from the bytecode: a connector without a task is never readied to look.
    assert!(bundle("poller", "function runEveryDay() {}").may_define_tasks());
    assert!(bundle("escaped", "function run\\u0045very() {}").may_define_tasks());
    assert!(!bundle("plain", "function processEvent(e) { return e }").may_define_tasks());
    let minute = sandpipe_abi::Call::RunEveryMinute;
    let hour = sandpipe_abi::Call::RunEveryHour;
    assert_eq!(
        chain.tasks(),
        sandpipe_runtime::ChainTasks {
            found: vec![("poller (0)".to_string(), vec![minute, hour])],
            unknown: 0,
        }
    );
    let ran = chain
        .run_task("poller (0)", minute, Duration::from_secs(5))
        .unwrap();
    assert!(ran.result.is_ok(), "{:?}", logs.lines());
    assert!(
        ran.record
            .is_some_and(|record| record.ok && record.call == minute)
    );
    assert_eq!(
        ran.captured,
        [
            json!({"event": "polled", "distinct_id": "connector-poller", "properties": {"page": 1, "$sandpipe_connector": "poller (0)"}})
        ]
    );
    assert_eq!(logs.lines(), ["log: polled with a config"]);
    // Under a deadline shorter than its timer, the task fails as a call
    // would, with the timer's message; the connector's own calls keep their
    // deadline.
    let ran = chain
        .run_task("poller (0)", minute, Duration::from_millis(500))
        .unwrap();
    assert_eq!(
        ran.result.unwrap_err().to_string(),
        "Error: a timer set for 2000 ms into the call fires after the call's deadline (500 ms)"
    );
    assert!(ran.captured.is_empty());
    // Nor does a task that fails or never settles leave its deadline to the
    // connector's next call, whose 800 ms timer fits its own 1 s.
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let ran = chain
        .run_task("poller (0)", hour, Duration::from_millis(100))
        .unwrap();
    assert_eq!(
        ran.result.unwrap_err().to_string(),
        "Error: the connector's promise never settled (it awaits something that cannot happen here: no job or timer is pending)"
    );
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // A task that never ends is stopped at its deadline, as any call is, and
    // the connector's next call gets a fresh instance.
    let mut spinner = Chain::new(vec![connector(
        "spinner",
        "function runEveryDay() { for (;;) {} }\nfunction processEvent(e) { return e }",
        0,
        &logs,
    )]);
    let ran = spinner
        .run_task(
            "spinner (0)",
            sandpipe_abi::Call::RunEveryDay,
            Duration::from_millis(200),
        )
        .unwrap();
    assert!(
        matches!(ran.result, Err(CallError::Trapped(ref why)) if why.contains("200 ms deadline") || why.contains("fuel")),
        "{:?}",
        ran.result
    );
    let out = spinner.process(json!({"event": "e", "properties": {}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // A connector that cannot load hides no other's tasks; one whose code
    // names no task is not readied to look.
    let mut mixed = Chain::new(vec![
        connector(
            "broken",
            "throw new Error('no'); function runEveryHour() {}",
            0,
            &logs,
        ),
        connector("hourly", "function runEveryHour() {}", 1, &logs),
        connector("plain", "function processEvent(e) { return e }", 2, &logs),
    ]);
    assert_eq!(
        mixed.tasks(),
        sandpipe_runtime::ChainTasks {
            found: vec![("hourly (1)".to_string(), vec![hour])],
            unknown: 1,
        }
    );
    // A connector without the task: nothing runs; no such connector: None.
    let ran = chain
        .run_task("plain (1)", minute, Duration::from_secs(5))
        .unwrap();
    assert!(ran.result.is_ok() && ran.record.is_none());
    assert!(
        chain
            .run_task("nobody (7)", minute, Duration::from_secs(5))
            .is_none()
    );
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
}

#[test]
fn what_on_event_captures_is_taken_with_its_event_not_the_next() {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector(
        "exporter",
        "function onEvent(event) { posthog.capture('exported', { of: event.event }) }",
        0,
        &logs,
    )]);
    let out = chain
        .process_json(r#"{"event":"a","properties":{}}"#)
        .unwrap();
    let event = out.event.unwrap();
    let exports = chain.export(&event, 1);
    assert_eq!(exports.len(), 1);
    assert_eq!(
        chain.take_captured(),
        [
            json!({"event": "exported", "distinct_id": "connector-exporter", "properties": {"of": "a", "$sandpipe_connector": "exporter (0)"}})
        ]
    );
    // The next event captures nothing of its own, and nothing is left over.
    let out = chain
        .process_json(r#"{"event":"b","properties":{}}"#)
        .unwrap();
    assert_eq!(out.captured, Vec::<Value>::new());
}
