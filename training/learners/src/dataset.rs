//! The data the learners train on: column-major `f64` columns with their
//! kinds (numeric or categorical codes) and a target, row-major validation
//! rows, binning of the columns, and the progress report both learners
//! send after each tree. The gradient-boosting loop and the forest both
//! start from here, so neither imports the other.

use rayon::prelude::*;

use crate::binning::{BinMapper, BinnedData};

/// Whether a training column is numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Real values, `NaN` = missing.
    Numeric,
    /// Dictionary codes `0..n_categories` as `f64`, `NaN` = missing.
    Categorical {
        /// Dictionary size.
        n_categories: usize,
    },
}

/// Column-major training data.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// One vector per feature, all of equal length.
    pub columns: &'a [Vec<f64>],
    /// Kind of each column.
    pub kinds: &'a [ColumnKind],
    /// Target per row (0/1 for binary).
    pub target: &'a [f64],
}

/// Row-major validation data for early stopping.
#[derive(Debug, Clone, Copy)]
pub struct ValidData<'a> {
    /// Rows, `n_features` values each.
    pub rows: &'a [f64],
    /// Target per row.
    pub target: &'a [f64],
}

/// Progress of a training run, reported after each tree.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Trees grown so far.
    pub done: usize,
    /// Trees planned.
    pub total: usize,
    /// Validation metric after this tree, if tracked.
    pub valid_metric: Option<f64>,
}

/// Bins the training columns.
pub fn bin_columns(data: &TrainData<'_>, max_bin: usize) -> BinnedData {
    let mappers: Vec<BinMapper> = data
        .columns
        .par_iter()
        .zip(data.kinds.par_iter())
        .map(|(values, kind)| match kind {
            ColumnKind::Numeric => BinMapper::numeric(values, max_bin),
            ColumnKind::Categorical { n_categories } => {
                BinMapper::categorical(values, *n_categories, max_bin)
            }
        })
        .collect();
    BinnedData::new(data.columns, mappers)
}

/// Column-major columns as one row-major buffer (`rows × columns`), as the
/// compiled scorer reads them.
pub fn row_major(columns: &[Vec<f64>]) -> Vec<f64> {
    let n_rows = columns.first().map_or(0, Vec::len);
    let mut rows = Vec::with_capacity(n_rows * columns.len());
    for r in 0..n_rows {
        rows.extend(columns.iter().map(|c| c[r]));
    }
    rows
}
