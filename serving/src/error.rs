//! The API's one error type. Every failure a handler can meet becomes an
//! [`ApiError`] with an HTTP status, a stable machine-readable `code`, a
//! message for people and the offending `field` when there is one, sent as
//! `{"error": {"code", "message", "field"}}`. Body-parsing rejections go
//! through the same type (see [`crate::json::ApiJson`]), so callers never see
//! axum's plain-text errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `unknown_model`.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// The request field at fault, if any.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

/// The error body, as documented in the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// Details of an error.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `unknown_model`.
    code: String,
    /// What went wrong and what to do.
    message: String,
    /// The request field at fault.
    field: Option<String>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 404 for a model that is not loaded.
    pub fn unknown_model(name: &str, loaded: &[String]) -> Self {
        let hint = if loaded.is_empty() {
            "no model is loaded yet; train one with `presage-train fit`".to_string()
        } else {
            format!("loaded models: {}", loaded.join(", "))
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!("no model named '{name}' is loaded ({hint})"),
        )
        .with_field("model")
    }

    /// 422 for input that parsed but cannot be scored.
    pub fn invalid(
        code: &'static str,
        message: impl Into<String>,
        field: impl Into<String>,
    ) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_field(field)
    }
}

/// An [`ApiError`] answered in the Open Inference Protocol's error shape,
/// `{"error": "<message>"}` (which `tritonclient` and the KServe SDK read),
/// with the API's `code` and `field` beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Error(pub ApiError);

impl From<ApiError> for V2Error {
    fn from(error: ApiError) -> Self {
        V2Error(error)
    }
}

#[derive(Serialize)]
struct V2Body<'a> {
    error: &'a str,
    code: &'a str,
    field: Option<&'a str>,
}

/// The error body of the V2 routes, as documented in the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct V2ErrorBody {
    /// What went wrong and what to do.
    error: String,
    /// Stable machine-readable code, e.g. `invalid_shape`.
    code: String,
    /// The request field at fault.
    field: Option<String>,
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let body = V2Body {
            error: &self.0.message,
            code: self.0.code,
            field: self.0.field.as_deref(),
        };
        (self.0.status, axum::Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
