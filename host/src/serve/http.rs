//! The service's HTTP layer under the routes: who a request is from ([`Bearer`], [`Caller`],
//! [`TeamAccess`], axum extractors), error responses ([`ApiError`], and the
//! status each domain error answers with), and running blocking work.

use super::auth::{self, Caller};
use super::chains::ChainError;
use super::events::EventsError;
use super::json::Json;
use super::state::AppState;
use super::store::StoreError;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sandpipe_runtime::services::storage::StorageError;
use serde_json::{Map, Value, json};

/// An error response: a status and a one-line message, as `{"error": message}`,
/// with what the message names for a program to read beside it (a 422 of a
/// chain adds `"connector"`, its position, and `"field"`, its config key, and
/// `"problems"`, every config error).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    names: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            names: Map::new(),
        }
    }

    /// Adds `key: value` to the body beside `"error"`.
    pub fn naming(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.names.insert(key.to_string(), value.into());
        self
    }

    /// A failure of the service itself: logged, and answered as a bare 500.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::from_iter([("error".to_string(), Value::String(self.message))]);
        body.extend(self.names);
        (self.status, Json(Value::Object(body))).into_response()
    }
}

impl ApiError {
    /// 503 with the reason: a server the service needs (its database, its
    /// cache) cannot be reached now; retrying later may succeed.
    pub fn unavailable(reason: impl std::fmt::Display) -> ApiError {
        tracing::warn!(%reason, "answering 503");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::TeamNameTaken(_) => ApiError::new(
                StatusCode::CONFLICT,
                format!("{error}; choose another name"),
            ),
            other if other.is_unavailable() => ApiError::unavailable(other),
            other => ApiError::internal(other),
        }
    }
}

impl From<ChainError> for ApiError {
    fn from(error: ChainError) -> ApiError {
        let message = error.to_string();
        match error {
            ChainError::NotUploaded { position, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                    .naming("connector", position)
            }
            // Every problem is in the message and, one by one, in `problems`
            // for a program; the first is also named at the top.
            ChainError::InvalidConfig(problems) => {
                let listed: Vec<Value> = problems
                    .iter()
                    .map(|problem| {
                        json!({
                            "connector": problem.position(),
                            "field": problem.field(),
                            "error": problem.reason(),
                        })
                    })
                    .collect();
                let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
                match problems.first() {
                    Some(first) => error
                        .naming("connector", first.position())
                        .naming("field", first.field())
                        .naming("problems", listed),
                    None => error,
                }
            }
            ChainError::Id(_) | ChainError::TooLong(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            ChainError::Store(store) if store.is_unavailable() => ApiError::unavailable(message),
            ChainError::Storage(StorageError::ServerUnavailable(_))
            | ChainError::Cache(sandpipe_runtime::services::cache::CacheError::Unavailable(_)) => {
                ApiError::unavailable(message)
            }
            ChainError::StoredBundle { .. }
            | ChainError::Store(_)
            | ChainError::Storage(_)
            | ChainError::Cache(_) => ApiError::internal(message),
        }
    }
}

impl From<EventsError> for ApiError {
    fn from(error: EventsError) -> ApiError {
        let status = match &error {
            EventsError::NotAnEvent { .. } | EventsError::TraceOfList => StatusCode::BAD_REQUEST,
            EventsError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EventsError::NoChain { .. } => StatusCode::CONFLICT,
            EventsError::TooManyWaiting { .. } => StatusCode::TOO_MANY_REQUESTS,
            EventsError::Store(store) if store.is_unavailable() => {
                return ApiError::unavailable(error);
            }
            EventsError::Storage(StorageError::ServerUnavailable(_))
            | EventsError::CacheUnavailable(_) => return ApiError::unavailable(error),
            EventsError::Store(_)
            | EventsError::Storage(_)
            | EventsError::Limits(_)
            | EventsError::BackgroundStopped
            | EventsError::Task(_) => return ApiError::internal(error),
        };
        ApiError::new(status, error.to_string())
    }
}

/// Runs blocking work (the store, the runtime) off the async threads, in
/// the request's span.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(ApiError::internal)?
}

/// The token of the request's `Authorization: Bearer …` header (401 without one).
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Bearer, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        auth::bearer(header)
            .map(|token| Bearer(token.to_string()))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))
    }
}

/// Who the request is from: the admin token (compared in constant time), or
/// a team's token (looked up by its hash in the store); 401 otherwise.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        if auth::matches(&token, &state.admin_hash) {
            return Ok(Caller::Admin);
        }
        let store = state.store.clone();
        let team = blocking(move || Ok(store.team_by_token_hash(&auth::hash(&token))?)).await?;
        match team {
            Some(team) => {
                super::trace::record_team(team);
                Ok(Caller::Team(team))
            }
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown token")),
        }
    }
}

/// The team of a `/v1/teams/{team}/…` route, which the caller may act on:
/// its own team, or any team for the admin. Any other team answers 404, as
/// one that does not exist, so other teams stay invisible.
pub struct TeamAccess(pub i64);

impl FromRequestParts<AppState> for TeamAccess {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<TeamAccess, Response> {
        let caller = Caller::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let given = params
            .iter()
            .find(|(name, _)| *name == "team")
            .map_or("", |(_, value)| value);
        let team: i64 = given.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("team must be a team's numeric id, got {given:?}"),
            )
            .into_response()
        })?;
        let store = state.store.clone();
        let visible = caller.may_access(team)
            && blocking(move || Ok(store.team_exists(team)?))
                .await
                .map_err(IntoResponse::into_response)?;
        if !visible {
            return Err(
                ApiError::new(StatusCode::NOT_FOUND, format!("no team {team}")).into_response(),
            );
        }
        // A team's token recorded its team already (the same one).
        if matches!(caller, Caller::Admin) {
            super::trace::record_team(team);
        }
        Ok(TeamAccess(team))
    }
}

/// A route's query string, parsed; a refused one is a 400 that says which
/// parameter and what it takes.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query<T>, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{} (the route's parameters are in GET /v1/openapi.json)",
                        rejection.body_text()
                    ),
                )
            })
    }
}

/// A path no route has: 404, pointing at the routes.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {}; the routes are in GET /v1/openapi.json",
            uri.path()
        ),
    )
}

/// Extractor for a route that takes no query parameters: one is refused (400),
/// so a misspelt parameter (`?Trace=true` for a dry run) never acts as a
/// request without it. It comes after the route's token check.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(query) = parts.uri.query().filter(|query| !query.is_empty()) else {
            return Ok(NoQuery);
        };
        let names: Vec<String> = query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .filter(|name| !name.is_empty())
            .map(|name| format!("{name:?}"))
            .collect();
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{} takes no query parameters, got {} (the route's parameters are in GET /v1/openapi.json)",
                parts.uri.path(),
                names.join(", ")
            ),
        ))
    }
}

/// A route asked with a method it does not take: 405.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; its methods are in GET /v1/openapi.json",
            uri.path()
        ),
    )
}

/// Every error response is `{"error": "..."}`: one that axum or a layer
/// answered in plain text (or with no body) is rewritten, its text kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}
