//! `Intl` and the `toLocale*String` methods give what Node 20 (full ICU) gives:
//! `tests/intl/cases.js` (dates in seven locales and six IANA zones, DST
//! edges in New York and Berlin, weekday names, `formatToParts`,
//! `resolvedOptions`, number formats: decimal, percent, currency, fraction
//! digits, grouping; and the errors bad options throw) runs as a connector in
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
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert!(
        out.failures.is_empty(),
        "{:?} {:?}",
        out.failures,
        logs.lines()
    );
    pairs(&out.event.unwrap()["properties"]["cases"])
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

/// `properties.r` of one event through `js` under the default limits (fuel
/// and deadline), the connector's first use of `Intl` inside `processEvent`.
fn lazy_run(js: &str) -> Value {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector("lazy-intl", js, 0, &logs)]);
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert!(
        out.failures.is_empty(),
        "{:?} {:?}",
        out.failures,
        logs.lines()
    );
    out.event.unwrap()["properties"]["r"].clone()
}

/// A property's attributes, and its value as `typeof:name/length` for a
/// function or as text otherwise (`null` when there is no own property).
const DESCRIBE_JS: &str = r#"
    function describe(target, key) {
        const d = Object.getOwnPropertyDescriptor(target, key)
        if (d === undefined) return null
        const shown = (v) => typeof v === 'function' ? `function:${v.name}/${v.length}` : v === undefined ? 'none' : String(v)
        return { value: shown(d.value), get: shown(d.get), set: shown(d.set), writable: d.writable === undefined ? 'none' : d.writable, enumerable: d.enumerable, configurable: d.configurable }
    }
    const localeMethods = () => [
        [Date.prototype, 'toLocaleString'], [Date.prototype, 'toLocaleDateString'],
        [Date.prototype, 'toLocaleTimeString'], [Number.prototype, 'toLocaleString'],
    ]
"#;

/// `intl.js` is evaluated on first use (`intl_lazy.js`): before it, `Intl`
/// is an accessor and the methods stand-ins of the same name and length;
/// after it, every property is the data property eager evaluation made, in
/// the same place in property order, and the methods are `intl.js`'s own.
#[test]
fn intl_installed_on_first_use_looks_as_when_installed_eagerly() {
    let r = lazy_run(&format!(
        r#"{DESCRIBE_JS}
        function processEvent(e) {{
            const before = {{
                intl: describe(globalThis, 'Intl'),
                methods: localeMethods().map(([target, key]) => describe(target, key)),
                standIn: Date.prototype.toLocaleString.toString().includes('requestedLocale'),
            }}
            const present = 'Intl' in globalThis
            const enumerated = Object.keys(globalThis).includes('Intl')
            const kind = typeof Intl
            const formatted = new Intl.DateTimeFormat('en-US', {{ timeZone: 'UTC' }}).format(0)
            e.properties.r = {{
                before, present, enumerated, kind, formatted,
                intl: describe(globalThis, 'Intl'),
                methods: localeMethods().map(([target, key]) => describe(target, key)),
                own: localeMethods().map(([target, key]) => target[key].toString().includes('requestedLocale')),
                date: new Date(0).toLocaleString('en-US', {{ timeZone: 'UTC' }}),
                number: (1234.5).toLocaleString('de-DE'),
                dateOrder: Object.getOwnPropertyNames(Date.prototype).slice(5, 11),
                numberOrder: Object.getOwnPropertyNames(Number.prototype),
                globalOrder: ((names) => names.slice(names.indexOf('posthog'), names.indexOf('posthog') + 2))(Object.getOwnPropertyNames(globalThis)),
            }}
            return e
        }}"#
    ));
    let method = |name: &str| {
        json!({"value": format!("function:{name}/2"), "get": "none", "set": "none",
               "writable": true, "enumerable": false, "configurable": true})
    };
    let methods = json!([method(""), method(""), method(""), method("toLocaleString")]);
    assert_eq!(
        r,
        json!({
            "before": {
                "intl": {"value": "none", "get": "function:getIntl/0", "set": "function:setIntl/1",
                         "writable": "none", "enumerable": false, "configurable": true},
                "methods": methods,
                "standIn": false,
            },
            "present": true,
            "enumerated": false,
            "kind": "object",
            "formatted": "1/1/1970",
            "intl": {"value": "[object Intl]", "get": "none", "set": "none",
                     "writable": true, "enumerable": false, "configurable": true},
            "methods": methods,
            "own": [true, true, true, true],
            "date": "1/1/1970, 12:00:00 AM",
            "number": "1.234,5",
            "dateOrder": ["toDateString", "toTimeString", "toLocaleString", "toLocaleDateString", "toLocaleTimeString", "getTimezoneOffset"],
            "numberOrder": ["toExponential", "toFixed", "toPrecision", "toString", "toLocaleString", "valueOf", "constructor"],
            "globalOrder": ["posthog", "Intl"],
        })
    );
}

/// What a connector sets before first use stays: an assigned `Intl` (a data
/// property with eager's attributes), a replaced method, a deleted one; the
/// first use (here a method call) installs only what is still a stand-in.
#[test]
fn what_a_connector_replaces_before_first_use_is_kept() {
    let r = lazy_run(&format!(
        r#"{DESCRIBE_JS}
        Intl = {{ mine: true }}
        Date.prototype.toLocaleDateString = function mine() {{ return 'mine' }}
        delete Number.prototype.toLocaleString
        function processEvent(e) {{
            const time = new Date(0).toLocaleTimeString('en-US', {{ timeZone: 'UTC' }})
            e.properties.r = {{
                time,
                intl: describe(globalThis, 'Intl'),
                mine: Intl.mine,
                date: new Date(0).toLocaleDateString(),
                dateMethod: describe(Date.prototype, 'toLocaleDateString'),
                number: describe(Number.prototype, 'toLocaleString'),
                five: (5).toLocaleString(),
                own: Date.prototype.toLocaleTimeString.toString().includes('requestedLocale'),
            }}
            return e
        }}"#
    ));
    assert_eq!(
        r,
        json!({
            "time": "12:00:00 AM",
            "intl": {"value": "[object Object]", "get": "none", "set": "none",
                     "writable": true, "enumerable": false, "configurable": true},
            "mine": true,
            "date": "mine",
            "dateMethod": {"value": "function:mine/0", "get": "none", "set": "none",
                           "writable": true, "enumerable": false, "configurable": true},
            "number": null,
            "five": "5",
            "own": true,
        })
    );
}
