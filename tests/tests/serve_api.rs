//! End to end: train the churn model on the real Telco table with
//! `presage-train`, start the real `presage-serve` on an ephemeral port and
//! exercise every route with exact statuses and bodies. Every wrong input's
//! exact error is checked in process, on the router, in
//! `serving/tests/wrong_inputs.rs`.

use std::path::{Path, PathBuf};

use presage_tests::{entry, fit_churn, train, Server};
use serde_json::{json, Value};

fn telco() -> String {
    presage_datasets::telco_churn_csv().display().to_string()
}

/// A registry holding `churn` v1 (with the shipped policy) and `adoption`
/// v1 (no policy: served with the default one).
fn registry(dir: &Path) -> PathBuf {
    let registry = dir.join("registry");
    fit_churn(&registry, &["--num-iterations", "60"]).ok();
    let data = telco();
    train(
        &registry,
        &[
            "fit",
            "--data",
            &data,
            "--label",
            "PaperlessBilling",
            "--positive",
            "Yes",
            "--id",
            "customerID",
            "--drop",
            "Churn",
            "--model",
            "adoption",
            "--num-iterations",
            "20",
        ],
    )
    .ok();
    let policy = presage_datasets::root().join("policies/churn.toml");
    std::fs::copy(&policy, registry.join("churn/policy.toml"))
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", policy.display(), registry.display()));
    registry
}

/// Customer 5575-GNVDE exactly as in the Telco table.
const USER: &str = r#"{"user_id": "5575-GNVDE", "features": {"gender": "Male", "SeniorCitizen": 0, "Partner": "No", "Dependents": "No", "tenure": 34, "PhoneService": "Yes", "MultipleLines": "No", "InternetService": "DSL", "OnlineSecurity": "Yes", "OnlineBackup": "No", "DeviceProtection": "Yes", "TechSupport": "No", "StreamingTV": "No", "StreamingMovies": "No", "Contract": "One year", "PaperlessBilling": "No", "PaymentMethod": "Mailed check", "MonthlyCharges": 56.95, "TotalCharges": 1889.5}}"#;

fn with_features(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut body: Value = serde_json::from_str(USER).unwrap();
    edit(body["features"].as_object_mut().unwrap());
    body.to_string()
}

/// `(code, field)` of an error: the API's `{"error": {"code", "message",
/// "field"}}`, or the V2 routes' `{"error": "<message>", "code", "field"}`.
fn error(response: &presage_tests::HttpResponse) -> (String, Option<String>) {
    let body = response.json();
    let v2 = body["error"].is_string();
    let e = if v2 { &body } else { &body["error"] };
    let message = if v2 { &body["error"] } else { &e["message"] };
    assert!(message.as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (
        e["code"].as_str().unwrap().to_string(),
        e["field"].as_str().map(str::to_string),
    )
}

#[test]
fn predicts_segments_and_explains_like_the_batch_cli() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);

    let response = server.post("/predict/churn?explain=3", USER);
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["model"], "churn");
    assert_eq!(body["version"], 1);
    assert_eq!(body["user_id"], "5575-GNVDE");
    assert_eq!(body["warnings"], json!([]));
    let segment = body["segment"].as_str().unwrap();
    assert!(["healthy", "watch", "at_risk"].contains(&segment), "{body}");
    let flows = json!({"healthy": "standard", "watch": "nudges", "at_risk": "concierge"});
    assert_eq!(body["onboarding"]["flow"], flows[segment]);
    let reasons = body["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 3);
    // Each reason echoes the value sent for its feature, as sent (34 stays 34, not 34.0).
    let sent: Value = serde_json::from_str(USER).unwrap();
    for reason in reasons {
        let feature = reason["feature"].as_str().unwrap();
        assert_eq!(reason["value"], sent["features"][feature], "{reason}");
    }
    let magnitudes: Vec<f64> = reasons
        .iter()
        .map(|r| r["contribution"].as_f64().unwrap().abs())
        .collect();
    assert!(magnitudes.windows(2).all(|w| w[0] >= w[1]), "{reasons:?}");

    // The same user scored by `presage-train predict` gets exactly the same probability.
    let batch = presage_tests::predict_telco(&registry, dir.path(), &[]);
    assert_eq!(
        body["probability"].as_f64().unwrap().to_bits(),
        batch["5575-GNVDE"]
    );

    // A rule overrides the band.
    let new_user = with_features(|f| {
        f.insert("tenure".into(), json!(1));
    });
    let body = server.post("/predict/churn", &new_user).json();
    assert_eq!(body["segment"], "at_risk");
    assert_eq!(body["rule"], "tenure < 2");
    assert_eq!(
        body["onboarding"]["attributes"],
        json!({"tutorials": ["billing", "setup"], "call": true})
    );

    // Batch: results in order, same probabilities as single requests.
    let batch = format!(r#"{{"rows": [{USER}, {new_user}]}}"#);
    let response = server.post("/predict/churn/batch", &batch);
    assert_eq!(response.status, 200, "{}", response.body);
    let results = response.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0]["probability"],
        server.post("/predict/churn", USER).json()["probability"]
    );
    assert_eq!(results[1]["segment"], "at_risk");

    // Another model without a policy uses the default percentile policy.
    let body = server.post("/predict/adoption", USER).json();
    assert!(
        ["high", "medium", "low"].contains(&body["segment"].as_str().unwrap()),
        "{body}"
    );
}

#[test]
fn missing_unknown_null_and_unseen_values_are_scored_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    let body = with_features(|f| {
        f.remove("gender");
        f.insert("TotalCharges".into(), Value::Null);
        f.insert("favourite_colour".into(), json!("teal"));
        f.insert("PaymentMethod".into(), json!("Cryptocurrency"));
    });
    let response = server.post("/predict/churn", &body);
    assert_eq!(response.status, 200, "{}", response.body);
    let warnings = response.json()["warnings"].clone();
    assert_eq!(
        warnings,
        json!([
            "unseen category for 'PaymentMethod', scored as an unseen category",
            "unknown feature 'favourite_colour' ignored",
            "missing feature 'gender' scored as missing"
        ])
    );
    let strict = Server::start(&registry, &["--strict", "true"]);
    let response = strict.post("/predict/churn", &body);
    assert_eq!(response.status, 422);
    assert_eq!(
        error(&response),
        (
            "unknown_feature".into(),
            Some("features.favourite_colour".into())
        )
    );
}

#[test]
fn models_health_metrics_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let server = Server::start(&empty, &["--poll-interval-ms", "100"]);
    assert_eq!(server.get("/healthz").status, 200);
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["reason"], "no model is loaded");
    // A model appearing in the registry makes the server ready without a restart.
    fit_churn(&empty, &["--num-iterations", "10"]).ok();
    let mut ready = false;
    for _ in 0..100 {
        if server.get("/readyz").status == 200 {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ready, "server did not become ready after a model appeared");

    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    let models = server.get("/models").json();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["adoption", "churn"]);
    let churn = server.get("/models/churn").json();
    assert_eq!(churn["champion"], 1);
    assert_eq!(churn["algorithm"], "gbm");
    assert_eq!(churn["policy"]["default"], false);
    assert_eq!(churn["policy"]["mode"], "percentile");
    assert_eq!(
        churn["policy"]["rules"],
        json!(["tenure < 2", "Contract == \"Two year\""])
    );
    assert!(churn["metrics"]["test"]["auc"].as_f64().unwrap() > 0.8);
    assert_eq!(churn["features"].as_array().unwrap().len(), 19);
    let adoption = server.get("/models/adoption").json();
    assert_eq!(adoption["policy"]["default"], true);
    assert_eq!(adoption["policy"]["segments"].as_array().unwrap().len(), 3);
    let missing = server.get("/models/retention");
    assert_eq!(
        (missing.status, error(&missing).0.as_str()),
        (404, "unknown_model")
    );

    let response = server.request(
        "POST",
        "/predict/churn",
        Some(USER),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "abc-123"),
        ],
    );
    assert_eq!(response.header("x-request-id"), Some("abc-123"));
    assert!(server
        .get("/healthz")
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains(
            r#"presage_requests_total{route="/predict/{model}",method="POST",status="200"} 1"#
        ),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains(r#"presage_predictions_total{model="churn",version="1",segment=""#),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("presage_score_bucket{model=\"churn\""),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains(r#"presage_model_version{model="churn"} 1"#),
        "{}",
        metrics.body
    );
    assert!(
        !metrics.body.contains("5575-GNVDE"),
        "user ids must not become labels"
    );
}

#[test]
fn bad_policy_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let policy = registry.join("churn/policy.toml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("tenure < 2", "tenur < 2");
    std::fs::write(&policy, text).unwrap();
    let out = std::process::Command::new(presage_tests::binary("presage-serve"))
        .arg("--registry")
        .arg(&registry)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("policy.toml: rule 1 ('tenur < 2'): unknown feature 'tenur'"),
        "{stderr}"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    assert_eq!(server.post("/predict/churn", USER).status, 200);
    // A request is in flight (head and half the body sent) when SIGTERM arrives.
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /predict/churn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        USER.len()
    );
    let (first, rest) = USER.split_at(USER.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = server.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stream.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"segment\""), "{response}");
    // New connections are refused once it has drained, and it exits 0.
    assert_eq!(server.wait(), Some(0));
}

#[test]
fn open_inference_protocol_matches_the_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    assert_eq!(server.get("/v2/health/live").json(), json!({"live": true}));
    assert_eq!(
        server.get("/v2/health/ready").json(),
        json!({"ready": true})
    );
    assert_eq!(server.get("/v2/models/churn/ready").status, 200);
    let meta = server.get("/v2/models/churn").json();
    assert_eq!(meta["name"], "churn");
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(meta["outputs"][0]["name"], "probability");
    let order: Vec<String> = meta["parameters"]["feature_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(order.len(), 19);

    let user: Value = serde_json::from_str(USER).unwrap();
    let features = user["features"].as_object().unwrap();
    let rest = server.post("/predict/churn", USER).json();

    // One named input per feature, two rows (the same user twice).
    let inputs: Vec<Value> = order
        .iter()
        .map(|name| {
            let v = &features[name];
            let datatype = if v.is_string() { "BYTES" } else { "FP64" };
            json!({"name": name, "shape": [2], "datatype": datatype, "data": [v, v]})
        })
        .collect();
    let named = server.post(
        "/v2/models/churn/infer",
        &json!({"id": "req-1", "inputs": inputs}).to_string(),
    );
    assert_eq!(named.status, 200, "{}", named.body);
    let named = named.json();
    assert_eq!(named["id"], "req-1");
    assert_eq!(named["model_version"], "1");
    assert_eq!(named["outputs"][0]["data"][0], rest["probability"]);
    assert_eq!(named["outputs"][0]["data"][1], rest["probability"]);
    assert_eq!(named["outputs"][1]["data"][0], rest["segment"]);
    assert_eq!(named["parameters"]["warnings"], json!([]));

    // One FP64 matrix in schema order, categories as their dictionary index.
    let categories = &meta["parameters"]["categories"];
    let row: Vec<f64> = order
        .iter()
        .map(|name| match &features[name] {
            Value::String(s) => categories[name]
                .as_array()
                .unwrap()
                .iter()
                .position(|c| c == s)
                .unwrap() as f64,
            v => v.as_f64().unwrap(),
        })
        .collect();
    let matrix = json!({"inputs": [{"name": "input-0", "shape": [1, 19], "datatype": "FP64", "data": [row]}]});
    let matrix = server.post("/v2/models/churn/infer", &matrix.to_string());
    assert_eq!(matrix.status, 200, "{}", matrix.body);
    assert_eq!(matrix.json()["outputs"][0]["data"][0], rest["probability"]);
    let versioned = server.post(
        "/v2/models/churn/versions/1/infer",
        &json!({"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [3]}]})
            .to_string(),
    );
    assert_eq!(versioned.status, 200, "{}", versioned.body);
    assert_eq!(
        versioned.json()["parameters"]["warnings"]
            .as_array()
            .unwrap()
            .len(),
        18
    );

    let wrong = server.post("/v2/models/churn/infer", r#"{"inputs": [{"name": "input-0", "shape": [2, 19], "datatype": "FP64", "data": [1, 2, 3]}]}"#);
    assert_eq!(
        (wrong.status, error(&wrong)),
        (
            422,
            (
                "invalid_shape".to_string(),
                Some("inputs[0].data".to_string())
            )
        )
    );
    let wrong = server.post(
        "/v2/models/churn/infer",
        r#"{"inputs": [{"name": "Contract", "shape": [1], "datatype": "FP64", "data": [2]}]}"#,
    );
    assert_eq!(
        (wrong.status, error(&wrong).0.as_str()),
        (422, "wrong_type")
    );
    let missing = server.post(
        "/v2/models/retention/infer",
        r#"{"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [2]}]}"#,
    );
    assert_eq!(
        (missing.status, error(&missing).0.as_str()),
        (404, "unknown_model")
    );
}

#[test]
fn openapi_document_lists_every_route_and_each_answers() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    let doc = server.get("/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let expected = [
        ("DELETE", "/users/{id}"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/models"),
        ("GET", "/models/{name}"),
        ("GET", "/models/{name}/drift"),
        ("GET", "/openapi.json"),
        ("GET", "/readyz"),
        ("GET", "/users/{id}/features"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
        ("GET", "/v2/models/{name}"),
        ("GET", "/v2/models/{name}/ready"),
        ("POST", "/admin/online/compact"),
        ("POST", "/admin/reload"),
        ("POST", "/admin/triggers/replay"),
        ("POST", "/events"),
        ("POST", "/predict/{model}"),
        ("POST", "/predict/{model}/batch"),
        ("POST", "/users"),
        ("POST", "/v2/models/{name}/infer"),
        ("POST", "/v2/models/{name}/versions/{version}/infer"),
        ("PUT", "/models/{name}/aliases/{alias}"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    // Every documented route is served: the router answers it (no 404 `not_found`, no 405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{model}", "churn")
            .replace("{name}", "churn")
            .replace("{alias}", "champion")
            .replace("{version}", "1")
            .replace("{id}", "u1");
        let body = (method != "GET").then_some("{}");
        let response = server.request(
            method,
            &concrete,
            body,
            &[("content-type", "application/json")],
        );
        assert_ne!(response.status, 405, "{method} {concrete}");
        if response.status == 404 {
            assert_ne!(
                error(&response).0,
                "not_found",
                "{method} {concrete} is documented but not routed"
            );
        }
        // Documented status codes include the one the server gave.
        let statuses: Vec<&String> = doc["paths"][path][method.to_lowercase()]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert!(
            statuses.contains(&&response.status.to_string()),
            "{method} {concrete} answered {} (documented: {statuses:?})",
            response.status
        );
    }
}

#[test]
fn explained_and_plain_requests_agree() {
    // Asking for explanations keeps the values as sent; it must not change
    // the answer, the warnings or the error for any body.
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    let bodies = [
        USER.to_string(),
        with_features(|f| {
            f.remove("gender");
            f.insert("TotalCharges".into(), Value::Null);
        }),
        with_features(|f| {
            f.insert("zzz_unknown".into(), json!(1));
            f.insert("aaa_unknown".into(), json!("x"));
            f.insert("PaymentMethod".into(), json!("Cheque"));
            f.insert("Contract".into(), json!("Forever"));
        }),
        r#"{"features": {"tenure": 1e2, "MonthlyCharges": -0.0, "Contract": "One \u0079ear"}, "user_id": 7}"#.to_string(),
        with_features(|f| {
            f.insert("tenure".into(), json!("12"));
        }),
        with_features(|f| {
            f.insert("Contract".into(), json!(["One year"]));
        }),
        r#"{"features": {}, "extra": 1}"#.to_string(),
        r#"{"user_id": "u"}"#.to_string(),
        r#"{"user_id": true, "features": {}}"#.to_string(),
        r#"{"features": {"tenure": 1}} trailing"#.to_string(),
        r#"{"features": {"tenure": 1"#.to_string(),
    ];
    for body in &bodies {
        let fast = server.post("/predict/churn", body);
        let generic = server.post("/predict/churn?explain=1", body);
        assert_eq!(
            fast.status, generic.status,
            "{body}: {} vs {}",
            fast.body, generic.body
        );
        let (f, g) = (fast.json(), generic.json());
        if fast.status == 200 {
            for key in [
                "probability",
                "segment",
                "warnings",
                "user_id",
                "onboarding",
                "rule",
            ] {
                assert_eq!(f[key], g[key], "{key} differs for {body}");
            }
        } else {
            assert_eq!(f["error"]["code"], g["error"]["code"], "{body}");
            assert_eq!(f["error"]["field"], g["error"]["field"], "{body}");
        }
        let batch = format!(r#"{{"rows": [{USER}, {body}]}}"#);
        let fast = server.post("/predict/churn/batch", &batch);
        let generic = server.post("/predict/churn/batch?explain=1", &batch);
        assert_eq!(
            fast.status, generic.status,
            "batch with {body}: {} vs {}",
            fast.body, generic.body
        );
        if fast.status == 200 {
            assert_eq!(
                fast.json()["results"][1]["probability"],
                generic.json()["results"][1]["probability"]
            );
            assert_eq!(
                fast.json()["results"][1]["warnings"],
                generic.json()["results"][1]["warnings"]
            );
        } else {
            assert_eq!(
                fast.json()["error"]["code"],
                generic.json()["error"]["code"],
                "batch with {body}"
            );
            assert_eq!(
                fast.json()["error"]["field"],
                generic.json()["error"]["field"],
                "batch with {body}"
            );
        }
    }
}

#[test]
fn live_drift_reports_recent_requests_and_feeds_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    // Nothing scored yet: an empty window.
    let empty = server.get("/models/churn/drift");
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.json()["window_rows"], 0);
    assert_eq!(server.get("/models/nope/drift").status, 404);

    // 200 users who all lack Contract and have tenure 70: Contract is
    // broken (all missing), tenure shifted, gender stable-ish.
    let body = with_features(|f| {
        f.remove("Contract");
        f.insert("tenure".into(), Value::from(70));
    });
    for _ in 0..200 {
        assert_eq!(server.post("/predict/churn", &body).status, 200);
    }
    let report = server.get("/models/churn/drift").json();
    assert_eq!(report["window_rows"], 200, "{report}");
    let verdict = |name: &str| entry(&report["features"], "feature", name)["verdict"].clone();
    assert_eq!(verdict("Contract"), "broken");
    assert_eq!(verdict("tenure"), "shifted");
    // One user repeated 200 times is far from the training score distribution.
    assert!(report["score_psi"].as_f64().unwrap() > 0.25, "{report}");

    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("presage_drift_window_rows{model=\"churn\"} 200"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("presage_drift_feature_psi{") && l.contains("feature=\"tenure\"")
        ),
        "{metrics}"
    );
}
