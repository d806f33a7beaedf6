//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Live", body = Object)))]
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "live"}))
}

/// `GET /readyz`: every required model (or, with none configured, at least
/// one model) is loaded, and the server is not shutting down. 503 with the
/// reason and the missing names otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready: missing models, or shutting down", body = Object))
)]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.readiness();
    if readiness.ready() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "models": readiness.servable})),
        )
    } else {
        let reason = if readiness.shutting_down {
            "shutting down".to_owned()
        } else if let Some(why) = &readiness.online {
            why.clone()
        } else if readiness.servable.is_empty() {
            "no model is loaded".to_owned()
        } else {
            "required models are not loaded".to_owned()
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason, "missing": readiness.missing})),
        )
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let catalog = state.store.catalog();
    let handle = state.metrics.clone();
    let online = state.online.clone();
    // Drift reports cost a pass over each window: off the async workers.
    let body = state
        .heavy
        .run(move || {
            for (name, entry) in &catalog.models {
                if let Some(version) = entry.champion() {
                    publish_drift(name, version.drift.report(&version.artifact).as_ref());
                }
            }
            if let Some(store) = &online {
                crate::routes::online::publish_gauges(store);
            }
            handle.as_ref().map(|h| h.render()).unwrap_or_default()
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Sets the live-drift gauges of `model`: `presage_drift_score_psi` and
/// `presage_drift_feature_psi` per feature (nothing until a request is scored).
pub fn publish_drift(model: &str, report: Option<&crate::drift_window::LiveDrift>) {
    let Some(report) = report else {
        return;
    };
    if let Some(psi) = report.drift.score_psi {
        metrics::gauge!("presage_drift_score_psi", "model" => model.to_owned()).set(psi);
    }
    metrics::gauge!("presage_drift_window_rows", "model" => model.to_owned())
        .set(report.window_rows as f64);
    for f in &report.drift.features {
        metrics::gauge!("presage_drift_feature_psi", "model" => model.to_owned(), "feature" => f.feature.clone())
            .set(f.psi);
    }
}
