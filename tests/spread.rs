//! The vendored engine's shape fast paths against V8.
//!
//! Object spread (`{...source}`): QuickJS copies a plain source into a fresh
//! literal straight from its shape (`js_copy_plain_data_properties` in
//! quickjs.c); every other source takes the general path. Each case of
//! `CASES` describes the object spread gives — own keys in order, descriptors,
//! prototype, getter calls, identity of nested values, and that neither side
//! changes the other afterwards.
//!
//! `Object.keys`, `Object.values` and `Object.entries`: a plain object's are
//! read straight from its shape (`js_sandpipe_own_enumerable`); each case of
//! `OWN` gives the three for an object the fast path takes or must leave.
//!
//! Each test compares the plugin's descriptions with Node 20's, case by case.

mod common;

use common::*;
use sandpipe_runtime::{MemoryLogs, Processed};
use std::sync::Arc;

/// How both scripts below show a value, given to the connector and to Node with each.
const SHOW: &str = r#"
function show(value) {
    if (typeof value === 'symbol') return `@${value.description}`;
    if (typeof value === 'function') return 'function';
    if (value !== null && typeof value === 'object') return JSON.stringify(value);
    return String(value);
}
"#;

/// Shared by the connector and Node: `cases()` returns one description per case.
const CASES: &str = r#"
function describe(o) {
    const keys = Reflect.ownKeys(o).map((k) => {
        const d = Object.getOwnPropertyDescriptor(o, k);
        const flags = (d.writable ? 'w' : '') + (d.enumerable ? 'e' : '') + (d.configurable ? 'c' : '');
        return `${show(k)}=${'value' in d ? show(d.value) : 'accessor'}:${flags}`;
    });
    const proto = Object.getPrototypeOf(o);
    const protoName = proto === Object.prototype ? 'Object' : proto === null ? 'null' : 'other';
    return `${keys.join(',')}|${protoName}|extensible=${Object.isExtensible(o)}|${JSON.stringify(o)}`;
}
function cases() {
    const out = [];
    const add = (name, f) => { try { out.push(`${name}: ${f()}`); } catch (e) { out.push(`${name}: threw ${e.name}`); } };
    add('plain', () => describe({ ...{ a: 1, b: 'x', c: null, d: [1, 2], e: { f: true } } }));
    add('empty', () => describe({ ...{} }));
    add('integer keys after strings', () => describe({ ...{ b: 1, 2: 2, a: 3, 1: 4 } }));
    add('numeric strings around 2^32', () => describe({ ...{ 4294967295: 1, a: 2, 4294967294: 3, '01': 4, '-1': 5 } }));
    add('symbols', () => { const s = Symbol('s'); return describe({ ...{ [s]: 1, a: 2 } }); });
    add('getter runs once', () => {
        let calls = 0;
        const t = { ...{ y: 1, get x() { calls += 1; return 5; }, z: 2 } };
        return `${describe(t)}|calls=${calls}`;
    });
    add('getter that adds a property', () => {
        const o = { a: 1, get b() { o.c = 3; return 2; } };
        return describe({ ...o });
    });
    add('non-enumerable', () => {
        const o = { a: 1 };
        Object.defineProperty(o, 'hidden', { value: 2, enumerable: false });
        Object.defineProperty(o, 'getter', { get() { throw new Error('called'); }, enumerable: false });
        return describe({ ...o });
    });
    add('frozen', () => describe({ ...Object.freeze({ a: 1, b: 2 }) }));
    add('sealed, read-only', () => {
        const o = { a: 1 };
        Object.defineProperty(o, 'b', { value: 2, writable: false, enumerable: true, configurable: false });
        return describe({ ...Object.seal(o) });
    });
    add('null prototype', () => { const o = Object.create(null); o.a = 1; o.b = 2; return describe({ ...o }); });
    add('inherited not copied', () => describe({ ...Object.create({ inherited: 1 }, { own: { value: 2, enumerable: true } }) }));
    add('class instance with private field', () => {
        class A { #p = 1; x = 2; y = 3; static has(o) { return #p in o; } }
        const t = { ...new A() };
        return `${describe(t)}|private copied=${A.has(t)}`;
    });
    add('symbols before strings, integers last', () => {
        const s = Symbol('first');
        const o = {};
        o[s] = 1; o.b = 2; o[7] = 3; o.a = 4; o[1] = 5;
        const t = { ...o };
        const keys = [];
        for (const k in t) keys.push(k);
        return `${describe(t)}|for-in=${keys.join(',')}|keys=${Object.keys(t).join(',')}`;
    });
    add('deleted property', () => { const o = { a: 1, b: 2, c: 3 }; delete o.b; o.d = 4; return describe({ ...o }); });
    add('many properties, some deleted', () => {
        const o = {};
        for (let i = 0; i < 60; i++) o[`k${i}`] = i;
        for (let i = 0; i < 60; i += 7) delete o[`k${i}`];
        return describe({ ...o });
    });
    add('proxy', () => {
        const log = [];
        const p = new Proxy({ a: 1, b: 2 }, {
            ownKeys(t) { log.push('ownKeys'); return ['b', 'a']; },
            get(t, k) { log.push(`get ${String(k)}`); return t[k]; },
            getOwnPropertyDescriptor(t, k) { log.push(`gopd ${String(k)}`); return Reflect.getOwnPropertyDescriptor(t, k); },
        });
        const t = { ...p };
        return `${describe(t)}|${log.join(';')}`;
    });
    add('array', () => describe({ ...[1, , 3] }));
    add('string', () => describe({ ...'ab' }));
    add('null and undefined', () => describe({ ...null, ...undefined }));
    add('number', () => describe({ ...5 }));
    add('function with properties', () => { const f = function () {}; f.a = 1; return describe({ ...f }); });
    add('__proto__ as an own key', () => describe({ ...JSON.parse('{"__proto__": 1, "a": 2}') }));
    add('spread then more keys', () => describe({ ...{ a: 1, b: 2 }, b: 3, c: 4 }));
    add('keys before the spread', () => describe({ z: 0, a: 9, ...{ a: 1, b: 2 } }));
    add('two spreads', () => describe({ ...{ a: 1, b: 2 }, ...{ b: 3, c: 4 } }));
    add('nested values are shared', () => {
        const inner = { n: 1 };
        const o = { inner };
        const t = { ...o };
        return `${t.inner === inner}`;
    });
    add('neither changes the other', () => {
        const o = { a: 1, b: 2 };
        const same = { a: 5, b: 6 };
        const t = { ...o };
        t.a = 9; t.c = 3; delete t.b;
        o.d = 4;
        return `${describe(o)}#${describe(t)}#${describe(same)}`;
    });
    add('a shared shape grows apart', () => {
        const x = { a: 1, b: 2 };
        const y = { a: 3, b: 4 };
        const t = { ...x };
        const u = { ...y };
        t.c = 1; u.d = 2; x.e = 3;
        return [x, y, t, u].map(describe).join('#');
    });
    add('an adopted shape changed on either side', () => {
        const parsed = JSON.parse('{"a":1,"b":2,"c":3}');
        const frozen = { ...parsed };
        const hidden = { ...parsed };
        const reproto = { ...parsed };
        const source = { ...parsed };
        Object.freeze(frozen);
        Object.defineProperty(hidden, 'b', { enumerable: false });
        Object.setPrototypeOf(reproto, { inherited: 1 });
        Object.preventExtensions(source);
        delete parsed.a;
        const again = { ...JSON.parse('{"a":1,"b":2,"c":3}') };
        return [parsed, frozen, hidden, reproto, source, again].map(describe).join('#');
    });
    add('rest in destructuring', () => { const { a, ...rest } = { a: 1, b: 2, c: 3 }; return describe(rest); });
    add('Object.assign', () => describe(Object.assign({}, { a: 1, b: 2 }, { c: 3 })));
    add('source is the result of a spread', () => describe({ ...{ ...{ a: 1, b: { c: 2 } } } }));
    add('values of every type', () => describe({ ...{ n: -0, big: 10n === 10n, u: undefined, f() { return 1; }, s: 'str', d: new Date(0) } }));
    return out;
}
"#;

/// Shared by the connector and Node: `cases()` returns one line per case.
const OWN: &str = r#"
function own(o) {
    const entries = Object.entries(o);
    const fresh = entries.every((pair, i) => Array.isArray(pair) && pair.length === 2 && pair !== entries[i + 1]);
    return [Object.keys(o), Object.values(o).map(show), entries.map(([k, v]) => `${k}=${show(v)}`), fresh].map(String).join(' | ');
}
function cases() {
    const out = [];
    const add = (name, f) => { try { out.push(`${name}: ${f()}`); } catch (e) { out.push(`${name}: threw ${e.name} ${e.message}`); } };
    add('plain', () => own({ a: 1, b: 'x', c: null, d: [1, 2], e: { f: true }, g: undefined }));
    add('empty', () => own({}));
    add('parsed', () => own(JSON.parse('{"z":1,"y":{"x":2},"__proto__":3}')));
    add('integer keys after strings', () => own({ b: 1, 2: 2, a: 3, 1: 4 }));
    add('numeric strings around 2^32', () => own({ 4294967295: 1, a: 2, 4294967294: 3, '01': 4, '-1': 5 }));
    add('symbols', () => { const s = Symbol('s'); return own({ [s]: 1, a: 2 }); });
    add('getter', () => { let calls = 0; const o = { y: 1, get x() { calls += 1; return 5; }, z: 2 }; return `${own(o)} | calls=${calls}`; });
    add('getter that deletes and adds', () => {
        const o = { a: 1, get b() { delete o.c; o.d = 4; return 2; }, c: 3 };
        return `${own(o)} | after=${Object.keys(o)}`;
    });
    add('setter only', () => own({ a: 1, set b(v) {} }));
    add('non-enumerable', () => {
        const o = { a: 1 };
        Object.defineProperty(o, 'hidden', { value: 2, enumerable: false });
        Object.defineProperty(o, 'getter', { get() { throw new Error('called'); }, enumerable: false });
        return own(o);
    });
    add('deleted', () => {
        const o = {};
        for (let i = 0; i < 40; i++) o[`k${i}`] = i;
        for (let i = 0; i < 40; i += 3) delete o[`k${i}`];
        o.k0 = 'again';
        return own(o);
    });
    add('frozen', () => own(Object.freeze({ a: 1, b: 2 })));
    add('null prototype', () => { const o = Object.create(null); o.b = 1; o.a = 2; return own(o); });
    add('inherited', () => own(Object.create({ inherited: 1 }, { mine: { value: 2, enumerable: true } })));
    add('class instance with a private field', () => { class A { #p = 1; x = 2; y = 3; } return own(new A()); });
    add('array', () => own(['a', , 'c']));
    add('string', () => own('ab'));
    add('number', () => own(5));
    add('arguments', () => (function () { return own(arguments); })(1, 2));
    add('function', () => { const f = function () {}; f.extra = 1; return own(f); });
    add('proxy', () => {
        const log = [];
        const p = new Proxy({ a: 1, b: 2 }, {
            ownKeys(t) { log.push('ownKeys'); return ['b', 'a']; },
            get(t, k) { log.push(`get ${String(k)}`); return t[k]; },
            getOwnPropertyDescriptor(t, k) { log.push(`gopd ${String(k)}`); return Reflect.getOwnPropertyDescriptor(t, k); },
        });
        return `${own(p)} | ${log.join(';')}`;
    });
    add('map', () => own(new Map([['a', 1]])));
    add('typed array', () => { const t = new Uint8Array([7, 8]); t.extra = 1; return own(t); });
    add('error with an own enumerable property', () => { const e = new Error('m'); e.code = 'E1'; return own(e); });
    add('null', () => own(null));
    add('entries are new arrays each time', () => {
        const o = { a: 1 };
        const first = Object.entries(o)[0];
        const second = Object.entries(o)[0];
        first.push('x');
        return `${first !== second} ${second.length} ${JSON.stringify(Object.entries(o))}`;
    });
    add('values keep identity', () => { const inner = { n: 1 }; return String(Object.values({ inner })[0] === inner); });
    return out;
}
"#;

#[test]
fn object_keys_values_and_entries_give_what_v8_gives() {
    compare_with_v8("own", OWN);
}

#[test]
fn object_spread_gives_what_v8_gives() {
    compare_with_v8("spread", CASES);
}

/// Runs `cases()` of `script` in a connector and in Node 20; every line the same.
fn compare_with_v8(name: &str, script: &str) {
    let logs = Arc::new(MemoryLogs::default());
    let js = format!(
        "{SHOW}{script}\nexport function processEvent(e) {{ e.cases = cases(); return e }}"
    );
    let mut connector = connector(name, &js, 0, &logs);
    let Processed::Kept(event) = connector.process_event(br#"{"event":"x"}"#).unwrap() else {
        panic!("the connector kept the event: {:?}", logs.lines())
    };
    let event = event.to_object().unwrap();
    let plugin: Vec<String> = serde_json::from_value(event["cases"].clone()).unwrap();
    let v8: Vec<String> = serde_json::from_str(&node(&format!(
        "{SHOW}{script}\nprocess.stdout.write(JSON.stringify(cases()))"
    )))
    .unwrap();
    assert_eq!(plugin.len(), v8.len());
    let differ: Vec<String> = plugin
        .iter()
        .zip(&v8)
        .filter(|(plugin, v8)| plugin != v8)
        .map(|(plugin, v8)| format!("plugin: {plugin}\n    V8: {v8}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// What Node 20 (V8) writes for `script`.
fn node(script: &str) -> String {
    let output = std::process::Command::new("node")
        .args(["-e", script])
        .output()
        .expect("node (Node.js 20, as in CI) is on PATH");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
