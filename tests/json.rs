//! The guest's JSON transcoder (guest-sdk/src/json.rs) against V8: what a
//! connector returns is written exactly as Node's `JSON.stringify` writes it,
//! and what the host sends in is read exactly as Node's `JSON.parse` reads it,
//! on the fast path and on every value it hands to QuickJS instead.
//!
//! The expected texts were produced by Node 20 (V8) from the same expressions.

mod common;

use common::*;
use sandpipe_abi::Call;
use sandpipe_runtime::{CallError, Connector, MemoryLogs};
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
    let bytes = connector.call(Call::ProcessEvent, input, "processEvent")?;
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
fn numbers_are_written_as_number_to_string_writes_them() {
    // Doubles from random bit patterns (every exponent) and from everyday
    // magnitudes; each is written by the transcoder and by QuickJS's String().
    let logs = Arc::new(MemoryLogs::default());
    let mut connector = connector(
        "numbers",
        r#"
        let state = 0x9e3779b9
        function next() { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return state >>> 0 }
        export function processEvent(e) {
            const words = new Uint32Array(2)
            const doubles = new Float64Array(words.buffer)
            const v = []
            while (v.length < 6000) {
                words[0] = next(); words[1] = next()
                const bits = doubles[0]
                if (Number.isFinite(bits)) v.push(bits)
                v.push((next() / 4294967296) * 10 ** ((next() % 40) - 20))
                v.push(Math.round(next() / 43) / 100)
            }
            return { v, s: v.map(String) }
        }"#,
        0,
        &logs,
    );
    let text = raw_call(&mut connector, b"{}").unwrap();
    let written = text
        .strip_prefix(r#"{"v":["#)
        .and_then(|rest| rest.split_once(r#"],"s":"#))
        .map(|(numbers, _)| numbers)
        .expect("the result has v then s");
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected: Vec<&str> = result["s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let written: Vec<&str> = written.split(',').collect();
    assert_eq!(written.len(), expected.len());
    assert!(written.len() >= 6_000);
    for (written, expected) in written.iter().zip(&expected) {
        assert_eq!(written, expected);
    }
}
