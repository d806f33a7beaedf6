//! The online store's routes: `POST /events` and `POST /users` (ingest),
//! `DELETE /users/{id}` (erasure), `GET /users/{id}/features` (the
//! computed vector, for debugging) and `POST /admin/online/compact`.
//!
//! Ingest bodies are JSON (`application/json`) or NDJSON
//! (`application/x-ndjson`); see [`crate::online::ingest`] for the formats.
//! The answer comes once the accepted changes are durable, and says what
//! happened to every item: accepted, duplicate, dropped (with the reason),
//! or rejected with its index and why. Items are independent: valid ones
//! are stored even when others are rejected, and the answer lists each
//! rejected one (`errors` is true), so nothing is dropped silently.
//!
//! Erasure, the feature vector (personal data) and compaction need the
//! admin token. No route logs a user id or a value.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use presage_models::time::{format_timestamp, parse_timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorBody};
use crate::online::features::{check_reach, user_features};
use crate::online::ingest::{self, BodyError, Expect, Rejection};
use crate::online::store::{CompactReport, OnlineStore, Outcome, StoreError};
use crate::routes::admin::authorize;
use crate::routes::predict::{resolve, Selector};
use crate::state::AppState;

/// Most rejected items listed one by one in an answer (all are counted).
const LISTED_REJECTIONS: usize = 100;

/// An ingest body: one item, an array of items, or (as
/// `application/x-ndjson`) one item per line. Each item's fields are
/// checked one by one and a bad item is listed in the answer's
/// `rejections`, so any object is a well-formed item here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IngestBody {
    /// One item (or a Segment `batch`).
    Item(Map<String, Value>),
    /// Several items.
    Items(Vec<Map<String, Value>>),
}

/// Answer of `POST /events` and `POST /users`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// True when any item was rejected.
    pub errors: bool,
    /// What happened to the accepted items.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Items rejected.
    pub rejected: usize,
    /// Segment messages of types the store does not use (page, screen, ...).
    pub ignored: usize,
    /// Events whose name no served model's extract had. They are stored
    /// all the same (within the retention horizons): a model trained later
    /// may read them.
    pub unknown_event_names: usize,
    /// The first rejected items, with their index and reason.
    pub rejections: Vec<Rejection>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    }
}

impl From<crate::triggers::TriggerError> for ApiError {
    fn from(e: crate::triggers::TriggerError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "triggers_unavailable",
            format!("the trigger journal or dead letter could not be read or written: {e}"),
        )
    }
}

/// The online store, or 404 when the server runs without one.
pub fn online(state: &AppState) -> Result<&OnlineStore, ApiError> {
    state.online.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "online_disabled",
            "this server has no online store; add an [online] section with dir = \"...\" to its config",
        )
    })
}

/// Reads an ingest body: JSON or NDJSON, within the body limit and deadline.
async fn ingest_body(request: Request) -> Result<axum::body::Bytes, ApiError> {
    let accepted = crate::json::media_type_is(&request, |mime| {
        matches!(
            mime,
            "application/json"
                | "application/x-ndjson"
                | "application/jsonl"
                | "application/ndjson"
        )
    });
    if !accepted {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON (`Content-Type: application/json`) or NDJSON (`application/x-ndjson`)",
        ));
    }
    crate::json::read_bytes(request, &()).await
}

async fn ingest(
    state: AppState,
    request: Request,
    expect: Expect,
) -> Result<Json<IngestResponse>, ApiError> {
    let store = online(&state)?;
    store.status()?;
    let body = ingest_body(request).await?;
    let config = store.config();
    let (traits, max_items) = (config.traits.clone(), config.max_events_per_request);
    let parsed = state
        .heavy
        .run(move || ingest::parse(&body, expect, &traits, max_items, crate::online::now_us()))
        .await?
        .map_err(|e| match e {
            BodyError::Malformed(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
            }
            BodyError::TooMany(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_items",
                e.to_string(),
            ),
            BodyError::NotObject { .. } => ApiError::invalid("invalid_body", e.to_string(), "body"),
        })?;
    let rejected = parsed.rejected.len();
    let unknown_event_names = unknown_event_names(&state, &parsed.changes);
    let outcome = if parsed.changes.is_empty() {
        Outcome::default()
    } else if let Some(triggers) = state.triggers.clone() {
        apply_with_triggers(&state, &triggers, store, parsed.changes).await?
    } else {
        store.apply(parsed.changes).await?
    };
    count(&outcome, rejected);
    let mut rejections = parsed.rejected;
    rejections.truncate(LISTED_REJECTIONS);
    Ok(Json(IngestResponse {
        errors: rejected > 0,
        outcome,
        rejected,
        ignored: parsed.ignored,
        unknown_event_names,
        rejections,
    }))
}

/// Events in `changes` whose name no served model's extract had (counted
/// in `presage_online_events_total{outcome="unknown_name"}`).
fn unknown_event_names(state: &AppState, changes: &crate::online::ingest::Changes) -> usize {
    use crate::online::log::RecordRef;
    let catalog = state.store.catalog();
    let known: std::collections::HashSet<&str> = catalog
        .models
        .values()
        .filter_map(|entry| entry.champion())
        .filter_map(|version| version.online.as_ref().ok())
        .flat_map(|spec| spec.events().iter().map(String::as_str))
        .collect();
    let unknown = changes
        .records()
        .filter(|(record, _)| matches!(record, RecordRef::Event(e) if !known.contains(e.name)))
        .count();
    if unknown > 0 {
        metrics::counter!("presage_online_events_total", "outcome" => "unknown_name")
            .increment(unknown as u64);
    }
    unknown
}

/// Applies changes with the triggers watching: the users with events are
/// scored before and after (for `segment_change` and `probability`
/// triggers), and new signups arm `no_event` deadlines. Answers once the
/// changes, the deadlines and the fired messages are durable.
async fn apply_with_triggers(
    state: &AppState,
    triggers: &std::sync::Arc<crate::triggers::Triggers>,
    store: &OnlineStore,
    changes: crate::online::ingest::Changes,
) -> Result<Outcome, ApiError> {
    use crate::online::log::RecordRef;
    let mut event_users: Vec<String> = changes
        .records()
        .filter_map(|(record, _)| match record {
            RecordRef::Event(e) => Some(e.user.to_owned()),
            _ => None,
        })
        .collect();
    event_users.sort_unstable();
    event_users.dedup();
    let signups: Vec<(String, i64)> = changes
        .records()
        .filter_map(|(record, _)| match record {
            RecordRef::User(u) => u.signup_us.map(|s| (u.user.to_owned(), s)),
            _ => None,
        })
        .collect();
    let (watching, changes) = {
        let shared = state.clone();
        state
            .heavy
            .run(move || (crate::triggers::score::before(&shared, &changes), changes))
            .await?
    };
    let outcome = store.apply(changes).await?;
    triggers.arm(state, &signups).await?;
    triggers.cancel_met(state, &event_users).await?;
    if let Some(watch) = watching {
        let shared = state.clone();
        let messages = state
            .heavy
            .run(move || crate::triggers::score::after(&shared, watch))
            .await?;
        triggers.fire(messages).await?;
    }
    Ok(outcome)
}

fn count(outcome: &Outcome, rejected: usize) {
    for (what, n) in [
        ("accepted", outcome.accepted),
        ("duplicate", outcome.duplicates),
        ("rejected", rejected as u64),
        ("dropped_before_signup", outcome.dropped_before_signup),
        ("dropped_expired", outcome.dropped_expired),
        ("dropped_no_consent", outcome.dropped_no_consent),
    ] {
        if n > 0 {
            metrics::counter!("presage_online_events_total", "outcome" => what).increment(n);
        }
    }
    if outcome.users_updated > 0 {
        metrics::counter!("presage_online_user_updates_total").increment(outcome.users_updated);
    }
}

/// `POST /events`: stores events (Presage's contract or Segment's
/// `track` / `identify` / `batch`).
#[utoipa::path(
    post,
    path = "/events",
    tag = "online",
    request_body(content = IngestBody, description = "A JSON array, one object or NDJSON of events ({user_id, event, occurred_at, event_id?, properties?}) or Segment messages", content_type = "application/json"),
    responses(
        (status = 200, description = "What happened to each item, once the accepted ones are durable", body = IngestResponse),
        (status = 400, description = "The body is not JSON or NDJSON", body = ErrorBody),
        (status = 404, description = "The server has no online store", body = ErrorBody),
        (status = 413, description = "Body over the limit, or too many items", body = ErrorBody),
        (status = 415, description = "Neither JSON nor NDJSON", body = ErrorBody),
        (status = 422, description = "An item is not an object", body = ErrorBody),
        (status = 503, description = "The store is recovering or failed", body = ErrorBody),
    )
)]
pub async fn post_events(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest(state, request, Expect::Events).await
}

/// `POST /users`: creates or updates users (signup time, consent,
/// attributes), or takes Segment `identify` messages.
#[utoipa::path(
    post,
    path = "/users",
    tag = "online",
    request_body(content = IngestBody, description = "A JSON array, one object or NDJSON of users ({user_id, signup_at?, consent?, attributes?}) or Segment identify messages", content_type = "application/json"),
    responses(
        (status = 200, description = "What happened to each item, once durable", body = IngestResponse),
        (status = 400, description = "The body is not JSON or NDJSON", body = ErrorBody),
        (status = 404, description = "The server has no online store", body = ErrorBody),
        (status = 413, description = "Body over the limit, or too many items", body = ErrorBody),
        (status = 415, description = "Neither JSON nor NDJSON", body = ErrorBody),
        (status = 422, description = "An item is not an object", body = ErrorBody),
        (status = 503, description = "The store is recovering or failed", body = ErrorBody),
    )
)]
pub async fn post_users(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest(state, request, Expect::Users).await
}

fn check_user_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > ingest::MAX_ID_BYTES {
        return Err(ApiError::invalid(
            "invalid_user_id",
            format!("user ids are 1 to {} bytes", ingest::MAX_ID_BYTES),
            "id",
        ));
    }
    Ok(())
}

/// `DELETE /users/{id}`: erases a user (admin token).
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "online",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Erased from memory; from disk at the next compaction (within erasure_delay_secs)", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 404, description = "The server has no online store", body = ErrorBody),
        (status = 422, description = "The id is too long", body = ErrorBody),
        (status = 503, description = "The store is recovering or failed", body = ErrorBody),
    )
)]
pub async fn erase_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let store = online(&state)?;
    check_user_id(&id)?;
    if let Some(triggers) = &state.triggers {
        triggers.erase(id.clone()).await?;
    }
    let existed = store.erase(id).await?;
    metrics::counter!("presage_online_erasures_total").increment(1);
    let delay = store.config().erasure_delay.as_secs();
    Ok(Json(serde_json::json!({
        "erased": existed,
        "on_disk": format!("removed from the store's files by the next compaction, at most {delay} s from now"),
    })))
}

/// Query of `GET /users/{id}/features`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeaturesQuery {
    /// The model whose features to compute.
    pub model: String,
    /// Compute as of this moment (RFC 3339, e.g. 2024-03-01T09:30:00Z)
    /// instead of now.
    #[param(format = DateTime)]
    pub as_of: Option<String>,
}

/// Parses `?as_of=` (RFC 3339: `2024-03-01T09:30:00Z`, an offset such as
/// `+02:00`, optional fractions of a second), or now.
pub fn as_of(text: Option<&str>) -> Result<i64, ApiError> {
    match text {
        None => Ok(crate::online::now_us()),
        Some(t) => parse_rfc3339(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "as_of is not an RFC 3339 time, e.g. 2024-03-01T09:30:00Z",
            )
            .with_field("as_of")
        }),
    }
}

/// An RFC 3339 date-time as microseconds since the epoch (UTC). A leap
/// second (`:60`) counts as the next second.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (offset_us, end) = match b[b.len() - 1] {
        b'Z' | b'z' => (0i64, b.len() - 1),
        _ if b.len() >= 25 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' => {
            let digits = |s: &[u8]| -> Option<i64> {
                (s.len() == 2 && s.iter().all(u8::is_ascii_digit))
                    .then(|| i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'))
            };
            let (h, m) = (
                digits(&b[b.len() - 5..b.len() - 3])?,
                digits(&b[b.len() - 2..])?,
            );
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if b[b.len() - 6] == b'-' { -1 } else { 1 };
            (sign * (h * 3_600_000_000 + m * 60_000_000), b.len() - 6)
        }
        _ => return None,
    };
    let body = std::str::from_utf8(&b[..end]).ok()?;
    // Seconds are required; the rest is the extract builder's own parser.
    let (hms, _) = body[11..].split_once('.').unwrap_or((&body[11..], ""));
    if hms.len() != 8 {
        return None;
    }
    let leap = &hms[6..8] == "60";
    let normal = if leap {
        format!("{}{}59{}", &body[..10], &body[10..17], &body[19..])
    } else {
        body.to_owned()
    };
    let normal = normal.replacen('t', "T", 1);
    let at = parse_timestamp(&normal)?;
    Some(at + if leap { 1_000_000 } else { 0 } - offset_us)
}

/// The window an online computation read, as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WindowBody {
    /// First instant read (ISO 8601, UTC).
    pub start: String,
    /// Events before this instant were read.
    pub cutoff: String,
    /// Whether the window is as long as the model's spec asks.
    pub complete: bool,
}

/// One user's features for a model, computed online, for the predict
/// route and the features route.
pub struct Computed<'v> {
    /// (feature name, value), names borrowed from the version.
    pub features: Vec<(&'v str, Value)>,
    /// The window read.
    pub window: Option<WindowBody>,
    /// Unknown user, unknown signup.
    pub warnings: Vec<String>,
}

/// Computes a user's features for a loaded version.
pub fn compute<'v>(
    store: &OnlineStore,
    version: &'v crate::store::LoadedVersion,
    model: &str,
    user_id: &str,
    as_of_us: i64,
) -> Result<Computed<'v>, ApiError> {
    let spec = version.online.as_ref().map_err(|why| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_online",
            format!("model '{model}' cannot be scored by user id: {why}"),
        )
    })?;
    check_reach(spec, store.config()).map_err(|why| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_online",
            format!("model '{model}' cannot be scored by user id: {why}"),
        )
    })?;
    let state = store.read()?;
    let columns = version.artifact.schema.names();
    let f = user_features(spec, columns, &state, user_id, as_of_us);
    drop(state);
    Ok(Computed {
        features: f.values,
        window: f.window.map(|w| WindowBody {
            start: format_timestamp(w.start_us),
            cutoff: format_timestamp(w.cutoff_us),
            complete: w.complete,
        }),
        warnings: f.warnings,
    })
}

/// `GET /users/{id}/features?model=NAME`: the feature vector the model
/// would be scored with now (admin token: these are personal data).
#[utoipa::path(
    get,
    path = "/users/{id}/features",
    tag = "online",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "User id"), FeaturesQuery),
    responses(
        (status = 200, description = "The computed features and the window they read", body = Object),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 404, description = "Unknown model, or no online store", body = ErrorBody),
        (status = 409, description = "The model cannot be scored by user id", body = ErrorBody),
        (status = 503, description = "The store is recovering or failed", body = ErrorBody),
    )
)]
pub async fn user_features_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<FeaturesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let store = online(&state)?;
    check_user_id(&id)?;
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let as_of_us = as_of(query.as_of.as_deref())?;
    let version = resolve(&state, &query.model, Selector::Champion).await?;
    let computed = compute(store, &version, &query.model, &id, as_of_us)?;
    Ok(Json(serde_json::json!({
        "model": query.model,
        "version": version.version(),
        "features": computed
            .features
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect::<Map<String, Value>>(),
        "window": computed.window,
        "warnings": computed.warnings,
    })))
}

/// `POST /admin/online/compact`: compacts the store now (admin token).
#[utoipa::path(
    post,
    path = "/admin/online/compact",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The snapshot written", body = CompactReport),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 404, description = "The server has no online store", body = ErrorBody),
        (status = 503, description = "The store is recovering or failed", body = ErrorBody),
    )
)]
pub async fn compact(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<CompactReport>, ApiError> {
    authorize(&state, &headers)?;
    let store = online(&state)?;
    Ok(Json(store.compact().await?))
}

/// Sets the store's gauges (users, bytes, lag, recovery time), for `/metrics`.
pub fn publish_gauges(store: &OnlineStore) {
    use std::sync::atomic::Ordering;
    let stats = &store.stats;
    metrics::gauge!("presage_online_store_disk_bytes")
        .set(stats.disk_bytes.load(Ordering::Relaxed) as f64);
    metrics::gauge!("presage_online_recovery_seconds")
        .set(stats.recovery_ms.load(Ordering::Relaxed) as f64 / 1000.0);
    metrics::gauge!("presage_online_compactions")
        .set(stats.compactions.load(Ordering::Relaxed) as f64);
    if let Ok(state) = store.read() {
        metrics::gauge!("presage_online_users").set(state.users.len() as f64);
        metrics::gauge!("presage_online_store_memory_bytes").set(state.heap_bytes() as f64);
        if state.clock_us > 0 {
            let lag = (crate::online::now_us() - state.clock_us) as f64 / 1e6;
            metrics::gauge!("presage_online_ingest_lag_seconds").set(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;
    use presage_models::time::parse_timestamp;

    #[test]
    fn as_of_reads_rfc_3339_and_nothing_else() {
        let t = |s: &str| parse_timestamp(s).unwrap();
        assert_eq!(
            parse_rfc3339("2024-03-01T09:30:00Z"),
            Some(t("2024-03-01T09:30:00"))
        );
        assert_eq!(
            parse_rfc3339("2024-03-01t09:30:00.25z"),
            Some(t("2024-03-01T09:30:00.25"))
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T11:30:00+02:00"),
            Some(t("2024-03-01T09:30:00"))
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T09:00:00-00:30"),
            Some(t("2024-03-01T09:30:00"))
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            Some(t("2017-01-01T00:00:00"))
        );
        for bad in [
            "2024-03-01",
            "2024-03-01T09:30Z",
            "2024-03-01T09:30:00",
            "2024-02-30T00:00:00Z",
            "2024-03-01T09:30:00+2:00",
            "",
            "2024-03-01 09:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}

/// `POST /admin/triggers/replay`: delivers every dead-lettered trigger
/// message again (with its idempotency key) and empties the dead letter
/// (admin token).
#[utoipa::path(
    post,
    path = "/admin/triggers/replay",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "How many messages were queued again", body = Object),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Admin endpoints are disabled", body = ErrorBody),
        (status = 404, description = "The server has no [triggers] section", body = ErrorBody),
        (status = 503, description = "The dead letter or journal could not be read or written", body = ErrorBody),
    )
)]
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let triggers = state.triggers.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "triggers_disabled",
            "this server has no [triggers] section; add one with webhook_url and webhook_secret",
        )
    })?;
    let replayed = triggers.replay_dead_letter().await?;
    Ok(Json(serde_json::json!({ "replayed": replayed })))
}
