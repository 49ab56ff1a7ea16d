//! `Intl` and the `toLocale*String` methods give what Node 20 (full ICU) gives:
//! `tests/intl/cases.js` (dates in seven locales and six IANA zones, DST
//! edges in New York and Berlin, weekday names, `formatToParts`,
//! `resolvedOptions`, number formats: decimal, percent, currency, fraction
//! digits, grouping; collation through `Intl.Collator` and `localeCompare` in
//! nine locales and thirteen option sets; and the errors bad options throw) runs as a connector in
//! sandpipe and as a program in `node` with the host's zone (UTC) and locale
//! (en-US), and every case's output must be the same string — except the
//! cases `tests/intl/differences.json` lists, each with both outputs exactly
//! and why they differ (ICU4X's semantic field sets against ICU4C's pattern
//! generator, ICU4X's currency symbol data): for those, Node must
//! still give the listed text and sandpipe its listed text, so any change on
//! either side shows.

mod common;

use common::*;
use sandpipe_runtime::{Chain, Limits, MemoryLogs};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The cases' source: a script defining `intlCases()`.
fn cases_js() -> String {
    std::fs::read_to_string(root().join("tests/intl/cases.js")).unwrap()
}

/// `[label, output]` pairs as Node 20 gives them, run with the host's zone and locale.
fn node_cases() -> Vec<(String, String)> {
    let program = format!(
        "{}\nprocess.stdout.write(JSON.stringify(intlCases()));",
        cases_js()
    );
    let out = Command::new("node")
        .args(["-e", &program])
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .output()
        .expect("node (Node.js 20) is on the PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pairs(&serde_json::from_slice(&out.stdout).unwrap())
}

/// The same pairs from a sandpipe connector that runs the cases in `processEvent`.
fn sandpipe_cases() -> Vec<(String, String)> {
    let js = format!(
        "{}\nfunction processEvent(event) {{ event.properties.cases = intlCases(); return event }}",
        cases_js()
    );
    let logs = Arc::new(MemoryLogs::default());
    // Some 3,000 formats in one call: more time and fuel than one event is given by default.
    let limits = Limits {
        deadline: Duration::from_secs(20),
        fuel: 20_000_000_000,
        ..Limits::default()
    };
    let mut chain = Chain::new(vec![connector_with(
        bundle("intl", &js),
        0,
        Value::Null,
        limits,
        &logs,
    )]);
    let event = processed_cleanly(&mut chain, json!({"event": "e", "properties": {}}), &logs);
    pairs(&event["properties"]["cases"])
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("an array of cases")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The documented differences: label → (Node's output, sandpipe's output).
fn known_differences() -> std::collections::HashMap<String, (String, String)> {
    let text = std::fs::read_to_string(root().join("tests/intl/differences.json")).unwrap();
    let table: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    table
        .into_iter()
        .map(|(label, entry)| {
            assert!(
                entry["why"].as_str().is_some_and(|why| !why.is_empty()),
                "{label}: no why"
            );
            let text = |key: &str| entry[key].as_str().unwrap().to_owned();
            (label, (text("node"), text("sandpipe")))
        })
        .collect()
}

#[test]
fn intl_output_is_node_20s() {
    let expected = node_cases();
    let actual = sandpipe_cases();
    let known = known_differences();
    assert_eq!(actual.len(), expected.len(), "case count");
    let differences: Vec<String> = expected
        .iter()
        .zip(&actual)
        .filter(|((label, node), (_, ours))| match known.get(label) {
            Some((known_node, known_ours)) => (known_node, known_ours) != (node, ours),
            None => node != ours,
        })
        .map(|((label, node), (_, ours))| {
            format!("{label}:\n  node:     {node:?}\n  sandpipe: {ours:?}")
        })
        .collect();
    let labels: std::collections::HashSet<&String> = expected.iter().map(|(l, _)| l).collect();
    for label in known.keys() {
        assert!(
            labels.contains(label),
            "differences.json names no case {label:?}"
        );
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ from Node's:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}
