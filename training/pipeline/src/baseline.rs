//! Baselines reported beside every trained model, on the same test rows: the
//! class prior (every row gets the training positive rate) and a logistic
//! regression (linfa-logistic) on standardised numeric features, with missing
//! values imputed to the mean plus a missing indicator, and one-hot encoded
//! categorical features (up to 50 most frequent categories each). A model
//! that does not beat them is flagged in its report.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use presage_models::artifact::{Baseline, Metrics};
use presage_models::metrics::BinaryMetrics;

use presage_learners::dataset::ColumnKind;

const MAX_ONE_HOT: usize = 50;

/// Why the logistic baseline could not be fitted; `fit` reports it as a
/// warning and goes on without that baseline.
#[derive(Debug, thiserror::Error)]
#[error(
    "logistic regression baseline failed: {0}; the model is compared with the class prior only"
)]
pub struct BaselineError(String);

fn labels(target: &[f64]) -> Vec<bool> {
    target.iter().map(|y| *y > 0.5).collect()
}

/// The class-prior baseline: the training positive rate for every row.
pub fn class_prior(train_target: &[f64], test_target: &[f64]) -> Baseline {
    let rate = train_target.iter().sum::<f64>() / train_target.len().max(1) as f64;
    let probs = vec![rate; test_target.len()];
    Baseline {
        name: "class_prior".into(),
        test: Metrics::Binary(BinaryMetrics::compute(&labels(test_target), &probs)),
    }
}

/// How one training column becomes design-matrix columns.
enum Encoding {
    Numeric {
        mean: f64,
        std: f64,
        has_missing: bool,
    },
    OneHot {
        codes: Vec<u32>,
    },
}

fn encodings(columns: &[Vec<f64>], kinds: &[ColumnKind]) -> Vec<Encoding> {
    columns
        .iter()
        .zip(kinds)
        .map(|(values, kind)| match kind {
            ColumnKind::Numeric => {
                let present: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
                let n = present.len().max(1) as f64;
                let mean = present.iter().sum::<f64>() / n;
                let var = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                Encoding::Numeric {
                    mean,
                    std: if var > 0.0 { var.sqrt() } else { 1.0 },
                    has_missing: present.len() < values.len(),
                }
            }
            ColumnKind::Categorical { n_categories } => {
                // Codes are ordered most frequent first; the first is the reference level.
                let codes = (1..(*n_categories).min(MAX_ONE_HOT + 1) as u32).collect();
                Encoding::OneHot { codes }
            }
        })
        .collect()
}

fn design(columns: &[Vec<f64>], encodings: &[Encoding]) -> Array2<f64> {
    let n = columns.first().map_or(0, Vec::len);
    let width: usize = encodings
        .iter()
        .map(|e| match e {
            Encoding::Numeric { has_missing, .. } => 1 + usize::from(*has_missing),
            Encoding::OneHot { codes } => codes.len(),
        })
        .sum();
    let mut x = Array2::zeros((n, width));
    let mut j = 0;
    for (values, encoding) in columns.iter().zip(encodings) {
        match encoding {
            Encoding::Numeric {
                mean,
                std,
                has_missing,
            } => {
                for (i, v) in values.iter().enumerate() {
                    if v.is_finite() {
                        x[[i, j]] = (v - mean) / std;
                    } else if *has_missing {
                        x[[i, j + 1]] = 1.0;
                    }
                }
                j += 1 + usize::from(*has_missing);
            }
            Encoding::OneHot { codes } => {
                for (i, v) in values.iter().enumerate() {
                    if let Some(k) = codes.iter().position(|c| f64::from(*c) == *v) {
                        x[[i, j + k]] = 1.0;
                    }
                }
                j += codes.len();
            }
        }
    }
    x
}

/// Fits the logistic-regression baseline on the training rows and scores the
/// test rows (both column-major). Returns why it could not be fitted, if so.
pub fn logistic(
    train_columns: &[Vec<f64>],
    kinds: &[ColumnKind],
    train_target: &[f64],
    test_columns: &[Vec<f64>],
    test_target: &[f64],
) -> Result<Baseline, BaselineError> {
    let encodings = encodings(train_columns, kinds);
    let x_train = design(train_columns, &encodings);
    let y_train = Array1::from(labels(train_target));
    let dataset = Dataset::new(x_train, y_train);
    let model = LogisticRegression::default()
        .max_iterations(200)
        .fit(&dataset)
        .map_err(|e| BaselineError(e.to_string()))?;
    let x_test = design(test_columns, &encodings);
    let mut probs = model.predict_probabilities(&x_test).to_vec();
    if !model.labels().pos.class {
        probs.iter_mut().for_each(|p| *p = 1.0 - *p);
    }
    Ok(Baseline {
        name: "logistic_regression".into(),
        test: Metrics::Binary(BinaryMetrics::compute(&labels(test_target), &probs)),
    })
}
