//! Arbitrary event JSON through a chain of the example connectors
//! (hello-world → schema-enforcer → property-filter), each in its own instance.
//! Properties: no panic; an event that comes out is an object; the chain is a
//! function of its input: the same event twice gives the same output (nothing
//! leaks from one event into the next); and `process_json` on the input's text
//! writes exactly what `process` returns (the text `run` and `serve` write).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_fuzz::runtime;
use sandpipe_runtime::{Chain, Connector, ConnectorOptions, MemoryLogs, Runtime};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

fn connector(runtime: &Runtime, name: &str, position: usize, config: Value) -> Connector {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let built = sandpipe_compiler::build(runtime, &dir).expect("the example builds");
    let bundle = runtime.admit(built.bytes).expect("the example is admitted");
    let config = bundle
        .manifest()
        .resolve_config(config.as_object().unwrap())
        .expect("its config resolves");
    let logs = Arc::new(MemoryLogs::default());
    let options = ConnectorOptions {
        logs,
        ..ConnectorOptions::default()
    };
    runtime
        .connector(bundle, position, config, options)
        .expect("default limits are within the engine's")
}

fn chain() -> &'static Mutex<Chain> {
    static CHAIN: OnceLock<Mutex<Chain>> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let runtime = runtime();
        let schemas = json!({"signup": {"type": "object", "required": ["plan"],
            "properties": {"plan": {"enum": ["free", "pro"]}}}});
        Mutex::new(Chain::new(vec![
            connector(runtime, "hello-world", 0, json!({"name": "fuzz"})),
            connector(
                runtime,
                "schema-enforcer",
                1,
                json!({"eventSchemas": schemas.to_string()}),
            ),
            connector(
                runtime,
                "property-filter",
                2,
                json!({"properties": "$ip, a.b, $set.email"}),
            ),
        ]))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event @ Value::Object(_)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let mut chain = chain().lock().unwrap();
    let first = chain.process(event.clone());
    let second = chain.process(event);
    if let Some(out) = &first.event {
        assert!(out.is_object(), "the chain returned {out}");
    }
    assert_eq!(first.event, second.event, "the same event gave two outputs");
    assert_eq!(first.failures, second.failures);
    let written = chain
        .process_json(text)
        .expect("an object a Value reads is an event");
    let expected = first
        .event
        .map(|event| sandpipe_runtime::json::to_vec(&event).unwrap());
    assert_eq!(written.event, expected, "process_json wrote another event");
    assert_eq!(written.failures, first.failures);
});
