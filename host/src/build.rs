//! `sandpipe build DIR [-o FILE] [--typecheck]`.

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
    /// Type-check the connector's TypeScript with `tsc -p DIR` first (DIR's
    /// `node_modules/.bin/tsc`, else `tsc` on the PATH; skipped with a note
    /// when neither is installed).
    #[arg(long)]
    typecheck: bool,
}

/// Runs `tsc -p dir`; an error when it finds type errors.
fn typecheck(dir: &Path) -> anyhow::Result<()> {
    let local = dir.join("node_modules/.bin/tsc");
    let tsc = if local.is_file() {
        local
    } else {
        PathBuf::from("tsc")
    };
    match std::process::Command::new(&tsc).arg("-p").arg(dir).status() {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => anyhow::bail!("{}: type errors (tsc -p {0})", dir.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "sandpipe: --typecheck skipped: tsc is not installed (npm install in {}, or npm install -g typescript)",
                dir.display()
            );
            Ok(())
        }
        Err(error) => Err(error).with_context(|| format!("running {}", tsc.display())),
    }
}

pub fn run(
    Args {
        dir,
        output,
        typecheck: check,
    }: Args,
) -> anyhow::Result<()> {
    let dir = dir.as_path();
    if check {
        typecheck(dir)?;
    }
    let runtime = crate::runtime()?;
    let built = sandpipe_compiler::build(&runtime, dir)?;
    let output = output.unwrap_or_else(|| default_output(dir));
    std::fs::write(&output, &built.bytes)
        .with_context(|| format!("writing {}", output.display()))?;
    // The plugin's name is its plugin.json's: shown escaped when it holds a
    // control character, so it stays on this line.
    let name = &built.manifest.name;
    let name = match name.chars().any(char::is_control) {
        true => format!("{name:?}"),
        false => name.clone(),
    };
    eprintln!(
        "built {} ({name}) → {} ({} bytes)",
        dir.display(),
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
