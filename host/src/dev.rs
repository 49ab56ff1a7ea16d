//! `sandpipe dev DIR`: watch mode. Builds the connector and runs its
//! fixtures (as `sandpipe test` does, every difference shown), then again
//! each time a file in DIR changes — its sources, plugin.json or a fixture —
//! until interrupted. A build error is printed and the watch goes on.

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long changes settle before a run (editors write a file in steps).
const SETTLE: Duration = Duration::from_millis(150);

/// `sandpipe dev`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The connector directory.
    dir: PathBuf,
    #[command(flatten)]
    geoip: crate::GeoIpArg,
}

/// Whether a change to `path` can change a run: not `node_modules/.cache`
/// or other tools' state, not editors' swap and backup files.
fn relevant(dir: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let hidden = relative
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let name = relative.to_string_lossy();
    !hidden && !name.ends_with('~') && !name.ends_with(".swp") && !name.ends_with(".wasm")
}

pub fn run(Args { dir, geoip }: Args) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let runtime = crate::runtime()?;
    let geoip = geoip.database();
    let (changes, changed) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            let _ = changes.send(event.paths);
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    loop {
        match crate::test_cmd::check(&runtime, &dir, geoip.clone(), false) {
            Ok(_) => {}
            Err(error) => println!(
                "sandpipe: error: {}",
                crate::one_line(&format!("{error:#}"))
            ),
        }
        println!("sandpipe: watching {} (Ctrl-C to stop)", dir.display());
        // Wait for a relevant change, then let the burst settle.
        let mut paths: Vec<PathBuf> = Vec::new();
        while paths.is_empty() {
            let batch = changed.recv().context("the file watcher stopped")?;
            paths.extend(batch.into_iter().filter(|p| relevant(&dir, p)));
        }
        while let Ok(batch) = changed.recv_timeout(SETTLE) {
            paths.extend(batch.into_iter().filter(|p| relevant(&dir, p)));
        }
        paths.sort();
        paths.dedup();
        let shown: Vec<String> = paths
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap_or(p).display().to_string())
            .collect();
        println!("sandpipe: changed: {}", shown.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::relevant;
    use std::path::Path;

    #[test]
    fn only_sources_and_fixtures_trigger_a_run() {
        let dir = Path::new("/c");
        assert!(relevant(dir, Path::new("/c/index.ts")));
        assert!(relevant(dir, Path::new("/c/tests/a.json")));
        assert!(!relevant(dir, Path::new("/c/.index.ts.swp")));
        assert!(!relevant(dir, Path::new("/c/index.ts~")));
        assert!(!relevant(dir, Path::new("/c/.sandpipe/storage.db")));
        assert!(!relevant(dir, Path::new("/c/c.wasm")));
    }
}
