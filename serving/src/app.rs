//! The router: routes, the JSON body limit, and the middleware that gives
//! every request an id (accepting `x-request-id`, echoing it back), records
//! request counts and latencies by matched route (never the raw path, so
//! user ids cannot become metric labels) and logs one line per request
//! without feature values.
//!
//! The same middleware bounds each request: it sets a deadline for the whole
//! body, `body_read_timeout_ms` from the end of the headers, that the body
//! extractors answer 408 `body_timeout` (tower-http's body timeout restarts
//! on every chunk, so a body trickled a byte at a time would never meet
//! it), and the whole request must finish within `request_timeout_ms` (503
//! `request_timeout`; written here rather than with tower-http's
//! `TimeoutLayer` so the answer is the API's JSON error with the request
//! id). A panic in a handler is caught by tower-http's `CatchPanicLayer`
//! and answered 500 `internal_error` naming the request id, counted in
//! `presage_panics_total`, instead of dropping the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::error::ApiError;
use crate::json::BodyDeadline;
use crate::routes::{admin, health, models, online, predict, v2};
use crate::state::AppState;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// Builds the application.
pub fn app(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let router = Router::new()
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
        .route("/events", post(online::post_events))
        .route("/users", post(online::post_users))
        .route("/users/{id}", axum::routing::delete(online::erase_user))
        .route("/users/{id}/features", get(online::user_features_route))
        .route("/admin/online/compact", post(online::compact))
        .route("/admin/triggers/replay", post(online::replay_dead_letter))
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
        .route("/openapi.json", get(crate::openapi::openapi_json));
    #[cfg(test)]
    let router = router.route("/test/panic", get(test_routes::panic));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(
            (limits.request_timeout, limits.body_read_timeout),
            observe,
        ))
        .with_state(state)
}

/// Marks a response made from a caught panic, for [`observe`].
#[derive(Debug, Clone, Copy)]
struct Panicked;

fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload is not logged: a panic message could quote request data.
    let mut response = ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the server failed on this request",
    )
    .into_response();
    response.extensions_mut().insert(Panicked);
    response
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
    "/events",
    "/users",
    "/users/{id}",
    "/users/{id}/features",
    "/admin/online/compact",
    "/admin/triggers/replay",
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
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

async fn observe(
    axum::extract::State((timeout, body_timeout)): axum::extract::State<(Duration, Duration)>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(BodyDeadline(tokio::time::Instant::now() + body_timeout));
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
    let handled = tokio::time::timeout(timeout, next.run(request).instrument(span.clone())).await;
    let mut response = match handled {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("presage_request_timeouts_total", "route" => route).increment(1);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request took longer than {} ms (request_timeout_ms); retry, or send fewer rows",
                    timeout.as_millis()
                ),
            )
            .into_response()
        }
    };
    if response.extensions().get::<Panicked>().is_some() {
        metrics::counter!("presage_panics_total", "route" => route).increment(1);
        tracing::error!(request_id = %id, route, "handler panicked");
        response = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("the server failed on this request; it is logged under request id {id}"),
        )
        .into_response();
    }
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

#[cfg(test)]
mod test_routes {
    /// Panics, to test that a panic becomes a 500 and is counted.
    pub async fn panic() -> &'static str {
        panic!("injected by the test route")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use presage_models::registry::Registry;
    use tower::ServiceExt;

    use crate::config::{Overrides, ServeConfig};
    use crate::state::AppState;
    use crate::store::ModelStore;

    async fn get(
        router: &axum::Router,
        path: &str,
        id: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::get(path);
        if let Some(id) = id {
            request = request.header(super::REQUEST_ID, id);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let id = response.headers()[super::REQUEST_ID]
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, id, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_request_id_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServeConfig::resolve(
            None,
            Overrides {
                registry: Some(dir.path().to_path_buf()),
                ..Overrides::default()
            },
        )
        .unwrap();
        let (store, _) =
            ModelStore::open(Registry::new(dir.path()), Default::default(), 1 << 20).unwrap();
        let mut state = AppState::new(Arc::new(store), config);
        state.metrics = Some(
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .unwrap(),
        );
        let router = super::app(state);
        let (status, id, body) = get(&router, "/test/panic", Some("req-panic-1")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(id, "req-panic-1");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
        assert_eq!(
            body["error"]["message"],
            "the server failed on this request; it is logged under request id req-panic-1"
        );
        // The server goes on, and the panic is counted.
        assert_eq!(get(&router, "/healthz", None).await.0, StatusCode::OK);
        let (_, _, metrics) = get(&router, "/metrics", None).await;
        assert!(
            metrics.contains("presage_panics_total{route=\"other\"} 1"),
            "{metrics}"
        );
    }
}
