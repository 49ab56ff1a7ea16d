//! Why a build failed; each message is one line naming the file and the problem.

use sandpipe_manifest::ManifestError;
use sandpipe_runtime::ScriptError;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BuildError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Manifest { path: PathBuf, error: ManifestError },
    #[error(
        "{dir}: no plugin.json (a connector directory holds plugin.json and its index.js or index.ts; `sandpipe new NAME` makes one)"
    )]
    NoManifest { dir: PathBuf },
    #[error(
        "{dir}: no main file (plugin.json has no \"main\", and there is no index.js or index.ts)"
    )]
    NoMainFile { dir: PathBuf },
    #[error("{path}: \"main\" must name a file inside the connector directory")]
    MainOutsideDir { path: PathBuf },
    #[error("{0}")]
    Script(#[from] ScriptError),
    #[error("{dir}: {reason}")]
    Cargo { dir: PathBuf, reason: String },
    #[error(
        "no cargo that builds wasm32-wasip1: run `rustup target add wasm32-wasip1`, or set SANDPIPE_CARGO to a cargo that has the target"
    )]
    NoRustToolchain,
    #[error("{file}:{line}:{column}: {message}")]
    Unsupported {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
}

impl BuildError {
    /// The error with its source file named by its path under `dir`
    /// (`dir/index.js:2:19: …`), as a chain of several connectors, each
    /// with its own `index.js`, needs.
    pub fn in_dir(self, dir: &Path) -> BuildError {
        let under = |file: String| dir.join(file).display().to_string();
        match self {
            BuildError::Unsupported {
                file,
                line,
                column,
                message,
            } => BuildError::Unsupported {
                file: under(file),
                line,
                column,
                message,
            },
            BuildError::Script(ScriptError::Syntax {
                file,
                line,
                column,
                message,
            }) => BuildError::Script(ScriptError::Syntax {
                file: under(file),
                line,
                column,
                message,
            }),
            other => other,
        }
    }
}
