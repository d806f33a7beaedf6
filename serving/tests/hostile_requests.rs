//! In-process: requests that ask for more than they send are answered 4xx
//! without allocating from their claims, warnings stay bounded, and the
//! server keeps answering afterwards.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{get, post_json, registry, router, send};

const LIMITS: &str = "max_batch_rows = 100\nmax_features_per_row = 20\nmax_explain_rows = 5\n";

#[tokio::test]
async fn a_ninety_byte_v2_request_asking_for_terabytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), "");
    // The request from the bug report: 10^11 rows of one feature, no data.
    let body =
        r#"{"inputs":[{"name":"tenure","shape":[100000000000],"datatype":"FP64","data":[]}]}"#;
    assert!(body.len() < 100);
    let answer = send(&app, post_json("/v2/models/churn/infer", body)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error(),
        ("batch_too_large".into(), Some("inputs[0].shape".into()))
    );
    // As a matrix, and as a shape whose product overflows.
    let width = support::FEATURES.len();
    let matrix = format!(
        r#"{{"inputs":[{{"name":"m","shape":[100000000000,{width}],"datatype":"FP64","data":[]}}]}}"#
    );
    let answer = send(&app, post_json("/v2/models/churn/infer", matrix)).await;
    assert_eq!(answer.error().0, "batch_too_large");
    let overflow = r#"{"inputs":[{"name":"m","shape":[4294967296,4294967296,4294967296],"datatype":"FP64","data":[]}]}"#;
    let answer = send(&app, post_json("/v2/models/churn/infer", overflow)).await;
    assert_eq!(
        answer.error(),
        ("invalid_shape".into(), Some("inputs[0].shape".into()))
    );
    // Binary data that claims more bytes than the body has.
    let header = r#"{"inputs":[{"name":"tenure","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":18446744073709551615}}]}"#;
    let request = axum::http::Request::post("/v2/models/churn/infer")
        .header("inference-header-content-length", header.len())
        .body(axum::body::Body::from(format!("{header}12345678")))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(
        answer.error(),
        (
            "invalid_binary_data".into(),
            Some("inputs[0].parameters.binary_data_size".into())
        )
    );
    // Still serving.
    assert_eq!(send(&app, get("/healthz")).await.status, StatusCode::OK);
    let ok = r#"{"inputs":[{"name":"tenure","shape":[1],"datatype":"FP64","data":[3]}]}"#;
    assert_eq!(
        send(&app, post_json("/v2/models/churn/infer", ok))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_megabyte_of_empty_rows_stops_at_the_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{LIMITS}max_body_bytes = 2097152\n");
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), &config);
    let row = r#"{"features":{}},"#;
    let rows = row.repeat((1 << 20) / row.len());
    let body = format!(r#"{{"rows":[{}]}}"#, rows.trim_end_matches(','));
    assert!(body.len() > 1 << 19);
    let answer = send(&app, post_json("/predict/churn/batch", body)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error(),
        ("batch_too_large".into(), Some("rows".into()))
    );
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 100 rows"),
        "{}",
        answer.json()
    );
}

#[tokio::test]
async fn warnings_of_a_batch_of_empty_rows_are_one_line_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), LIMITS);
    let body = json!({"rows": vec![json!({"features": {}}); 100]}).to_string();
    let answer = send(&app, post_json("/predict/churn/batch", body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let results = answer.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 100);
    for result in &results {
        assert_eq!(
            result["warnings"],
            json!([
                "5 features missing, scored as missing: 'tenure', 'charges', 'visits' and 2 more"
            ])
        );
    }
    // Three missing features or fewer are named one by one.
    let body = json!({"features": {"tenure": 3, "charges": 50.0}}).to_string();
    let answer = send(&app, post_json("/predict/churn", body)).await;
    assert_eq!(
        answer.json()["warnings"],
        json!([
            "missing feature 'visits' scored as missing",
            "missing feature 'plan' scored as missing",
            "missing feature 'region' scored as missing"
        ])
    );
    // Many unknown features: one summary line.
    let mut features = serde_json::Map::new();
    for (i, name) in support::FEATURES.iter().enumerate() {
        features.insert(
            name.to_string(),
            if i < 3 { json!(1) } else { json!("north") },
        );
    }
    for i in 0..10 {
        features.insert(format!("extra_{i:02}"), json!(1));
    }
    let body = json!({"features": features}).to_string();
    let warnings = send(&app, post_json("/predict/churn", body)).await.json()["warnings"].clone();
    assert_eq!(
        warnings,
        json!([
            "10 unknown features, ignored: 'extra_00', 'extra_01', 'extra_02' and 7 more",
            "unseen category for 'plan', scored as an unseen category"
        ])
    );
}

#[tokio::test]
async fn too_many_features_in_a_row_are_refused_while_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), LIMITS);
    let features: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("f{i}"), json!(i))).collect();
    let body = json!({"features": features}).to_string();
    let answer = send(&app, post_json("/predict/churn", body)).await;
    assert_eq!(
        answer.error(),
        ("too_many_features".into(), Some("features".into()))
    );
    let body = json!({"rows": [{"features": {}}, {"features": features}]}).to_string();
    let answer = send(&app, post_json("/predict/churn/batch", body)).await;
    assert_eq!(
        answer.error(),
        ("too_many_features".into(), Some("rows[1].features".into()))
    );
    let inputs: Vec<Value> = (0..21)
        .map(|i| json!({"name": format!("f{i}"), "shape": [1], "datatype": "FP64", "data": [1]}))
        .collect();
    let answer = send(
        &app,
        post_json(
            "/v2/models/churn/infer",
            json!({"inputs": inputs}).to_string(),
        ),
    )
    .await;
    assert_eq!(
        answer.error(),
        ("too_many_features".into(), Some("inputs".into()))
    );
}

#[tokio::test]
async fn explained_batches_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), LIMITS);
    let row = json!({"features": {"tenure": 3, "plan": "monthly"}});
    let five = json!({"rows": vec![row.clone(); 5]}).to_string();
    let answer = send(&app, post_json("/predict/churn/batch?explain=2", five)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json()["results"][4]["reasons"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let six = json!({"rows": vec![row; 6]}).to_string();
    let answer = send(
        &app,
        post_json("/predict/churn/batch?explain=2", six.clone()),
    )
    .await;
    assert_eq!(
        answer.error(),
        ("explain_too_large".into(), Some("rows".into()))
    );
    // Without explanations the same batch is scored.
    let answer = send(&app, post_json("/predict/churn/batch", six)).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn v2_rows_over_the_limit_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), LIMITS);
    let data: Vec<f64> = (0..101).map(f64::from).collect();
    let body =
        json!({"inputs": [{"name": "tenure", "shape": [101], "datatype": "FP64", "data": data}]});
    let answer = send(&app, post_json("/v2/models/churn/infer", body.to_string())).await;
    assert_eq!(
        answer.error(),
        ("batch_too_large".into(), Some("inputs[0].shape".into()))
    );
    // A shape that disagrees with its data.
    let body =
        json!({"inputs": [{"name": "tenure", "shape": [3], "datatype": "FP64", "data": [1, 2]}]});
    let answer = send(&app, post_json("/v2/models/churn/infer", body.to_string())).await;
    assert_eq!(
        answer.error(),
        ("invalid_shape".into(), Some("inputs[0].data".into()))
    );
    // Negative dimensions are not a shape.
    let body =
        json!({"inputs": [{"name": "tenure", "shape": [-1], "datatype": "FP64", "data": [1]}]});
    let answer = send(&app, post_json("/v2/models/churn/infer", body.to_string())).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error().0, "invalid_body");
}

#[tokio::test]
async fn a_feature_sent_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), LIMITS);
    let body = r#"{"features": {"plan": "x", "tenure": 3, "plan": "monthly"}}"#;
    let answer = send(&app, post_json("/predict/churn", body)).await;
    assert_eq!(
        answer.error(),
        ("duplicate_feature".into(), Some("features.plan".into()))
    );
}
