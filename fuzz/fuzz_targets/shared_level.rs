//! Arbitrary event JSON through the same chain at both isolation levels:
//! an instance per connector (`Chain::new`) and the shared-instance level
//! (`Chain::shared`), whose connectors hand plain data to each other as a
//! copy made in the plugin (`JS_SandpipeCopy`). The chain is a mutator
//! (`fuzz/connectors/mutator`, which makes every kind of result the event's
//! `properties.$ops` names, and with `probe` reports what it sees of each
//! property beyond its text: -0, prototypes, key order), hello-world, the
//! mutator again (a narrower input limit) and property-filter (narrower
//! still). Properties: both levels give the same text and the same
//! failures for every event, and the shared chain still holds events
//! between its connectors afterwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_fuzz::runtime;
use sandpipe_runtime::{
    Bundle, Chain, Connector, ConnectorOptions, Limits, MemoryLogs, Runtime,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

fn bundle(runtime: &Runtime, dir: &str) -> Arc<Bundle> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let built = sandpipe_compiler::build(runtime, &dir).expect("the connector builds");
    runtime.admit(built.bytes).expect("the connector is admitted")
}

fn connectors(runtime: &Runtime) -> Vec<Connector> {
    let mutator = bundle(runtime, "connectors/mutator");
    let input = |bytes| Limits {
        max_input: bytes,
        ..Limits::default()
    };
    let parts = [
        (mutator.clone(), json!({}), Limits::default()),
        (
            bundle(runtime, "../examples/hello-world"),
            json!({"name": "fuzz"}),
            Limits::default(),
        ),
        (mutator, json!({}), input(200_000)),
        (
            bundle(runtime, "../examples/property-filter"),
            json!({"properties": "$ip, a.b, nested"}),
            input(100_000),
        ),
    ];
    parts
        .into_iter()
        .enumerate()
        .map(|(position, (bundle, config, limits))| {
            let config = bundle
                .manifest()
                .resolve_config(config.as_object().unwrap())
                .expect("its config resolves");
            let options = ConnectorOptions {
                logs: Arc::new(MemoryLogs::default()),
                limits,
                ..ConnectorOptions::default()
            };
            runtime
                .connector(bundle, position, config, options)
                .expect("default limits are within the engine's")
        })
        .collect()
}

fn chains() -> &'static Mutex<(Chain, Chain)> {
    static CHAINS: OnceLock<Mutex<(Chain, Chain)>> = OnceLock::new();
    CHAINS.get_or_init(|| {
        let runtime = runtime();
        Mutex::new((
            Chain::new(connectors(runtime)),
            Chain::shared(connectors(runtime)),
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Value::Object(_)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let mut chains = chains().lock().unwrap();
    let (own, shared) = &mut *chains;
    let own = own.process_json(text);
    let shared = shared.process_json(text);
    match (own, shared) {
        (Ok(own), Ok(shared)) => {
            assert_eq!(own.event, shared.event, "the levels wrote different events");
            assert_eq!(own.failures, shared.failures);
        }
        (own, shared) => assert_eq!(own.is_err(), shared.is_err()),
    }
    assert!(chains.1.is_holding(), "the shared chain stopped holding events");
});
