//! Module forms: TypeScript, npm packages from node_modules (CommonJS and ES
//! modules), local files, JSON, and Node built-ins refused at build time.

mod common;

use common::*;
use sandpipe_runtime::MemoryLogs;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn build_error(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    sandpipe_compiler::build(runtime(), dir.path())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_typescript_connector_imports_npm_packages() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "plugin.json",
                r#"{"name": "ts", "config": [{"key": "width", "default": "10"}]}"#,
            ),
            (
                "index.ts",
                r#"import padStart, { VERSION } from 'tiny-pad'
import { shout } from '@acme/strings/shout'
import { label } from './lib/label'
import defaults from './defaults.json'

interface Meta { config: { width: string } }
type Event = { event: string; properties?: Record<string, unknown> }

enum Kind { Page = 'page', Other = 'other' }

export function processEvent(event: Event, { config }: Meta): Event {
    const width: number = parseInt(config.width)
    event.properties = {
        ...event.properties,
        padded: padStart(event.event, width, '*'),
        version: VERSION,
        loud: shout(event.event),
        label: label(event.event),
        kind: event.event === 'pageview' ? Kind.Page : Kind.Other,
        fallback: defaults.fallback,
    }
    return event
}
"#,
            ),
            (
                "lib/label.ts",
                "export const label = (name: string): string => `<${name}>`\n",
            ),
            ("defaults.json", r#"{"fallback": "none"}"#),
            // A CommonJS package with a `main`.
            (
                "node_modules/tiny-pad/package.json",
                r#"{"name": "tiny-pad", "main": "lib/pad.js"}"#,
            ),
            (
                "node_modules/tiny-pad/lib/pad.js",
                "function padStart(text, width, fill) { while (text.length < width) text = fill + text; return text }\nmodule.exports = padStart\nmodule.exports.VERSION = '1.2.3'\n",
            ),
            // A scoped ES-module package with `exports` and a subpath.
            (
                "node_modules/@acme/strings/package.json",
                r#"{"name": "@acme/strings", "type": "module", "exports": {".": {"import": "./index.mjs"}}}"#,
            ),
            (
                "node_modules/@acme/strings/index.mjs",
                "export * from './shout.mjs'\n",
            ),
            (
                "node_modules/@acme/strings/shout.mjs",
                "import { upper } from './upper.mjs'\nexport const shout = (s) => upper(s) + '!'\n",
            ),
            (
                "node_modules/@acme/strings/upper.mjs",
                "export function upper(s) { return s.toUpperCase() }\n",
            ),
        ],
    );
    // The bundle names the npm packages it bundled (`sandpipe inspect` shows them).
    assert_eq!(
        bundle_at(dir.path()).section().modules,
        ["@acme/strings", "tiny-pad"]
    );
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_of(dir.path(), &logs);
    let event = processed_cleanly(&mut chain, json!({"event": "pageview"}), &logs);
    assert_eq!(
        event["properties"],
        json!({
            "padded": "**pageview",
            "version": "1.2.3",
            "loud": "PAGEVIEW!",
            "label": "<pageview>",
            "kind": "page",
            "fallback": "none",
            "$plugins_succeeded": ["ts (0)"],
            "$plugins_failed": []
        })
    );
}

#[test]
fn a_commonjs_connector_requires_packages_and_provided_builtins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("plugin.json", r#"{"name": "cjs"}"#),
            (
                "index.js",
                "const { createHash } = require('crypto')\nconst slug = require('slug-lite')\nmodule.exports = { processEvent(e) { e.id = slug(e.event) + ':' + createHash('md5').update(e.event).digest('hex').slice(0, 6); return e } }\n",
            ),
            (
                "node_modules/slug-lite/index.js",
                "module.exports = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-')\n",
            ),
        ],
    );
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_of(dir.path(), &logs);
    let out = chain.process(json!({"event": "Sign Up"}));
    assert_eq!(out.event.unwrap()["id"], json!("sign-up:d67850"));
}

/// PostHog's plugins import `node-fetch` and `@posthog/plugin-scaffold`
/// without installing them; a copy in `node_modules` (node-fetch needs Node's
/// `stream`) is not what runs. An import's binding does not replace the
/// global of its name.
#[test]
fn posthog_s_provided_packages_and_import_bindings() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("plugin.json", r#"{"name": "esm"}"#),
            (
                "index.js",
                "import nodeFetch from 'node-fetch'
import { RetryError as Retry } from '@posthog/plugin-scaffold'
import fetch from './my-fetch.js'
export function processEvent(e) {
  e.properties = { mine: fetch(), global_intact: globalThis.fetch !== fetch && typeof globalThis.fetch === 'function', node_fetch: typeof nodeFetch === 'function' && nodeFetch.default === nodeFetch, retry: Retry === RetryError }
  return e
}
",
            ),
            ("my-fetch.js", "module.exports = function myFetch() { return 'mine' }
"),
            (
                "node_modules/node-fetch/index.js",
                "const Stream = require('stream')
module.exports = function () {}
",
            ),
        ],
    );
    assert_eq!(
        bundle_at(dir.path()).section().modules,
        Vec::<String>::new()
    );
    let logs = Arc::new(MemoryLogs::default());
    let mut chain = chain_of(dir.path(), &logs);
    let event = processed_cleanly(&mut chain, json!({"event": "e"}), &logs);
    assert_eq!(
        event["properties"],
        json!({
            "mine": "mine",
            "global_intact": true,
            "node_fetch": true,
            "retry": true,
            "$plugins_succeeded": ["esm (0)"],
            "$plugins_failed": []
        })
    );
}

#[test]
fn node_builtins_that_are_not_provided_fail_the_build_by_name() {
    assert_eq!(
        build_error(&[
            ("plugin.json", r#"{"name": "fs"}"#),
            (
                "index.js",
                "const fs = require('fs')\nfunction processEvent(e) { return e }\n"
            ),
        ]),
        "index.js:1:12: Node's built-in module \"fs\" is not available to connectors"
    );
    assert_eq!(
        build_error(&[
            ("plugin.json", r#"{"name": "net"}"#),
            (
                "index.ts",
                "import { connect } from 'node:net'\nexport function processEvent(e: any) { return connect }\n"
            ),
        ]),
        "index.ts:1:1: Node's built-in module \"net\" is not available to connectors"
    );
}

#[test]
fn a_missing_package_or_an_escape_fails_the_build() {
    assert_eq!(
        build_error(&[
            ("plugin.json", r#"{"name": "missing"}"#),
            ("index.js", "import pad from 'left-pad'\n"),
        ]),
        "index.js:1:1: cannot find module \"left-pad\" (install npm packages into the connector's node_modules)"
    );
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), &[("secret.js", "module.exports = 1")]);
    let dir = tempfile::tempdir().unwrap();
    let relative = pathdiff(outside.path(), dir.path());
    write(
        dir.path(),
        &[
            ("plugin.json", r#"{"name": "escape"}"#),
            ("index.js", &format!("require('{relative}/secret.js')\n")),
        ],
    );
    let error = sandpipe_compiler::build(runtime(), dir.path())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "index.js:1:1: module \"{relative}/secret.js\" resolves outside the connector directory"
        )
    );
}

/// `to` relative to `from`, through their common parent.
fn pathdiff(to: &Path, from: &Path) -> String {
    let up = from.components().count() - 1;
    format!(
        "{}{}",
        "../".repeat(up),
        to.strip_prefix("/").unwrap().display()
    )
}

#[test]
fn typescript_syntax_errors_are_located() {
    assert_eq!(
        build_error(&[
            ("plugin.json", r#"{"name": "bad"}"#),
            ("index.ts", "let x: number = \nexport const y = 1")
        ]),
        "index.ts:2:1: SyntaxError: Unexpected token"
    );
}
