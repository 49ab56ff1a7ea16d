//! Turns a connector directory (`index.js` + `plugin.json`) into a sandpipe
//! bundle: a small wasm module holding the connector's QuickJS bytecode and
//! its manifest, to be run against the host's plugin.
//!
//! ```no_run
//! use sandpipe_runtime::{Runtime, RuntimeOptions};
//!
//! let runtime = Runtime::new(RuntimeOptions::default())?;
//! let built = sandpipe_compiler::build(&runtime, "examples/hello-world".as_ref())?;
//! std::fs::write("hello.wasm", &built.bytes)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The stages, each its own module:
//! - [`source`]: read `plugin.json`, find the main file, hash the sources;
//! - [`typescript`]: strip TypeScript types (oxc transformer + codegen);
//! - [`normalize`]: parse the JavaScript (oxc) and rewrite ES module syntax to
//!   the CommonJS shape the plugin runs as a sloppy-mode script;
//! - [`link`] and [`resolve`]: bundle what the connector `import`s or
//!   `require`s from its own files and `node_modules` into one script; Node
//!   built-ins other than `crypto`, `buffer` and `url` fail the build;
//! - bytecode: the plugin's own compile step, in a bounded sandbox
//!   ([`sandpipe_runtime::Runtime::compile_script`]);
//! - [`emit`]: write the bundle module (wasm-encoder) with its manifest section.
//!
//! A directory with a `Cargo.toml` is a connector written in Rust instead:
//! [`rust`] builds it with cargo and wraps the module into a standalone bundle.
//!
//! The same directory always gives the same bytes.

pub mod emit;
mod error;
pub mod link;
pub mod normalize;
pub mod resolve;
pub mod rust;
pub mod source;
pub mod typescript;

pub use error::BuildError;

use sandpipe_abi::ABI_VERSION;
use sandpipe_manifest::Manifest;
use sandpipe_runtime::{BundleKind, BundleManifest, Runtime};
use std::path::Path;

/// A built bundle.
#[derive(Debug, Clone)]
pub struct Built {
    /// The bundle's bytes.
    pub bytes: Vec<u8>,
    /// The connector's parsed `plugin.json`.
    pub manifest: Manifest,
    /// The manifest section written into the bundle.
    pub section: BundleManifest,
}

/// Builds the connector in `dir`.
pub fn build(runtime: &Runtime, dir: &Path) -> Result<Built, BuildError> {
    if rust::is_rust(dir) {
        return rust::build(dir);
    }
    let sources = source::Sources::read(dir)?;
    let linked = link::link(dir, &sources.main_name, &sources.main_text)?;
    let bytecode = runtime.compile_script(&sources.main_name, &linked.script)?;
    let section = BundleManifest {
        abi_version: ABI_VERSION,
        main: sources.main_name.clone(),
        source_sha256: source::sha256(&sources.plugin_json, &linked.files),
        plugin_json: sources.plugin_json.clone(),
        modules: link::npm_packages(dir, &linked.files),
        kind: BundleKind::Script,
    };
    let bytes = emit::bundle(&bytecode, &section);
    Ok(Built {
        bytes,
        manifest: sources.manifest,
        section,
    })
}
