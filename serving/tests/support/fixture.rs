//! A small hand-built model (five features, two of them categorical) for
//! in-process tests and the fuzz targets, which include this file by path.

#![allow(dead_code)]

use presage_models::artifact::{
    Algorithm, DataFingerprint, Evaluation, ModelArtifact, ScoreQuantiles, Task,
};
use presage_models::calibration::Calibrator;
use presage_models::ensemble::{Ensemble, Link};
use presage_models::schema::{Feature, FeatureHistogram, FeatureKind, FeatureSchema, FeatureStats};
use presage_models::tree::{Node, SplitRule, Tree};

/// The fixture's features: three numeric, two categorical.
pub const FEATURES: [&str; 5] = ["tenure", "charges", "visits", "plan", "region"];

fn numeric(name: &str, max: f64) -> Feature {
    Feature {
        name: name.into(),
        kind: FeatureKind::Numeric,
        stats: FeatureStats {
            rows: 100,
            missing: 0,
            min: 0.0,
            max,
            mean: max / 2.0,
        },
        histogram: FeatureHistogram {
            edges: vec![max / 2.0],
            counts: vec![50, 50],
            missing: 0,
        },
    }
}

fn categorical(name: &str, categories: &[&str]) -> Feature {
    Feature {
        name: name.into(),
        kind: FeatureKind::Categorical {
            categories: categories.iter().map(|c| c.to_string()).collect(),
        },
        stats: FeatureStats {
            rows: 100,
            missing: 0,
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
        },
        histogram: FeatureHistogram {
            edges: vec![],
            counts: vec![100 / categories.len() as u64; categories.len()],
            missing: 0,
        },
    }
}

/// A split node.
fn split(feature: u32, rule: SplitRule, left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        rule,
        left,
        right,
        gain: 1.0,
        cover: 100.0,
    }
}

fn leaf(value: f64) -> Node {
    Node::Leaf { value, cover: 50.0 }
}

/// A model named `name` whose trees read every feature; `shift` moves
/// every leaf, so versions score differently.
pub fn artifact(name: &str, shift: f64) -> ModelArtifact {
    let numeric_split = |feature, threshold| {
        split(
            feature,
            SplitRule::Numeric {
                threshold,
                missing_left: true,
            },
            1,
            2,
        )
    };
    let trees = vec![
        Tree {
            nodes: vec![
                numeric_split(0, 12.0),
                leaf(0.8 + shift),
                leaf(-0.6 + shift),
            ],
        },
        Tree {
            nodes: vec![numeric_split(1, 70.0), leaf(-0.2), leaf(0.3)],
        },
        Tree {
            nodes: vec![numeric_split(2, 3.0), leaf(0.25), leaf(-0.15)],
        },
        Tree {
            nodes: vec![
                split(
                    3,
                    SplitRule::Categorical {
                        left: vec![0],
                        missing_left: false,
                    },
                    1,
                    2,
                ),
                leaf(0.4),
                leaf(-0.1),
            ],
        },
        Tree {
            nodes: vec![
                split(
                    4,
                    SplitRule::Categorical {
                        left: vec![1, 2],
                        missing_left: true,
                    },
                    1,
                    2,
                ),
                leaf(-0.05),
                leaf(0.12),
            ],
        },
    ];
    ModelArtifact {
        name: name.into(),
        version: 0,
        created_at_unix: 0,
        trainer_version: "fixture".into(),
        algorithm: Algorithm::GradientBoosting,
        params: vec![],
        task: Task::BinaryClassification {
            label: "churned".into(),
            positive: "1".into(),
            negative: "0".into(),
        },
        id_column: None,
        schema: FeatureSchema {
            features: vec![
                numeric("tenure", 72.0),
                numeric("charges", 120.0),
                numeric("visits", 30.0),
                categorical("plan", &["monthly", "yearly", "two-year"]),
                categorical("region", &["north", "south", "east", "west"]),
            ],
        },
        ensemble: Ensemble {
            n_features: 5,
            base_score: -0.3,
            trees,
            link: Link::Logit,
        },
        calibration: Calibrator::Identity,
        data: DataFingerprint {
            source: "fixture".into(),
            rows: 100,
            columns: 6,
            sha256: "00".into(),
        },
        evaluation: Evaluation {
            split_rows: [100, 0, 0],
            split_method: "fixture".into(),
            train: None,
            valid: None,
            test: None,
            baselines: vec![],
            beats_baselines: None,
            best_iteration: None,
        },
        importance: vec![],
        score_quantiles: ScoreQuantiles {
            source: "train".into(),
            values: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
        },
        feature_spec: None,
    }
}
