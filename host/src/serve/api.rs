//! The `/v1` routes (JSON). Every route but `/healthz` (and the admin page's
//! files) needs a bearer token;
//! a team token reaches only its own team (other teams are 404). Handlers
//! only read the request and shape the response: who is calling comes from
//! [`super::http`]'s extractors, the work from [`super::chains`] and
//! [`super::events`] and [`super::dry_run`]. The admin page
//! ([`super::admin_page`]) is served beside them and uses only these routes.

use super::auth::{self, Caller};
use super::chains::{self, NewConnector};
use super::dry_run;
use super::events;
use super::http::{ApiError, Bearer, NoQuery, Query, TeamAccess, blocking};
use super::json::{EventsBody, Json};
use super::state::AppState;
use super::store::{LogFilter, Redelivery, Since, WebhookFilter, WebhookPage};
use super::teams::TeamChain;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use sandpipe_abi::LogLevel;
use sandpipe_manifest::ConfigEntry;
use sandpipe_runtime::bundle::MAX_BUNDLE_SIZE;
use sandpipe_runtime::{AdmissionError, Bundle};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// `ok` while the database answers; 503 with the reason while it does not,
/// so a load balancer stops sending requests every route would refuse. The
/// answer is kept for [`HEALTH_KEPT`]: a flood of checks, which need no
/// token, costs one query of the pool the events need a second.
async fn healthz(State(state): State<AppState>) -> axum::response::Response {
    let kept = state
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let refusal = match kept {
        Some((at, refusal)) if at.elapsed() < HEALTH_KEPT => refusal,
        _ => {
            let store = state.store.clone();
            let refusal = tokio::task::spawn_blocking(move || {
                store.setting("installation").err().map(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Some(e.to_string()));
            *state.health.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((std::time::Instant::now(), refusal.clone()));
            refusal
        }
    };
    match refusal {
        None => "ok".into_response(),
        Some(reason) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

/// How long `/healthz` keeps its answer.
const HEALTH_KEPT: Duration = Duration::from_secs(1);

/// Longest an upload waits for admission (checks and compilation).
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/teams", get(list_teams).post(create_team))
        .route("/v1/teams/{team}", delete(delete_team))
        .route("/v1/teams/{team}/token", post(rotate_token))
        .route("/v1/bundles", get(list_bundles).post(upload_bundle))
        .route("/v1/bundles/{id}", get(get_bundle))
        .route("/v1/teams/{team}/chain", get(get_chain).put(put_chain))
        .route("/v1/teams/{team}/health", get(get_health))
        .route("/v1/teams/{team}/events", post(post_events))
        .route(
            "/v1/teams/{team}/connectors/{connector}/reset",
            post(reset_connector),
        )
        .route("/v1/teams/{team}/logs", get(get_logs))
        .route("/v1/teams/{team}/webhooks", get(get_webhooks))
        .route(
            "/v1/teams/{team}/webhooks/{webhook}/redeliver",
            post(redeliver_webhook),
        )
        .merge(super::admin_page::router())
        .fallback(super::http::no_route)
        .method_not_allowed_fallback(super::http::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(super::http::json_errors))
        .layer(axum::middleware::from_fn(super::trace::request_span))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTeam {
    name: String,
}

async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    _: NoQuery,
    request: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    // Who may ask comes before what was asked: another token is refused
    // before the body is read, and learns nothing from its checks.
    if caller != Caller::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "creating teams needs the admin token",
        ));
    }
    let Json(body) = Json::<NewTeam>::from_request(request, &state).await?;
    let name = body.name.trim().to_string();
    let length = name.chars().count();
    if !(1..=MAX_TEAM_NAME_CHARS).contains(&length) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("name must be 1 to {MAX_TEAM_NAME_CHARS} characters, got {length}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("name must have no control characters, got {name:?}"),
        ));
    }
    let token = auth::generate("sp_team_");
    let hash = auth::hash(&token);
    let id = {
        let name = name.clone();
        blocking(move || Ok(state.store.create_team(&name, &hash)?)).await?
    };
    Ok(Json(json!({ "id": id, "name": name, "token": token })))
}

/// Longest team name (characters).
const MAX_TEAM_NAME_CHARS: usize = 200;

/// `GET /v1/teams`: every team for the admin token, `{"teams": [{"id", "name",
/// "created_at"}]}`; a team token sees its own (the admin page learns its team so).
async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
    _: NoQuery,
) -> Result<Json<Value>, ApiError> {
    let only = match caller {
        Caller::Admin => None,
        Caller::Team(team) => Some(team),
    };
    blocking(move || Ok(Json(json!({ "teams": state.store.teams(only)? })))).await
}

/// `GET /v1/bundles/{id}`: an uploaded bundle's manifest (its id is the
/// sha256 of its bytes, so whoever knows it has, or was shown, the bundle).
async fn get_bundle(
    State(state): State<AppState>,
    _caller: Caller,
    _: NoQuery,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("no bundle {id:?}"));
        let bytes = state.store.bundle(&id)?.ok_or_else(missing)?;
        let bundle = state
            .connectors
            .runtime
            .admit(bytes)
            .map_err(ApiError::internal)?;
        Ok(Json(
            json!({ "id": bundle.sha256(), "manifest": manifest_json(&bundle) }),
        ))
    })
    .await
}

/// `DELETE /v1/teams/{team}` (admin): the team, its chain, its connectors'
/// storage, its logs and webhooks.
async fn delete_team(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    caller: Caller,
    _: NoQuery,
) -> Result<Json<Value>, ApiError> {
    if caller != Caller::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "deleting a team needs the admin token",
        ));
    }
    blocking(move || {
        chains::delete_team(&state, team)?;
        Ok(Json(json!({ "deleted": team })))
    })
    .await
}

/// `POST /v1/teams/{team}/token`: a new token for the team (shown once); the
/// old one stops working at once.
async fn rotate_token(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    _: NoQuery,
) -> Result<Json<Value>, ApiError> {
    let token = auth::generate("sp_team_");
    let hash = auth::hash(&token);
    blocking(move || {
        state.store.set_team_token(team, &hash)?;
        Ok(Json(json!({ "id": team, "token": token })))
    })
    .await
}

/// `GET /v1/bundles`: every uploaded bundle for the admin; for a team, the
/// bundles its chain runs (bundles belong to no team, so a team does not
/// see the others').
async fn list_bundles(
    State(state): State<AppState>,
    caller: Caller,
    _: NoQuery,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let mut bundles = state.store.bundles()?;
        if let Caller::Team(team) = caller {
            let used: Vec<String> = state
                .store
                .chain(team)?
                .into_iter()
                .map(|row| row.bundle)
                .collect();
            bundles.retain(|bundle| used.contains(&bundle.id));
        }
        Ok(Json(json!({ "bundles": bundles })))
    })
    .await
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
                "secret": f.secret, "default": f.default, "choices": f.choices, "hint": f.hint,
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
    _caller: Caller,
    _: NoQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // The body limit is the bundle limit: an oversized upload is refused
    // before it is read, with the same reason admission would give.
    let body = body.map_err(|rejection| {
        super::listen::body_error(rejection, || {
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            match declared {
                Some(size) => AdmissionError::TooLarge { size }.to_string(),
                None => format!("bundle is over the {MAX_BUNDLE_SIZE}-byte limit"),
            }
        })
    })?;
    let admission = blocking(move || {
        let bundle = state
            .connectors
            .runtime
            .admit(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        state
            .store
            .put_bundle(bundle.sha256(), &body, &bundle.manifest().name)?;
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
    /// The connector's stable identity (default: its plugin's name).
    #[serde(default)]
    id: Option<String>,
    bundle: String,
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    /// What a GET of the chain shows beside the fields above (the plugin's
    /// name, the connector's health): read-only, accepted so that a GET's body
    /// can be edited and PUT back, and not used.
    #[serde(default, rename = "name")]
    _name: Option<Value>,
    #[serde(default, rename = "status")]
    _status: Option<Value>,
}

fn enabled_by_default() -> bool {
    true
}

fn chain_json(team: &TeamChain) -> Value {
    let connectors: Vec<Value> = team
        .specs
        .iter()
        .map(|spec| {
            json!({
                "id": spec.id,
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
    TeamAccess(team): TeamAccess,
    _: NoQuery,
    Json(body): Json<ChainRequest>,
) -> Result<Json<Value>, ApiError> {
    let connectors = body
        .connectors
        .into_iter()
        .map(|c| NewConnector {
            id: c.id,
            bundle: c.bundle,
            config: c.config,
            enabled: c.enabled,
        })
        .collect();
    blocking(move || {
        let chain = chains::put(&state, team, connectors)?;
        Ok(Json(chain_json(&chain)))
    })
    .await
}

async fn get_chain(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    _: NoQuery,
) -> Json<Value> {
    Json(
        state
            .teams
            .get(team)
            .map_or_else(|| json!({ "connectors": [] }), |chain| chain_json(&chain)),
    )
}

/// `POST /v1/teams/{team}/connectors/{connector}/reset`: empties the
/// connector's `meta.storage` and `meta.cache` (found by its id).
async fn reset_connector(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    _: NoQuery,
    axum::extract::Path((_, connector)): axum::extract::Path<(i64, String)>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        if chains::reset(&state, team, &connector)? {
            Ok(Json(json!({ "reset": connector })))
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("team {team}'s chain has no connector with id {connector:?}; GET the chain for its ids"),
            ))
        }
    })
    .await
}

/// The largest request body, in bytes: a bundle at its largest, and one
/// byte more so that its own check, which names the bundle's limit, sees it.
pub const MAX_BODY: usize = MAX_BUNDLE_SIZE + 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// A dry run of one event that answers with its trace.
    #[serde(default)]
    trace: bool,
    /// Publish to NATS JetStream for the workers and answer 202 with the ids.
    #[serde(default, rename = "async")]
    publish: bool,
}

async fn post_events(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    Query(query): Query<EventsQuery>,
    body: EventsBody,
) -> Result<axum::response::Response, ApiError> {
    Ok(if query.trace {
        let EventsBody::One(event) = body else {
            return Err(events::EventsError::TraceOfList.into());
        };
        Json(dry_run::trace(state, team, event).await?).into_response()
    } else if query.publish {
        publish_events(state, team, body.items())
            .await?
            .into_response()
    } else {
        let limit = state.max_batch_events;
        Json(events::process(state, team, body.items(), limit, events::Origin::Client).await?)
            .into_response()
    })
}

/// `POST …/events?async=true`: the events checked (objects with an event
/// name, at most `--max-batch-events`, a team with a chain), published to
/// `SANDPIPE_EVENTS` for the workers, and 202 with their ids once JetStream
/// has them.
async fn publish_events(
    state: AppState,
    team: i64,
    events: Vec<events::Item>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(publisher) = state.publisher.clone() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "?async=true needs the service started with --nats",
        ));
    };
    let limit = state.max_batch_events;
    if events.len() > limit {
        return Err(events::EventsError::TooMany {
            limit,
            got: events.len(),
        }
        .into());
    }
    if state.teams.get(team).is_none() {
        return Err(events::EventsError::NoChain { team }.into());
    }
    // Published whole or not at all: an item that is not an event stops it.
    let events = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let reason = match event {
                Ok(event) => match crate::event_rule::refusal(&event) {
                    None => return Ok(event),
                    Some(reason) => reason.to_owned(),
                },
                Err(unread) => unread,
            };
            Err(events::EventsError::NotAnEvent { index, reason })
        })
        .collect::<Result<Vec<Value>, _>>()?;
    let outgoing = events.iter().map(crate::worker::Outgoing::event).collect();
    let published = publisher
        .publish(team, outgoing)
        .await
        .map_err(|error| match error {
            error @ crate::worker::NatsError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            error => ApiError::unavailable(error),
        })?;
    let mut body = json!({ "ids": published.ids });
    // Copies JetStream dropped (the same uuid within its duplicate window): not run again.
    if !published.duplicates.is_empty() {
        body["duplicates"] = json!(published.duplicates);
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `GET /v1/teams/{team}/health`: each configured connector's state, the
/// reason from its quarantine window, and its calls, errors and p99 wall
/// time since the service started.
async fn get_health(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    _: NoQuery,
) -> Json<Value> {
    let Some(chain) = state.teams.get(team) else {
        return Json(json!({ "connectors": [] }));
    };
    let reasons = chain.reasons();
    let connectors: Vec<Value> = chain
        .specs
        .iter()
        .enumerate()
        .map(|(position, spec)| {
            let label = sandpipe_runtime::connector::label(&spec.bundle.manifest().name, position);
            let figures = state.metrics.connector(team, &label);
            json!({
                "connector": label,
                "enabled": spec.enabled,
                "status": spec.health.as_str(),
                "reason": reasons.get(position),
                "calls": figures.calls,
                "errors": figures.errors,
                // Whole microseconds, so no float noise (482.0000000000001).
                "p99_ms": figures.p99_seconds.map(|s| (s * 1e6).round() / 1e3),
            })
        })
        .collect();
    Json(json!({ "connectors": connectors }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    connector: Option<String>,
    level: Option<String>,
    since: Option<String>,
}

impl LogQuery {
    /// The store's filter; an unknown level or an unreadable `since` is a 400.
    fn filter(self) -> Result<LogFilter, ApiError> {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
        let level = self
            .level
            .map(|given| {
                [
                    LogLevel::Debug,
                    LogLevel::Info,
                    LogLevel::Log,
                    LogLevel::Warn,
                    LogLevel::Error,
                ]
                .into_iter()
                .find(|level| level.as_str() == given)
                .ok_or_else(|| {
                    bad(format!(
                        "level must be one of debug, info, log, warn, error; got {given:?}"
                    ))
                })
            })
            .transpose()?;
        let since = match self.since {
            None => Since::Id(0),
            Some(given) => match given.parse::<i64>() {
                Ok(id) => Since::Id(id),
                Err(_) => Since::Time(humantime::parse_rfc3339_weak(&given).map_err(|_| {
                    bad(format!(
                        "since must be a log line's id or an RFC 3339 UTC time such as 2024-05-01T12:00:00Z; got {given:?}"
                    ))
                })?),
            },
        };
        Ok(LogFilter {
            connector: self.connector.filter(|c| !c.is_empty()),
            level,
            since,
        })
    }
}

async fn get_logs(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.filter()?;
    blocking(move || {
        let logs = state.store.logs(team, &filter)?;
        Ok(Json(json!({ "logs": logs })))
    })
    .await
}

/// A webhook's delivery state, as `?status=` names it.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WebhookStatus {
    Pending,
    Delivered,
    Dead,
}

impl WebhookStatus {
    fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Pending => "pending",
            WebhookStatus::Delivered => "delivered",
            WebhookStatus::Dead => "dead",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookQuery {
    status: Option<WebhookStatus>,
    /// A connector's label, name or id.
    connector: Option<String>,
    /// A webhook's id: the rows after it, oldest first (the next page).
    since: Option<String>,
    /// `true`: newest first.
    newest: Option<String>,
    /// A webhook's id: the rows before it, newest first (the next page of
    /// a newest-first listing).
    before: Option<String>,
}

impl WebhookQuery {
    /// The store's filter; an unreadable id or flag, or `since` with a
    /// newest-first listing, is a 400.
    fn filter(self) -> Result<WebhookFilter, ApiError> {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
        let id = |name: &str, given: Option<String>| -> Result<Option<i64>, ApiError> {
            given
                .map(|given| {
                    given.parse::<i64>().map_err(|_| {
                        bad(format!(
                            "{name} must be a webhook's id (the last id of the page before); got {given:?}"
                        ))
                    })
                })
                .transpose()
        };
        let newest = match self.newest.as_deref() {
            None => None,
            Some("false") => Some(false),
            Some("true") => Some(true),
            Some(given) => return Err(bad(format!("newest must be true or false; got {given:?}"))),
        };
        let since = id("since", self.since)?;
        let before = id("before", self.before)?;
        if newest == Some(false) && before.is_some() {
            return Err(bad(
                "before pages newest first: not with newest=false".into()
            ));
        }
        let newest = newest == Some(true);
        let page = match (since, newest || before.is_some()) {
            (Some(_), true) => {
                return Err(bad(
                    "since pages oldest first; newest and before page newest first: give one or the other"
                        .into(),
                ));
            }
            (since, false) => WebhookPage::After(since.unwrap_or(0)),
            (None, true) => WebhookPage::Before(before),
        };
        Ok(WebhookFilter {
            status: self.status.map(WebhookStatus::as_str),
            connector: self.connector,
            page,
        })
    }
}

async fn get_webhooks(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    Query(query): Query<WebhookQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.filter()?;
    blocking(move || {
        let mut webhooks = state.store.webhooks(team, &filter)?;
        // A connector may put a secret in a request's URL; the error of a
        // failed attempt may quote the URL.
        if let Some(chain) = state.teams.get(team) {
            for webhook in &mut webhooks {
                webhook.url = chain.redact(&webhook.url);
                webhook.last_error = webhook.last_error.as_deref().map(|e| chain.redact(e));
            }
        }
        Ok(Json(json!({ "webhooks": webhooks })))
    })
    .await
}

/// `POST /v1/teams/{team}/webhooks/{webhook}/redeliver`: a dead webhook is
/// pending again, due now, with its attempts counted from 0.
async fn redeliver_webhook(
    State(state): State<AppState>,
    TeamAccess(team): TeamAccess,
    _: NoQuery,
    axum::extract::Path((_, webhook)): axum::extract::Path<(i64, String)>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = webhook.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "webhook must be a webhook's numeric id (from GET …/webhooks), got {webhook:?}"
            ),
        )
    })?;
    let delivery = state.delivery.clone();
    blocking(move || match state.store.redeliver_webhook(team, id)? {
        Redelivery::Queued => {
            delivery.wake.notify_one();
            Ok(Json(json!({ "redelivering": id })))
        }
        Redelivery::NotDead => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("webhook {id} is not dead; only dead webhooks are delivered again"),
        )),
        Redelivery::Missing => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("team {team} has no webhook {id}"),
        )),
    })
    .await
}

/// `GET /metrics`: every team's figures, so only for the admin token or the
/// `--metrics-token` (compared in constant time, without the store).
async fn metrics(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    no_query: Result<NoQuery, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let allowed = auth::matches(&token, &state.admin_hash)
        | state
            .metrics_hash
            .as_ref()
            .is_some_and(|hash| auth::matches(&token, hash));
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics need the admin token or the metrics token",
        ));
    }
    no_query?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// The OpenAPI document, readable without a token (it describes routes, not data).
async fn openapi(_: NoQuery) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
