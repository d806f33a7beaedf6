//! The Open Inference Protocol (KServe V2) for platform users:
//! `GET /v2/health/live`, `GET /v2/health/ready`, `GET /v2/models/{name}`,
//! `GET /v2/models/{name}/ready`, `POST /v2/models/{name}/infer` and
//! `POST /v2/models/{name}/versions/{version}/infer`.
//!
//! An inference request carries either one FP64 (or FP32) input of shape
//! `[n, n_features]` with the features in schema order (categorical
//! features as their dictionary codes, listed in the model metadata), or one
//! input per feature, named after it, of shape `[n]` or `[n, 1]` (numbers for
//! numeric features, `BYTES` strings for categorical ones). The answer has
//! two outputs, `probability` (FP64) and `segment` (BYTES). Warnings (missing
//! features, unseen categories, unknown inputs) come back in the response's
//! `parameters.warnings`. Errors use the API's JSON error format.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use presage_models::schema::{FeatureKind, UNSEEN_CATEGORY};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::store::LoadedVersion;

/// One input tensor.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InferInput {
    /// Tensor name: a feature name, or anything for the single matrix input.
    pub name: String,
    /// Tensor shape.
    pub shape: Vec<i64>,
    /// `FP64`, `FP32`, `INT64`, `INT32`, `BOOL` or `BYTES`.
    pub datatype: String,
    /// Values, flat or nested, row-major.
    #[schema(value_type = Vec<Object>)]
    pub data: Value,
}

/// An inference request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InferRequest {
    /// Echoed back.
    #[serde(default)]
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<InferInput>,
    /// Ignored (accepted for compatibility).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// Ignored: both outputs are always returned.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub outputs: Option<Value>,
}

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

fn champion(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<std::sync::Arc<LoadedVersion>, ApiError> {
    let catalog = state.store.catalog();
    let entry = catalog
        .models
        .get(name)
        .ok_or_else(|| ApiError::unknown_model(name, &catalog.servable()))?;
    let found = match version {
        None => entry.champion().cloned(),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .and_then(|v| entry.versions.get(&v).cloned()),
    };
    found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_version",
            format!(
                "model '{name}' has no loaded version {}",
                version.unwrap_or("champion")
            ),
        )
        .with_field("version")
    })
}

/// `GET /v2/models/{name}`: metadata.
#[utoipa::path(
    get,
    path = "/v2/models/{name}",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "Inputs, outputs, versions, feature order and categories", body = Object), (status = 404, description = "Unknown model", body = ErrorBody))
)]
pub async fn metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let model = champion(&state, &name, None)?;
    // A reload may have swapped the catalog since: read versions defensively.
    let catalog = state.store.catalog();
    let versions: Vec<String> = catalog
        .models
        .get(&name)
        .map(|entry| entry.versions.keys().map(u64::to_string).collect())
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
    responses((status = 200, description = "Ready", body = Object), (status = 404, description = "Unknown model", body = ErrorBody))
)]
pub async fn model_ready(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    champion(&state, &name, None)?;
    Ok(Json(json!({"name": name, "ready": true})))
}

/// Flattens nested JSON arrays into `out`.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

fn rows_of(shape: &[i64], field: &str) -> Result<usize, ApiError> {
    match shape {
        [n] | [n, 1] if *n >= 0 => Ok(*n as usize),
        _ => Err(ApiError::invalid(
            "invalid_shape",
            format!("shape {shape:?} is not [n] or [n, 1]"),
            field,
        )),
    }
}

fn number(value: &Value, field: &str) -> Result<f64, ApiError> {
    match value {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::Null => Ok(f64::NAN),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        _ => Err(ApiError::invalid("wrong_type", "expected numbers", field)),
    }
}

/// Encodes the request's tensors into row-major model rows.
fn encode(
    model: &LoadedVersion,
    request: &InferRequest,
    strict: bool,
) -> Result<(usize, Vec<f64>, Vec<String>), ApiError> {
    let schema = &model.artifact.schema;
    let width = schema.len();
    let mut warnings = Vec::new();
    if request.inputs.is_empty() {
        return Err(ApiError::invalid(
            "empty_request",
            "inputs is empty",
            "inputs",
        ));
    }
    // A single numeric matrix of all features.
    if let [input] = request.inputs.as_slice() {
        if input.shape.len() == 2
            && input.shape[1] as usize == width
            && !model.positions.contains_key(&input.name)
        {
            if !matches!(input.datatype.as_str(), "FP64" | "FP32") {
                return Err(ApiError::invalid(
                    "wrong_type",
                    "a matrix input must be FP64 or FP32",
                    "inputs[0].datatype",
                ));
            }
            let n = usize::try_from(input.shape[0]).map_err(|_| {
                ApiError::invalid("invalid_shape", "negative row count", "inputs[0].shape")
            })?;
            let mut values = Vec::new();
            flatten(&input.data, &mut values);
            if values.len() != n * width {
                return Err(ApiError::invalid(
                    "invalid_shape",
                    format!(
                        "shape [{n}, {width}] needs {} values, got {}",
                        n * width,
                        values.len()
                    ),
                    "inputs[0].data",
                ));
            }
            let rows = values
                .iter()
                .map(|v| number(v, "inputs[0].data"))
                .collect::<Result<Vec<f64>, _>>()?;
            return Ok((n, rows, warnings));
        }
    }
    // One input per feature.
    let n = rows_of(&request.inputs[0].shape, "inputs[0].shape")?;
    let mut rows = vec![f64::NAN; n * width];
    let mut given = vec![false; width];
    for (i, input) in request.inputs.iter().enumerate() {
        let field = format!("inputs[{i}]");
        if rows_of(&input.shape, &format!("{field}.shape"))? != n {
            return Err(ApiError::invalid(
                "invalid_shape",
                "every input needs the same number of rows",
                format!("{field}.shape"),
            ));
        }
        let Some(&position) = model.positions.get(&input.name) else {
            if strict {
                return Err(ApiError::invalid(
                    "unknown_feature",
                    format!("'{}' is not a feature of this model", input.name),
                    format!("{field}.name"),
                ));
            }
            warnings.push(format!("unknown input '{}' ignored", input.name));
            continue;
        };
        given[position] = true;
        let mut values = Vec::new();
        flatten(&input.data, &mut values);
        if values.len() != n {
            return Err(ApiError::invalid(
                "invalid_shape",
                format!("expected {n} values, got {}", values.len()),
                format!("{field}.data"),
            ));
        }
        let lookup = model.categories[position].as_ref();
        for (r, value) in values.iter().enumerate() {
            rows[r * width + position] = match (lookup, value) {
                (_, Value::Null) => f64::NAN,
                (None, v) => number(v, &format!("{field}.data"))?,
                (Some(lookup), Value::String(s)) => match lookup.get(s) {
                    Some(code) => f64::from(*code),
                    None => {
                        warnings.push(format!("unseen category for '{}' in row {r}", input.name));
                        UNSEEN_CATEGORY
                    }
                },
                (Some(_), _) => {
                    return Err(ApiError::invalid(
                        "wrong_type",
                        format!("'{}' is categorical: send BYTES strings", input.name),
                        format!("{field}.data"),
                    ))
                }
            };
        }
    }
    for (feature, given) in schema.features.iter().zip(&given) {
        if !given {
            warnings.push(format!(
                "missing input '{}' scored as missing",
                feature.name
            ));
        }
    }
    Ok((n, rows, warnings))
}

async fn infer_with(
    state: AppState,
    name: String,
    version: Option<String>,
    request: InferRequest,
) -> Result<Json<Value>, ApiError> {
    let model = champion(&state, &name, version.as_deref())?;
    let (n, rows, warnings) = encode(&model, &request, state.config.strict)?;
    if n > state.config.max_batch_rows {
        return Err(ApiError::invalid(
            "batch_too_large",
            format!(
                "{n} rows is more than this server's limit of {} (max_batch_rows)",
                state.config.max_batch_rows
            ),
            "inputs",
        ));
    }
    let width = model.compiled.n_features();
    let mut probabilities = model.compiled.predict_batch(&rows);
    let mut segments = Vec::with_capacity(n);
    for (p, row) in probabilities.iter_mut().zip(rows.chunks(width.max(1))) {
        *p = model.artifact.calibration.apply(*p);
        let assignment = model
            .policy
            .assign(*p, row, &model.artifact.score_quantiles);
        model.segment_counters[assignment.index].increment(1);
        model.score_histogram.record(*p);
        segments.push(assignment.segment.name.clone());
    }
    Ok(Json(json!({
        "model_name": name,
        "model_version": model.version().to_string(),
        "id": request.id,
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [n], "data": probabilities},
            {"name": "segment", "datatype": "BYTES", "shape": [n], "data": segments},
        ],
        "parameters": {"warnings": warnings},
    })))
}

/// `POST /v2/models/{name}/infer`.
#[utoipa::path(
    post,
    path = "/v2/models/{name}/infer",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    request_body = InferRequest,
    responses(
        (status = 200, description = "Outputs probability and segment", body = Object),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 422, description = "Wrong shape or type", body = ErrorBody),
    )
)]
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<InferRequest>,
) -> Result<Json<Value>, ApiError> {
    infer_with(state, name, None, request).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
#[utoipa::path(
    post,
    path = "/v2/models/{name}/versions/{version}/infer",
    tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Version number")),
    request_body = InferRequest,
    responses(
        (status = 200, description = "Outputs probability and segment", body = Object),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown model or version", body = ErrorBody),
        (status = 422, description = "Wrong shape or type", body = ErrorBody),
    )
)]
pub async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiJson(request): ApiJson<InferRequest>,
) -> Result<Json<Value>, ApiError> {
    infer_with(state, name, Some(version), request).await
}
