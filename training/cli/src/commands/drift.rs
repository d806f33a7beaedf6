//! `presage-train drift`: new data against a version's training data.

use std::path::{Path, PathBuf};

use clap::Args;
use presage_data::table::read_table;
use presage_models::drift;
use presage_pipeline::scoring::score_table;

use serde_json::json;

use super::{load, VersionArgs};
use crate::{bad_input, Failure};

#[derive(Args)]
pub(crate) struct DriftArgs {
    #[command(flatten)]
    pub(crate) which: VersionArgs,
    /// New data (.csv or .parquet) with the model's feature columns (a label is not needed).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_drift(registry: &Path, args: &DriftArgs) -> Result<(), Failure> {
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
