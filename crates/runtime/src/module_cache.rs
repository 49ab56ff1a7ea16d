//! Compiled modules, cached in memory for the process and on disk across
//! restarts, keyed by the engine's compatibility hash and the module's sha256.
//!
//! Invariant: the cache directory belongs to the operator. Deserialising a
//! cached file runs its machine code, so nothing a connector or an API caller
//! controls may ever write there; only this module does, atomically.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wasmtime::Module;

/// Part of every key, so a change of cache layout cannot read old entries.
const CACHE_FORMAT: &str = "sandpipe-module-cache-2";

/// Compiled modules kept in memory; the oldest is forgotten beyond this (it
/// stays alive while a bundle uses it, and on disk), so uploads of ever new
/// bundles cannot grow the process without bound.
pub const MAX_IN_MEMORY: usize = 256;

/// Compiled modules by key.
pub struct ModuleCache {
    dir: Option<PathBuf>,
    modules: Mutex<InMemory>,
}

/// The in-memory entries and their insertion order.
#[derive(Default)]
struct InMemory {
    modules: HashMap<String, Module>,
    order: VecDeque<String>,
}

impl InMemory {
    fn insert(&mut self, key: String, module: Module) {
        if self.modules.insert(key.clone(), module).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_IN_MEMORY {
            if let Some(oldest) = self.order.pop_front() {
                self.modules.remove(&oldest);
            }
        }
    }

    fn len(&self) -> usize {
        self.modules.len()
    }
}

impl ModuleCache {
    /// A cache that also keeps compiled modules under `dir` (created if needed).
    pub fn new(dir: Option<PathBuf>) -> ModuleCache {
        ModuleCache {
            dir,
            modules: Mutex::new(InMemory::default()),
        }
    }

    /// How many compiled modules are held in memory.
    pub fn in_memory(&self) -> usize {
        self.modules.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The directory used, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache key of `bytes` under `engine`.
    pub fn key(engine: &wasmtime::Engine, bytes: &[u8]) -> String {
        let mut engine_hash = std::hash::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut digest = Sha256::new();
        digest.update(CACHE_FORMAT.as_bytes());
        digest.update(engine_hash.finish().to_le_bytes());
        digest.update(bytes);
        hex::encode(digest.finalize())
    }

    /// The compiled module for `bytes`: from memory, from disk, or compiled now.
    pub fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<Module> {
        let key = Self::key(engine, bytes);
        if let Some(module) = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .modules
            .get(&key)
        {
            return Ok(module.clone());
        }
        let module = match self.load(engine, &key) {
            Some(module) => module,
            None => {
                let module = Module::new(engine, bytes)?;
                self.store(&key, &module);
                module
            }
        };
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, module.clone());
        Ok(module)
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{key}.cwasm")))
    }

    fn load(&self, engine: &wasmtime::Engine, key: &str) -> Option<Module> {
        let path = self.path(key)?;
        if !path.is_file() {
            return None;
        }
        // SAFETY: files in the cache directory are written only by `store`
        // below, from modules this engine compiled (see the module invariant);
        // wasmtime also checks the engine compatibility header.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached module");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn store(&self, key: &str, module: &Module) {
        let Some(path) = self.path(key) else { return };
        let write = || -> std::io::Result<()> {
            let dir = path.parent().expect("cache paths have a parent");
            std::fs::create_dir_all(dir)?;
            let bytes = module.serialize().map_err(std::io::Error::other)?;
            let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), error = %e, "could not write the module cache");
        }
    }
}

/// `$SANDPIPE_CACHE_DIR`, else `$XDG_CACHE_HOME/sandpipe`, else `~/.cache/sandpipe`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("SANDPIPE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("sandpipe")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("sandpipe")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "answer") (result i32) i32.const 42))"#;

    fn engine() -> wasmtime::Engine {
        wasmtime::Engine::default()
    }

    fn cached_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn memory_holds_at_most_the_newest_modules() {
        let engine = engine();
        let cache = ModuleCache::new(None);
        for n in 0..MAX_IN_MEMORY + 10 {
            let wat = format!(r#"(module (func (export "answer") (result i32) i32.const {n}))"#);
            cache
                .get_or_compile(&engine, &wat::parse_str(wat).unwrap())
                .unwrap();
        }
        assert_eq!(cache.in_memory(), MAX_IN_MEMORY);
        // The newest is still there: compiling it again is a memory hit.
        let newest = format!(
            r#"(module (func (export "answer") (result i32) i32.const {}))"#,
            MAX_IN_MEMORY + 9
        );
        cache
            .get_or_compile(&engine, &wat::parse_str(newest).unwrap())
            .unwrap();
        assert_eq!(cache.in_memory(), MAX_IN_MEMORY);
    }

    #[test]
    fn modules_are_written_once_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let bytes = wat::parse_str(WAT).unwrap();
        let key = ModuleCache::key(&engine, &bytes);
        ModuleCache::new(Some(dir.path().into()))
            .get_or_compile(&engine, &bytes)
            .unwrap();
        assert_eq!(
            cached_files(dir.path()),
            [dir.path().join(format!("{key}.cwasm"))]
        );
        let written = std::fs::metadata(dir.path().join(format!("{key}.cwasm")))
            .unwrap()
            .modified()
            .unwrap();
        // A new cache (a restarted process) loads the file instead of compiling and rewriting it.
        let module = ModuleCache::new(Some(dir.path().into()))
            .get_or_compile(&engine, &bytes)
            .unwrap();
        assert!(module.get_export("answer").is_some());
        assert_eq!(
            std::fs::metadata(dir.path().join(format!("{key}.cwasm")))
                .unwrap()
                .modified()
                .unwrap(),
            written
        );
    }

    #[test]
    fn a_corrupt_cache_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let bytes = wat::parse_str(WAT).unwrap();
        let path = dir
            .path()
            .join(format!("{}.cwasm", ModuleCache::key(&engine, &bytes)));
        std::fs::write(&path, b"not a compiled module").unwrap();
        let module = ModuleCache::new(Some(dir.path().into()))
            .get_or_compile(&engine, &bytes)
            .unwrap();
        assert!(module.get_export("answer").is_some());
        assert_ne!(std::fs::read(&path).unwrap(), b"not a compiled module");
    }

    #[test]
    fn a_module_compiled_by_another_wasmtime_is_recompiled_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let bytes = wat::parse_str(WAT).unwrap();
        // An artifact as wasmtime 42 would have written it: the engine section
        // names the major version that compiled it (here "48", the LTS line
        // of `tests/wasmtime_line.rs`), which becomes "42".
        let compiled = Module::new(&engine, &bytes).unwrap().serialize().unwrap();
        // The bytes `\x02 4 8` may also occur by chance elsewhere: the right
        // place is the one whose change wasmtime reports as the version.
        let artifact = compiled
            .windows(3)
            .enumerate()
            .filter(|(_, w)| *w == b"\x0248")
            .map(|(at, _)| {
                let mut artifact = compiled.clone();
                artifact[at + 1..at + 3].copy_from_slice(b"42");
                artifact
            })
            .find(|artifact| {
                // SAFETY: this engine serialised the artifact and only two bytes
                // changed; a candidate that loads is dropped, never run.
                unsafe { Module::deserialize(&engine, artifact) }.is_err_and(|e| {
                    format!("{e:#}").contains("compiled with incompatible version '42'")
                })
            })
            .expect("the engine section names wasmtime's major version, 48");
        // Even under this engine's own key, the cache compiles anew and replaces it.
        let path = dir
            .path()
            .join(format!("{}.cwasm", ModuleCache::key(&engine, &bytes)));
        std::fs::write(&path, &artifact).unwrap();
        let module = ModuleCache::new(Some(dir.path().into()))
            .get_or_compile(&engine, &bytes)
            .unwrap();
        assert!(module.get_export("answer").is_some());
        assert_ne!(std::fs::read(&path).unwrap(), artifact);
    }

    #[test]
    fn the_key_depends_on_the_module_and_the_engine_configuration() {
        let bytes = wat::parse_str(WAT).unwrap();
        let other = wat::parse_str(r#"(module (func (export "answer") (result i32) i32.const 7))"#)
            .unwrap();
        let plain = engine();
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let fueled = wasmtime::Engine::new(&config).unwrap();
        assert_ne!(
            ModuleCache::key(&plain, &bytes),
            ModuleCache::key(&plain, &other)
        );
        assert_ne!(
            ModuleCache::key(&plain, &bytes),
            ModuleCache::key(&fueled, &bytes)
        );
        assert_eq!(
            ModuleCache::key(&plain, &bytes),
            ModuleCache::key(&engine(), &bytes)
        );
    }
}
