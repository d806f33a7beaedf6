//! Gradient boosting: the training loop around the leaf-wise [`Grower`].
//!
//! Each iteration computes gradients and hessians of the objective at the
//! current scores, optionally draws a bagging subsample and a feature subset,
//! grows a tree, shrinks its leaves by the learning rate and adds it to the
//! scores. With a validation set, the stopping metric is tracked every
//! iteration and training stops after `early_stopping_rounds` without
//! improvement, keeping the best iteration's trees.

use presage_models::ensemble::{logit, sigmoid, Ensemble, Link};
use presage_models::metrics::roc_auc;
use presage_models::rng::SplitMix64;
use presage_models::tree::{Node, Tree};
use rayon::prelude::*;

use crate::dataset::{bin_columns, Progress, TrainData, ValidData};
use crate::grower::Grower;
use crate::params::{GbmParams, Objective, StoppingMetric};

/// A boosting run's result.
#[derive(Debug, Clone)]
pub struct BoostOutcome {
    /// The ensemble (truncated to the best iteration when early stopping fired).
    pub ensemble: Ensemble,
    /// Best iteration (1-based tree count), when a validation set was given.
    pub best_iteration: Option<usize>,
    /// Validation metric after each tree.
    pub valid_history: Vec<f64>,
}

fn tree_features(n_features: usize, fraction: f64, rng: &mut SplitMix64) -> Vec<usize> {
    if fraction >= 1.0 {
        return (0..n_features).collect();
    }
    let k = ((n_features as f64 * fraction).round() as usize).clamp(1, n_features);
    rng.sample_indices(n_features, k)
}

fn metric_value(metric: StoppingMetric, target: &[f64], scores: &[f64]) -> f64 {
    match metric {
        StoppingMetric::BinaryLogloss => {
            let sum: f64 = target
                .iter()
                .zip(scores)
                .map(|(y, s)| {
                    let p = sigmoid(*s).clamp(1e-15, 1.0 - 1e-15);
                    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                })
                .sum();
            sum / target.len().max(1) as f64
        }
        StoppingMetric::Auc => {
            let labels: Vec<bool> = target.iter().map(|y| *y > 0.5).collect();
            roc_auc(&labels, scores).unwrap_or(0.5)
        }
        StoppingMetric::L2 => {
            target
                .iter()
                .zip(scores)
                .map(|(y, s)| (y - s) * (y - s))
                .sum::<f64>()
                / target.len().max(1) as f64
        }
    }
}

fn higher_is_better(metric: StoppingMetric) -> bool {
    matches!(metric, StoppingMetric::Auc)
}

/// Trains a gradient-boosted ensemble. Runs on the current rayon pool.
pub fn train_gbm(
    params: &GbmParams,
    data: &TrainData<'_>,
    valid: Option<ValidData<'_>>,
    on_progress: &mut dyn FnMut(Progress),
) -> BoostOutcome {
    let n = data.target.len();
    let n_features = data.columns.len();
    let tp = &params.tree;
    let binned = bin_columns(data, tp.max_bin);
    let mut grower = Grower::new(&binned, tp.grower_config(true));

    let binary = tp.objective == Objective::Binary;
    let weight = |y: f64| {
        if binary && y > 0.5 {
            params.scale_pos_weight
        } else {
            1.0
        }
    };
    let base_score = if n == 0 {
        0.0
    } else if binary {
        let (pos, total) = data.target.iter().fold((0.0, 0.0), |(p, t), y| {
            (p + weight(*y) * *y, t + weight(*y))
        });
        logit(pos / total)
    } else {
        data.target.iter().sum::<f64>() / n as f64
    };

    let mut scores = vec![base_score; n];
    let mut grad = vec![0f32; n];
    let mut hess = vec![0f32; n];
    let mut valid_scores = valid.map(|v| vec![base_score; v.target.len()]);
    let mut valid_history = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut trees: Vec<Tree> = Vec::new();
    let mut rng = SplitMix64::new(tp.seed);
    let mut bag: Vec<u32> = (0..n as u32).collect();
    let bagging = params.bagging_freq > 0 && params.bagging_fraction < 1.0;

    for iteration in 0..tp.num_iterations {
        grad.par_iter_mut()
            .zip(hess.par_iter_mut())
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, (g, h))| {
                let y = data.target[i];
                if binary {
                    let p = sigmoid(scores[i]);
                    let w = weight(y);
                    *g = ((p - y) * w) as f32;
                    *h = ((p * (1.0 - p)).max(1e-16) * w) as f32;
                } else {
                    *g = (scores[i] - y) as f32;
                    *h = 1.0;
                }
            });
        if bagging && iteration % params.bagging_freq == 0 {
            let k = ((n as f64 * params.bagging_fraction).round() as usize).clamp(1, n);
            bag = rng
                .sample_indices(n, k)
                .into_iter()
                .map(|i| i as u32)
                .collect();
        }
        let features = tree_features(n_features, tp.feature_fraction, &mut rng);
        let grown = grower.grow(bag.clone(), &grad, &hess, &features, &mut rng);
        let mut tree = grown.tree;
        for node in &mut tree.nodes {
            if let Node::Leaf { value, .. } = node {
                *value *= params.learning_rate;
            }
        }
        // Update training scores: in-bag rows by leaf, out-of-bag rows by walking the tree.
        if bagging {
            scores
                .par_iter_mut()
                .enumerate()
                .with_min_len(4096)
                .for_each(|(r, s)| {
                    *s += tree.predict_by(|f| data.columns[f][r]);
                });
        } else {
            for (node, rows) in &grown.leaves {
                let Node::Leaf { value, .. } = tree.nodes[*node] else {
                    unreachable!("leaf index")
                };
                for &r in rows {
                    scores[r as usize] += value;
                }
            }
        }
        let mut valid_metric = None;
        if let (Some(v), Some(vs)) = (valid.as_ref(), valid_scores.as_mut()) {
            vs.par_iter_mut()
                .zip(v.rows.par_chunks(n_features.max(1)))
                .with_min_len(1024)
                .for_each(|(s, row)| {
                    *s += tree.predict_row(row);
                });
            let m = metric_value(params.metric, v.target, vs);
            valid_history.push(m);
            valid_metric = Some(m);
            let improved = match best {
                None => true,
                Some((_, b)) => {
                    if higher_is_better(params.metric) {
                        m > b
                    } else {
                        m < b
                    }
                }
            };
            if improved {
                best = Some((iteration, m));
            }
        }
        trees.push(tree);
        on_progress(Progress {
            done: iteration + 1,
            total: tp.num_iterations,
            valid_metric,
        });
        if params.early_stopping_rounds > 0 {
            if let Some((best_iter, _)) = best {
                if iteration - best_iter >= params.early_stopping_rounds {
                    break;
                }
            }
        }
    }
    let best_iteration = best.map(|(i, _)| i + 1);
    if params.early_stopping_rounds > 0 {
        if let Some(keep) = best_iteration {
            trees.truncate(keep);
        }
    }
    BoostOutcome {
        ensemble: Ensemble {
            n_features,
            base_score,
            trees,
            link: if binary { Link::Logit } else { Link::Identity },
        },
        best_iteration,
        valid_history,
    }
}
