//! The Node-style globals connectors use, checked against known test vectors
//! (RFC 1321 / FIPS 180 digests, RFC 4648 base64, WHATWG URL).

mod common;

use common::*;
use sandpipe_runtime::{Chain, MemoryLogs};
use serde_json::json;
use std::sync::Arc;

fn run(js: &str) -> serde_json::Value {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector("globals", js, 0, &logs)]);
    let event = processed_cleanly(&mut chain, json!({"event": "e", "properties": {}}), &logs);
    event["properties"]["r"].clone()
}

#[test]
fn crypto_create_hash_matches_known_digests() {
    let r = run(r#"
        const { createHash } = require('crypto')
        function processEvent(e) {
            e.properties.r = {
                md5: crypto.createHash('md5').update('hello').digest('hex'),
                sha1: createHash('sha1').update('hel').update('lo').digest('hex'),
                sha256: crypto.createHash('sha256').update('hello').digest('hex'),
                sha256b64: crypto.createHash('sha256').update('hello').digest('base64'),
                sha512empty: crypto.createHash('sha512').update('').digest('hex').slice(0, 32),
                bytes: crypto.createHash('md5').update(Buffer.from([0x61, 0x62, 0x63])).digest().length,
                unknown: (() => { try { crypto.createHash('whirlpool'); return 'no error' } catch (err) { return err.message } })(),
            }
            return e
        }"#);
    assert_eq!(
        r,
        json!({
            "md5": "5d41402abc4b2a76b9719d911017c592",
            "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "sha256b64": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            "sha512empty": "cf83e1357eefb8bdf1542850d66d8007",
            "bytes": 16,
            "unknown": "Digest method not supported: whirlpool",
        })
    );
}

#[test]
fn buffer_base64_hex_and_utf8_round_trip() {
    let r = run(r#"
        function processEvent(e) {
            e.properties.r = {
                b64: Buffer.from('hello').toString('base64'),
                rfc4648: ['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar'].map((s) => Buffer.from(s).toString('base64')),
                fromB64: Buffer.from('aGVsbG8gd29ybGQ=', 'base64').toString(),
                lenient: ['aGVsbG8', 'aGV sbG8=\n', 'aGVsbG8=!ignored'].map((s) => Buffer.from(s, 'base64').toString()),
                urlsafeIn: Array.from(Buffer.from('-_8', 'base64')),
                urlsafe: Buffer.from([0xfb, 0xff]).toString('base64url'),
                hex: Buffer.from('héllo').toString('hex'),
                fromHex: Buffer.from('68656c6c6f', 'hex').toString('utf8'),
                utf8Length: Buffer.from('héllo').length,
                byteLength: Buffer.byteLength('€'),
                isBuffer: [Buffer.isBuffer(Buffer.alloc(2)), Buffer.isBuffer(new Uint8Array(2))],
                concat: Buffer.concat([Buffer.from('ab'), Buffer.from('cd')]).toString(),
                json: JSON.stringify(Buffer.from('hi')),
                btoa: btoa('hello'),
                atob: atob('aGVsbG8='),
                latin1: Buffer.from('ÿ', 'latin1')[0],
            }
            return e
        }"#);
    assert_eq!(
        r,
        json!({
            "b64": "aGVsbG8=",
            "rfc4648": ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"],
            "fromB64": "hello world",
            "lenient": ["hello", "hello", "hello"],
            "urlsafeIn": [251, 255],
            "urlsafe": "-_8",
            "hex": "68c3a96c6c6f",
            "fromHex": "hello",
            "utf8Length": 6,
            "byteLength": 3,
            "isBuffer": [true, false],
            "concat": "abcd",
            "json": "{\"type\":\"Buffer\",\"data\":[104,105]}",
            "btoa": "aGVsbG8=",
            "atob": "hello",
            "latin1": 255,
        })
    );
}

#[test]
fn url_and_search_params_follow_whatwg() {
    let r = run(r#"
        function processEvent(e) {
            const url = new URL('https://user:pw@EXAMPLE.com:8080/a/../b?x=1&y=two%20words#frag')
            // As in Node: touching searchParams re-serialises the query (%20 becomes +).
            url.searchParams.append('z', 'a&b')
            const relative = new URL('../c?q', 'https://example.com/a/b/')
            e.properties.r = {
                href: url.href,
                parts: [url.protocol, url.username, url.password, url.host, url.hostname, url.port, url.pathname, url.search, url.hash, url.origin],
                y: url.searchParams.get('y'),
                relative: relative.toString(),
                idna: new URL('https://münchen.de/straße').href,
                defaultPort: new URL('https://example.com:443/').port,
                params: new URLSearchParams({ a: '1 2', b: 'x&y', c: '€' }).toString(),
                parsed: [...new URLSearchParams('?a=1&a=2&b=%20+')].map(([k, v]) => k + '=' + v),
                invalid: (() => { try { new URL('not a url'); return 'parsed' } catch (err) { return err.name } })(),
                canParse: [URL.canParse('https://x.y'), URL.canParse('nope')],
                json: JSON.stringify({ u: new URL('http://x.org') }),
            }
            return e
        }"#);
    assert_eq!(
        r,
        json!({
            "href": "https://user:pw@example.com:8080/b?x=1&y=two+words&z=a%26b#frag",
            "parts": ["https:", "user", "pw", "example.com:8080", "example.com", "8080", "/b",
                      "?x=1&y=two+words&z=a%26b", "#frag", "https://example.com:8080"],
            "y": "two words",
            "relative": "https://example.com/a/c?q",
            "idna": "https://xn--mnchen-3ya.de/stra%C3%9Fe",
            "defaultPort": "",
            "params": "a=1+2&b=x%26y&c=%E2%82%AC",
            "parsed": ["a=1", "a=2", "b=  "],
            "invalid": "TypeError",
            "canParse": [true, false],
            "json": "{\"u\":\"http://x.org/\"}",
        })
    );
}

#[test]
fn structured_clone_text_encoding_and_require() {
    let r = run(r#"
        function processEvent(e) {
            const original = { d: new Date(0), list: [1, { n: 2 }], m: new Map([['k', 'v']]) }
            original.self = original
            const copy = structuredClone(original)
            copy.list[1].n = 3
            e.properties.r = {
                independent: original.list[1].n === 2 && copy.self === copy && copy.d.getTime() === 0 && copy.m.get('k') === 'v',
                encoded: Array.from(new TextEncoder().encode('é')),
                decoded: new TextDecoder().decode(new Uint8Array([0xe2, 0x82, 0xac])),
                fs: (() => { try { require('f' + 's'); return 'loaded' } catch (err) { return err.message } })(),
                nodeCrypto: typeof require('node:crypto').createHash,
            }
            return e
        }"#);
    assert_eq!(
        r,
        json!({
            "independent": true,
            "encoded": [195, 169],
            "decoded": "€",
            "fs": "Cannot find module 'fs'",
            "nodeCrypto": "function",
        })
    );
}

/// What `crypto` gives a connector that has replaced `Math.random` with a constant.
const RANDOM_JS: &str = r#"
    Math.random = () => 0
    function attempt(f) {
        try { const out = f(); return out } catch (err) { return `${err.name}: ${err.message}` }
    }
    function processEvent(e) {
        const bytes = new Uint8Array(32)
        const words = new Uint32Array(8)
        const big = new BigUint64Array(2)
        const clamped = new Uint8ClampedArray(16)
        const backing = new Uint8Array(48)
        const view = new Uint8Array(backing.buffer, 16, 16)
        const quota = new Uint8Array(65536)
        e.properties.r = {
            uuid: crypto.randomUUID(),
            uuid2: require('crypto').randomUUID(),
            sameArray: crypto.getRandomValues(bytes) === bytes && crypto.getRandomValues(words) === words
                && crypto.getRandomValues(big) === big && crypto.getRandomValues(clamped) === clamped,
            bytes: Array.from(bytes),
            words: Array.from(words),
            big: Array.from(big, String),
            clamped: Array.from(clamped),
            view: crypto.getRandomValues(view) === view,
            backing: Array.from(backing),
            quota: crypto.getRandomValues(quota) === quota,
            empty: crypto.getRandomValues(new Int16Array(0)).length,
            float: attempt(() => crypto.getRandomValues(new Float64Array(4))),
            float32: attempt(() => crypto.getRandomValues(new Float32Array(4))),
            array: attempt(() => crypto.getRandomValues([1, 2, 3])),
            dataView: attempt(() => crypto.getRandomValues(new DataView(new ArrayBuffer(4)))),
            nothing: attempt(() => crypto.getRandomValues()),
            overQuota: attempt(() => crypto.getRandomValues(new Uint8Array(65537))),
            overQuotaWords: attempt(() => crypto.getRandomValues(new Uint32Array(16385))),
        }
        return e
    }"#;

fn is_v4_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            14 => c == '4',
            19 => matches!(c, '8' | '9' | 'a' | 'b'),
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

/// Some bytes are nonzero: all zero has probability 2^-(8 × len).
fn not_all_zero(values: &serde_json::Value) -> bool {
    values
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v != &json!(0) && v != &json!("0"))
}

#[test]
fn crypto_randomness_comes_from_the_host_not_math_random() {
    let r = run(RANDOM_JS);
    let uuid = r["uuid"].as_str().unwrap();
    let uuid2 = r["uuid2"].as_str().unwrap();
    assert!(is_v4_uuid(uuid), "{uuid}");
    assert!(is_v4_uuid(uuid2), "{uuid2}");
    // With Math.random returning 0 the old UUID was 00000000-0000-4000-8000-000000000000.
    assert_ne!(uuid, "00000000-0000-4000-8000-000000000000");
    assert_ne!(uuid, uuid2);
    assert_eq!(r["sameArray"], json!(true));
    for key in ["bytes", "words", "big", "clamped"] {
        assert!(not_all_zero(&r[key]), "{key}: {}", r[key]);
    }
    // A view over part of a buffer gets exactly its own bytes filled.
    assert_eq!(r["view"], json!(true));
    let backing = r["backing"].as_array().unwrap();
    assert!(backing[..16].iter().all(|v| v == &json!(0)));
    assert!(not_all_zero(&json!(backing[16..32])));
    assert!(backing[32..].iter().all(|v| v == &json!(0)));
    // The Web Crypto contract: integer typed arrays only, at most 65,536 bytes.
    assert_eq!(r["quota"], json!(true));
    assert_eq!(r["empty"], json!(0));
    let mismatch = "TypeMismatchError: The data argument must be an integer-type TypedArray";
    for key in ["float", "float32", "array", "dataView", "nothing"] {
        assert_eq!(r[key], json!(mismatch), "{key}");
    }
    let quota = "QuotaExceededError: The requested length exceeds 65,536 bytes";
    assert_eq!(r["overQuota"], json!(quota));
    assert_eq!(r["overQuotaWords"], json!(quota));
}

#[test]
fn two_instances_draw_different_randomness() {
    // The plugin is one pre-initialised snapshot: nothing random may be baked into it.
    let js = "function processEvent(e) { e.properties.r = [crypto.randomUUID(), Array.from(crypto.getRandomValues(new Uint8Array(16)))]; return e }";
    let first = run(js);
    let second = run(js);
    assert!(is_v4_uuid(first[0].as_str().unwrap()));
    assert_ne!(first[0], second[0]);
    assert_ne!(first[1], second[1]);
}

#[test]
fn buffers_the_plugin_makes_transfer_to_any_length() {
    // TextEncoder, Buffer.from(base64) and digests are made in Rust (their
    // bytes are a Rust vector the engine resizes through the plugin):
    // `transfer` grows, shrinks and moves them as it does any ArrayBuffer.
    let r = run(r#"
        function processEvent(e) {
            const encoded = new TextEncoder().encode('abcd')
            const grown = encoded.buffer.transfer(4096)
            const shrunk = Buffer.from('aGVsbG8=', 'base64').buffer.transfer(2)
            const digest = crypto.createHash('sha256').update('x').digest()
            const moved = digest.buffer.transfer()
            e.properties.r = {
                grown: [grown.byteLength, ...new Uint8Array(grown, 0, 6)],
                grownTail: new Uint8Array(grown).slice(4).every((b) => b === 0),
                detached: [encoded.buffer.detached, encoded.length],
                shrunk: [...new Uint8Array(shrunk)],
                moved: [moved.byteLength, new Uint8Array(moved)[0], digest.length],
                again: new Uint8Array(grown.transfer(3)).join(','),
            }
            return e
        }"#);
    assert_eq!(
        r,
        json!({
            "grown": [4096, 97, 98, 99, 100, 0, 0],
            "grownTail": true,
            "detached": [true, 0],
            "shrunk": [104, 101],
            "moved": [32, 45, 0],
            "again": "97,98,99",
        })
    );
}

/// The one failure of running `js`'s processEvent on one event, as its error text.
fn failure_of(js: &str) -> String {
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = Chain::new(vec![connector("timers", js, 0, &logs)]);
    let out = chain.process(json!({"event": "e", "properties": {}}));
    assert_eq!(out.failures.len(), 1, "{:?}", logs.lines());
    out.failures[0].error.to_string()
}

#[test]
fn a_timer_due_after_the_calls_deadline_fails_the_call_at_once() {
    let error = failure_of(
        r#"async function processEvent(e) {
            await new Promise((resolve) => setTimeout(resolve, 999))
            await new Promise((resolve) => setTimeout(resolve, 2))
            return e
        }"#,
    );
    assert!(
        error.starts_with(
            "Error: a timer set for 1001 ms into the call fires after the call's deadline (1000 ms)"
        ),
        "{error}"
    );
    // Virtual time: nothing waits for a timer (measured inside the call, by
    // the guest's own clock, which a real 800 ms wait would move past 800).
    let logs = Arc::new(MemoryLogs::default());
    let js = r#"async function processEvent(e) {
        const started = Date.now()
        await new Promise((resolve) => setTimeout(resolve, 800))
        e.properties.waited = Date.now() - started
        return e
    }"#;
    let mut chain = Chain::new(vec![connector("timers", js, 0, &logs)]);
    let out = chain.process(json!({"event": "e", "properties": {}}));
    let event = out.event.expect("kept");
    let waited = event["properties"]["waited"].as_f64().expect("a number");
    assert!(waited < 800.0, "the call waited {waited} ms");
    // An interval that never lets the call finish is stopped by the same rule.
    let error = failure_of(
        r#"function processEvent(e) {
            return new Promise(() => { setInterval(() => {}, 300) })
        }"#,
    );
    assert!(
        error.starts_with(
            "Error: a timer set for 1200 ms into the call fires after the call's deadline (1000 ms)"
        ),
        "{error}"
    );
}

#[test]
fn timers_left_when_the_call_returns_are_cancelled_and_the_clock_restarts() {
    let logs = Arc::new(MemoryLogs::default());
    let js = r#"
        let calls = 0
        async function processEvent(e) {
            calls += 1
            setTimeout(() => console.log(`left by call ${calls}`), 1)
            e.properties.r = await new Promise((resolve) => setTimeout(() => resolve(`call ${calls}`), 500))
            setInterval(() => console.log('interval left running'), 1)
            return e
        }"#;
    let mut chain = Chain::new(vec![connector("timers", js, 0, &logs)]);
    for expected in ["call 1", "call 2", "call 3"] {
        // Each call waits 500 ms of virtual time under a 1 s deadline: the clock starts at 0 again.
        let out = chain.process(json!({"event": "e", "properties": {}}));
        assert!(out.failures.is_empty(), "{:?}", logs.lines());
        assert_eq!(out.event.unwrap()["properties"]["r"], json!(expected));
    }
    // The 1 ms timer fires while the call waits; the interval set last never does.
    assert_eq!(
        logs.lines(),
        [
            "log: left by call 1",
            "log: left by call 2",
            "log: left by call 3"
        ]
    );
}

/// A timer set by a call that never settled (it threw before returning, or
/// its result's `toJSON` set one) is cancelled before the next call runs
/// anything: it never fires in a later call, whose own timers start on a
/// clock at 0.
#[test]
fn timers_a_call_left_without_settling_never_fire_in_a_later_call() {
    let logs = Arc::new(MemoryLogs::default());
    let js = r#"
        let fired = []
        async function processEvent(e) {
            if (e.properties.mode === 'throw') {
                setTimeout(() => fired.push('after a throw'), 5)
                throw new Error('thrown before returning')
            }
            if (e.properties.mode === 'toJSON') {
                return { ...e, properties: { toJSON() { setTimeout(() => fired.push('set by toJSON'), 5); return {} } } }
            }
            await new Promise((resolve) => setTimeout(resolve, 10))
            e.properties.fired = fired.join(',')
            return e
        }"#;
    let mut chain = Chain::new(vec![connector("timers", js, 0, &logs)]);
    for mode in ["throw", "toJSON"] {
        chain.process(json!({"event": "e", "properties": {"mode": mode}}));
        let out = chain.process(json!({"event": "e", "properties": {}}));
        assert!(out.failures.is_empty(), "{:?}", logs.lines());
        assert_eq!(
            out.event.unwrap()["properties"]["fired"],
            json!(""),
            "after {mode}"
        );
    }
}

#[test]
fn a_promise_nothing_can_settle_is_an_error_not_a_hang() {
    let error = failure_of(
        r#"function processEvent(e) {
            const t = setTimeout(() => {}, 5)
            clearTimeout(t)
            return new Promise(() => {})
        }"#,
    );
    assert!(
        error.starts_with("Error: the connector's promise never settled (it awaits something that cannot happen here: no job or timer is pending)"),
        "{error}"
    );
}

#[test]
fn timer_callbacks_that_throw_fail_the_call_and_bad_callbacks_are_refused() {
    let error = failure_of(
        r#"async function processEvent(e) {
            setTimeout(() => { throw new RangeError('from a timer') }, 1)
            await new Promise((resolve) => setTimeout(resolve, 2))
            return e
        }"#,
    );
    assert!(error.starts_with("RangeError: from a timer"), "{error}");
    let r = run(r#"
        function processEvent(e) {
            const refused = (f) => { try { f(); return 'no error' } catch (err) { return `${err.name}: ${err.message}` } }
            e.properties.r = [
                refused(() => setTimeout('code()', 1)),
                refused(() => queueMicrotask(null)),
                typeof setTimeout(() => {}, 1).unref,
            ]
            return e
        }"#);
    assert_eq!(
        r,
        json!([
            "TypeError: The \"callback\" argument must be of type function. Received a string",
            "TypeError: The \"callback\" argument must be of type function. Received null",
            "function",
        ])
    );
}

#[test]
fn dates_print_as_node_prints_them_with_the_zone_named() {
    // Node with TZ=UTC, as the guest's zone is.
    let dates = "[new Date(0).toString(), new Date(0).toTimeString(), new Date(0).toDateString(), \
                 String(new Date(-8.64e15)), String(new Date(8.64e15)), \
                 `${new Date(Date.UTC(2024, 0, 5, 9, 5))}`, Date().slice(-28), typeof Date(), \
                 new Date(NaN).toString(), new Date(0).toUTCString(), JSON.stringify({ d: new Date(0) })]";
    let node = std::process::Command::new("node")
        .args([
            "-e",
            &format!("process.stdout.write(JSON.stringify({dates}))"),
        ])
        .env("TZ", "UTC")
        .output()
        .expect("node (Node.js 20) is on the PATH");
    assert!(node.status.success(), "{node:?}");
    let expected: serde_json::Value = serde_json::from_slice(&node.stdout).unwrap();
    assert_eq!(
        expected[0],
        "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
    );
    let ours = run(&format!(
        "function processEvent(e) {{ e.properties.r = {dates}; return e }}"
    ));
    assert_eq!(ours, expected);
}
