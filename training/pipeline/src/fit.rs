//! `presage-train fit`: from a feature table to a registered model version.
//!
//! The [`FitPlan`] is validated before any work: the data is read, label and
//! features are chosen, rows are split, the learner is trained on the
//! training rows only, calibrated on the validation rows, evaluated on the
//! held-out test rows beside the baselines, and the artifact is registered.
//! Nothing is written to the registry unless every step succeeded.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use presage_models::artifact::{
    Algorithm, Baseline, DataFingerprint, Evaluation, FeatureSpecRecord, Metrics, ModelArtifact,
    Task,
};
use presage_models::calibration::{fit_isotonic, fit_platt, Calibrator};
use presage_models::compiled::CompiledEnsemble;
use presage_models::ensemble::Ensemble;
use presage_models::metrics::{BinaryMetrics, RegressionMetrics};
use presage_models::registry::{Registered, Registry, RegistryError};
use presage_models::schema::{FeatureKind, FeatureSchema};

use crate::baseline;
use crate::encode::{
    encode_labels, encode_with_schema, prepare, ColumnRoles, FeatureError, Prepared,
};
use crate::splits::{self, Splits};
use presage_data::table::{read_table, Table, TableError};
use presage_learners::booster::train_gbm;
use presage_learners::dataset::row_major;
use presage_learners::dataset::{Progress, TrainData, ValidData};
use presage_learners::forest::train_forest;
use presage_learners::params::{CalibrationMethod, Objective, ParamError, ParamSet};
use presage_models::summary;

/// Where the training rows come from.
#[derive(Debug, Clone)]
pub enum TrainingData {
    /// A feature table file (one row per user).
    File(PathBuf),
    /// A table built from `users` + `events` extracts by a spec.
    Built {
        /// The built table (its `path` is the config it was built by).
        table: Table,
        /// The spec, recorded in the artifact.
        spec: FeatureSpecRecord,
    },
}

impl TrainingData {
    /// Names the source in messages and in the artifact's fingerprint.
    pub fn source(&self) -> String {
        match self {
            TrainingData::File(path) => path.display().to_string(),
            TrainingData::Built { table, .. } => {
                format!("extracts built by {}", table.path.display())
            }
        }
    }
}

/// Everything `fit` needs, validated from flags and config.
#[derive(Debug, Clone)]
pub struct FitPlan {
    /// Training rows.
    pub data: TrainingData,
    /// Validation table replacing the internal validation split.
    pub valid_file: Option<PathBuf>,
    /// Test table replacing the internal test split.
    pub test_file: Option<PathBuf>,
    /// Label, id and dropped columns.
    pub roles: ColumnRoles,
    /// Model name in the registry.
    pub model: String,
    /// Learner.
    pub algorithm: Algorithm,
    /// Hyper-parameters (config file overridden by flags).
    pub params: ParamSet,
    /// Share of rows for validation (ignored with `valid_file`).
    pub valid_fraction: f64,
    /// Share of rows for test (ignored with `test_file`).
    pub test_fraction: f64,
    /// Column ordering rows in time, for a time-ordered split.
    pub split_by: Option<String>,
    /// Registry to store the model in.
    pub registry: PathBuf,
}

/// Why `fit` failed. Every variant is bad input except `Registry` I/O.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The table's columns do not fit.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// A hyper-parameter is invalid.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The split leaves nothing to train on, or similar.
    #[error("{0}")]
    Plan(String),
    /// The registry could not store the model.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl FitError {
    /// Whether this is the user's input (exit 2) rather than a failure (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, FitError::Registry(RegistryError::Io { .. }))
    }
}

/// The outcome of a successful fit.
#[derive(Debug)]
pub struct FitOutcome {
    /// The registered artifact.
    pub artifact: ModelArtifact,
    /// Where it was stored.
    pub registered: Registered,
    /// Warnings (dropped columns, rows).
    pub warnings: Vec<String>,
    /// Seconds spent training the learner.
    pub train_seconds: f64,
    /// Held-out test rows: (row id or index, label, calibrated probability).
    pub test_predictions: Vec<(String, f64, f64)>,
}

/// A trained model not yet stored, with its held-out rows.
#[derive(Debug)]
pub struct Trained {
    /// The artifact (version 0 until registered).
    pub artifact: ModelArtifact,
    /// Warnings (dropped columns, rows).
    pub warnings: Vec<String>,
    /// Seconds spent training the learner.
    pub train_seconds: f64,
    /// Held-out test rows: (row id or index, label, calibrated probability).
    pub test_predictions: Vec<(String, f64, f64)>,
    /// The same test rows as data, for scoring other versions on them.
    pub test_rows: TestRows,
}

/// Where the held-out test rows are.
#[derive(Debug)]
pub enum TestRows {
    /// Rows of the training table, in the order of `test_predictions`.
    Table(Table),
    /// A given test file.
    File(PathBuf),
}

/// Column-major subset of rows.
fn take_rows(columns: &[Vec<f64>], rows: &[usize]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .map(|c| rows.iter().map(|&r| c[r]).collect())
        .collect()
}

/// One evaluation split: columns, target, ids.
struct Part {
    columns: Vec<Vec<f64>>,
    target: Vec<f64>,
    ids: Vec<String>,
}

impl Part {
    fn from_rows(prepared: &Prepared, rows: &[usize]) -> Part {
        Part {
            columns: take_rows(&prepared.columns, rows),
            target: rows.iter().map(|&r| prepared.target[r]).collect(),
            ids: rows
                .iter()
                .map(|&r| {
                    prepared
                        .ids
                        .as_ref()
                        .map_or_else(|| r.to_string(), |ids| ids[r].clone())
                })
                .collect(),
        }
    }

    fn from_file(
        path: &Path,
        schema: &FeatureSchema,
        task: &Task,
        id: Option<&str>,
    ) -> Result<Part, FitError> {
        let table = read_table(path)?;
        let (columns, _) = encode_with_schema(&table, schema, false)?;
        let labels = encode_labels(&table, task)?;
        let keep: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
        if keep.is_empty() {
            return Err(FitError::Plan(format!(
                "{}: no row has a label",
                path.display()
            )));
        }
        let id_column = id.and_then(|id| table.column(id));
        Ok(Part {
            columns: take_rows(&columns, &keep),
            target: keep.iter().map(|&i| labels[i].expect("kept")).collect(),
            ids: keep
                .iter()
                .map(|&i| {
                    id_column
                        .and_then(|c| c.data.text(i))
                        .unwrap_or_else(|| i.to_string())
                })
                .collect(),
        })
    }

    fn len(&self) -> usize {
        self.target.len()
    }
}

fn metrics_of(task: &Task, target: &[f64], predictions: &[f64]) -> Metrics {
    match task {
        Task::BinaryClassification { .. } => {
            let labels: Vec<bool> = target.iter().map(|y| *y > 0.5).collect();
            Metrics::Binary(BinaryMetrics::compute(&labels, predictions))
        }
        Task::Regression { .. } => {
            Metrics::Regression(RegressionMetrics::compute(target, predictions))
        }
    }
}

fn predict(
    compiled: &CompiledEnsemble,
    calibration: &Calibrator,
    columns: &[Vec<f64>],
) -> Vec<f64> {
    let mut out = compiled.predict_batch(&row_major(columns));
    out.iter_mut().for_each(|p| *p = calibration.apply(*p));
    out
}

fn check_fraction(name: &str, value: f64) -> Result<(), FitError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(FitError::Plan(format!(
            "--{name} = {value}: must be in [0, 1)"
        )))
    }
}

/// Runs a fit plan end to end and registers the model.
pub fn train(plan: &FitPlan, on_progress: &(dyn Fn(Progress) + Sync)) -> Result<Trained, FitError> {
    check_fraction("valid-fraction", plan.valid_fraction)?;
    check_fraction("test-fraction", plan.test_fraction)?;
    if plan.valid_fraction + plan.test_fraction >= 1.0 {
        return Err(FitError::Plan(
            "--valid-fraction + --test-fraction must leave rows to train on".into(),
        ));
    }
    presage_models::registry::check_model_name(&plan.model)?;
    let table = match &plan.data {
        TrainingData::File(path) => read_table(path)?,
        TrainingData::Built { table, .. } => table.clone(),
    };
    let prepared = prepare(
        &table,
        &plan.roles,
        plan.params.objective.unwrap_or(Objective::Binary),
    )?;
    let n_features = prepared.features.len();
    // Check parameters before any heavy work.
    let gbm = (plan.algorithm == Algorithm::GradientBoosting)
        .then(|| plan.params.check_gbm(n_features))
        .transpose()?;
    let forest = (plan.algorithm == Algorithm::RandomForest)
        .then(|| plan.params.check_forest(n_features))
        .transpose()?;
    let tree_params = gbm
        .as_ref()
        .map(|p| &p.tree)
        .or(forest.as_ref().map(|p| &p.tree))
        .expect("one learner");
    let seed = tree_params.seed;

    let valid_fraction = if plan.valid_file.is_some() {
        0.0
    } else {
        plan.valid_fraction
    };
    let test_fraction = if plan.test_file.is_some() {
        0.0
    } else {
        plan.test_fraction
    };
    let splits: Splits = match &plan.split_by {
        None => splits::stratified(&prepared.target, valid_fraction, test_fraction, seed),
        Some(column) => {
            let data = &table
                .column(column)
                .ok_or_else(|| FeatureError::MissingColumn {
                    path: plan.data.source(),
                    column: column.clone(),
                    role: "--split-by",
                    available: table.column_list(),
                })?
                .data;
            // Rows without a label were dropped by `prepare`; map back to table rows.
            let label = &table.column(&plan.roles.label).expect("label checked").data;
            let table_rows: Vec<usize> = (0..table.n_rows())
                .filter(|&i| !label.is_missing(i))
                .collect();
            let mut order: Vec<usize> = (0..prepared.n_rows()).collect();
            order.sort_by(|&a, &b| {
                let (ra, rb) = (table_rows[a], table_rows[b]);
                match (data.text(ra), data.text(rb)) {
                    (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                        (Ok(x), Ok(y)) => x.total_cmp(&y),
                        _ => x.cmp(&y),
                    },
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
                .then(a.cmp(&b))
            });
            splits::time_ordered(&order, valid_fraction, test_fraction)
        }
    };
    if splits.train.is_empty() {
        return Err(FitError::Plan(format!(
            "{}: no rows left to train on",
            plan.data.source()
        )));
    }

    let names: Vec<String> = prepared.features.iter().map(|(n, _)| n.clone()).collect();
    let kinds_full: Vec<FeatureKind> = prepared.features.iter().map(|(_, k)| k.clone()).collect();
    let train = Part::from_rows(&prepared, &splits.train);
    let schema = FeatureSchema {
        features: names
            .iter()
            .zip(&kinds_full)
            .zip(&train.columns)
            .map(|((name, kind), values)| summary::describe_feature(name, kind, values))
            .collect(),
    };
    let id_column = plan.roles.id.as_deref();
    let valid = match &plan.valid_file {
        Some(path) => Part::from_file(path, &schema, &prepared.task, id_column)?,
        None => Part::from_rows(&prepared, &splits.valid),
    };
    let test = match &plan.test_file {
        Some(path) => Part::from_file(path, &schema, &prepared.task, id_column)?,
        None => Part::from_rows(&prepared, &splits.test),
    };
    let binary = matches!(prepared.task, Task::BinaryClassification { .. });
    if binary && (!train.target.iter().any(|y| *y > 0.5) || train.target.iter().all(|y| *y > 0.5)) {
        return Err(FitError::Plan(format!(
            "{}: the training rows hold only one class of '{}'; use more data or a smaller --test-fraction",
            plan.data.source(),
            plan.roles.label
        )));
    }

    let kinds = prepared.kinds();
    let train_data = TrainData {
        columns: &train.columns,
        kinds: &kinds,
        target: &train.target,
    };
    let valid_rows = row_major(&valid.columns);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(tree_params.num_threads)
        .build()
        .map_err(|e| {
            FitError::Plan(format!(
                "cannot start {} threads: {e}",
                tree_params.num_threads
            ))
        })?;
    let started = Instant::now();
    let (ensemble, best_iteration): (Ensemble, Option<usize>) =
        pool.install(|| match (&gbm, &forest) {
            (Some(p), _) => {
                let valid_data = (valid.len() > 0).then_some(ValidData {
                    rows: &valid_rows,
                    target: &valid.target,
                });
                let outcome = train_gbm(p, &train_data, valid_data, &mut |progress| {
                    on_progress(progress)
                });
                let best = (p.early_stopping_rounds > 0)
                    .then_some(outcome.best_iteration)
                    .flatten();
                (outcome.ensemble, best)
            }
            (None, Some(p)) => (train_forest(p, &train_data, on_progress), None),
            (None, None) => unreachable!("one learner is chosen"),
        });
    let train_seconds = started.elapsed().as_secs_f64();
    let compiled = CompiledEnsemble::new(&ensemble).expect("trained trees are well formed");

    // Calibrate on validation rows only.
    let calibration = if binary && valid.len() > 0 {
        let labels: Vec<bool> = valid.target.iter().map(|y| *y > 0.5).collect();
        let raw = predict(&compiled, &Calibrator::Identity, &valid.columns);
        match tree_params.calibration {
            CalibrationMethod::None => Calibrator::Identity,
            CalibrationMethod::Isotonic => fit_isotonic(&labels, &raw),
            CalibrationMethod::Platt | CalibrationMethod::Auto => fit_platt(&labels, &raw),
        }
    } else {
        Calibrator::Identity
    };

    let train_pred = predict(&compiled, &calibration, &train.columns);
    let valid_pred = predict(&compiled, &calibration, &valid.columns);
    let test_pred = predict(&compiled, &calibration, &test.columns);
    let evaluate = |part: &Part, pred: &[f64]| {
        (part.len() > 0).then(|| metrics_of(&prepared.task, &part.target, pred))
    };
    let test_metrics = evaluate(&test, &test_pred);
    let mut baselines: Vec<Baseline> = Vec::new();
    let mut warnings = prepared.warnings.clone();
    if binary && test.len() > 0 {
        baselines.push(baseline::class_prior(&train.target, &test.target));
        match baseline::logistic(
            &train.columns,
            &kinds,
            &train.target,
            &test.columns,
            &test.target,
        ) {
            Ok(b) => baselines.push(b),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    let model_auc = test_metrics.as_ref().and_then(Metrics::auc);
    let beats_baselines = model_auc.map(|auc| {
        baselines
            .iter()
            .all(|b| b.test.auc().is_none_or(|b| auc > b))
    });
    if beats_baselines == Some(false) {
        warnings.push("the model does not beat every baseline on test AUC (see baselines)".into());
    }
    let (quantile_source, quantile_scores) = if valid.len() > 0 {
        ("validation", &valid_pred)
    } else if test.len() > 0 {
        ("test", &test_pred)
    } else {
        ("train", &train_pred)
    };
    let params = match (&gbm, &forest) {
        (Some(p), _) => p.describe(),
        (None, Some(p)) => p.describe(),
        (None, None) => unreachable!("one learner is chosen"),
    };
    let artifact = ModelArtifact {
        name: plan.model.clone(),
        version: 0,
        created_at_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        trainer_version: env!("CARGO_PKG_VERSION").to_string(),
        algorithm: plan.algorithm,
        params,
        task: prepared.task.clone(),
        id_column: plan.roles.id.clone(),
        importance: summary::importance(&ensemble, &names),
        schema,
        ensemble,
        calibration,
        data: DataFingerprint {
            source: plan.data.source(),
            rows: prepared.n_rows() as u64,
            columns: table.columns.len() as u64,
            sha256: summary::fingerprint(&names, &kinds_full, &prepared.columns, &prepared.target),
        },
        evaluation: Evaluation {
            split_rows: [train.len() as u64, valid.len() as u64, test.len() as u64],
            split_method: match (&plan.split_by, &plan.valid_file, &plan.test_file) {
                (_, Some(_), Some(_)) => "given validation and test files".into(),
                (Some(column), ..) => format!("time-ordered by '{column}'"),
                (None, ..) => format!("stratified random, seed {seed}"),
            },
            train: evaluate(&train, &train_pred),
            valid: evaluate(&valid, &valid_pred),
            test: test_metrics,
            baselines,
            beats_baselines,
            best_iteration: best_iteration.map(|b| b as u32),
        },
        score_quantiles: summary::score_quantiles(quantile_scores, quantile_source),
        feature_spec: match &plan.data {
            TrainingData::Built { spec, .. } => Some(spec.clone()),
            TrainingData::File(_) => None,
        },
    };
    let test_predictions = test
        .ids
        .iter()
        .zip(&test.target)
        .zip(&test_pred)
        .map(|((id, y), p)| (id.clone(), *y, *p))
        .collect();
    let test_rows = match &plan.test_file {
        Some(path) => TestRows::File(path.clone()),
        None => {
            // `prepare` dropped unlabelled rows: map back to table rows.
            let label = &table.column(&plan.roles.label).expect("label checked").data;
            let table_rows: Vec<usize> = (0..table.n_rows())
                .filter(|&i| !label.is_missing(i))
                .collect();
            let rows: Vec<usize> = splits.test.iter().map(|&r| table_rows[r]).collect();
            TestRows::Table(table.select_rows(&rows))
        }
    };
    Ok(Trained {
        artifact,
        warnings,
        train_seconds,
        test_predictions,
        test_rows,
    })
}

/// Trains per `plan` and stores the model as a new version.
pub fn run(
    plan: &FitPlan,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> Result<FitOutcome, FitError> {
    let Trained {
        mut artifact,
        warnings,
        train_seconds,
        test_predictions,
        ..
    } = train(plan, on_progress)?;
    let registered = Registry::new(&plan.registry).register(&mut artifact)?;
    Ok(FitOutcome {
        artifact,
        registered,
        warnings,
        train_seconds,
        test_predictions,
    })
}
