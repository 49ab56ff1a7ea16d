//! Parsing plugin.json: every key, tolerated extras, and one-line errors naming the field.

use sandpipe_manifest::{Condition, ConfigEntry, FieldType, Manifest};
use serde_json::json;

fn error_of(text: &str) -> String {
    Manifest::parse(text).unwrap_err().to_string()
}

#[test]
fn every_documented_key_is_read() {
    let manifest = Manifest::parse(
        r#"{
        "name": "GeoIP Enricher", "description": "Adds geo data", "url": "https://example.com/geoip",
        "icon": "logo.png", "main": "src/index.ts", "posthogVersion": ">= 1.25.0", "stateless": true,
        "config": [
            {"markdown": "Set-up"},
            {"key": "mode", "name": "Mode", "type": "choice", "choices": ["fast", "slow"], "default": "fast",
             "hint": "pick one", "markdown": "details", "required": true},
            {"key": "token", "type": "string", "secret": true, "required_if": [["mode", "slow"]], "visible_if": [["mode"]]},
            {"key": "schema", "type": "json"},
            {"key": "file", "type": "attachment"}
        ]
    }"#,
    )
    .unwrap();
    assert_eq!(manifest.name, "GeoIP Enricher");
    assert_eq!(manifest.description.as_deref(), Some("Adds geo data"));
    assert_eq!(manifest.url.as_deref(), Some("https://example.com/geoip"));
    assert_eq!(manifest.icon.as_deref(), Some("logo.png"));
    assert_eq!(manifest.main.as_deref(), Some("src/index.ts"));
    assert_eq!(manifest.posthog_version.as_deref(), Some(">= 1.25.0"));
    assert_eq!(manifest.stateless, Some(true));
    assert_eq!(manifest.config[0], ConfigEntry::Markdown("Set-up".into()));
    let mode = manifest.field("mode").unwrap();
    assert_eq!(mode.kind, FieldType::Choice);
    assert_eq!(mode.choices, ["fast", "slow"]);
    assert_eq!(mode.default, Some(json!("fast")));
    assert_eq!(mode.name.as_deref(), Some("Mode"));
    assert_eq!(mode.hint.as_deref(), Some("pick one"));
    assert_eq!(mode.markdown.as_deref(), Some("details"));
    assert!(mode.required && !mode.secret);
    let token = manifest.field("token").unwrap();
    assert!(token.secret);
    assert_eq!(
        token.required_if,
        [Condition {
            key: "mode".into(),
            value: Some(json!("slow"))
        }]
    );
    assert_eq!(
        token.visible_if,
        [Condition {
            key: "mode".into(),
            value: None
        }]
    );
    assert_eq!(manifest.field("schema").unwrap().kind, FieldType::Json);
    assert_eq!(manifest.field("file").unwrap().kind, FieldType::Attachment);
    assert_eq!(manifest.fields().count(), 4);
}

#[test]
fn unknown_keys_are_tolerated_and_type_defaults_to_string() {
    let manifest = Manifest::parse(
        r#"{"name": "x", "future": {"a": 1}, "config": [{"key": "k", "order": 3, "templating": false}]}"#,
    )
    .unwrap();
    assert_eq!(manifest.field("k").unwrap().kind, FieldType::String);
}

#[test]
fn bad_json_is_reported_with_its_position() {
    assert_eq!(
        error_of("{\"name\": \"x\",\n}"),
        "not valid JSON: trailing comma at line 2 column 1"
    );
}

#[test]
fn unknown_type_names_the_field() {
    assert_eq!(
        error_of(r#"{"name": "x", "config": [{"key": "limit", "type": "number"}]}"#),
        "config[0] (key \"limit\"): unknown type \"number\" (expected string, json, attachment or choice)"
    );
}

#[test]
fn choice_without_choices_names_the_field() {
    assert_eq!(
        error_of(
            r#"{"name": "x", "config": [{"markdown": "hi"}, {"key": "mode", "type": "choice"}]}"#
        ),
        "config[1] (key \"mode\"): type \"choice\" needs a non-empty \"choices\" list"
    );
}

#[test]
fn choice_default_must_be_a_choice() {
    assert_eq!(
        error_of(
            r#"{"name": "x", "config": [{"key": "m", "type": "choice", "choices": ["a"], "default": "b"}]}"#
        ),
        "config[0] (key \"m\"): default \"b\" is not one of the choices"
    );
}

#[test]
fn missing_key_names_the_entry() {
    assert_eq!(
        error_of(r#"{"name": "x", "config": [{"name": "Your name", "type": "string"}]}"#),
        "config[0]: missing \"key\" (only a pure markdown block may omit it)"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    assert_eq!(
        error_of(r#"{"name": "x", "config": [{"key": "a"}, {"key": "a"}]}"#),
        "config[1] (key \"a\"): duplicates the key of an earlier field"
    );
}

#[test]
fn top_level_shape_errors() {
    assert_eq!(error_of("[]"), "must be a JSON object");
    assert_eq!(error_of("{}"), "\"name\" is missing");
    assert_eq!(
        error_of(r#"{"name": 3}"#),
        "\"name\" must be a string, not a number"
    );
    assert_eq!(
        error_of(r#"{"name": "x", "config": {}}"#),
        "\"config\" must be a list, not an object"
    );
    assert_eq!(
        error_of(r#"{"name": "x", "config": [{"key": "a", "required": "yes"}]}"#),
        "config[0] (key \"a\"): \"required\" must be true or false, not a string"
    );
    assert_eq!(
        error_of(r#"{"name": "x", "config": [{"key": "a", "type": "json", "default": "{"}]}"#),
        "config[0] (key \"a\"): default is not valid JSON: EOF while parsing an object at line 1 column 1"
    );
}
