//! Connectors written in Rust: a directory with `plugin.json` and a
//! `Cargo.toml` (a `cdylib` on the `sandpipe-connector` crate), built by cargo
//! for `wasm32-wasip1` in release mode and wrapped into a standalone bundle:
//! the module cargo wrote, with the `sandpipe.manifest` section appended.
//!
//! Which cargo ([`Toolchain::find`]): `SANDPIPE_CARGO` if set; else `cargo`
//! on the PATH when its rustc has the `wasm32-wasip1` target (`rustup target
//! add wasm32-wasip1`); else Debian's `/usr/bin/cargo` (`cargo-web`), which
//! has no prebuilt standard library for the target and builds it from
//! `rust-web-src` (`-Zbuild-std`), as the plugin's build does.

use crate::error::BuildError;
use sandpipe_abi::{ABI_VERSION, MANIFEST_SECTION};
use sandpipe_manifest::Manifest;
use sandpipe_runtime::{BundleKind, BundleManifest};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target every Rust connector is built for.
pub const TARGET: &str = "wasm32-wasip1";
/// What a standalone bundle's manifest names as its main file.
pub const MAIN: &str = "src/lib.rs";
/// Debian's standard library sources (`rust-web-src`).
const DEBIAN_STD_SOURCES: &str = "/usr/lib/rustlib/src/rust/library";
/// Debian's wasi-libc (`wasi-libc`), which a build of std links against.
const DEBIAN_WASI_LIBC: &str = "/usr/lib/wasm32-wasi";

/// Whether `dir` holds a Rust connector (it has a `Cargo.toml`).
pub fn is_rust(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
}

/// The cargo a Rust connector is built with, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub cargo: PathBuf,
    /// The rustc it runs, when it must be named (a cargo outside rustup).
    pub rustc: Option<PathBuf>,
    /// Build the standard library from source (`-Zbuild-std`), for a
    /// toolchain without a prebuilt one for [`TARGET`].
    pub build_std: bool,
}

/// The rustc next to `cargo` (or `rustc` on the PATH for a bare `cargo`).
fn sibling_rustc(cargo: &Path) -> PathBuf {
    match cargo.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if dir.join("rustc").is_file() => dir.join("rustc"),
        _ => PathBuf::from("rustc"),
    }
}

/// `rustc --print …`, trimmed; `None` when it does not run.
fn print(rustc: &Path, what: &[&str]) -> Option<PathBuf> {
    let output = Command::new(rustc)
        .arg("--print")
        .args(what)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| PathBuf::from(text.trim()))
}

/// Whether `rustc` has a prebuilt standard library for [`TARGET`].
fn has_target(rustc: &Path) -> bool {
    print(rustc, &["target-libdir", "--target", TARGET]).is_some_and(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
    })
}

/// Whether `rustc`'s sysroot has the standard library's sources.
fn has_std_sources(rustc: &Path) -> bool {
    print(rustc, &["sysroot"])
        .is_some_and(|sysroot| sysroot.join("lib/rustlib/src/rust/library").is_dir())
}

impl Toolchain {
    /// The toolchain to build with (see the module documentation).
    pub fn find() -> Result<Toolchain, BuildError> {
        if let Some(cargo) = std::env::var_os("SANDPIPE_CARGO").filter(|c| !c.is_empty()) {
            let cargo = PathBuf::from(cargo);
            let rustc = sibling_rustc(&cargo);
            let build_std = !has_target(&rustc) && has_std_sources(&rustc);
            return Ok(Toolchain {
                rustc: Some(rustc).filter(|r| r.is_absolute()),
                cargo,
                build_std,
            });
        }
        if has_target(Path::new("rustc")) {
            return Ok(Toolchain {
                cargo: PathBuf::from("cargo"),
                rustc: None,
                build_std: false,
            });
        }
        if Path::new("/usr/bin/cargo").is_file() && Path::new(DEBIAN_STD_SOURCES).is_dir() {
            return Ok(Toolchain {
                cargo: PathBuf::from("/usr/bin/cargo"),
                rustc: Some(PathBuf::from("/usr/bin/rustc")),
                build_std: true,
            });
        }
        Err(BuildError::NoRustToolchain)
    }

    /// `cargo build --release --target wasm32-wasip1` in `dir` (into
    /// `target_dir` if given, else where cargo's settings say), quiet but for
    /// diagnostics (on stderr); the `.wasm` file it wrote.
    pub fn build(&self, dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf, BuildError> {
        let mut command = Command::new(&self.cargo);
        command
            .args(["build", "--release", "--quiet", "--target", TARGET])
            .args(["--message-format", "json-render-diagnostics"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(target_dir) = target_dir {
            command.arg("--target-dir").arg(target_dir);
        }
        if let Some(rustc) = &self.rustc {
            command.env("RUSTC", rustc);
        }
        if self.build_std {
            command
                .args(["-Zbuild-std=std,panic_abort"])
                .env("RUSTC_BOOTSTRAP", "1");
            if Path::new(DEBIAN_WASI_LIBC).is_dir() {
                command.env(
                    "CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS",
                    format!("-L native={DEBIAN_WASI_LIBC}"),
                );
            }
        }
        let output = command.output().map_err(|error| BuildError::Cargo {
            dir: dir.to_path_buf(),
            reason: format!("could not run {}: {error}", self.cargo.display()),
        })?;
        if !output.status.success() {
            return Err(BuildError::Cargo {
                dir: dir.to_path_buf(),
                reason: format!(
                    "cargo build failed ({}); its errors are above",
                    output.status
                ),
            });
        }
        artifact(&output.stdout).ok_or_else(|| BuildError::Cargo {
            dir: dir.to_path_buf(),
            reason: "cargo built no .wasm (is the crate's type \"cdylib\"?)".into(),
        })
    }
}

/// The last `.wasm` file cargo's JSON messages name for a `cdylib`.
fn artifact(messages: &[u8]) -> Option<PathBuf> {
    let mut found = None;
    for line in messages.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if message["reason"] == "compiler-artifact" && cdylib {
            let files = message["filenames"].as_array().into_iter().flatten();
            if let Some(wasm) = files
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
            {
                found = Some(PathBuf::from(wasm));
            }
        }
    }
    found
}

/// The standalone bundle for `module` (what cargo wrote) with `plugin.json`
/// as its manifest. The source hash covers `plugin.json` and the module.
pub fn wrap(module: &[u8], plugin_json: &str) -> Result<(Vec<u8>, BundleManifest), String> {
    if !module.starts_with(b"\0asm\x01\0\0\0") {
        return Err("cargo's output is not a WebAssembly core module".into());
    }
    let mut digest = Sha256::new();
    for part in [plugin_json.as_bytes(), module] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    let section = BundleManifest {
        abi_version: ABI_VERSION,
        main: MAIN.into(),
        source_sha256: hex::encode(digest.finalize()),
        plugin_json: plugin_json.to_string(),
        modules: Vec::new(),
        kind: BundleKind::Standalone,
    };
    let mut bytes = module.to_vec();
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: MANIFEST_SECTION.into(),
            data: section.encode().into(),
        },
        &mut bytes,
    );
    Ok((bytes, section))
}

/// Builds the Rust connector in `dir`.
pub fn build(dir: &Path) -> Result<crate::Built, BuildError> {
    build_in(dir, None)
}

/// Builds the Rust connector in `dir` with cargo's output in `target_dir`
/// (connectors that share one build their dependencies, and the standard
/// library when it is built from source, once).
pub fn build_in(dir: &Path, target_dir: Option<&Path>) -> Result<crate::Built, BuildError> {
    let manifest_path = dir.join("plugin.json");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| BuildError::Io { path, error }
    };
    let plugin_json = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let manifest = Manifest::parse(&plugin_json).map_err(|error| BuildError::Manifest {
        path: manifest_path.clone(),
        error,
    })?;
    let wasm = Toolchain::find()?.build(dir, target_dir)?;
    let module = std::fs::read(&wasm).map_err(io(&wasm))?;
    let (bytes, section) = wrap(&module, &plugin_json).map_err(|reason| BuildError::Cargo {
        dir: dir.to_path_buf(),
        reason,
    })?;
    Ok(crate::Built {
        bytes,
        manifest,
        section,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cdylib_artifact_is_found_in_cargo_messages() {
        let messages = br#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libserde.rlib"]}
not json
{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-wasip1/release/enricher.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            artifact(messages),
            Some(PathBuf::from("/t/wasm32-wasip1/release/enricher.wasm"))
        );
        assert_eq!(artifact(b"{\"reason\":\"build-finished\"}"), None);
    }

    #[test]
    fn a_wrapped_module_carries_its_manifest_last() {
        let module = b"\0asm\x01\0\0\0";
        let (bytes, section) = wrap(module, r#"{"name": "x"}"#).unwrap();
        assert_eq!(section.kind, BundleKind::Standalone);
        assert!(bytes.starts_with(module));
        let encoded = section.encode();
        assert!(bytes.ends_with(&encoded));
        assert_eq!(
            wrap(b"not wasm", "{}").unwrap_err(),
            "cargo's output is not a WebAssembly core module"
        );
    }
}
