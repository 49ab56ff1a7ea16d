//! One entry of `plugin.json`'s `config` list: a field the user fills in, or a
//! markdown block shown between fields.

use serde_json::Value;

/// The kinds of value a config field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Passed to the connector exactly as given (PostHog's UI stores strings).
    String,
    /// Must be JSON: a string is checked to parse; the connector gets what the user gave.
    Json,
    /// A file; goes to `meta.attachments`, not `meta.config`.
    Attachment,
    /// One of `choices`.
    Choice,
}

impl FieldType {
    pub(crate) fn parse(name: &str) -> Option<FieldType> {
        match name {
            "string" => Some(FieldType::String),
            "json" => Some(FieldType::Json),
            "attachment" => Some(FieldType::Attachment),
            "choice" => Some(FieldType::Choice),
            _ => None,
        }
    }

    /// The name `plugin.json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Json => "json",
            FieldType::Attachment => "attachment",
            FieldType::Choice => "choice",
        }
    }
}

/// A `required_if` / `visible_if` condition: holds when the config value of
/// `key` equals `value`, or, with no value, when `key` has a non-empty value.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub key: String,
    pub value: Option<Value>,
}

/// A config field the user fills in.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    pub key: String,
    pub name: Option<String>,
    pub kind: FieldType,
    pub default: Option<Value>,
    pub hint: Option<String>,
    pub markdown: Option<String>,
    pub required: bool,
    pub secret: bool,
    pub choices: Vec<String>,
    pub required_if: Vec<Condition>,
    pub visible_if: Vec<Condition>,
}

/// An entry of the `config` list.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEntry {
    Field(Box<ConfigField>),
    /// Text shown to the user; holds no value.
    Markdown(String),
}
