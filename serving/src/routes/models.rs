//! `GET /models` and `GET /models/{name}`: what is loaded and how it was
//! trained, evaluated and segmented.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use presage_models::artifact::Metrics;
use presage_models::schema::FeatureKind;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::{LoadedVersion, ModelEntry};
use presage_models::policy::PolicyMode;

fn metrics_json(metrics: &Option<Metrics>) -> Value {
    match metrics {
        Some(Metrics::Binary(m)) => json!({
            "rows": m.rows, "auc": m.auc, "pr_auc": m.pr_auc, "log_loss": m.log_loss,
            "brier": m.brier, "ece": m.ece,
        }),
        Some(Metrics::Regression(m)) => {
            json!({"rows": m.rows, "rmse": m.rmse, "mae": m.mae, "r2": m.r2})
        }
        None => Value::Null,
    }
}

fn version_summary(v: &LoadedVersion) -> Value {
    let a = &v.artifact;
    json!({
        "version": a.version,
        "algorithm": a.algorithm.short_name(),
        "created_at": a.created_at(),
        "test": metrics_json(&a.evaluation.test),
    })
}

fn summary(entry: &ModelEntry) -> Value {
    let champion = entry.champion();
    json!({
        "name": entry.name,
        "champion": entry.champion,
        "loaded_versions": entry.versions.keys().collect::<Vec<_>>(),
        "aliases": entry.aliases,
        "algorithm": champion.map(|c| c.artifact.algorithm.short_name()),
        "created_at": champion.map(|c| c.artifact.created_at()),
        "test_auc": champion.and_then(|c| c.artifact.evaluation.test.as_ref()).and_then(Metrics::auc),
        "policy": entry.policy_source,
        "errors": entry.errors,
    })
}

/// `GET /models`.
#[utoipa::path(get, path = "/models", tag = "models", responses((status = 200, description = "Every loaded model", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let catalog = state.store.catalog();
    Json(json!({"models": catalog.models.values().map(summary).collect::<Vec<_>>()}))
}

/// `GET /models/{name}`.
#[utoipa::path(
    get,
    path = "/models/{name}",
    tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "Versions, metrics, schema, policy, load errors", body = Object), (status = 404, description = "Unknown model", body = ErrorBody))
)]
pub async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    // Minima and maxima are values of single training rows: admin only.
    let show_ranges = crate::routes::admin::is_admin(&state, &headers);
    let catalog = state.store.catalog();
    let entry = catalog
        .models
        .get(&name)
        .ok_or_else(|| ApiError::unknown_model(&name, &catalog.servable()))?;
    let mut body = summary(entry);
    body["versions"] = entry
        .versions
        .values()
        .map(|v| version_summary(v))
        .collect();
    if let Some(champion) = entry.champion() {
        let a = &champion.artifact;
        let policy = &champion.policy;
        body["task"] = json!({"label": a.label_column()});
        body["params"] = a
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        body["metrics"] = json!({
            "train": metrics_json(&a.evaluation.train),
            "valid": metrics_json(&a.evaluation.valid),
            "test": metrics_json(&a.evaluation.test),
        });
        body["baselines"] = a
            .evaluation
            .baselines
            .iter()
            .map(|b| json!({"name": b.name, "test": metrics_json(&Some(b.test.clone()))}))
            .collect();
        // Models trained from extracts say what each feature measures, so
        // callers know what to send.
        let description = |name: &str| {
            a.feature_spec.as_ref().and_then(|spec| {
                spec.features
                    .iter()
                    .find(|f| f.name == name)
                    .map(|f| f.description.clone())
            })
        };
        body["features"] = a
            .schema
            .features
            .iter()
            .map(|f| {
                let mut feature = match &f.kind {
                    FeatureKind::Numeric if show_ranges => json!({
                        "name": f.name, "type": "numeric",
                        "min": f.stats.min, "max": f.stats.max, "missing_share": f.stats.missing as f64 / f.stats.rows.max(1) as f64,
                    }),
                    FeatureKind::Numeric => json!({
                        "name": f.name, "type": "numeric",
                        "missing_share": f.stats.missing as f64 / f.stats.rows.max(1) as f64,
                    }),
                    FeatureKind::Categorical { categories } => json!({
                        "name": f.name, "type": "categorical", "categories": categories,
                        "missing_share": f.stats.missing as f64 / f.stats.rows.max(1) as f64,
                    }),
                };
                if let Some(d) = description(&f.name) {
                    feature["description"] = Value::String(d);
                }
                feature
            })
            .collect();
        if let Some(spec) = &a.feature_spec {
            body["feature_spec"] = json!({
                "label": {"name": spec.label.name, "description": spec.label.description},
                "spec": serde_json::from_str::<Value>(&spec.spec_json).unwrap_or(Value::Null),
            });
        }
        body["policy"] = json!({
            "source": entry.policy_source,
            "default": entry.policy_source == "default",
            "mode": match policy.mode { PolicyMode::Threshold => "threshold", PolicyMode::Percentile => "percentile" },
            "segments": policy.segments,
            "rules": policy.rules.iter().map(|r| r.when.clone()).collect::<Vec<_>>(),
        });
    }
    Ok(Json(body))
}

/// `GET /models/{name}/drift`: drift of the champion's recent requests.
#[utoipa::path(
    get,
    path = "/models/{name}/drift",
    tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses(
        (status = 200, description = "Per-feature PSI, missing and unseen shares, and score PSI over the most recent scored requests (window_rows 0 until a request is scored)", body = Object),
        (status = 404, description = "Unknown model", body = ErrorBody),
    )
)]
pub async fn drift(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.store.catalog();
    let version = catalog
        .models
        .get(&name)
        .and_then(|entry| entry.champion())
        .ok_or_else(|| ApiError::unknown_model(&name, &catalog.servable()))?;
    let report = {
        let (version, name) = (version.clone(), name.clone());
        state
            .heavy
            .run(move || {
                let report = version.drift.report(&version.artifact);
                crate::routes::health::publish_drift(&name, report.as_ref());
                report
            })
            .await?
    };
    Ok(Json(match report {
        Some(r) => {
            json!({"model": name, "version": version.version(), "window_rows": r.window_rows,
            "window_capacity": r.window_capacity, "score_psi": r.drift.score_psi, "features": r.drift.features})
        }
        None => json!({"model": name, "version": version.version(), "window_rows": 0,
            "window_capacity": version.drift.capacity(), "score_psi": null, "features": []}),
    }))
}
