//! Bundle admission: a bundle is hostile until proven otherwise. Each case is
//! refused with a one-line reason before anything runs.

mod common;

use common::*;
use sandpipe_abi::ABI_VERSION;
use sandpipe_manifest::Manifest;
use sandpipe_runtime::{AdmissionError, BundleKind, BundleManifest};

/// Appends a custom section `name` holding `payload` to a module's bytes.
fn push_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                break;
            }
        }
    }
    let mut body = Vec::new();
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}

fn refusal(bytes: impl AsRef<[u8]>) -> String {
    runtime().admit(bytes).unwrap_err().to_string()
}

fn section(abi_version: u32, plugin_json: &str) -> BundleManifest {
    BundleManifest {
        abi_version,
        main: "index.js".into(),
        source_sha256: "0".repeat(64),
        plugin_json: plugin_json.into(),
        modules: Vec::new(),
        kind: BundleKind::Script,
    }
}

#[test]
fn a_built_bundle_is_admitted_and_names_its_imports() {
    let bundle = bundle("ok", "function processEvent(e) { return e }");
    assert_eq!(bundle.manifest().name, "ok");
    assert_eq!(
        bundle.imports(),
        [
            ("sandpipe_plugin_v1".to_string(), "memory".to_string()),
            (
                "sandpipe_plugin_v1".to_string(),
                "sandpipe_reserve".to_string()
            ),
            (
                "sandpipe_plugin_v1".to_string(),
                "sandpipe_load".to_string()
            ),
        ]
    );
}

#[test]
fn an_import_outside_the_plugin_is_refused_by_name() {
    let wasm = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
    )
    .unwrap();
    assert_eq!(
        refusal(wasm),
        "bundle imports \"wasi_snapshot_preview1\".\"fd_write\", which is not allowed (a bundle may import only sandpipe_plugin_v1's memory, sandpipe_reserve and sandpipe_load)"
    );
    let wasm = wat::parse_str(r#"(module (import "sandpipe_plugin_v1" "sandpipe_call" (func (param i32 i32) (result i64))))"#).unwrap();
    assert!(refusal(wasm).starts_with(
        "bundle imports \"sandpipe_plugin_v1\".\"sandpipe_call\", which is not allowed"
    ));
    // The host functions are the plugin's, never a bundle's.
    let wasm =
        wat::parse_str(r#"(module (import "sandpipe_host_v1" "log" (func (param i32 i32 i32))))"#)
            .unwrap();
    assert!(refusal(wasm).starts_with("bundle imports \"sandpipe_host_v1\".\"log\""));
}

#[test]
fn a_bundle_with_its_own_memory_is_refused() {
    // 65536 pages: a 4 GiB memory.
    let wasm = wat::parse_str(r#"(module (memory 65536))"#).unwrap();
    assert_eq!(
        refusal(wasm),
        "bundle defines a memory, which a bundle may not (it runs in the plugin's memory)"
    );
}

#[test]
fn a_module_without_a_manifest_is_refused() {
    let wasm =
        wat::parse_str(r#"(module (func (export "sandpipe_start") (result i64) i64.const 0))"#)
            .unwrap();
    assert_eq!(
        refusal(wasm),
        "bundle has no sandpipe.manifest section (build it with `sandpipe build`)"
    );
}

#[test]
fn another_abi_version_is_refused() {
    let wasm = sandpipe_compiler::emit::bundle(b"", &section(ABI_VERSION + 1, r#"{"name": "x"}"#));
    assert_eq!(
        runtime().admit(wasm).unwrap_err(),
        AdmissionError::AbiVersion {
            found: ABI_VERSION + 1
        }
    );
}

#[test]
fn a_bad_plugin_json_inside_the_bundle_is_refused() {
    let wasm = sandpipe_compiler::emit::bundle(
        b"",
        &section(
            ABI_VERSION,
            r#"{"name": "x", "config": [{"type": "choice", "key": "k"}]}"#,
        ),
    );
    assert_eq!(
        refusal(wasm),
        "bundle's plugin.json: config[0] (key \"k\"): type \"choice\" needs a non-empty \"choices\" list"
    );
}

#[test]
fn a_manifest_section_that_is_not_utf8_is_refused() {
    let mut wasm =
        wat::parse_str(r#"(module (func (export "sandpipe_start") (result i64) i64.const 0))"#)
            .unwrap();
    push_custom_section(&mut wasm, "sandpipe.manifest", &[0xff, 0xfe, 0xfd]);
    assert!(refusal(wasm).starts_with("the sandpipe.manifest section is not UTF-8"));
}

#[test]
fn a_huge_manifest_section_is_refused() {
    let mut wasm = wat::parse_str("(module)").unwrap();
    push_custom_section(&mut wasm, "sandpipe.manifest", &vec![b' '; 300 << 10]);
    assert_eq!(
        refusal(wasm),
        "the sandpipe.manifest section is 307200 bytes, over the 262144-byte limit"
    );
}

#[test]
fn truncated_random_and_oversized_bytes_are_refused() {
    let good = sandpipe_compiler::build(runtime(), &root().join("examples/hello-world"))
        .unwrap()
        .bytes;
    assert!(
        refusal(&good[..good.len() / 2]).starts_with("bundle is not a valid WebAssembly module: ")
    );
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(refusal(&random).starts_with("bundle is not a valid WebAssembly module: "));
    assert_eq!(
        refusal(vec![0u8; (4 << 20) + 1]),
        "bundle is 4194305 bytes, over the 4194304-byte limit"
    );
}

#[test]
fn a_bundle_without_the_entry_export_is_refused() {
    let mut wasm = wat::parse_str("(module)").unwrap();
    push_custom_section(
        &mut wasm,
        "sandpipe.manifest",
        &section(ABI_VERSION, r#"{"name": "x"}"#).encode(),
    );
    assert_eq!(refusal(wasm), "bundle does not export `sandpipe_start`");
}

#[test]
fn names_with_control_characters_are_escaped_into_one_line() {
    // Found by the admission fuzz target: an import name with a newline and
    // NULs made a two-line refusal (and could forge log lines).
    let wasm =
        wat::parse_str(r#"(module (import "sandpipe_plugin_v1" "sandpi6\00\0cB\n\00" (func)))"#)
            .unwrap();
    assert_eq!(
        refusal(wasm),
        "bundle imports \"sandpipe_plugin_v1\".\"sandpi6\\0\\u{c}B\\n\\0\", which is not allowed (a bundle may import only sandpipe_plugin_v1's memory, sandpipe_reserve and sandpipe_load)"
    );
    let manifest = r#"{"name": "N", "config": [{"key": "a\nb", "type": "nonsense"}]}"#;
    let error = Manifest::parse(manifest).unwrap_err().to_string();
    assert_eq!(
        error,
        "config[0] (key \"a\\nb\"): unknown type \"nonsense\" (expected string, json, attachment or choice)"
    );
}

#[test]
fn wasm_proposals_the_plugin_does_not_use_are_refused() {
    // Each is valid WebAssembly that wasmtime 48 would compile by default; the
    // engine turns the proposal off, so the bundle is refused at admission.
    for (proposal, item, reason) in [
        ("exceptions", "(tag)", "exceptions proposal not enabled"),
        (
            "gc",
            "(type (struct (field i32)))",
            "struct indexed types not supported without the gc feature",
        ),
        (
            "function references",
            "(func (param (ref func)))",
            "function references required for non-nullable types",
        ),
        (
            "threads",
            "(func atomic.fence)",
            "threads support is not enabled",
        ),
    ] {
        let mut wasm = wat::parse_str(format!(
            r#"(module {item} (func (export "sandpipe_start")))"#
        ))
        .unwrap();
        push_custom_section(
            &mut wasm,
            "sandpipe.manifest",
            &section(ABI_VERSION, r#"{"name": "x"}"#).encode(),
        );
        let refused = refusal(wasm);
        assert!(
            refused.starts_with("bundle failed to compile: ") && refused.contains(reason),
            "{proposal}: {refused}"
        );
    }
}
