//! The files a connector is built from: `plugin.json` and the main file.

use crate::error::BuildError;
use sandpipe_manifest::Manifest;
use sha2::{Digest, Sha256};
use std::path::{Component, Path};

/// The main files tried, in order, when `plugin.json` names none.
pub const DEFAULT_MAIN: [&str; 2] = ["index.js", "index.ts"];

/// A connector directory's sources, read and checked.
#[derive(Debug, Clone)]
pub struct Sources {
    pub plugin_json: String,
    pub manifest: Manifest,
    /// The main file's path relative to the directory, as written in stacks.
    pub main_name: String,
    pub main_text: String,
}

fn read(path: &Path) -> Result<String, BuildError> {
    std::fs::read_to_string(path).map_err(|error| BuildError::Io {
        path: path.to_path_buf(),
        error,
    })
}

impl Sources {
    /// Reads `dir/plugin.json` and the main file it names (or the default).
    pub fn read(dir: &Path) -> Result<Sources, BuildError> {
        let manifest_path = dir.join("plugin.json");
        let plugin_json = match read(&manifest_path) {
            Err(BuildError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BuildError::NoManifest {
                    dir: dir.to_path_buf(),
                });
            }
            read => read?,
        };
        let manifest = Manifest::parse(&plugin_json).map_err(|error| BuildError::Manifest {
            path: manifest_path.clone(),
            error,
        })?;
        let main_name = match &manifest.main {
            Some(main) => {
                let relative = Path::new(main);
                let inside = relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                if !inside || main.is_empty() {
                    return Err(BuildError::MainOutsideDir {
                        path: manifest_path,
                    });
                }
                main.trim_start_matches("./").to_string()
            }
            None => DEFAULT_MAIN
                .iter()
                .find(|name| dir.join(name).is_file())
                .ok_or_else(|| BuildError::NoMainFile {
                    dir: dir.to_path_buf(),
                })?
                .to_string(),
        };
        let main_text = read(&dir.join(&main_name))?;
        Ok(Sources {
            plugin_json,
            manifest,
            main_name,
            main_text,
        })
    }
}

/// sha256 (hex) over `plugin.json` and every source file: name, length, bytes.
pub fn sha256(plugin_json: &str, files: &[(String, String)]) -> String {
    let mut digest = Sha256::new();
    let all = std::iter::once(("plugin.json", plugin_json))
        .chain(files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    for (name, text) in all {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update((text.len() as u64).to_le_bytes());
        digest.update(text.as_bytes());
    }
    hex::encode(digest.finalize())
}
