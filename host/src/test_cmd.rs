//! `sandpipe test DIR`: runs the connector's fixtures, `DIR/tests/*.json`:
//! `{name, config, input, expected, webhooks?}`, where `input` and `expected`
//! are an event or a list of events and `null` means "dropped". Each input runs
//! through the connector's `processEvent` (as PostHog's test harness calls it,
//! without the chain's bookkeeping), then `composeWebhook` on what it kept.

use anyhow::{Context, bail};
use sandpipe_runtime::{Connector, ConnectorOptions, GeoIpDatabase, LogSink, Processed};
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
    expected: Value,
    /// Requests `composeWebhook` must return, in order (`connector` omitted).
    #[serde(default)]
    webhooks: Option<Vec<Value>>,
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

/// The first difference between `expected` and `actual`, as `path: expected X, got Y`.
/// Numbers compare as JavaScript's doubles (`1.0` is `1`).
pub fn first_difference(path: &str, expected: &Value, actual: &Value) -> Option<String> {
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
                    Some(other) => {
                        if let Some(diff) = first_difference(&at(key), value, other) {
                            return Some(diff);
                        }
                    }
                    None => {
                        return Some(format!(
                            "{}: expected {}, but it is missing",
                            at(key),
                            shown(value)
                        ));
                    }
                }
            }
            a.iter()
                .find(|(key, _)| !e.contains_key(*key))
                .map(|(key, value)| format!("{}: not expected, got {}", at(key), shown(value)))
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                if let Some(diff) = first_difference(&format!("{path}[{i}]"), x, y) {
                    return Some(diff);
                }
            }
            (e.len() != a.len())
                .then(|| format!("{path}: expected {} items, got {}", e.len(), a.len()))
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        _ if expected == actual => None,
        _ => Some(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "event" } else { path },
            shown(expected),
            shown(actual)
        )),
    }
}

/// `processEvent` on `event` as PostHog's test harness calls it: the event it
/// returned, `null` when it dropped it, the event itself when it defines none.
fn process(connector: &mut Connector, event: Value) -> anyhow::Result<Value> {
    Ok(
        match connector.process_event(&sandpipe_runtime::json::to_vec(&event)?)? {
            Processed::Skipped => event,
            Processed::Kept(kept) => Value::Object(kept.to_object()?),
            Processed::Dropped => Value::Null,
        },
    )
}

/// The request `composeWebhook` returns for `event` (without its `connector`).
fn compose(connector: &mut Connector, event: &Value) -> anyhow::Result<Option<Value>> {
    let Some(request) = connector.compose_webhook(&sandpipe_runtime::json::to_vec(event)?)? else {
        return Ok(None);
    };
    let mut value = serde_json::to_value(request)?;
    value
        .as_object_mut()
        .expect("a request is an object")
        .remove("connector");
    Ok(Some(value))
}

/// Runs one fixture; `Ok(None)` when it passes, `Ok(Some(why))` when it fails.
fn run_fixture(
    runtime: &sandpipe_runtime::Runtime,
    bundle: &Arc<sandpipe_runtime::Bundle>,
    fixture: Fixture,
    base: &Path,
    logs: Arc<dyn LogSink>,
    geoip: Arc<GeoIpDatabase>,
) -> anyhow::Result<Option<String>> {
    let mut config = bundle.manifest().resolve_config(&fixture.config)?;
    config.attachments = crate::attachments::load(&config.attachments, base)?;
    let options = ConnectorOptions {
        logs,
        geoip: Some(geoip),
        ..ConnectorOptions::default()
    };
    let mut connector = runtime.connector(bundle.clone(), 0, config, options)?;
    let (inputs, expected) = (events(fixture.input), events(fixture.expected));
    if inputs.len() != expected.len() {
        bail!(
            "{} inputs but {} expected events",
            inputs.len(),
            expected.len()
        );
    }
    let mut webhooks = Vec::new();
    for (i, (input, expected)) in inputs.into_iter().zip(expected).enumerate() {
        let actual = match process(&mut connector, input) {
            Ok(actual) => actual,
            Err(error) => return Ok(Some(format!("event {i}: {error}"))),
        };
        let kept = !actual.is_null();
        if let Some(diff) = first_difference("", &expected, &actual) {
            return Ok(Some(format!("event {i}: {diff}")));
        }
        if kept {
            match compose(&mut connector, &actual) {
                Ok(Some(request)) => webhooks.push(request),
                Ok(None) => {}
                Err(error) => return Ok(Some(format!("event {i}: {error}"))),
            }
        }
    }
    Ok(fixture.webhooks.and_then(|expected| {
        first_difference("webhooks", &Value::Array(expected), &Value::Array(webhooks))
    }))
}

/// `sandpipe test`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The connector directory.
    dir: PathBuf,
    #[command(flatten)]
    geoip: crate::GeoIpArg,
}

pub fn run(Args { dir, geoip }: Args) -> anyhow::Result<()> {
    let (dir, geoip) = (dir.as_path(), geoip.database());
    let runtime = crate::runtime()?;
    let built = sandpipe_compiler::build(&runtime, dir)?;
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
    let logs: Arc<dyn LogSink> = Arc::new(sandpipe_runtime::StderrLogs);
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let fixture: Fixture = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a fixture", file.display()))?;
        let name = fixture.name.clone();
        let shown = file
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        match run_fixture(
            &runtime,
            &bundle,
            fixture,
            &tests,
            logs.clone(),
            geoip.clone(),
        ) {
            Ok(None) => {
                passed += 1;
                println!("PASS {shown}: {name}");
            }
            Ok(Some(why)) => {
                failed += 1;
                println!("FAIL {shown}: {name}: {why}");
            }
            Err(error) => {
                failed += 1;
                println!(
                    "FAIL {shown}: {name}: {}",
                    crate::one_line(&format!("{error:#}"))
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!(
            "{failed} of {} fixtures failed in {}",
            passed + failed,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_path() {
        let e = json!({"properties": {"a": 1, "list": [1, 2]}});
        assert_eq!(first_difference("", &e, &e), None);
        assert_eq!(
            first_difference("", &e, &json!({"properties": {"a": 2, "list": [1, 2]}})),
            Some("properties.a: expected 1, got 2".into())
        );
        assert_eq!(
            first_difference("", &e, &json!({"properties": {"a": 1, "list": [1]}})),
            Some("properties.list: expected 2 items, got 1".into())
        );
        assert_eq!(
            first_difference(
                "",
                &e,
                &json!({"properties": {"a": 1, "list": [1, 2], "b": true}})
            ),
            Some("properties.b: not expected, got true".into())
        );
        assert_eq!(
            first_difference("", &json!(null), &e),
            Some(format!("event: expected null, got {e}"))
        );
    }
}
