//! Parsing and validating `plugin.json`.

use crate::error::ManifestError;
use crate::field::{Condition, ConfigEntry, ConfigField, FieldType};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// A parsed `plugin.json`. Keys it does not know are tolerated and ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub description: Option<String>,
    pub url: Option<String>,
    pub icon: Option<String>,
    /// The main file, relative to the connector directory.
    pub main: Option<String>,
    pub posthog_version: Option<String>,
    pub stateless: Option<bool>,
    pub config: Vec<ConfigEntry>,
}

impl Manifest {
    /// Parses and validates the text of a `plugin.json`.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ManifestError::Json(e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(ManifestError::NotAnObject);
        };
        Manifest::from_object(&object)
    }

    fn from_object(object: &Map<String, Value>) -> Result<Manifest, ManifestError> {
        let name = optional_string(object, "name")?.ok_or(ManifestError::Key {
            key: "name",
            reason: "is missing".into(),
        })?;
        if name.trim().is_empty() {
            return Err(ManifestError::Key {
                key: "name",
                reason: "is empty".into(),
            });
        }
        let stateless = match object.get("stateless") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(ManifestError::Key {
                    key: "stateless",
                    reason: format!("must be true or false, not {}", kind_of(other)),
                });
            }
        };
        let config = match object.get("config") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(entries)) => parse_config(entries)?,
            Some(other) => {
                return Err(ManifestError::Key {
                    key: "config",
                    reason: format!("must be a list, not {}", kind_of(other)),
                });
            }
        };
        Ok(Manifest {
            name,
            description: optional_string(object, "description")?,
            url: optional_string(object, "url")?,
            icon: optional_string(object, "icon")?,
            main: optional_string(object, "main")?,
            posthog_version: optional_string(object, "posthogVersion")?,
            stateless,
            config,
        })
    }

    /// The fields that hold values, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = &ConfigField> {
        self.config.iter().filter_map(|entry| match entry {
            ConfigEntry::Field(field) => Some(field.as_ref()),
            ConfigEntry::Markdown(_) => None,
        })
    }

    /// The field with this key.
    pub fn field(&self, key: &str) -> Option<&ConfigField> {
        self.fields().find(|f| f.key == key)
    }
}

/// A JSON type name for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn optional_string(
    object: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, ManifestError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ManifestError::Key {
            key,
            reason: format!("must be a string, not {}", kind_of(other)),
        }),
    }
}

fn parse_config(entries: &[Value]) -> Result<Vec<ConfigEntry>, ManifestError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry = parse_entry(index, entry)?;
        if let ConfigEntry::Field(field) = &entry
            && !seen.insert(field.key.clone())
        {
            return Err(ManifestError::Field {
                field: format!("config[{index}] (key {:?})", field.key),
                reason: "duplicates the key of an earlier field".into(),
            });
        }
        out.push(entry);
    }
    Ok(out)
}

fn parse_entry(index: usize, entry: &Value) -> Result<ConfigEntry, ManifestError> {
    let at = |reason: String| ManifestError::Field {
        field: format!("config[{index}]"),
        reason,
    };
    let Value::Object(object) = entry else {
        return Err(at(format!("must be an object, not {}", kind_of(entry))));
    };
    let key = match object.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key.clone(),
        Some(Value::String(_)) => return Err(at("\"key\" is empty".into())),
        Some(other) if !other.is_null() => {
            return Err(at(format!(
                "\"key\" must be a string, not {}",
                kind_of(other)
            )));
        }
        _ => {
            // A markdown block carries no value; anything else needs a key.
            return match object.get("markdown") {
                Some(Value::String(text)) if object.get("type").is_none() => {
                    Ok(ConfigEntry::Markdown(text.clone()))
                }
                _ => Err(at(
                    "missing \"key\" (only a pure markdown block may omit it)".into(),
                )),
            };
        }
    };
    let field = |reason: String| ManifestError::Field {
        field: format!("config[{index}] (key {key:?})"),
        reason,
    };
    let text = |name: &str| -> Result<Option<String>, ManifestError> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(field(format!(
                "\"{name}\" must be a string, not {}",
                kind_of(other)
            ))),
        }
    };
    let flag = |name: &str| -> Result<bool, ManifestError> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(field(format!(
                "\"{name}\" must be true or false, not {}",
                kind_of(other)
            ))),
        }
    };
    let kind = match object.get("type") {
        None | Some(Value::Null) => FieldType::String,
        Some(Value::String(name)) => FieldType::parse(name).ok_or_else(|| {
            field(format!(
                "unknown type {name:?} (expected string, json, attachment or choice)"
            ))
        })?,
        Some(other) => {
            return Err(field(format!(
                "\"type\" must be a string, not {}",
                kind_of(other)
            )));
        }
    };
    let choices = match object.get("choices") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(field(format!(
                    "\"choices\" must hold strings, not {}",
                    kind_of(other)
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(field(format!(
                "\"choices\" must be a list, not {}",
                kind_of(other)
            )));
        }
    };
    let default = object.get("default").filter(|v| !v.is_null()).cloned();
    if kind == FieldType::Choice {
        if choices.is_empty() {
            return Err(field(
                "type \"choice\" needs a non-empty \"choices\" list".into(),
            ));
        }
        if let Some(default) = &default
            && !default
                .as_str()
                .is_some_and(|d| choices.iter().any(|c| c == d))
        {
            return Err(field(format!(
                "default {default} is not one of the choices"
            )));
        }
    }
    if kind == FieldType::Json
        && let Some(Value::String(default)) = &default
        && let Err(e) = serde_json::from_str::<Value>(default)
    {
        return Err(field(format!("default is not valid JSON: {e}")));
    }
    Ok(ConfigEntry::Field(Box::new(ConfigField {
        name: text("name")?,
        hint: text("hint")?,
        markdown: text("markdown")?,
        required: flag("required")?,
        secret: flag("secret")?,
        required_if: conditions(object.get("required_if"), "required_if").map_err(&field)?,
        visible_if: conditions(object.get("visible_if"), "visible_if").map_err(&field)?,
        key,
        kind,
        default,
        choices,
    })))
}

/// `[[key, value?], ...]`, as PostHog writes `required_if` and `visible_if`.
fn conditions(value: Option<&Value>, name: &str) -> Result<Vec<Condition>, String> {
    let bad = || format!("\"{name}\" must be a list of [key, value] pairs");
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(key)]) => Ok(Condition {
                    key: key.clone(),
                    value: None,
                }),
                Some([Value::String(key), value]) => Ok(Condition {
                    key: key.clone(),
                    value: (!value.is_null()).then(|| value.clone()),
                }),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}
