//! `sandpipe test DIR`: runs the connector's fixtures, `DIR/tests/*.json`
//! (README, "Fixtures"): `{name, config, input, expected, webhooks?, storage?,
//! cache?, expected_storage?}`, where `input` and `expected` are an event or a
//! list of events and `null` means "dropped". Each input runs through the
//! connector's `processEvent` (as PostHog's test harness calls it, without the
//! chain's bookkeeping), then `composeWebhook` on what it kept. Each fixture
//! has its own in-memory `meta.storage` and `meta.cache`, seeded from
//! `storage` and `cache`; `expected_storage` is compared with what storage
//! holds afterwards. A FAIL lists every difference; `--update` writes what
//! the connector did into the fixture instead.

use crate::memory_storage::MemoryStorage;
use anyhow::{Context, bail};
use sandpipe_runtime::{
    Call, CallRecord, Chain, ConnectorCache, ConnectorOptions, GeoIpDatabase, LogSink, StepOutcome,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    name: String,
    #[serde(default)]
    config: Map<String, Value>,
    input: Value,
    /// Absent in a fixture not yet recorded: it fails, and `--update` writes
    /// it. (`null` is there: the connector dropped the event.)
    #[serde(default, deserialize_with = "present")]
    expected: Option<Value>,
    /// Requests `composeWebhook` must return, in order (`connector` omitted).
    #[serde(default)]
    webhooks: Option<Vec<Value>>,
    /// `meta.storage` before the first event: key → value.
    #[serde(default)]
    storage: Map<String, Value>,
    /// `meta.cache` before the first event: key → value.
    #[serde(default)]
    cache: Map<String, Value>,
    /// What `meta.storage` must hold after the last event (every key).
    #[serde(default)]
    expected_storage: Option<Map<String, Value>>,
}

/// A key that is there, whatever its value (`null` too): `Some`.
fn present<'de, D: serde::Deserializer<'de>>(reader: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(reader).map(Some)
}

/// A list of events, or one event as a list of one.
fn events(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// `value` as JavaScript writes it.
fn shown(value: &Value) -> String {
    sandpipe_runtime::json::to_string(value).expect("a JSON value serialises")
}

/// Every difference between `expected` and `actual`, each as `path: expected
/// X, got Y`, in document order. Numbers compare as JavaScript's doubles (`1.0` is `1`).
pub fn differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                match a.get(key) {
                    Some(other) => differences(&at(key), value, other, out),
                    None => out.push(format!(
                        "{}: expected {}, but it is missing",
                        at(key),
                        shown(value)
                    )),
                }
            }
            for (key, value) in a.iter().filter(|(key, _)| !e.contains_key(*key)) {
                out.push(format!("{}: not expected, got {}", at(key), shown(value)));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => {}
        _ if expected == actual => {}
        _ => out.push(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "event" } else { path },
            shown(expected),
            shown(actual)
        )),
    }
}

/// Whether `expected` (one fixture event) checks the chain's bookkeeping:
/// its `properties` name `$plugins_succeeded` or `$plugins_failed`. Then it is
/// compared with the event as `run` writes it; otherwise with what the
/// connector's `processEvent` returned, as PostHog's test harness gives it.
fn checks_bookkeeping(expected: &Value) -> bool {
    expected
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("$plugins_succeeded") || p.contains_key("$plugins_failed"))
}

/// A composed request as a fixture states it (without its `connector`).
fn stated(request: &sandpipe_runtime::WebhookRequest) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(request)?;
    value
        .as_object_mut()
        .expect("a request is an object")
        .remove("connector");
    Ok(value)
}

/// What a fixture's connector did.
struct Ran {
    /// Each input as `processEvent` left it (`null`: dropped; an error: the input).
    events: Vec<Value>,
    webhooks: Vec<Value>,
    storage: Map<String, Value>,
    /// Why it fails: connector errors, then every difference from the fixture.
    problems: Vec<String>,
    /// Every call, with its cost.
    calls: Vec<CallRecord>,
    /// Whether a call failed (then `--update` writes nothing).
    threw: bool,
}

/// What every fixture's connector is given besides its own config and state.
struct Bench<'a> {
    runtime: &'a sandpipe_runtime::Runtime,
    bundle: &'a Arc<sandpipe_runtime::Bundle>,
    /// Where attachment paths are relative to (the tests directory).
    base: &'a Path,
    logs: Arc<dyn LogSink>,
    geoip: Arc<GeoIpDatabase>,
}

/// The scope of the fixture connector's storage (its id is its plugin's name).
fn scope(bundle: &sandpipe_runtime::Bundle) -> String {
    crate::identity::scope(None, &bundle.manifest().name)
}

/// Runs one fixture; errors are what stop it before its events run
/// (its config, attachments, seed, or its shape).
fn run_fixture(bench: &Bench<'_>, fixture: &Fixture) -> anyhow::Result<Ran> {
    // Every config error at once, as `run` and `serve` give them.
    let mut config = bench
        .bundle
        .manifest()
        .resolve_config_all(&fixture.config)
        .map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}", errors.join("; "))
        })?;
    config.attachments = crate::attachments::load(&config.attachments, bench.base)?;
    let storage = Arc::new(MemoryStorage::default());
    let scope = scope(bench.bundle);
    storage.seed(&scope, fixture.storage.clone());
    let cache = ConnectorCache::default();
    for (key, value) in &fixture.cache {
        cache
            .handle(&serde_json::json!({"op": "set", "key": key, "value": value}))
            .with_context(|| format!("cache.{key}"))?;
    }
    let options = ConnectorOptions {
        logs: bench.logs.clone(),
        storage: Some((storage.clone(), scope.clone())),
        cache: Some(cache),
        geoip: Some(bench.geoip.clone()),
        ..ConnectorOptions::default()
    };
    let connector = bench
        .runtime
        .connector(bench.bundle.clone(), 0, config, options)?;
    let inputs = events(fixture.input.clone());
    let expected = fixture.expected.clone().map(events);
    if let Some(expected) = &expected
        && inputs.len() != expected.len()
    {
        bail!(
            "{} inputs but {} expected events",
            inputs.len(),
            expected.len()
        );
    }
    let label = connector.label().to_string();
    let mut chain = Chain::new(vec![connector]);
    let mut ran = Ran {
        events: Vec::new(),
        webhooks: Vec::new(),
        storage: Map::new(),
        problems: Vec::new(),
        calls: Vec::new(),
        threw: false,
    };
    for (i, input) in inputs.into_iter().enumerate() {
        let bookkept = expected
            .as_ref()
            .is_some_and(|expected| checks_bookkeeping(&expected[i]));
        let (output, steps) = chain.trace(input.clone());
        for failure in &output.failures {
            let error =
                crate::one_line(&format!("{:#}", anyhow::Error::new(failure.error.clone())));
            match failure.call {
                // A fixture that states the bookkeeping states whether it failed.
                Call::ProcessEvent if bookkept => {}
                Call::ProcessEvent => {
                    ran.threw = true;
                    ran.problems.push(format!(
                        "event {i}: processEvent failed: {error} (run and serve pass the event on unchanged, with {label:?} in properties.$plugins_failed)"
                    ));
                }
                _ => {
                    ran.threw = true;
                    ran.problems.push(format!(
                        "event {i}: {} failed: {error}",
                        failure.call.function()
                    ));
                }
            }
        }
        for request in &output.webhooks {
            ran.webhooks.push(stated(request)?);
        }
        ran.calls.extend(output.calls);
        let actual = if bookkept {
            output.event.unwrap_or(Value::Null)
        } else {
            match steps.into_iter().next().map(|step| step.outcome) {
                Some(StepOutcome::Kept(event)) => event,
                Some(StepOutcome::Dropped) => Value::Null,
                // No processEvent, or it failed: the event as it came.
                Some(StepOutcome::Skipped | StepOutcome::Failed) | None => input,
            }
        };
        ran.events.push(actual);
    }
    ran.storage = storage.contents(&scope);
    match &expected {
        Some(expected) => {
            for (i, (expected, actual)) in expected.iter().zip(&ran.events).enumerate() {
                let mut found = Vec::new();
                differences("", expected, actual, &mut found);
                ran.problems
                    .extend(found.into_iter().map(|d| format!("event {i}: {d}")));
            }
        }
        None => ran.problems.push(
            "no \"expected\" yet: `sandpipe test --update` records what the connector did".into(),
        ),
    }
    if let Some(expected) = &fixture.webhooks {
        differences(
            "webhooks",
            &Value::Array(expected.clone()),
            &Value::Array(ran.webhooks.clone()),
            &mut ran.problems,
        );
    }
    if let Some(expected) = &fixture.expected_storage {
        differences(
            "storage",
            &Value::Object(expected.clone()),
            &Value::Object(ran.storage.clone()),
            &mut ran.problems,
        );
    }
    Ok(ran)
}

/// `fixture` (as its file holds it) with what the connector did as its
/// expectations: `expected` in the same form (one event or a list; when
/// there is none yet, the form of `input`),
/// `webhooks` when the fixture checks them or some were composed, and
/// `expected_storage` when it checks storage or storage holds something.
fn updated(mut file: Map<String, Value>, ran: &Ran) -> Map<String, Value> {
    let expected = match file.get("expected").or_else(|| file.get("input")) {
        Some(Value::Array(_)) => Value::Array(ran.events.clone()),
        _ => ran.events.first().cloned().unwrap_or(Value::Null),
    };
    file.insert("expected".into(), expected);
    if file.contains_key("webhooks") || !ran.webhooks.is_empty() {
        file.insert("webhooks".into(), Value::Array(ran.webhooks.clone()));
    }
    if file.contains_key("expected_storage") || !ran.storage.is_empty() {
        file.insert(
            "expected_storage".into(),
            Value::Object(ran.storage.clone()),
        );
    }
    file
}

/// `sandpipe test`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The connector directory.
    dir: PathBuf,
    /// Write what the connector did into each fixture that ran (its
    /// `expected`, `webhooks` and `expected_storage`) instead of failing.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    geoip: crate::GeoIpArg,
}

/// How one fixture file went.
enum Verdict {
    Pass,
    Updated,
    /// The reasons, one per line.
    Fail(Vec<String>),
}

/// Reads, runs and (with `--update`) rewrites one fixture file.
fn check_file(
    bench: &Bench<'_>,
    file: &Path,
    update: bool,
    costs: &mut crate::cost::Costs,
) -> (String, Verdict) {
    let fail = |name: String, why: String| (name, Verdict::Fail(vec![why]));
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => return fail(String::new(), format!("reading it: {error}")),
    };
    let raw: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(raw) => raw,
        Err(error) => return fail(String::new(), format!("not a fixture: {error}")),
    };
    let fixture: Fixture = match serde_json::from_value(Value::Object(raw.clone())) {
        Ok(fixture) => fixture,
        Err(error) => return fail(String::new(), format!("not a fixture: {error}")),
    };
    let name = fixture.name.clone();
    let ran = match run_fixture(bench, &fixture) {
        Ok(ran) => ran,
        Err(error) => return fail(name, crate::one_line(&format!("{error:#}"))),
    };
    costs.add(&ran.calls);
    if ran.problems.is_empty() {
        return (name, Verdict::Pass);
    }
    if update && !ran.threw {
        let text = serde_json::to_string_pretty(&Value::Object(updated(raw, &ran)))
            .expect("a JSON value serialises");
        return match std::fs::write(file, text + "\n") {
            Ok(()) => (name, Verdict::Updated),
            Err(error) => fail(name, format!("writing it: {error}")),
        };
    }
    (name, Verdict::Fail(ran.problems))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    let tally = check(&runtime, &args.dir, args.geoip.database(), args.update)?;
    if tally.failed > 0 {
        bail!(
            "{} of {} fixtures failed in {}",
            tally.failed,
            tally.passed + tally.updated + tally.failed,
            args.dir.display()
        );
    }
    Ok(())
}

/// How a directory's fixtures went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub updated: usize,
    pub failed: usize,
}

/// Builds `dir` and runs (with `update`, rewrites) its fixtures, printing the
/// report; an error when the connector does not build or has no fixtures.
pub fn check(
    runtime: &sandpipe_runtime::Runtime,
    dir: &Path,
    geoip: Arc<GeoIpDatabase>,
    update: bool,
) -> anyhow::Result<Tally> {
    let built = sandpipe_compiler::build(runtime, dir)?;
    let bundle = runtime.admit(built.bytes)?;
    let tests = dir.join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests)
        .with_context(|| format!("reading {}", tests.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no fixtures (*.json)", tests.display());
    }
    // Not inside the first fixture's call, where its deadline would count it.
    geoip.open();
    let bench = Bench {
        runtime,
        bundle: &bundle,
        base: &tests,
        logs: Arc::new(sandpipe_runtime::StderrLogs),
        geoip,
    };
    let mut costs = crate::cost::Costs::default();
    let mut tally = Tally::default();
    for file in files {
        let shown = file
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        let (name, verdict) = check_file(&bench, &file, update, &mut costs);
        let titled = if name.is_empty() {
            shown
        } else {
            format!("{shown}: {name}")
        };
        match verdict {
            Verdict::Pass => {
                tally.passed += 1;
                println!("PASS {titled}");
            }
            Verdict::Updated => {
                tally.updated += 1;
                println!("UPDATED {titled}");
            }
            Verdict::Fail(reasons) => {
                tally.failed += 1;
                match reasons.as_slice() {
                    [one] => println!("FAIL {titled}: {one}"),
                    many => {
                        println!("FAIL {titled}:");
                        for reason in many {
                            println!("  {reason}");
                        }
                    }
                }
            }
        }
    }
    for line in costs.lines() {
        println!("{line}");
    }
    let Tally {
        passed,
        updated,
        failed,
    } = tally;
    if updated > 0 {
        println!("{passed} passed, {updated} updated, {failed} failed");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::differences;
    use serde_json::{Value, json};

    fn all(expected: &Value, actual: &Value) -> Vec<String> {
        let mut out = Vec::new();
        differences("", expected, actual, &mut out);
        out
    }

    #[test]
    fn every_difference_is_named_by_path() {
        let e = json!({"properties": {"a": 1, "list": [1, 2]}});
        assert!(all(&e, &e).is_empty());
        assert_eq!(
            all(
                &e,
                &json!({"properties": {"a": 2.0, "list": [1]}, "b": true})
            ),
            [
                "properties.a: expected 1, got 2",
                "properties.list: expected 2 items, got 1",
                "b: not expected, got true",
            ]
        );
        assert!(all(&json!({"n": 1}), &json!({"n": 1.0})).is_empty());
        assert_eq!(
            all(&json!(null), &e),
            [format!("event: expected null, got {e}")]
        );
    }
}
