//! [`Runtime`]: the engine, the module cache and the compiled plugin, shared by
//! every connector of a process.

use crate::bundle::{self, AdmissionError, Bundle};
use crate::cache::{self, ModuleCache};
use crate::connector::Connector;
use crate::engine::{Engine, EngineOptions};
use crate::error::{JsError, ScriptError};
use crate::host::{self, StoreData};
use crate::instance::{arm, trap_reason};
use crate::limits::{Limits, MIB};
use crate::log::LogSink;
use crate::plugin::PLUGIN_WASM;
use crate::services::ConnectorServices;
use sandpipe_abi::{Packed, export};
use sandpipe_manifest::ResolvedConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{InstancePre, Store};

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
            cache_dir: cache::default_dir(),
            engine: EngineOptions::default(),
        }
    }
}

/// Shared by all connectors; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    cache: ModuleCache,
    pub(crate) plugin: InstancePre<StoreData>,
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
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Runtime> {
        let engine = Engine::new(options.engine)?;
        let cache = ModuleCache::new(options.cache_dir);
        let plugin = cache.get_or_compile(engine.wasmtime(), PLUGIN_WASM)?;
        let plugin = host::linker(engine.wasmtime())?.instantiate_pre(&plugin)?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                cache,
                plugin,
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The module cache.
    pub fn cache(&self) -> &ModuleCache {
        &self.inner.cache
    }

    /// Checks and compiles an untrusted bundle.
    pub fn admit(&self, bytes: impl AsRef<[u8]>) -> Result<Arc<Bundle>, AdmissionError> {
        let engine = self.inner.engine.wasmtime();
        bundle::admit(bytes.as_ref(), |b| {
            self.inner.cache.get_or_compile(engine, b)
        })
        .map(Arc::new)
    }

    /// A configured connector at `position` in a chain (no instance yet).
    pub fn connector(
        &self,
        bundle: Arc<Bundle>,
        position: usize,
        config: ResolvedConfig,
        limits: Limits,
        logs: Arc<dyn LogSink>,
    ) -> Connector {
        Connector::new(self.inner.clone(), bundle, position, config, limits, logs)
    }

    /// Compiles connector source to QuickJS script bytecode inside a fresh,
    /// bounded plugin instance (the host never parses JS into bytecode itself).
    pub fn compile_script(&self, file: &str, source: &str) -> Result<Vec<u8>, ScriptError> {
        let limits = compile_limits();
        let other = |e: String| ScriptError::Other(format!("{file}: {e}"));
        let services = Arc::new(ConnectorServices::new(Default::default()));
        let mut store = Store::new(
            self.inner.engine.wasmtime(),
            StoreData::new(&limits, services),
        );
        store.limiter(|data| &mut data.limits);
        arm(&mut store, &limits);
        let trapped = |e: wasmtime::Error| other(format!("compiler {}", trap_reason(&e, &limits)));
        let instance = self.inner.plugin.instantiate(&mut store).map_err(trapped)?;
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| other("plugin exports no memory".into()))?;
        let reserve = instance
            .get_typed_func::<u32, u32>(&mut store, export::RESERVE)
            .map_err(trapped)?;
        let compile = instance
            .get_typed_func::<u32, i64>(&mut store, export::COMPILE)
            .map_err(trapped)?;
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
        let ptr = reserve
            .call(&mut store, input.len() as u32)
            .map_err(trapped)?;
        memory
            .write(&mut store, ptr as usize, &input)
            .map_err(|e| other(format!("writing the source: {e}")))?;
        let raw = compile
            .call(&mut store, input.len() as u32)
            .map_err(trapped)?;
        let packed = Packed::decode(raw);
        let bytes = host::guest_bytes(memory.data(&store), packed.ptr, packed.len, "compile")
            .map_err(|e| other(e.to_string()))?;
        if !packed.is_error {
            return Ok(bytes.to_vec());
        }
        let error: JsError = serde_json::from_slice(bytes)
            .map_err(|_| other(String::from_utf8_lossy(bytes).into_owned()))?;
        Err(locate(file, &error).unwrap_or_else(|| other(error.to_string())))
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
