//! The two ways a connector's configuration goes wrong: a bad `plugin.json`,
//! or user values that do not fit it.

use thiserror::Error;

/// `plugin.json` itself is malformed. The message names the key or config field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ManifestError {
    #[error("plugin.json is not valid JSON: {0}")]
    Json(String),
    #[error("plugin.json must be a JSON object")]
    NotAnObject,
    #[error("plugin.json: \"{key}\" {reason}")]
    Key { key: &'static str, reason: String },
    #[error("plugin.json: {field}: {reason}")]
    Field { field: String, reason: String },
}

/// A user's config values do not fit the manifest. The message names the field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config field \"{key}\" is required but has no value")]
    Missing { key: String },
    #[error("config field \"{key}\": {reason}")]
    Invalid { key: String, reason: String },
    #[error("config field \"{key}\" is not declared in plugin.json (declared: {declared})")]
    Undeclared { key: String, declared: String },
}
