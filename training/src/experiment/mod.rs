//! A/B analysis of an onboarding experiment from the warehouse extracts:
//! did the segment's onboarding beat the generic flow?
//!
//! - [`spec`]: the config (`[extract]`, `[experiment]`, `[[outcomes]]`).
//! - [`data`]: the assignment log checked, and each user's outcomes
//!   measured from the events after assignment.
//! - [`analysis`]: the sample-ratio check, the tests, confidence intervals,
//!   Holm's correction across segments and the power answers.
//! - [`text`] and [`html`]: the terminal table and the HTML report.

pub mod analysis;
pub mod data;
pub mod html;
pub mod spec;
pub mod text;

pub use analysis::ExperimentReport;
pub use spec::ExperimentSpec;

use crate::extract::time::format_timestamp;
use crate::extract::ExtractError;

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
