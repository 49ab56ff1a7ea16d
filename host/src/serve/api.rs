//! The `/v1` HTTP API (JSON). Every route but `/healthz` needs a bearer
//! token; a team token reaches only its own team (other teams are 404).

use super::auth::{self, Caller};
use super::json::Json;
use super::quarantine::Health;
use super::store::{ChainRow, Store};
use super::teams::{ConnectorSpec, Services, TeamChain, Teams};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sandpipe_manifest::ConfigEntry;
use sandpipe_runtime::{AdmissionError, Bundle, ChainOutput, ConnectorCache};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub delivery: Arc<super::webhooks::Delivery>,
    pub metrics: Arc<super::metrics::Metrics>,
    pub teams: Arc<Teams>,
    pub services: Services,
    pub admin_hash: Arc<String>,
    /// The hash of `--metrics-token`, if one was given.
    pub metrics_hash: Option<Arc<String>>,
    pub gates: Arc<super::fairness::TeamGates>,
    pub background: Arc<super::fairness::BackgroundPool>,
}

/// Longest an upload waits for admission (checks and compilation).
const ADMISSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An error response: a status and a one-line message, as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn internal(message: String) -> ApiError {
    tracing::error!(%message, "internal error");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// Runs blocking work (the store, the runtime) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(e.to_string()))?
}

fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
    if auth::matches(token, &state.admin_hash) {
        return Ok(Caller::Admin);
    }
    match state
        .store
        .team_by_token_hash(&auth::hash(token))
        .map_err(internal)?
    {
        Some(team) => Ok(Caller::Team(team)),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown token")),
    }
}

/// [`caller`] from an async handler: the token lookup reads the store, so it
/// runs on a blocking thread.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let (state, headers) = (state.clone(), headers.clone());
    blocking(move || caller(&state, &headers)).await
}

/// [`team_caller`] from an async handler, on a blocking thread.
async fn identify_for_team(
    state: &AppState,
    headers: &HeaderMap,
    team: i64,
) -> Result<Caller, ApiError> {
    let (state, headers) = (state.clone(), headers.clone());
    blocking(move || team_caller(&state, &headers, team)).await
}

/// The caller, if it may act on `team` (404 otherwise, so other teams stay invisible).
fn team_caller(state: &AppState, headers: &HeaderMap, team: i64) -> Result<Caller, ApiError> {
    let caller = caller(state, headers)?;
    if !caller.may_access(team) || !state.store.team_exists(team).map_err(internal)? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no team {team}"),
        ));
    }
    Ok(caller)
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/teams", post(create_team))
        .route("/v1/bundles", post(upload_bundle))
        .route("/v1/teams/{team}/chain", get(get_chain).put(put_chain))
        .route("/v1/teams/{team}/events", post(post_events))
        .route("/v1/teams/{team}/logs", get(get_logs))
        .route("/v1/teams/{team}/webhooks", get(get_webhooks))
        .layer(axum::extract::DefaultBodyLimit::max(
            sandpipe_runtime::bundle::MAX_BUNDLE_SIZE + 1,
        ))
        .with_state(state)
}

#[derive(Deserialize)]
struct NewTeam {
    name: String,
}

async fn create_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<NewTeam>,
) -> Result<Json<Value>, ApiError> {
    if identify(&state, &headers).await? != Caller::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "creating teams needs the admin token",
        ));
    }
    let name = body.name.trim().to_string();
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must not be empty",
        ));
    }
    let token = auth::generate("sp_team_");
    let hash = auth::hash(&token);
    let id = {
        let (state, name) = (state.clone(), name.clone());
        blocking(move || state.store.create_team(&name, &hash).map_err(internal)).await?
    };
    Ok(Json(json!({ "id": id, "name": name, "token": token })))
}

/// What a bundle's manifest looks like in responses.
fn manifest_json(bundle: &Bundle) -> Value {
    let manifest = bundle.manifest();
    let fields: Vec<Value> = manifest
        .config
        .iter()
        .filter_map(|entry| match entry {
            ConfigEntry::Field(f) => Some(json!({
                "key": f.key, "name": f.name, "type": f.kind.as_str(), "required": f.required,
                "secret": f.secret, "default": f.default, "choices": f.choices,
            })),
            ConfigEntry::Markdown(_) => None,
        })
        .collect();
    json!({
        "name": manifest.name,
        "description": manifest.description,
        "abi_version": bundle.section().abi_version,
        "source_sha256": bundle.section().source_sha256,
        "config": fields,
    })
}

async fn upload_bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    identify(&state, &headers).await?;
    // The body limit is the bundle limit: an oversized upload is refused
    // before it is read, with the same reason admission would give.
    let body = body.map_err(|rejection| match rejection {
        axum::extract::rejection::BytesRejection::FailedToBufferBody(
            axum::extract::rejection::FailedToBufferBody::LengthLimitError(_),
        ) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            match headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            {
                Some(size) => AdmissionError::TooLarge { size }.to_string(),
                None => format!(
                    "bundle is over the {}-byte limit",
                    sandpipe_runtime::bundle::MAX_BUNDLE_SIZE
                ),
            },
        ),
        other => ApiError::new(StatusCode::BAD_REQUEST, other.body_text()),
    })?;
    let admission = blocking(move || {
        let bundle = state
            .services
            .runtime
            .admit(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        state
            .store
            .put_bundle(bundle.sha256(), &body, &bundle.manifest().name)
            .map_err(internal)?;
        Ok(Json(
            json!({ "id": bundle.sha256(), "manifest": manifest_json(&bundle) }),
        ))
    });
    // Compilation runs on a blocking thread; the request waits at most this long.
    tokio::time::timeout(ADMISSION_TIMEOUT, admission)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "bundle did not compile within {} s",
                    ADMISSION_TIMEOUT.as_secs()
                ),
            )
        })?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainRequest {
    connectors: Vec<ConnectorRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorRequest {
    bundle: String,
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Admits a stored bundle (compiled modules come from the cache).
fn stored_bundle(state: &AppState, position: usize, sha256: &str) -> Result<Arc<Bundle>, ApiError> {
    let bytes = state
        .store
        .bundle(sha256)
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("connector {position}: bundle {sha256} is not uploaded"),
            )
        })?;
    state
        .services
        .runtime
        .admit(bytes)
        .map_err(|e| internal(e.to_string()))
}

/// Validated specs for stored rows; errors name the connector and the field.
fn specs(state: &AppState, rows: &[ChainRow]) -> Result<Vec<ConnectorSpec>, ApiError> {
    rows.iter()
        .enumerate()
        .map(|(position, row)| {
            let bundle = stored_bundle(state, position, &row.bundle)?;
            let config = bundle.manifest().resolve_config(&row.config).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("connector {position} ({}): {e}", bundle.manifest().name),
                )
            })?;
            Ok(ConnectorSpec {
                bundle,
                config,
                enabled: row.enabled,
                health: Health::parse(&row.status),
                cache: ConnectorCache::default(),
            })
        })
        .collect()
}

/// Loads a team's stored chain into the running service (at start-up).
pub fn load_chain(state: &AppState, team: i64) -> Result<(), String> {
    let rows = state.store.chain(team)?;
    let specs = specs(state, &rows).map_err(|e| e.1)?;
    state
        .teams
        .replace(TeamChain::new(team, specs), || Ok::<_, String>(()))
}

fn chain_json(team: &TeamChain) -> Value {
    let connectors: Vec<Value> = team
        .specs
        .iter()
        .map(|spec| {
            json!({
                "bundle": spec.bundle.sha256(),
                "name": spec.bundle.manifest().name,
                "config": spec.config.redacted(),
                "enabled": spec.enabled,
                "status": spec.health.as_str(),
            })
        })
        .collect();
    json!({ "connectors": connectors })
}

async fn put_chain(
    State(state): State<AppState>,
    Path(team): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<ChainRequest>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        team_caller(&state, &headers, team)?;
        let rows: Vec<ChainRow> = body
            .connectors
            .into_iter()
            .map(|c| ChainRow {
                bundle: c.bundle,
                config: c.config,
                enabled: c.enabled,
                status: Health::Healthy.as_str().into(),
            })
            .collect();
        let specs = specs(&state, &rows)?;
        let chain = TeamChain::new(team, specs);
        let response = chain_json(&chain);
        state
            .teams
            .replace(chain, || state.store.set_chain(team, &rows))
            .map_err(internal)?;
        Ok(Json(response))
    })
    .await
}

async fn get_chain(
    State(state): State<AppState>,
    Path(team): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    identify_for_team(&state, &headers, team).await?;
    Ok(Json(state.teams.get(team).map_or_else(
        || json!({ "connectors": [] }),
        |chain| chain_json(&chain),
    )))
}

async fn post_events(
    State(state): State<AppState>,
    Path(team): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    identify_for_team(&state, &headers, team).await?;
    let events = match body {
        Value::Array(events) => events,
        event => vec![event],
    };
    if let Some(index) = events.iter().position(|e| !e.is_object()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("event {index} is not a JSON object"),
        ));
    }
    let chain = state.teams.get(team).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("team {team} has no chain: PUT /v1/teams/{team}/chain first"),
        )
    })?;
    // The team's share of the machine: wait for one of its slots.
    let slot = state.gates.enter(team).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("team {team} has too many event requests waiting; retry later"),
        )
    })?;
    // A team whose events have been slow runs at background priority.
    let background = state.gates.is_slow(team).then(|| state.background.clone());
    let count = events.len();
    let work = move || {
        let _slot = slot;
        let started = std::time::Instant::now();
        let mut running = chain.checkout(&state.services);
        let outputs: Vec<ChainOutput> = events
            .into_iter()
            .map(|event| running.process(event))
            .collect();
        chain.checkin(running);
        state.gates.record(team, started.elapsed(), count);
        let mut lines: Vec<(String, String, String, String)> = chain
            .logs
            .take()
            .into_iter()
            .map(|entry| {
                let time = humantime::format_rfc3339_millis(entry.time).to_string();
                (
                    entry.connector,
                    entry.level.as_str().to_string(),
                    chain.redact(&entry.message),
                    time,
                )
            })
            .collect();
        for output in &outputs {
            state.metrics.record(team, output);
        }
        let calls: Vec<_> = outputs
            .iter()
            .flat_map(|o| o.calls.iter().cloned())
            .collect();
        quarantine(&state, &chain, &calls, &mut lines)?;
        // The storage writes of these events, synced once (group commit) before the answer.
        state
            .services
            .storage
            .sync()
            .map_err(|e| internal(e.to_string()))?;
        // Stored before the response returns: an acknowledged event's webhooks are durable.
        let webhooks: Vec<_> = outputs
            .iter()
            .flat_map(|o| o.webhooks.iter().cloned())
            .collect();
        state
            .store
            .enqueue_webhooks(team, &webhooks)
            .map_err(internal)?;
        if !webhooks.is_empty() {
            state.delivery.wake.notify_one();
        }
        let mut results = Vec::with_capacity(outputs.len());
        let mut failures = Vec::new();
        let mut captured = Vec::new();
        for (index, output) in outputs.into_iter().enumerate() {
            results.push(output.event.unwrap_or(Value::Null));
            captured.extend(output.captured);
            for failure in output.failures {
                failures.push(json!({
                    "event": index,
                    "connector": failure.connector,
                    "stage": failure.stage,
                    "error": chain.redact(&failure.error.to_string()),
                }));
            }
        }
        Ok(Json(json!({
            "results": results,
            "failures": failures,
            "webhooks": webhooks.len(),
            "captured": captured,
        })))
    };
    match background {
        Some(pool) => pool
            .run(work)
            .await
            .unwrap_or_else(|| Err(internal("the background pool stopped".into()))),
        None => blocking(work).await,
    }
}

#[derive(Deserialize)]
struct LogQuery {
    connector: Option<String>,
    level: Option<String>,
    #[serde(default)]
    since: i64,
}

async fn get_logs(
    State(state): State<AppState>,
    Path(team): Path<i64>,
    headers: HeaderMap,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        team_caller(&state, &headers, team)?;
        let logs = state
            .store
            .logs(
                team,
                query.connector.as_deref(),
                query.level.as_deref(),
                query.since,
            )
            .map_err(internal)?;
        Ok(Json(json!({ "logs": logs })))
    })
    .await
}

#[derive(Deserialize)]
struct WebhookQuery {
    status: Option<String>,
}

async fn get_webhooks(
    State(state): State<AppState>,
    Path(team): Path<i64>,
    headers: HeaderMap,
    Query(query): Query<WebhookQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        team_caller(&state, &headers, team)?;
        let webhooks = state
            .store
            .webhooks(team, query.status.as_deref())
            .map_err(internal)?;
        Ok(Json(json!({ "webhooks": webhooks })))
    })
    .await
}

/// Applies quarantine transitions: logged for the connector, persisted, and
/// the team's chain rebuilt without (or with) a disabled (or re-enabled)
/// connector. The windows are the configuration's, so they carry on across the
/// rebuild; a PUT made since `chain` was taken is never undone.
fn quarantine(
    state: &AppState,
    chain: &TeamChain,
    calls: &[sandpipe_runtime::CallRecord],
    lines: &mut Vec<(String, String, String, String)>,
) -> Result<(), ApiError> {
    let changes = chain.observe(calls);
    // Logged only when installed: a PUT made since `chain` was taken wins,
    // and then nothing changed.
    let applied = !changes.is_empty()
        && state
            .teams
            .apply_health(chain, |position, health| {
                state
                    .store
                    .set_connector_status(chain.team, position, health.as_str())
            })
            .map_err(internal)?;
    if applied {
        for (position, health, reason) in &changes {
            let label = format!(
                "{} ({position})",
                chain.specs[*position].bundle.manifest().name
            );
            let level = if *health == Health::Healthy {
                "info"
            } else {
                "warn"
            };
            let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            lines.push((
                label,
                level.into(),
                format!("quarantine: now {} ({reason})", health.as_str()),
                time,
            ));
        }
    }
    state
        .store
        .append_logs(chain.team, &std::mem::take(lines))
        .map_err(internal)?;
    Ok(())
}

/// `GET /metrics`: every team's figures, so only for the admin token or the
/// `--metrics-token` (compared in constant time, without the store).
async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let token = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
    let allowed = auth::matches(token, &state.admin_hash)
        | state
            .metrics_hash
            .as_ref()
            .is_some_and(|hash| auth::matches(token, hash));
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics need the admin token or the metrics token",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    identify(&state, &headers).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI))
}
