//! `presage-train evaluate`: a stored version's metrics on new labelled data.

use std::path::{Path, PathBuf};

use crate::render::metrics_text::{metrics_json, metrics_table};
use clap::Args;
use presage_data::table::read_table;
use presage_models::artifact::Metrics;
use presage_pipeline::scoring::{labelled_rows, score_table};

use serde_json::json;

use super::{load, VersionArgs};
use crate::{bad_input, Failure};

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    pub(crate) which: VersionArgs,
    /// Labelled table (.csv or .parquet).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Label column [default: the training label].
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Positive label value [default: the training one].
    #[arg(long)]
    pub(crate) positive: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_evaluate(registry: &Path, args: &EvaluateArgs) -> Result<(), Failure> {
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
