//! `presage-train`: train, evaluate and apply Presage models from the
//! command line. Thin: flags and config are turned into a validated plan,
//! the library does the work, and errors map to exit codes (0 success, 1 a
//! failure such as an unwritable registry, 2 bad input: flags, config, data).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use presage_models::artifact::{
    Algorithm, FeatureDescription, FeatureSpecRecord, Metrics, ModelArtifact,
};
use presage_models::drift;
use presage_models::policy::{policy_file, SegmentPolicy};
use presage_models::registry::{
    Registry, VersionSelector, CHAMPION, DEFAULT_REGISTRY, REGISTRY_ENV,
};
use presage_training::booster::Progress;
use presage_training::experiment::{self, ExperimentSpec};
use presage_training::extract::{self, kpis, segments, BuiltTable, ExtractSpec};
use presage_training::features::ColumnRoles;
use presage_training::fit::TrainingData;
use presage_training::fit::{self, FitPlan};
use presage_training::params::{CalibrationMethod, Objective, ParamSet, StoppingMetric};
use presage_training::report::{evaluation_rows, metrics_json, metrics_table};
use presage_training::scoring::{labelled_rows, score_table};
use presage_training::table::{read_table, table_from_frame, write_table, Column, ColumnData};
use presage_training::{compare, compare_html, retrain};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;

/// Writes a line to stdout. A closed pipe (`presage-train models | head`)
/// ends the program quietly with success, as ripgrep does; any other write
/// error is reported.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            stdout_failed(e)
        }
    }};
}

/// Like [`out!`] without the newline.
macro_rules! out_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            stdout_failed(e)
        }
    }};
}

fn stdout_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {error}");
    std::process::exit(i32::from(EXIT_FAILURE));
}

/// Exit code for bad input (flags, config, data).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failure that is not the input's fault.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "presage-train",
    version,
    about = "Train, evaluate and apply Presage models."
)]
#[command(
    after_help = "Exit codes: 0 success, 1 failure (e.g. registry not writable), 2 bad input (flags, config or data)."
)]
struct Cli {
    /// Model registry directory.
    #[arg(long, global = true, env = REGISTRY_ENV, default_value = DEFAULT_REGISTRY)]
    registry: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a feature table, or on users + events extracts
    /// (a config with an [extract] section), and store it as a new version.
    Fit(Box<FitArgs>),
    /// Nightly retraining: train a challenger, gate it against the champion on the same
    /// fresh held-out rows, promote it only if the config's [gate] passes.
    Retrain(Box<FitArgs>),
    /// Build the per-user feature table from users + events extracts and write it.
    Features(FeaturesArgs),
    /// Assign the config's rule segments ([[segments]]) to every user and report their sizes.
    Segments(FeaturesArgs),
    /// Onboarding KPIs from the extracts: time to first key action, completion, funnel, retention.
    Kpis(KpisArgs),
    /// Compare two versions of a model: metrics, DeLong's test, score shift, segment migration, importance.
    Compare(CompareArgs),
    /// Analyse an A/B experiment (segment onboarding vs generic) from the assignment log and the extracts.
    #[command(
        after_help = "Exit codes: 0 analysed, 1 failure writing the report, 2 bad config or data,\n\
                  3 analysed but a sample-ratio mismatch invalidates the result (the report is still printed)."
    )]
    Experiment(ExperimentArgs),
    /// Drift of new data from a model's training data: per-feature PSI, missing and unseen shares, score shift.
    Drift(DriftArgs),
    /// Score a table with a stored model.
    Predict(PredictArgs),
    /// Compute metrics of a stored model on new labelled data.
    Evaluate(EvaluateArgs),
    /// List stored models and versions.
    Models(ModelsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum AlgoArg {
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
struct ExperimentArgs {
    /// TOML config with [extract], [experiment] and [[outcomes]] (see datasets/configs/experiment.toml).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    extract: ExtractArgs,
    /// The assignment extract (user_id, variant, assigned_at, optional segment) [default: the config's].
    #[arg(long, value_name = "PATH")]
    assignments: Option<PathBuf>,
    /// Also write a self-contained HTML report with a confidence-interval plot per outcome.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

/// Exit code of an experiment whose sample ratio does not match the plan.
const EXIT_SAMPLE_RATIO_MISMATCH: u8 = 3;

/// Overrides of the extract paths in a config's `[extract]` section.
#[derive(Args)]
struct ExtractArgs {
    /// The users extract (.csv, .parquet, a directory of Parquet files or a glob) [default: the config's].
    #[arg(long, value_name = "PATH")]
    users: Option<PathBuf>,
    /// The events extract, in the same forms [default: the config's].
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,
}

#[derive(Args)]
struct FeaturesArgs {
    /// TOML config with [extract], [window], [features] and optionally [label].
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    extract: ExtractArgs,
    /// Output table (.parquet or .csv): user id, features, label.
    #[arg(long)]
    out: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DriftArgs {
    #[command(flatten)]
    which: VersionArgs,
    /// New data (.csv or .parquet) with the model's feature columns (a label is not needed).
    #[arg(long)]
    data: PathBuf,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompareArgs {
    /// Model name.
    model: String,
    /// Version A: a number or an alias (e.g. champion).
    a: String,
    /// Version B: a number or an alias.
    b: String,
    /// Labelled data (.csv or .parquet) both versions score; without it the stored test metrics are compared.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Segment policy for the migration matrix [default: policy.toml beside the model in the registry, else the default percentile policy].
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Also write a self-contained HTML report with plots (needs --data).
    #[arg(long, requires = "data")]
    html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct KpisArgs {
    /// TOML config with [extract], [window], [features] and optionally [kpis] and [[segments]].
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    extract: ExtractArgs,
    /// Also report per value of this attribute or feature column, or per segment of this [[segments]] name.
    #[arg(long, value_name = "SEGMENT_OR_ATTRIBUTE")]
    by: Option<String>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct FitArgs {
    /// Training table (.csv or .parquet), one row per user [default: built from the config's extracts].
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    extract: ExtractArgs,
    /// Label (target) column [required with --data; with extracts, the spec's label].
    #[arg(long)]
    label: Option<String>,
    /// Label value counted as positive (default: 1/true/yes when present).
    #[arg(long)]
    positive: Option<String>,
    /// Id column: kept out of the features, written by predict.
    #[arg(long)]
    id: Option<String>,
    /// Columns to leave out of the features (comma separated).
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Model name in the registry [default: `model` in the config].
    #[arg(long)]
    model: Option<String>,
    /// Learner [default: gbm, or `algo` in the config].
    #[arg(long, value_enum)]
    algo: Option<AlgoArg>,
    /// TOML config: `model`, `algo`, a `[params]` table of LightGBM-named
    /// hyper-parameters, and optionally the extract spec ([extract], [window], [features], [label]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Share of rows held out for validation (early stopping, calibration).
    #[arg(long, default_value_t = 0.2)]
    valid_fraction: f64,
    /// Share of rows held out for the final test.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Split by time: hold out the rows with the largest values of COL.
    #[arg(long, value_name = "COL")]
    split_by: Option<String>,
    /// Validation table instead of an internal split.
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Test table instead of an internal split.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Write the held-out test rows' id, label and probability to this .csv/.parquet file.
    #[arg(long)]
    test_predictions: Option<PathBuf>,
    #[command(flatten)]
    params: ParamFlags,
}

/// Hyper-parameter flags; each overrides the config's `[params]`.
#[derive(Args)]
struct ParamFlags {
    /// Objective (`binary` or `regression`).
    #[arg(long, value_enum)]
    objective: Option<ObjectiveArg>,
    /// Boosting rounds, or trees for rf.
    #[arg(long)]
    num_iterations: Option<i64>,
    /// Shrinkage per boosting round.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Maximum leaves per tree.
    #[arg(long)]
    num_leaves: Option<i64>,
    /// Maximum tree depth (-1 = unlimited).
    #[arg(long, allow_negative_numbers = true)]
    max_depth: Option<i64>,
    /// Minimum rows per leaf.
    #[arg(long)]
    min_data_in_leaf: Option<i64>,
    /// Minimum hessian sum per leaf.
    #[arg(long)]
    min_sum_hessian_in_leaf: Option<f64>,
    /// L2 regularisation of leaf values.
    #[arg(long)]
    lambda_l2: Option<f64>,
    /// Maximum bins per feature (2-255).
    #[arg(long)]
    max_bin: Option<i64>,
    /// Share of features per tree.
    #[arg(long)]
    feature_fraction: Option<f64>,
    /// Share of features per node.
    #[arg(long)]
    feature_fraction_bynode: Option<f64>,
    /// Share of rows per bagging round (rf: bootstrap size).
    #[arg(long)]
    bagging_fraction: Option<f64>,
    /// Re-draw the bag every N rounds (0 = no bagging).
    #[arg(long)]
    bagging_freq: Option<i64>,
    /// Stop after N rounds without validation improvement (0 = off).
    #[arg(long)]
    early_stopping_rounds: Option<i64>,
    /// Early-stopping metric.
    #[arg(long, value_enum)]
    metric: Option<MetricArg>,
    /// Weight of positive rows (class imbalance).
    #[arg(long)]
    scale_pos_weight: Option<f64>,
    /// Worker threads (0 = all cores).
    #[arg(long)]
    num_threads: Option<i64>,
    /// Random seed (splits, bagging, feature sampling).
    #[arg(long)]
    seed: Option<u64>,
    /// Minimum loss reduction to make a split.
    #[arg(long)]
    min_gain_to_split: Option<f64>,
    /// Smoothing of category statistics when ordering categories.
    #[arg(long)]
    cat_smooth: Option<f64>,
    /// Extra L2 regularisation of categorical splits.
    #[arg(long)]
    cat_l2: Option<f64>,
    /// Most categories on the left side of a categorical split.
    #[arg(long)]
    max_cat_threshold: Option<i64>,
    /// Up to this many categories, try one-vs-rest categorical splits.
    #[arg(long)]
    max_cat_to_onehot: Option<i64>,
    /// Minimum rows on each side of a categorical split.
    #[arg(long)]
    min_data_per_group: Option<i64>,
    /// Probability calibration on the validation rows.
    #[arg(long, value_enum)]
    calibration: Option<CalibrationArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    Binary,
    Regression,
}

#[derive(Clone, Copy, ValueEnum)]
enum MetricArg {
    BinaryLogloss,
    Auc,
    L2,
}

#[derive(Clone, Copy, ValueEnum)]
enum CalibrationArg {
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

/// Which stored version to use.
#[derive(Args)]
struct VersionArgs {
    /// Model name.
    #[arg(long)]
    model: String,
    /// Version number.
    #[arg(long, conflicts_with = "alias")]
    version: Option<u64>,
    /// Alias [default: champion].
    #[arg(long)]
    alias: Option<String>,
}

impl VersionArgs {
    fn selector(&self) -> VersionSelector {
        match (&self.version, &self.alias) {
            (Some(v), _) => VersionSelector::Version(*v),
            (None, Some(a)) => VersionSelector::Alias(a.clone()),
            (None, None) => VersionSelector::Alias(CHAMPION.to_string()),
        }
    }
}

#[derive(Args)]
struct PredictArgs {
    #[command(flatten)]
    which: VersionArgs,
    /// Table to score (.csv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// Output file (.csv or .parquet): id column (if any) and `probability`.
    #[arg(long)]
    out: PathBuf,
    /// Score model columns absent from the table as missing instead of failing.
    #[arg(long)]
    allow_missing: bool,
}

#[derive(Args)]
struct EvaluateArgs {
    #[command(flatten)]
    which: VersionArgs,
    /// Labelled table (.csv or .parquet).
    #[arg(long)]
    data: PathBuf,
    /// Label column [default: the training label].
    #[arg(long)]
    label: Option<String>,
    /// Positive label value [default: the training one].
    #[arg(long)]
    positive: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ModelsArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The `fit` config file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FitConfig {
    /// Model name in the registry.
    model: Option<String>,
    /// `gbm` or `rf`.
    algo: Option<String>,
    /// Hyper-parameters.
    #[serde(default)]
    params: ParamSet,
    // The extract spec sections: accepted here, parsed and checked by `ExtractSpec`.
    #[serde(rename = "extract")]
    _extract: Option<IgnoredAny>,
    #[serde(rename = "window")]
    _window: Option<IgnoredAny>,
    #[serde(rename = "features")]
    _features: Option<IgnoredAny>,
    #[serde(rename = "label")]
    _label: Option<IgnoredAny>,
    #[serde(rename = "segments")]
    _segments: Option<IgnoredAny>,
    #[serde(rename = "kpis")]
    _kpis: Option<IgnoredAny>,
    #[serde(rename = "gate")]
    _gate: Option<IgnoredAny>,
}

/// An error with the exit code it should produce.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error: error.into(),
    }
}

/// Exit 2 when the error is the input's fault, 1 otherwise.
fn by_cause(is_bad_input: bool, error: impl Into<anyhow::Error>) -> Failure {
    if is_bad_input {
        bad_input(error)
    } else {
        failure(error)
    }
}

fn failure(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Fit(args) => run_fit(&cli.registry, args),
        Command::Retrain(args) => run_retrain(&cli.registry, args),
        Command::Features(args) => run_features(args),
        Command::Segments(args) => run_segments(args),
        Command::Kpis(args) => run_kpis(args),
        Command::Compare(args) => run_compare(&cli.registry, args),
        Command::Experiment(args) => run_experiment(args),
        Command::Drift(args) => run_drift(&cli.registry, args),
        Command::Predict(args) => run_predict(&cli.registry, args),
        Command::Evaluate(args) => run_evaluate(&cli.registry, args),
        Command::Models(args) => run_models(&cli.registry, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// A config file: its text (for the extract spec) and its fit settings.
fn read_config(path: &Path) -> Result<(String, FitConfig), Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))
        .map_err(bad_input)?;
    let config = toml::from_str(&text).map_err(|e| {
        bad_input(anyhow::anyhow!(
            "{}: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    Ok((text, config))
}

/// The extract spec of `config`, if it has one, with the path overrides applied.
fn read_spec(
    config: &Path,
    text: &str,
    overrides: &ExtractArgs,
) -> Result<Option<ExtractSpec>, Failure> {
    let spec = ExtractSpec::from_config(
        text,
        config,
        overrides.users.as_deref(),
        overrides.events.as_deref(),
    )
    .map_err(bad_input)?;
    if spec.is_none() && (overrides.users.is_some() || overrides.events.is_some()) {
        return Err(bad_input(anyhow::anyhow!(
            "{}: --users/--events need an [extract] section in the config",
            config.display()
        )));
    }
    Ok(spec)
}

/// Builds the table a spec describes, printing its exclusions and warnings on stderr.
fn build_extract_table(
    spec: &ExtractSpec,
    config: &Path,
    quiet: bool,
) -> Result<BuiltTable, Failure> {
    let built = extract::build(spec, config).map_err(bad_input)?;
    if !quiet {
        for warning in built.report.warnings() {
            eprintln!("note: {warning}");
        }
    }
    if built.report.users_in_table == 0 {
        return Err(bad_input(anyhow::anyhow!(
            "{}: no user is left in the table after the exclusions above",
            config.display()
        )));
    }
    Ok(built)
}

/// The extract spec of a `features` or `segments` run (it must have one).
fn required_spec(args: &FeaturesArgs) -> Result<ExtractSpec, Failure> {
    let (text, _) = read_config(&args.config)?;
    read_spec(&args.config, &text, &args.extract)?.ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{}: no [extract] section; it must name the users and events extracts",
            args.config.display()
        ))
    })
}

fn run_segments(args: &FeaturesArgs) -> Result<(), Failure> {
    let mut spec = required_spec(args)?;
    // Segments describe every user with a complete observation window,
    // labelled or not.
    spec.label = None;
    let built = build_extract_table(&spec, &args.config, args.json)?;
    let id = spec.extract.user_id.clone();
    let assigned =
        segments::assign(&spec.segments, &built, &id, &args.config).map_err(bad_input)?;
    let table = table_from_frame(&assigned.frame, &args.config).map_err(bad_input)?;
    write_table(&args.out, &table.columns).map_err(bad_input)?;
    for warning in &assigned.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        out!(
            "{}",
            json!({
                "out": args.out.display().to_string(),
                "users": built.report.users_in_table,
                "sizes": assigned.sizes,
                "warnings": assigned.warnings,
            })
        );
    } else {
        out!(
            "{} users, {} segmentation(s) -> {}\n",
            built.report.users_in_table,
            spec.segments.len(),
            args.out.display()
        );
        out!(
            "{:<20} {:<24} {:>10} {:>8}",
            "segmentation",
            "segment",
            "users",
            "share"
        );
        for s in &assigned.sizes {
            out!(
                "{:<20} {:<24} {:>10} {:>7.1}%",
                s.segmentation,
                s.segment,
                s.users,
                100.0 * s.share
            );
        }
    }
    Ok(())
}

fn run_drift(registry: &Path, args: &DriftArgs) -> Result<(), Failure> {
    let artifact = load(registry, &args.which)?;
    let table = read_table(&args.data).map_err(bad_input)?;
    let scored = score_table(&artifact, &table, true).map_err(bad_input)?;
    let columns: Vec<Vec<f64>> = (0..scored.width).map(|f| scored.column(f)).collect();
    let report = drift::report(
        &artifact.schema.features,
        &columns,
        &artifact.score_quantiles,
        &scored.probabilities,
    );
    let (features, score_psi, absent) = (&report.features, report.score_psi, &scored.absent);
    let probs = &scored.probabilities;
    let count = |v: drift::Verdict| report.count(v);
    if args.json {
        out!(
            "{}",
            json!({
                "model": artifact.name,
                "version": artifact.version,
                "data": args.data.display().to_string(),
                "rows": table.n_rows(),
                "absent_columns": absent,
                "score_psi": score_psi,
                "mean_probability": probs.iter().sum::<f64>() / probs.len().max(1) as f64,
                "features": features,
                "broken": count(drift::Verdict::Broken),
                "shifted": count(drift::Verdict::Shifted),
            })
        );
        return Ok(());
    }
    out!(
        "{} version {} on {} ({} rows): {} broken, {} shifted, {} stable features",
        artifact.name,
        artifact.version,
        args.data.display(),
        table.n_rows(),
        count(drift::Verdict::Broken),
        count(drift::Verdict::Shifted),
        count(drift::Verdict::Stable)
    );
    if let Some(p) = score_psi {
        out!("predicted score shift (PSI against the stored score distribution): {p:.4}");
    }
    if !absent.is_empty() {
        out!("absent columns (scored as missing): {}", absent.join(", "));
    }
    out!(
        "\n{:<28} {:>8} {:>10} {:>10} {:>10}  verdict",
        "feature",
        "psi",
        "missing",
        "was",
        "unseen"
    );
    for f in features {
        out!(
            "{:<28} {:>8.4} {:>9.1}% {:>9.1}% {:>10}  {}",
            f.feature,
            f.psi,
            100.0 * f.missing_now,
            100.0 * f.missing_train,
            f.unseen_now
                .map_or("-".to_owned(), |u| format!("{:.1}%", 100.0 * u)),
            match f.verdict {
                drift::Verdict::Broken => "BROKEN",
                drift::Verdict::Shifted => "shifted",
                drift::Verdict::Stable => "stable",
            }
        );
    }
    Ok(())
}

fn version_selector(text: &str) -> VersionSelector {
    match text.parse::<u64>() {
        Ok(v) => VersionSelector::Version(v),
        Err(_) => VersionSelector::Alias(text.to_owned()),
    }
}

fn run_compare(registry: &Path, args: &CompareArgs) -> Result<(), Failure> {
    let reg = Registry::new(registry);
    let a = reg
        .load(&args.model, &version_selector(&args.a))
        .map_err(bad_input)?;
    let b = reg
        .load(&args.model, &version_selector(&args.b))
        .map_err(bad_input)?;
    let comparison = match &args.data {
        None => compare::compare_stored(&a, &b),
        Some(path) => {
            let file = policy_file(args.policy.as_deref(), reg.root(), &args.model);
            let policy_for = |m: &ModelArtifact| {
                SegmentPolicy::load_or_default(file.as_deref(), &m.schema).map_err(bad_input)
            };
            let (pa, pb) = (policy_for(&a)?, policy_for(&b)?);
            let table = read_table(path).map_err(bad_input)?;
            let mut c = compare::compare_on_data(&a, &b, &table, (&pa, &pb)).map_err(bad_input)?;
            c.policy = Some(pa.source.clone());
            c
        }
    };
    if let Some(path) = &args.html {
        let html =
            compare_html::render(&comparison).map_err(|e| failure(anyhow::anyhow!("{e}")))?;
        presage_models::write_atomic(path, html.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(failure)?;
        eprintln!("report -> {}", path.display());
    }
    if args.json {
        out!("{}", serde_json::to_string(&comparison).map_err(failure)?);
        return Ok(());
    }
    let (va, vb) = (format!("v{}", comparison.a), format!("v{}", comparison.b));
    out!(
        "{}: {va} vs {vb} on {}{}\n",
        comparison.model,
        comparison.source,
        comparison
            .rows
            .map_or(String::new(), |r| format!(" ({r} labelled rows)"))
    );
    let num = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.4}"));
    out!("{:<10} {:>10} {:>10} {:>10}", "metric", va, vb, "delta");
    for m in &comparison.metrics {
        out!(
            "{:<10} {:>10} {:>10} {:>10}",
            m.metric,
            num(m.a),
            num(m.b),
            m.delta.map_or("-".to_owned(), |d| format!("{d:+.4}"))
        );
    }
    match &comparison.delong {
        Some(d) => out!(
            "\nDeLong test, AUC {vb} - {va}: {:+.4} (95% CI [{:+.4}, {:+.4}]), z = {:.2}, {}: {}",
            d.difference,
            d.ci95[0],
            d.ci95[1],
            d.z,
            d.p_text(),
            d.verdict()
        ),
        None if comparison.rows.is_none() => out!(
            "\n(each version was tested on its own held-out rows: give --data to test the difference and see segment migration)"
        ),
        None => out!("\nDeLong test: needs both classes among the labelled rows"),
    }
    if let Some(p) = comparison.score_psi {
        let verdict = if p < 0.1 {
            "stable"
        } else if p < 0.25 {
            "moderate shift"
        } else {
            "major shift"
        };
        out!("score distribution shift, PSI of {vb} against {va}: {p:.4} ({verdict})");
    }
    if let Some(m) = &comparison.migration {
        out!(
            "\nsegment migration (rows: {va}, columns: {vb}; policy: {})",
            comparison.policy.as_deref().unwrap_or("default")
        );
        out_part!("{:<16}", "");
        for s in &m.segments {
            out_part!(" {:>10}", s);
        }
        out!(" {:>10}", format!("{va} total"));
        for ((segment, row), total) in m.segments.iter().zip(&m.counts).zip(m.sizes_a()) {
            out_part!("{:<16}", segment);
            for c in row {
                out_part!(" {:>10}", c);
            }
            out!(" {:>10}", total);
        }
        out_part!("{:<16}", format!("{vb} total"));
        for c in m.sizes_b() {
            out_part!(" {:>10}", c);
        }
        out!("");
    }
    out!("\nimportance (share of total gain), largest changes first");
    for c in &comparison.importance {
        out!(
            "  {:<32} {:>7.1}% {:>7.1}% {:>+8.1} pts",
            c.feature,
            100.0 * c.share_a,
            100.0 * c.share_b,
            100.0 * c.delta
        );
    }
    Ok(())
}

fn percent(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn hours(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1} h"))
}

fn run_experiment(args: &ExperimentArgs) -> Result<(), Failure> {
    let spec = ExperimentSpec::load(
        &args.config,
        args.extract.users.as_deref(),
        args.extract.events.as_deref(),
        args.assignments.as_deref(),
    )
    .map_err(bad_input)?;
    let report = experiment::run(&spec).map_err(bad_input)?;
    if let Some(path) = &args.html {
        let html =
            experiment::html::render(&report).map_err(|e| failure(anyhow::anyhow!("{e}")))?;
        presage_models::write_atomic(path, html.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(failure)?;
        eprintln!("report -> {}", path.display());
    }
    if args.json {
        out!("{}", serde_json::to_string(&report).map_err(failure)?);
    } else {
        out_part!("{}", experiment::text::render(&report));
    }
    if report.sample_ratio_mismatch {
        return Err(Failure {
            code: EXIT_SAMPLE_RATIO_MISMATCH,
            error: anyhow::anyhow!(
                "sample ratio mismatch: the split of users between {:?} and {:?} differs from the planned {:.1}% treatment (p below {}); the results are not valid",
                report.control,
                report.treatment,
                100.0 * report.planned_treatment_share,
                report.srm_alpha
            ),
        });
    }
    Ok(())
}

fn run_kpis(args: &KpisArgs) -> Result<(), Failure> {
    let (text, _) = read_config(&args.config)?;
    let spec = read_spec(&args.config, &text, &args.extract)?.ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{}: no [extract] section; it must name the users and events extracts",
            args.config.display()
        ))
    })?;
    let report = kpis::report(&spec, &args.config, args.by.as_deref()).map_err(bad_input)?;
    if args.json {
        out!("{}", serde_json::to_string(&report).map_err(failure)?);
        return Ok(());
    }
    out!("onboarding KPIs over {}\n", report.window);
    out!(
        "{:<24} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
        report.by.as_deref().unwrap_or("group"),
        "users",
        "key action",
        "median TTFA",
        "p90 TTFA",
        "onboarded",
        "adopted"
    );
    for g in &report.groups {
        out!(
            "{:<24} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
            g.group,
            g.users,
            percent(g.key_action_rate),
            hours(g.key_action_median_hours),
            hours(g.key_action_p90_hours),
            percent(g.onboarding_completion_rate),
            percent(g.feature_adoption_rate)
        );
    }
    if report.groups.first().is_some_and(|g| !g.funnel.is_empty()) {
        out!("\nfunnel (users who did each step and every earlier one; drop-off from the previous step)");
        for g in &report.groups {
            out_part!("{:<24}", g.group);
            for s in &g.funnel {
                out_part!("  {} {} (-{:.0}%)", s.step, s.users, 100.0 * s.drop_off);
            }
            out!("");
        }
    }
    if !report.cohorts.is_empty() {
        let weeks = report.cohorts[0].retention.len();
        out!("\nretention by weekly signup cohort (share active in week k after signup; - = week not over)");
        out_part!("{:<12} {:>8}", "week of", "users");
        for w in 1..=weeks {
            out_part!(" {:>8}", format!("week {w}"));
        }
        out!("");
        for c in &report.cohorts {
            out_part!("{:<12} {:>8}", c.week_of, c.users);
            for r in &c.retention {
                out_part!(" {:>8}", percent(*r));
            }
            out!("");
        }
    }
    Ok(())
}

fn run_features(args: &FeaturesArgs) -> Result<(), Failure> {
    let spec = required_spec(args)?;
    let built = build_extract_table(&spec, &args.config, args.json)?;
    let table = table_from_frame(&built.frame, &args.config).map_err(bad_input)?;
    write_table(&args.out, &table.columns).map_err(bad_input)?;
    let r = &built.report;
    if args.json {
        out!(
            "{}",
            json!({
                "out": args.out.display().to_string(),
                "rows": r.users_in_table,
                "features": built.features,
                "label": built.label,
                "report": r,
                "warnings": r.warnings(),
            })
        );
    } else {
        out!(
            "{} users x {} features{} -> {}",
            r.users_in_table,
            built.features.len(),
            match (&built.label, r.positives) {
                (Some(l), Some(p)) => format!(
                    ", label '{l}' positive for {p} ({:.1}%)",
                    100.0 * p as f64 / r.users_in_table.max(1) as f64
                ),
                _ => String::new(),
            },
            args.out.display()
        );
        out!(
            "events: {} read, {} observed (inside a user's window)",
            r.events_read,
            r.events_observed
        );
        for f in &built.features {
            out!("  {:<32} {}", f.name, f.description);
        }
    }
    Ok(())
}

/// Reports training progress: a bar on a terminal, a line per 10% otherwise.
fn progress_reporter(quiet: bool) -> impl Fn(Progress) + Sync {
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
fn training_data(
    args: &FitArgs,
    config: Option<(&Path, &str)>,
) -> Result<(TrainingData, ColumnRoles), Failure> {
    let spec = match config {
        Some((path, text)) => read_spec(path, text, &args.extract)?,
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
                spec_json: serde_json::to_string(&spec).map_err(failure)?,
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

/// The fit plan from flags and config, and the config's text (if any).
fn fit_plan(registry: &Path, args: &FitArgs) -> Result<(FitPlan, Option<String>), Failure> {
    let (text, config) = match &args.config {
        Some(path) => {
            let (text, config) = read_config(path)?;
            (Some(text), config)
        }
        None => (None, FitConfig::default()),
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
    let (data, roles) = training_data(args, args.config.as_deref().zip(text.as_deref()))?;
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
    let params = config.params.overridden_by(&args.params.to_params());
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
    Ok((plan, text))
}

fn run_retrain(registry: &Path, args: &FitArgs) -> Result<(), Failure> {
    let (plan, text) = fit_plan(registry, args)?;
    let gate = match (&args.config, &text) {
        (Some(path), Some(text)) => {
            retrain::gate_from_config(text, path).map_err(|m| bad_input(anyhow::anyhow!(m)))?
        }
        _ => retrain::Gate::default(),
    };
    let outcome = retrain::run(&plan, &gate, &progress_reporter(args.json))
        .map_err(|e| by_cause(e.is_bad_input(), e))?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    let status = match outcome.decision {
        retrain::Decision::Promoted => "promoted",
        retrain::Decision::Kept => "kept",
    };
    if args.json {
        out!("{}", serde_json::to_string(&outcome).map_err(failure)?);
        return Ok(());
    }
    out!(
        "{}: challenger v{} on {} held-out rows (champion before: {})",
        outcome.model,
        outcome.challenger,
        outcome.rows,
        outcome
            .previous_champion
            .map_or("none".to_owned(), |v| format!("v{v}"))
    );
    for c in &outcome.checks {
        out!(
            "  [{}] {}: {}",
            if c.passed { "pass" } else { "FAIL" },
            c.check,
            c.detail
        );
    }
    if !outcome.deleted.is_empty() {
        out!(
            "  retention: deleted {}",
            outcome
                .deleted
                .iter()
                .map(|v| format!("v{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out!(
        "status: {status} (champion: v{}, challenger: v{})",
        outcome.champion,
        outcome.challenger
    );
    Ok(())
}

fn run_fit(registry: &Path, args: &FitArgs) -> Result<(), Failure> {
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

fn load(registry: &Path, which: &VersionArgs) -> Result<ModelArtifact, Failure> {
    Registry::new(registry)
        .load(&which.model, &which.selector())
        .map_err(bad_input)
}

fn run_predict(registry: &Path, args: &PredictArgs) -> Result<(), Failure> {
    let artifact = load(registry, &args.which)?;
    let table = read_table(&args.data).map_err(bad_input)?;
    let scored = score_table(&artifact, &table, args.allow_missing).map_err(bad_input)?;
    if !scored.absent.is_empty() {
        eprintln!(
            "warning: scoring absent columns as missing: {}",
            scored.absent.join(", ")
        );
    }
    let probs = scored.probabilities;
    let mut out = Vec::new();
    if let Some(id) = &artifact.id_column {
        if let Some(column) = table.column(id) {
            out.push(column.clone());
        }
    }
    out.push(Column {
        name: "probability".into(),
        data: ColumnData::Numeric(probs),
    });
    write_table(&args.out, &out).map_err(bad_input)?;
    eprintln!(
        "scored {} rows with {} version {} -> {}",
        table.n_rows(),
        artifact.name,
        artifact.version,
        args.out.display()
    );
    Ok(())
}

fn run_evaluate(registry: &Path, args: &EvaluateArgs) -> Result<(), Failure> {
    let mut artifact = load(registry, &args.which)?;
    if let presage_models::artifact::Task::BinaryClassification {
        label, positive, ..
    } = &mut artifact.task
    {
        if let Some(l) = &args.label {
            *label = l.clone();
        }
        if let Some(p) = &args.positive {
            *positive = p.clone();
        }
    }
    let table = read_table(&args.data).map_err(bad_input)?;
    let (keep, target) = labelled_rows(&table, &artifact.task).map_err(bad_input)?;
    let scored = score_table(&artifact, &table, false).map_err(bad_input)?;
    let probs: Vec<f64> = keep.iter().map(|&i| scored.probabilities[i]).collect();
    let metrics = match &artifact.task {
        presage_models::artifact::Task::BinaryClassification { .. } => {
            Metrics::Binary(presage_models::metrics::BinaryMetrics::compute(
                &target.iter().map(|y| *y > 0.5).collect::<Vec<_>>(),
                &probs,
            ))
        }
        presage_models::artifact::Task::Regression { .. } => Metrics::Regression(
            presage_models::metrics::RegressionMetrics::compute(&target, &probs),
        ),
    };
    if args.json {
        out!(
            "{}",
            json!({"model": artifact.name, "version": artifact.version, "data": args.data.display().to_string(), "metrics": metrics_json(&metrics)})
        );
    } else {
        out!(
            "{} version {} on {}\n",
            artifact.name,
            artifact.version,
            args.data.display()
        );
        out_part!("{}", metrics_table(&[("data".to_string(), &metrics)]));
    }
    Ok(())
}

fn run_models(registry: &Path, args: &ModelsArgs) -> Result<(), Failure> {
    let registry = Registry::new(registry);
    let mut rows = Vec::new();
    for name in registry.models().map_err(failure)? {
        for info in registry.list(&name).map_err(failure)? {
            let entry = match ModelArtifact::read(&info.path) {
                Ok(a) => json!({
                    "model": name,
                    "version": info.version,
                    "aliases": info.aliases,
                    "created_at": a.created_at(),
                    "algo": a.algorithm.short_name(),
                    "test_auc": a.evaluation.test.as_ref().and_then(Metrics::auc),
                    "trained_on": a.data.source,
                    "label": a.feature_spec.as_ref().map(|s| &s.label.description),
                    "path": info.path.display().to_string(),
                }),
                Err(e) => json!({
                    "model": name,
                    "version": info.version,
                    "aliases": info.aliases,
                    "error": e.to_string(),
                    "path": info.path.display().to_string(),
                }),
            };
            rows.push(entry);
        }
    }
    if args.json {
        out!(
            "{}",
            json!({ "registry": registry.root().display().to_string(), "models": rows })
        );
        return Ok(());
    }
    if rows.is_empty() {
        out!("no models in {}", registry.root().display());
        return Ok(());
    }
    out!(
        "{:<20} {:>7}  {:<16} {:<20} {:<5} {:>8}",
        "model",
        "version",
        "aliases",
        "created",
        "algo",
        "test_auc"
    );
    for r in rows {
        let aliases: Vec<String> = r["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if let Some(err) = r["error"].as_str() {
            out!(
                "{:<20} {:>7}  {:<16} UNREADABLE: {err}",
                r["model"].as_str().unwrap_or(""),
                r["version"],
                aliases.join(",")
            );
            continue;
        }
        out!(
            "{:<20} {:>7}  {:<16} {:<20} {:<5} {:>8}",
            r["model"].as_str().unwrap_or(""),
            r["version"],
            aliases.join(","),
            r["created_at"].as_str().unwrap_or(""),
            r["algo"].as_str().unwrap_or(""),
            r["test_auc"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.4}"))
        );
    }
    Ok(())
}
