//! Random forest on the histogram tree learner.
//!
//! Each tree sees a bootstrap sample (rows drawn with replacement; a row drawn
//! `c` times carries weight `c`), samples `feature_fraction_bynode` of the
//! features at every node, and grows until leaves are pure, `min_data_in_leaf`
//! or `max_depth` stops it. With gradient `-y·c` and hessian `c`, a leaf's
//! output `-G/H` is the weighted mean target (the positive-class share) and
//! the split gain is the weighted variance reduction. Leaf values are divided
//! by the number of trees, so the raw score is the averaged probability; no
//! shrinkage. Trees are independent and grown in parallel, each from its own
//! seed-derived random stream, so results do not depend on thread count.

use presage_models::ensemble::{Ensemble, Link};
use presage_models::tree::Node;
use rayon::prelude::*;

use crate::dataset::{bin_columns, Progress, TrainData};
use crate::grower::Grower;
use crate::params::{ForestParams, Objective};
use presage_models::rng::SplitMix64;

/// Trains a random forest. Runs on the current rayon pool.
pub fn train_forest(
    params: &ForestParams,
    data: &TrainData<'_>,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> Ensemble {
    let n = data.target.len();
    let n_features = data.columns.len();
    let tp = &params.tree;
    let binned = bin_columns(data, tp.max_bin);
    let features: Vec<usize> = (0..n_features).collect();
    let draws = ((n as f64 * params.bagging_fraction).round() as usize).max(1);
    let n_trees = tp.num_iterations;
    let done = std::sync::atomic::AtomicUsize::new(0);

    let trees = (0..n_trees)
        .into_par_iter()
        .map(|t| {
            let mut rng = SplitMix64::derive(tp.seed, t as u64);
            let mut counts = vec![0u32; n];
            for _ in 0..draws {
                counts[rng.below(n)] += 1;
            }
            let rows: Vec<u32> = (0..n as u32).filter(|r| counts[*r as usize] > 0).collect();
            let grad: Vec<f32> = counts
                .iter()
                .zip(data.target)
                .map(|(c, y)| -(*y as f32) * *c as f32)
                .collect();
            let hess: Vec<f32> = counts.iter().map(|c| *c as f32).collect();
            let mut grower = Grower::new(&binned, tp.grower_config(false));
            let mut tree = grower.grow(rows, &grad, &hess, &features, &mut rng).tree;
            for node in &mut tree.nodes {
                if let Node::Leaf { value, .. } = node {
                    *value /= n_trees as f64;
                }
            }
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            on_progress(Progress {
                done: finished,
                total: n_trees,
                valid_metric: None,
            });
            tree
        })
        .collect();
    Ensemble {
        n_features,
        base_score: 0.0,
        trees,
        link: match tp.objective {
            Objective::Binary => Link::Probability,
            Objective::Regression => Link::Identity,
        },
    }
}
