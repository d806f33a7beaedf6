//! In-process: the Open Inference Protocol with Triton's binary tensor
//! extension both ways, JSON without a content type, requested outputs and
//! Python's bare `NaN`, each giving exactly the REST batch's probabilities.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use support::{post_json, registry, router, send};

/// Three users as REST rows and as columns.
fn users() -> Vec<Value> {
    vec![
        json!({"tenure": 3, "charges": 89.5, "visits": 1, "plan": "monthly", "region": "north"}),
        json!({"tenure": 40, "charges": 20.0, "visits": 9, "plan": "two-year", "region": "west"}),
        json!({"tenure": 12, "charges": 70.0, "visits": 3, "plan": "yearly", "region": "mars"}),
    ]
}

async fn rest_probabilities(app: &axum::Router) -> Vec<f64> {
    let rows: Vec<Value> = users()
        .into_iter()
        .map(|f| json!({"features": f}))
        .collect();
    let answer = send(
        app,
        post_json("/predict/churn/batch", json!({"rows": rows}).to_string()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["probability"].as_f64().unwrap())
        .collect()
}

fn column(name: &str) -> Vec<Value> {
    users().iter().map(|u| u[name].clone()).collect()
}

/// The binary part of one input: FP64 little-endian, or length-prefixed BYTES.
fn binary_column(name: &str) -> (Value, Vec<u8>) {
    let values = column(name);
    let mut bytes = Vec::new();
    let datatype = if values[0].is_string() {
        for v in &values {
            let text = v.as_str().unwrap();
            bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        "BYTES"
    } else {
        for v in &values {
            bytes.extend_from_slice(&v.as_f64().unwrap().to_le_bytes());
        }
        "FP64"
    };
    let input = json!({"name": name, "shape": [values.len()], "datatype": datatype,
        "parameters": {"binary_data_size": bytes.len()}});
    (input, bytes)
}

#[tokio::test]
async fn binary_inputs_and_outputs_match_the_rest_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), "");
    let expected = rest_probabilities(&app).await;
    let (inputs, chunks): (Vec<Value>, Vec<Vec<u8>>) =
        support::FEATURES.iter().map(|f| binary_column(f)).unzip();
    let header =
        json!({"id": "bin-1", "inputs": inputs, "parameters": {"binary_data_output": true}})
            .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(chunks.concat());
    // As tritonclient sends it: no Content-Type at all.
    let request = Request::post("/v2/models/churn/infer")
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.headers["content-type"], "application/octet-stream");
    let json_length: usize = answer.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (head, binary) = answer.body.split_at(json_length);
    let head: Value = serde_json::from_slice(head).unwrap();
    assert_eq!(head["id"], "bin-1");
    assert_eq!(
        head["parameters"]["warnings"],
        json!(["unseen category for 'region' in row 2"])
    );
    let outputs = head["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["name"], "probability");
    assert_eq!(outputs[0]["parameters"]["binary_data_size"], 24);
    assert!(outputs[0].get("data").is_none());
    let probabilities: Vec<f64> = binary[..24]
        .chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        probabilities
            .iter()
            .map(|p| p.to_bits())
            .collect::<Vec<_>>(),
        expected.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    // Segments: three length-prefixed strings after the probabilities.
    let mut rest = &binary[24..];
    assert_eq!(
        rest.len() as u64,
        outputs[1]["parameters"]["binary_data_size"]
            .as_u64()
            .unwrap()
    );
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        segments.push(String::from_utf8(rest[4..4 + n].to_vec()).unwrap());
        rest = &rest[4 + n..];
    }
    assert_eq!(segments.len(), 3);
}

#[tokio::test]
async fn json_without_a_content_type_with_one_requested_output_and_python_nan() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), "");
    let expected = rest_probabilities(&app).await;
    let inputs: Vec<Value> = support::FEATURES
        .iter()
        .map(|f| {
            let values = column(f);
            let datatype = if values[0].is_string() {
                "BYTES"
            } else {
                "FP64"
            };
            json!({"name": f, "shape": [3], "datatype": datatype, "data": values})
        })
        .collect();
    let body = json!({"inputs": inputs, "outputs": [{"name": "probability", "parameters": {"binary_data": false}}]});
    let request = Request::post("/v2/models/churn/infer")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    let outputs = answer.json()["outputs"].clone();
    assert_eq!(outputs.as_array().unwrap().len(), 1);
    let got: Vec<u64> = outputs[0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap().to_bits())
        .collect();
    assert_eq!(
        got,
        expected.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    // Python's json writes a missing number as a bare NaN: scored as missing.
    let nan =
        r#"{"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP64", "data": [NaN, 3]}]}"#;
    let answer = send(&app, post_json("/v2/models/churn/infer", nan)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    let null =
        r#"{"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP64", "data": [null, 3]}]}"#;
    let same = send(&app, post_json("/v2/models/churn/infer", null)).await;
    assert_eq!(answer.json()["outputs"], same.json()["outputs"]);
    // Other content types and encodings are refused; errors have the V2 shape.
    let request = Request::post("/v2/models/churn/infer")
        .header("content-type", "text/csv")
        .body(Body::from(nan))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(answer.json()["error"].is_string());
    let request = Request::post("/v2/models/churn/infer")
        .header("content-encoding", "gzip")
        .body(Body::from(nan))
        .unwrap();
    assert_eq!(
        send(&app, request).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let unknown = r#"{"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{"name": "logits"}]}"#;
    let answer = send(&app, post_json("/v2/models/churn/infer", unknown)).await;
    assert_eq!(
        answer.error(),
        ("unknown_output".into(), Some("outputs[0].name".into()))
    );
    // Whole numbers written as floats are whole numbers.
    let float_shape =
        r#"{"inputs": [{"name": "tenure", "shape": [1.0], "datatype": "FP64", "data": [1]}]}"#;
    assert_eq!(
        send(&app, post_json("/v2/models/churn/infer", float_shape))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn binary_framing_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = router(dir.path(), &registry(dir.path(), 1), "");
    let framed = |length: &str, body: &'static [u8]| {
        Request::post("/v2/models/churn/infer")
            .header("inference-header-content-length", length)
            .body(Body::from(body))
            .unwrap()
    };
    let answer = send(&app, framed("500", b"{}")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error().0, "invalid_binary_header");
    let answer = send(&app, framed("lots", b"{}")).await;
    assert_eq!(answer.error().0, "invalid_binary_header");
    // FP64 needs 8 bytes per element.
    let head = br#"{"inputs":[{"name":"tenure","shape":[2],"datatype":"FP64","parameters":{"binary_data_size":8}}]}"#;
    let mut body = head.to_vec();
    body.extend_from_slice(&1.0f64.to_le_bytes());
    let request = Request::post("/v2/models/churn/infer")
        .header("inference-header-content-length", head.len())
        .body(Body::from(body))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(
        answer.error(),
        (
            "invalid_binary_data".into(),
            Some("inputs[0].parameters.binary_data_size".into())
        )
    );
    // Bytes no input claims.
    let head = br#"{"inputs":[{"name":"tenure","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}}]}"#;
    let mut body = head.to_vec();
    body.extend_from_slice(&[0u8; 12]);
    let request = Request::post("/v2/models/churn/infer")
        .header("inference-header-content-length", head.len())
        .body(Body::from(body))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(
        answer.error(),
        ("invalid_binary_data".into(), Some("inputs".into()))
    );
}
