//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types, served at
//! `GET /openapi.json`. A test checks that every documented route answers
//! (no 404/405 from the router) and that every route of the router is
//! documented.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::admin::{self, AliasRequest};
use crate::routes::predict::{
    self, BatchRequest, BatchResponse, Onboarding, PredictRequest, PredictResponse, Prediction,
    Reason,
};
use crate::routes::v2::{self, InferInput, InferRequest};
use crate::routes::{health, models};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "presage-serve", description = "Predictive segmentation: score users and map probabilities to onboarding segments."),
    paths(
        predict::predict,
        predict::predict_batch,
        models::list,
        models::detail,
        models::drift,
        admin::set_alias,
        admin::reload,
        health::live,
        health::ready,
        health::metrics,
        v2::live,
        v2::ready,
        v2::metadata,
        v2::model_ready,
        v2::infer,
        v2::infer_version,
        openapi_json,
    ),
    components(schemas(
        PredictRequest, PredictResponse, Prediction, Onboarding, Reason, BatchRequest, BatchResponse,
        AliasRequest, InferRequest, InferInput, ErrorBody, ErrorDetail,
    )),
    modifiers(&AdminToken)
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
