//! The Open Inference Protocol (KServe V2) for platform users:
//! `GET /v2/health/live`, `GET /v2/health/ready`, `GET /v2/models/{name}`,
//! `GET /v2/models/{name}/ready`, `POST /v2/models/{name}/infer` and
//! `POST /v2/models/{name}/versions/{version}/infer`.
//!
//! [`tensors`] decodes the request's inputs into model rows (per-feature
//! inputs or one matrix, JSON or binary data) and [`wire`] implements
//! Triton's binary tensor data extension, so NVIDIA's `tritonclient` works
//! in both its modes. The body may come without a `Content-Type` (as
//! `tritonclient` sends JSON). The answer has two outputs, `probability`
//! (FP64) and `segment` (BYTES), or the ones the request names, each as JSON
//! data or binary as asked. Warnings (missing features, unseen categories,
//! unknown inputs) come back in the response's `parameters.warnings`.
//! Errors use the API's JSON error format. Decoding and scoring run in the
//! heavy-work pool.

pub mod tensors;
pub mod wire;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use presage_models::schema::FeatureKind;
use serde_json::{json, Value};

use self::tensors::{decode, DecodeLimits, InferRequest};
use crate::error::{ApiError, V2Error, V2ErrorBody};
use crate::json::RawBody;
use crate::routes::predict::{resolve, Selector};
use crate::state::AppState;
use crate::store::LoadedVersion;

/// `GET /v2/health/live`.
#[utoipa::path(get, path = "/v2/health/live", tag = "open inference protocol", responses((status = 200, description = "Live", body = Object)))]
pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// `GET /v2/health/ready`: ready as `/readyz` is.
#[utoipa::path(
    get,
    path = "/v2/health/ready",
    tag = "open inference protocol",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = Object))
)]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let ready = state.readiness().ready();
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({"ready": ready})),
    )
}

async fn champion(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<std::sync::Arc<LoadedVersion>, ApiError> {
    let selector = match version {
        None => Selector::Champion,
        Some(v) => Selector::Version(v.parse::<u64>().map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_version",
                format!("model '{name}' has no version '{v}' (versions are whole numbers)"),
            )
            .with_field("version")
        })?),
    };
    resolve(state, name, selector).await
}

/// `GET /v2/models/{name}`: metadata.
#[utoipa::path(
    get,
    path = "/v2/models/{name}",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "Inputs, outputs, versions, feature order and categories", body = Object), (status = 404, description = "Unknown model", body = V2ErrorBody))
)]
pub async fn metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, V2Error> {
    let model = champion(&state, &name, None).await?;
    // A reload may have swapped the catalog since: read versions defensively.
    let catalog = state.store.catalog();
    let versions: Vec<String> = catalog
        .models
        .get(&name)
        .map(|entry| entry.available.iter().map(u64::to_string).collect())
        .unwrap_or_else(|| vec![model.version().to_string()]);
    let schema = &model.artifact.schema;
    let inputs: Vec<Value> = schema
        .features
        .iter()
        .map(|f| {
            let datatype = if f.is_categorical() { "BYTES" } else { "FP64" };
            json!({"name": f.name, "datatype": datatype, "shape": [-1]})
        })
        .collect();
    let categories: serde_json::Map<String, Value> = schema
        .features
        .iter()
        .filter_map(|f| match &f.kind {
            FeatureKind::Categorical { categories } => Some((f.name.clone(), json!(categories))),
            FeatureKind::Numeric => None,
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "versions": versions,
        "platform": "presage",
        "inputs": inputs,
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "segment", "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {
            "champion": model.version(),
            "feature_order": schema.names().collect::<Vec<_>>(),
            "matrix_input": format!("or one FP64 input of shape [-1, {}] in feature_order, categorical features as their index in categories", schema.len()),
            "categories": categories,
        },
    })))
}

/// `GET /v2/models/{name}/ready`.
#[utoipa::path(
    get,
    path = "/v2/models/{name}/ready",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "Ready", body = Object), (status = 404, description = "Unknown model", body = V2ErrorBody))
)]
pub async fn model_ready(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, V2Error> {
    champion(&state, &name, None).await?;
    Ok(Json(json!({"name": name, "ready": true})))
}

/// One output tensor of an answer (described for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OutputTensor {
    /// `probability` or `segment`.
    name: String,
    /// `FP64` for probability, `BYTES` for segment.
    datatype: String,
    /// `[n]`.
    #[schema(minimum = 0)]
    shape: Vec<u64>,
    /// The values (absent when answered as binary data).
    #[schema(value_type = Option<Vec<Object>>)]
    data: Option<Value>,
    /// `binary_data_size` when answered as binary data.
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
}

/// An inference answer (described for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct InferResponse {
    /// Model name.
    model_name: String,
    /// Version that scored.
    model_version: String,
    /// The request's id, echoed.
    id: Option<String>,
    /// Output tensors.
    outputs: Vec<OutputTensor>,
    /// `warnings`: missing features, unseen categories, unknown inputs.
    #[schema(value_type = Object)]
    parameters: Value,
}

/// The two outputs every model answers.
const OUTPUTS: [&str; 2] = ["probability", "segment"];

/// Which outputs to answer, in order, and whether each is binary.
fn requested_outputs(request: &InferRequest) -> Result<Vec<(usize, bool)>, ApiError> {
    let all_binary = request
        .parameters
        .as_ref()
        .and_then(|p| p.binary_data_output)
        .unwrap_or(false);
    let Some(outputs) = &request.outputs else {
        return Ok(vec![(0, all_binary), (1, all_binary)]);
    };
    outputs
        .iter()
        .enumerate()
        .map(|(i, output)| {
            let index = OUTPUTS
                .iter()
                .position(|o| *o == output.name)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "unknown_output",
                        format!(
                            "'{}' is not an output; the outputs are probability and segment",
                            output.name
                        ),
                        format!("outputs[{i}].name"),
                    )
                })?;
            let binary = output
                .parameters
                .as_ref()
                .and_then(|p| p.binary_data)
                .unwrap_or(all_binary);
            Ok((index, binary))
        })
        .collect()
}

/// Accepts JSON with or without a `Content-Type`, and any type for a
/// binary-framed body; anything else is 415.
fn check_content_type(headers: &HeaderMap, framed: bool) -> Result<(), ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "compressed requests are not accepted; send the body uncompressed (no Content-Encoding)",
            ));
        }
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if json || (framed && mime == "application/octet-stream") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request as JSON (Content-Type: application/json, or none), or with Triton's binary extension (Inference-Header-Content-Length)",
        ))
    }
}

/// Decodes, scores and answers one request (on a blocking thread).
fn infer_blocking(
    state: &AppState,
    name: &str,
    model: &LoadedVersion,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let framed = wire::split(headers, body)?;
    check_content_type(headers, headers.contains_key(wire::HEADER_LENGTH))?;
    let json = wire::nan_to_null(framed.json);
    let request: InferRequest = serde_json::from_slice(&json).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the inference request does not have the protocol's shape: {e}"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the inference request is not JSON: {e}"),
            )
        }
    })?;
    let outputs = requested_outputs(&request)?;
    let limits = DecodeLimits {
        max_rows: state.config.limits.max_batch_rows,
        max_inputs: state.config.limits.max_features_per_row,
    };
    let decoded = decode(model, &request, framed.binary, state.config.strict, limits)?;
    let (n, rows) = (decoded.n, decoded.rows);
    let width = model.compiled.n_features();
    let mut probabilities = model.compiled.predict_batch(&rows);
    let mut segments: Vec<&str> = Vec::with_capacity(n);
    for (p, row) in probabilities.iter_mut().zip(rows.chunks(width.max(1))) {
        *p = model.artifact.calibration.apply(*p);
        let assignment = model
            .policy
            .assign(*p, row, &model.artifact.score_quantiles);
        model.segment_counters[assignment.index].increment(1);
        model.score_histogram.record(*p);
        segments.push(&assignment.segment.name);
    }
    let mut binary = Vec::new();
    let answered: Vec<Value> = outputs
        .iter()
        .map(|&(index, as_binary)| {
            let (name, datatype) = match index {
                0 => ("probability", "FP64"),
                _ => ("segment", "BYTES"),
            };
            let mut output = json!({"name": name, "datatype": datatype, "shape": [n]});
            if as_binary {
                let start = binary.len();
                match index {
                    0 => wire::put_fp64(&mut binary, &probabilities),
                    _ => wire::put_bytes(&mut binary, &segments),
                }
                output["parameters"] = json!({"binary_data_size": binary.len() - start});
            } else {
                output["data"] = match index {
                    0 => json!(probabilities),
                    _ => json!(segments),
                };
            }
            output
        })
        .collect();
    let answer = json!({
        "model_name": name,
        "model_version": model.version().to_string(),
        "id": request.id,
        "outputs": answered,
        "parameters": {"warnings": decoded.warnings},
    });
    if !outputs.iter().any(|&(_, b)| b) {
        return Ok(Json(answer).into_response());
    }
    let mut body = serde_json::to_vec(&answer).unwrap_or_default();
    let json_length = body.len();
    body.extend_from_slice(&binary);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(wire::HEADER_LENGTH, HeaderValue::from(json_length));
    Ok(response)
}

async fn infer_with(
    state: AppState,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let model = champion(&state, &name, version.as_deref()).await?;
    let pool = state.heavy.clone();
    pool.run(move || infer_blocking(&state, &name, &model, &headers, &body))
        .await?
}

/// `POST /v2/models/{name}/infer`.
#[utoipa::path(
    post,
    path = "/v2/models/{name}/infer",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    request_body = InferRequest,
    responses(
        (status = 200, description = "The outputs (probability and segment, or those asked for); with the binary extension, JSON then the binary outputs", body = InferResponse),
        (status = 400, description = "Malformed JSON or binary framing", body = V2ErrorBody),
        (status = 404, description = "Unknown model or version", body = V2ErrorBody),
        (status = 413, description = "Body over the limit", body = V2ErrorBody),
        (status = 415, description = "Neither JSON nor the binary extension", body = V2ErrorBody),
        (status = 422, description = "Wrong shape, type, size or output name, or too many rows", body = V2ErrorBody),
    )
)]
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Result<Response, V2Error> {
    let RawBody(body) = body?;
    Ok(infer_with(state, name, None, headers, body).await?)
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
#[utoipa::path(
    post,
    path = "/v2/models/{name}/versions/{version}/infer",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Version number")),
    request_body = InferRequest,
    responses(
        (status = 200, description = "The outputs (probability and segment, or those asked for); with the binary extension, JSON then the binary outputs", body = InferResponse),
        (status = 400, description = "Malformed JSON or binary framing", body = V2ErrorBody),
        (status = 404, description = "Unknown model or version", body = V2ErrorBody),
        (status = 413, description = "Body over the limit", body = V2ErrorBody),
        (status = 415, description = "Neither JSON nor the binary extension", body = V2ErrorBody),
        (status = 422, description = "Wrong shape, type, size or output name, or too many rows", body = V2ErrorBody),
    )
)]
pub async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Result<Response, V2Error> {
    let RawBody(body) = body?;
    Ok(infer_with(state, name, Some(version), headers, body).await?)
}
