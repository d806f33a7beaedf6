//! End to end on the real Telco churn table: train GBM and RF with the real
//! binary, check held-out quality, reload the artifact through `predict`
//! and reproduce the test-set probabilities exactly, and prove determinism.

use std::path::Path;

use presage_tests::{fit_churn, train};

fn telco() -> String {
    presage_datasets::telco_churn_csv().display().to_string()
}

fn fit(registry: &Path, algo: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--algo", algo, "--json"];
    args.extend_from_slice(extra);
    fit_churn(registry, &args).ok().json()
}

#[test]
fn gbm_beats_the_bar_and_predict_reproduces_test_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let held_out = dir.path().join("test_predictions.csv");
    let report = fit(
        &registry,
        "gbm",
        &[
            "--early-stopping-rounds",
            "30",
            "--num-iterations",
            "500",
            "--learning-rate",
            "0.05",
            "--test-predictions",
            held_out.to_str().unwrap(),
        ],
    );
    let auc = report["metrics"]["test"]["auc"].as_f64().unwrap();
    assert!(auc >= 0.835, "GBM test AUC {auc} below 0.835: {report}");
    assert_eq!(report["model"], "churn");
    assert_eq!(report["version"], 1);
    assert_eq!(report["algo"], "gbm");
    assert_eq!(report["champion"], true);
    for key in ["auc", "pr_auc", "log_loss", "brier", "ece"] {
        assert!(
            report["metrics"]["test"][key].is_number(),
            "metrics.test.{key} missing: {report}"
        );
    }
    assert!(
        report["baseline"]["test"]["auc"].as_f64().unwrap() > 0.8,
        "{report}"
    );
    assert!(Path::new(report["artifact"].as_str().unwrap()).exists());

    // Reload through predict on the full table: held-out rows get exactly the same probabilities.
    let all = presage_tests::predict_telco(&registry, dir.path(), &[]);
    assert_eq!(all.len(), 7043);
    let test = presage_tests::read_probabilities(&held_out, "customerID");
    assert_eq!(test.len() as u64, report["rows"]["test"].as_u64().unwrap());
    for (id, bits) in &test {
        assert_eq!(
            all[id], *bits,
            "probability of {id} differs between fit and predict"
        );
    }
}

#[test]
fn random_forest_beats_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let report = fit(
        &dir.path().join("registry"),
        "rf",
        &["--num-iterations", "200", "--min-data-in-leaf", "5"],
    );
    let auc = report["metrics"]["test"]["auc"].as_f64().unwrap();
    assert!(auc >= 0.82, "RF test AUC {auc} below 0.82: {report}");
    assert_eq!(report["algo"], "rf");
}

#[test]
fn same_seed_gives_identical_models_and_versions_increase() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let first = fit(&registry, "gbm", &["--num-iterations", "60", "--seed", "7"]);
    let second = fit(&registry, "gbm", &["--num-iterations", "60", "--seed", "7"]);
    assert_eq!(first["version"], 1);
    assert_eq!(second["version"], 2);
    assert_eq!(second["champion"], false);
    assert_eq!(first["metrics"], second["metrics"]);

    let mut outputs = Vec::new();
    for version in ["1", "2"] {
        let out = dir.path().join(format!("v{version}.csv"));
        train(
            &registry,
            &[
                "predict",
                "--model",
                "churn",
                "--version",
                version,
                "--data",
                &telco(),
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .ok();
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(
        outputs[0], outputs[1],
        "same data, config and seed must give bit-identical scores"
    );

    let listing = train(&registry, &["models", "--json"]).ok().json();
    let models = listing["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["aliases"], serde_json::json!(["champion"]));
    assert_eq!(models[1]["aliases"], serde_json::json!([]));

    let evaluated = train(
        &registry,
        &[
            "evaluate",
            "--model",
            "churn",
            "--version",
            "1",
            "--data",
            &telco(),
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(evaluated["metrics"]["rows"], 7043);
    assert!(evaluated["metrics"]["auc"].as_f64().unwrap() > 0.85);
}
