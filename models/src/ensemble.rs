//! A tree ensemble and how its raw score becomes a prediction.
//!
//! The raw score of a row is `base_score + Σ tree.predict_row(row)`, summed in
//! tree order (the order is part of the contract: every scorer sums the same
//! way so that scores are bit-identical). [`Link`] turns the raw score into
//! the model's output.

use serde::{Deserialize, Serialize};

use crate::tree::{Tree, TreeError};

/// How the raw score maps to the model's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Link {
    /// Binary boosting: the raw score is a log-odds, output `1 / (1 + e^-raw)`.
    Logit,
    /// Random forest: the raw score is already an averaged probability,
    /// clamped to `[0, 1]`.
    Probability,
    /// Regression: the raw score is the prediction.
    Identity,
}

impl Link {
    /// Applies the link to a raw score.
    #[inline]
    pub fn apply(self, raw: f64) -> f64 {
        match self {
            Link::Logit => sigmoid(raw),
            Link::Probability => raw.clamp(0.0, 1.0),
            Link::Identity => raw,
        }
    }
}

/// The logistic function, computed stably for large `|x|`.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The log-odds of a probability, clamped away from 0 and 1.
#[inline]
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    (p / (1.0 - p)).ln()
}

/// A trained tree ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    /// Number of input features (columns of a row, in schema order).
    pub n_features: usize,
    /// Constant added to every raw score.
    pub base_score: f64,
    /// The trees, summed in order.
    pub trees: Vec<Tree>,
    /// How the raw score becomes the output.
    pub link: Link,
}

/// A tree of the ensemble that is not a valid tree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tree {index}: {source}")]
pub struct EnsembleError {
    /// Which tree (0-based).
    pub index: usize,
    /// What is wrong with it.
    pub source: TreeError,
}

impl Ensemble {
    /// Reference raw score of one row (plain tree walks).
    pub fn raw_score_reference(&self, row: &[f64]) -> f64 {
        let mut sum = self.base_score;
        for tree in &self.trees {
            sum += tree.predict_row(row);
        }
        sum
    }

    /// Checks every tree's structure against `n_features`, and its depth
    /// against [`crate::tree::MAX_TREE_DEPTH`] (see [`Tree::validate`]).
    pub fn validate(&self) -> Result<(), EnsembleError> {
        for (index, tree) in self.trees.iter().enumerate() {
            tree.validate(self.n_features)
                .map_err(|source| EnsembleError { index, source })?;
        }
        Ok(())
    }
}
