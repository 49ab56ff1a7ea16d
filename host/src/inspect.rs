//! `sandpipe inspect FILE.wasm`: the static admission checks, then a report,
//! with the hooks the bundle defines (found by loading it, with its config's
//! defaults, in a sandboxed instance) and the npm packages it bundled.

use anyhow::Context;
use sandpipe_manifest::ConfigEntry;
use sandpipe_runtime::{Call, bundle};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// `sandpipe inspect`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
}

/// The special functions the bundle defines, or why they could not be found.
fn hooks(bytes: &[u8]) -> String {
    let found = || -> anyhow::Result<Vec<&'static str>> {
        let runtime = crate::runtime()?;
        let bundle = runtime.admit(bytes)?;
        // Without values a required field refuses the whole config; the
        // defaults of the others are still what setupPlugin would read.
        let manifest = bundle.manifest();
        let config = manifest
            .resolve_config(&serde_json::Map::new())
            .unwrap_or_else(|_| sandpipe_manifest::ResolvedConfig {
                config: manifest
                    .fields()
                    .filter(|field| field.kind != sandpipe_manifest::FieldType::Attachment)
                    .filter_map(|field| Some((field.key.clone(), field.default.clone()?)))
                    .collect(),
                ..Default::default()
            });
        let options = sandpipe_runtime::ConnectorOptions {
            logs: std::sync::Arc::new(sandpipe_runtime::MemoryLogs::default()),
            ..Default::default()
        };
        let mut connector = runtime.connector(bundle, 0, config, options)?;
        let functions = connector.functions()?;
        let mut hooks = Vec::new();
        for call in [
            Call::Setup,
            Call::ProcessEvent,
            Call::ComposeWebhook,
            Call::OnEvent,
            Call::ExportEvents,
            Call::RunEveryMinute,
            Call::RunEveryHour,
            Call::RunEveryDay,
            Call::Teardown,
        ] {
            let defined = std::iter::once(call.function()).chain(call.stand_in());
            hooks.extend(defined.filter(|name| functions.iter().any(|f| f == name)));
        }
        Ok(hooks)
    };
    match found() {
        Ok(hooks) if hooks.is_empty() => "(none)".into(),
        Ok(hooks) => hooks.join(", "),
        Err(error) => format!(
            "unknown (loading it failed: {})",
            crate::one_line(&format!("{error:#}"))
        ),
    }
}

pub fn run(Args { file }: Args) -> anyhow::Result<()> {
    let file = file.as_path();
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let inspection = bundle::inspect(&bytes).with_context(|| file.display().to_string())?;
    let manifest = &inspection.manifest;
    println!("name:          {}", manifest.name);
    if let Some(description) = &manifest.description {
        println!("description:   {description}");
    }
    println!("abi version:   {}", inspection.section.abi_version);
    println!("main:          {}", inspection.section.main);
    println!("source sha256: {}", inspection.section.source_sha256);
    println!("bundle sha256: {}", hex::encode(Sha256::digest(&bytes)));
    println!("size:          {} bytes", bytes.len());
    let imports: Vec<String> = inspection
        .imports
        .iter()
        .map(|(m, n)| format!("{m}.{n}"))
        .collect();
    println!("imports:       {}", imports.join(", "));
    println!("hooks:         {}", hooks(&bytes));
    println!(
        "npm modules:   {}",
        if inspection.section.modules.is_empty() {
            "(none)".to_string()
        } else {
            inspection.section.modules.join(", ")
        }
    );
    println!("config:");
    if manifest.fields().next().is_none() {
        println!("  (none)");
    }
    for entry in &manifest.config {
        let ConfigEntry::Field(field) = entry else {
            continue;
        };
        let mut line = format!("  {} ({})", field.key, field.kind.as_str());
        if field.required {
            line.push_str(" required");
        }
        if field.secret {
            line.push_str(" secret");
        }
        if let Some(default) = &field.default {
            line.push_str(&format!(" default {default}"));
        }
        if !field.choices.is_empty() {
            line.push_str(&format!(" choices {}", field.choices.join("|")));
        }
        if let Some(name) = &field.name {
            line.push_str(&format!(" — {name}"));
        }
        println!("{line}");
    }
    Ok(())
}
