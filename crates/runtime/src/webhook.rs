//! The HTTP requests `composeWebhook` returns: checked, with PostHog's defaults
//! (`method` POST, `Content-Type: application/json`).

use serde::Serialize;
use serde_json::{Map, Value};

/// Why what `composeWebhook` returned is not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhook {
    #[error("composeWebhook returned a request without a url")]
    NoUrl,
    #[error("composeWebhook returned a method that is not a string")]
    Method,
    #[error("composeWebhook returned headers that are not an object")]
    Headers,
    #[error("composeWebhook returned a body that is not a string (use JSON.stringify)")]
    Body,
}

/// One request to deliver, as `sandpipe run --webhooks` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRequest {
    /// The connector that composed it, `"<name> (<position>)"`.
    pub connector: String,
    pub url: String,
    pub method: String,
    pub headers: Map<String, Value>,
    pub body: Option<String>,
}

impl WebhookRequest {
    /// Checks what `composeWebhook` returned and applies the defaults.
    pub fn from_result(
        connector: &str,
        result: Map<String, Value>,
    ) -> Result<WebhookRequest, InvalidWebhook> {
        let url = match result.get("url") {
            Some(Value::String(url)) if !url.is_empty() => url.clone(),
            _ => return Err(InvalidWebhook::NoUrl),
        };
        let method = match result.get("method") {
            None | Some(Value::Null) => "POST".to_string(),
            Some(Value::String(method)) if !method.is_empty() => method.to_ascii_uppercase(),
            Some(_) => return Err(InvalidWebhook::Method),
        };
        let headers = match result.get("headers") {
            None | Some(Value::Null) => {
                let mut headers = Map::new();
                headers.insert("Content-Type".into(), Value::from("application/json"));
                headers
            }
            Some(Value::Object(headers)) => headers
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(header_text(value))))
                .collect(),
            Some(_) => return Err(InvalidWebhook::Headers),
        };
        let body = match result.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(body)) => Some(body.clone()),
            Some(_) => return Err(InvalidWebhook::Body),
        };
        Ok(WebhookRequest {
            connector: connector.to_string(),
            url,
            method,
            headers,
            body,
        })
    }
}

/// A header value as `fetch` sends it (PostHog's plugin server handed the
/// headers to `fetch`, whose `Headers` takes JavaScript's `String(value)`):
/// `5` is `"5"`, `null` is `"null"`, `[1, null, "a"]` is `"1,,a"`, an object
/// `"[object Object]"`.
fn header_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(_) => {
            String::from_utf8(crate::json::to_vec(value).expect("a number serialises"))
                .expect("JSON text is UTF-8")
        }
        Value::Bool(flag) => flag.to_string(),
        Value::Null => "null".into(),
        // Array.prototype.join: null (and undefined) elements are empty.
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                item => header_text(item),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}
