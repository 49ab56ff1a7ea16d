//! The shared-instance level against the default (an instance per
//! connector): the same connectors, events and limits through
//! `Chain::shared` and `Chain::new`, with `Chain::process_json` (what `run`,
//! `serve` and the workers use), must give the same bytes, failures and log
//! lines, whatever the connectors return, throw or break.

mod common;

use common::*;
use sandpipe_runtime::{Bundle, Chain, Limits, MemoryLogs};
use serde_json::{Value, json};
use std::sync::Arc;

/// What one event came to: its text, or `None` when dropped, and its
/// failures as `connector call: error`.
type Outcome = (Option<String>, Vec<String>);

/// `bundles` as a chain at either level, each with `limits`.
fn chain(bundles: &[Arc<Bundle>], shared: bool, limits: &Limits, logs: &Arc<MemoryLogs>) -> Chain {
    let limits = vec![limits.clone(); bundles.len()];
    limited(bundles, &limits, shared, logs)
}

/// `bundles` as a chain at either level, each with its own of `limits`.
fn limited(
    bundles: &[Arc<Bundle>],
    limits: &[Limits],
    shared: bool,
    logs: &Arc<MemoryLogs>,
) -> Chain {
    let connectors = bundles
        .iter()
        .zip(limits)
        .enumerate()
        .map(|(position, (bundle, limits))| {
            connector_with(bundle.clone(), position, Value::Null, limits.clone(), logs)
        })
        .collect();
    match shared {
        true => Chain::shared(connectors),
        false => Chain::new(connectors),
    }
}

fn run(chain: &mut Chain, events: &[Value]) -> Vec<Outcome> {
    events
        .iter()
        .map(|event| {
            let out = chain
                .process_json(&event.to_string())
                .expect("the event is JSON");
            let failures = out
                .failures
                .iter()
                .map(|f| format!("{} {}: {}", f.connector, f.call.function(), f.error))
                .collect();
            let text = out.event.map(|bytes| String::from_utf8(bytes).unwrap());
            (text, failures)
        })
        .collect()
}

/// Runs `events` through `bundles` at both levels; asserts that every event
/// and every log line came out the same, and returns the outcomes.
fn same_at_both_levels(bundles: &[Arc<Bundle>], limits: &Limits, events: &[Value]) -> Vec<Outcome> {
    let (outcomes, own, shared) = same_events_at_both_levels(bundles, limits, events);
    // The shared level says where an error that ends an instance happened.
    let shared: Vec<String> = shared
        .iter()
        .map(|line| line.replace(IN_SHARED, ""))
        .collect();
    assert_eq!(own, shared);
    outcomes
}

/// What the shared level adds to the log line of an error that ends its instance.
const IN_SHARED: &str = " (in the chain's shared instance, which starts again; this connector moves to an instance of its own)";

/// [`same_at_both_levels`], but the log lines of each level (`[connector]
/// level: message`) are returned rather than compared.
fn same_events_at_both_levels(
    bundles: &[Arc<Bundle>],
    limits: &Limits,
    events: &[Value],
) -> (Vec<Outcome>, Vec<String>, Vec<String>) {
    let (own_logs, shared_logs) = (
        Arc::new(MemoryLogs::default()),
        Arc::new(MemoryLogs::default()),
    );
    let own = run(&mut chain(bundles, false, limits, &own_logs), events);
    let shared = run(&mut chain(bundles, true, limits, &shared_logs), events);
    for ((event, own), shared) in events.iter().zip(&own).zip(&shared) {
        assert_eq!(own, shared, "the levels differ on {event}");
    }
    let lines = |logs: &MemoryLogs| -> Vec<String> {
        logs.take()
            .into_iter()
            .map(|e| format!("[{}] {}: {}", e.connector, e.level.as_str(), e.message))
            .collect()
    };
    (shared, lines(&own_logs), lines(&shared_logs))
}

/// The event of one case: `properties.case` names it.
fn case(name: &str) -> Value {
    json!({"event": "e", "team_id": 1, "distinct_id": "d", "properties": {"case": name}})
}

/// Returns, for each case, a value of one kind in `properties.value`, or
/// changes the event itself.
const SHAPER: &str = r#"
class Point { constructor() { this.x = 1 } }
function nest(n) { let v = 'leaf'; for (let i = 0; i < n; i++) v = { v }; return v }
const cases = {
    date: () => new Date(0),
    instance: () => new Point(),
    toJSON: () => ({ a: 1, toJSON() { return 'converted' } }),
    getter: () => ({ get g() { return 'got' }, h: 2 }),
    lone: () => 'a\ud800b',
    loneNested: () => ({ k: ['x', '\udc00'] }),
    pair: () => 'a\u{1F600}b \u4e2d\u6587',
    latin1: () => 'caf\u00e9',
    escapes: () => '"\\\n\t\u0001</script>',
    deep60: () => nest(60),
    deep100: () => nest(100),
    deep200: () => nest(200),
    index: () => ({ b: 1, 2: 'two', a: 3, 1: 'one' }),
    negzero: () => -0,
    negzeros: () => ({ z: -0, list: [-0, 0] }),
    nan: () => NaN,
    inf: () => [-Infinity, Infinity],
    undef: () => ({ a: undefined, b: 1 }),
    fn: () => ({ f() {}, b: 2 }),
    symbol: () => ({ s: Symbol('x'), [Symbol('k')]: 1, b: 3 }),
    holes: () => [1, , 3],
    undefs: () => [undefined, () => 1, Symbol('y')],
    nullproto: () => Object.assign(Object.create(null), { z: 1 }),
    protoKey: () => JSON.parse('{"__proto__": {"polluted": 1}, "k": 2}'),
    numbers: () => [1e21, 0.1 + 0.2, 2 ** 53 + 2, -1e-7, 5e-324, 1.7976931348623157e308, 123456789012, -2147483649, 2147483647, 4294967296.5],
    typed: () => new Uint8Array([1, 2]),
    map: () => new Map([[1, 2]]),
    boxed: () => new String('boxed'),
    bigint: () => 10n,
    cycle: () => { const o = {}; o.self = o; return o },
    hidden: () => Object.defineProperty({ v: 1 }, 'hidden', { value: 2, enumerable: false }),
    frozen: () => Object.freeze({ f: 1 }),
    arrayProp: () => Object.assign([1, 2], { extra: 3 }),
    twice: () => { const o = { s: 1 }; return [o, o, { o }] },
    empty: () => ({}),
    emptyArray: () => [],
    rope: () => 'x'.repeat(600) + String(Math.PI) + 'y'.repeat(600),
    reordered: () => { const o = { a: 1, b: 2 }; delete o.a; o.a = 3; return o },
    wide: () => Object.fromEntries(Array.from({ length: 300 }, (_, i) => ['k' + i, i])),
    rawKey: () => ({ '$serde_json::private::RawValue': 'x' }),
    loneKey: () => ({ ['a\ud800']: 1 }),
    spelledKey: () => ({ '\\ud800': 1 }),
    wideText: () => 'w'.repeat(300000),
    undefs: () => Array.from({ length: 300000 }),
    longNumbers: () => Array(41000).fill(-0.0000012345678901234567),
    controls: () => '\u0001'.repeat(40000),
};
function processEvent(event) {
    const c = event.properties.case;
    switch (c) {
        case 'team': event.team_id = 2; return event;
        case 'teamText': event.team_id = '1'; return event;
        case 'teamGone': delete event.team_id; return event;
        case 'teamSame': event.team_id = 1.0; return event;
        case 'resultNullProto': return Object.assign(Object.create(null), event);
        case 'resultDate': event.properties.when = new Date(0); return event;
        case 'resultArray': return [event];
        case 'drop': return null;
        case 'teamHidden': Object.defineProperty(event, 'team_id', { enumerable: false }); return event;
        case 'huge': event.properties.pad = 'x'.repeat(2e6); return event;
        case 'throw': event.properties.mutated = 1; throw new Error('shaper threw');
    }
    if (c in cases) event.properties.value = cases[c]();
    event.properties.shaped = true;
    return event;
}
"#;

/// Reports what it sees of `properties.value`, then keeps the event.
const OBSERVER: &str = r#"
function describe(v) {
    if (v === null || typeof v !== 'object') return { type: typeof v, negzero: Object.is(v, -0) };
    const proto = Object.getPrototypeOf(v);
    return {
        type: typeof v,
        proto: proto === Object.prototype ? 'Object' : proto === Array.prototype ? 'Array' : String(proto),
        keys: Object.keys(v),
        ownProto: Object.prototype.hasOwnProperty.call(v, '__proto__'),
        frozen: Object.isFrozen(v),
    };
}
function processEvent(event) {
    const v = event.properties.value;
    if (event.properties.case === 'throw2') { event.properties.mutated = 1; throw new Error('observer threw') }
    event.properties.seen = describe(v);
    event.properties.seenText = JSON.stringify(v);
    event.properties.negzeroInside = v && typeof v === 'object' && 'list' in v ? [Object.is(v.z, -0), Object.is(v.list[0], -0)] : null;
    return event;
}
"#;

/// Keeps what it is given, noting that it ran.
const PASSER: &str = r#"
function processEvent(event) { event.properties.passed = (event.properties.passed || 0) + 1; return event }
"#;

/// A connector passed over (quarantine disabled it part-way through a batch)
/// is skipped at both levels as a chain without it would skip it: the held
/// event goes from the connector before it to the one after.
#[test]
fn a_connector_passed_over_is_skipped_at_both_levels() {
    let bundles = [
        bundle("first", PASSER),
        bundle("second", PASSER),
        bundle("third", PASSER),
    ];
    let event = json!({"event": "e", "properties": {}});
    for shared in [false, true] {
        let logs = Arc::new(MemoryLogs::default());
        let mut chain = chain(&bundles, shared, &Limits::default(), &logs);
        let before = run(&mut chain, std::slice::from_ref(&event));
        chain.pass_over(1);
        let after = run(&mut chain, std::slice::from_ref(&event));
        let properties = |outcome: &Vec<Outcome>| -> Value {
            let text = outcome[0].0.as_deref().unwrap();
            serde_json::from_str::<Value>(text).unwrap()["properties"].clone()
        };
        assert_eq!(
            properties(&before),
            json!({"passed": 3, "$plugins_succeeded": ["first (0)", "second (1)", "third (2)"], "$plugins_failed": []}),
            "shared: {shared}"
        );
        assert_eq!(
            properties(&after),
            json!({"passed": 2, "$plugins_succeeded": ["first (0)", "third (2)"], "$plugins_failed": []}),
            "shared: {shared}"
        );
    }
}

#[test]
fn every_kind_of_result_reaches_the_next_connector_as_json_would_carry_it() {
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("observer", OBSERVER),
        bundle("passer", PASSER),
    ];
    let names = [
        "plain",
        "date",
        "instance",
        "toJSON",
        "getter",
        "lone",
        "loneNested",
        "pair",
        "latin1",
        "escapes",
        "deep60",
        "deep100",
        "deep200",
        "index",
        "negzero",
        "negzeros",
        "nan",
        "inf",
        "undef",
        "fn",
        "symbol",
        "holes",
        "undefs",
        "nullproto",
        "protoKey",
        "numbers",
        "typed",
        "map",
        "boxed",
        "bigint",
        "cycle",
        "hidden",
        "frozen",
        "arrayProp",
        "twice",
        "empty",
        "emptyArray",
        "rope",
        "reordered",
        "wide",
        "resultNullProto",
        "resultDate",
        "resultArray",
        "drop",
        "throw",
        "throw2",
        "teamHidden",
        "huge",
        "rawKey",
        "loneKey",
        "spelledKey",
        "wideText",
        "undefs",
        "longNumbers",
        "controls",
    ];
    let events: Vec<Value> = names.iter().map(|name| case(name)).collect();
    let outcomes = same_at_both_levels(&bundles, &Limits::default(), &events);
    let by_name = |name: &str| &outcomes[names.iter().position(|n| *n == name).unwrap()];
    // A few of the outcomes, exactly (the rest equal the default level's).
    let properties = |name: &str| -> Value {
        let text = by_name(name).0.as_deref().expect("kept");
        serde_json::from_str::<Value>(text).unwrap()["properties"].clone()
    };
    assert_eq!(
        properties("negzeros")["negzeroInside"],
        json!([false, false]),
        "-0 reaches the next connector as 0, as through JSON text"
    );
    assert_eq!(
        properties("index")["seen"]["keys"],
        json!(["1", "2", "b", "a"])
    );
    assert_eq!(properties("protoKey")["seen"]["ownProto"], json!(true));
    assert_eq!(properties("nullproto")["seen"]["proto"], json!("Object"));
    assert_eq!(
        properties("date")["seenText"],
        json!("\"1970-01-01T00:00:00.000Z\"")
    );
    assert_eq!(properties("frozen")["seen"]["frozen"], json!(false));
    assert_eq!(by_name("drop"), &(None, vec![]));
    assert_eq!(
        by_name("throw").1,
        ["shaper (0) processEvent: Error: shaper threw"]
    );
    let throw2 = properties("throw2");
    assert_eq!(
        throw2["mutated"],
        Value::Null,
        "the observer's change before it threw is gone"
    );
    assert_eq!(throw2["passed"], json!(1));
    assert_eq!(throw2["shaped"], json!(true));
    assert_eq!(by_name("bigint").1.len(), 1);
    assert_eq!(by_name("deep200").1.len(), 1, "{:?}", by_name("deep200"));
    assert!(by_name("deep100").1.is_empty(), "{:?}", by_name("deep100"));
    assert!(by_name("lone").1.len() == 1, "{:?}", by_name("lone"));
    // What the host refuses as text is refused, not carried over.
    for refused in [
        "teamHidden",
        "huge",
        "rawKey",
        "loneKey",
        "undefs",
        "longNumbers",
    ] {
        assert_eq!(
            by_name(refused).1.len(),
            1,
            "{refused}: {:?}",
            by_name(refused)
        );
        assert!(
            by_name(refused).1[0].starts_with("shaper (0)"),
            "{:?}",
            by_name(refused)
        );
    }
    assert!(
        by_name("spelledKey").1.is_empty(),
        "{:?}",
        by_name("spelledKey")
    );
    assert!(
        by_name("wideText").1.is_empty(),
        "{:?}",
        by_name("wideText")
    );
}

#[test]
fn a_changed_team_id_is_refused_and_the_next_connector_gets_the_event_before_it() {
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("observer", OBSERVER),
        bundle("passer", PASSER),
    ];
    let names = ["team", "teamText", "teamGone", "teamSame"];
    let events: Vec<Value> = names.iter().map(|name| case(name)).collect();
    let outcomes = same_at_both_levels(&bundles, &Limits::default(), &events);
    let refused =
        ["shaper (0) processEvent: processEvent changed team_id, which a connector may not do"];
    for (name, (text, failures)) in names.iter().zip(&outcomes) {
        let event: Value = serde_json::from_str(text.as_deref().unwrap()).unwrap();
        assert_eq!(event["team_id"], json!(1), "{name}");
        if *name == "teamSame" {
            assert!(failures.is_empty(), "{failures:?}");
        } else {
            assert_eq!(failures, &refused, "{name}");
            assert_eq!(event["properties"]["shaped"], Value::Null, "{name}");
        }
        assert_eq!(event["properties"]["passed"], json!(1), "{name}");
    }
}

/// Loops forever on the event whose case is `loop`; else tags it.
const LOOPER: &str = r#"
function processEvent(event) {
    if (event.properties.case === 'loop') { for (;;) {} }
    event.properties.looper = true;
    return event;
}
"#;

#[test]
fn a_trap_while_the_instance_holds_the_event_runs_it_again_and_loses_nothing() {
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("looper", LOOPER),
        bundle("passer", PASSER),
    ];
    let limits = Limits {
        fuel: 100_000_000,
        ..Limits::default()
    };
    let events = [
        case("plain"),
        case("loop"),
        case("plain"),
        case("loop"),
        case("numbers"),
    ];
    let (outcomes, own_logs, shared_logs) = same_events_at_both_levels(&bundles, &limits, &events);
    // The first trap is in the shared instance, and the event's second run
    // traps again on the connector's own instance; the next loop is on it.
    let trap = "[looper (1)] error: processEvent: ran out of fuel (100000000 units per call)";
    assert_eq!(own_logs, [trap; 2]);
    let in_shared = format!("{trap}{IN_SHARED}");
    assert_eq!(shared_logs, [in_shared.as_str(), trap, trap]);
    let trapped =
        vec!["looper (1) processEvent: ran out of fuel (100000000 units per call)".to_string()];
    assert_eq!(outcomes[1].1, trapped);
    assert_eq!(outcomes[3].1, trapped);
    for (text, _) in &outcomes {
        let event: Value = serde_json::from_str(text.as_deref().unwrap()).unwrap();
        assert_eq!(event["properties"]["shaped"], json!(true));
        assert_eq!(event["properties"]["passed"], json!(1));
    }
}

/// At its top level, changes every intrinsic a later world could see if
/// worlds shared them.
const POLLUTER: &str = r#"
Object.prototype.polluted = 'yes';
Array.prototype.toJSON = function () { return 'array' };
globalThis.leak = 1;
JSON.stringify = () => 'hijacked';
Math.random = () => 4;
function processEvent(event) { event.properties.list = [1, 2]; return event }
"#;

/// Reports what it sees of the world around it.
const WITNESS: &str = r#"
function processEvent(event) {
    event.properties.witness = {
        polluted: ({}).polluted === undefined ? 'no' : 'yes',
        leak: typeof leak,
        stringify: JSON.stringify([1]),
        random: Math.random() === 4,
        list: Array.isArray(event.properties.list),
    };
    return event;
}
"#;

#[test]
fn what_a_connector_does_to_its_globals_stays_in_its_own_world() {
    let bundles = [bundle("polluter", POLLUTER), bundle("witness", WITNESS)];
    let outcomes = same_at_both_levels(&bundles, &Limits::default(), &[case("plain")]);
    let event: Value = serde_json::from_str(outcomes[0].0.as_deref().unwrap()).unwrap();
    assert_eq!(
        event["properties"]["witness"],
        json!({"polluted": "no", "leak": "undefined", "stringify": "[1]", "random": false, "list": false})
    );
    assert_eq!(event["properties"]["list"], json!("array"));
}

/// Lists its global object and what its text encoding gives.
const GLOBALS: &str = r#"
function attempt(f) { try { return f() } catch (e) { return e.name + ': ' + e.message } }
function processEvent(event) {
    const encoder = new TextEncoder(), decoder = new TextDecoder();
    event.properties.globals = Object.getOwnPropertyNames(globalThis);
    event.properties.text = {
        encoded: Array.from(encoder.encode('a\ud800\u00e9\u{1F600}')),
        encodedNumber: Array.from(encoder.encode(12)),
        decoded: decoder.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0xff, 0x62, 0xed, 0xa0, 0x80])),
        bomKept: new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])),
        view: decoder.decode(new Uint8Array([0x61, 0x62, 0x63]).subarray(1)),
        buffer: decoder.decode(new Uint8Array([0x61]).buffer),
        nothing: decoder.decode(),
        fatal: attempt(() => new TextDecoder(' UTF8 ', { fatal: true }).decode(new Uint8Array([0xff]))),
        label: attempt(() => new TextDecoder('latin1')),
        notBytes: attempt(() => decoder.decode('text')),
        stream: attempt(() => decoder.decode(new Uint8Array([0x61]), { stream: true })),
        encodeInto: attempt(() => encoder.encodeInto('a', new Uint8Array(1))),
        decoderKeys: Object.keys(decoder).concat([decoder.encoding, decoder.fatal, decoder.ignoreBOM]),
        encoderKeys: Object.keys(encoder).concat([encoder.encoding]),
        lengths: [TextDecoder.length, TextEncoder.length, decoder.decode.length, encoder.encode.length, encoder.encodeInto.length],
        names: [TextDecoder.name, TextEncoder.name, String(Object.getOwnPropertyNames(TextDecoder.prototype))],
        random: [typeof Math.random, Math.random.length, Math.random.name, Math.random() < 1],
        buffer64: Buffer.from('h\u00e9llo').toString('base64'),
        console: Object.keys(console),
    };
    return event;
}
"#;

#[test]
fn a_later_world_has_the_same_globals_as_the_first() {
    // The witness is at position 1: the shared instance's second world.
    let bundles = [bundle("passer", PASSER), bundle("globals", GLOBALS)];
    let outcomes = same_at_both_levels(&bundles, &Limits::default(), &[case("plain")]);
    let event: Value = serde_json::from_str(outcomes[0].0.as_deref().unwrap()).unwrap();
    let text = &event["properties"]["text"];
    assert_eq!(
        text["encoded"],
        json!([97, 239, 191, 189, 195, 169, 240, 159, 152, 128])
    );
    assert_eq!(text["decoded"], json!("a\u{FFFD}b\u{FFFD}\u{FFFD}\u{FFFD}"));
    assert_eq!(
        text["label"],
        json!("RangeError: The encoding label provided must be utf-8")
    );
}

/// Counts its calls in `meta.cache` and says so on the console.
fn counter(name: &str) -> String {
    format!(
        r#"
console.log('{name} loaded');
async function processEvent(event, {{ cache }}) {{
    const n = await cache.incr('calls');
    console.log('{name} call', n);
    event.properties['{name}'] = n;
    return event;
}}
"#
    )
}

#[test]
fn each_connector_keeps_its_own_services_and_console_at_the_shared_level() {
    let bundles = [
        bundle("first", &counter("first")),
        bundle("second", &counter("second")),
    ];
    let outcomes = same_at_both_levels(&bundles, &Limits::default(), &[case("a"), case("b")]);
    let event: Value = serde_json::from_str(outcomes[1].0.as_deref().unwrap()).unwrap();
    assert_eq!(event["properties"]["first"], json!(2));
    assert_eq!(event["properties"]["second"], json!(2));
}

/// A connector with only `onEvent`, between two that process events.
const EXPORTER: &str = r#"
async function onEvent(event) {}
"#;

/// Throws in `setupPlugin`, noting it on the console first.
const FAILS_SETUP: &str = r#"
function setupPlugin() { console.log('setting up'); throw new Error('no setup') }
function processEvent(event) { event.properties.set = true; return event }
"#;

#[test]
fn connectors_that_do_not_process_or_fail_to_set_up_are_passed_over_once() {
    // The exporter (world 1) is guessed to process before it loads, and its
    // fuel is below what making a world costs the plugin.
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("exporter", EXPORTER),
        bundle("fails-setup", FAILS_SETUP),
        bundle("observer", OBSERVER),
    ];
    let small = Limits {
        fuel: 3_000_000,
        ..Limits::default()
    };
    let limits = [
        Limits::default(),
        small,
        Limits::default(),
        Limits::default(),
    ];
    let (own_logs, shared_logs) = (
        Arc::new(MemoryLogs::default()),
        Arc::new(MemoryLogs::default()),
    );
    let events = [case("numbers"), case("plain")];
    let own = run(&mut limited(&bundles, &limits, false, &own_logs), &events);
    let shared = run(&mut limited(&bundles, &limits, true, &shared_logs), &events);
    assert_eq!(own, shared);
    assert_eq!(own_logs.lines(), shared_logs.lines());
    assert_eq!(
        own[0].1,
        ["fails-setup (2) processEvent: setup failed: Error: no setup"]
    );
    assert_eq!(
        shared_logs
            .lines()
            .iter()
            .filter(|line| *line == "log: setting up")
            .count(),
        2,
        "one setup attempt an event: {:?}",
        shared_logs.lines()
    );
}

#[test]
fn after_a_trap_the_connectors_before_it_see_the_event_again_at_the_shared_level() {
    // The documented price of the level: the event is run again from the
    // start, so `first` counts it twice in its cache.
    let bundles = [bundle("first", &counter("first")), bundle("looper", LOOPER)];
    let limits = Limits {
        fuel: 100_000_000,
        ..Limits::default()
    };
    let events = [case("plain"), case("loop"), case("plain")];
    let counts = |shared: bool| -> Vec<Value> {
        let logs = Arc::new(MemoryLogs::default());
        run(&mut chain(&bundles, shared, &limits, &logs), &events)
            .into_iter()
            .map(|(text, _)| {
                serde_json::from_str::<Value>(&text.unwrap()).unwrap()["properties"]["first"]
                    .clone()
            })
            .collect()
    };
    assert_eq!(counts(false), [json!(1), json!(2), json!(3)]);
    assert_eq!(counts(true), [json!(1), json!(3), json!(4)]);
}

#[test]
fn a_held_event_is_refused_by_a_later_connector_whose_input_limit_it_passes() {
    // The shaper's result is copied for the observer, which throws; the
    // passer, whose input limit the event passes, must refuse it as text.
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("observer", OBSERVER),
        bundle("passer", PASSER),
    ];
    let narrow = Limits {
        max_input: 60,
        ..Limits::default()
    };
    let limits = [Limits::default(), Limits::default(), narrow];
    let events = [case("throw2"), case("plain")];
    let logs = Arc::new(MemoryLogs::default());
    let mut own = limited(&bundles, &limits, false, &logs);
    let mut shared = limited(&bundles, &limits, true, &logs);
    let own = run(&mut own, &events);
    assert_eq!(run(&mut shared, &events), own);
    assert!(shared.is_holding());
    assert!(
        own[0].1[1].starts_with("passer (2) processEvent: event is "),
        "{:?}",
        own[0].1
    );
}

/// `setupPlugin` succeeds the first time only (it counts in `meta.cache`).
const SETS_UP_ONCE: &str = r#"
async function setupPlugin({ cache }) { if ((await cache.incr('setups')) > 1) throw new Error('set up again') }
function processEvent(event) { event.properties.once = true; return event }
"#;

#[test]
fn a_connector_that_fails_to_load_again_after_a_trap_leaves_the_held_event_in_place() {
    // The trap in the looper resets the instance while it holds the event;
    // in the event's second run the middle connector's setup fails, and the
    // event the first connector returned goes on to the looper as it was.
    let bundles = [
        bundle("shaper", SHAPER),
        bundle("sets-up-once", SETS_UP_ONCE),
        bundle("looper", LOOPER),
    ];
    let limits = Limits {
        fuel: 100_000_000,
        ..Limits::default()
    };
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain(&bundles, true, &limits, &logs);
    let outcomes = run(&mut chain, &[case("plain"), case("loop"), case("plain")]);
    assert!(chain.is_holding());
    assert!(outcomes[0].1.is_empty(), "{:?}", outcomes[0]);
    assert_eq!(
        outcomes[1].1,
        [
            "sets-up-once (1) processEvent: setup failed: Error: set up again",
            "looper (2) processEvent: ran out of fuel (100000000 units per call)"
        ]
    );
    let event: Value = serde_json::from_str(outcomes[1].0.as_deref().unwrap()).unwrap();
    assert_eq!(event["properties"]["shaped"], json!(true));
    assert!(
        !logs.lines().iter().any(|line| line.contains("held")),
        "{:?}",
        logs.lines()
    );
}

#[test]
fn a_teardown_the_shared_instance_could_not_run_is_logged_and_a_moved_connector_is_named() {
    // The stuck connector's teardownPlugin ends the shared instance; the
    // flusher's state went with it, so its teardownPlugin cannot run there.
    // At the default level both run.
    let stuck = "function processEvent(e) { if (e.properties.case === 'loop') { for (;;) {} } return e }\n\
                 function teardownPlugin() { for (;;) {} }";
    let flusher = "function processEvent(e) { return e }\n\
                   function teardownPlugin() { console.log('flushed') }";
    let bundles = [bundle("stuck", stuck), bundle("flusher", flusher)];
    let limits = Limits {
        fuel: 100_000_000,
        ..Limits::default()
    };
    let teardowns = |shared: bool, events: &[Value]| -> (Vec<String>, Vec<String>) {
        let logs = Arc::new(MemoryLogs::default());
        let mut chain = chain(&bundles, shared, &limits, &logs);
        run(&mut chain, events);
        let moved: Vec<String> = chain.moved_out().map(str::to_string).collect();
        drop(logs.take());
        drop(chain);
        let lines = logs
            .take()
            .into_iter()
            .map(|e| format!("[{}] {}: {}", e.connector, e.level.as_str(), e.message))
            .collect();
        (lines, moved)
    };
    let out_of_fuel =
        "[stuck (0)] error: teardownPlugin: ran out of fuel (100000000 units per call)";
    assert_eq!(
        teardowns(false, &[case("plain")]),
        (
            vec![out_of_fuel.to_string(), "[flusher (1)] log: flushed".into()],
            vec![]
        )
    );
    assert_eq!(
        teardowns(true, &[case("plain")]),
        (
            vec![
                format!("{out_of_fuel}{IN_SHARED}"),
                "[flusher (1)] warn: teardownPlugin: not run: the chain's shared instance that held this connector's state ended before it (another connector's error reset it)".into()
            ],
            vec![]
        )
    );
    // Once the stuck connector has left for an instance of its own, the
    // shared instance's trap is no longer its teardown's.
    let (lines, moved) = teardowns(true, &[case("loop"), case("plain")]);
    assert_eq!(moved, ["stuck (0)"]);
    assert_eq!(lines, [out_of_fuel, "[flusher (1)] log: flushed"]);
}

/// Leaves a job behind while its result is read (a getter that queues one),
/// which reads `meta.cache` later.
const LEAVES_A_JOB: &str = r#"
let seen = 'nothing yet';
function processEvent(event, { cache }) {
    event.properties.seen = seen;
    event.properties.trap = {
        get x() {
            Promise.resolve().then(async () => {
                seen = `job saw ${await cache.get('secret')}`;
                console.log('my job ran');
            });
            return 1;
        },
    };
    return event;
}
"#;

/// Keeps a secret in its own `meta.cache`.
const KEEPS_A_SECRET: &str = r#"
async function processEvent(event, { cache }) {
    await cache.set('secret', 'the second connector\'s');
    return event;
}
"#;

#[test]
fn a_job_a_connector_leaves_behind_runs_in_its_own_calls_at_the_shared_level() {
    // At the shared level the job queue is the instance's: the job the first
    // connector's getter queued while its result was copied ran in the second
    // connector's call, reading the second connector's cache under its name.
    let bundles = [
        bundle("leaves", LEAVES_A_JOB),
        bundle("keeps", KEEPS_A_SECRET),
    ];
    let outcomes = same_at_both_levels(
        &bundles,
        &Limits::default(),
        &[case("a"), case("b"), case("c")],
    );
    let seen: Vec<Value> = outcomes
        .iter()
        .map(|(text, _)| serde_json::from_str::<Value>(text.as_deref().unwrap()).unwrap())
        .map(|event| event["properties"]["seen"].clone())
        .collect();
    assert_eq!(
        seen,
        [
            json!("nothing yet"),
            json!("nothing yet"),
            json!("job saw null")
        ]
    );
}

/// Fills its call's console budget at its top level, then fails to load.
const LOGS_THEN_FAILS_TO_LOAD: &str = r#"
for (let i = 0; i < 16; i++) console.log('x'.repeat(16 * 1024));
throw new Error('no top level');
"#;

/// Says that it ran.
const SAYS_IT_RAN: &str = r#"
function processEvent(event) { console.log('it ran'); return event }
"#;

#[test]
fn the_console_of_a_connector_that_failed_to_load_is_not_the_next_ones() {
    // At the shared level the lines a failed top level wrote stayed in the
    // instance: the next connector took them as its own, and its own line was
    // dropped over the call's console budget.
    let bundles = [
        bundle("fails", LOGS_THEN_FAILS_TO_LOAD),
        bundle("runs", SAYS_IT_RAN),
    ];
    let (_, own, shared) = same_events_at_both_levels(&bundles, &Limits::default(), &[case("a")]);
    let shared: Vec<String> = shared.iter().map(|l| l.replace(IN_SHARED, "")).collect();
    assert_eq!(own, shared);
    assert!(
        own.contains(&"[runs (1)] log: it ran".to_string()),
        "{own:?}"
    );
    assert!(!own.iter().any(|line| line.contains("xxxx")), "{own:?}");
}
