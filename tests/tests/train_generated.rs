//! The synthetic onboarding extract: `presage-datagen` is deterministic (the
//! shipped small extract regenerates byte for byte), the shipped configs
//! derive exactly the simulator's realised labels, and models trained on it
//! reach at least 90% of the oracle AUC (the AUC of the true probabilities)
//! on their test split.

use std::collections::BTreeMap;
use std::path::Path;

use presage_data::table::{read_table, ColumnData, Table};
use presage_models::metrics::roc_auc;
use presage_tests::{datagen, features, read_csv, snapshot, train};

fn numbers(table: &Table, column: &str) -> Vec<f64> {
    match &table
        .column(column)
        .unwrap_or_else(|| panic!("no {column}"))
        .data
    {
        ColumnData::Numeric(v) => v.clone(),
        ColumnData::Text(_) => panic!("{column} is text"),
    }
}

fn ids(table: &Table, column: &str) -> Vec<String> {
    let data = &table.column(column).unwrap().data;
    (0..data.len()).map(|i| data.text(i).unwrap()).collect()
}

/// `user_id -> value` of a truth column (missing values left out).
fn truth(column: &str) -> BTreeMap<String, f64> {
    let table = read_table(&presage_datasets::onboarding_small().join("truth.parquet")).unwrap();
    ids(&table, "user_id")
        .into_iter()
        .zip(numbers(&table, column))
        .filter(|(_, v)| !v.is_nan())
        .collect()
}

#[test]
fn shipped_extract_regenerates_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    datagen(&[
        "--users",
        "10000",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let shipped = snapshot(&presage_datasets::onboarding_small());
    let fresh = snapshot(&out);
    // Parquet files by path relative to their directory (PROVENANCE.md is not generated).
    let data_files = |s: &BTreeMap<std::path::PathBuf, Vec<u8>>, root: &Path| {
        s.iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
            .map(|(p, b)| (p.strip_prefix(root).unwrap().to_path_buf(), b.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let shipped = data_files(&shipped, &presage_datasets::onboarding_small());
    let fresh = data_files(&fresh, &out);
    assert_eq!(shipped.len(), 3);
    assert_eq!(
        shipped.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>()
    );
    assert!(shipped == fresh, "regenerated extract differs");

    // A different seed gives different data; a used directory is refused.
    let other = dir.path().join("other");
    datagen(&[
        "--users",
        "50",
        "--seed",
        "8",
        "--out",
        other.to_str().unwrap(),
    ])
    .ok();
    let again = datagen(&[
        "--users",
        "50",
        "--seed",
        "8",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("already exists and is not empty"),
        "{}",
        again.stderr
    );
}

#[test]
fn shipped_configs_derive_the_simulators_labels() {
    let dir = tempfile::tempdir().unwrap();
    for (config, label) in [("churn.toml", "churned"), ("adoption.toml", "adopted")] {
        let out = dir.path().join(format!("{label}.csv"));
        let config = presage_datasets::config(config);
        features(dir.path(), &config, &out, &[]).ok();
        let (header, rows) = read_csv(&out);
        let id = header.iter().position(|h| h == "user_id").unwrap();
        let y = header.iter().position(|h| h == label).unwrap();
        let truth = truth(label);
        assert!(rows.len() > 3000, "{label}: {} rows", rows.len());
        for row in &rows {
            let expected = truth
                .get(&row[id])
                .unwrap_or_else(|| panic!("{} has no realised {label}", row[id]));
            assert_eq!(
                row[y].parse::<f64>().unwrap(),
                *expected,
                "{label} of {}",
                row[id]
            );
        }
    }
}

fn model_and_oracle_auc(config: &str, probability: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let held_out = dir.path().join("test.csv");
    train(
        &dir.path().join("registry"),
        &[
            "fit",
            "--config",
            presage_datasets::config(config).to_str().unwrap(),
            "--test-predictions",
            held_out.to_str().unwrap(),
        ],
    )
    .ok();
    let (header, rows) = read_csv(&held_out);
    assert_eq!(header, ["user_id", "label", "probability"]);
    let truth = truth(probability);
    let labels: Vec<bool> = rows
        .iter()
        .map(|r| r[1].parse::<f64>().unwrap() > 0.5)
        .collect();
    let model: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    let oracle: Vec<f64> = rows.iter().map(|r| truth[&r[0]]).collect();
    (
        roc_auc(&labels, &model).unwrap(),
        roc_auc(&labels, &oracle).unwrap(),
    )
}

#[test]
fn churn_model_reaches_90_percent_of_the_oracle_auc() {
    // Measured: model 0.899, oracle 0.967 (93%) on 1,186 test users.
    let (model, oracle) = model_and_oracle_auc("churn.toml", "churn_probability");
    assert!(
        model >= 0.9 * oracle,
        "model AUC {model:.4} vs oracle {oracle:.4}"
    );
}

#[test]
fn adoption_model_reaches_90_percent_of_the_oracle_auc() {
    // Measured: model 0.912, oracle 0.949 (96%) on 1,017 test users.
    let (model, oracle) = model_and_oracle_auc("adoption.toml", "adoption_probability");
    assert!(
        model >= 0.9 * oracle,
        "model AUC {model:.4} vs oracle {oracle:.4}"
    );
    assert!(Path::new(&presage_datasets::onboarding_small())
        .join("truth.parquet")
        .exists());
}

#[test]
fn segments_command_assigns_every_user_and_reports_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("segments.csv");
    let run = train(
        &dir.path().join("registry"),
        &[
            "segments",
            "--config",
            presage_datasets::config("churn.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .ok();
    let report = run.json();
    let users = report["users"].as_u64().unwrap();
    // Every user with a complete 7-day window, labelled or not.
    assert_eq!(users, 8_998);
    let sizes = report["sizes"].as_array().unwrap();
    for segmentation in ["engagement", "feature_use"] {
        let total: u64 = sizes
            .iter()
            .filter(|s| s["segmentation"] == segmentation)
            .map(|s| s["users"].as_u64().unwrap())
            .sum();
        assert_eq!(total, users, "{segmentation}: {report}");
    }
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["user_id", "engagement", "feature_use"]);
    assert_eq!(rows.len() as u64, users);
    assert!(rows
        .iter()
        .all(|r| ["high", "moderate", "low"].contains(&r[1].as_str())));
}

#[test]
fn kpis_command_reports_by_rule_segment() {
    let dir = tempfile::tempdir().unwrap();
    let report = train(
        &dir.path().join("registry"),
        &[
            "kpis",
            "--config",
            presage_datasets::config("churn.toml").to_str().unwrap(),
            "--by",
            "engagement",
            "--json",
        ],
    )
    .ok()
    .json();
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups[0]["group"], "all");
    assert_eq!(groups[0]["users"], 8_998);
    let names: Vec<&str> = groups[1..]
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["high", "low", "moderate"]);
    let per_group: u64 = groups[1..]
        .iter()
        .map(|g| g["users"].as_u64().unwrap())
        .sum();
    assert_eq!(per_group, 8_998);
    // 'high' means onboarded within 72 hours: its completion rate is 100%,
    // 'low' (never onboarded in the window) 0%.
    assert_eq!(groups[1]["onboarding_completion_rate"], 1.0);
    assert_eq!(groups[2]["onboarding_completion_rate"], 0.0);
    // The funnel narrows step by step, and the last step is onboarding.
    let funnel = groups[0]["funnel"].as_array().unwrap();
    assert_eq!(funnel.len(), 5);
    let users: Vec<u64> = funnel
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert!(users.windows(2).all(|w| w[0] >= w[1]), "{users:?}");
    let completion = groups[0]["onboarding_completion_rate"].as_f64().unwrap();
    assert!((users[4] as f64 / 8_998.0 - completion).abs() < 1e-12);
    assert!(!report["cohorts"].as_array().unwrap().is_empty());
}

#[test]
fn events_given_as_a_glob_build_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = presage_datasets::onboarding_small();
    let config = presage_datasets::config("churn.toml");
    let mut tables = Vec::new();
    for (name, events) in [
        ("dir.csv", data.join("events")),
        ("glob.csv", data.join("events").join("*.parquet")),
    ] {
        let out = dir.path().join(name);
        features(
            dir.path(),
            &config,
            &out,
            &["--events", events.to_str().unwrap()],
        )
        .ok();
        tables.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(tables[0], tables[1]);
}
