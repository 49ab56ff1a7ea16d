//! The admin page at `/`: hand-written HTML, CSS and JavaScript modules
//! (`admin/`), embedded in the binary, that do everything through the `/v1`
//! routes with the token the user signs in with. Every asset is answered
//! with a strict Content-Security-Policy: scripts, styles and requests only
//! from this origin, no inline code, no frames, no forms posted elsewhere.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every page asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page's assets: path under `/admin/`, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("admin/app.js")),
    ("api.js", JS, include_str!("admin/api.js")),
    ("form.js", JS, include_str!("admin/form.js")),
    ("diff.js", JS, include_str!("admin/diff.js")),
    ("ui.js", JS, include_str!("admin/ui.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("admin/app.css"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("admin/icon.svg")),
];

const JS: &str = "text/javascript; charset=utf-8";

const INDEX: &str = include_str!("admin/index.html");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route("/admin/{file}", get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(path, ..)| *path == name) {
        Some((_, kind, contents)) => asset(kind, contents),
        None => {
            let mut response = (StatusCode::NOT_FOUND, "not found").into_response();
            protect(&mut response);
            response
        }
    }
}

fn asset(kind: &'static str, contents: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, kind)], contents).into_response();
    protect(&mut response);
    response
}

/// The headers every page response carries.
fn protect(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
