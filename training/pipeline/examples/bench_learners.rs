//! Presage's side of the peer benchmark (`bench/run_bench.py`).
//!
//! Reads a train and a test Parquet file (a `label` column 0/1, every other
//! column a numeric feature) through the crate's own [`read_table`], trains a
//! gradient-boosted ensemble or a random forest on a rayon pool of
//! `--threads` threads, and prints ONE JSON object on stdout:
//!
//! * `fit_seconds`: the whole `train_gbm` / `train_forest` call, binning
//!   included, Parquet reading excluded (the Python peers time the same span:
//!   `lgb.Dataset` / `QuantileDMatrix` construction + training).
//! * `baseline_rss_mb`: resident memory after the data is loaded and the
//!   thread pool started; `fit_peak_rss_mb`: the peak resident memory during
//!   the fit (the kernel's high-water mark is reset through
//!   `/proc/self/clear_refs` just before it), so `fit_peak_rss_mb -
//!   baseline_rss_mb` is the memory the fit itself added.
//! * `test_auc`: ROC-AUC of the fitted model on every test row.
//! * with `--score-rows N`: the compiled scorer's best-of-5 time (after one
//!   warm-up) for probabilities of the first N test rows, row-major `f64`,
//!   on the same pool, with the time `CompiledEnsemble::new` took and the
//!   AUC of the scored rows.
//!
//! ```text
//! cargo run --release -p presage-pipeline --example bench_learners -- \
//!     --train bench/data/n100000/train.parquet --test bench/data/n100000/test.parquet \
//!     --algo gbm --num-iterations 200 --num-leaves 31 --learning-rate 0.1 \
//!     --max-bin 255 --threads 2 --score-rows 20000
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use presage_data::table::{read_table, ColumnData, Table};
use presage_learners::booster::train_gbm;
use presage_learners::dataset::{ColumnKind, TrainData};
use presage_learners::forest::train_forest;
use presage_learners::params::ParamSet;
use presage_models::compiled::CompiledEnsemble;
use presage_models::ensemble::Ensemble;
use presage_models::metrics::roc_auc;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Algo {
    Gbm,
    Rf,
}

/// Presage's contestant in the peer benchmark: prints one JSON object.
#[derive(Debug, Parser)]
struct Args {
    /// Training table (.parquet or .csv) with a 0/1 `label` column.
    #[arg(long)]
    train: PathBuf,
    /// Test table with the same columns.
    #[arg(long)]
    test: PathBuf,
    /// Learner.
    #[arg(long, value_enum, default_value = "gbm")]
    algo: Algo,
    /// Boosting rounds (gbm) or trees (rf).
    #[arg(long)]
    num_iterations: Option<i64>,
    /// Maximum leaves per tree (rf default: grown until pure, capped by Presage's limit).
    #[arg(long)]
    num_leaves: Option<i64>,
    /// Shrinkage (gbm only).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Maximum value bins per feature.
    #[arg(long)]
    max_bin: Option<i64>,
    /// Minimum rows per leaf (defaults: 20 for gbm, 1 for rf).
    #[arg(long)]
    min_data_in_leaf: Option<i64>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Threads for training and scoring.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Time batch scoring of the first N test rows (0 = skip).
    #[arg(long, default_value_t = 0)]
    score_rows: usize,
    /// Label column name.
    #[arg(long, default_value = "label")]
    label: String,
}

/// A `VmRSS:`/`VmHWM:` field of `/proc/self/status`, in MiB (`None` off Linux).
fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak-RSS mark (`VmHWM`) to the current RSS; false if the
/// kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Features (column-major, file order without the label) and the 0/1 target.
struct Split {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    target: Vec<f64>,
}

fn split_table(table: Table, label: &str) -> Result<Split> {
    let path = table.path.display().to_string();
    let mut names = Vec::new();
    let mut columns = Vec::new();
    let mut target = None;
    for column in table.columns {
        let ColumnData::Numeric(values) = column.data else {
            bail!(
                "{path}: column '{}' is not numeric; the benchmark expects numeric features",
                column.name
            );
        };
        if column.name == label {
            if let Some(bad) = values.iter().find(|y| **y != 0.0 && **y != 1.0) {
                bail!("{path}: label '{label}' must be 0/1, found {bad}");
            }
            target = Some(values);
        } else {
            names.push(column.name);
            columns.push(values);
        }
    }
    let target = target.with_context(|| format!("{path}: no '{label}' column"))?;
    Ok(Split {
        names,
        columns,
        target,
    })
}

/// The first `n` rows of column-major data, row-major.
fn row_major(columns: &[Vec<f64>], n: usize) -> Vec<f64> {
    let width = columns.len();
    let mut rows = vec![0.0; n * width];
    for (j, column) in columns.iter().enumerate() {
        for (i, value) in column[..n].iter().enumerate() {
            rows[i * width + j] = *value;
        }
    }
    rows
}

fn main() -> Result<()> {
    let args = Args::parse();

    let load_start = Instant::now();
    let train = split_table(read_table(&args.train)?, &args.label)?;
    let test = split_table(read_table(&args.test)?, &args.label)?;
    let load_seconds = load_start.elapsed().as_secs_f64();
    if train.names != test.names {
        bail!("train and test files have different feature columns");
    }
    let n_features = train.columns.len();
    let n_train = train.target.len();
    let n_test = test.target.len();

    let params = ParamSet {
        num_iterations: args.num_iterations,
        num_leaves: args.num_leaves,
        learning_rate: args.learning_rate,
        max_bin: args.max_bin,
        min_data_in_leaf: args.min_data_in_leaf,
        seed: args.seed,
        num_threads: Some(args.threads as i64),
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the thread pool")?;
    let kinds = vec![ColumnKind::Numeric; n_features];
    let data = TrainData {
        columns: &train.columns,
        kinds: &kinds,
        target: &train.target,
    };

    // Memory baseline: data loaded, pool started, nothing trained yet.
    let peak_reset = reset_peak_rss();
    let baseline_rss_mb = proc_status_mb("VmRSS:");
    let (ensemble, fit_seconds, described): (Ensemble, f64, Vec<(String, String)>) = match args.algo
    {
        Algo::Gbm => {
            let checked = params.check_gbm(n_features)?;
            let start = Instant::now();
            let outcome = pool.install(|| train_gbm(&checked, &data, None, &mut |_| {}));
            (
                outcome.ensemble,
                start.elapsed().as_secs_f64(),
                checked.describe(),
            )
        }
        Algo::Rf => {
            let checked = params.check_forest(n_features)?;
            let start = Instant::now();
            let ensemble = pool.install(|| train_forest(&checked, &data, &|_| {}));
            (ensemble, start.elapsed().as_secs_f64(), checked.describe())
        }
    };
    let fit_peak_rss_mb = if peak_reset {
        proc_status_mb("VmHWM:")
    } else {
        None
    };
    drop(train);

    let compile_start = Instant::now();
    let compiled = CompiledEnsemble::new(&ensemble)?;
    let compile_seconds = compile_start.elapsed().as_secs_f64();
    let test_rows = row_major(&test.columns, n_test);
    let mut probabilities = vec![0.0; n_test];
    pool.install(|| compiled.raw_scores_into(&test_rows, &mut probabilities));
    let link = compiled.link();
    probabilities.iter_mut().for_each(|p| *p = link.apply(*p));
    let labels: Vec<bool> = test.target.iter().map(|y| *y > 0.5).collect();
    let test_auc = roc_auc(&labels, &probabilities);

    let mut score = serde_json::Value::Null;
    if args.score_rows > 0 {
        let n = args.score_rows.min(n_test);
        let rows = &test_rows[..n * n_features];
        let mut out = vec![0.0; n];
        let mut run = || {
            let start = Instant::now();
            pool.install(|| compiled.raw_scores_into(rows, &mut out));
            out.iter_mut().for_each(|p| *p = link.apply(*p));
            start.elapsed().as_secs_f64()
        };
        run(); // warm-up
        let times: Vec<f64> = (0..5).map(|_| run()).collect();
        let best = times.iter().copied().fold(f64::INFINITY, f64::min);
        score = json!({
            "rows": n,
            "best_seconds": best,
            "times": times,
            "rows_per_second": n as f64 / best,
            "compile_seconds": compile_seconds,
            "auc_scored_rows": roc_auc(&labels[..n], &out),
            "checksum": out.iter().sum::<f64>(),
        });
    }

    let n_leaves: usize = ensemble.trees.iter().map(|t| t.num_leaves()).sum();
    let max_depth = ensemble.trees.iter().map(|t| t.depth()).max().unwrap_or(0);
    let report = json!({
        "contestant": "presage",
        "algo": match args.algo { Algo::Gbm => "gbm", Algo::Rf => "rf" },
        "n_train": n_train,
        "n_test": n_test,
        "n_features": n_features,
        "threads": args.threads,
        "load_seconds": load_seconds,
        "fit_seconds": fit_seconds,
        "test_auc": test_auc,
        "baseline_rss_mb": baseline_rss_mb,
        "fit_peak_rss_mb": fit_peak_rss_mb,
        "n_trees": ensemble.trees.len(),
        "total_leaves": n_leaves,
        "max_tree_depth": max_depth,
        "params": described
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect::<serde_json::Map<_, _>>(),
        "score": score,
    });
    println!("{report}");
    Ok(())
}
