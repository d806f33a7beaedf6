//! `presage-train fit`: flags and config become a validated [`FitPlan`],
//! the pipeline trains and registers, and the metrics table is printed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::render::metrics_text::{evaluation_rows, metrics_json, metrics_table};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use presage_data::table::{table_from_frame, write_table, Column, ColumnData};
use presage_learners::dataset::Progress;
use presage_learners::params::{CalibrationMethod, Objective, ParamSet, StoppingMetric};
use presage_models::artifact::{Algorithm, FeatureDescription, FeatureSpecRecord};
use presage_models::feature_spec::online::StoredSpec;
use presage_pipeline::encode::ColumnRoles;
use presage_pipeline::fit::TrainingData;
use presage_pipeline::fit::{self, FitPlan};

use serde_json::json;

use super::{build_extract_table, ExtractArgs};
use crate::config::{read_config, Config};
use crate::{bad_input, by_cause, failure, Failure};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AlgoArg {
    /// Histogram gradient-boosted trees.
    Gbm,
    /// Random forest.
    Rf,
}

impl From<AlgoArg> for Algorithm {
    fn from(a: AlgoArg) -> Self {
        match a {
            AlgoArg::Gbm => Algorithm::GradientBoosting,
            AlgoArg::Rf => Algorithm::RandomForest,
        }
    }
}

#[derive(Args)]
pub(crate) struct FitArgs {
    /// Training table (.csv or .parquet), one row per user [default: built from the config's extracts].
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) extract: ExtractArgs,
    /// Label (target) column [required with --data; with extracts, the spec's label].
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Label value counted as positive (default: 1/true/yes when present).
    #[arg(long)]
    pub(crate) positive: Option<String>,
    /// Id column: kept out of the features, written by predict.
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Columns to leave out of the features (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) drop: Vec<String>,
    /// Model name in the registry [default: `model` in the config].
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Learner [default: gbm, or `algo` in the config].
    #[arg(long, value_enum)]
    pub(crate) algo: Option<AlgoArg>,
    /// TOML config: `model`, `algo`, a `[params]` table of LightGBM-named
    /// hyper-parameters, and optionally the extract spec ([extract], [window], [features], [label]).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Share of rows held out for validation (early stopping, calibration).
    #[arg(long, default_value_t = 0.2)]
    pub(crate) valid_fraction: f64,
    /// Share of rows held out for the final test.
    #[arg(long, default_value_t = 0.2)]
    pub(crate) test_fraction: f64,
    /// Split by time: hold out the rows with the largest values of COL.
    #[arg(long, value_name = "COL")]
    pub(crate) split_by: Option<String>,
    /// Validation table instead of an internal split.
    #[arg(long)]
    pub(crate) valid: Option<PathBuf>,
    /// Test table instead of an internal split.
    #[arg(long)]
    pub(crate) test: Option<PathBuf>,
    /// Write the held-out test rows' id, label and probability to this .csv/.parquet file.
    #[arg(long)]
    pub(crate) test_predictions: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) params: ParamFlags,
}

/// Hyper-parameter flags; each overrides the config's `[params]`.
#[derive(Args)]
pub(crate) struct ParamFlags {
    /// Objective (`binary` or `regression`).
    #[arg(long, value_enum)]
    pub(crate) objective: Option<ObjectiveArg>,
    /// Boosting rounds, or trees for rf.
    #[arg(long)]
    pub(crate) num_iterations: Option<i64>,
    /// Shrinkage per boosting round.
    #[arg(long)]
    pub(crate) learning_rate: Option<f64>,
    /// Maximum leaves per tree.
    #[arg(long)]
    pub(crate) num_leaves: Option<i64>,
    /// Maximum tree depth (-1 = unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) max_depth: Option<i64>,
    /// Minimum rows per leaf.
    #[arg(long)]
    pub(crate) min_data_in_leaf: Option<i64>,
    /// Minimum hessian sum per leaf.
    #[arg(long)]
    pub(crate) min_sum_hessian_in_leaf: Option<f64>,
    /// L2 regularisation of leaf values.
    #[arg(long)]
    pub(crate) lambda_l2: Option<f64>,
    /// Maximum bins per feature (2-255).
    #[arg(long)]
    pub(crate) max_bin: Option<i64>,
    /// Share of features per tree.
    #[arg(long)]
    pub(crate) feature_fraction: Option<f64>,
    /// Share of features per node.
    #[arg(long)]
    pub(crate) feature_fraction_bynode: Option<f64>,
    /// Share of rows per bagging round (rf: bootstrap size).
    #[arg(long)]
    pub(crate) bagging_fraction: Option<f64>,
    /// Re-draw the bag every N rounds (0 = no bagging).
    #[arg(long)]
    pub(crate) bagging_freq: Option<i64>,
    /// Stop after N rounds without validation improvement (0 = off).
    #[arg(long)]
    pub(crate) early_stopping_rounds: Option<i64>,
    /// Early-stopping metric.
    #[arg(long, value_enum)]
    pub(crate) metric: Option<MetricArg>,
    /// Weight of positive rows (class imbalance).
    #[arg(long)]
    pub(crate) scale_pos_weight: Option<f64>,
    /// Worker threads (0 = all cores).
    #[arg(long)]
    pub(crate) num_threads: Option<i64>,
    /// Random seed (splits, bagging, feature sampling).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Minimum loss reduction to make a split.
    #[arg(long)]
    pub(crate) min_gain_to_split: Option<f64>,
    /// Smoothing of category statistics when ordering categories.
    #[arg(long)]
    pub(crate) cat_smooth: Option<f64>,
    /// Extra L2 regularisation of categorical splits.
    #[arg(long)]
    pub(crate) cat_l2: Option<f64>,
    /// Most categories on the left side of a categorical split.
    #[arg(long)]
    pub(crate) max_cat_threshold: Option<i64>,
    /// Up to this many categories, try one-vs-rest categorical splits.
    #[arg(long)]
    pub(crate) max_cat_to_onehot: Option<i64>,
    /// Minimum rows on each side of a categorical split.
    #[arg(long)]
    pub(crate) min_data_per_group: Option<i64>,
    /// Probability calibration on the validation rows.
    #[arg(long, value_enum)]
    pub(crate) calibration: Option<CalibrationArg>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ObjectiveArg {
    Binary,
    Regression,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MetricArg {
    BinaryLogloss,
    Auc,
    L2,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CalibrationArg {
    Auto,
    None,
    Platt,
    Isotonic,
}

impl ParamFlags {
    fn to_params(&self) -> ParamSet {
        ParamSet {
            objective: self.objective.map(|o| match o {
                ObjectiveArg::Binary => Objective::Binary,
                ObjectiveArg::Regression => Objective::Regression,
            }),
            num_iterations: self.num_iterations,
            learning_rate: self.learning_rate,
            num_leaves: self.num_leaves,
            max_depth: self.max_depth,
            min_data_in_leaf: self.min_data_in_leaf,
            min_sum_hessian_in_leaf: self.min_sum_hessian_in_leaf,
            lambda_l2: self.lambda_l2,
            max_bin: self.max_bin,
            feature_fraction: self.feature_fraction,
            feature_fraction_bynode: self.feature_fraction_bynode,
            bagging_fraction: self.bagging_fraction,
            bagging_freq: self.bagging_freq,
            early_stopping_rounds: self.early_stopping_rounds,
            metric: self.metric.map(|m| match m {
                MetricArg::BinaryLogloss => StoppingMetric::BinaryLogloss,
                MetricArg::Auc => StoppingMetric::Auc,
                MetricArg::L2 => StoppingMetric::L2,
            }),
            scale_pos_weight: self.scale_pos_weight,
            num_threads: self.num_threads,
            seed: self.seed,
            min_gain_to_split: self.min_gain_to_split,
            cat_smooth: self.cat_smooth,
            cat_l2: self.cat_l2,
            max_cat_threshold: self.max_cat_threshold,
            max_cat_to_onehot: self.max_cat_to_onehot,
            min_data_per_group: self.min_data_per_group,
            calibration: self.calibration.map(|c| match c {
                CalibrationArg::Auto => CalibrationMethod::Auto,
                CalibrationArg::None => CalibrationMethod::None,
                CalibrationArg::Platt => CalibrationMethod::Platt,
                CalibrationArg::Isotonic => CalibrationMethod::Isotonic,
            }),
        }
    }
}

/// Reports training progress: a bar on a terminal, a line per 10% otherwise.
pub(crate) fn progress_reporter(quiet: bool) -> impl Fn(Progress) + Sync {
    let terminal = std::io::stderr().is_terminal() && !quiet;
    let bar = terminal.then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} training [{bar:30}] {pos}/{len} trees {msg} ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    });
    move |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            if let Some(m) = p.valid_metric {
                bar.set_message(format!("valid {m:.5}"));
            }
            if p.done == p.total {
                bar.finish_and_clear();
            }
        } else if !quiet
            && (p.done * 10 / p.total.max(1) != (p.done - 1) * 10 / p.total.max(1)
                || p.done == p.total)
        {
            match p.valid_metric {
                Some(m) => eprintln!("trained {}/{} trees (valid metric {m:.5})", p.done, p.total),
                None => eprintln!("trained {}/{} trees", p.done, p.total),
            }
        }
    }
}

/// The training rows and label roles of a `fit`: a table file, or a table
/// built from the config's extracts.
pub(crate) fn training_data(
    args: &FitArgs,
    config: Option<(&Path, &Config)>,
) -> Result<(TrainingData, ColumnRoles), Failure> {
    let spec = match config {
        Some((path, config)) => config.extract_spec(
            path,
            args.extract.users.as_deref(),
            args.extract.events.as_deref(),
        )?,
        None if args.extract.users.is_some() || args.extract.events.is_some() => {
            return Err(bad_input(anyhow::anyhow!(
                "--users/--events need --config with an [extract] section"
            )))
        }
        None => None,
    };
    match (&args.data, spec) {
        (Some(data), _) => {
            let label = args.label.clone().ok_or_else(|| {
                bad_input(anyhow::anyhow!("--data needs --label naming the label column"))
            })?;
            Ok((
                TrainingData::File(data.clone()),
                ColumnRoles {
                    label,
                    positive: args.positive.clone(),
                    id: args.id.clone(),
                    drop: args.drop.clone(),
                },
            ))
        }
        (None, Some(spec)) => {
            let (config, _) = config.expect("a spec comes from a config");
            let label = spec.label(config).map_err(bad_input)?.clone();
            let built = build_extract_table(&spec, config, args.json)?;
            let table = table_from_frame(&built.frame, config).map_err(bad_input)?;
            let record = FeatureSpecRecord {
                spec_json: serde_json::to_string(&StoredSpec {
                    spec: spec.feature_spec.clone(),
                    event_names: Some(built.event_names.clone()),
                })
                .map_err(failure)?,
                features: built
                    .features
                    .iter()
                    .map(|f| FeatureDescription {
                        name: f.name.clone(),
                        description: f.description.clone(),
                    })
                    .collect(),
                label: FeatureDescription {
                    name: label.column().to_owned(),
                    description: label.describe(),
                },
            };
            Ok((
                TrainingData::Built {
                    table,
                    spec: record,
                },
                ColumnRoles {
                    label: args.label.clone().unwrap_or_else(|| label.column().to_owned()),
                    positive: Some(args.positive.clone().unwrap_or_else(|| "1".into())),
                    id: Some(args.id.clone().unwrap_or_else(|| spec.extract.user_id.clone())),
                    drop: args.drop.clone(),
                },
            ))
        }
        (None, None) => Err(bad_input(anyhow::anyhow!(
            "no training data: give --data FILE, or --config with an [extract] section naming users and events extracts"
        ))),
    }
}

/// The fit plan from flags and config, and the config (empty without
/// `--config`).
pub(crate) fn fit_plan(registry: &Path, args: &FitArgs) -> Result<(FitPlan, Config), Failure> {
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => Config::default(),
    };
    let model = args
        .model
        .clone()
        .or_else(|| config.model.clone())
        .ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "no model name: give --model NAME or model = \"NAME\" in the config"
            ))
        })?;
    let (data, roles) = training_data(args, args.config.as_deref().map(|p| (p, &config)))?;
    let algorithm = match (args.algo, config.algo.as_deref()) {
        (Some(a), _) => a.into(),
        (None, None) | (None, Some("gbm")) => Algorithm::GradientBoosting,
        (None, Some("rf")) => Algorithm::RandomForest,
        (None, Some(other)) => {
            return Err(bad_input(anyhow::anyhow!(
                "{}: algo = \"{other}\" is not known; use \"gbm\" or \"rf\"",
                args.config
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            )))
        }
    };
    let params = config
        .params
        .clone()
        .overridden_by(&args.params.to_params());
    let plan = FitPlan {
        data,
        valid_file: args.valid.clone(),
        test_file: args.test.clone(),
        roles,
        model,
        algorithm,
        params,
        valid_fraction: args.valid_fraction,
        test_fraction: args.test_fraction,
        split_by: args.split_by.clone(),
        registry: registry.to_path_buf(),
    };
    Ok((plan, config))
}

pub(crate) fn run_fit(registry: &Path, args: &FitArgs) -> Result<(), Failure> {
    let (plan, _) = fit_plan(registry, args)?;
    let outcome = fit::run(&plan, &progress_reporter(args.json))
        .map_err(|e| by_cause(e.is_bad_input(), e))?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = &args.test_predictions {
        let p = &outcome.test_predictions;
        let columns = vec![
            Column {
                name: plan.roles.id.clone().unwrap_or_else(|| "row".into()),
                data: ColumnData::Text(p.iter().map(|(id, _, _)| Some(id.clone())).collect()),
            },
            Column {
                name: "label".into(),
                data: ColumnData::Numeric(p.iter().map(|(_, y, _)| *y).collect()),
            },
            Column {
                name: "probability".into(),
                data: ColumnData::Numeric(p.iter().map(|(_, _, q)| *q).collect()),
            },
        ];
        write_table(path, &columns).map_err(bad_input)?;
    }
    let a = &outcome.artifact;
    let e = &a.evaluation;
    if args.json {
        let strongest = e.baselines.iter().max_by(|x, y| {
            x.test
                .auc()
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&y.test.auc().unwrap_or(f64::NEG_INFINITY))
        });
        let object = json!({
            "model": a.name,
            "version": a.version,
            "algo": a.algorithm.short_name(),
            "champion": outcome.registered.champion,
            "artifact": outcome.registered.path.display().to_string(),
            "created_at": a.created_at(),
            "train_seconds": outcome.train_seconds,
            "trees": a.ensemble.trees.len(),
            "best_iteration": e.best_iteration,
            "calibration": a.calibration.name(),
            "rows": {"train": e.split_rows[0], "valid": e.split_rows[1], "test": e.split_rows[2]},
            "split": e.split_method,
            "metrics": {
                "train": e.train.as_ref().map(metrics_json),
                "valid": e.valid.as_ref().map(metrics_json),
                "test": e.test.as_ref().map(metrics_json),
            },
            "baseline": strongest.map(|b| json!({"name": b.name, "test": metrics_json(&b.test)})),
            "baselines": e.baselines.iter().map(|b| json!({"name": b.name, "test": metrics_json(&b.test)})).collect::<Vec<_>>(),
            "beats_baselines": e.beats_baselines,
            "warnings": outcome.warnings,
        });
        out!("{object}");
    } else {
        out!(
            "{} version {}{} ({}, {} trees{}, calibration {}) trained in {:.2}s -> {}",
            a.name,
            a.version,
            if outcome.registered.champion {
                " [champion]"
            } else {
                ""
            },
            a.algorithm,
            a.ensemble.trees.len(),
            e.best_iteration
                .map_or(String::new(), |b| format!(", best iteration {b}")),
            a.calibration.name(),
            outcome.train_seconds,
            outcome.registered.path.display()
        );
        out!(
            "split: {} ({} train / {} valid / {} test rows)\n",
            e.split_method,
            e.split_rows[0],
            e.split_rows[1],
            e.split_rows[2]
        );
        out_part!("{}", metrics_table(&evaluation_rows(a)));
        if e.beats_baselines == Some(false) {
            out!("\nNOTE: this model does not beat the baselines on test AUC; the data may be close to linear.");
        }
        out!("\ntop features by gain:");
        for imp in a.importance.iter().take(10) {
            out!(
                "  {:<28} gain {:>12.2}  splits {:>6}",
                imp.feature,
                imp.gain,
                imp.splits
            );
        }
    }
    Ok(())
}
