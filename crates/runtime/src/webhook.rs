//! The HTTP requests `composeWebhook` returns: checked, with PostHog's defaults
//! (`method` POST, `Content-Type: application/json`).

use serde::Serialize;
use serde_json::{Map, Value};

/// Why what `composeWebhook` returned is not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhook {
    #[error("composeWebhook returned a request without a url")]
    NoUrl,
    #[error("composeWebhook returned a method that is not a string, or an empty one")]
    Method,
    /// Forbidden in `fetch` (it throws for them), as in the delivery here.
    #[error("composeWebhook returned the method {0}, which fetch forbids (CONNECT, TRACE, TRACK)")]
    ForbiddenMethod(String),
    #[error("composeWebhook returned headers that are not an object")]
    Headers,
    #[error("composeWebhook returned a body that is not a string (use JSON.stringify)")]
    Body,
    /// Not an HTTP token (Node's `fetch` throws for it too).
    #[error("composeWebhook returned the method {0:?}, which is not an HTTP method")]
    MethodName(String),
    #[error("composeWebhook returned the header name {0:?}, which is not an HTTP header name")]
    HeaderName(String),
    /// A carriage return, line feed, NUL or other control character, or a
    /// character beyond U+00FF (Node refuses them too; up to U+00FF it sends
    /// a character as its Latin-1 byte, as [`header_value`] does).
    #[error(
        "composeWebhook returned a value for the header {0:?} with a character a header may not hold (a control character, or one beyond U+00FF)"
    )]
    HeaderValue(String),
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
        if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(InvalidWebhook::MethodName(method));
        }
        if matches!(method.as_str(), "CONNECT" | "TRACE" | "TRACK") {
            return Err(InvalidWebhook::ForbiddenMethod(method));
        }
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
        for (name, value) in &headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(InvalidWebhook::HeaderName(name.clone()));
            }
            if header_value(value.as_str().unwrap_or_default()).is_none() {
                return Err(InvalidWebhook::HeaderValue(name.clone()));
            }
        }
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

/// `text` as the bytes a header value goes out as, Node's way: each
/// character up to U+00FF as its Latin-1 byte (`é` is the byte 0xE9), tab
/// and visible characters only; `None` for a control character or one
/// beyond U+00FF, which Node refuses too. Webhook deliveries and `fetch`
/// both send header values through it.
pub fn header_value(text: &str) -> Option<reqwest::header::HeaderValue> {
    let bytes = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()?;
    reqwest::header::HeaderValue::from_bytes(&bytes).ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn composed(result: Value) -> Result<WebhookRequest, String> {
        let Value::Object(result) = result else {
            unreachable!()
        };
        WebhookRequest::from_result("Hook (0)", result).map_err(|e| e.to_string())
    }

    #[test]
    fn a_request_gets_posthogs_defaults() {
        let request = composed(json!({"url": "https://example.com/in", "body": "{}"})).unwrap();
        assert_eq!(
            (
                request.method.as_str(),
                request.headers,
                request.body.as_deref()
            ),
            (
                "POST",
                json!({"Content-Type": "application/json"})
                    .as_object()
                    .unwrap()
                    .clone(),
                Some("{}")
            )
        );
        let request = composed(
            json!({"url": "u", "method": "put", "headers": {"X-N": 5, "X-L": [1, null, "a"]}}),
        )
        .unwrap();
        assert_eq!(request.method, "PUT");
        assert_eq!(
            Value::Object(request.headers),
            json!({"X-N": "5", "X-L": "1,,a"})
        );
    }

    #[test]
    fn what_is_not_a_request_is_named_on_one_line() {
        for (result, error) in [
            (
                json!({"body": "x"}),
                "composeWebhook returned a request without a url",
            ),
            (
                json!({"url": "u", "method": 5}),
                "composeWebhook returned a method that is not a string, or an empty one",
            ),
            (
                json!({"url": "u", "method": ""}),
                "composeWebhook returned a method that is not a string, or an empty one",
            ),
            (
                json!({"url": "u", "method": "connect"}),
                "composeWebhook returned the method CONNECT, which fetch forbids (CONNECT, TRACE, TRACK)",
            ),
            (
                json!({"url": "u", "headers": "x"}),
                "composeWebhook returned headers that are not an object",
            ),
            (
                json!({"url": "u", "body": {}}),
                "composeWebhook returned a body that is not a string (use JSON.stringify)",
            ),
            (
                json!({"url": "u", "method": "GET\r\nX: y"}),
                r#"composeWebhook returned the method "GET\r\nX: Y", which is not an HTTP method"#,
            ),
            (
                json!({"url": "u", "headers": {"X-Bad\r\nInjected": "1"}}),
                r#"composeWebhook returned the header name "X-Bad\r\nInjected", which is not an HTTP header name"#,
            ),
            (
                json!({"url": "u", "headers": {"X-Token": "a\r\nInjected: 1"}}),
                r#"composeWebhook returned a value for the header "X-Token" with a character a header may not hold (a control character, or one beyond U+00FF)"#,
            ),
            (
                json!({"url": "u", "headers": {"X-Nul": "a\u{0}b"}}),
                r#"composeWebhook returned a value for the header "X-Nul" with a character a header may not hold (a control character, or one beyond U+00FF)"#,
            ),
            (
                json!({"url": "u", "headers": {"X-Name": "Zoë ☃"}}),
                r#"composeWebhook returned a value for the header "X-Name" with a character a header may not hold (a control character, or one beyond U+00FF)"#,
            ),
        ] {
            assert_eq!(composed(result).unwrap_err(), error);
        }
    }

    #[test]
    fn header_values_go_out_as_node_sends_them() {
        // Up to U+00FF a character is its Latin-1 byte.
        assert_eq!(header_value("Zoë").unwrap().as_bytes(), b"Zo\xeb");
        assert_eq!(header_value("a\tb ~").unwrap().as_bytes(), b"a\tb ~");
        assert!(header_value("Zoë").is_some_and(|v| v.to_str().is_err()));
        for refused in ["\u{100}", "☃", "a\r\nb", "\u{7f}", "\u{0}"] {
            assert!(header_value(refused).is_none(), "{refused:?}");
        }
        assert!(composed(json!({"url": "u", "headers": {"X-Name": "Zoë"}})).is_ok());
    }
}
