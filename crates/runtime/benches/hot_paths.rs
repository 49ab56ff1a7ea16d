//! criterion benchmarks of the runtime's hot paths (`cargo bench -p sandpipe-runtime`):
//! a connector call on events of growing size, a three-connector chain, and
//! making a connector's instance from the pool.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sandpipe_runtime::{
    Bundle, Call, Chain, Connector, ConnectorOptions, MemoryLogs, Runtime, RuntimeOptions,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: None,
        ..RuntimeOptions::default()
    })
    .expect("the runtime starts")
}

fn bundle(runtime: &Runtime, js: &str) -> Arc<Bundle> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), js).unwrap();
    std::fs::write(
        dir.path().join("plugin.json"),
        r#"{"name": "Bench", "config": []}"#,
    )
    .unwrap();
    runtime
        .admit(sandpipe_compiler::build(runtime, dir.path()).unwrap().bytes)
        .unwrap()
}

fn connector(runtime: &Runtime, bundle: &Arc<Bundle>, position: usize) -> Connector {
    let config = bundle
        .manifest()
        .resolve_config(&Default::default())
        .unwrap();
    let options = ConnectorOptions {
        logs: Arc::new(MemoryLogs::default()),
        ..ConnectorOptions::default()
    };
    runtime
        .connector(bundle.clone(), position, config, options)
        .unwrap()
}

/// A PostHog-like event of about `size` bytes, with many small properties.
fn event(size: usize) -> Value {
    let mut properties = serde_json::Map::new();
    let mut i = 0;
    while serde_json::to_string(&properties).unwrap().len() + 60 < size {
        properties.insert(format!("$prop_{i}"), json!(format!("value-{i}")));
        i += 1;
    }
    json!({"event": "$pageview", "distinct_id": "user-1", "properties": properties})
}

fn call(c: &mut Criterion) {
    let runtime = runtime();
    let identity = bundle(&runtime, "function processEvent(event) { return event }");
    let mut group = c.benchmark_group("identity call");
    for size in [100, 1_000, 10_000] {
        let mut chain = Chain::new(vec![connector(&runtime, &identity, 0)]);
        let event = event(size);
        chain.process(event.clone());
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &event, |b, event| {
            b.iter(|| chain.process(event.clone()))
        });
    }
    group.finish();
}

fn chain(c: &mut Criterion) {
    let runtime = runtime();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let hello = runtime
        .admit(
            sandpipe_compiler::build(&runtime, &examples.join("hello-world"))
                .unwrap()
                .bytes,
        )
        .unwrap();
    let mut chain = Chain::new((0..3).map(|i| connector(&runtime, &hello, i)).collect());
    let event = event(1_000);
    chain.process(event.clone());
    c.bench_function("chain of 3 × hello-world, 1 KB", |b| {
        b.iter(|| chain.process(event.clone()))
    });
}

fn instantiate(c: &mut Criterion) {
    let runtime = runtime();
    let identity = bundle(&runtime, "function processEvent(event) { return event }");
    c.bench_function("instantiate from the pool", |b| {
        b.iter(|| {
            let mut connector = connector(&runtime, &identity, 0);
            connector.defines(Call::ProcessEvent).unwrap()
        })
    });
}

criterion_group!(benches, call, chain, instantiate);
criterion_main!(benches);
