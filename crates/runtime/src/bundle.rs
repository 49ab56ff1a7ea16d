//! The bundle format and its admission.
//!
//! A bundle comes in two kinds ([`BundleKind`]), both carrying a
//! `sandpipe.manifest` custom section ([`BundleManifest`]) and exporting
//! `sandpipe_start`:
//! - a **script** bundle (JavaScript) is a small wasm module: it imports the
//!   plugin's `memory`, `sandpipe_reserve` and `sandpipe_load`, holds the
//!   connector's QuickJS bytecode as a passive data segment, and is linked
//!   into a plugin instance;
//! - a **standalone** bundle (a connector written in Rust, or any language
//!   that targets wasm32-wasip1) is a whole module with its own memory that
//!   exports the guest ABI the plugin exports (`memory`, `sandpipe_reserve`,
//!   `sandpipe_call`) itself, and imports only the host functions and the
//!   WASI preview 1 functions the plugin imports ([`STANDALONE_WASI`]).
//!
//! Invariant: a bundle is hostile until admitted, and admission is the only
//! way to get a [`Bundle`]. It checks size, manifest, ABI version, imports and
//! definitions before the module is compiled; the bytecode itself stays
//! untrusted and only ever runs inside that connector's own instance.

use crate::host::StoreData;
use sandpipe_abi::{
    ABI_VERSION, BUNDLE_ENTRY, HOST_MODULE, MANIFEST_SECTION, PLUGIN_MODULE, export, import,
};
use sandpipe_manifest::{Manifest, ManifestError};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use wasmparser::{Parser, Payload, TypeRef};
use wasmtime::InstancePre;

/// Largest bundle accepted (design.md).
pub const MAX_BUNDLE_SIZE: usize = 4 << 20;
/// Largest manifest section accepted.
pub const MAX_MANIFEST_SECTION: usize = 256 << 10;
/// The plugin exports a bundle may import (all from [`PLUGIN_MODULE`]).
pub const BUNDLE_IMPORTS: [&str; 3] = [export::MEMORY, export::RESERVE, export::LOAD];
/// WASI's preview 1 import module.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// The WASI preview 1 functions a standalone bundle may import: exactly the
/// ones the plugin imports (a unit test holds the two lists equal), answered
/// by the same capability-less WASI context (no files, environment,
/// arguments, sockets or inherited stdio; `random_get` from the host's CSPRNG).
pub const STANDALONE_WASI: [&str; 9] = [
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_seek",
    "fd_write",
    "proc_exit",
    "random_get",
];
/// The host functions a standalone bundle may import (all from [`HOST_MODULE`]).
pub const STANDALONE_HOST_IMPORTS: [&str; 3] = [import::LOG, import::REQUEST, import::RESPONSE];

/// What a bundle holds, and so how the host runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    /// QuickJS bytecode, linked into an instance of the plugin.
    #[default]
    Script,
    /// A whole module (its own memory) that exports the guest ABI itself.
    Standalone,
}

impl BundleKind {
    fn is_script(&self) -> bool {
        *self == BundleKind::Script
    }
}

/// The `sandpipe.manifest` section: JSON, written by the compiler, read here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// [`sandpipe_abi::ABI_VERSION`] the bundle was built for.
    pub abi_version: u32,
    /// The connector's main file, as named in error stacks.
    pub main: String,
    /// sha256 (hex) of the connector's sources as they were compiled.
    pub source_sha256: String,
    /// `plugin.json`, exactly as written.
    pub plugin_json: String,
    /// Script or standalone (absent for a script, so script bundles read
    /// and write the same bytes as before standalone ones existed).
    #[serde(default, skip_serializing_if = "BundleKind::is_script")]
    pub kind: BundleKind,
    /// The npm packages bundled from `node_modules`, as `name@version`
    /// (absent when there are none, so older bundles read the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
}

impl BundleManifest {
    /// The section's bytes (deterministic: fixed field order, no whitespace).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a BundleManifest always serialises")
    }

    /// Parses section bytes.
    pub fn decode(bytes: &[u8]) -> Result<BundleManifest, AdmissionError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            AdmissionError::Manifest(format!("the {MANIFEST_SECTION} section is not UTF-8: {e}"))
        })?;
        serde_json::from_str(text).map_err(|e| {
            AdmissionError::Manifest(format!(
                "the {MANIFEST_SECTION} section is not a bundle manifest: {e}"
            ))
        })
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdmissionError {
    #[error("bundle is {size} bytes, over the {MAX_BUNDLE_SIZE}-byte limit")]
    TooLarge { size: usize },
    #[error("bundle is not a valid WebAssembly module: {0}")]
    Malformed(String),
    #[error("{0}")]
    Manifest(String),
    #[error("bundle has no {MANIFEST_SECTION} section (build it with `sandpipe build`)")]
    NoManifest,
    #[error(
        "bundle was built for ABI version {found}, this host speaks version {ABI_VERSION}: rebuild it with this sandpipe"
    )]
    AbiVersion { found: u32 },
    #[error("bundle's plugin.json: {0}")]
    PluginJson(#[from] ManifestError),
    #[error(
        "bundle imports {module:?}.{name:?}, which is not allowed (a bundle may import only {PLUGIN_MODULE}'s memory, sandpipe_reserve and sandpipe_load)"
    )]
    ForbiddenImport { module: String, name: String },
    #[error(
        "standalone bundle imports {module:?}.{name:?}, which is not allowed (a standalone bundle may import only {HOST_MODULE}'s log, request and response functions and the WASI preview 1 functions the plugin imports: {})",
        STANDALONE_WASI.join(", ")
    )]
    ForbiddenStandaloneImport { module: String, name: String },
    #[error("bundle defines {0}, which a bundle may not (it runs in the plugin's memory)")]
    ForbiddenDefinition(&'static str),
    #[error("standalone bundle {0}")]
    Standalone(String),
    #[error(
        "bundle imports {PLUGIN_MODULE}'s memory as {0}; a bundle must import it with no minimum, no maximum, 32-bit and unshared"
    )]
    MemoryImport(String),
    #[error("bundle does not export `{BUNDLE_ENTRY}`")]
    NoEntry,
    #[error("bundle failed to compile: {0}")]
    Compile(String),
}

/// An admitted bundle: checked, compiled, ready to instantiate.
#[derive(Clone)]
pub struct Bundle {
    pub(crate) module: wasmtime::Module,
    /// A standalone bundle, pre-linked against the host functions.
    pub(crate) standalone: Option<InstancePre<StoreData>>,
    section: BundleManifest,
    manifest: Manifest,
    sha256: String,
    size: usize,
    imports: Vec<(String, String)>,
    may_define_tasks: bool,
}

/// What every scheduled task's name starts with (`runEveryMinute`, …).
const TASK_NAME: &[u8] = b"runEvery";

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.manifest.name)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Bundle {
    /// The connector's parsed `plugin.json`.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The manifest section as stored in the bundle.
    pub fn section(&self) -> &BundleManifest {
        &self.section
    }
    /// sha256 (hex) of the bundle's bytes: its content address.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Script or standalone.
    pub fn kind(&self) -> BundleKind {
        self.section.kind
    }
    /// The `(module, name)` pairs it imports.
    pub fn imports(&self) -> &[(String, String)] {
        &self.imports
    }
    /// Whether the connector may define a scheduled task, known without
    /// running it: its bytes hold `runEvery` (a script's bytecode holds every
    /// name its code spells, escapes resolved; a standalone module's list of
    /// the functions it defines is in its data; only a name put together at
    /// run time from other pieces is not found).
    pub fn may_define_tasks(&self) -> bool {
        self.may_define_tasks
    }
}

/// `text` with every run of whitespace (newlines included) as one space: some
/// parser messages are pretty-printed, and a refusal is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the static checks find in a bundle, before compilation.
#[derive(Debug)]
pub struct Inspection {
    pub section: BundleManifest,
    pub manifest: Manifest,
    pub imports: Vec<(String, String)>,
}

/// What one pass over a module's sections found, before it is judged by kind.
#[derive(Default)]
struct Layout {
    imports: Vec<(String, String, TypeRef)>,
    memories: u32,
    tables: u32,
    start: bool,
    active_data: bool,
    active_elements: bool,
    exports: Vec<(String, wasmparser::ExternalKind)>,
    section: Option<BundleManifest>,
}

impl Layout {
    fn read(bytes: &[u8]) -> Result<Layout, AdmissionError> {
        let malformed =
            |e: wasmparser::BinaryReaderError| AdmissionError::Malformed(one_line(&e.to_string()));
        let mut layout = Layout::default();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(malformed)? {
                Payload::Version {
                    encoding: wasmparser::Encoding::Component,
                    ..
                } => {
                    return Err(AdmissionError::Malformed(
                        "a component, not a core module".into(),
                    ));
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(malformed)?;
                        layout.imports.push((
                            import.module.to_string(),
                            import.name.to_string(),
                            import.ty,
                        ));
                    }
                }
                Payload::MemorySection(reader) => layout.memories += reader.count(),
                Payload::TableSection(reader) => layout.tables += reader.count(),
                Payload::StartSection { .. } => layout.start = true,
                Payload::DataSection(reader) => {
                    for data in reader {
                        if let wasmparser::DataKind::Active { .. } = data.map_err(malformed)?.kind {
                            layout.active_data = true;
                        }
                    }
                }
                Payload::ElementSection(reader) => {
                    for element in reader {
                        if let wasmparser::ElementKind::Active { .. } =
                            element.map_err(malformed)?.kind
                        {
                            layout.active_elements = true;
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(malformed)?;
                        layout.exports.push((export.name.to_string(), export.kind));
                    }
                }
                Payload::CustomSection(custom) if custom.name() == MANIFEST_SECTION => {
                    if layout.section.is_some() {
                        return Err(AdmissionError::Manifest(format!(
                            "bundle has more than one {MANIFEST_SECTION} section"
                        )));
                    }
                    if custom.data().len() > MAX_MANIFEST_SECTION {
                        return Err(AdmissionError::Manifest(format!(
                            "the {MANIFEST_SECTION} section is {} bytes, over the {MAX_MANIFEST_SECTION}-byte limit",
                            custom.data().len()
                        )));
                    }
                    layout.section = Some(BundleManifest::decode(custom.data())?);
                }
                _ => {}
            }
        }
        Ok(layout)
    }

    fn exports_function(&self, name: &str) -> bool {
        self.exports
            .iter()
            .any(|(n, kind)| n == name && *kind == wasmparser::ExternalKind::Func)
    }

    /// A script bundle: plugin imports only, nothing of its own that would
    /// live in, or run in, the plugin's memory at instantiation.
    fn check_script(&self) -> Result<(), AdmissionError> {
        for (module, name, ty) in &self.imports {
            let allowed = module == PLUGIN_MODULE
                && BUNDLE_IMPORTS.contains(&name.as_str())
                && match name.as_str() {
                    export::MEMORY => matches!(ty, TypeRef::Memory(_)),
                    _ => matches!(ty, TypeRef::Func(_)),
                };
            if !allowed {
                return Err(AdmissionError::ForbiddenImport {
                    module: module.clone(),
                    name: name.clone(),
                });
            }
            // The plugin's memory satisfies only the type `sandpipe build` writes.
            if let TypeRef::Memory(ty) = ty
                && (ty.initial != 0 || ty.maximum.is_some() || ty.memory64 || ty.shared)
            {
                return Err(AdmissionError::MemoryImport(format!(
                    "{} pages minimum, maximum {:?}{}{}",
                    ty.initial,
                    ty.maximum,
                    if ty.memory64 { ", 64-bit" } else { "" },
                    if ty.shared { ", shared" } else { "" }
                )));
            }
        }
        if self.memories > 0 {
            return Err(AdmissionError::ForbiddenDefinition("a memory"));
        }
        if self.tables > 0 {
            return Err(AdmissionError::ForbiddenDefinition("a table"));
        }
        // Code that would run, or bytes that would land in the plugin's
        // memory, at instantiation, outside any call's limits.
        if self.start {
            return Err(AdmissionError::ForbiddenDefinition("a start function"));
        }
        if self.active_data {
            return Err(AdmissionError::ForbiddenDefinition(
                "an active data segment",
            ));
        }
        if self.active_elements {
            return Err(AdmissionError::ForbiddenDefinition(
                "an active element segment",
            ));
        }
        match self.exports_function(BUNDLE_ENTRY) {
            true => Ok(()),
            false => Err(AdmissionError::NoEntry),
        }
    }

    /// A standalone bundle: host functions and the plugin's WASI subset as
    /// imports, one memory of its own, exported with the guest ABI, and no
    /// start function. Its data and tables live in its own instance, so active
    /// segments are allowed (they are what a compiler writes); the function
    /// types of its exports are checked once it is compiled ([`check_exports`]).
    fn check_standalone(&self) -> Result<(), AdmissionError> {
        for (module, name, ty) in &self.imports {
            let allowed = matches!(ty, TypeRef::Func(_))
                && match module.as_str() {
                    HOST_MODULE => STANDALONE_HOST_IMPORTS.contains(&name.as_str()),
                    WASI_MODULE => STANDALONE_WASI.contains(&name.as_str()),
                    _ => false,
                };
            if !allowed {
                return Err(AdmissionError::ForbiddenStandaloneImport {
                    module: module.clone(),
                    name: name.clone(),
                });
            }
        }
        if self.memories != 1 {
            return Err(AdmissionError::Standalone(format!(
                "defines {} memories; it must define exactly one (and export it as `{}`)",
                self.memories,
                export::MEMORY
            )));
        }
        if self.start {
            return Err(AdmissionError::Standalone(
                "defines a start function, which would run outside any call".into(),
            ));
        }
        let memory_exported = self
            .exports
            .iter()
            .any(|(n, kind)| n == export::MEMORY && *kind == wasmparser::ExternalKind::Memory);
        if !memory_exported {
            return Err(AdmissionError::Standalone(format!(
                "does not export its memory as `{}`",
                export::MEMORY
            )));
        }
        if !self.exports_function(BUNDLE_ENTRY) {
            return Err(AdmissionError::NoEntry);
        }
        for name in [export::RESERVE, export::CALL] {
            if !self.exports_function(name) {
                return Err(AdmissionError::Standalone(format!(
                    "does not export the function `{name}`"
                )));
            }
        }
        Ok(())
    }
}

/// The function types a standalone bundle's exports must have: the plugin's.
pub(crate) fn check_exports(module: &wasmtime::Module) -> Result<(), AdmissionError> {
    use wasmtime::ValType::{I32, I64};
    let expected: [(&str, &[wasmtime::ValType], &[wasmtime::ValType]); 3] = [
        (export::RESERVE, &[I32], &[I32]),
        (export::CALL, &[I32, I32], &[I64]),
        (BUNDLE_ENTRY, &[], &[I64]),
    ];
    let shape = |types: &mut dyn Iterator<Item = wasmtime::ValType>| {
        types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    for (name, params, results) in expected {
        let Some(wasmtime::ExternType::Func(ty)) = module.get_export(name) else {
            return Err(AdmissionError::Standalone(format!(
                "does not export the function `{name}`"
            )));
        };
        let same = ty.params().len() == params.len()
            && ty.results().len() == results.len()
            && ty.params().zip(params).all(|(a, b)| a.matches(b))
            && ty.results().zip(results).all(|(a, b)| a.matches(b));
        if !same {
            return Err(AdmissionError::Standalone(format!(
                "exports `{name}` as ({}) -> ({}); the guest ABI wants ({}) -> ({})",
                shape(&mut ty.params()),
                shape(&mut ty.results()),
                shape(&mut params.iter().cloned()),
                shape(&mut results.iter().cloned()),
            )));
        }
    }
    Ok(())
}

/// The static checks of admission: size, structure, manifest section, ABI
/// version, then imports, definitions and exports by the bundle's kind.
/// Does not compile anything.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, AdmissionError> {
    if bytes.len() > MAX_BUNDLE_SIZE {
        return Err(AdmissionError::TooLarge { size: bytes.len() });
    }
    let layout = Layout::read(bytes)?;
    let Some(section) = layout.section.clone() else {
        // Without a section the kind is unknown: a module that is no script
        // bundle either is refused for what it has, as before kinds existed.
        return Err(match layout.check_script() {
            Ok(()) | Err(AdmissionError::NoEntry) => AdmissionError::NoManifest,
            Err(e) => e,
        });
    };
    if section.abi_version != ABI_VERSION {
        return Err(AdmissionError::AbiVersion {
            found: section.abi_version,
        });
    }
    match section.kind {
        BundleKind::Script => layout.check_script()?,
        BundleKind::Standalone => layout.check_standalone()?,
    }
    let manifest = Manifest::parse(&section.plugin_json)?;
    let imports = layout
        .imports
        .into_iter()
        .map(|(module, name, _)| (module, name))
        .collect();
    Ok(Inspection {
        section,
        manifest,
        imports,
    })
}

/// Admission proper: [`inspect`], then compile through the cache.
/// A standalone bundle is also checked for its exports' types and linked
/// against the host functions (`link`), which checks its imports' types.
pub(crate) fn admit(
    bytes: &[u8],
    compile: impl FnOnce(&[u8]) -> wasmtime::Result<wasmtime::Module>,
    link: impl FnOnce(&wasmtime::Module) -> wasmtime::Result<InstancePre<StoreData>>,
) -> Result<Bundle, AdmissionError> {
    let Inspection {
        section,
        manifest,
        imports,
    } = inspect(bytes)?;
    let module =
        compile(bytes).map_err(|e| AdmissionError::Compile(one_line(&format!("{e:#}"))))?;
    let standalone = match section.kind {
        BundleKind::Script => None,
        BundleKind::Standalone => {
            check_exports(&module)?;
            let pre = link(&module).map_err(|e| {
                AdmissionError::Standalone(format!(
                    "does not link against the host: {}",
                    one_line(&format!("{e:#}"))
                ))
            })?;
            Some(pre)
        }
    };
    use sha2::Digest;
    let may_define_tasks = bytes
        .windows(TASK_NAME.len())
        .any(|window| window == TASK_NAME);
    Ok(Bundle {
        module,
        standalone,
        may_define_tasks,
        section,
        manifest,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        size: bytes.len(),
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_bundles_may_import_exactly_the_wasi_functions_the_plugin_imports() {
        let mut plugin_wasi = Vec::new();
        for payload in Parser::new(0).parse_all(crate::plugin::PLUGIN_WASM) {
            if let Payload::ImportSection(reader) = payload.unwrap() {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if import.module == WASI_MODULE {
                        plugin_wasi.push(import.name.to_string());
                    }
                }
            }
        }
        plugin_wasi.sort();
        assert_eq!(plugin_wasi, STANDALONE_WASI);
    }

    #[test]
    fn a_script_bundles_section_is_written_without_a_kind() {
        let section = BundleManifest {
            abi_version: ABI_VERSION,
            main: "index.js".into(),
            source_sha256: String::new(),
            plugin_json: "{}".into(),
            modules: Vec::new(),
            kind: BundleKind::Script,
        };
        let text = String::from_utf8(section.encode()).unwrap();
        assert!(!text.contains("kind"), "{text}");
        let standalone = BundleManifest {
            kind: BundleKind::Standalone,
            ..section
        };
        let text = String::from_utf8(standalone.encode()).unwrap();
        assert!(text.ends_with(r#","kind":"standalone"}"#), "{text}");
        assert_eq!(BundleManifest::decode(text.as_bytes()).unwrap(), standalone);
    }
}
