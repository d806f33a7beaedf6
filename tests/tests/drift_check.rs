//! `presage-train drift`: new data compared with the training data recorded
//! in the artifact. The training table itself is stable; a copy with one
//! column dropped, one shifted and one full of new categories is not.

use presage_tests::{entry, fit_churn, read_csv, train};

#[test]
fn drift_separates_stable_shifted_and_broken_features() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit_churn(&registry, &["--num-iterations", "40"]).ok();
    let telco = presage_datasets::telco_churn_csv();

    let same = train(
        &registry,
        &[
            "drift",
            "--model",
            "churn",
            "--data",
            telco.to_str().unwrap(),
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (same["broken"].as_u64(), same["shifted"].as_u64()),
        (Some(0), Some(0)),
        "{same}"
    );
    assert!(same["score_psi"].as_f64().unwrap() < 0.1, "{same}");

    // Tenure + 36 months, Contract dropped, PaymentMethod never seen before.
    let (header, rows) = read_csv(&telco);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (tenure, contract, payment) = (col("tenure"), col("Contract"), col("PaymentMethod"));
    let keep: Vec<usize> = (0..header.len()).filter(|&i| i != contract).collect();
    let mut text = keep
        .iter()
        .map(|&i| header[i].as_str())
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for row in &rows {
        let mut row = row.clone();
        row[tenure] = (row[tenure].parse::<i64>().unwrap() + 36).to_string();
        row[payment] = "Crypto wallet".into();
        text += &(keep
            .iter()
            .map(|&i| row[i].as_str())
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    let drifted = dir.path().join("drifted.csv");
    std::fs::write(&drifted, text).unwrap();
    let report = train(
        &registry,
        &[
            "drift",
            "--model",
            "churn",
            "--data",
            drifted.to_str().unwrap(),
            "--json",
        ],
    )
    .ok()
    .json();
    let verdict = |name: &str| entry(&report["features"], "feature", name)["verdict"].clone();
    assert_eq!(verdict("Contract"), "broken");
    assert_eq!(verdict("PaymentMethod"), "broken");
    assert_eq!(verdict("tenure"), "shifted");
    assert_eq!(verdict("gender"), "stable");
    assert_eq!(report["absent_columns"][0], "Contract");
    assert!(report["score_psi"].as_f64().unwrap() > 0.25, "{report}");
}
