//! End to end from warehouse extracts: `presage-train features` and
//! `presage-train fit --config` on the real CDNOW purchase log (converted to
//! the users + events contract) and on the tiny hand-checked extract.

use std::path::{Path, PathBuf};

use presage_tests::{features, read_csv, train, Server};

fn cdnow_config() -> String {
    presage_datasets::config("churn_cdnow.toml")
        .display()
        .to_string()
}

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../training/data/tests/data/extract_tiny")
}

#[test]
fn churn_model_trained_on_the_real_cdnow_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let report = train(&registry, &["fit", "--config", &cdnow_config(), "--json"])
        .ok()
        .json();
    assert_eq!(report["model"], "churn_cdnow");
    let test_auc = report["metrics"]["test"]["auc"].as_f64().unwrap();
    // Recency, frequency and spend up to 1997-09-30 predict no purchase in the
    // next 180 days; measured 0.765 (logistic baseline 0.762, prior 0.5).
    assert!(test_auc >= 0.74, "test AUC {test_auc}: {report}");
    let rows = &report["rows"];
    let total: u64 = ["train", "valid", "test"]
        .iter()
        .map(|k| rows[k].as_u64().unwrap())
        .sum();
    // Every CDNOW customer signed up (first purchase) before the cutoff and
    // the log runs past cutoff + 180 days: all 23,570 are in the table.
    assert_eq!(total, 23_570);

    // The artifact records how the features were built.
    let models = train(&registry, &["models", "--json"]).ok().json();
    let entry = &models["models"][0];
    assert_eq!(entry["model"], "churn_cdnow");
    assert!(
        entry["trained_on"]
            .as_str()
            .unwrap()
            .starts_with("extracts built by"),
        "{models}"
    );
    assert_eq!(
        entry["label"],
        "1 if the user has no event from 0 to 180 days after the cutoff"
    );

    // Serving tells callers what each feature means and how the label was made.
    let server = Server::start(&registry, &[]);
    let detail = server.get("/models/churn_cdnow");
    assert_eq!(detail.status, 200, "{}", detail.body);
    let detail = detail.json();
    let recency = presage_tests::entry(&detail["features"], "name", "days_since_last_event");
    assert_eq!(
        recency["description"],
        "days from the last event from signup until 1997-09-30 to the cutoff; missing without events"
    );
    assert_eq!(detail["feature_spec"]["label"]["name"], "churned");
    assert_eq!(
        detail["feature_spec"]["spec"]["window"]["cutoff"],
        "1997-09-30"
    );
    // A score for a customer described by those features.
    let body = r#"{"user_id": "00042", "features": {"events_total": 3, "days_since_last_event": 20, "active_days": 3, "sum_dollars": 80}}"#;
    let scored = server.post("/predict/churn_cdnow", body);
    assert_eq!(scored.status, 200, "{}", scored.body);
    let p = scored.json()["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
}

#[test]
fn features_command_writes_the_table_and_counts_exclusions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.csv");
    let config = tiny_dir().join("churn.toml");
    let run = features(dir.path(), &config, &out, &["--json"]).ok();
    let report = run.json();
    assert_eq!(report["rows"], 3);
    assert_eq!(report["label"], "churned");
    assert_eq!(report["report"]["excluded_no_consent"], 1);
    assert_eq!(report["report"]["events_unknown_user"], 1);
    let (header, rows) = read_csv(&out);
    assert_eq!(header.first().map(String::as_str), Some("user_id"));
    assert_eq!(header.last().map(String::as_str), Some("churned"));
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["u1", "u2", "u4"]
    );
    // No user id or attribute value is printed, only counts.
    assert!(
        !run.stderr.contains("u3") && !run.stderr.contains("u9"),
        "{}",
        run.stderr
    );
}

#[test]
fn extract_paths_on_the_command_line_override_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let (users, events) = presage_datasets::cdnow_extracts();
    // The tiny config's spec (7-day window after signup, churn label), run on
    // CDNOW's extracts given as flags: the spec names columns CDNOW lacks.
    let config = tiny_dir().join("churn.toml");
    let run = train(
        &registry,
        &[
            "fit",
            "--config",
            config.to_str().unwrap(),
            "--users",
            users.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("events.csv: no column 'amount'"),
        "{}",
        run.stderr
    );
    assert!(!registry.join("tiny_churn").exists());
}

#[test]
fn fit_without_data_or_extract_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(&dir.path().join("registry"), &["fit", "--model", "m"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("give --data FILE, or --config with an [extract] section"),
        "{}",
        run.stderr
    );
}
