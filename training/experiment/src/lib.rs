//! # presage-experiment
//!
//! A/B analysis of an onboarding experiment from the warehouse extracts:
//! did the segment's onboarding beat the generic flow?
//!
//! - [`spec`]: the config (`[extract]`, `[experiment]`, `[[outcomes]]`).
//! - [`data`]: the assignment log checked, and each user's outcomes
//!   measured from the events after assignment.
//! - [`analysis`]: the sample-ratio check, the tests, confidence intervals,
//!   Holm's correction across segments and the power answers.
//! - [`numbers`]: digit grouping for messages and reports.
//!
//! The terminal table and the HTML report are rendered by `presage-train`.
//! This crate may depend on `presage-models`, `presage-data` (the extracts),
//! `polars`, `serde` and `sha2`; the config file is read by its caller.

pub mod analysis;
pub mod data;
pub mod numbers;
pub mod spec;

use presage_data::extract::ExtractError;
use presage_models::time::format_timestamp;

use crate::analysis::ExperimentReport;
use crate::spec::ExperimentSpec;

/// Reads the extracts named by `spec` and analyses the experiment.
pub fn run(spec: &ExperimentSpec) -> Result<ExperimentReport, ExtractError> {
    let observations = data::observe(spec)?;
    let assignments = spec
        .experiment
        .assignments
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(analysis::analyse(
        &observations,
        &spec.outcomes,
        &spec.experiment,
        &assignments,
        format_timestamp(observations.end),
    ))
}
