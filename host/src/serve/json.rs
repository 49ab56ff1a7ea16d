//! The service's JSON bodies: read with serde_json (exact numbers, as the
//! workspace's serde_json reads them), written with JavaScript's numbers
//! (`sandpipe_runtime::json`), so an event leaves the service as Node writes
//! it. A body is JSON when it says so (`Content-Type: application/json` or
//! `…+json`) or says nothing; a refused body is an [`ApiError`] that says what
//! to send.

use super::events::Item;
use super::http::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON request or response body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Whether a `Content-Type` names JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body(request, state).await?;
        parse(&bytes).map(Json)
    }
}

/// An events request's body: one event, or a list whose items are read one
/// by one when the list as a whole is not JSON sandpipe can carry (an item
/// holding half of a surrogate pair or a number beyond a double), so that
/// item fails alone ([`Item`]) and the others run.
#[derive(Debug)]
pub enum EventsBody {
    One(Value),
    List(Vec<Item>),
}

impl EventsBody {
    /// Its items: the list's, or the one event.
    pub fn items(self) -> Vec<Item> {
        match self {
            EventsBody::One(event) => vec![Ok(event)],
            EventsBody::List(items) => items,
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for EventsBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body(request, state).await?;
        match parse::<Value>(&bytes) {
            Ok(Value::Array(events)) => Ok(EventsBody::List(events.into_iter().map(Ok).collect())),
            Ok(event) => Ok(EventsBody::One(event)),
            Err(refused) => match serde_json::from_slice::<Vec<&RawValue>>(&bytes) {
                // serde_json scans what it does not read, and lets both through.
                Ok(items) => Ok(EventsBody::List(items.into_iter().map(item).collect())),
                Err(_) => Err(refused),
            },
        }
    }
}

/// One item of a list, as JSON or as why it is not JSON sandpipe can carry
/// (the line and column in the item's own text, as the chain reports them).
fn item(text: &RawValue) -> Item {
    serde_json::from_str(text.get()).map_err(|error| {
        format!(
            "invalid JSON: {}",
            sandpipe_runtime::json::explained(&error)
        )
    })
}

/// A request's body, when it says it is JSON or says nothing.
async fn body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(given) = request.headers().get(header::CONTENT_TYPE) {
        let given = given.to_str().unwrap_or("");
        if !is_json(given) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body must be JSON: send it with Content-Type: application/json (got {given:?})"
                ),
            ));
        }
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            super::listen::body_error(rejection, || {
                format!(
                    "the body is over the {}-byte limit of a request; send less per request (a list of events in smaller lists)",
                    super::api::MAX_BODY - 1
                )
            })
        })
}

/// `bytes` as a `T`: 400 when they are not JSON, 422 when the JSON is not
/// what the route takes.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is empty: send a JSON document (the routes' bodies are in GET /v1/openapi.json)",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the body is JSON but not what this route takes: {error} (see GET /v1/openapi.json)"
            ),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not valid JSON: {}",
                sandpipe_runtime::json::explained(&error)
            ),
        ),
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match sandpipe_runtime::json::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}
