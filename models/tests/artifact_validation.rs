//! Loading a model file whose checksum is valid but whose content is bad or
//! crafted: each test corrupts exactly one thing in a valid artifact,
//! re-encodes it with `to_bytes` (so the checksum matches) and checks that
//! `from_bytes` refuses it with the error naming the check that failed. The
//! last tests cover the size cap, the registry's name/version check, and
//! depths that would overflow a recursive walk.

use std::path::Path;

use presage_models::artifact::{
    Algorithm, ArtifactCheck, ArtifactError, DataFingerprint, Evaluation, ModelArtifact,
    ScoreQuantiles, Task, MAX_ARTIFACT_BYTES,
};
use presage_models::calibration::Calibrator;
use presage_models::compiled::CompiledEnsemble;
use presage_models::drift;
use presage_models::ensemble::{Ensemble, Link};
use presage_models::registry::{Registry, RegistryError, VersionSelector};
use presage_models::schema::{Feature, FeatureHistogram, FeatureKind, FeatureSchema, FeatureStats};
use presage_models::shap::ShapWorkspace;
use presage_models::tree::{Node, SplitRule, Tree, TreeError, MAX_TREE_DEPTH};

const PATH: &str = "registry/churn/v3.presage";

fn numeric_split(feature: u32, threshold: f64, left: u32, right: u32, cover: f64) -> Node {
    Node::Split {
        feature,
        rule: SplitRule::Numeric {
            threshold,
            missing_left: true,
        },
        left,
        right,
        gain: 2.0,
        cover,
    }
}

fn categorical_split(feature: u32, codes: &[u32], left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        rule: SplitRule::Categorical {
            left: codes.to_vec(),
            missing_left: false,
        },
        left,
        right,
        gain: 1.0,
        cover: 10.0,
    }
}

fn leaf(value: f64, cover: f64) -> Node {
    Node::Leaf { value, cover }
}

/// A small valid artifact shaped like presage-train's: a numeric feature
/// (with a missing value) and a categorical one, one tree on each, Platt
/// calibration and 101 score quantiles.
fn valid() -> ModelArtifact {
    let tenure = Feature {
        name: "tenure".into(),
        kind: FeatureKind::Numeric,
        stats: FeatureStats {
            rows: 10,
            missing: 1,
            min: 0.0,
            max: 20.0,
            mean: 5.0,
        },
        histogram: FeatureHistogram {
            edges: vec![1.5, 10.0],
            counts: vec![3, 4, 2],
            missing: 1,
        },
    };
    let plan = Feature {
        name: "plan".into(),
        kind: FeatureKind::Categorical {
            categories: vec!["free".into(), "pro".into(), "team".into()],
        },
        // As training writes them: no min, max or mean for a category.
        stats: FeatureStats {
            rows: 10,
            missing: 0,
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
        },
        histogram: FeatureHistogram {
            edges: vec![],
            counts: vec![5, 3, 2],
            missing: 0,
        },
    };
    let trees = vec![
        Tree {
            nodes: vec![
                numeric_split(0, 1.5, 1, 2, 10.0),
                leaf(-0.4, 4.0),
                leaf(0.6, 6.0),
            ],
        },
        Tree {
            nodes: vec![
                categorical_split(1, &[1, 2], 1, 2),
                leaf(0.2, 5.0),
                leaf(-0.1, 5.0),
            ],
        },
    ];
    ModelArtifact {
        name: "churn".into(),
        version: 3,
        created_at_unix: 1_700_000_000,
        trainer_version: "test".into(),
        algorithm: Algorithm::GradientBoosting,
        params: vec![("num_leaves".into(), "2".into())],
        task: Task::BinaryClassification {
            label: "churned".into(),
            positive: "1".into(),
            negative: "0".into(),
        },
        id_column: None,
        schema: FeatureSchema {
            features: vec![tenure, plan],
        },
        ensemble: Ensemble {
            n_features: 2,
            base_score: -0.3,
            trees,
            link: Link::Logit,
        },
        calibration: Calibrator::Platt { a: 1.1, b: -0.2 },
        data: DataFingerprint {
            source: "t.csv".into(),
            rows: 10,
            columns: 3,
            sha256: "00".into(),
        },
        evaluation: Evaluation {
            split_rows: [10, 0, 0],
            split_method: "test".into(),
            train: None,
            valid: None,
            test: None,
            baselines: vec![],
            beats_baselines: None,
            best_iteration: None,
        },
        importance: vec![],
        score_quantiles: ScoreQuantiles {
            source: "validation".into(),
            values: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
        },
        feature_spec: None,
    }
}

/// `valid()` with one change.
fn with(change: impl FnOnce(&mut ModelArtifact)) -> ModelArtifact {
    let mut artifact = valid();
    change(&mut artifact);
    artifact
}

/// Encodes (valid checksum) and decodes `artifact`, which must be refused
/// by `check` with exactly `message`.
#[track_caller]
fn assert_rejected(artifact: &ModelArtifact, check: ArtifactCheck, message: &str) {
    let bytes = artifact.to_bytes().expect("encodes");
    match ModelArtifact::from_bytes(&bytes, PATH) {
        Err(error @ ArtifactError::Invalid { .. }) => {
            let text = error.to_string();
            let ArtifactError::Invalid {
                path,
                check: got,
                message: got_message,
            } = error
            else {
                unreachable!()
            };
            assert_eq!((got, got_message.as_str()), (check, message), "{text}");
            assert_eq!(path, PATH);
            assert!(
                text.starts_with(&format!(
                    "{PATH}: model is invalid, the {} check failed: {message}; ",
                    check.name()
                )) && text.ends_with("restore it from a backup or retrain the model"),
                "{text}"
            );
        }
        other => panic!("expected the {check} check to fail, got {other:?}"),
    }
}

/// Encodes and decodes `artifact`, which must load unchanged.
#[track_caller]
fn assert_loads(artifact: &ModelArtifact) -> ModelArtifact {
    let bytes = artifact.to_bytes().expect("encodes");
    let loaded = ModelArtifact::from_bytes(&bytes, PATH)
        .unwrap_or_else(|e| panic!("a valid artifact was refused: {e}"));
    // Byte equality: the stats hold NaN, so `==` would not do.
    assert_eq!(loaded.to_bytes().unwrap(), bytes);
    loaded
}

#[test]
fn the_unmodified_artifact_loads_scores_explains_and_measures_drift() {
    let artifact = assert_loads(&valid());
    let compiled = artifact.compile().unwrap();
    let row = [3.0, 1.0];
    let raw = compiled.raw_score(&row);
    assert_eq!(raw, artifact.ensemble.raw_score_reference(&row));
    let mut out = vec![0.0; 3];
    ShapWorkspace::new().contributions_into(&artifact.ensemble, &row, &mut out);
    assert!((out.iter().sum::<f64>() - raw).abs() < 1e-12);
    let columns = vec![vec![0.0, 5.0, 30.0, f64::NAN], vec![0.0, 2.0, -1.0, 7.0]];
    let report = drift::report(
        &artifact.schema.features,
        &columns,
        &artifact.score_quantiles,
        &[0.1, 0.5, 0.9],
    );
    assert_eq!(report.features.len(), 2);
    assert!(report.score_psi.is_some());
}

// ---- schema ----------------------------------------------------------------

#[test]
fn schema_width_must_match_the_trees() {
    assert_rejected(
        &with(|a| a.ensemble.n_features = 3),
        ArtifactCheck::SchemaWidth,
        "schema has 2 features but the trees expect 3",
    );
}

#[test]
fn feature_names_are_unique() {
    assert_rejected(
        &with(|a| a.schema.features[1].name = "tenure".into()),
        ArtifactCheck::FeatureNames,
        r#"feature 1 is named "tenure", like an earlier feature; feature names must be unique"#,
    );
}

#[test]
fn a_dictionary_lists_each_category_once() {
    assert_rejected(
        &with(|a| {
            a.schema.features[1].kind = FeatureKind::Categorical {
                categories: vec!["free".into(), "pro".into(), "free".into()],
            }
        }),
        ArtifactCheck::Categories,
        r#"feature "plan" lists category "free" twice (codes 0 and 2); each category has one code"#,
    );
}

#[test]
fn missing_values_are_at_most_the_rows() {
    assert_rejected(
        &with(|a| a.schema.features[0].stats.missing = 11),
        ArtifactCheck::FeatureStats,
        r#"feature "tenure" has 11 missing values in 10 rows"#,
    );
}

#[test]
fn numeric_histograms_have_one_count_more_than_edges() {
    for counts in [vec![3, 4], vec![3, 4, 2, 0]] {
        let n = counts.len();
        assert_rejected(
            &with(|a| a.schema.features[0].histogram.counts = counts),
            ArtifactCheck::Histogram,
            &format!(
                r#"feature "tenure": a numeric histogram with 2 edges has 3 bins, but there are {n} counts"#
            ),
        );
    }
}

#[test]
fn numeric_histogram_edges_are_not_nan() {
    assert_rejected(
        &with(|a| a.schema.features[0].histogram.edges[1] = f64::NAN),
        ArtifactCheck::Histogram,
        r#"feature "tenure": histogram edge 1 is NaN"#,
    );
}

#[test]
fn numeric_histogram_edges_strictly_ascend() {
    // Training drops repeated edges, so equal edges are refused too.
    for (second, text) in [(1.0, "1"), (1.5, "1.5")] {
        assert_rejected(
            &with(|a| a.schema.features[0].histogram.edges[1] = second),
            ArtifactCheck::Histogram,
            &format!(
                r#"feature "tenure": histogram edges do not strictly ascend: edge 1 = {text} follows edge 0 = 1.5"#
            ),
        );
    }
}

#[test]
fn infinite_histogram_edges_load_because_training_writes_them() {
    // Training data may hold ±inf, and edges are quantiles of the values.
    assert_loads(&with(|a| {
        a.schema.features[0].histogram.edges = vec![f64::NEG_INFINITY, 1.5, f64::INFINITY];
        a.schema.features[0].histogram.counts = vec![1, 2, 4, 2];
    }));
    // An empty (all missing) numeric feature has no edges and one count.
    assert_loads(&with(|a| {
        a.schema.features[0].histogram = FeatureHistogram {
            edges: vec![],
            counts: vec![0],
            missing: 10,
        };
        a.schema.features[0].stats.missing = 10;
    }));
}

#[test]
fn categorical_histograms_have_no_edges() {
    assert_rejected(
        &with(|a| a.schema.features[1].histogram.edges = vec![0.5]),
        ArtifactCheck::Histogram,
        r#"feature "plan": a categorical histogram has no edges, but this one has 1"#,
    );
}

#[test]
fn categorical_histograms_have_one_count_per_category() {
    assert_rejected(
        &with(|a| a.schema.features[1].histogram.counts = vec![5, 5]),
        ArtifactCheck::Histogram,
        r#"feature "plan": 3 categories but 2 histogram counts; there is one count per category"#,
    );
}

#[test]
fn histograms_count_no_more_rows_than_the_feature_saw() {
    assert_rejected(
        &with(|a| a.schema.features[0].histogram.missing = 2),
        ArtifactCheck::Histogram,
        r#"feature "tenure": the histogram counts 11 rows (2 of them missing), more than the 10 rows the feature saw"#,
    );
    // Counts that would overflow the drift code's sums.
    assert_rejected(
        &with(|a| a.schema.features[1].histogram.counts = vec![u64::MAX, 1, 0]),
        ArtifactCheck::Histogram,
        r#"feature "plan": the histogram counts more than 2^64 rows, more than the 10 rows the feature saw"#,
    );
}

// ---- trees -----------------------------------------------------------------

#[test]
fn trees_are_trees() {
    assert_rejected(
        &with(|a| {
            if let Node::Split { right, .. } = &mut a.ensemble.trees[0].nodes[0] {
                *right = 7;
            }
        }),
        ArtifactCheck::TreeStructure,
        "tree 0: child index 7 is out of range (3 nodes)",
    );
    assert_rejected(
        &with(|a| a.ensemble.trees[0].nodes[0] = numeric_split(0, f64::NAN, 1, 2, 10.0)),
        ArtifactCheck::TreeStructure,
        "tree 0: node 0 has a NaN threshold",
    );
}

/// A chain of `depth` numeric splits: node `2k` splits on feature
/// `k % n_features` at `k`, its left child `2k + 1` is a leaf and its right
/// child the next split; the last split's children are both leaves. Every
/// node has cover 1, so TreeSHAP gives each child of a split half (lopsided
/// covers along a path of many distinct features make TreeSHAP's rounding
/// errors grow, see the `shap` module, which is not what these tests are
/// about).
fn chain(depth: usize, n_features: usize) -> Tree {
    assert!(depth >= 1);
    let mut nodes = Vec::with_capacity(2 * depth + 1);
    for k in 0..depth {
        let here = nodes.len() as u32;
        nodes.push(numeric_split(
            (k % n_features) as u32,
            k as f64,
            here + 1,
            here + 2,
            1.0,
        ));
        nodes.push(leaf(0.001 * k as f64, 1.0));
    }
    nodes.push(leaf(1.0, 1.0));
    Tree { nodes }
}

/// Runs `f` on a thread with `stack` bytes of stack (so a recursion that
/// grows with depth would overflow it) and returns its result.
fn on_small_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_tree_100_000_levels_deep_is_refused_without_overflowing_the_stack() {
    let deep = with(|a| a.ensemble.trees.push(chain(100_000, 1)));
    let bytes = deep.to_bytes().unwrap();
    let tree = deep.ensemble.trees[2].clone();
    let (error, depth, check) = on_small_stack(256 * 1024, move || {
        let error = ModelArtifact::from_bytes(&bytes, PATH).unwrap_err();
        // The iterative walk measures it and checks it on the same small stack.
        (error, tree.depth(), tree.validate(1))
    });
    assert_eq!(depth, 100_000);
    assert_eq!(check, Err(TreeError::TooDeep { depth: 100_000 }));
    let ArtifactError::Invalid { check, message, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(check, ArtifactCheck::TreeDepth);
    assert_eq!(
        message,
        "tree 2: tree is 100000 levels deep, more than the limit of 1024 (MAX_TREE_DEPTH); \
         presage-train grows far shallower trees"
    );
}

#[test]
fn trees_up_to_max_tree_depth_load_and_one_more_level_does_not() {
    assert_loads(&with(|a| a.ensemble.trees.push(chain(MAX_TREE_DEPTH, 1))));
    assert_rejected(
        &with(|a| a.ensemble.trees.push(chain(MAX_TREE_DEPTH + 1, 1))),
        ArtifactCheck::TreeDepth,
        "tree 2: tree is 1025 levels deep, more than the limit of 1024 (MAX_TREE_DEPTH); \
         presage-train grows far shallower trees",
    );
}

#[test]
fn treeshap_at_max_tree_depth_fits_in_a_small_stack() {
    // The worst case for TreeSHAP's workspace: a new feature on every level.
    let n = MAX_TREE_DEPTH;
    let ensemble = Ensemble {
        n_features: n,
        base_score: 0.25,
        trees: vec![chain(MAX_TREE_DEPTH, n)],
        link: Link::Identity,
    };
    ensemble.validate().unwrap();
    // 512 KiB optimised; debug frames are about four times larger, so debug
    // builds get the 2 MiB every spawned thread has by default.
    let stack = if cfg!(debug_assertions) {
        2 << 20
    } else {
        512 << 10
    };
    let (total, raw) = on_small_stack(stack, move || {
        let row: Vec<f64> = (0..n).map(|k| k as f64 + 0.5).collect();
        let mut out = vec![0.0; n + 1];
        ShapWorkspace::new().contributions_into(&ensemble, &row, &mut out);
        (out.iter().sum::<f64>(), ensemble.raw_score_reference(&row))
    });
    assert!((total - raw).abs() < 1e-9, "{total} vs {raw}");
}

#[test]
fn treeshap_refuses_an_unvalidated_deeper_tree_with_a_panic_not_a_stack_overflow() {
    let tree = chain(100_000, 1);
    let message = on_small_stack(1 << 20, move || {
        let caught = std::panic::catch_unwind(|| {
            let mut out = vec![0.0; 2];
            ShapWorkspace::new().tree_contributions(&tree, &[1e9], &mut out);
        });
        let payload = caught.unwrap_err();
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    });
    assert!(message.contains("deeper than MAX_TREE_DEPTH"), "{message}");
}

#[test]
fn splits_match_their_feature_kind() {
    assert_rejected(
        &with(|a| a.ensemble.trees[1].nodes[0] = numeric_split(1, 0.5, 1, 2, 10.0)),
        ArtifactCheck::SplitKind,
        r#"tree 1, node 0: a numeric split on categorical feature "plan""#,
    );
    assert_rejected(
        &with(|a| a.ensemble.trees[0].nodes[0] = categorical_split(0, &[1], 1, 2)),
        ArtifactCheck::SplitKind,
        r#"tree 0, node 0: a categorical split on numeric feature "tenure""#,
    );
}

#[test]
fn categorical_splits_name_codes_in_the_dictionary() {
    assert_rejected(
        &with(|a| a.ensemble.trees[1].nodes[0] = categorical_split(1, &[1, 3], 1, 2)),
        ArtifactCheck::SplitCategories,
        r#"tree 1, node 0: the split sends category code 3 of feature "plan" left, but its dictionary has 3 categories"#,
    );
}

#[test]
fn categorical_sets_stay_within_the_compiled_scorers_memory_limits() {
    // 100,000 categories; 60 splits each naming only the last code would
    // compile to 60 × 1,563 bitset words, over the 65,536 + 16 per node
    // allowed: a small file asking for a large allocation.
    let n = 100_000usize;
    let last = (n - 1) as u32;
    let artifact = with(|a| {
        a.schema.features[1].kind = FeatureKind::Categorical {
            categories: (0..n).map(|i| format!("c{i}")).collect(),
        };
        a.schema.features[1].histogram.counts = vec![0; n];
        for _ in 0..60 {
            a.ensemble.trees.push(Tree {
                nodes: vec![
                    categorical_split(1, &[last], 1, 2),
                    leaf(0.1, 5.0),
                    leaf(-0.1, 5.0),
                ],
            });
        }
    });
    assert_rejected(
        &artifact,
        ArtifactCheck::CategorySets,
        "the categorical splits need 93781 bitset words in all, more than the 68512 allowed for \
         186 nodes (16 per node plus 65536): their sets name category codes far beyond any \
         trained split",
    );
    // The compiled scorer applies the same limit to an ensemble built in code.
    let error = CompiledEnsemble::new(&artifact.ensemble).unwrap_err();
    assert!(error.to_string().contains("93781 bitset words"), "{error}");
    // Fewer splits of the same kind are fine.
    let mut fewer = artifact.clone();
    fewer.ensemble.trees.truncate(2 + 40);
    assert_loads(&fewer);
}

#[test]
fn one_categorical_set_spans_at_most_65_536_words() {
    let ensemble = Ensemble {
        n_features: 1,
        base_score: 0.0,
        trees: vec![Tree {
            nodes: vec![
                categorical_split(0, &[4_194_304], 1, 2),
                leaf(1.0, 1.0),
                leaf(2.0, 1.0),
            ],
        }],
        link: Link::Identity,
    };
    let error = CompiledEnsemble::new(&ensemble).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot compile the ensemble: tree 0, node 0: category code 4194304 is too large (limit 4194303)"
    );
}

#[test]
fn thresholds_are_finite() {
    // Training places thresholds between two finite training values.
    for (threshold, text) in [(f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
        assert_rejected(
            &with(|a| a.ensemble.trees[0].nodes[0] = numeric_split(0, threshold, 1, 2, 10.0)),
            ArtifactCheck::Thresholds,
            &format!(
                r#"tree 0, node 0: the threshold on feature "tenure" is {text}; training only places thresholds between finite values"#
            ),
        );
    }
}

#[test]
fn leaf_values_are_finite() {
    for (value, text) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        assert_rejected(
            &with(|a| a.ensemble.trees[1].nodes[2] = leaf(value, 5.0)),
            ArtifactCheck::LeafValues,
            &format!("tree 1, node 2: leaf value is {text}; leaf values must be finite"),
        );
    }
}

#[test]
fn covers_are_finite_and_not_negative() {
    for (cover, text) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (-1.0, "-1")] {
        assert_rejected(
            &with(|a| a.ensemble.trees[0].nodes[1] = leaf(-0.4, cover)),
            ArtifactCheck::Covers,
            &format!(
                "tree 0, node 1: cover is {text}; a cover counts training rows, so it is finite and not negative"
            ),
        );
    }
    // A split's cover is checked too.
    assert_rejected(
        &with(|a| a.ensemble.trees[0].nodes[0] = numeric_split(0, 1.5, 1, 2, f64::NAN)),
        ArtifactCheck::Covers,
        "tree 0, node 0: cover is NaN; a cover counts training rows, so it is finite and not negative",
    );
    // Zero cover (a leaf no training row reached) is fine.
    assert_loads(&with(|a| a.ensemble.trees[0].nodes[1] = leaf(-0.4, 0.0)));
}

#[test]
fn the_base_score_is_finite() {
    for (base, text) in [(f64::NAN, "NaN"), (f64::NEG_INFINITY, "-inf")] {
        assert_rejected(
            &with(|a| a.ensemble.base_score = base),
            ArtifactCheck::BaseScore,
            &format!("the base score is {text}; it must be a finite number"),
        );
    }
}

#[test]
fn the_link_fits_the_task_and_learner() {
    assert_rejected(
        &with(|a| a.ensemble.link = Link::Probability),
        ArtifactCheck::Link,
        "binary classification models trained by gbm use the Logit link, but this one names Probability",
    );
    assert_rejected(
        &with(|a| a.algorithm = Algorithm::RandomForest),
        ArtifactCheck::Link,
        "binary classification models trained by rf use the Probability link, but this one names Logit",
    );
    let regression = |a: &mut ModelArtifact| {
        a.task = Task::Regression {
            target: "spend".into(),
        };
        a.ensemble.link = Link::Identity;
        a.calibration = Calibrator::Identity;
    };
    assert_loads(&with(regression));
    assert_rejected(
        &with(|a| {
            regression(a);
            a.ensemble.link = Link::Logit;
        }),
        ArtifactCheck::Link,
        "regression models trained by gbm use the Identity link, but this one names Logit",
    );
    assert_rejected(
        &with(|a| {
            regression(a);
            a.calibration = Calibrator::Platt { a: 1.0, b: 0.0 };
        }),
        ArtifactCheck::Calibration,
        "a regression model is not calibrated, but this one has a platt calibrator",
    );
}

#[test]
fn calibration_parameters_are_finite() {
    assert_rejected(
        &with(|a| {
            a.calibration = Calibrator::Platt {
                a: f64::INFINITY,
                b: 0.0,
            }
        }),
        ArtifactCheck::Calibration,
        "platt parameters must be finite (a = inf, b = 0)",
    );
    assert_rejected(
        &with(|a| {
            a.calibration = Calibrator::Platt {
                a: 1.0,
                b: f64::NAN,
            }
        }),
        ArtifactCheck::Calibration,
        "platt parameters must be finite (a = 1, b = NaN)",
    );
    assert_rejected(
        &with(|a| {
            a.calibration = Calibrator::Isotonic {
                x: vec![0.1, f64::INFINITY],
                y: vec![0.0, 1.0],
            }
        }),
        ArtifactCheck::Calibration,
        "isotonic knot 1: x = inf is not finite",
    );
    assert_rejected(
        &with(|a| {
            a.calibration = Calibrator::Isotonic {
                x: vec![0.1, 0.9],
                y: vec![0.0, f64::NAN],
            }
        }),
        ArtifactCheck::Calibration,
        "isotonic knot 1: y = NaN is not in [0, 1]",
    );
    assert_loads(&with(|a| {
        a.calibration = Calibrator::Isotonic {
            x: vec![0.1, 0.9],
            y: vec![0.0, 1.0],
        }
    }));
}

#[test]
fn score_quantiles_are_101_finite_ascending_values_or_none() {
    assert_rejected(
        &with(|a| a.score_quantiles.values = vec![0.0, 1.0]),
        ArtifactCheck::ScoreQuantiles,
        "there are 2 score quantiles; there must be 101 (the 0th to the 100th percentile), or none",
    );
    for (value, text) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        assert_rejected(
            &with(|a| a.score_quantiles.values[50] = value),
            ArtifactCheck::ScoreQuantiles,
            &format!("score quantile 50 is {text}; quantiles must be finite"),
        );
    }
    assert_rejected(
        &with(|a| a.score_quantiles.values[50] = 0.2),
        ArtifactCheck::ScoreQuantiles,
        "score quantiles decrease: quantile 50 = 0.2 is below quantile 49 = 0.49",
    );
    // Ties are fine (a model with few distinct scores), and so is no quantile.
    assert_loads(&with(|a| a.score_quantiles.values = vec![0.5; 101]));
    assert_loads(&with(|a| a.score_quantiles.values.clear()));
}

// ---- the file: size cap ----------------------------------------------------

fn write(dir: &Path, name: &str, artifact: &ModelArtifact) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, artifact.to_bytes().unwrap()).unwrap();
    path
}

#[test]
fn a_file_over_the_cap_is_refused_from_its_size_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse file one byte over MAX_ARTIFACT_BYTES: reading it would take
    // 2 GiB of memory; refusing it from its size takes none.
    let huge = dir.path().join("huge.presage");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_ARTIFACT_BYTES + 1)
        .unwrap();
    let error = ModelArtifact::read(&huge).unwrap_err();
    assert!(
        matches!(&error, ArtifactError::TooLarge { size, limit, .. }
            if *size == MAX_ARTIFACT_BYTES + 1 && *limit == MAX_ARTIFACT_BYTES),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{}: model file is 2147483701 bytes, more than the limit of 2147483700 bytes, so it \
             was not read; check that the path names a Presage model (a genuine model this large \
             needs a higher limit, or retraining with fewer or smaller trees)",
            huge.display()
        )
    );
}

#[test]
fn a_file_over_the_callers_cap_is_refused_from_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "v3.presage", &valid());
    let size = std::fs::metadata(&path).unwrap().len();
    // A file of exactly the cap loads.
    ModelArtifact::read_capped(&path, size).unwrap();
    // Under the cap, the error reports the file's size from the stat (a read
    // stops after cap + 1 bytes, so it could only report cap + 1).
    for cap in [size - 1, size - 10, 0] {
        let error = ModelArtifact::read_capped(&path, cap).unwrap_err();
        assert!(
            matches!(&error, ArtifactError::TooLarge { size: s, limit, path: p }
                if *s == size && *limit == cap && p == &path.display().to_string()),
            "{error:?}"
        );
    }
}

#[test]
fn a_directory_is_not_read_as_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let error = ModelArtifact::read(dir.path()).unwrap_err();
    assert!(matches!(error, ArtifactError::NotAFile { .. }), "{error:?}");
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

// ---- the registry: name and version ------------------------------------------

#[test]
fn the_registry_reads_a_version_only_if_the_file_says_it_is_that_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let mut artifact = valid();
    let registered = registry.register(&mut artifact).unwrap();
    assert_eq!(registered.version, 1);
    let loaded = registry.read_version("churn", 1).unwrap();
    assert_eq!((loaded.name.as_str(), loaded.version), ("churn", 1));
    registry.load("churn", &VersionSelector::Latest).unwrap();

    // Version 1 copied by hand to v2.presage.
    std::fs::copy(
        registry.artifact_path("churn", 1),
        registry.artifact_path("churn", 2),
    )
    .unwrap();
    let error = registry.read_version("churn", 2).unwrap_err();
    let path = registry.artifact_path("churn", 2).display().to_string();
    assert!(
        matches!(&error, RegistryError::Misfiled { path: p, name, version: 2, found_name, found_version: 1 }
            if *p == path && name == "churn" && found_name == "churn"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{path}: the file holds model \"churn\" version 1, but its place in the registry is \
             model 'churn' version 2 (was it copied or renamed by hand?); put it back where it \
             belongs, and register new models with presage-train"
        )
    );
    // `load` goes through the same check.
    let error = registry
        .load("churn", &VersionSelector::Version(2))
        .unwrap_err();
    assert!(matches!(error, RegistryError::Misfiled { .. }), "{error:?}");

    // Another model's file under this model's name.
    std::fs::create_dir_all(dir.path().join("adoption")).unwrap();
    std::fs::copy(
        registry.artifact_path("churn", 1),
        registry.artifact_path("adoption", 1),
    )
    .unwrap();
    let error = registry.read_version("adoption", 1).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("holds model \"churn\" version 1, but its place in the registry is model 'adoption' version 1"),
        "{error}"
    );

    // Names that are not registry names are refused before any path is built.
    let error = registry.read_version("../churn", 1).unwrap_err();
    assert!(matches!(error, RegistryError::InvalidName(_)), "{error:?}");

    // Invalid content read through the registry keeps its own error.
    write(
        &dir.path().join("churn"),
        "v3.presage",
        &with(|a| {
            a.version = 3;
            a.ensemble.base_score = f64::NAN;
        }),
    );
    let error = registry.read_version("churn", 3).unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::Artifact(ArtifactError::Invalid {
                check: ArtifactCheck::BaseScore,
                ..
            })
        ),
        "{error:?}"
    );
}
