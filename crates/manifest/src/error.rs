//! The two ways a connector's configuration goes wrong: a bad `plugin.json`,
//! or user values that do not fit it.

use thiserror::Error;

/// `plugin.json` itself is malformed. The message names the key or config
/// field; the caller prefixes where the file is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("\"{key}\" {reason}")]
    Key { key: &'static str, reason: String },
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
}

/// A user's config values do not fit the manifest. The message names the field.
/// Names from the manifest or the user are shown escaped (`{:?}`), so every
/// message is one line whatever they contain.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config field {key:?} is required but has no value")]
    Missing { key: String },
    #[error("config field {key:?}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("config field {key:?} is not declared in plugin.json (declared: {declared})")]
    Undeclared { key: String, declared: String },
}

impl ConfigError {
    /// The config field the error is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Missing { key }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Undeclared { key, .. } => key,
        }
    }
}
