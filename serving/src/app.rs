//! The router: routes, the JSON body limit, and the middleware that gives
//! every request an id (accepting `x-request-id`, echoing it back), records
//! request counts and latencies by matched route (never the raw path, so
//! user ids cannot become metric labels) and logs one line per request
//! without feature values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::Instrument;

use crate::error::ApiError;
use crate::routes::{admin, health, models, predict, v2};
use crate::state::AppState;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// Builds the application.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/predict/{model}", post(predict::predict))
        .route("/predict/{model}/batch", post(predict::predict_batch))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::detail))
        .route("/models/{name}/drift", get(models::drift))
        .route(
            "/models/{name}/aliases/{alias}",
            axum::routing::put(admin::set_alias),
        )
        .route("/admin/reload", post(admin::reload))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer_version),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see GET /models and the README for the API",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!(
        "{:012x}-{:06x}",
        start & 0xFFFF_FFFF_FFFF,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn acceptable_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty() && text.len() <= 128 && text.chars().all(|c| c.is_ascii_graphic()))
        .then(|| text.to_string())
}

/// Routes as metric labels. Label values are `'static` so that recording a
/// request allocates nothing; a route missing here is labelled `other`.
const ROUTES: &[&str] = &[
    "/predict/{model}",
    "/predict/{model}/batch",
    "/models",
    "/models/{name}",
    "/models/{name}/drift",
    "/models/{name}/aliases/{alias}",
    "/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
];

fn route_label(request: &Request) -> &'static str {
    match request.extensions().get::<MatchedPath>() {
        Some(path) => ROUTES
            .iter()
            .copied()
            .find(|r| *r == path.as_str())
            .unwrap_or("other"),
        None => "unmatched",
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        _ => "other",
    }
}

fn status_label(code: u16) -> &'static str {
    match code {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

async fn observe(request: Request, next: Next) -> Response {
    let route = route_label(&request);
    let method = method_label(request.method());
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(acceptable_id)
        .unwrap_or_else(new_request_id);
    let started = Instant::now();
    // Per-request spans and lines are debug level: at info, logging every
    // request would cost more than scoring it. Server errors are always logged.
    let span = tracing::debug_span!("request", id = %id, method, route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let status_label = status_label(status.as_u16());
    metrics::counter!("presage_requests_total", "route" => route, "method" => method, "status" => status_label).increment(1);
    metrics::histogram!("presage_request_duration_seconds", "route" => route, "status" => status_label)
        .record(elapsed.as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(request_id = %id, route, status = status_label, "request failed");
    } else {
        span.in_scope(|| {
            tracing::debug!(
                status = status_label,
                micros = elapsed.as_micros() as u64,
                "handled"
            )
        });
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

impl From<ApiError> for Response {
    fn from(error: ApiError) -> Response {
        error.into_response()
    }
}
