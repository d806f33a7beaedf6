//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types, served at
//! `GET /openapi.json`. A test checks that every documented route answers
//! (no 404/405 from the router) and that every route of the router is
//! documented.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Limits;
use crate::error::{ErrorBody, ErrorDetail, V2ErrorBody};
use crate::online::ingest::Rejection;
use crate::online::store::{CompactReport, Outcome};
use crate::routes::admin::{self, AliasRequest};
use crate::routes::online::{self, IngestBody, IngestResponse, WindowBody};
use crate::routes::predict::{
    self, BatchRequest, BatchResponse, Onboarding, PredictRequest, PredictResponse, Prediction,
    Reason,
};
use crate::routes::v2::tensors::{
    Datatype, InferInput, InferRequest, OutputParameters, RequestParameters, RequestedOutput,
    TensorParameters,
};
use crate::routes::v2::{self, InferResponse, OutputTensor};
use crate::routes::{health, models};
use crate::state::AppState;

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
        online::post_events,
        online::post_users,
        online::erase_user,
        online::user_features_route,
        online::compact,
        online::replay_dead_letter,
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
        AliasRequest, InferRequest, InferInput, Datatype, TensorParameters, RequestedOutput, OutputParameters,
        RequestParameters, InferResponse, OutputTensor, ErrorBody, ErrorDetail, V2ErrorBody,
        IngestBody, IngestResponse, Outcome, Rejection, CompactReport, WindowBody,
    )),
    modifiers(&AdminToken, &EveryRoute)
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

/// Answers any route can give, added to every operation: 500 when a handler
/// fails (the body names the request id), 503 when the request took longer
/// than `request_timeout_ms`, and, for routes with a body, 408 when the
/// body did not arrive within `body_read_timeout_ms`.
struct EveryRoute;

impl Modify for EveryRoute {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    responses
                        .entry("408".into())
                        .or_insert_with(|| error("The body did not arrive in time").into());
                }
                responses.entry("500".into()).or_insert_with(|| {
                    error("The server failed on this request (the message names the request id)")
                        .into()
                });
                responses.entry("503".into()).or_insert_with(|| {
                    error("The request took too long, or the server is shutting down").into()
                });
            }
        }
    }
}

/// The document for a server with these limits: the generated document,
/// with the configured sizes (rows per batch, features per row) and the
/// value types the parsers accept written into the request schemas, which
/// the derive macros cannot say.
pub fn document(limits: &Limits) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let schemas = &mut doc["components"]["schemas"];
    let value = json!({"type": ["number", "string", "null"]});
    schemas["PredictRequest"]["additionalProperties"] = json!(false);
    schemas["PredictRequest"]["properties"]["user_id"] = json!({"type": ["string", "number", "null"], "description": "The caller's id for the user (echoed back; never logged)."});
    let features = &mut schemas["PredictRequest"]["properties"]["features"];
    features["additionalProperties"] = value;
    features["maxProperties"] = json!(limits.max_features_per_row);
    schemas["BatchRequest"]["additionalProperties"] = json!(false);
    let rows = &mut schemas["BatchRequest"]["properties"]["rows"];
    rows["minItems"] = json!(1);
    rows["maxItems"] = json!(limits.max_batch_rows);
    schemas["Prediction"]["properties"]["user_id"] =
        json!({"type": ["string", "number", "null"], "description": "As sent."});
    schemas["Reason"]["properties"]["value"] = json!({
        "type": ["number", "string", "null"],
        "description": "The value sent (null when missing)."
    });
    schemas["RequestedOutput"]["properties"]["name"] = json!({
        "type": "string",
        "enum": ["probability", "segment"],
        "description": "An output of every model."
    });
    // An input carries `data`, or binary data announced by its size.
    schemas["InferInput"]["anyOf"] = json!([
        {"required": ["data"], "properties": {"data": {"type": "array"}}},
        {"required": ["parameters"], "properties": {"parameters": {"required": ["binary_data_size"]}}},
    ]);
    // Binary outputs come as the JSON header followed by the tensors.
    for path in [
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ] {
        doc["paths"][path]["post"]["responses"]["200"]["content"]["application/octet-stream"] = json!({
            "schema": {"type": "string", "format": "binary",
                "description": "With binary outputs: the JSON answer (Inference-Header-Content-Length bytes), then each binary output's bytes"}
        });
    }
    let schemas = &mut doc["components"]["schemas"];
    let inputs = &mut schemas["InferRequest"]["properties"]["inputs"];
    inputs["minItems"] = json!(1);
    inputs["maxItems"] = json!(limits.max_features_per_row);
    let shape = &mut schemas["InferInput"]["properties"]["shape"];
    shape["minItems"] = json!(1);
    shape["maxItems"] = json!(2);
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config.limits))
}
