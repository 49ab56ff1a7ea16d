//! `sandpipe build DIR [-o FILE]`.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// `sandpipe build`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The connector directory.
    dir: PathBuf,
    /// Where to write the bundle (default: `<dir name>.wasm`).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(Args { dir, output }: Args) -> anyhow::Result<()> {
    let dir = dir.as_path();
    let runtime = crate::runtime()?;
    let built = sandpipe_compiler::build(&runtime, dir)?;
    let output = output.unwrap_or_else(|| default_output(dir));
    std::fs::write(&output, &built.bytes)
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "built {} ({}) → {} ({} bytes)",
        dir.display(),
        built.manifest.name,
        output.display(),
        built.bytes.len()
    );
    Ok(())
}

/// `<dir name>.wasm` in the current directory.
fn default_output(dir: &Path) -> PathBuf {
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "connector".into());
    PathBuf::from(format!("{name}.wasm"))
}
