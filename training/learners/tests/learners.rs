//! Behaviour of the learners on small synthetic data with known answers.

use presage_learners::booster::train_gbm;
use presage_learners::dataset::{row_major, ColumnKind, TrainData, ValidData};
use presage_learners::forest::train_forest;
use presage_learners::params::{Objective, ParamSet};
use presage_models::compiled::CompiledEnsemble;
use presage_models::metrics::roc_auc;
use presage_models::rng::SplitMix64;
use presage_models::tree::{Node, SplitRule};

fn auc(target: &[f64], scores: &[f64]) -> f64 {
    let labels: Vec<bool> = target.iter().map(|y| *y > 0.5).collect();
    roc_auc(&labels, scores).unwrap()
}

fn scores(ensemble: &presage_models::ensemble::Ensemble, columns: &[Vec<f64>]) -> Vec<f64> {
    CompiledEnsemble::new(ensemble)
        .unwrap()
        .predict_batch(&row_major(columns))
}

/// `n` rows: x0 uniform, x1 noise, x2 a category of 8 (0..8), label from
/// x0 > 0.6 or category in {1, 4, 6}; x0 is missing for 10% of rows, which are positive.
fn synthetic(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let mut x0 = Vec::new();
    let mut x1 = Vec::new();
    let mut x2 = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let a = rng.next_f64();
        let c = rng.below(8) as f64;
        let missing = rng.next_f64() < 0.1;
        x0.push(if missing { f64::NAN } else { a });
        x1.push(rng.next_f64());
        x2.push(c);
        let positive = missing || a > 0.6 || [1.0, 4.0, 6.0].contains(&c);
        y.push(f64::from(u8::from(positive)));
    }
    (vec![x0, x1, x2], y)
}

/// Fits a GBM on one numeric column.
fn fit_one_column(params: ParamSet, x: Vec<f64>, y: &[f64]) -> presage_models::ensemble::Ensemble {
    let columns = vec![x];
    let params = params.check_gbm(1).unwrap();
    let data = TrainData {
        columns: &columns,
        kinds: &[ColumnKind::Numeric],
        target: y,
    };
    train_gbm(&params, &data, None, &mut |_| {}).ensemble
}

const KINDS: [ColumnKind; 3] = [
    ColumnKind::Numeric,
    ColumnKind::Numeric,
    ColumnKind::Categorical { n_categories: 8 },
];

#[test]
fn gbm_learns_thresholds_categories_and_missing_direction() {
    let (columns, target) = synthetic(4000, 1);
    let params = ParamSet {
        num_iterations: Some(50),
        ..Default::default()
    }
    .check_gbm(3)
    .unwrap();
    let data = TrainData {
        columns: &columns,
        kinds: &KINDS,
        target: &target,
    };
    let model = train_gbm(&params, &data, None, &mut |_| {}).ensemble;
    let (test_columns, test_target) = synthetic(2000, 2);
    let s = scores(&model, &test_columns);
    assert!(
        auc(&test_target, &s) > 0.99,
        "AUC {}",
        auc(&test_target, &s)
    );
    // Rows with x0 missing are all positive: they must score high.
    let missing: Vec<f64> = (0..2000)
        .filter(|&i| test_columns[0][i].is_nan())
        .map(|i| s[i])
        .collect();
    assert!(
        missing.iter().all(|p| *p > 0.9),
        "missing rows scored low: {missing:?}"
    );
    // The categorical feature is split natively (a set of categories, not one-hot).
    let has_set_split = model.trees.iter().flat_map(|t| &t.nodes).any(|n| {
        matches!(n, Node::Split { rule: SplitRule::Categorical { left, .. }, .. } if left.len() >= 2)
    });
    assert!(has_set_split, "no multi-category split found");
}

#[test]
fn unseen_category_is_scored_like_a_rare_one() {
    let (columns, target) = synthetic(4000, 3);
    let params = ParamSet {
        num_iterations: Some(20),
        ..Default::default()
    }
    .check_gbm(3)
    .unwrap();
    let model = train_gbm(
        &params,
        &TrainData {
            columns: &columns,
            kinds: &KINDS,
            target: &target,
        },
        None,
        &mut |_| {},
    )
    .ensemble;
    let compiled = CompiledEnsemble::new(&model).unwrap();
    let p = compiled.predict(&[0.1, 0.5, -1.0]);
    assert!(p.is_finite() && (0.0..=1.0).contains(&p));
}

#[test]
fn training_is_identical_across_thread_counts() {
    let (columns, target) = synthetic(3000, 4);
    let params = ParamSet {
        num_iterations: Some(30),
        bagging_fraction: Some(0.7),
        bagging_freq: Some(1),
        feature_fraction: Some(0.67),
        ..Default::default()
    }
    .check_gbm(3)
    .unwrap();
    let data = TrainData {
        columns: &columns,
        kinds: &KINDS,
        target: &target,
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train_gbm(&params, &data, None, &mut |_| {}).ensemble)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    let forest_params = ParamSet {
        num_iterations: Some(8),
        ..Default::default()
    }
    .check_forest(3)
    .unwrap();
    let forest = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train_forest(&forest_params, &data, &|_| {}))
    };
    assert_eq!(forest(1), forest(2));
}

#[test]
fn seed_changes_bagged_models() {
    let (columns, target) = synthetic(2000, 5);
    let data = TrainData {
        columns: &columns,
        kinds: &KINDS,
        target: &target,
    };
    let fit = |seed| {
        let p = ParamSet {
            num_iterations: Some(5),
            bagging_fraction: Some(0.5),
            bagging_freq: Some(1),
            seed: Some(seed),
            ..Default::default()
        }
        .check_gbm(3)
        .unwrap();
        train_gbm(&p, &data, None, &mut |_| {}).ensemble
    };
    assert_eq!(fit(1), fit(1));
    assert_ne!(fit(1), fit(2));
}

#[test]
fn early_stopping_keeps_the_best_iteration() {
    let (columns, target) = synthetic(2000, 6);
    // Validation labels are shuffled noise: the first trees are as good as it gets.
    let (valid_columns, mut valid_target) = synthetic(1000, 7);
    let mut rng = SplitMix64::new(9);
    for i in (1..valid_target.len()).rev() {
        valid_target.swap(i, rng.below(i + 1));
    }
    let valid_rows = row_major(&valid_columns);
    let params = ParamSet {
        num_iterations: Some(300),
        early_stopping_rounds: Some(10),
        ..Default::default()
    }
    .check_gbm(3)
    .unwrap();
    let outcome = train_gbm(
        &params,
        &TrainData {
            columns: &columns,
            kinds: &KINDS,
            target: &target,
        },
        Some(ValidData {
            rows: &valid_rows,
            target: &valid_target,
        }),
        &mut |_| {},
    );
    let best = outcome.best_iteration.unwrap();
    assert_eq!(outcome.ensemble.trees.len(), best);
    assert!(outcome.valid_history.len() < 300, "did not stop early");
    assert_eq!(outcome.valid_history.len(), best + 10);
    let best_metric = outcome.valid_history[best - 1];
    assert!(outcome.valid_history.iter().all(|m| *m >= best_metric));
}

#[test]
fn regression_fits_a_line() {
    let mut rng = SplitMix64::new(11);
    let x: Vec<f64> = (0..3000).map(|_| rng.next_f64() * 10.0).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| 2.0 * v + 1.0 + (rng.next_f64() - 0.5) * 0.1)
        .collect();
    let model = fit_one_column(
        ParamSet {
            objective: Some(Objective::Regression),
            num_iterations: Some(200),
            ..Default::default()
        },
        x,
        &y,
    );
    let compiled = CompiledEnsemble::new(&model).unwrap();
    for v in [1.0, 4.5, 9.0] {
        let p = compiled.predict(&[v]);
        assert!((p - (2.0 * v + 1.0)).abs() < 0.1, "f({v}) = {p}");
    }
}

#[test]
fn scale_pos_weight_raises_probabilities() {
    let (columns, target) = synthetic(2000, 12);
    let data = TrainData {
        columns: &columns,
        kinds: &KINDS,
        target: &target,
    };
    let mean = |w: f64| {
        let p = ParamSet {
            num_iterations: Some(10),
            scale_pos_weight: Some(w),
            ..Default::default()
        }
        .check_gbm(3)
        .unwrap();
        let s = scores(&train_gbm(&p, &data, None, &mut |_| {}).ensemble, &columns);
        s.iter().sum::<f64>() / s.len() as f64
    };
    assert!(mean(5.0) > mean(1.0) + 0.05);
}

#[test]
fn forest_averages_probabilities() {
    let (columns, target) = synthetic(3000, 13);
    let params = ParamSet {
        num_iterations: Some(30),
        ..Default::default()
    }
    .check_forest(3)
    .unwrap();
    let data = TrainData {
        columns: &columns,
        kinds: &KINDS,
        target: &target,
    };
    let forest = train_forest(&params, &data, &|_| {});
    assert_eq!(forest.trees.len(), 30);
    let (test_columns, test_target) = synthetic(2000, 14);
    let s = scores(&forest, &test_columns);
    assert!(s.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(
        auc(&test_target, &s) > 0.97,
        "AUC {}",
        auc(&test_target, &s)
    );
    // Fully grown trees on noiseless data: leaves are pure, so each tree votes 0 or 1/n_trees.
    for tree in &forest.trees {
        for node in &tree.nodes {
            if let Node::Leaf { value, .. } = node {
                let vote = value * 30.0;
                assert!((0.0..=1.0 + 1e-12).contains(&vote));
            }
        }
    }
}

#[test]
fn a_stump_learns_where_missing_values_go() {
    // Positive when x < 0.3 or missing: the single split must send NaN left.
    let mut rng = SplitMix64::new(21);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..2000 {
        let v = rng.next_f64();
        let missing = rng.next_f64() < 0.2;
        x.push(if missing { f64::NAN } else { v });
        y.push(f64::from(u8::from(missing || v < 0.3)));
    }
    let model = fit_one_column(
        ParamSet {
            num_iterations: Some(1),
            num_leaves: Some(2),
            ..Default::default()
        },
        x,
        &y,
    );
    let Node::Split {
        rule: SplitRule::Numeric {
            threshold,
            missing_left,
        },
        ..
    } = &model.trees[0].nodes[0]
    else {
        panic!("expected a numeric root split");
    };
    assert!(
        *missing_left,
        "missing values should follow the positive (left) side"
    );
    assert!((threshold - 0.3).abs() < 0.01, "threshold {threshold}");
    let compiled = CompiledEnsemble::new(&model).unwrap();
    assert_eq!(compiled.predict(&[f64::NAN]), compiled.predict(&[0.1]));
    assert!(compiled.predict(&[0.9]) < compiled.predict(&[0.1]));
}
