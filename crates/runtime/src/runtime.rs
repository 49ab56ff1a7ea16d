//! [`Runtime`]: the engine, the module cache and the compiled plugin, shared by
//! every connector of a process.

use crate::bundle::{self, AdmissionError, Bundle};
use crate::connector::{Connector, ConnectorOptions};
use crate::engine::{Engine, EngineOptions};
use crate::error::{JsError, RuntimeError, ScriptError};
use crate::limits::{LimitError, Limits, MIB, OperatorLimits};
use crate::module_cache::{self, ModuleCache};
use crate::plugin::Plugin;
use crate::services::ConnectorServices;
use sandpipe_manifest::ResolvedConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to build a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled modules are kept across restarts (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    pub engine: EngineOptions,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: module_cache::default_dir(),
            engine: EngineOptions::default(),
        }
    }
}

/// Shared by all connectors; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    cache: Arc<ModuleCache>,
    plugin: Arc<Plugin>,
}

/// Limits for the sandboxed compile step: generous, but bounded.
fn compile_limits() -> Limits {
    Limits {
        fuel: 20_000_000_000,
        deadline: Duration::from_secs(30),
        memory: 256 * MIB,
        max_input: 16 * MIB,
        max_output: 64 * MIB,
        ..Limits::default()
    }
}

impl Runtime {
    /// Builds the engine and compiles (or loads from cache) the plugin.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let engine = Engine::new(options.engine).map_err(RuntimeError::Engine)?;
        let cache = ModuleCache::new(options.cache_dir);
        let plugin = Plugin::new(engine, &cache)?;
        Ok(Runtime {
            cache: Arc::new(cache),
            plugin: Arc::new(plugin),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.plugin.engine()
    }

    /// The module cache.
    pub fn cache(&self) -> &ModuleCache {
        &self.cache
    }

    /// Checks and compiles an untrusted bundle.
    pub fn admit(&self, bytes: impl AsRef<[u8]>) -> Result<Arc<Bundle>, AdmissionError> {
        let engine = self.engine().wasmtime();
        bundle::admit(
            bytes.as_ref(),
            |b| self.cache.get_or_compile(engine, b),
            |module| self.plugin.link_standalone(module),
        )
        .map(Arc::new)
    }

    /// The default limits with the operator's `overrides`, each checked
    /// against what this runtime can give; `name` turns a field name
    /// (`deadline_ms`) into what the operator wrote (`--deadline-ms`).
    pub fn operator_limits(
        &self,
        overrides: &OperatorLimits,
        name: impl Fn(&str) -> String,
    ) -> Result<Limits, LimitError> {
        overrides.apply(Limits::default(), self.engine().options().max_memory, name)
    }

    /// A configured connector at `position` in a chain (no instance yet):
    /// the one place connectors are made, for `run`, `test` and the service.
    /// Its limits are checked against the engine first.
    pub fn connector(
        &self,
        bundle: Arc<Bundle>,
        position: usize,
        config: ResolvedConfig,
        options: ConnectorOptions,
    ) -> Result<Connector, LimitError> {
        options.limits.check(self.engine().options().max_memory)?;
        Ok(Connector::new(
            self.plugin.clone(),
            bundle,
            position,
            config,
            options,
        ))
    }

    /// Compiles connector source to QuickJS script bytecode inside a fresh,
    /// bounded plugin instance (the host never parses JS into bytecode itself).
    pub fn compile_script(&self, file: &str, source: &str) -> Result<Vec<u8>, ScriptError> {
        let limits = compile_limits();
        let other = |e: String| ScriptError::Other(format!("{file}: {e}"));
        let mut input = Vec::with_capacity(file.len() + 1 + source.len());
        input.extend_from_slice(file.replace('\n', " ").as_bytes());
        input.push(b'\n');
        input.extend_from_slice(source.as_bytes());
        if input.len() > limits.max_input {
            return Err(other(format!(
                "source is over the {} MiB compile limit",
                limits.max_input >> 20
            )));
        }
        let services = Arc::new(ConnectorServices::new(Default::default()));
        let compiled = self
            .plugin
            .instantiate(&limits, services)
            .and_then(|mut guest| guest.compile(&input, &limits))
            .map_err(|e| other(format!("compiler {e}")))?;
        compiled.map_err(|error| locate(file, &error).unwrap_or_else(|| other(error.to_string())))
    }
}

/// `file:line:col` of a QuickJS compile error, from the first stack frame in `file`.
fn locate(file: &str, error: &JsError) -> Option<ScriptError> {
    let needle = format!("{file}:");
    let at = error.stack.find(&needle)? + needle.len();
    let mut parts = error.stack[at..].split(|c: char| !c.is_ascii_digit());
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    Some(ScriptError::Syntax {
        file: file.to_string(),
        line,
        column,
        message: format!(
            "{}: {}",
            error.name.as_deref().unwrap_or("Error"),
            error.message
        ),
    })
}
