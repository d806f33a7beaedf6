//! `presage-train retrain`: a challenger trained as `fit` would, gated
//! against the champion.

use std::path::Path;

use presage_pipeline::retrain;

use super::fit::{fit_plan, progress_reporter, FitArgs};
use crate::{by_cause, failure, Failure};

pub(crate) fn run_retrain(registry: &Path, args: &FitArgs) -> Result<(), Failure> {
    let (plan, config) = fit_plan(registry, args)?;
    let gate = match &args.config {
        Some(path) => config.gate(path)?,
        None => retrain::Gate::default(),
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
