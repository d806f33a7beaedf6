//! Admin endpoints: `POST /admin/reload` and
//! `PUT /models/{name}/aliases/{alias}` (body `{"version": N}`).
//!
//! Both need `Authorization: Bearer <token>` with the token from the config
//! (`admin_token`) or `PRESAGE_ADMIN_TOKEN`. Without a configured token they
//! answer 403 and say how to enable them. Tokens are compared in constant
//! time (SHA-256 of both, then a branch-free comparison of the digests, so
//! neither content nor length leaks through timing).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use presage_models::artifact::ModelArtifact;
use presage_models::registry::VersionSelector;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::state::AppState;

/// Body of `PUT /models/{name}/aliases/{alias}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    /// Version the alias should point at.
    pub version: u64,
}

/// Whether two secrets are equal, in time independent of their contents.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled; set PRESAGE_ADMIN_TOKEN or admin_token in the config to enable them",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if secrets_equal(given, token) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <admin token>`",
        ))
    }
}

async fn reload_now(state: &AppState) -> Value {
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.reload())
        .await
        .unwrap_or_default();
    for failure in &report.failed {
        tracing::error!(failure = %failure, "model failed to load; previous version keeps serving");
    }
    serde_json::to_value(&report).unwrap_or(Value::Null)
}

/// `POST /admin/reload`: rereads the registry now.
#[utoipa::path(
    post,
    path = "/admin/reload",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What the reload loaded, promoted and failed to load", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
    )
)]
pub async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(reload_now(&state).await))
}

/// `PUT /models/{name}/aliases/{alias}`: points an alias at a version that
/// loads, then reloads. A version that does not load leaves the alias as it
/// was (409).
#[utoipa::path(
    put,
    path = "/models/{name}/aliases/{alias}",
    tag = "admin",
    security(("admin_token" = [])),
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias, e.g. champion")),
    request_body = AliasRequest,
    responses(
        (status = 200, description = "Alias moved and models reloaded", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown version", body = ErrorBody),
        (status = 409, description = "The version does not load; alias unchanged", body = ErrorBody),
        (status = 422, description = "Invalid body or alias name", body = ErrorBody),
    )
)]
pub async fn set_alias(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, alias)): Path<(String, String)>,
    body: Result<ApiJson<AliasRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    // Authorise before looking at the body.
    authorize(&state, &headers)?;
    let ApiJson(request) = body?;
    let registry = state.store.registry().clone();
    presage_models::registry::check_alias(&alias)
        .map_err(|e| ApiError::invalid("invalid_alias", e.to_string(), "alias"))?;
    let version = request.version;
    let check = {
        let registry = registry.clone();
        let name = name.clone();
        let alias = alias.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
            registry
                .resolve(&name, &VersionSelector::Version(version))
                .map_err(|e| {
                    ApiError::new(StatusCode::NOT_FOUND, "unknown_version", e.to_string())
                        .with_field("version")
                })?;
            ModelArtifact::read(&registry.artifact_path(&name, version)).map_err(|e| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "version_unloadable",
                    format!("alias not moved: {e}"),
                )
                .with_field("version")
            })?;
            registry.set_alias(&name, &alias, version).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "registry_error",
                    e.to_string(),
                )
            })
        })
    };
    check.await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    let report = reload_now(&state).await;
    Ok(Json(
        json!({"model": name, "alias": alias, "version": version, "reload": report}),
    ))
}

#[cfg(test)]
mod tests {
    use super::secrets_equal;

    #[test]
    fn compares_secrets() {
        assert!(secrets_equal("s3cret", "s3cret"));
        assert!(!secrets_equal("s3cret", "s3creT"));
        assert!(!secrets_equal("s3cret", "s3cret "));
        assert!(!secrets_equal("", "x"));
    }
}
