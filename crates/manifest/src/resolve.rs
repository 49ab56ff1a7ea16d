//! Resolving a user's config values against the manifest: defaults, required
//! fields, choices, JSON checks, secrets. Values are otherwise passed through
//! exactly as given (PostHog connectors parse numbers and JSON themselves).

use crate::error::ConfigError;
use crate::field::{Condition, FieldType};
use crate::manifest::{Manifest, kind_of};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// What a connector instance is given: `meta.config`, the attachment values,
/// and which keys are secret (never shown in responses or logs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedConfig {
    /// `meta.config`: every non-attachment field that has a value.
    pub config: Map<String, Value>,
    /// Values of `attachment` fields, as the user gave them (e.g. a file path).
    pub attachments: Map<String, Value>,
    /// Keys of `secret` fields.
    pub secrets: BTreeSet<String>,
}

/// A value that counts as "not given": absent, `null` or `""` (PostHog's UI
/// stores an emptied field as an empty string).
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn holds(condition: &Condition, values: &Map<String, Value>) -> bool {
    let actual = values.get(&condition.key);
    match &condition.value {
        None => !is_empty(actual),
        Some(expected) => actual == Some(expected),
    }
}

impl Manifest {
    /// Resolves `user` (the values from a chain file or the API) against this manifest.
    pub fn resolve_config(&self, user: &Map<String, Value>) -> Result<ResolvedConfig, ConfigError> {
        self.resolve_config_all(user)
            .map_err(|mut errors| errors.remove(0))
    }

    /// [`Manifest::resolve_config`], with every error rather than the first
    /// (never an empty list).
    pub fn resolve_config_all(
        &self,
        user: &Map<String, Value>,
    ) -> Result<ResolvedConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        for key in user.keys().filter(|key| self.field(key).is_none()) {
            let declared: Vec<String> = self
                .fields()
                .map(|f| f.key.escape_debug().to_string())
                .collect();
            errors.push(ConfigError::Undeclared {
                key: key.clone(),
                declared: if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                },
            });
        }
        // Values with defaults applied, which `required_if` conditions look at.
        let mut values = Map::new();
        for field in self.fields() {
            let given = user.get(&field.key).filter(|v| !v.is_null());
            if let Some(value) = given.or(field.default.as_ref()) {
                values.insert(field.key.clone(), value.clone());
            }
        }
        let mut resolved = ResolvedConfig::default();
        for field in self.fields() {
            let value = values.get(&field.key);
            let required = field.required
                || (!field.required_if.is_empty()
                    && field.required_if.iter().all(|c| holds(c, &values)));
            if is_empty(value) {
                if required {
                    errors.push(ConfigError::Missing {
                        key: field.key.clone(),
                    });
                    continue;
                }
                if value.is_none() {
                    continue;
                }
            }
            let Some(value) = value else { continue };
            let invalid = |reason: String| ConfigError::Invalid {
                key: field.key.clone(),
                reason,
            };
            let refused = match field.kind {
                FieldType::Choice => match value.as_str() {
                    Some(choice) if field.choices.iter().any(|c| c == choice) => None,
                    Some("") => None,
                    _ => {
                        let choices: Vec<String> =
                            field.choices.iter().map(|c| format!("{c:?}")).collect();
                        Some(invalid(format!(
                            "{value} is not one of {}",
                            choices.join(", ")
                        )))
                    }
                },
                FieldType::Json => match value {
                    Value::String(text) if !text.is_empty() => serde_json::from_str::<Value>(text)
                        .err()
                        .map(|e| invalid(format!("not valid JSON: {e}"))),
                    _ => None,
                },
                FieldType::Attachment => (!matches!(value, Value::String(_) | Value::Object(_)))
                    .then(|| {
                        invalid(format!(
                            "an attachment must be a file path or an object, not {}",
                            kind_of(value)
                        ))
                    }),
                // PostHog's UI stores strings: anything else a user gives would
                // reach the connector as a value its code does not expect (a
                // plugin's own default is its author's choice).
                FieldType::String => (user.get(&field.key) == Some(value) && !value.is_string())
                    .then(|| {
                        invalid(format!(
                            "must be a string (config values are text, as in PostHog), not {}",
                            kind_of(value)
                        ))
                    }),
            };
            // Secrets are masked wherever their text appears in what the service
            // answers or logs: a very short one would mask ordinary text.
            let refused = refused.or_else(|| {
                let short = field.secret
                    && value
                        .as_str()
                        .is_some_and(|text| (1..MIN_SECRET_CHARS).contains(&text.chars().count()));
                short.then(|| {
                    invalid(format!(
                        "a secret must be at least {MIN_SECRET_CHARS} characters (it is masked wherever its text appears in logs and answers)"
                    ))
                })
            });
            if let Some(error) = refused {
                errors.push(error);
                continue;
            }
            if field.secret {
                resolved.secrets.insert(field.key.clone());
            }
            let target = if field.kind == FieldType::Attachment {
                &mut resolved.attachments
            } else {
                &mut resolved.config
            };
            target.insert(field.key.clone(), value.clone());
        }
        if errors.is_empty() {
            Ok(resolved)
        } else {
            Err(errors)
        }
    }
}

/// What replaces a secret value wherever config is shown.
pub const REDACTED: &str = "**********";

/// The fewest characters a secret config value may have.
pub const MIN_SECRET_CHARS: usize = 4;

impl ResolvedConfig {
    /// `meta.config` with every secret value replaced by [`REDACTED`].
    pub fn redacted(&self) -> Map<String, Value> {
        self.config
            .iter()
            .map(|(key, value)| {
                let shown = if self.secrets.contains(key) {
                    Value::from(REDACTED)
                } else {
                    value.clone()
                };
                (key.clone(), shown)
            })
            .collect()
    }
}
