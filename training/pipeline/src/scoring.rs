//! Scoring a table with a stored version: encode it with the version's
//! schema, score every row, calibrate. One place for what `predict`,
//! `evaluate`, `drift`, `compare`, `retrain` and `presage-export` all do.

use presage_models::artifact::{ModelArtifact, Task};

use crate::encode::{encode_labels, encode_with_schema, FeatureError};
use presage_data::table::Table;
use presage_learners::dataset::row_major;

/// A table scored by one version.
#[derive(Debug, Clone)]
pub struct ScoredTable {
    /// Features per row (the version's schema).
    pub width: usize,
    /// Encoded rows, row-major.
    pub rows: Vec<f64>,
    /// Calibrated probability (or prediction) per row.
    pub probabilities: Vec<f64>,
    /// Schema columns the table lacks (scored as missing; only with `allow_missing`).
    pub absent: Vec<String>,
}

impl ScoredTable {
    /// Encoded row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[i * self.width..(i + 1) * self.width]
    }

    /// Encoded values of feature `f` over all rows.
    pub fn column(&self, f: usize) -> Vec<f64> {
        self.rows
            .iter()
            .skip(f)
            .step_by(self.width.max(1))
            .copied()
            .collect()
    }
}

/// Why a table could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The table does not fit the version's schema or label.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// The version cannot score (a damaged ensemble).
    #[error("{0}")]
    Model(String),
    /// No row has a label.
    #[error("{0}: no row has a label")]
    NoLabels(String),
}

/// Scores every row of `table` with `model`.
pub fn score_table(
    model: &ModelArtifact,
    table: &Table,
    allow_missing: bool,
) -> Result<ScoredTable, ScoreError> {
    let (columns, absent) = encode_with_schema(table, &model.schema, allow_missing)?;
    let rows = row_major(&columns);
    let compiled = model
        .compile()
        .map_err(|e| ScoreError::Model(format!("{} version {}: {e}", model.name, model.version)))?;
    let mut probabilities = compiled.predict_batch(&rows);
    probabilities
        .iter_mut()
        .for_each(|p| *p = model.calibration.apply(*p));
    Ok(ScoredTable {
        width: model.schema.len(),
        rows,
        probabilities,
        absent,
    })
}

/// The rows of `table` that have a label for `task`, and their targets
/// (1/0 for classification).
pub fn labelled_rows(table: &Table, task: &Task) -> Result<(Vec<usize>, Vec<f64>), ScoreError> {
    let labels = encode_labels(table, task)?;
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    if keep.is_empty() {
        return Err(ScoreError::NoLabels(table.path.display().to_string()));
    }
    let targets = keep.iter().map(|&i| labels[i].expect("kept")).collect();
    Ok((keep, targets))
}
