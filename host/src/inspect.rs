//! `sandpipe inspect FILE.wasm`: the static admission checks, then a report.

use anyhow::Context;
use sandpipe_manifest::ConfigEntry;
use sandpipe_runtime::bundle;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// `sandpipe inspect`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
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
