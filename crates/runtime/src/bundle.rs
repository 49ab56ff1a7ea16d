//! The bundle format and its admission.
//!
//! A bundle is a small wasm module: it imports the plugin's `memory`,
//! `sandpipe_reserve` and `sandpipe_load`, holds the connector's QuickJS
//! bytecode as a passive data segment, exports `sandpipe_start`, and carries
//! a `sandpipe.manifest` custom section ([`BundleManifest`]).
//!
//! Invariant: a bundle is hostile until admitted, and admission is the only
//! way to get a [`Bundle`]. It checks size, manifest, ABI version, imports and
//! definitions before the module is compiled; the bytecode itself stays
//! untrusted and only ever runs inside that connector's own instance.

use sandpipe_abi::{ABI_VERSION, BUNDLE_ENTRY, MANIFEST_SECTION, PLUGIN_MODULE, export};
use sandpipe_manifest::{Manifest, ManifestError};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use wasmparser::{Parser, Payload, TypeRef};

/// Largest bundle accepted (design.md).
pub const MAX_BUNDLE_SIZE: usize = 4 << 20;
/// Largest manifest section accepted.
pub const MAX_MANIFEST_SECTION: usize = 256 << 10;
/// The plugin exports a bundle may import (all from [`PLUGIN_MODULE`]).
pub const BUNDLE_IMPORTS: [&str; 3] = [export::MEMORY, export::RESERVE, export::LOAD];

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
    #[error("bundle defines {0}, which a bundle may not (it runs in the plugin's memory)")]
    ForbiddenDefinition(&'static str),
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
    section: BundleManifest,
    manifest: Manifest,
    sha256: String,
    size: usize,
    imports: Vec<(String, String)>,
}

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
    /// The `(module, name)` pairs it imports.
    pub fn imports(&self) -> &[(String, String)] {
        &self.imports
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

/// The static checks of admission: size, structure, manifest section, ABI
/// version, imports and definitions. Does not compile anything.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, AdmissionError> {
    if bytes.len() > MAX_BUNDLE_SIZE {
        return Err(AdmissionError::TooLarge { size: bytes.len() });
    }
    let malformed =
        |e: wasmparser::BinaryReaderError| AdmissionError::Malformed(one_line(&e.to_string()));
    let mut section = None;
    let mut imports = Vec::new();
    let mut has_entry = false;
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
                    let allowed = import.module == PLUGIN_MODULE
                        && BUNDLE_IMPORTS.contains(&import.name)
                        && match import.name {
                            export::MEMORY => matches!(import.ty, TypeRef::Memory(_)),
                            _ => matches!(import.ty, TypeRef::Func(_)),
                        };
                    if !allowed {
                        return Err(AdmissionError::ForbiddenImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    // The plugin's memory satisfies only the type `sandpipe build` writes.
                    if let TypeRef::Memory(ty) = import.ty
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
                    imports.push((import.module.to_string(), import.name.to_string()));
                }
            }
            Payload::MemorySection(reader) if reader.count() > 0 => {
                return Err(AdmissionError::ForbiddenDefinition("a memory"));
            }
            Payload::TableSection(reader) if reader.count() > 0 => {
                return Err(AdmissionError::ForbiddenDefinition("a table"));
            }
            // Code that would run, or bytes that would land in the plugin's
            // memory, at instantiation, outside any call's limits.
            Payload::StartSection { .. } => {
                return Err(AdmissionError::ForbiddenDefinition("a start function"));
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    if let wasmparser::DataKind::Active { .. } = data.map_err(malformed)?.kind {
                        return Err(AdmissionError::ForbiddenDefinition(
                            "an active data segment",
                        ));
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    if let wasmparser::ElementKind::Active { .. } = element.map_err(malformed)?.kind
                    {
                        return Err(AdmissionError::ForbiddenDefinition(
                            "an active element segment",
                        ));
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(malformed)?;
                    if export.name == BUNDLE_ENTRY && export.kind == wasmparser::ExternalKind::Func
                    {
                        has_entry = true;
                    }
                }
            }
            Payload::CustomSection(custom) if custom.name() == MANIFEST_SECTION => {
                if section.is_some() {
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
                section = Some(BundleManifest::decode(custom.data())?);
            }
            _ => {}
        }
    }
    let section = section.ok_or(AdmissionError::NoManifest)?;
    if section.abi_version != ABI_VERSION {
        return Err(AdmissionError::AbiVersion {
            found: section.abi_version,
        });
    }
    if !has_entry {
        return Err(AdmissionError::NoEntry);
    }
    let manifest = Manifest::parse(&section.plugin_json)?;
    Ok(Inspection {
        section,
        manifest,
        imports,
    })
}

/// Admission proper: [`inspect`], then compile through the cache.
pub(crate) fn admit(
    bytes: &[u8],
    compile: impl FnOnce(&[u8]) -> wasmtime::Result<wasmtime::Module>,
) -> Result<Bundle, AdmissionError> {
    let Inspection {
        section,
        manifest,
        imports,
    } = inspect(bytes)?;
    let module =
        compile(bytes).map_err(|e| AdmissionError::Compile(one_line(&format!("{e:#}"))))?;
    use sha2::Digest;
    Ok(Bundle {
        module,
        section,
        manifest,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        size: bytes.len(),
        imports,
    })
}
