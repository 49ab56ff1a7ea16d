//! Resolving user config values against plugin.json: one test per rule.

use sandpipe_manifest::{ConfigError, Manifest, REDACTED};
use serde_json::{Map, Value, json};

fn manifest() -> Manifest {
    Manifest::parse(
        r#"{"name": "t", "config": [
            {"markdown": "Intro"},
            {"key": "name", "type": "string", "default": "world"},
            {"key": "limit", "type": "string"},
            {"key": "mode", "type": "choice", "choices": ["drop", "keep"], "default": "keep"},
            {"key": "schema", "type": "json"},
            {"key": "api_key", "type": "string", "secret": true},
            {"key": "region", "type": "string", "required_if": [["mode", "drop"]]},
            {"key": "file", "type": "attachment"}
        ]}"#,
    )
    .unwrap()
}

fn values(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn resolve(value: Value) -> Result<Map<String, Value>, ConfigError> {
    manifest().resolve_config(&values(value)).map(|r| r.config)
}

#[test]
fn defaults_fill_missing_values() {
    assert_eq!(
        Value::Object(resolve(json!({})).unwrap()),
        json!({"name": "world", "mode": "keep"})
    );
}

#[test]
fn values_pass_through_exactly_as_given() {
    let config = resolve(json!({"name": "Ada", "limit": "10"})).unwrap();
    assert_eq!(config["name"], json!("Ada"));
    assert_eq!(config["limit"], json!("10"));
}

#[test]
fn a_string_field_refuses_other_types_and_every_error_is_reported() {
    let errors: Vec<String> = manifest()
        .resolve_config_all(&values(
            json!({"limit": 10, "name": ["a"], "mode": "x", "nope": 1}),
        ))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "config field \"nope\" is not declared in plugin.json (declared: name, limit, mode, schema, api_key, region, file)",
            "config field \"name\": must be a string (config values are text, as in PostHog), not a list",
            "config field \"limit\": must be a string (config values are text, as in PostHog), not a number",
            "config field \"mode\": \"x\" is not one of \"drop\", \"keep\"",
        ]
    );
    // The first error alone, as resolve_config gives it.
    assert_eq!(
        resolve(json!({"limit": 10, "name": ["a"]}))
            .unwrap_err()
            .to_string(),
        "config field \"name\": must be a string (config values are text, as in PostHog), not a list"
    );
}

#[test]
fn null_counts_as_not_given() {
    assert_eq!(
        resolve(json!({"name": null})).unwrap()["name"],
        json!("world")
    );
}

#[test]
fn required_field_without_value_is_an_error() {
    let manifest =
        Manifest::parse(r#"{"name": "t", "config": [{"key": "url", "required": true}]}"#).unwrap();
    for given in [json!({}), json!({"url": null}), json!({"url": ""})] {
        assert_eq!(
            manifest
                .resolve_config(&values(given))
                .unwrap_err()
                .to_string(),
            "config field \"url\" is required but has no value"
        );
    }
    let ok = manifest
        .resolve_config(&values(json!({"url": "https://x"})))
        .unwrap();
    assert_eq!(ok.config["url"], json!("https://x"));
}

#[test]
fn required_default_satisfies_required() {
    let manifest = Manifest::parse(
        r#"{"name": "t", "config": [{"key": "k", "required": true, "default": "d"}]}"#,
    )
    .unwrap();
    assert_eq!(
        manifest.resolve_config(&Map::new()).unwrap().config["k"],
        json!("d")
    );
}

#[test]
fn required_if_applies_only_when_its_condition_holds() {
    assert_eq!(
        resolve(json!({"mode": "drop"})).unwrap_err(),
        ConfigError::Missing {
            key: "region".into()
        }
    );
    assert!(resolve(json!({"mode": "keep"})).is_ok());
    assert_eq!(
        resolve(json!({"mode": "drop", "region": "eu"})).unwrap()["region"],
        json!("eu")
    );
}

#[test]
fn choice_must_be_one_of_choices() {
    assert_eq!(
        resolve(json!({"mode": "drop", "region": "eu"})).unwrap()["mode"],
        json!("drop")
    );
    assert_eq!(
        resolve(json!({"mode": "delete"})).unwrap_err().to_string(),
        "config field \"mode\": \"delete\" is not one of \"drop\", \"keep\""
    );
    assert_eq!(
        resolve(json!({"mode": 1})).unwrap_err().to_string(),
        "config field \"mode\": 1 is not one of \"drop\", \"keep\""
    );
}

#[test]
fn json_strings_must_parse_and_are_passed_as_given() {
    let config = resolve(json!({"schema": "{\"a\": 1}"})).unwrap();
    assert_eq!(config["schema"], json!("{\"a\": 1}"));
    let config = resolve(json!({"schema": {"a": 1}})).unwrap();
    assert_eq!(config["schema"], json!({"a": 1}));
    assert_eq!(
        resolve(json!({"schema": "{a: 1}"}))
            .unwrap_err()
            .to_string(),
        "config field \"schema\": not valid JSON: key must be a string at line 1 column 2"
    );
}

#[test]
fn secrets_are_marked_and_redacted() {
    let resolved = manifest()
        .resolve_config(&values(json!({"api_key": "s3cret"})))
        .unwrap();
    assert_eq!(resolved.config["api_key"], json!("s3cret"));
    assert!(resolved.secrets.contains("api_key"));
    let shown = resolved.redacted();
    assert_eq!(shown["api_key"], json!(REDACTED));
    assert_eq!(shown["name"], json!("world"));
    assert!(!serde_json::to_string(&shown).unwrap().contains("s3cret"));
    // Too short to mask without masking ordinary text; empty is no value.
    assert_eq!(
        resolve(json!({"api_key": "e1é"})).unwrap_err().to_string(),
        "config field \"api_key\": a secret must be at least 4 characters (it is masked wherever its text appears in logs and answers)"
    );
    assert!(resolve(json!({"api_key": "e1é!"})).is_ok());
    assert!(resolve(json!({"api_key": ""})).is_ok());
}

#[test]
fn attachments_go_to_their_own_map() {
    let resolved = manifest()
        .resolve_config(&values(json!({"file": "data.csv"})))
        .unwrap();
    assert_eq!(resolved.attachments["file"], json!("data.csv"));
    assert!(!resolved.config.contains_key("file"));
    assert_eq!(
        resolve(json!({"file": 3})).unwrap_err().to_string(),
        "config field \"file\": an attachment must be a file path or an object, not a number"
    );
}

#[test]
fn undeclared_keys_are_refused() {
    assert_eq!(
        resolve(json!({"nmae": "Ada"})).unwrap_err().to_string(),
        "config field \"nmae\" is not declared in plugin.json (declared: name, limit, mode, schema, api_key, region, file)"
    );
}
