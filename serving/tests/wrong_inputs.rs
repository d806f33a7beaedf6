//! In-process: every wrong input to the REST routes gets its exact status
//! and JSON error body (code and field), through the router itself, so a
//! failure points at a handler. (The real binary is exercised end to end
//! in `tests/tests/serve_api.rs`.)

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use support::{get, post_json, registry, router, send};

/// A complete row of the fixture model.
fn user() -> Value {
    json!({"user_id": "u-1", "features": {"tenure": 34, "charges": 56.95, "visits": 3, "plan": "yearly", "region": "north"}})
}

fn with_features(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut body = user();
    edit(body["features"].as_object_mut().unwrap());
    body.to_string()
}

#[tokio::test]
async fn wrong_inputs_get_exact_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(
        dir.path(),
        &registry(dir.path(), 1),
        "max_body_bytes = 4096\nmax_batch_rows = 3\n",
    );
    let user = user().to_string();
    let cases: Vec<(&str, String, StatusCode, &str, Option<&str>)> = vec![
        (
            "/predict/churn",
            r#"{"features": {"tenure": 3"#.into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "/predict/churn",
            format!(r#"{{"features": {{"x": "{}"}}}}"#, "a".repeat(5000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
        (
            "/predict/retention",
            user.clone(),
            StatusCode::NOT_FOUND,
            "unknown_model",
            Some("model"),
        ),
        (
            "/predict/churn?version=9",
            user.clone(),
            StatusCode::NOT_FOUND,
            "unknown_version",
            Some("version"),
        ),
        (
            "/predict/churn?alias=challenger",
            user.clone(),
            StatusCode::NOT_FOUND,
            "unknown_version",
            Some("alias"),
        ),
        (
            "/predict/churn?explain=lots",
            user.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some("explain"),
        ),
        (
            "/predict/churn",
            with_features(|f| {
                f.insert("tenure".into(), json!("five"));
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            Some("features.tenure"),
        ),
        (
            "/predict/churn",
            with_features(|f| {
                f.insert("plan".into(), json!(12));
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            Some("features.plan"),
        ),
        (
            "/predict/churn",
            r#"{"features": [1, 2]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            "/predict/churn",
            r#"{"features": {}, "user_id": {"a": 1}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            Some("user_id"),
        ),
        (
            "/predict/churn/batch",
            r#"{"rows": []}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_batch",
            Some("rows"),
        ),
        (
            "/predict/churn/batch",
            format!(r#"{{"rows": [{user}, {user}, {user}, {user}]}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
            Some("rows"),
        ),
        (
            "/predict/churn/batch",
            format!(
                r#"{{"rows": [{user}, {}]}}"#,
                with_features(|f| {
                    f.insert("tenure".into(), json!(true));
                })
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            Some("rows[1].features.tenure"),
        ),
    ];
    for (path, body, status, code, field) in cases {
        let answer = send(&app, post_json(path, body)).await;
        assert_eq!(
            answer.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            answer.error(),
            (code.to_string(), field.map(str::to_string)),
            "{path}"
        );
    }
    // The same complete row is scored: the cases above fail for their own reason.
    assert_eq!(
        send(&app, post_json("/predict/churn", user.clone()))
            .await
            .status,
        StatusCode::OK
    );
    let wrong_media = Request::post("/predict/churn")
        .header("content-type", "text/plain")
        .body(Body::from(user))
        .unwrap();
    let answer = send(&app, wrong_media).await;
    assert_eq!(
        (answer.status, answer.error().0.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let answer = send(&app, get("/predict")).await;
    assert_eq!(
        (answer.status, answer.error().0.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let answer = send(&app, get("/predict/churn")).await;
    assert_eq!(
        (answer.status, answer.error().0.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}
