//! `sandpipe new NAME`: a connector to start from — TypeScript `index.ts`,
//! `plugin.json` with one config field, the connector typings, a fixture
//! that `sandpipe test NAME` passes, and `tsconfig.json` + `package.json`
//! whose `npm run typecheck` runs `tsc --strict` on it (TypeScript pinned).
//! `--lang rust`: the same connector in Rust instead, a Cargo project on the
//! `sandpipe-connector` crate (`guest-rust/`, by path for now).

use anyhow::{Context, bail};
use std::path::PathBuf;

const TYPINGS: &str = include_str!("../../guest-sdk/typings/sandpipe.d.ts");

/// The TypeScript `package.json` pins for `npm run typecheck`.
pub const TYPESCRIPT_VERSION: &str = "5.9.3";

/// The language a new connector is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// TypeScript (`index.ts`), run by the QuickJS plugin.
    Ts,
    /// Rust (a `cdylib` on `sandpipe-connector`), a standalone wasm module.
    Rust,
}

/// The `sandpipe-connector` crate of the checkout this binary was built from.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-rust");

/// `sandpipe new`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The directory to create.
    name: PathBuf,
    /// The connector's language.
    #[arg(long, value_enum, default_value = "ts")]
    lang: Lang,
    /// With `--lang rust`: the `sandpipe-connector` crate to depend on, by
    /// path (default: `guest-rust/` of the checkout sandpipe was built from).
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

pub fn run(Args { name, lang, sdk }: Args) -> anyhow::Result<()> {
    let dir = name.as_path();
    if dir.exists() {
        bail!("{}: already exists", dir.display());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .context("NAME must end in a directory name")?;
    if lang == Lang::Rust {
        return rust(dir, &name, sdk);
    }
    if sdk.is_some() {
        bail!("--sdk is for --lang rust");
    }
    let plugin_json = serde_json::to_string_pretty(&serde_json::json!({
        "name": name,
        "description": "Adds properties.greeting to every event.",
        "main": "index.ts",
        "config": [
            { "key": "greeting", "name": "Greeting", "type": "string", "default": "hello", "required": false }
        ]
    }))?;
    let index = r#"/// <reference path="./sandpipe.d.ts" />

type Config = { greeting: string }

export function setupPlugin({ config, global }: Meta<Config>) {
    global.greeting = config.greeting.trim()
}

export function processEvent(event: PluginEvent, { global }: Meta<Config>): PluginEvent | null {
    if (!event.properties) {
        event.properties = {}
    }
    event.properties.greeting = global.greeting
    return event
}
"#;
    let fixture = greeting_fixture()?;
    // The connector world is not a browser, nor Node: no DOM, no @types/node.
    // TypeScript's WebWorker library declares the web globals it has (URL,
    // URLSearchParams, TextEncoder/TextDecoder, atob/btoa, structuredClone)
    // without a document; sandpipe.d.ts declares the rest.
    let tsconfig = serde_json::to_string_pretty(&serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "ES2022",
            "lib": ["ES2022", "WebWorker"],
            "module": "ES2022",
            "moduleResolution": "bundler",
            "types": []
        },
        "include": ["*.ts"]
    }))?;
    let package_json = serde_json::to_string_pretty(&serde_json::json!({
        "name": name,
        "private": true,
        "scripts": { "typecheck": "tsc -p ." },
        "devDependencies": { "typescript": TYPESCRIPT_VERSION }
    }))?;
    write_scaffold(
        dir,
        &[
            ("plugin.json", plugin_json.as_str()),
            ("index.ts", index),
            ("sandpipe.d.ts", TYPINGS),
            ("tsconfig.json", tsconfig.as_str()),
            ("package.json", package_json.as_str()),
            ("tests/greeting.json", fixture.as_str()),
        ],
        "index.ts",
        "`npm install && npm run typecheck` in it checks the types",
    )
}

/// Writes `files` (a path in `dir` and its text, which ends in one newline),
/// making `dir` and its subdirectories, then says what to do next: edit
/// `main`, run `sandpipe test` on it (`hint` in parentheses).
fn write_scaffold(
    dir: &std::path::Path,
    files: &[(&str, &str)],
    main: &str,
    hint: &str,
) -> anyhow::Result<()> {
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, format!("{}\n", text.trim_end()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let shown = dir.display().to_string();
    // A name with a space or a quote is one word of the command only quoted.
    let word = shlex::try_quote(&shown).unwrap_or(std::borrow::Cow::Borrowed(&shown));
    eprintln!("created {shown}: edit {main}, then `sandpipe test {word}` ({hint})");
    Ok(())
}

/// The greeting fixture both languages' scaffolds pass.
fn greeting_fixture() -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "name": "adds the configured greeting",
        "config": { "greeting": " hi " },
        "input": { "event": "pageview", "properties": { "$current_url": "https://example.com/" } },
        "expected": { "event": "pageview", "properties": { "$current_url": "https://example.com/", "greeting": "hi" } }
    }))?)
}

/// `sandpipe new --lang rust NAME`.
fn rust(dir: &std::path::Path, name: &str, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    let sdk = sdk.unwrap_or_else(|| PathBuf::from(SDK_DIR));
    let sdk = std::fs::canonicalize(&sdk).with_context(|| {
        format!(
            "{}: the sandpipe-connector crate (--sdk DIR)",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{}: no Cargo.toml (--sdk names the sandpipe-connector crate's directory)",
            sdk.display()
        );
    }
    let package: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let plugin_json = serde_json::to_string_pretty(&serde_json::json!({
        "name": name,
        "description": "Adds properties.greeting to every event.",
        "config": [
            { "key": "greeting", "name": "Greeting", "type": "string", "default": "hello", "required": false }
        ]
    }))?;
    let cargo_toml = format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
sandpipe-connector = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
lto = true
codegen-units = 1
panic = "abort"
opt-level = 3
strip = true

# A connector is its own workspace.
[workspace]
"#,
        sdk = sdk.display().to_string()
    );
    let lib = r#"//! Adds `properties.greeting` (the configured greeting, trimmed) to every event.

use sandpipe_connector::{Error, Event, Meta};
use serde::Deserialize;

/// plugin.json's config, resolved by the host (defaults filled in).
#[derive(Deserialize)]
struct Config {
    greeting: String,
}

#[sandpipe_connector::process_event]
fn greet(mut event: Event, meta: &Meta) -> Result<Option<Event>, Error> {
    let config: Config = meta.config()?;
    let greeting = config.greeting.trim().to_string();
    event.properties_mut().insert("greeting".into(), greeting.into());
    Ok(Some(event))
}

// Exports the hooks above (also #[setup], #[compose_webhook], #[on_event]).
sandpipe_connector::export!();
"#;
    write_scaffold(
        dir,
        &[
            ("plugin.json", plugin_json.as_str()),
            ("Cargo.toml", cargo_toml.as_str()),
            ("src/lib.rs", lib),
            (".gitignore", "/target/"),
            ("tests/greeting.json", greeting_fixture()?.as_str()),
        ],
        "src/lib.rs",
        "cargo builds it for wasm32-wasip1: `rustup target add wasm32-wasip1` once",
    )
}
