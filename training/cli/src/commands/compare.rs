//! `presage-train compare`: two versions side by side, in the terminal or as
//! an HTML report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use presage_data::table::read_table;
use presage_models::artifact::ModelArtifact;
use presage_models::policy::{policy_file, SegmentPolicy};
use presage_models::registry::Registry;
use presage_pipeline::compare;

use super::version_selector;
use crate::render::compare_html;
use crate::{bad_input, failure, Failure};

#[derive(Args)]
pub(crate) struct CompareArgs {
    /// Model name.
    pub(crate) model: String,
    /// Version A: a number or an alias (e.g. champion).
    pub(crate) a: String,
    /// Version B: a number or an alias.
    pub(crate) b: String,
    /// Labelled data (.csv or .parquet) both versions score; without it the stored test metrics are compared.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Segment policy for the migration matrix [default: policy.toml beside the model in the registry, else the default percentile policy].
    #[arg(long)]
    pub(crate) policy: Option<PathBuf>,
    /// Also write a self-contained HTML report with plots (needs --data).
    #[arg(long, requires = "data")]
    pub(crate) html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_compare(registry: &Path, args: &CompareArgs) -> Result<(), Failure> {
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
        let html = compare_html::render(&comparison).map_err(failure)?;
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
