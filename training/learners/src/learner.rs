//! The learners through linfa's traits, so they plug into the linfa
//! ecosystem: `GbmLearner` and `ForestLearner` implement
//! [`linfa::traits::Fit`] on a `Dataset` of `f64` records with `bool`
//! targets, and the fitted [`TreeModel`] implements `Predict` (probabilities
//! of the positive class).
//!
//! linfa records are plain `f64` matrices, so categorical columns are declared
//! on the learner (`categorical`: column index → number of categories, with
//! values given as codes `0..n`).

use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};
use presage_models::compiled::CompiledEnsemble;
use presage_models::ensemble::Ensemble;

use crate::booster::train_gbm;
use crate::dataset::{ColumnKind, TrainData};
use crate::forest::train_forest;
use crate::params::{ParamError, ParamSet};

/// Errors from fitting through linfa.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// A hyper-parameter is out of range.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The dataset cannot be used.
    #[error("{0}")]
    Data(String),
    /// An error raised by linfa.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// Gradient-boosting learner configuration.
#[derive(Debug, Clone, Default)]
pub struct GbmLearner {
    /// Hyper-parameters (checked at fit time).
    pub params: ParamSet,
    /// Categorical columns: (index, number of categories).
    pub categorical: Vec<(usize, usize)>,
}

/// Random-forest learner configuration.
#[derive(Debug, Clone, Default)]
pub struct ForestLearner {
    /// Hyper-parameters (checked at fit time).
    pub params: ParamSet,
    /// Categorical columns: (index, number of categories).
    pub categorical: Vec<(usize, usize)>,
}

/// A fitted tree ensemble with its compiled scorer.
#[derive(Debug, Clone)]
pub struct TreeModel {
    /// The trees.
    pub ensemble: Ensemble,
    compiled: CompiledEnsemble,
}

impl TreeModel {
    fn new(ensemble: Ensemble) -> Self {
        let compiled = CompiledEnsemble::new(&ensemble).expect("trained trees are well formed");
        TreeModel { ensemble, compiled }
    }
}

fn columns_of<D: Data<Elem = f64>>(records: &ArrayBase<D, Ix2>) -> Vec<Vec<f64>> {
    records.columns().into_iter().map(|c| c.to_vec()).collect()
}

fn kinds_of(
    n_features: usize,
    categorical: &[(usize, usize)],
) -> Result<Vec<ColumnKind>, LearnerError> {
    let mut kinds = vec![ColumnKind::Numeric; n_features];
    for &(index, n_categories) in categorical {
        let kind = kinds.get_mut(index).ok_or_else(|| {
            LearnerError::Data(format!(
                "categorical column {index} is out of range ({n_features} columns)"
            ))
        })?;
        *kind = ColumnKind::Categorical { n_categories };
    }
    Ok(kinds)
}

fn targets_of<T: AsSingleTargets<Elem = bool>>(targets: &T) -> Vec<f64> {
    targets
        .as_single_targets()
        .iter()
        .map(|y| f64::from(u8::from(*y)))
        .collect()
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, LearnerError> for GbmLearner
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = bool>,
{
    type Object = TreeModel;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<TreeModel, LearnerError> {
        let columns = columns_of(&dataset.records);
        let kinds = kinds_of(columns.len(), &self.categorical)?;
        let target = targets_of(&dataset.targets);
        if target.is_empty() {
            return Err(LearnerError::Data("the dataset has no rows".into()));
        }
        let params = self.params.check_gbm(columns.len())?;
        let data = TrainData {
            columns: &columns,
            kinds: &kinds,
            target: &target,
        };
        Ok(TreeModel::new(
            train_gbm(&params, &data, None, &mut |_| {}).ensemble,
        ))
    }
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, LearnerError> for ForestLearner
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = bool>,
{
    type Object = TreeModel;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<TreeModel, LearnerError> {
        let columns = columns_of(&dataset.records);
        let kinds = kinds_of(columns.len(), &self.categorical)?;
        let target = targets_of(&dataset.targets);
        if target.is_empty() {
            return Err(LearnerError::Data("the dataset has no rows".into()));
        }
        let params = self.params.check_forest(columns.len())?;
        let data = TrainData {
            columns: &columns,
            kinds: &kinds,
            target: &target,
        };
        Ok(TreeModel::new(train_forest(&params, &data, &|_| {})))
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for TreeModel {
    fn predict_inplace(&self, records: &ArrayBase<D, Ix2>, targets: &mut Array1<f64>) {
        assert_eq!(records.nrows(), targets.len(), "one target per row");
        let rows: Vec<f64> = records
            .rows()
            .into_iter()
            .flat_map(|r| r.to_vec())
            .collect();
        let probs = self.compiled.predict_batch(&rows);
        targets.iter_mut().zip(probs).for_each(|(t, p)| *t = p);
    }

    fn default_target(&self, records: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(records.nrows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::*;
    use ndarray::Array2;

    #[test]
    fn fits_and_predicts_through_linfa() {
        // y = x0 > 0.5, with a noise column.
        let n = 400;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                (i % 100) as f64 / 100.0
            } else {
                ((i * 37) % 11) as f64
            }
        });
        let y = Array1::from_iter((0..n).map(|i| (i % 100) as f64 / 100.0 > 0.5));
        let dataset = Dataset::new(x.clone(), y.clone());
        let params = ParamSet {
            num_iterations: Some(20),
            min_data_in_leaf: Some(5),
            ..Default::default()
        };
        let gbm = GbmLearner {
            params: params.clone(),
            categorical: vec![],
        }
        .fit(&dataset)
        .unwrap();
        let forest = ForestLearner {
            params: ParamSet {
                num_iterations: Some(10),
                ..Default::default()
            },
            categorical: vec![],
        }
        .fit(&dataset)
        .unwrap();
        for model in [gbm, forest] {
            let probs: Array1<f64> = model.predict(&x);
            let correct = probs
                .iter()
                .zip(y.iter())
                .filter(|(p, y)| (**p > 0.5) == **y)
                .count();
            assert!(correct as f64 / n as f64 > 0.97, "accuracy {correct}/{n}");
        }
    }
}
