//! `sandpipe new NAME`: a connector to start from — TypeScript `index.ts`,
//! `plugin.json` with one config field, the connector typings, a fixture
//! that `sandpipe test NAME` passes, and `tsconfig.json` + `package.json`
//! whose `npm run typecheck` runs `tsc --strict` on it (TypeScript pinned).

use anyhow::{Context, bail};
use std::path::PathBuf;

const TYPINGS: &str = include_str!("../../guest-sdk/typings/sandpipe.d.ts");

/// The TypeScript `package.json` pins for `npm run typecheck`.
pub const TYPESCRIPT_VERSION: &str = "5.9.3";

/// `sandpipe new`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The directory to create.
    name: PathBuf,
}

pub fn run(Args { name }: Args) -> anyhow::Result<()> {
    let dir = name.as_path();
    if dir.exists() {
        bail!("{}: already exists", dir.display());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .context("NAME must end in a directory name")?;
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
    let fixture = serde_json::to_string_pretty(&serde_json::json!({
        "name": "adds the configured greeting",
        "config": { "greeting": " hi " },
        "input": { "event": "pageview", "properties": { "$current_url": "https://example.com/" } },
        "expected": { "event": "pageview", "properties": { "$current_url": "https://example.com/", "greeting": "hi" } }
    }))?;
    // The connector world is not a browser, nor Node: no DOM, no @types/node;
    // sandpipe.d.ts declares what it has.
    let tsconfig = serde_json::to_string_pretty(&serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "ES2022",
            "lib": ["ES2022"],
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
    std::fs::create_dir_all(dir.join("tests"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (file, text) in [
        ("plugin.json", plugin_json.as_str()),
        ("index.ts", index),
        ("sandpipe.d.ts", TYPINGS),
        ("tsconfig.json", tsconfig.as_str()),
        ("package.json", package_json.as_str()),
        ("tests/greeting.json", fixture.as_str()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, format!("{}\n", text.trim_end()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "created {}: edit index.ts, then `sandpipe test {}` (`npm install && npm run typecheck` in it checks the types)",
        dir.display(),
        dir.display()
    );
    Ok(())
}
