//! `presage-train compare`: two versions side by side, on their stored test
//! metrics and on the same labelled rows (DeLong's test, score shift,
//! segment migration under a policy).

use presage_tests::{compare_report, entry, fit_churn, train};

fn auc(report: &serde_json::Value, column: &str) -> f64 {
    entry(&report["metrics"], "metric", "auc")[column]
        .as_f64()
        .unwrap()
}

#[test]
fn compares_two_versions_stored_and_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let gbm = fit_churn(&registry, &["--num-iterations", "60", "--json"])
        .ok()
        .json();
    let rf = fit_churn(
        &registry,
        &["--algo", "rf", "--num-iterations", "60", "--json"],
    )
    .ok()
    .json();

    // Stored: each version's own test AUC, no test of the difference.
    let stored = train(&registry, &["compare", "churn", "1", "2", "--json"])
        .ok()
        .json();
    assert_eq!(
        auc(&stored, "a"),
        gbm["metrics"]["test"]["auc"].as_f64().unwrap()
    );
    assert_eq!(
        auc(&stored, "b"),
        rf["metrics"]["test"]["auc"].as_f64().unwrap()
    );
    assert!(stored["delong"].is_null() && stored["migration"].is_null());
    assert!(!stored["importance"].as_array().unwrap().is_empty());

    // On data: both score the same 7,043 rows.
    let telco = presage_datasets::telco_churn_csv();
    let policy = presage_datasets::root().join("policies/churn.toml");
    let run = train(
        &registry,
        &[
            "compare",
            "churn",
            "champion",
            "2",
            "--data",
            telco.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--json",
        ],
    )
    .ok();
    let on_data = run.json();
    assert_eq!(
        (on_data["a"].as_u64(), on_data["b"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(on_data["rows"], 7043);
    let d = &on_data["delong"];
    let diff = d["difference"].as_f64().unwrap();
    assert!((diff - (auc(&on_data, "b") - auc(&on_data, "a"))).abs() < 1e-12);
    let (lo, hi) = (
        d["ci95"][0].as_f64().unwrap(),
        d["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo < diff && diff < hi);
    let p = d["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(d["significant"], p < 0.05);
    assert!(on_data["score_psi"].as_f64().unwrap() >= 0.0);
    let m = &on_data["migration"];
    let segments: Vec<&str> = m["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(segments, ["healthy", "watch", "at_risk"]);
    let total: u64 = m["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 7043);

    // The same comparison as text names the test and the policy.
    let text = train(
        &registry,
        &[
            "compare",
            "churn",
            "1",
            "2",
            "--data",
            telco.to_str().unwrap(),
        ],
    )
    .ok()
    .stdout;
    assert!(text.contains("DeLong test, AUC v2 - v1"), "{text}");
    assert!(text.contains("policy: default"), "{text}");
}

#[test]
fn unknown_versions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit_churn(&registry, &["--num-iterations", "10"]).ok();
    let run = train(&registry, &["compare", "churn", "1", "9"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains('9'), "{}", run.stderr);
}

#[test]
fn html_report_is_one_self_contained_file_with_five_plots() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let report = dir.path().join("report.html");
    let run = compare_report(&registry, &["--num-iterations", "80"], &report).ok();
    assert!(run.stderr.contains("report ->"), "{}", run.stderr);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 5);
    for title in [
        "ROC",
        "Precision-recall",
        "Calibration",
        "Cumulative gain",
        "Score distribution",
    ] {
        assert!(html.contains(title), "{title} missing");
    }
    assert!(html.contains("DeLong test") && html.contains("Segment migration"));
    // Nothing is fetched: the only URL is the SVG namespace.
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    assert!(!html.contains("<script"));
    assert!(html.len() < 300_000, "{} bytes", html.len());

    // Without data there is nothing to plot.
    let no_data = train(
        &registry,
        &["compare", "churn", "1", "2", "--html", "x.html"],
    );
    assert_eq!(no_data.code, 2);
    assert!(no_data.stderr.contains("--data"), "{}", no_data.stderr);
}
