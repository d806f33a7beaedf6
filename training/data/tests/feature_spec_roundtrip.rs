//! The feature spec is one type read two ways: from the `[window]`,
//! `[features]` and `[label]` sections of every shipped config, and from
//! the spec JSON a format-2 artifact stores. Both readings give the same
//! [`FeatureSpec`], which also survives its own JSON.

use std::path::{Path, PathBuf};

use presage_data::extract::spec::ExtractSpec;
use presage_models::artifact::ModelArtifact;
use presage_models::feature_spec::spec::FeatureSpec;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every shipped config with a feature spec.
fn configs() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("datasets/configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("[window]"))
        .collect();
    found.push(repo().join("training/data/tests/data/extract_tiny/churn.toml"));
    found.sort();
    found
}

#[test]
fn every_shipped_config_reads_into_the_one_type() {
    let configs = configs();
    assert!(configs.len() >= 4, "{configs:?}");
    for config in configs {
        let text = std::fs::read_to_string(&config).unwrap();
        let direct: FeatureSpec =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        direct
            .check()
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let through_extract = ExtractSpec::from_config(&text, &config, None, None)
            .unwrap()
            .expect("has [extract]")
            .feature_spec;
        assert_eq!(direct, through_extract, "{}", config.display());
        let json = serde_json::to_string(&direct).unwrap();
        let back: FeatureSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, direct, "{}", config.display());
    }
}

/// `churn_v2_artifact.presage` was written by `presage-train fit --config
/// datasets/configs/churn.toml --num-iterations 3 --num-leaves 4` before the
/// spec moved to `presage-models`: its `spec_json` is the whole extract
/// spec of that time (sources, window, features, label, segments, KPIs).
#[test]
fn the_spec_json_of_a_format_2_artifact_reads_back() {
    let path = repo().join("training/data/tests/data/churn_v2_artifact.presage");
    let artifact = ModelArtifact::read(&path).unwrap();
    let record = artifact.feature_spec.expect("trained from extracts");
    assert!(
        record.spec_json.contains("\"extract\""),
        "the old, larger JSON"
    );
    let stored: FeatureSpec = serde_json::from_str(&record.spec_json).unwrap();
    let config = repo().join("datasets/configs/churn.toml");
    let from_config: FeatureSpec =
        toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    assert_eq!(stored, from_config);
}
