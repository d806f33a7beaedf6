//! `POST /predict/{model}` and `POST /predict/{model}/batch`: score users,
//! map probabilities to segments, and explain with TreeSHAP on request.
//!
//! A single prediction without explanations costs microseconds and is
//! answered on the async worker. Batches and explanations go through the
//! [`crate::heavy::HeavyPool`]; an explained batch may hold at most
//! `max_explain_rows` rows.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use presage_models::shap::ShapWorkspace;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::routes::online::WindowBody;
use crate::row_parser::{self, ParseOptions, ParsedUser};
use crate::state::AppState;
use crate::store::{LoadError, LoadedVersion};

/// Most reasons `?explain=K` may ask for.
const MAX_EXPLAIN: usize = 100;

/// One user to score. Bodies are parsed by [`crate::row_parser`] straight
/// into model rows; this type describes them for the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
pub struct PredictRequest {
    /// The caller's id for the user, a string or a number (echoed back; never logged).
    #[schema(value_type = Option<String>)]
    pub user_id: Option<Value>,
    /// Feature name → value: numbers for numeric features, strings for categorical ones, null for missing.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
}

/// Many users to score (described for the OpenAPI document, like
/// [`PredictRequest`]).
#[derive(Debug, utoipa::ToSchema)]
pub struct BatchRequest {
    /// Users, answered in the same order.
    pub rows: Vec<PredictRequest>,
}

/// Query parameters of the predict routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PredictQuery {
    /// Return the K strongest feature contributions (0 to 100).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100)]
    pub explain: Option<String>,
    /// Score with this version instead of the champion (loaded on demand).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub version: Option<String>,
    /// Score with the version this alias points at (with `version`: it must
    /// point at that version).
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
    pub alias: Option<String>,
    /// With an online store: compute the user's features as of this moment
    /// (RFC 3339, e.g. 2024-03-01T09:30:00Z) instead of now.
    #[param(format = DateTime)]
    pub as_of: Option<String>,
    /// With an online store and a body that has `features`: start from the
    /// user's online features and let the sent ones override them. A body
    /// with a `user_id` and no `features` is always scored online; one
    /// without a `user_id` is scored as sent.
    #[param(value_type = Option<bool>)]
    pub online: Option<String>,
}

/// Query parameters of the batch route (scoring by user id is per user).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// Return the K strongest feature contributions (0 to 100).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100)]
    pub explain: Option<String>,
    /// Score with this version instead of the champion (loaded on demand).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub version: Option<String>,
    /// Score with the version this alias points at (with `version`: it must
    /// point at that version).
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
    pub alias: Option<String>,
}

impl From<BatchQuery> for PredictQuery {
    fn from(q: BatchQuery) -> Self {
        PredictQuery {
            explain: q.explain,
            version: q.version,
            alias: q.alias,
            ..PredictQuery::default()
        }
    }
}

/// The onboarding payload of a segment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Onboarding {
    /// Flow id.
    pub flow: String,
    /// Free-form attributes.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// One feature's contribution to the raw score.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// Feature name.
    pub feature: String,
    /// The value sent (null when missing).
    #[schema(value_type = Object)]
    pub value: Value,
    /// Contribution to the raw score (log-odds for boosted models).
    pub contribution: f64,
}

/// One scored user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Prediction {
    /// As sent.
    #[schema(value_type = Option<String>)]
    pub user_id: Value,
    /// Calibrated probability.
    pub probability: f64,
    /// Segment name.
    pub segment: String,
    /// The rule that chose the segment, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What the onboarding flow should do.
    pub onboarding: Onboarding,
    /// Non-fatal input problems.
    pub warnings: Vec<String>,
    /// Strongest contributions, with `?explain=K`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
}

/// Answer of `POST /predict/{model}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PredictResponse {
    /// Model name.
    pub model: String,
    /// Version that scored.
    pub version: u64,
    /// `"online"` when the features were computed from the online store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features_source: Option<&'static str>,
    /// The window the online features read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowBody>,
    /// The prediction.
    #[serde(flatten)]
    pub prediction: Prediction,
}

/// The parts of a predict body that decide whether it is scored online.
#[derive(Deserialize)]
struct Probe {
    user_id: Option<Value>,
    features: Option<Map<String, Value>>,
}

/// What scoring online will read: whose features, as of when, and the
/// features sent on top (with `?online=true`).
struct OnlineQuery {
    store: std::sync::Arc<crate::online::store::OnlineStore>,
    id: String,
    user_id: Option<Value>,
    sent: Option<Map<String, Value>>,
    as_of_us: i64,
}

/// With an online store, a body with a `user_id` and no `features` (or any
/// body with `?online=true`) is scored with the user's online features,
/// with sent ones on top. Returns the body (parsed as sent when not scored
/// online) and, when scored online, what to read.
fn online_body(
    state: &AppState,
    options: &Options,
    body: axum::body::Bytes,
) -> (axum::body::Bytes, Option<OnlineQuery>) {
    let Some(store) = state.online.as_ref() else {
        return (body, None);
    };
    let forced = options.online;
    // Cheap test first: a body naming `features` is scored as sent.
    if !forced && memchr_features(&body) {
        return (body, None);
    }
    let Ok(probe) = serde_json::from_slice::<Probe>(&body) else {
        // The row parser answers the precise error.
        return (body, None);
    };
    if probe.features.is_some() && !forced {
        return (body, None);
    }
    let id = match &probe.user_id {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        // Without a usable id there is nothing to look up: scored as sent.
        _ => return (body, None),
    };
    let query = OnlineQuery {
        store: store.clone(),
        id,
        user_id: probe.user_id,
        sent: probe.features,
        as_of_us: options.as_of_us.unwrap_or_else(crate::online::now_us),
    };
    (body, Some(query))
}

/// Whether the body contains the key text `"features"` at all.
fn memchr_features(body: &[u8]) -> bool {
    body.windows(10).any(|w| w == b"\"features\"")
}

/// Answer of `POST /predict/{model}/batch`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// Model name.
    pub model: String,
    /// Version that scored.
    pub version: u64,
    /// Predictions in request order.
    pub results: Vec<Prediction>,
}

#[derive(Debug, Clone, Copy)]
struct Options {
    explain: usize,
    /// `?online=true`.
    online: bool,
    /// `?as_of=`, parsed.
    as_of_us: Option<i64>,
}

fn parse_options(state: &AppState, options: &Options) -> ParseOptions {
    let limits = &state.config.limits;
    ParseOptions {
        strict: state.config.strict,
        keep_values: options.explain > 0,
        max_rows: limits.max_batch_rows,
        max_features: limits.max_features_per_row,
    }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        rejection.body_text(),
    )
}

/// Picks the version to score with (loading a `?version=N` that is in the
/// registry but not loaded) and parses the options.
async fn select(
    state: &AppState,
    model: &str,
    query: &PredictQuery,
) -> Result<(Arc<LoadedVersion>, Options), ApiError> {
    let explain = match &query.explain {
        None => 0,
        Some(k) => k
            .parse::<usize>()
            .ok()
            .filter(|k| *k <= MAX_EXPLAIN)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("explain must be a whole number from 0 to {MAX_EXPLAIN}"),
                )
                .with_field("explain")
            })?,
    };
    let number = match &query.version {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("version '{v}' is not a whole number"),
            )
            .with_field("version")
        })?),
    };
    let selector = match (number, &query.alias) {
        (Some(v), _) => Selector::Version(v),
        (None, Some(alias)) => Selector::Alias(alias),
        (None, None) => Selector::Champion,
    };
    let version = resolve(state, model, selector).await?;
    // Both given: they must name the same version.
    if let (Some(number), Some(alias)) = (number, &query.alias) {
        let pointed = resolve(state, model, Selector::Alias(alias)).await?;
        if pointed.version() != number {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_version",
                format!(
                    "alias '{alias}' of model '{model}' points at version {}, not {number}",
                    pointed.version()
                ),
            )
            .with_field("alias"));
        }
    }
    let online = match query.online.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "online must be true or false",
            )
            .with_field("online"))
        }
    };
    let as_of_us = match &query.as_of {
        None => None,
        Some(text) => Some(crate::routes::online::as_of(Some(text))?),
    };
    Ok((
        version,
        Options {
            explain,
            online,
            as_of_us,
        },
    ))
}

/// Which version of a model a request asks for.
#[derive(Debug, Clone, Copy)]
pub enum Selector<'a> {
    /// The champion.
    Champion,
    /// A version number (loaded on demand).
    Version(u64),
    /// The version an alias points at.
    Alias(&'a str),
}

/// The loaded version `selector` names, loading a numbered version on
/// demand (in the heavy-work pool). Shared by the REST and V2 routes.
pub async fn resolve(
    state: &AppState,
    model: &str,
    selector: Selector<'_>,
) -> Result<Arc<LoadedVersion>, ApiError> {
    let catalog = state.store.catalog();
    let entry = catalog
        .models
        .get(model)
        .ok_or_else(|| ApiError::unknown_model(model, &catalog.servable()))?;
    let not_found = |what: String, field: &str| {
        let available: Vec<String> = entry.available.iter().map(u64::to_string).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_version",
            format!(
                "model '{model}' has no {what} (versions: {})",
                available.join(", ")
            ),
        )
        .with_field(field)
    };
    match selector {
        Selector::Champion => entry.champion().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_version",
                format!(
                    "model '{model}' has no loadable champion (see GET /models/{model} for errors)"
                ),
            )
        }),
        Selector::Alias(alias) => entry
            .aliases
            .get(alias)
            .and_then(|v| entry.versions.get(v))
            .cloned()
            .ok_or_else(|| not_found(format!("loaded alias '{alias}'"), "alias")),
        Selector::Version(number) => {
            if let Some(loaded) = entry.versions.get(&number) {
                return Ok(loaded.clone());
            }
            if !entry.available.contains(&number) {
                return Err(not_found(format!("version {number}"), "version"));
            }
            let store = state.store.clone();
            let name = model.to_string();
            state
                .heavy
                .run(move || store.load_on_demand(&name, number))
                .await?
                .map_err(|e| match e {
                    LoadError::NotFound { .. } => not_found(format!("version {number}"), "version"),
                    other => ApiError::new(
                        StatusCode::CONFLICT,
                        "version_unloadable",
                        format!("version {number} cannot be served: {other}"),
                    )
                    .with_field("version"),
                })
        }
    }
}

thread_local! {
    static SHAP: std::cell::RefCell<(ShapWorkspace, Vec<f64>)> = std::cell::RefCell::new((ShapWorkspace::new(), Vec::new()));
}

/// The K largest contributions by magnitude (ties: schema order); `sent`
/// holds the values as sent, by schema position.
fn explain(model: &LoadedVersion, row: &[f64], sent: &[Value], k: usize) -> Vec<Reason> {
    SHAP.with_borrow_mut(|(workspace, contributions)| {
        contributions.clear();
        contributions.resize(row.len() + 1, 0.0);
        workspace.contributions_into(&model.artifact.ensemble, row, contributions);
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| {
            contributions[b]
                .abs()
                .total_cmp(&contributions[a].abs())
                .then(a.cmp(&b))
        });
        order
            .into_iter()
            .take(k)
            .map(|i| Reason {
                feature: model.artifact.schema.features[i].name.clone(),
                value: sent[i].clone(),
                contribution: contributions[i],
            })
            .collect()
    })
}

/// Segment, metrics and response for one scored user.
fn predict_one(
    model: &LoadedVersion,
    user: ParsedUser,
    probability: f64,
    options: &Options,
) -> Prediction {
    let encoded = user.encoded;
    let quantiles = &model.artifact.score_quantiles;
    let assignment = model.policy.assign(probability, &encoded.row, quantiles);
    let segment = assignment.segment;
    model.segment_counters[assignment.index].increment(1);
    model.score_histogram.record(probability);
    model.drift.record(&encoded.row, probability);
    let reasons = match (options.explain, &encoded.sent) {
        (0, _) | (_, None) => None,
        (k, Some(sent)) => Some(explain(model, &encoded.row, sent, k)),
    };
    Prediction {
        user_id: user.user_id.unwrap_or(Value::Null),
        probability,
        segment: segment.name.clone(),
        rule: assignment.rule.map(str::to_string),
        onboarding: Onboarding {
            flow: segment.flow.clone(),
            attributes: segment.attributes.clone(),
        },
        warnings: encoded.warnings,
        reasons,
    }
}

/// `POST /predict/{model}`.
#[utoipa::path(
    post,
    path = "/predict/{model}",
    tag = "scoring",
    params(("model" = String, Path, description = "Model name"), PredictQuery),
    request_body = PredictRequest,
    responses(
        (status = 200, description = "Probability, segment and onboarding", body = PredictResponse),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 404, description = "Unknown model or version", body = ErrorBody),
        (status = 409, description = "The version asked for is in the registry but cannot be served", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A feature has the wrong type, or too many features", body = ErrorBody),
    )
)]
pub async fn predict(
    State(state): State<AppState>,
    Path(model): Path<String>,
    query: Result<Query<PredictQuery>, QueryRejection>,
    JsonBody(body): JsonBody,
) -> Result<Json<PredictResponse>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let (version, options) = select(&state, &model, &query).await?;
    let parse = parse_options(&state, &options);
    let (body, online) = online_body(&state, &options, body);
    let score = move || -> Result<PredictResponse, ApiError> {
        let (user, online) = match online {
            Some(q) => {
                let computed =
                    crate::routes::online::compute(&q.store, &version, &model, &q.id, q.as_of_us)?;
                let user = row_parser::encode_features(
                    &computed.features,
                    q.sent.as_ref(),
                    q.user_id,
                    &version,
                    parse,
                )?;
                (user, Some((computed.window, computed.warnings)))
            }
            None => (row_parser::parse_user(&body, &version, parse)?, None),
        };
        let probability = version.probability(&user.encoded.row);
        let mut prediction = predict_one(&version, user, probability, &options);
        let (features_source, window) = match online {
            Some((window, warnings)) => {
                prediction.warnings.splice(0..0, warnings);
                (Some("online"), window)
            }
            None => (None, None),
        };
        Ok(PredictResponse {
            model,
            version: version.version(),
            features_source,
            window,
            prediction,
        })
    };
    let response = if options.explain > 0 {
        state.heavy.run(score).await??
    } else {
        score()?
    };
    Ok(Json(response))
}

/// `POST /predict/{model}/batch`.
#[utoipa::path(
    post,
    path = "/predict/{model}/batch",
    tag = "scoring",
    params(("model" = String, Path, description = "Model name"), BatchQuery),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Predictions in request order", body = BatchResponse),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 404, description = "Unknown model or version", body = ErrorBody),
        (status = 409, description = "The version asked for is in the registry but cannot be served", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Empty or oversized batch, too many rows to explain, or a wrong feature type", body = ErrorBody),
    )
)]
pub async fn predict_batch(
    State(state): State<AppState>,
    Path(model): Path<String>,
    query: Result<Query<BatchQuery>, QueryRejection>,
    JsonBody(body): JsonBody,
) -> Result<Json<BatchResponse>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let query = PredictQuery::from(query);
    let (version, options) = select(&state, &model, &query).await?;
    let parse = parse_options(&state, &options);
    let max_explain_rows = state.config.limits.max_explain_rows;
    let response = state
        .heavy
        .run(move || score_batch(&body, model, &version, parse, options, max_explain_rows))
        .await??;
    Ok(Json(response))
}

/// Parses, scores and (optionally) explains a batch, on a blocking thread.
fn score_batch(
    body: &[u8],
    model: String,
    version: &LoadedVersion,
    parse: ParseOptions,
    options: Options,
    max_explain_rows: usize,
) -> Result<BatchResponse, ApiError> {
    let users = row_parser::parse_batch(body, version, parse)?;
    let n = users.len();
    if n == 0 {
        return Err(ApiError::invalid(
            "empty_batch",
            "rows is empty; send at least one row",
            "rows",
        ));
    }
    if options.explain > 0 && n > max_explain_rows {
        return Err(ApiError::invalid(
            "explain_too_large",
            format!(
                "{n} rows is more than this server explains in one request ({max_explain_rows}, max_explain_rows); send fewer rows or drop ?explain"
            ),
            "rows",
        ));
    }
    let matrix: Vec<f64> = users
        .iter()
        .flat_map(|u| u.encoded.row.iter().copied())
        .collect();
    let mut probabilities = version.compiled.predict_batch(&matrix);
    for p in &mut probabilities {
        *p = version.artifact.calibration.apply(*p);
    }
    let results = users
        .into_iter()
        .zip(probabilities)
        .map(|(user, p)| predict_one(version, user, p, &options))
        .collect();
    Ok(BatchResponse {
        model,
        version: version.version(),
        results,
    })
}
