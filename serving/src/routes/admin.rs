//! Admin endpoints: `POST /admin/reload` and
//! `PUT /models/{name}/aliases/{alias}` (body `{"version": N}`).
//!
//! Both need `Authorization: Bearer <token>` (the scheme in any case) with
//! the token from the config (`admin_token`) or `PRESAGE_ADMIN_TOKEN`.
//! Without a configured token they answer 403 and say how to enable them;
//! a missing or wrong token is 401. Tokens are compared in constant time
//! (see [`crate::config::AdminToken::matches`]).
//!
//! Moving an alias loads the target version in full first (read, validate,
//! compile, policy check, warm-up): a version that would not serve is 409
//! and the alias stays where it was.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use presage_models::registry::VersionSelector;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::store::ReloadReport;

/// Body of `PUT /models/{name}/aliases/{alias}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    /// Version the alias should point at.
    #[serde(deserialize_with = "crate::json::whole_number::deserialize")]
    #[schema(minimum = 0)]
    pub version: u64,
}

/// The bearer token of an `Authorization` header (scheme matched in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Whether the request carries the admin token (false when none is set).
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    match (&state.config.admin_token, bearer(headers)) {
        (Some(token), Some(given)) => token.matches(given),
        _ => false,
    }
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.admin_token.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled; set PRESAGE_ADMIN_TOKEN or admin_token in the config to enable them",
        ));
    }
    if is_admin(state, headers) {
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
    let report = match state.heavy.run(move || store.reload()).await {
        Ok(report) => report,
        Err(e) => ReloadReport {
            failed: vec![e.message],
            ..ReloadReport::default()
        },
    };
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
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias, e.g. champion", pattern = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$")),
    request_body = AliasRequest,
    responses(
        (status = 200, description = "Alias moved and models reloaded", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown version", body = ErrorBody),
        (status = 409, description = "The version does not load; alias unchanged", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
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
    let store = state.store.clone();
    let (model, alias_name) = (name.clone(), alias.clone());
    state
        .heavy
        .run(move || -> Result<(), ApiError> {
            registry
                .resolve(&model, &VersionSelector::Version(version))
                .map_err(|e| {
                    ApiError::new(StatusCode::NOT_FOUND, "unknown_version", e.to_string())
                        .with_field("version")
                })?;
            store.prepare(&model, version).map_err(|e| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "version_unloadable",
                    format!("alias not moved: {e}"),
                )
                .with_field("version")
            })?;
            registry
                .set_alias(&model, &alias_name, version)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "registry_error",
                        e.to_string(),
                    )
                })
        })
        .await??;
    let report = reload_now(&state).await;
    Ok(Json(
        json!({"model": name, "alias": alias, "version": version, "reload": report}),
    ))
}

#[cfg(test)]
mod tests {
    use super::bearer;
    use axum::http::{header::AUTHORIZATION, HeaderMap, HeaderValue};

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        let token = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            bearer(&headers).map(str::to_string)
        };
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("BEARER   abc").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearerabc"), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
