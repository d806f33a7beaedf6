//! `presage-train experiment`: the A/B analysis, as a table or a report.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use presage_experiment::spec::PathOverrides;

use super::ExtractArgs;
use crate::config::read_config;
use crate::{bad_input, failure, Failure};

#[derive(Args)]
pub(crate) struct ExperimentArgs {
    /// TOML config with [extract], [experiment] and [[outcomes]] (see datasets/configs/experiment.toml).
    #[arg(long)]
    pub(crate) config: PathBuf,
    #[command(flatten)]
    pub(crate) extract: ExtractArgs,
    /// The assignment extract (user_id, variant, assigned_at, optional segment) [default: the config's].
    #[arg(long, value_name = "PATH")]
    pub(crate) assignments: Option<PathBuf>,
    /// Also write a self-contained HTML report with a confidence-interval plot per outcome.
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Exit code of an experiment whose sample ratio does not match the plan.
pub(crate) const EXIT_SAMPLE_RATIO_MISMATCH: u8 = 3;

pub(crate) fn run_experiment(args: &ExperimentArgs) -> Result<(), Failure> {
    let spec = read_config(&args.config)?.experiment(
        &args.config,
        PathOverrides {
            users: args.extract.users.as_deref(),
            events: args.extract.events.as_deref(),
            assignments: args.assignments.as_deref(),
        },
    )?;
    let report = presage_experiment::run(&spec).map_err(bad_input)?;
    if let Some(path) = &args.html {
        let html = crate::render::experiment_html::render(&report).map_err(failure)?;
        presage_models::write_atomic(path, html.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(failure)?;
        eprintln!("report -> {}", path.display());
    }
    if args.json {
        out!("{}", serde_json::to_string(&report).map_err(failure)?);
    } else {
        out_part!("{}", crate::render::experiment_text::render(&report));
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
