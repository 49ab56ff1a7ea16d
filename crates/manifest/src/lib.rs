//! `plugin.json`, the manifest of a PostHog-style connector, and the rules that
//! turn a user's config values into the `meta.config` a connector sees.
//!
//! ```
//! use sandpipe_manifest::Manifest;
//! use serde_json::json;
//!
//! let manifest = Manifest::parse(r#"{
//!     "name": "Hello",
//!     "config": [{ "key": "name", "name": "Your name", "type": "string", "default": "world" }]
//! }"#)?;
//! let resolved = manifest.resolve_config(json!({}).as_object().unwrap())?;
//! assert_eq!(resolved.config["name"], "world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Parsing tolerates keys it does not know (real manifests carry many) and
//! rejects what would make the connector misbehave: a config field without a
//! `key`, an unknown `type`, a `choice` without `choices`. Every error names the
//! field and the reason in one line.

mod error;
mod field;
mod manifest;
mod resolve;

pub use error::{ConfigError, ManifestError};
pub use field::{Condition, ConfigEntry, ConfigField, FieldType};
pub use manifest::Manifest;
pub use resolve::{REDACTED, ResolvedConfig};
