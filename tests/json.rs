//! The guest's JSON transcoder (guest-sdk/src/json.rs) against V8: what a
//! connector returns is written exactly as Node's `JSON.stringify` writes it,
//! and what the host sends in is read exactly as Node's `JSON.parse` reads it,
//! on the fast path and on every value it hands to QuickJS instead.
//!
//! The expected texts were produced by Node 20 (V8) from the same expressions;
//! for numbers the test runs `node` itself (on PATH, as in CI) on the same doubles.

mod common;

use common::*;
use sandpipe_runtime::{CallError, Connector, Limits, MemoryLogs};
use std::sync::Arc;

/// (JavaScript expression, V8's `JSON.stringify({ v: expression })`).
const STRINGIFY: &[(&str, &str)] = &[
    // Ties between two shortest forms go to the even digit, as V8 does.
    (
        "[565126552712172.25, 0.1 + 0.2, 1 / 3]",
        "{\"v\":[565126552712172.2,0.30000000000000004,0.3333333333333333]}",
    ),
    (
        "{ a: 1, b: 'x', c: true, d: null, e: [1, 'two', false, null], f: { g: { h: [] } }, i: {} }",
        "{\"v\":{\"a\":1,\"b\":\"x\",\"c\":true,\"d\":null,\"e\":[1,\"two\",false,null],\"f\":{\"g\":{\"h\":[]}},\"i\":{}}}",
    ),
    (
        "[1e21, 1e-7, 0.1, -0, 2 ** 53, 2 ** 53 + 2, 123.456, 5e-324, 1.7976931348623157e308, NaN, Infinity, -Infinity, -1e-7, 1e20, 123456789012, -2147483649, 0.000001, 1.5e300]",
        "{\"v\":[1e+21,1e-7,0.1,0,9007199254740992,9007199254740994,123.456,5e-324,1.7976931348623157e+308,null,null,null,-1e-7,100000000000000000000,123456789012,-2147483649,0.000001,1.5e+300]}",
    ),
    (
        "'quote \" backslash \\\\ newline \\n return \\r tab \\t backspace \\b formfeed \\f nul \\u0000 unit \\u001f del \\u007f ls \\u2028 slash / \u{e9} \u{4e2d}\u{6587} \u{1f600}'",
        "{\"v\":\"quote \\\" backslash \\\\ newline \\n return \\r tab \\t backspace \\b formfeed \\f nul \\u0000 unit \\u001f del \u{7f} ls \u{2028} slash / \u{e9} \u{4e2d}\u{6587} \u{1f600}\"}",
    ),
    (
        "'lone high \\ud800 lone low \\udc00 pair \\ud83d\\ude00 reversed \\ude00\\ud83d'",
        "{\"v\":\"lone high \\ud800 lone low \\udc00 pair \u{1f600} reversed \\ude00\\ud83d\"}",
    ),
    (
        "{ u: undefined, f() {}, s: Symbol('x'), kept: 1, [Symbol('k')]: 2 }",
        "{\"v\":{\"kept\":1}}",
    ),
    (
        "[undefined, function () {}, Symbol('y'), 1]",
        "{\"v\":[null,null,null,1]}",
    ),
    ("[1, , 3]", "{\"v\":[1,null,3]}"),
    (
        "{ b: 1, 2: 'two', a: 2, 1: 'one', '-1': 'minus', '01': 'lead' }",
        "{\"v\":{\"1\":\"one\",\"2\":\"two\",\"b\":1,\"a\":2,\"-1\":\"minus\",\"01\":\"lead\"}}",
    ),
    (
        "{ when: new Date(0), buf: Buffer.from('hi'), url: new URL('https://example.com/a?b=1') }",
        "{\"v\":{\"when\":\"1970-01-01T00:00:00.000Z\",\"buf\":{\"type\":\"Buffer\",\"data\":[104,105]},\"url\":\"https://example.com/a?b=1\"}}",
    ),
    (
        "new (class Point { constructor() { this.x = 1; this.y = 2 } })()",
        "{\"v\":{\"x\":1,\"y\":2}}",
    ),
    (
        "{ get g() { return ++globalThis.getterCalls } }",
        "{\"v\":{\"g\":1}}",
    ),
    (
        "{ toJSON(key) { return 'toJSON(' + key + ')' } }",
        "{\"v\":\"toJSON(v)\"}",
    ),
    (
        "{ nested: { toJSON(key) { return 'nested(' + key + ')' } } }",
        "{\"v\":{\"nested\":\"nested(nested)\"}}",
    ),
    (
        "Object.assign(Object.create(null), { z: 1 })",
        "{\"v\":{\"z\":1}}",
    ),
    (
        "Object.create({ inherited: 1 }, { own: { value: 2, enumerable: true }, hidden: { value: 3, enumerable: false } })",
        "{\"v\":{\"own\":2}}",
    ),
    ("new Map([[1, 2]])", "{\"v\":{}}"),
    ("new Proxy({ a: 1 }, {})", "{\"v\":{\"a\":1}}"),
    (
        "[new Number(3), new String('s'), new Boolean(false)]",
        "{\"v\":[3,\"s\",false]}",
    ),
    (
        "JSON.parse('{\"__proto__\": {\"x\": 1}, \"y\": 2}')",
        "{\"v\":{\"__proto__\":{\"x\":1},\"y\":2}}",
    ),
    (
        "(() => { let v = 'leaf'; for (let i = 0; i < 300; i++) v = [v]; return v })()",
        "{\"v\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"leaf\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    ),
    ("new Uint8Array([1, 2])", "{\"v\":{\"0\":1,\"1\":2}}"),
    (
        "(() => { const a = [1, 2]; a.extra = 3; return a })()",
        "{\"v\":[1,2]}",
    ),
    (
        "(() => { const o = { a: 1 }; Object.defineProperty(o, 'b', { value: 2, enumerable: false }); return o })()",
        "{\"v\":{\"a\":1}}",
    ),
    ("'a'.repeat(3) + 'b'.repeat(2)", "{\"v\":\"aaabb\"}"),
    ("{ e: new Error('boom') }", "{\"v\":{\"e\":{}}}"),
    // Written straight from an object's shape, an array's elements and a
    // string's 8-bit characters (the engine's `JS_Sandpipe*` views): deleted
    // slots, holes past the elements, array-index keys (listed first, so
    // such an object takes the listed path), private names, hidden getters,
    // Latin-1 and 16-bit strings, frozen and sealed objects, own `toJSON`.
    (
        "(() => { const o = { a: 1, b: 2, c: 3 }; delete o.b; o.d = 4; return o })()",
        "{\"v\":{\"a\":1,\"c\":3,\"d\":4}}",
    ),
    (
        "(() => { const a = [1, 2]; a.length = 4; return a })()",
        "{\"v\":[1,2,null,null]}",
    ),
    (
        "(() => { const a = [1, 2, 3]; a.length = 1; a.push('x'); return a })()",
        "{\"v\":[1,\"x\"]}",
    ),
    (
        "{ b: 1, 4294967294: 'max index', 4294967295: 'not an index', 2147483648: 'past int32', 7: 'seven' }",
        "{\"v\":{\"7\":\"seven\",\"2147483648\":\"past int32\",\"4294967294\":\"max index\",\"b\":1,\"4294967295\":\"not an index\"}}",
    ),
    (
        "(() => { class Base { constructor(o) { return o } } class Stamp extends Base { #hidden = 1; constructor(o) { super(o) } } return new Stamp({ shown: 2 }) })()",
        "{\"v\":{\"shown\":2}}",
    ),
    (
        "(() => { const o = { a: 1 }; Object.defineProperty(o, 'g', { get() { throw new Error('read') }, enumerable: false }); o.z = 2; return o })()",
        "{\"v\":{\"a\":1,\"z\":2}}",
    ),
    (
        "{ 'cl\\u00e9': 'caf\\u00e9', plain: 'ascii', wide: '\\u4e2d' }",
        "{\"v\":{\"cl\u{e9}\":\"caf\u{e9}\",\"plain\":\"ascii\",\"wide\":\"\u{4e2d}\"}}",
    ),
    (
        "Object.freeze({ frozen: [Object.seal({ sealed: true })] })",
        "{\"v\":{\"frozen\":[{\"sealed\":true}]}}",
    ),
    (
        "(() => { const o = { a: 1, b: 2 }; o.a = 'changed'; return o })()",
        "{\"v\":{\"a\":\"changed\",\"b\":2}}",
    ),
    (
        "{ a: 1, toJSON() { return 'own toJSON' } }",
        "{\"v\":\"own toJSON\"}",
    ),
    // An own `toJSON` is called whether it is enumerable or not, on an
    // array too, and beside array-index keys.
    (
        "(() => { const o = { a: 1 }; Object.defineProperty(o, 'toJSON', { value: () => 'hidden toJSON' }); return o })()",
        "{\"v\":\"hidden toJSON\"}",
    ),
    (
        "(() => { const a = [1]; a.toJSON = () => 'array toJSON'; return a })()",
        "{\"v\":\"array toJSON\"}",
    ),
    (
        "{ 1: 'one', toJSON() { return 'indexed toJSON' } }",
        "{\"v\":\"indexed toJSON\"}",
    ),
];

/// (JSON text the host sends, V8's `JSON.stringify({ v: inspect(JSON.parse(text)) })`).
const PARSE: &[(&str, &str)] = &[
    (
        "{\"a\":{},\"b\":{\"c\":{}},\"d\":[{},{\"e\":[]},{}],\"f\":{}}",
        "{\"v\":[\"object\",true,[[\"a\",[\"object\",true,[]]],[\"b\",[\"object\",true,[[\"c\",[\"object\",true,[]]]]]],[\"d\",[\"array\",[[\"object\",true,[]],[\"object\",true,[[\"e\",[\"array\",[]]]]],[\"object\",true,[]]]]],[\"f\",[\"object\",true,[]]]]]}",
    ),
    (
        "{\"n\":[-0,0,0.1,1e21,9007199254740993,1e-7,5e-324,1.7976931348623157e308,12345678901234567890,-9223372036854775809,2.2250738585072011e-308,0.30000000000000004,123456789.123456789,-2147483648,2147483648,1E2,1e-400]}",
        "{\"v\":[\"object\",true,[[\"n\",[\"array\",[\"-0\",\"0\",\"0.1\",\"1e+21\",\"9007199254740992\",\"1e-7\",\"5e-324\",\"1.7976931348623157e+308\",\"12345678901234567000\",\"-9223372036854776000\",\"2.225073858507201e-308\",\"0.30000000000000004\",\"123456789.12345679\",\"-2147483648\",\"2147483648\",\"100\",\"0\"]]]]]}",
    ),
    (
        "{\"__proto__\":{\"x\":1},\"dup\":1,\"b\":0,\"dup\":2,\"2\":\"b\",\"1\":\"a\",\"\":\"empty\"}",
        "{\"v\":[\"object\",true,[[\"1\",[\"string\",[\"61\"]]],[\"2\",[\"string\",[\"62\"]]],[\"__proto__\",[\"object\",true,[[\"x\",\"1\"]]]],[\"dup\",\"2\"],[\"b\",\"0\"],[\"\",[\"string\",[\"65\",\"6d\",\"70\",\"74\",\"79\"]]]]]}",
    ),
    (
        "{\"s\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\u0000 plain \u{e9} \u{1f600}\",\"t\":true,\"f\":false,\"z\":null}",
        "{\"v\":[\"object\",true,[[\"s\",[\"string\",[\"e9\",\"1f600\",\"a\",\"22\",\"5c\",\"2f\",\"0\",\"20\",\"70\",\"6c\",\"61\",\"69\",\"6e\",\"20\",\"e9\",\"20\",\"1f600\"]]],[\"t\",true],[\"f\",false],[\"z\",null]]]}",
    ),
    (
        "{\"s\":\"\\ud800x\"}",
        "{\"v\":[\"object\",true,[[\"s\",[\"string\",[\"d800\",\"78\"]]]]]}",
    ),
    // Members defined straight into the shape, except a repeated key (its
    // first place, its last value) and array indexes (listed first).
    (
        "{\"x\":1,\"y\":2,\"x\":3,\"1\":4,\"1\":5,\"4294967295\":6,\"nested\":{\"x\":{},\"x\":[7]}}",
        "{\"v\":[\"object\",true,[[\"1\",\"5\"],[\"x\",\"3\"],[\"y\",\"2\"],[\"4294967295\",\"6\"],[\"nested\",[\"object\",true,[[\"x\",[\"array\",[\"7\"]]]]]]]]}",
    ),
    (
        "{\"n\":1e400}",
        "{\"v\":[\"object\",true,[[\"n\",\"Infinity\"]]]}",
    ),
];

/// Describes a parsed value precisely: types, prototypes, key order, -0, code points.
const INSPECT: &str = r#"
    function inspect(v) {
        if (Array.isArray(v)) return ['array', v.map(inspect)];
        if (v !== null && typeof v === 'object') return ['object', Object.getPrototypeOf(v) === Object.prototype, Object.entries(v).map(([k, x]) => [k, inspect(x)])];
        if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
        if (typeof v === 'string') return ['string', Array.from(v, (c) => c.codePointAt(0).toString(16))];
        return v;
    }
    export function processEvent(e) { return { v: inspect(e) } }
"#;

fn raw_call(connector: &mut Connector, input: &[u8]) -> Result<String, CallError> {
    let bytes = connector.call_raw(Call::ProcessEvent, input)?;
    Ok(String::from_utf8(bytes).expect("the plugin writes UTF-8"))
}

#[test]
fn results_are_written_as_v8_writes_them() {
    let samples: Vec<String> = STRINGIFY
        .iter()
        .map(|(expression, _)| format!("() => ({expression}),"))
        .collect();
    let js = format!(
        "globalThis.getterCalls = 0\nconst samples = [\n{}\n]\nexport function processEvent(e) {{ return {{ v: samples[e.i]() }} }}",
        samples.join("\n")
    );
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("stringify", &js, 0, &logs);
    for (i, (expression, expected)) in STRINGIFY.iter().enumerate() {
        let written = raw_call(&mut connector, format!(r#"{{"i":{i}}}"#).as_bytes())
            .unwrap_or_else(|e| panic!("{expression}: {e}"));
        assert_eq!(&written, expected, "{expression}");
    }
    assert!(logs.lines().is_empty(), "{:?}", logs.lines());
}

#[test]
fn events_are_read_as_v8_reads_them() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("parse", INSPECT, 0, &logs);
    for (input, expected) in PARSE {
        let read =
            raw_call(&mut connector, input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&read, expected, "{input}");
    }
}

/// Objects read with the same keys in the same order share one shape (the
/// engine keeps the shapes it built lately, `JS_SandpipeNewObject`): changing,
/// deleting from or freezing one of them changes none of the others, in this
/// call or the next, as in V8.
#[test]
fn objects_read_with_the_same_keys_change_apart() {
    const JS: &str = r#"
        export function processEvent(e) {
            const [x, y, z] = e.list;
            const before = [Object.isFrozen(x), Object.isFrozen(z), Object.keys(x), Object.keys(z)];
            x.c = 1; delete y.a; Object.freeze(z); const refused = Reflect.set(z, 'b', 'x');
            return { before, keys: [Object.keys(x), Object.keys(y), Object.keys(z)], frozen: [Object.isFrozen(x), Object.isFrozen(z), refused], written: JSON.stringify(e.list) };
        }
    "#;
    // V8's answer (Node 20), each time.
    const EXPECTED: &str = r#"{"before":[false,false,["a","b"],["a","b"]],"keys":[["a","b","c"],["b"],["a","b"]],"frozen":[false,true,false],"written":"[{\"a\":1,\"b\":2,\"c\":1},{\"b\":4},{\"a\":5,\"b\":6}]"}"#;
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("shapes", JS, 0, &logs);
    let input = br#"{"list":[{"a":1,"b":2},{"a":3,"b":4},{"a":5,"b":6}]}"#;
    for call in 0..3 {
        assert_eq!(
            raw_call(&mut connector, input).unwrap(),
            EXPECTED,
            "call {call}"
        );
    }
}

/// An event with more keys than the reader's cache of key atoms holds
/// (`KeyAtoms` in guest-sdk/src/json.rs: 1,024 slots in sets of four) is read
/// whole: keys that push others out of their set part-way through one parse
/// keep their names, in this call and the next, in either order; and keys
/// past the writer's cache (`KeyCache`) are written as they were read.
#[test]
fn an_event_with_more_keys_than_the_key_cache_holds_is_read_whole() {
    let logs = Arc::new(MemoryLogs::default());
    let js = "export function processEvent(e) { return e }";
    let mut connector = connector("many-keys", js, 0, &logs);
    let event = |keys: &mut dyn Iterator<Item = usize>| {
        let members: Vec<String> = keys.map(|k| format!(r#""key_{k}":{k}"#)).collect();
        format!(r#"{{"p":{{{}}}}}"#, members.join(","))
    };
    let forward = event(&mut (0..3000));
    let backward = event(&mut (0..3000).rev());
    for input in [&forward, &backward, &forward] {
        assert_eq!(raw_call(&mut connector, input.as_bytes()).unwrap(), *input);
    }
    // Past every bound of both caches: more keys than the writer keeps quoted
    // (4,096), keys too long for the reader's cache (over 64 bytes) or the
    // writer's (over 130 quoted), keys with escapes; written back byte for byte.
    let key = |k: usize| match k % 11 {
        0 => format!("long_{k}_{}", "x".repeat(100 + k % 50)),
        1 => format!("quote\"{k}\\back\n"),
        _ => format!("key_{k}"),
    };
    let mut properties = serde_json::Map::new();
    for k in 0..6000 {
        properties.insert(key(k), k.into());
    }
    let input = serde_json::to_string(&serde_json::json!({ "p": properties })).unwrap();
    for _ in 0..2 {
        assert_eq!(raw_call(&mut connector, input.as_bytes()).unwrap(), input);
    }
}

/// A key is read as its characters: "é" (UTF-8 C3 A9) stays "é" even when the
/// connector has made the two-character name "Ã©" (QuickJS compared UTF-8
/// bytes with its names' Latin-1 characters, and read the first as the second).
#[test]
fn a_key_is_read_as_its_characters_not_its_utf8_bytes() {
    const JS: &str = r#"
        const trap = { '\u00c3\u00a9': 0 }
        export function processEvent(e) {
            return { keys: Object.keys(e.p).map((k) => Array.from(k, (c) => c.codePointAt(0))), p: e.p }
        }
    "#;
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("utf8-keys", JS, 0, &logs);
    let read = raw_call(
        &mut connector,
        "{\"p\":{\"\u{e9}\":1,\"\u{c3}\u{a9}\":2,\"\u{4e2d}\":3}}".as_bytes(),
    )
    .unwrap();
    // V8's answer (Node 20).
    assert_eq!(
        read,
        "{\"keys\":[[233],[195,169],[20013]],\"p\":{\"\u{e9}\":1,\"\u{c3}\u{a9}\":2,\"\u{4e2d}\":3}}"
    );
}

#[test]
fn nesting_deeper_than_the_fast_path_is_read_and_written() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("deep", INSPECT, 0, &logs);
    let input = format!("{}\"leaf\"{}", "[".repeat(200), "]".repeat(200));
    let expected = format!(
        r#"{{"v":{}["string",["6c","65","61","66"]]{}}}"#,
        r#"["array",["#.repeat(200),
        "]]".repeat(200)
    );
    assert_eq!(
        raw_call(&mut connector, input.as_bytes()).unwrap(),
        expected
    );
}

#[test]
fn text_that_is_not_json_is_a_syntax_error() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("invalid", INSPECT, 0, &logs);
    let error = raw_call(&mut connector, br#"{"a":"#).unwrap_err();
    assert!(error.to_string().starts_with("SyntaxError: "), "{error}");
    // The instance is still usable.
    assert_eq!(
        raw_call(&mut connector, b"{}").unwrap(),
        r#"{"v":["object",true,[]]}"#
    );
}

#[test]
fn a_cycle_is_a_type_error() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector(
        "cycle",
        "export function processEvent(e) { e.self = e; return e }",
        0,
        &logs,
    );
    let error = raw_call(&mut connector, b"{}").unwrap_err();
    assert_eq!(error.to_string(), "TypeError: circular reference");
}

#[test]
fn a_to_json_on_the_intrinsic_prototypes_is_honoured() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector(
        "proto",
        r#"export function processEvent(e) {
            if (e.set) Object.prototype.toJSON = function () { return 'replaced' }
            else delete Object.prototype.toJSON
            return { v: [1, { a: 1 }] }
        }"#,
        0,
        &logs,
    );
    assert_eq!(
        raw_call(&mut connector, br#"{"set":true}"#).unwrap(),
        r#""replaced""#
    );
    assert_eq!(
        raw_call(&mut connector, br#"{"set":false}"#).unwrap(),
        r#"{"v":[1,{"a":1}]}"#
    );
}

#[test]
fn an_array_prototype_rewired_to_one_with_a_to_json_is_honoured() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector(
        "rewired",
        r#"const plain = Object.getPrototypeOf(Array.prototype);
        export function processEvent(e) {
            Object.setPrototypeOf(Array.prototype, e.set ? { toJSON() { return 'array' } } : plain)
            return { v: [1, [2]] }
        }"#,
        0,
        &logs,
    );
    // As V8 writes it: `{"v":"array"}` once the arrays inherit a toJSON.
    assert_eq!(
        raw_call(&mut connector, br#"{"set":true}"#).unwrap(),
        r#"{"v":"array"}"#
    );
    assert_eq!(
        raw_call(&mut connector, br#"{"set":false}"#).unwrap(),
        r#"{"v":[1,[2]]}"#
    );
}

/// Makes doubles from their bits (16 hex digits each, read from stdin as a JSON
/// array) and writes them as V8 does: `JSON.stringify({ v: doubles })`.
const NODE_NUMBERS: &str = r#"
    const bits = JSON.parse(require('fs').readFileSync(0, 'utf8'));
    const view = new DataView(new ArrayBuffer(8));
    const v = bits.map((hex) => {
        view.setUint32(0, parseInt(hex.slice(0, 8), 16));
        view.setUint32(4, parseInt(hex.slice(8), 16));
        return view.getFloat64(0);
    });
    process.stdout.write(JSON.stringify({ v }));
"#;

/// What Node 20 (V8) writes for `NODE_NUMBERS` given `stdin`.
fn node(script: &str, stdin: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("node")
        .args(["-e", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (Node.js 20, as in CI) is on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn numbers_are_written_as_v8_writes_them() {
    // Doubles from random bit patterns (every exponent), from everyday
    // magnitudes, around every power of ten and of two (where the notation
    // changes) and around 2^53; the transcoder writes them, and Node writes
    // the same doubles (rebuilt from their bits) for comparison byte for byte.
    let logs = Arc::new(MemoryLogs::default());
    // Ten thousand doubles, their bits in hex, and the text of both: more
    // than one default call's fuel.
    let limits = Limits {
        fuel: 5_000_000_000,
        ..Limits::default()
    };
    let mut connector = connector_with(
        bundle(
            "numbers",
            r#"
        let state = 0x9e3779b9
        function next() { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return state >>> 0 }
        const words = new Uint32Array(2)
        const doubles = new Float64Array(words.buffer)
        const hex = (word) => word.toString(16).padStart(8, '0')
        export function processEvent(e) {
            const v = []
            // x and the doubles up to two steps either side of it.
            const around = (x) => {
                for (const step of [-2, -1, 0, 1, 2]) {
                    doubles[0] = x
                    words[0] += step
                    if (Number.isFinite(doubles[0])) v.push(doubles[0])
                }
            }
            while (v.length < 6000) {
                words[0] = next(); words[1] = next()
                if (Number.isFinite(doubles[0])) v.push(doubles[0])
                v.push((next() / 4294967296) * 10 ** ((next() % 40) - 20))
                v.push(Math.round(next() / 43) / 100)
            }
            for (let k = -324; k <= 308; k++) around(Number(`1e${k}`))
            for (let k = -1074; k <= 1023; k += 7) around(2 ** k)
            for (const x of [2 ** 53, -(2 ** 53), 2 ** 31, -(2 ** 31), 2 ** 32, 1e21 - 65536, 123e-20, 5e-324, 1.7976931348623157e308]) around(x)
            const bits = v.map((x) => { doubles[0] = x; return hex(words[1]) + hex(words[0]) })
            return { v, bits }
        }"#,
        ),
        0,
        serde_json::Value::Null,
        limits,
        &logs,
    );
    let text = raw_call(&mut connector, b"{}").unwrap();
    let written = text
        .strip_prefix(r#"{"v":["#)
        .and_then(|rest| rest.split_once(r#"],"bits":"#))
        .map(|(numbers, _)| numbers)
        .expect("the result has v then bits");
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bits = &result["bits"];
    let v8 = node(NODE_NUMBERS, &bits.to_string());
    let expected = v8
        .strip_prefix(r#"{"v":["#)
        .and_then(|rest| rest.strip_suffix("]}"))
        .expect("node wrote {\"v\":[...]}");
    let written: Vec<&str> = written.split(',').collect();
    let expected: Vec<&str> = expected.split(',').collect();
    assert_eq!(written.len(), expected.len());
    assert_eq!(written.len(), bits.as_array().unwrap().len());
    assert!(written.len() >= 9_000, "{}", written.len());
    let differ: Vec<String> = written
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (written, expected))| written != expected)
        .map(|(i, (written, expected))| {
            format!("bits {}: wrote {written}, V8 writes {expected}", bits[i])
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} doubles are not written as V8 writes them:\n{}",
        differ.len(),
        written.len(),
        differ.join("\n")
    );
    assert_eq!(format!(r#"{{"v":[{}]}}"#, written.join(",")), v8);
    assert!(logs.lines().is_empty(), "{:?}", logs.lines());
}

/// Every way a connector turns a number into text: `String`, `toString` (in
/// base 10 and 16), template literals, concatenation, `JSON.stringify` (the
/// connector's own, not the boundary's), and `toExponential`, `toPrecision`,
/// `toFixed` with and without digits. The connector and Node run this same
/// source on the same doubles.
const PRINTS: &str = r#"
    const prints = (x) => [
        String(x), x.toString(), `${x}`, '' + x, JSON.stringify([x]), x.toString(16),
        x.toExponential(), x.toExponential(3), x.toPrecision(), x.toPrecision(5), x.toFixed(2),
    ]
    const fromBits = (hex) => {
        const view = new DataView(new ArrayBuffer(8))
        view.setUint32(0, parseInt(hex.slice(0, 8), 16))
        view.setUint32(4, parseInt(hex.slice(8), 16))
        return view.getFloat64(0)
    }
"#;

/// The bits (16 hex digits) of every power of two, the doubles either side of
/// each, and pseudo-random doubles of every exponent.
fn doubles_to_print() -> Vec<String> {
    let mut bits: Vec<u64> = Vec::new();
    for exponent in -1074..=1023 {
        let power = 2f64.powi(exponent).to_bits();
        bits.extend([power - 1, power, power + 1]);
    }
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    while bits.len() < 9_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if f64::from_bits(state).is_finite() {
            bits.push(state);
        }
    }
    bits.iter()
        .flat_map(|&b| [b, b | 1 << 63])
        .map(|b| format!("{b:016x}"))
        .collect()
}

#[test]
fn numbers_print_inside_a_connector_as_v8_prints_them() {
    let bits = doubles_to_print();
    let logs = Arc::new(MemoryLogs::default());
    let limits = Limits {
        fuel: 20_000_000_000,
        deadline: std::time::Duration::from_secs(60),
        max_input: 4 << 20,
        max_output: 16 << 20,
        ..Limits::default()
    };
    let js = format!(
        "{PRINTS}\nexport function processEvent(e) {{ return {{ texts: e.bits.map((hex) => prints(fromBits(hex))) }} }}"
    );
    let mut connector = connector_with(
        bundle("prints", &js),
        0,
        serde_json::Value::Null,
        limits,
        &logs,
    );
    let input = serde_json::json!({ "bits": bits }).to_string();
    let written: serde_json::Value =
        serde_json::from_str(&raw_call(&mut connector, input.as_bytes()).unwrap()).unwrap();
    let v8: serde_json::Value = serde_json::from_str(&node(
        &format!(
            "{PRINTS}\nconst bits = JSON.parse(require('fs').readFileSync(0, 'utf8'))\nprocess.stdout.write(JSON.stringify({{ texts: bits.map((hex) => prints(fromBits(hex))) }}))"
        ),
        &serde_json::to_string(&bits).unwrap(),
    ))
    .unwrap();
    let (written, v8) = (
        written["texts"].as_array().unwrap(),
        v8["texts"].as_array().unwrap(),
    );
    assert_eq!(written.len(), bits.len());
    assert_eq!(v8.len(), bits.len());
    let differ: Vec<String> = (0..bits.len())
        .filter(|&i| written[i] != v8[i])
        .map(|i| {
            format!(
                "bits {}: wrote {}, V8 writes {}",
                bits[i], written[i], v8[i]
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} doubles are not printed as V8 prints them; the first:\n{}",
        differ.len(),
        bits.len(),
        differ[..differ.len().min(20)].join("\n")
    );
    assert!(logs.lines().is_empty(), "{:?}", logs.lines());
}

/// Strings with one character that needs a look (an escape, a control
/// character, a lone surrogate, a character beyond ASCII or beyond Latin-1)
/// at every position of 40, so each lands in every lane of the writer's and
/// reader's sixteen- and eight-byte scans and in their tails.
const LANES: &str = r#"
    const marks = ['"', '\\', '\n', '\u0001', '\u001f', '\u007f', '\u00e9', '\ud800', '\udfff', '\u4e2d', '\ud83d\ude00'];
    const strings = [];
    for (const mark of marks) {
        for (let at = 0; at < 40; at++) strings.push('a'.repeat(at) + mark + 'b'.repeat(39 - at));
    }
"#;

#[test]
fn a_character_needing_a_look_is_written_and_read_in_every_lane() {
    let expected = node(
        &format!("{LANES}\nprocess.stdout.write(JSON.stringify({{ v: strings }}))"),
        "",
    );
    let logs = Arc::new(MemoryLogs::default());
    let js = format!(
        "{LANES}\nexport function processEvent(e) {{ return e.v ? {{ v: e.v }} : {{ v: strings }} }}"
    );
    let mut connector = connector("lanes", &js, 0, &logs);
    let written = raw_call(&mut connector, b"{}").unwrap();
    assert_eq!(written, expected);
    // Read back and written again: the same text (lone surrogates arrive as
    // `\u` escapes; everything else as the UTF-8 the writer wrote).
    let read = raw_call(&mut connector, written.as_bytes()).unwrap();
    assert_eq!(read, expected);
}

/// Text that is not UTF-8 never reaches the fast reader: an invalid sequence
/// at any position of 40 ASCII characters (inside or after the prefix the
/// reader checks sixteen bytes at a time) is left to QuickJS's parser, which
/// refuses it, as it refuses it at the start; a surrogate encoded in three
/// bytes it reads as that lone surrogate, wherever it is.
#[test]
fn text_that_is_not_utf8_is_read_by_quickjs_wherever_it_is() {
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector("parse", INSPECT, 0, &logs);
    let text = |at: usize, bad: &[u8]| {
        let mut input = br#"{"v":""#.to_vec();
        input.extend(std::iter::repeat_n(b'a', at));
        input.extend_from_slice(bad);
        input.extend(std::iter::repeat_n(b'b', 39 - at));
        input.extend_from_slice(br#""}"#);
        input
    };
    for bad in [&b"\xff"[..], b"\xc3", b"\xc0\x80"] {
        for at in 0..40 {
            match raw_call(&mut connector, &text(at, bad)) {
                Err(CallError::Threw(error)) => {
                    assert_eq!(
                        error.name.as_deref(),
                        Some("SyntaxError"),
                        "{bad:?} at {at}"
                    )
                }
                other => panic!("{bad:?} at {at}: {other:?}"),
            }
        }
    }
    for at in 0..40 {
        let units: Vec<String> = std::iter::repeat_n("\"61\"", at)
            .chain(["\"d800\""])
            .chain(std::iter::repeat_n("\"62\"", 39 - at))
            .map(str::to_string)
            .collect();
        let expected = format!(
            r#"{{"v":["object",true,[["v",["string",[{}]]]]]}}"#,
            units.join(",")
        );
        let read = raw_call(&mut connector, &text(at, b"\xed\xa0\x80")).unwrap();
        assert_eq!(read, expected, "at {at}");
    }
}
