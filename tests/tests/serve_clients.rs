//! Real inference clients against the real `presage-serve`: NVIDIA's
//! `tritonclient[http]` in JSON and binary mode and the KServe SDK's V2
//! REST client must get, for 200 Telco customers, exactly the probabilities
//! and segments `POST /predict/churn/batch` gives; and schemathesis, run
//! against the served OpenAPI document with the model name supplied, must
//! find nothing wrong. The clients live in a virtualenv beside the test
//! binaries (`tests/python/requirements.txt`, installed on first use).

use std::path::{Path, PathBuf};
use std::process::Command;

use presage_tests::{fit_churn, python_venv, read_csv, workspace_root, Server};
use serde_json::{json, Map, Value};

const NUMERIC: [&str; 4] = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"];
const TOKEN: &str = "schemathesis-admin-token";

fn python_dir() -> PathBuf {
    workspace_root().join("tests/python")
}

fn venv() -> PathBuf {
    python_venv("clients", &python_dir().join("requirements.txt"))
}

fn registry(dir: &Path) -> PathBuf {
    let registry = dir.join("registry");
    fit_churn(&registry, &["--num-iterations", "60"]).ok();
    let policy = presage_datasets::root().join("policies/churn.toml");
    std::fs::copy(policy, registry.join("churn/policy.toml")).unwrap();
    registry
}

/// The first 200 Telco customers with every value present, as REST rows.
fn telco_rows() -> Vec<Value> {
    let (header, rows) = read_csv(&presage_datasets::telco_churn_csv());
    rows.iter()
        .filter(|cells| cells.iter().all(|c| !c.trim().is_empty()))
        .take(200)
        .map(|cells| {
            let features: Map<String, Value> = header
                .iter()
                .zip(cells)
                .filter(|(name, _)| !["customerID", "Churn"].contains(&name.as_str()))
                .map(|(name, cell)| {
                    let value = if NUMERIC.contains(&name.as_str()) {
                        json!(cell.parse::<f64>().expect("a number"))
                    } else {
                        json!(cell)
                    };
                    (name.clone(), value)
                })
                .collect();
            json!({"features": features})
        })
        .collect()
}

#[test]
fn tritonclient_and_kserve_get_the_rest_apis_probabilities_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = Server::start(&registry, &[]);
    let rows = telco_rows();
    assert_eq!(rows.len(), 200);
    let rest = server.post("/predict/churn/batch", &json!({"rows": rows}).to_string());
    assert_eq!(rest.status, 200, "{}", rest.body);
    let rest = rest.json()["results"].as_array().unwrap().clone();
    let rows_file = dir.path().join("rows.json");
    std::fs::write(&rows_file, json!(rows).to_string()).unwrap();
    let out = dir.path().join("clients.json");
    let run = Command::new(venv().join("python"))
        .arg(python_dir().join("v2_clients.py"))
        .args([
            "--url",
            &format!("http://{}", server.addr),
            "--model",
            "churn",
        ])
        .arg("--rows")
        .arg(&rows_file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run v2_clients.py");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "v2_clients.py failed:\n{stderr}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(result["errors"], json!([]), "{stderr}");
    let modes = result["modes"].as_object().unwrap();
    let expected: Vec<&str> = vec![
        "kserve_binary",
        "kserve_json",
        "triton_binary",
        "triton_default",
        "triton_json",
        "triton_version",
    ];
    assert_eq!(
        modes.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    for (mode, answer) in modes {
        let probabilities = answer["probability"].as_array().unwrap();
        let segments = answer["segment"].as_array().unwrap();
        assert_eq!(probabilities.len(), 200, "{mode}");
        for (i, (p, s)) in probabilities.iter().zip(segments).enumerate() {
            let hex = p.as_str().unwrap();
            let from_client = parse_hex_float(hex);
            let from_rest = rest[i]["probability"].as_f64().unwrap();
            assert_eq!(
                from_client.to_bits(),
                from_rest.to_bits(),
                "{mode}, row {i}: {hex} vs {from_rest}"
            );
            assert_eq!(s, &rest[i]["segment"], "{mode}, row {i}");
        }
    }
}

/// Parses Python's `float.hex()` (`0x1.8p-2`, `-0x0.0p+0`, `inf`, `nan`).
fn parse_hex_float(text: &str) -> f64 {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = text
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("not a hex float: {text}"));
    let (mantissa, exponent) = body.split_once('p').expect("exponent");
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value = u64::from_str_radix(whole, 16).unwrap() as f64;
    for (i, digit) in fraction.chars().enumerate() {
        value += digit.to_digit(16).unwrap() as f64 / 16f64.powi(i as i32 + 1);
    }
    let value = value * 2f64.powi(exponent.parse().unwrap());
    if negative {
        -value
    } else {
        value
    }
}

#[test]
fn hex_floats_parse_exactly() {
    assert_eq!(parse_hex_float("0x1.8000000000000p-2"), 0.375);
    assert_eq!(
        parse_hex_float("0x1.fffffffffffffp-1"),
        1.0 - f64::EPSILON / 2.0
    );
    assert_eq!(parse_hex_float("-0x1.0000000000000p+0"), -1.0);
}

#[test]
fn schemathesis_finds_nothing_wrong_with_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let config = dir.path().join("serve.toml");
    // Small batch limits keep generated batches within what an explained
    // request may hold; the online store's and the triggers' routes are
    // served too (no policy declares a trigger, so nothing is delivered).
    std::fs::write(
        &config,
        "max_batch_rows = 20\nmax_explain_rows = 20\nmax_features_per_row = 50\n[online]\ndir = \"store\"\n[triggers]\nwebhook_url = \"http://127.0.0.1:9/hook\"\nwebhook_secret = \"schemathesis-webhook-secret\"\n",
    )
    .unwrap();
    let server = Server::start_with_env(
        &registry,
        &["--config", config.to_str().unwrap()],
        &[("PRESAGE_ADMIN_TOKEN", TOKEN)],
    );
    let run = Command::new("bash")
        .arg(python_dir().join("schemathesis.sh"))
        .arg(format!("http://{}", server.addr))
        .arg(TOKEN)
        .env("SCHEMATHESIS", venv().join("schemathesis"))
        // Its cache of found failures goes in the test's directory, not the repository.
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("No issues found"), "{stdout}");
    // It reached real predictions, not only errors.
    let metrics = server.get("/metrics").body;
    let scored = metrics
        .lines()
        .filter(|l| l.starts_with("presage_predictions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(
        scored >= 100.0,
        "only {scored} predictions reached the model"
    );
    // And generated ingest bodies reached the store's item checks.
    assert!(
        metrics.contains("presage_online_events_total{outcome=\"rejected\"}"),
        "no ingest request reached the online store"
    );
}
