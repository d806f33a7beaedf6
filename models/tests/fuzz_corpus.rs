//! Replays the committed fuzz corpora (`models/fuzz/corpus/artifact` and
//! `models/fuzz/corpus/policy`) through the fuzz targets' own code
//! (`models/fuzz/chain.rs`): no input may panic, and the seeds must still
//! reach past parsing. No fuzzing here; see `models/fuzz/README.md`.
//!
//! The artifact seeds are written by `write_artifact_seeds` (ignored; run
//! it with `--ignored` after a format change).

#[path = "../fuzz/chain.rs"]
mod chain;
#[path = "../../serving/tests/support/fixture.rs"]
mod fixture;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use presage_models::artifact::{
    Algorithm, FeatureDescription, FeatureSpecRecord, Metrics, ModelArtifact, Task, HEADER_LEN,
};
use presage_models::calibration::Calibrator;
use presage_models::ensemble::Link;
use presage_models::metrics::RegressionMetrics;
use presage_models::tree::{Node, SplitRule, Tree};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Runs every file of `target`'s corpus; returns how many were accepted.
fn replay(target: &str, mut run: impl FnMut(&[u8]) -> bool) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    let mut accepted = 0;
    let mut panicked = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        match catch_unwind(AssertUnwindSafe(|| run(&data))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panicked.push(path.display().to_string()),
        }
    }
    assert!(panicked.is_empty(), "these inputs panic: {panicked:#?}");
    accepted
}

#[test]
fn artifact_corpus_replays_without_panics() {
    let accepted = replay("artifact", chain::artifact);
    // Eight seeds are whole, loadable models (`write_artifact_seeds`).
    assert!(
        accepted >= 8,
        "only {accepted} artifact seeds load; regenerate them with \
         `cargo test -p presage-models --test fuzz_corpus -- --ignored`"
    );
}

#[test]
fn policy_corpus_replays_without_panics() {
    let model = chain::fixture();
    let accepted = replay("policy", |data| chain::policy(&model, data));
    // Four seed policies and five seed rules are valid.
    assert!(accepted >= 9, "only {accepted} policy seeds parse");
}

/// Variants of the fixture that reach each encoding the decoder knows.
fn variants() -> Vec<(&'static str, ModelArtifact)> {
    let base = fixture::artifact("fuzz", 0.0);
    let mut described = base.clone();
    described.id_column = Some("customer_id".into());
    described.params = vec![("trees".into(), "5".into())];
    described.calibration = Calibrator::Platt { a: 1.2, b: -0.1 };
    described.feature_spec = Some(FeatureSpecRecord {
        spec_json: r#"{"features":["tenure"]}"#.into(),
        features: vec![FeatureDescription {
            name: "tenure".into(),
            description: "months".into(),
        }],
        label: FeatureDescription {
            name: "churned".into(),
            description: "left".into(),
        },
    });
    let mut deep = base.clone();
    deep.calibration = Calibrator::Isotonic {
        x: vec![0.0, 0.5, 1.0],
        y: vec![0.0, 0.4, 1.0],
    };
    let numeric = |feature, threshold, left, right| Node::Split {
        feature,
        rule: SplitRule::Numeric {
            threshold,
            missing_left: false,
        },
        left,
        right,
        gain: 1.0,
        cover: 10.0,
    };
    let leaf = |value| Node::Leaf { value, cover: 5.0 };
    deep.ensemble.trees.push(Tree {
        nodes: vec![
            numeric(0, 24.0, 1, 2),
            Node::Split {
                feature: 4,
                rule: SplitRule::Categorical {
                    left: vec![0, 3],
                    missing_left: true,
                },
                left: 3,
                right: 4,
                gain: 0.5,
                cover: 10.0,
            },
            numeric(1, 50.0, 5, 6),
            leaf(0.1),
            leaf(-0.2),
            leaf(0.3),
            leaf(-0.4),
        ],
    });
    let mut forest = base.clone();
    forest.algorithm = Algorithm::RandomForest;
    forest.ensemble.link = Link::Probability;
    forest.ensemble.base_score = 0.0;
    let mut regression = base.clone();
    regression.task = Task::Regression {
        target: "spend".into(),
    };
    regression.ensemble.link = Link::Identity;
    regression.score_quantiles.values.clear();
    regression.evaluation.test = Some(Metrics::Regression(RegressionMetrics {
        rows: 10,
        rmse: 1.5,
        mae: 1.0,
        r2: 0.5,
    }));
    vec![
        ("fixture", base),
        ("described", described),
        ("deep", deep),
        ("forest", forest),
        ("regression", regression),
    ]
}

#[test]
#[ignore = "writes the artifact seed corpus; run with --ignored to regenerate it"]
fn write_artifact_seeds() {
    let dir = corpus_dir("artifact");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, mode: u8, bytes: &[u8]| {
        let mut data = vec![mode];
        data.extend_from_slice(bytes);
        assert!(data.len() < 64 * 1024, "{name} is too large for the corpus");
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };
    for (name, artifact) in variants() {
        let file = artifact.to_bytes().unwrap();
        write(
            &format!("payload-v2-{name}"),
            chain::PAYLOAD_V2,
            &file[HEADER_LEN..],
        );
        if name == "fixture" {
            let payload = &file[HEADER_LEN..];
            // Format 1 is format 2 without the last field, `feature_spec`
            // (`None`: one zero byte).
            assert_eq!(payload.last(), Some(&0));
            let v1 = &payload[..payload.len() - 1];
            write("payload-v1-fixture", chain::PAYLOAD_V1, v1);
            write("raw-v1-fixture", chain::RAW, &chain::framed(v1, 1));
            write("raw-v2-fixture", chain::RAW, &file);
            write("raw-header-only", chain::RAW, &file[..HEADER_LEN]);
            write("raw-truncated", chain::RAW, &file[..file.len() / 2]);
            let mut flipped = file.clone();
            flipped[HEADER_LEN + 10] ^= 0x20;
            write("raw-flipped-payload", chain::RAW, &flipped);
            let mut version = file.clone();
            version[8] = 9;
            write("raw-version-9", chain::RAW, &version);
            let mut length = file.clone();
            length[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
            write("raw-huge-length", chain::RAW, &length);
            write("raw-bad-magic", chain::RAW, b"PRESAGE\x02not a model");
            let mut trailing = payload.to_vec();
            trailing.push(0);
            write("payload-v2-trailing-byte", chain::PAYLOAD_V2, &trailing);
        }
    }
}
