//! CHAIN.json: `{"connectors": [{"id": "...", "path": "DIR or FILE.wasm", "config": {...}, "limits": {...}}]}`.
//! Paths are relative to the chain file. `limits` is the operator's override
//! of the defaults for that connector. `meta.storage` of each connector is
//! scoped to its `id` ([`crate::identity`]: by default the plugin's name), not
//! to the chain file's path or the connector's position. `fetch` is the operator's
//! fetch policy for it: `{"allow_hosts": [...], "allow_private": false,
//! "max_response_bytes": N, "timeout_ms": N}`; without it, fetch is refused.
//! `isolation` is the operator's isolation level for the chain: `"instance"`
//! (the default: an instance per connector) or `"shared"` (its JavaScript
//! connectors in one instance, each in its own world: SECURITY.md says what
//! that gives up).

use anyhow::{Context, bail};
use sandpipe_manifest::ResolvedConfig;
use sandpipe_runtime::{
    Bundle, Chain, ConnectorCache, ConnectorOptions, FetchPolicy, GeoIpDatabase, LogSink,
    OperatorLimits, Runtime, Storage,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    connectors: Vec<Entry>,
    #[serde(default)]
    isolation: Isolation,
}

/// How a chain's connectors are isolated from each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// Each connector in an instance of its own.
    #[default]
    Instance,
    /// The chain's JavaScript connectors in one instance, each in its own QuickJS context.
    Shared,
}

/// `"instance"` or `"shared"`; anything else (another string, a number, …)
/// is refused with what was expected.
impl<'de> Deserialize<'de> for Isolation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Isolation, D::Error> {
        struct Level;
        impl serde::de::Visitor<'_> for Level {
            type Value = Isolation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"the isolation level "instance" or "shared""#)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Isolation, E> {
                match text {
                    "instance" => Ok(Isolation::Instance),
                    "shared" => Ok(Isolation::Shared),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_str(Level)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The connector's stable identity (default: its plugin's name).
    #[serde(default)]
    id: Option<String>,
    path: PathBuf,
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default)]
    limits: OperatorLimits,
    #[serde(default)]
    fetch: FetchOverride,
}

/// The operator's fetch policy for a connector; by default it may fetch nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchOverride {
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    allow_private: bool,
    max_response_bytes: Option<usize>,
    timeout_ms: Option<u64>,
}

impl FetchOverride {
    fn policy(&self) -> FetchPolicy {
        let defaults = FetchPolicy::default();
        FetchPolicy {
            allow_hosts: self.allow_hosts.clone(),
            allow_private: self.allow_private,
            max_response: self.max_response_bytes.unwrap_or(defaults.max_response),
            timeout: self
                .timeout_ms
                .map_or(defaults.timeout, Duration::from_millis),
        }
    }
}

/// Loads a bundle from a `.wasm` file, or builds one from a connector directory.
fn load_bundle(runtime: &Runtime, path: &Path) -> anyhow::Result<Arc<Bundle>> {
    let bytes = if path.is_dir() {
        sandpipe_compiler::build(runtime, path)
            .map_err(|e| e.in_dir(path))?
            .bytes
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if path.extension().is_none_or(|extension| extension != "wasm")
            && !bytes.starts_with(b"\0asm")
        {
            anyhow::bail!(
                "{} is neither a connector directory nor a .wasm bundle (`path` names the directory with plugin.json, or a built bundle)",
                path.display()
            );
        }
        bytes
    };
    runtime
        .admit(bytes)
        .with_context(|| path.display().to_string())
}

/// Where `meta.storage` lives for a chain file unless `--storage` says otherwise.
pub fn default_storage(file: &Path) -> std::path::PathBuf {
    file.parent()
        .unwrap_or(Path::new("."))
        .join(".sandpipe")
        .join("storage.db")
}

/// A chain file's connectors, each admitted, configured and checked, from which
/// any number of chains can be made: every chain's instance of a configured
/// connector shares its `meta.cache` and `meta.storage`.
pub struct ChainPlan {
    connectors: Vec<Planned>,
    isolation: Isolation,
}

struct Planned {
    bundle: Arc<Bundle>,
    config: ResolvedConfig,
    options: ConnectorOptions,
    /// Where it is, for errors: `CHAIN.json: connector N (NAME)`.
    at: String,
}

impl ChainPlan {
    /// Runs the plan's chains at `isolation`, whatever the chain file says.
    pub fn isolate(&mut self, isolation: Isolation) {
        self.isolation = isolation;
    }

    /// The isolation level the plan's chains run at.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// A new chain of the plan's connectors (instances start on first call).
    pub fn chain(&self, runtime: &Runtime) -> anyhow::Result<Chain> {
        let connectors = self
            .connectors
            .iter()
            .enumerate()
            .map(|(position, planned)| {
                runtime
                    .connector(
                        planned.bundle.clone(),
                        position,
                        planned.config.clone(),
                        planned.options.clone(),
                    )
                    .with_context(|| planned.at.clone())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(match self.isolation {
            Isolation::Instance => Chain::new(connectors),
            Isolation::Shared => Chain::shared(connectors),
        })
    }
}

/// Reads the chain file and plans its connectors, config resolved and checked
/// before any event runs.
pub fn load(
    runtime: &Runtime,
    file: &Path,
    logs: Arc<dyn LogSink>,
    storage: Arc<dyn Storage>,
    geoip: Arc<GeoIpDatabase>,
) -> anyhow::Result<ChainPlan> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let chain: ChainFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a chain file", file.display()))?;
    if chain.connectors.is_empty() {
        bail!("{}: the chain has no connectors", file.display());
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let bundles = chain
        .connectors
        .iter()
        .enumerate()
        .map(|(position, entry)| {
            load_bundle(runtime, &base.join(&entry.path))
                .with_context(|| format!("{}: connector {position}", file.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ids = crate::identity::assign(
        chain
            .connectors
            .iter()
            .zip(&bundles)
            .map(|(entry, bundle)| (entry.id.as_deref(), bundle.manifest().name.as_str())),
    )
    .with_context(|| file.display().to_string())?;
    let mut connectors = Vec::with_capacity(chain.connectors.len());
    let isolation = chain.isolation;
    for (position, ((entry, bundle), id)) in chain
        .connectors
        .into_iter()
        .zip(bundles)
        .zip(ids)
        .enumerate()
    {
        let at = format!(
            "{}: connector {position} ({})",
            file.display(),
            bundle.manifest().name
        );
        // Every config error at once, as `serve` answers them, so one run shows all to fix.
        let mut config = bundle
            .manifest()
            .resolve_config_all(&entry.config)
            .map_err(|errors| {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{at}: {}", errors.join("; "))
            })?;
        config.attachments =
            crate::attachments::load(&config.attachments, base).with_context(|| at.clone())?;
        let limits = runtime
            .operator_limits(&entry.limits, |field| format!("limits.{field}"))
            .with_context(|| at.clone())?;
        let options = ConnectorOptions {
            limits,
            logs: logs.clone(),
            storage: Some((storage.clone(), crate::identity::scope(None, &id))),
            cache: Some(ConnectorCache::default()),
            geoip: Some(geoip.clone()),
            fetch: entry.fetch.policy(),
        };
        connectors.push(Planned {
            bundle,
            config,
            options,
            at,
        });
    }
    Ok(ChainPlan {
        connectors,
        isolation,
    })
}
